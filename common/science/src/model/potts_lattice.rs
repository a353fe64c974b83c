//! The nearest-neighbour q-state Potts model on the periodic L×M lattice,
//! H(σ) = −Σ_⟨ij⟩ δ(σ_i, σ_j): the textbook first-order transition (for q ≥ 5) with exact
//! answers (Baxter 1973): β_t = ln(1 + √q), the latent heat and the energies of the two
//! coexisting phases per site. It is how the multicanonical sampler
//! ([`crate::mc::multicanonical`]) is validated where tempering fails.
//!
//! Why a dedicated implementation: as a [`PottsModel`](crate::potts::PottsModel) the lattice
//! would be a dense N×N×q×q coupling array (256 sites, q = 20: 26 million couplings, and a
//! local-field update touching all of them per change). Here a site has four neighbours,
//! the energy is an integer (kept exactly, no drift), and a heat-bath update weighs the q
//! states from four neighbour counts and a five-entry table of e^{−βd}.

use rand::Rng;
use thiserror::Error;

use crate::exact::exp_nonpos;
use crate::mc::local::{LocalEnsemble, LocalMove, LocalMoves};
use crate::mc::replica::{Ensemble, Replica};

/// Why a lattice Potts model cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LatticePottsError {
    /// A side shorter than 3: the four neighbours of a site would not be distinct.
    #[error("lattice sides must be at least 3, not {rows}×{cols}")]
    Side {
        /// Rows asked for.
        rows: u32,
        /// Columns asked for.
        cols: u32,
    },
    /// q outside 2..=256 (states are bytes).
    #[error("q must be 2 to 256, not {0}")]
    States(usize),
}

/// The q-state Potts model on the `rows`×`cols` torus, coupling 1 on every bond.
#[derive(Debug, Clone, PartialEq)]
pub struct LatticePotts {
    rows: u32,
    cols: u32,
    q: usize,
    /// Right, left, down, up neighbour of every site (row-major sites).
    neighbours: Vec<[u32; 4]>,
}

impl LatticePotts {
    /// The model; errors on sides below 3 or q outside 2..=256.
    pub fn new(rows: u32, cols: u32, q: usize) -> Result<LatticePotts, LatticePottsError> {
        if rows < 3 || cols < 3 {
            return Err(LatticePottsError::Side { rows, cols });
        }
        if !(2..=256).contains(&q) {
            return Err(LatticePottsError::States(q));
        }
        let at = |r: u32, c: u32| r * cols + c;
        let neighbours = (0..rows)
            .flat_map(|r| {
                (0..cols).map(move |c| {
                    [
                        at(r, (c + 1) % cols),
                        at(r, (c + cols - 1) % cols),
                        at((r + 1) % rows, c),
                        at((r + rows - 1) % rows, c),
                    ]
                })
            })
            .collect();
        Ok(LatticePotts { rows, cols, q, neighbours })
    }

    /// Sites.
    pub fn n(&self) -> usize {
        (self.rows * self.cols) as usize
    }

    /// States per site.
    pub fn q(&self) -> usize {
        self.q
    }

    /// The four neighbours of site i.
    pub fn neighbours(&self, i: usize) -> [u32; 4] {
        self.neighbours[i]
    }

    /// H(σ) = −(number of bonds whose two ends agree), each bond counted once.
    pub fn energy(&self, s: &[u8]) -> f64 {
        -(self.satisfied_bonds(s) as f64)
    }

    fn satisfied_bonds(&self, s: &[u8]) -> i64 {
        // Right and down neighbours: every bond once.
        (0..self.n())
            .map(|i| {
                i64::from(s[self.neighbours[i][0] as usize] == s[i])
                    + i64::from(s[self.neighbours[i][2] as usize] == s[i])
            })
            .sum()
    }

    /// A chain at `beta` (finite, ≥ 0) from `state` (its length N, letters below q); `None`
    /// otherwise.
    pub fn chain(&self, beta: f64, state: Vec<u8>) -> Option<LatticePottsChain<'_>> {
        if state.len() != self.n()
            || state.iter().any(|&a| a as usize >= self.q)
            || !(beta.is_finite() && beta >= 0.0)
        {
            return None;
        }
        let bonds = self.satisfied_bonds(&state);
        let mut c =
            LatticePottsChain { model: self, beta, state, bonds, table: [0.0; 5], counts: vec![0; self.q] };
        c.set_beta(beta);
        Some(c)
    }
}

