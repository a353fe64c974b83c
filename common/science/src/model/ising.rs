//! The periodic 2D nearest-neighbour Ising truth of docs/spec.md §2.2, and the pair features
//! shared with the fully connected fit.

use std::collections::BTreeSet;

use crate::exact::{log_sum_exp, wht};

/// The pairs (i < j) of an N-spin system in lexicographic order, with the bit mask of each
/// pair (the subset index of χ_{ij} in a Walsh–Hadamard transform).
#[derive(Debug, Clone)]
pub struct Pairs {
    /// Number of spins N.
    pub n: u32,
    /// (i, j) with i < j, lexicographic.
    pub ij: Vec<(u32, u32)>,
    /// 1<<i | 1<<j for each pair.
    pub mask: Vec<u32>,
}

impl Pairs {
    /// All N(N−1)/2 pairs of N spins.
    pub fn new(n: u32) -> Self {
        let mut ij = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                ij.push((i, j));
            }
        }
        let mask = ij.iter().map(|&(i, j)| (1u32 << i) | (1u32 << j)).collect();
        Pairs { n, ij, mask }
    }

    /// All N(N−1)/2 pairs of N spins, without the state masks (which exist only for
    /// N ≤ 32, the enumerable sizes): for models that are sampled, not enumerated.
    pub fn new_without_masks(n: u32) -> Self {
        let mut ij = Vec::with_capacity((n as usize) * (n as usize).saturating_sub(1) / 2);
        for i in 0..n {
            for j in i + 1..n {
                ij.push((i, j));
            }
        }
        Pairs { n, ij, mask: Vec::new() }
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.ij.len()
    }

    /// True when there are no pairs (N < 2).
    pub fn is_empty(&self) -> bool {
        self.ij.is_empty()
    }

    /// Index of pair (i, j), i ≠ j, in [`Pairs::ij`].
    pub fn index(&self, i: u32, j: u32) -> usize {
        let (i, j) = if i < j { (i, j) } else { (j, i) };
        let (n, i, j) = (self.n as usize, i as usize, j as usize);
        i * (2 * n - i - 1) / 2 + (j - i - 1)
    }

    /// Energies Ê(x) = −Σ_{i<j} J_ij σ_iσ_j of all 2^N states, written into `out`
    /// (length 2^N), by one Walsh–Hadamard transform of the couplings.
    pub fn energies_into(&self, couplings: &[f64], out: &mut [f64]) {
        out.iter_mut().for_each(|v| *v = 0.0);
        for (&m, &j) in self.mask.iter().zip(couplings) {
            out[m as usize] = -j;
        }
        wht(out);
    }

    /// Pair parities σ_iσ_j of one state, in pair order, dotted with `couplings`:
    /// the model's −Ê(x) for a single state (for data, where states are few).
    pub fn neg_energy_of(&self, couplings: &[f64], x: u32) -> f64 {
        self.mask.iter().zip(couplings).map(|(&m, &j)| if (x & m).count_ones() == 1 { -j } else { j }).sum()
    }
}

/// The nearest-neighbour bonds (i < j) of a rows×cols torus, each bond once. A dimension of
/// size 2 links its two rows (columns) by one bond, not two; size 1 adds no bond.
/// Sites are numbered row-major: s = r·cols + c.
pub fn torus_bonds(rows: u32, cols: u32) -> Vec<(u32, u32)> {
    let mut set = BTreeSet::new();
    let site = |r: u32, c: u32| r * cols + c;
    for r in 0..rows {
        for c in 0..cols {
            let s = site(r, c);
            if cols > 1 {
                let t = site(r, (c + 1) % cols);
                set.insert((s.min(t), s.max(t)));
            }
            if rows > 1 {
                let t = site((r + 1) % rows, c);
                set.insert((s.min(t), s.max(t)));
            }
        }
    }
    set.into_iter().collect()
}

/// The exact truth distribution of a 2D Ising model at temperature T.
#[derive(Debug, Clone)]
pub struct IsingTruth {
    /// Number of spins.
    pub n: u32,
    /// The couplings J/T in pair order (for "fit recovers J/T" and diagnostics).
    pub couplings_over_t: Vec<f64>,
    /// log p(x) for every state.
    pub log_p: Vec<f64>,
}

