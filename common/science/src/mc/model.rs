//! A pairwise spin model: E(σ) = −Σ_i h_i σ_i − Σ_{i<j} J_ij σ_i σ_j, σ_i = ±1, sampled as
//! q_β(σ) ∝ exp(−β E(σ)).
//!
//! Couplings are kept as neighbour lists (compressed rows, each pair in both rows): a 2D
//! lattice has 4 entries per row, a fitted fully connected model N − 1, and the update
//! loop is the same.

use crate::model::ising::{torus_bonds, Pairs};

/// Fields and couplings of N spins.
#[derive(Debug, Clone, PartialEq)]
pub struct SpinModel {
    /// h_i.
    pub fields: Vec<f64>,
    /// Row i's neighbours are `neighbours[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<usize>,
    /// (j, J_ij) for every nonzero J_ij, both (i, j) and (j, i).
    neighbours: Vec<(u32, f64)>,
    /// The coupling matrix row by row (N×N, zero diagonal), kept when at least
    /// [`DENSE_FRACTION`] of the pairs are coupled. A flip then updates the local fields with
    /// one contiguous, vectorisable pass over a row of 8-byte couplings instead of
    /// gathering 16-byte (index, coupling) entries: half the bytes and no indirection.
    dense: Option<Vec<f64>>,
}

/// Smallest fraction of coupled pairs for which [`SpinModel`] keeps dense rows.
pub const DENSE_FRACTION: f64 = 0.25;

impl SpinModel {
    /// From a list of bonds (i, j, J_ij) with i ≠ j; a pair listed twice adds up. Zero
    /// couplings are dropped.
    pub fn from_bonds(n: usize, fields: Vec<f64>, bonds: &[(u32, u32, f64)]) -> SpinModel {
        assert_eq!(fields.len(), n, "one field per spin");
        let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        for &(i, j, c) in bonds {
            assert!(i != j && (i as usize) < n && (j as usize) < n, "bond ({i}, {j}) of {n} spins");
            if c == 0.0 {
                continue;
            }
            for (a, b) in [(i, j), (j, i)] {
                let row = &mut rows[a as usize];
                match row.iter_mut().find(|(k, _)| *k == b) {
                    Some(e) => e.1 += c,
                    None => row.push((b, c)),
                }
            }
        }
        let mut offsets = Vec::with_capacity(n + 1);
        let mut neighbours = Vec::new();
        offsets.push(0);
        for mut row in rows {
            row.sort_by_key(|&(k, _)| k);
            neighbours.extend(row);
            offsets.push(neighbours.len());
        }
        let mut model = SpinModel { fields, offsets, neighbours, dense: None };
        let pairs = (n * n.saturating_sub(1)) as f64;
        if n > 0 && model.neighbours.len() as f64 >= DENSE_FRACTION * pairs {
            model = model.with_dense_rows(true);
        }
        model
    }

    /// The same model with dense rows kept (`true`) or dropped (`false`), whatever its
    /// density. Both give bit-identical chains: only the memory layout of a flip differs
    /// (for benchmarks and tests of exactly that).
    pub fn with_dense_rows(mut self, on: bool) -> SpinModel {
        self.dense = on.then(|| {
            let n = self.len();
            let mut m = vec![0.0; n * n];
            for i in 0..n {
                for &(j, c) in self.row(i) {
                    m[i * n + j as usize] = c;
                }
            }
            m
        });
        self
    }

    /// Row i of the dense coupling matrix (J_ij for every j, J_ii = 0), when kept.
    #[inline]
    pub fn dense_row(&self, i: usize) -> Option<&[f64]> {
        let n = self.len();
        self.dense.as_ref().map(|m| &m[i * n..(i + 1) * n])
    }

    /// The nearest-neighbour Ising model on the `rows`×`cols` torus with coupling `k` on
    /// every bond and no field (taustar's truth at T = 1/k, bonds as [`torus_bonds`]).
    pub fn torus(rows: u32, cols: u32, k: f64) -> SpinModel {
        let bonds: Vec<(u32, u32, f64)> =
            torus_bonds(rows, cols).into_iter().map(|(i, j)| (i, j, k)).collect();
        SpinModel::from_bonds((rows * cols) as usize, vec![0.0; (rows * cols) as usize], &bonds)
    }

    /// A fitted fully connected model: couplings in [`Pairs`] order, no field.
    pub fn from_pairs(pairs: &Pairs, couplings: &[f64]) -> SpinModel {
        let bonds: Vec<(u32, u32, f64)> =
            pairs.ij.iter().zip(couplings).map(|(&(i, j), &c)| (i, j, c)).collect();
        SpinModel::from_bonds(pairs.n as usize, vec![0.0; pairs.n as usize], &bonds)
    }

    /// Number of spins.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// No spins.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// (j, J_ij) for the neighbours of spin i.
    #[inline]
    pub fn row(&self, i: usize) -> &[(u32, f64)] {
        &self.neighbours[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Whether every field is zero and every coupling non-negative (Wolff moves apply).
    pub fn is_ferromagnetic_without_field(&self) -> bool {
        self.fields.iter().all(|&h| h == 0.0) && self.neighbours.iter().all(|&(_, c)| c >= 0.0)
    }

    /// The local field f_i = h_i + Σ_j J_ij σ_j of every spin.
    pub fn local_fields(&self, spins: &[i8]) -> Vec<f64> {
        (0..self.len())
            .map(|i| {
                self.fields[i]
                    + self.row(i).iter().map(|&(j, c)| c * f64::from(spins[j as usize])).sum::<f64>()
            })
            .collect()
    }

    /// E(σ), computed from scratch.
    pub fn energy(&self, spins: &[i8]) -> f64 {
        let mut e = 0.0;
        for i in 0..self.len() {
            let s = f64::from(spins[i]);
            e -= self.fields[i] * s;
            // Each pair appears in both rows: count it once.
            e -= 0.5 * s * self.row(i).iter().map(|&(j, c)| c * f64::from(spins[j as usize])).sum::<f64>();
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::spin;

    #[test]
    fn energies_match_the_enumerated_pair_energies() {
        let pairs = Pairs::new(6);
        let j: Vec<f64> = (0..pairs.len()).map(|k| ((k as f64) * 0.71).sin()).collect();
        let model = SpinModel::from_pairs(&pairs, &j);
        let mut e = vec![0.0; 64];
        pairs.energies_into(&j, &mut e);
        for x in 0..64u32 {
            let spins: Vec<i8> = (0..6).map(|i| spin(x, i) as i8).collect();
            assert!((model.energy(&spins) - e[x as usize]).abs() < 1e-12, "state {x}");
        }
        let torus = SpinModel::torus(4, 4, 0.5);
        assert!(torus.is_ferromagnetic_without_field());
        assert!((0..16).all(|i| torus.row(i).len() == 4));
        assert_eq!(torus.energy(&[1; 16]), -0.5 * 32.0);
    }
}