/// One configuration of a [`LatticePotts`] model: a tempering rung (heat-bath sweeps at β)
/// and a multicanonical walker (single-site moves) alike.
#[derive(Debug, Clone)]
pub struct LatticePottsChain<'m> {
    model: &'m LatticePotts,
    beta: f64,
    state: Vec<u8>,
    /// Bonds whose ends agree (E = −bonds, exact).
    bonds: i64,
    /// e^{−βd} for d = 0..=4 (a state's weight relative to the best-supported one).
    table: [f64; 5],
    /// Scratch: how many neighbours of the site being updated hold each state.
    counts: Vec<u8>,
}

impl LatticePottsChain<'_> {
    /// Neighbours of site i holding state a.
    #[inline]
    fn agreeing(&self, i: usize, a: u8) -> i64 {
        self.model.neighbours[i].iter().map(|&j| i64::from(self.state[j as usize] == a)).sum()
    }

    /// One heat-bath update of site i: σ_i drawn from p(a) ∝ e^{β n_i(a)}, n_i(a) the
    /// neighbours in state a, by the inverse CDF of one uniform.
    #[inline]
    fn heat_bath(&mut self, i: usize, rng: &mut impl Rng) {
        let nb = self.model.neighbours[i];
        let mut top = 0u8;
        for &j in &nb {
            let c = &mut self.counts[self.state[j as usize] as usize];
            *c += 1;
            top = top.max(*c);
        }
        let total: f64 = self.counts.iter().map(|&c| self.table[(top - c) as usize]).sum();
        let u = rng.random::<f64>() * total;
        let mut cumulative = 0.0;
        let mut drawn = (self.model.q - 1) as u8;
        for (a, &c) in self.counts.iter().enumerate() {
            cumulative += self.table[(top - c) as usize];
            if u < cumulative {
                drawn = a as u8;
                break;
            }
        }
        let old = self.state[i];
        let delta = i64::from(self.counts[drawn as usize]) - i64::from(self.counts[old as usize]);
        for &j in &nb {
            self.counts[self.state[j as usize] as usize] = 0;
        }
        self.state[i] = drawn;
        self.bonds += delta;
    }
}

impl Replica for LatticePottsChain<'_> {
    type Config = [u8];
    fn beta(&self) -> f64 {
        self.beta
    }
    fn set_beta(&mut self, beta: f64) {
        // The weights are relative to the best-supported state, e^{−βd} ≤ 1: β ≥ 0 (every
        // ladder runs from 0 up).
        assert!(
            beta.is_finite() && beta >= 0.0,
            "a lattice Potts chain's β must be finite and ≥ 0, not {beta}"
        );
        self.beta = beta;
        for (d, t) in self.table.iter_mut().enumerate() {
            *t = exp_nonpos(-beta * d as f64);
        }
    }
    fn sweep<R: Rng>(&mut self, rng: &mut R) {
        for i in 0..self.state.len() {
            self.heat_bath(i, rng);
        }
    }
    fn energy(&self) -> f64 {
        -(self.bonds as f64)
    }
    fn config(&self) -> &[u8] {
        &self.state
    }
}

impl LocalMoves for LatticePottsChain<'_> {
    type Config = [u8];
    #[inline]
    fn propose<R: Rng + ?Sized>(&self, rng: &mut R) -> LocalMove {
        let q = self.model.q;
        let i = rng.random_range(0..self.state.len());
        let old = self.state[i];
        let mut new = rng.random_range(0..q - 1) as u8;
        if new >= old {
            new += 1;
        }
        // E = −bonds: gaining agreeing neighbours lowers E.
        let delta = self.agreeing(i, old) - self.agreeing(i, new);
        LocalMove { site: i as u32, state: u32::from(new), delta: delta as f64 }
    }
    #[inline]
    fn apply(&mut self, m: &LocalMove) {
        let i = m.site as usize;
        self.bonds -= m.delta as i64;
        self.state[i] = m.state as u8;
    }
    fn energy(&self) -> f64 {
        -(self.bonds as f64)
    }
    fn config(&self) -> &[u8] {
        &self.state
    }
    fn sites(&self) -> usize {
        self.state.len()
    }
    fn resync(&mut self) {
        // The energy is an exact integer: nothing drifts.
        debug_assert_eq!(self.bonds, self.model.satisfied_bonds(&self.state));
    }
}