impl IsingTruth {
    /// Enumerate all 2^N states of the rows×cols torus at temperature T (assumed validated).
    pub fn new(rows: u32, cols: u32, temperature: f64, pairs: &Pairs) -> Self {
        let n = rows * cols;
        let mut couplings = vec![0.0; pairs.len()];
        for (i, j) in torus_bonds(rows, cols) {
            couplings[pairs.index(i, j)] = 1.0 / temperature;
        }
        let mut log_p = vec![0.0; 1usize << n];
        pairs.energies_into(&couplings, &mut log_p);
        log_p.iter_mut().for_each(|e| *e = -*e);
        let lz = log_sum_exp(&log_p);
        log_p.iter_mut().for_each(|v| *v -= lz);
        IsingTruth { n, couplings_over_t: couplings, log_p }
    }

    /// Probabilities p(x).
    pub fn probabilities(&self) -> Vec<f64> {
        self.log_p.iter().map(|l| l.exp()).collect()
    }

    /// Exact entropy S(p) in nats.
    pub fn entropy(&self) -> f64 {
        -self.log_p.iter().map(|&l| l.exp() * l).sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::spin;

    #[test]
    fn pair_index_is_the_position_in_the_pair_list() {
        let p = Pairs::new(7);
        for (k, &(i, j)) in p.ij.iter().enumerate() {
            assert_eq!(p.index(i, j), k);
            assert_eq!(p.index(j, i), k);
        }
    }

    #[test]
    fn a_4x4_torus_has_32_bonds_and_every_site_4_neighbours() {
        let b = torus_bonds(4, 4);
        assert_eq!(b.len(), 32);
        let mut deg = [0; 16];
        for (i, j) in b {
            deg[i as usize] += 1;
            deg[j as usize] += 1;
        }
        assert!(deg.iter().all(|&d| d == 4));
        assert_eq!(torus_bonds(2, 3).len(), 3 + 6); // one vertical bond per column, 3 per row
    }

    #[test]
    fn transform_energies_equal_the_direct_sum() {
        let p = Pairs::new(5);
        let j: Vec<f64> = (0..p.len()).map(|k| (k as f64 * 0.37).sin()).collect();
        let mut e = vec![0.0; 32];
        p.energies_into(&j, &mut e);
        for x in 0..32u32 {
            let direct: f64 =
                -p.ij.iter().zip(&j).map(|(&(a, b), &c)| c * spin(x, a) * spin(x, b)).sum::<f64>();
            assert!((e[x as usize] - direct).abs() < 1e-12);
            assert!((-p.neg_energy_of(&j, x) - direct).abs() < 1e-12);
        }
    }

    #[test]
    fn ising_truth_is_normalised_and_ground_states_are_the_two_ordered_states() {
        let pairs = Pairs::new(9);
        let t = IsingTruth::new(3, 3, 1.5, &pairs);
        let total: f64 = t.probabilities().iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        let max = t.log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(t.log_p[0], max);
        assert_eq!(t.log_p[511], max);
    }

    /// Pair energies are even under the global flip x → !x, and the transform keeps that
    /// bit for bit (IEEE rounding is sign-symmetric and the flip only swaps the sign of
    /// odd-parity partial sums, which are zero): the exact passes and the τ analysis compute
    /// the exponentials of one half of the states and mirror them.
    #[test]
    fn energies_and_truth_log_p_are_bitwise_flip_symmetric() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for n in [2u32, 5, 9, 16] {
            let p = Pairs::new(n);
            let size = 1usize << n;
            for _ in 0..20 {
                let j: Vec<f64> = (0..p.len()).map(|_| rng.random_range(-3.0..3.0)).collect();
                let mut e = vec![0.0; size];
                p.energies_into(&j, &mut e);
                for x in 0..size {
                    assert_eq!(e[x].to_bits(), e[size - 1 - x].to_bits(), "n={n} x={x}");
                }
            }
        }
        let pairs = Pairs::new(16);
        for t in [0.5, 2.269, 3.1, 40.0] {
            let truth = IsingTruth::new(4, 4, t, &pairs);
            let size = truth.log_p.len();
            for x in 0..size {
                assert_eq!(truth.log_p[x].to_bits(), truth.log_p[size - 1 - x].to_bits(), "T={t} x={x}");
            }
        }
    }
}