impl Ensemble for LatticePotts {
    type Config = [u8];
    type Chain<'a> = LatticePottsChain<'a>;
    /// Panics when β is not finite or negative (ladders are checked where they are built).
    fn random_chain<'a, R: Rng>(&'a self, beta: f64, rng: &mut R) -> LatticePottsChain<'a> {
        let state = (0..self.n()).map(|_| rng.random_range(0..self.q) as u8).collect();
        match self.chain(beta, state) {
            Some(c) => c,
            None => panic!("a lattice Potts chain at β = {beta}"),
        }
    }
    fn log_configurations(&self) -> f64 {
        self.n() as f64 * (self.q as f64).ln()
    }
}

impl LocalEnsemble for LatticePotts {
    type Walker<'a> = LatticePottsChain<'a>;
    fn random_walker<'a, R: Rng + ?Sized>(&'a self, rng: &mut R) -> LatticePottsChain<'a> {
        let state: Vec<u8> = (0..self.n()).map(|_| rng.random_range(0..self.q) as u8).collect();
        match self.chain(0.0, state) {
            Some(c) => c,
            None => unreachable!("a uniformly drawn state fits the model"),
        }
    }
}

/// Baxter's exact numbers for the 2D q-state Potts model at its transition (q ≥ 5: first
/// order): β_t = ln(1 + √q), and per site the energies of the ordered and disordered phases
/// coexisting there (H = −Σ δ, so per site e ∈ [−2, 0]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaxterPoint {
    /// β_t = ln(1 + √q).
    pub beta_t: f64,
    /// Energy per site of the ordered phase at β_t.
    pub e_ordered: f64,
    /// Energy per site of the disordered phase at β_t.
    pub e_disordered: f64,
}

impl BaxterPoint {
    /// The latent heat per site, e_d − e_o.
    pub fn latent_heat(&self) -> f64 {
        self.e_disordered - self.e_ordered
    }
}

/// Baxter's transition point for q = 10 and q = 20 (the ones the tests use; the energies
/// are from Baxter 1973 as tabulated by Janke 1993), `None` for other q.
pub fn baxter(q: usize) -> Option<BaxterPoint> {
    let beta_t = (1.0 + (q as f64).sqrt()).ln();
    match q {
        10 => Some(BaxterPoint { beta_t, e_ordered: -1.664252, e_disordered: -0.968203 }),
        20 => {
            // e_o + e_d = −2(1 + 1/√q) at β_t (exact, self-duality), and Δe = 1.194155.
            let sum = -2.0 * (1.0 + 1.0 / (q as f64).sqrt());
            let de = 1.194155;
            Some(BaxterPoint { beta_t, e_ordered: 0.5 * (sum - de), e_disordered: 0.5 * (sum + de) })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn energies_moves_and_sweeps_keep_the_bond_count() {
        let m = LatticePotts::new(4, 5, 3).unwrap();
        assert_eq!(m.energy(&[0; 20]), -40.0, "2N bonds, all satisfied");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut c = m.random_walker(&mut rng);
        for _ in 0..500 {
            let mv = c.propose(&mut rng);
            let before = LocalMoves::energy(&c);
            c.apply(&mv);
            assert_eq!(LocalMoves::energy(&c) - before, mv.delta);
        }
        assert_eq!(LocalMoves::energy(&c), m.energy(LocalMoves::config(&c)));
        c.set_beta(1.3);
        for _ in 0..50 {
            c.sweep(&mut rng);
        }
        assert_eq!(Replica::energy(&c), m.energy(Replica::config(&c)));
        assert!(LatticePotts::new(2, 5, 3).is_err() && LatticePotts::new(3, 3, 1).is_err());
    }

    #[test]
    fn baxter_energies_satisfy_duality_and_the_stated_latent_heats() {
        let b10 = baxter(10).unwrap();
        assert!((b10.beta_t - 1.426_062).abs() < 1e-6);
        assert!((b10.latent_heat() - 0.696049).abs() < 1e-6);
        assert!((b10.e_ordered + b10.e_disordered + 2.0 * (1.0 + 1.0 / 10f64.sqrt())).abs() < 1e-5);
        let b20 = baxter(20).unwrap();
        assert!((b20.beta_t - 1.699669).abs() < 1e-6);
    }
}
