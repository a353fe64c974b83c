//! Single-site heat-bath (Gibbs) sweeps of a Potts model with incrementally kept local
//! fields: the Potts counterpart of [`crate::mc::chain::Chain`].
//!
//! Site i takes a new state from its conditional law given the others,
//! p(a) ∝ exp(β f_i(a)) with the local field f_i(a) = h_i(a) + Σ_{j≠i} J_ij(a, s_j). Heat
//! bath rather than Metropolis because it needs no proposal: a uniform proposal among 21
//! letters is mostly refused where the conditional is peaked (a conserved column), while
//! the conditional costs q exponentials and is always an exact draw.
//!
//! # Kept quantities and their memory access
//!
//! The chain keeps every f_i(·) and E(s). When site j moves from b to b', every other site's
//! field moves by f_i(·) += J_ij(·, b') − J_ij(·, b). As a function of the first letter that
//! is a *column* of the (i, j) block of [`PottsModel`]'s couplings (stride q), but
//! J_ij(·, b) = J_ji(b, ·) is the *row* b of the (j, i) block: q contiguous numbers. The
//! blocks (j, 0), (j, 1), … follow each other in memory, so one move streams through the
//! slab of site j (n·q² numbers, reading two rows of q from each block) front to back. So
//! [`PottsModel`]'s layout already makes the update contiguous row by row (a packed
//! triangle would make half of these reads strided); "Cost" below names one that does
//! better still.
//!
//! The energy moves by ΔE = f_j(b) − f_j(b'), read off the kept fields.
//!
//! # Cost, and when the kept fields pay
//!
//! By operation count a change costs about 2nq reads and nq read-modify-writes, and
//! recomputing f_i(·) from scratch at every update nq reads (one row J_ji(s_j, ·) per
//! neighbour): unlike Ising Metropolis, where the kept field turns an O(degree) proposal
//! into O(1), the kept fields save work only when updates often leave the site as it was.
//! At protein sizes the access pattern decides instead: the couplings (n²q² numbers, 35 MB
//! at n = 100, q = 21) do not stay in cache, and a change streams through one slab while a
//! recomputation gathers one row from each of n slabs spread over the whole model.
//! `benches/potts.rs` (n = 100, q = 21, dense) measured the kept fields 1.5–2× faster than
//! recomputing from contiguous rows at β = 1, where 81% of updates change the site, and
//! 4–5× at β = 3 (19%); they also give the energy at every step for free, which tempering
//! swaps and the estimators need. The same bench shows a site-major layout, J_ji(b, ·) for
//! all i contiguous, making a change read two vectors of nq numbers, 1.8–2.4× faster again at
//! β = 1: a possible layout for [`PottsModel`].
//!
//! # Determinism
//!
//! One uniform per update from the generator handed in, taustar's IEEE-pure [`exp_nonpos`]
//! for the weights, sums in a fixed order: a chain is bit-identical on every machine.

use rand::Rng;

use super::error::PottsError;
use super::params::PottsModel;
use crate::exact::exp_nonpos;

/// Largest drift [`PottsChain::resync`] tolerates (in debug builds it asserts it) between a
/// kept value and the one recomputed from scratch, relative to the magnitude of the terms
/// that value sums (at least 1). Round-off of incremental updates grows like √(updates) ulps:
/// 1e-9 is out of reach of any run (it would take ~10^14 updates), so a larger drift means
/// an update rule is wrong, not that the run was long.
pub const RESYNC_TOLERANCE: f64 = 1e-9;

/// One Markov chain of a Potts model at inverse temperature β.
#[derive(Debug, Clone)]
pub struct PottsChain<'m> {
    /// The chain holds its model: the kept fields are only meaningful for that one, so a
    /// call cannot pass another.
    model: &'m PottsModel,
    beta: f64,
    /// s_i ∈ [0, q).
    state: Vec<u8>,
    /// f_i(a) = h_i(a) + Σ_{j≠i} J_ij(a, s_j) at `i·q + a`.
    local: Vec<f64>,
    /// E(s), kept incrementally (see [`PottsChain::resync`]).
    energy: f64,
    /// The q conditional weights of the site being updated (scratch, kept to avoid an
    /// allocation per update).
    weights: Vec<f64>,
    updates: u64,
    changes: u64,
}

impl<'m> PottsChain<'m> {
    /// A chain of `model` at `beta` starting from `state` (one state below q per site).
    ///
    /// Errors when β is not finite or `state` does not fit the model: a starting sequence
    /// may come from a user's alignment.
    pub fn new(model: &'m PottsModel, beta: f64, state: Vec<u8>) -> Result<PottsChain<'m>, PottsError> {
        let (n, q) = (model.n(), model.q());
        check_beta(beta)?;
        if state.len() != n {
            return Err(PottsError::setting(
                "starting state",
                format!("{} sites", state.len()),
                format!("the model has {n} sites"),
            ));
        }
        if let Some((i, &a)) = state.iter().enumerate().find(|&(_, &a)| a as usize >= q) {
            return Err(PottsError::setting(
                "starting state",
                format!("state {a} at site {i}"),
                format!("states are 0..{q}"),
            ));
        }
        let (local, _) = fresh_local_fields(model, &state);
        let energy = model.energy(&state);
        Ok(PottsChain { model, beta, state, local, energy, weights: vec![0.0; q], updates: 0, changes: 0 })
    }

    /// A chain of `model` at `beta` from a uniformly random state (β = 0's equilibrium).
    ///
    /// Errors when β is not finite (checked before anything is drawn).
    pub fn random<R: Rng + ?Sized>(
        model: &'m PottsModel,
        beta: f64,
        rng: &mut R,
    ) -> Result<PottsChain<'m>, PottsError> {
        check_beta(beta)?;
        let q = model.q();
        let state = (0..model.n()).map(|_| rng.random_range(0..q) as u8).collect();
        PottsChain::new(model, beta, state)
    }

    /// The model the chain samples.
    pub fn model(&self) -> &'m PottsModel {
        self.model
    }

    /// β.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// Move the chain to another β, keeping its state (a tempering swap exchanges states
    /// between rungs whose temperatures stay put). Panics when β is not finite: ladders are
    /// checked where they are built.
    pub fn set_beta(&mut self, beta: f64) {
        assert!(beta.is_finite(), "a chain's β must be finite, not {beta}");
        self.beta = beta;
    }

    /// The current state, s_i at index i.
    pub fn state(&self) -> &[u8] {
        &self.state
    }

    /// E(s) of the current state.
    pub fn energy(&self) -> f64 {
        self.energy
    }

    /// The kept local fields, f_i(a) = h_i(a) + Σ_{j≠i} J_ij(a, s_j) at `i·q + a`.
    pub fn local_fields(&self) -> &[f64] {
        &self.local
    }

    /// Share of the single-site updates so far that changed the site's state (the analogue
    /// of an acceptance rate; NaN before any update). It says what the kept fields save:
    /// an update that keeps the state costs no field update at all.
    pub fn change_rate(&self) -> f64 {
        if self.updates == 0 {
            return f64::NAN;
        }
        self.changes as f64 / self.updates as f64
    }

    /// Put site j in state `a` unconditionally, updating the local fields and the energy;
    /// returns ΔE. Panics when j or a is out of range (a caller's indexing error).
    pub fn set_site(&mut self, j: usize, a: u8) -> f64 {
        let (n, q) = (self.model.n(), self.model.q());
        assert!(j < n && (a as usize) < q, "site {j} state {a} of a model with n = {n}, q = {q}");
        let old = self.state[j] as usize;
        let new = a as usize;
        if old == new {
            return 0.0;
        }
        let delta = self.local[j * q + old] - self.local[j * q + new];
        // Copy the reference so the slab borrows the model, not `self`.
        let model = self.model;
        let qq = q * q;
        // Blocks (j, 0), (j, 1), …, (j, n−1): the contiguous slab of site j (module docs).
        let slab = &model.couplings()[j * n * qq..(j + 1) * n * qq];
        for (i, (f, block)) in self.local.chunks_exact_mut(q).zip(slab.chunks_exact(qq)).enumerate() {
            if i == j {
                continue;
            }
            // Rows J_ji(b', ·) and J_ji(b, ·), i.e. J_ij(·, b') and J_ij(·, b).
            let row_new = &block[new * q..(new + 1) * q];
            let row_old = &block[old * q..(old + 1) * q];
            for ((x, &jn), &jo) in f.iter_mut().zip(row_new).zip(row_old) {
                *x += jn - jo;
            }
        }
        self.state[j] = a;
        self.energy += delta;
        delta
    }

    /// One heat-bath update of site i: draw s_i from p(a) ∝ exp(β f_i(a)) by the inverse CDF
    /// of one uniform. Returns whether the state changed. Panics when i is not a site.
    #[inline]
    pub fn update_site<R: Rng + ?Sized>(&mut self, i: usize, rng: &mut R) -> bool {
        let q = self.weights.len();
        let drawn = draw_heat_bath(&self.local[i * q..(i + 1) * q], self.beta, &mut self.weights, rng);
        self.updates += 1;
        if drawn == self.state[i] {
            return false;
        }
        self.changes += 1;
        self.set_site(i, drawn);
        true
    }

    /// One sweep: a heat-bath update of every site in order (sequential sweeps keep the
    /// Boltzmann law stationary, as each update does).
    pub fn sweep<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        for i in 0..self.state.len() {
            self.update_site(i, rng);
        }
    }

    /// Recompute the local fields and the energy from scratch and keep them, returning how
    /// far the kept values had drifted: the largest |kept − fresh| / max(1, Σ|terms|) over
    /// the energy and every f_i(a), where Σ|terms| is the sum of the magnitudes of the
    /// fields and couplings that value adds up (so cancelling large terms are judged at
    /// their own scale). In debug builds, asserts the drift is below [`RESYNC_TOLERANCE`]
    /// (a larger one is a wrong update rule, not round-off).
    pub fn resync(&mut self) -> f64 {
        let q = self.model.q();
        let (local, scale) = fresh_local_fields(self.model, &self.state);
        let mut drift: f64 = 0.0;
        for ((&kept, &fresh), &s) in self.local.iter().zip(&local).zip(&scale) {
            drift = drift.max((kept - fresh).abs() / s.max(1.0));
        }
        let energy = self.model.energy(&self.state);
        // Every term of E appears in some f_i(s_i): their magnitudes bound E's.
        let energy_scale: f64 = self.state.iter().enumerate().map(|(i, &a)| scale[i * q + a as usize]).sum();
        drift = drift.max((self.energy - energy).abs() / energy_scale.max(1.0));
        debug_assert!(
            drift <= RESYNC_TOLERANCE,
            "kept local fields or energy drifted by {drift:e} (relative) from a recomputation"
        );
        self.local = local;
        self.energy = energy;
        drift
    }
}

fn check_beta(beta: f64) -> Result<(), PottsError> {
    if beta.is_finite() {
        Ok(())
    } else {
        Err(PottsError::setting("beta", beta, "need a finite inverse temperature"))
    }
}

/// A draw from p(a) ∝ exp(β f(a)), a ∈ [0, q), using one uniform of `rng`; `weights` (q
/// long) is scratch.
///
/// The weights are exp_nonpos(βf(a) − max_b βf(b)) ≤ 1, one of them exactly 1, so nothing
/// overflows at any β; they are summed in order and the first state whose running sum
/// exceeds u·Σw is chosen (the same additions, so the last running sum is Σw exactly).
/// Public so that other samplers (and the benchmark's from-scratch baseline) draw exactly
/// as the chain does. Panics unless `f` and `weights` have the same length, 1 to 256.
#[inline]
pub fn draw_heat_bath<R: Rng + ?Sized>(f: &[f64], beta: f64, weights: &mut [f64], rng: &mut R) -> u8 {
    assert!(
        f.len() == weights.len() && (1..=256).contains(&f.len()),
        "{} fields and {} weights: one of each per state, 1 to 256 states",
        f.len(),
        weights.len()
    );
    let top = f.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(beta * x));
    let mut total = 0.0;
    for (w, &x) in weights.iter_mut().zip(f) {
        *w = exp_nonpos(beta * x - top);
        total += *w;
    }
    let u = rng.random::<f64>() * total;
    let mut cumulative = 0.0;
    // u < 1 but u·Σw may round up to Σw itself (probability ~2^-53): then the last state
    // with a positive weight is the one the inverse CDF means. A zero-weight state is never
    // chosen: the running sum does not grow there.
    let mut last_positive = 0;
    for (a, &w) in weights.iter().enumerate() {
        cumulative += w;
        if u < cumulative {
            return a as u8;
        }
        if w > 0.0 {
            last_positive = a;
        }
    }
    last_positive as u8
}

/// f_i(a) = h_i(a) + Σ_{j≠i} J_ij(a, s_j) for every i and a, and beside each the sum of the
/// magnitudes of its terms (the scale [`PottsChain::resync`] judges drift by).
fn fresh_local_fields(model: &PottsModel, state: &[u8]) -> (Vec<f64>, Vec<f64>) {
    let (n, q) = (model.n(), model.q());
    let mut local = model.fields().to_vec();
    let mut scale: Vec<f64> = local.iter().map(|h| h.abs()).collect();
    for (j, &b) in state.iter().enumerate() {
        for i in (0..n).filter(|&i| i != j) {
            // J_ij(·, s_j) = J_ji(s_j, ·): a contiguous row (module docs).
            let row = model.coupling_row(j, i, b as usize);
            for ((f, s), &c) in
                local[i * q..(i + 1) * q].iter_mut().zip(&mut scale[i * q..(i + 1) * q]).zip(row)
            {
                *f += c;
                *s += c.abs();
            }
        }
    }
    (local, scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Fields and couplings from a fixed pattern, every one nonzero.
    fn patterned(n: usize, q: usize) -> PottsModel {
        let mut m = PottsModel::zeros(n, q).unwrap();
        for i in 0..n {
            for a in 0..q {
                m.set_field(i, a, ((i * q + a) as f64 * 0.7).sin());
                for j in i + 1..n {
                    for b in 0..q {
                        m.set_coupling(i, j, a, b, (((i * n + j) * q + a * q + b) as f64 * 1.3).cos() * 0.4);
                    }
                }
            }
        }
        m
    }

    #[test]
    fn set_site_keeps_the_fields_and_energy_of_the_new_state() {
        let m = patterned(5, 4);
        let mut c = PottsChain::new(&m, 1.0, vec![0, 1, 2, 3, 0]).unwrap();
        let e0 = c.energy();
        let delta = c.set_site(2, 1);
        assert!((c.energy() - m.energy(&[0, 1, 1, 3, 0])).abs() < 1e-12);
        assert!((e0 + delta - c.energy()).abs() < 1e-15);
        let (fresh, _) = fresh_local_fields(&m, c.state());
        assert!(c.local_fields().iter().zip(&fresh).all(|(a, b)| (a - b).abs() < 1e-12));
        assert_eq!(c.set_site(2, 1), 0.0, "staying put changes nothing");
        assert!(c.resync() < 1e-12);
    }

    /// One site and no couplings: every update is an independent draw from
    /// p(a) ∝ e^{β h(a)}, checked letter by letter within 5 binomial standard deviations.
    #[test]
    fn a_lone_site_draws_its_boltzmann_law() {
        let mut m = PottsModel::zeros(1, 5).unwrap();
        let h = [0.3, -1.0, 0.0, 2.0, -30.0];
        for (a, &v) in h.iter().enumerate() {
            m.set_field(0, a, v);
        }
        let beta = 0.8;
        let z: f64 = h.iter().map(|&v| (beta * v).exp()).sum();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut c = PottsChain::random(&m, beta, &mut rng).unwrap();
        let draws = 200_000;
        let mut counts = [0u32; 5];
        for _ in 0..draws {
            c.sweep(&mut rng);
            counts[c.state()[0] as usize] += 1;
        }
        for (a, &k) in counts.iter().enumerate() {
            let p = (beta * h[a]).exp() / z;
            let sd = (draws as f64 * p * (1.0 - p)).sqrt();
            assert!((f64::from(k) - draws as f64 * p).abs() < 5.0 * sd + 1.0, "letter {a}: {k} vs p = {p}");
        }
        assert!((c.energy() + h[c.state()[0] as usize]).abs() < 1e-10);
    }

    #[test]
    fn starting_states_and_temperatures_outside_the_model_are_errors() {
        let m = patterned(3, 4);
        for (beta, state) in [(1.0, vec![0, 1]), (1.0, vec![0, 1, 4]), (f64::NAN, vec![0, 1, 2])] {
            let e = PottsChain::new(&m, beta, state.clone()).unwrap_err();
            assert!(matches!(e, PottsError::Setting { .. }), "{beta} {state:?}: {e}");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(PottsChain::random(&m, f64::INFINITY, &mut rng).is_err());
        assert!(PottsChain::new(&m, -0.5, vec![3, 3, 3]).is_ok(), "any finite β is a law");
    }

    /// The inverse CDF never picks a state of weight zero, even when u·Σw rounds up to Σw.
    #[test]
    fn the_draw_never_returns_a_zero_weight_state() {
        /// A generator whose every f64 is the largest below 1.
        struct Top;
        impl rand::RngCore for Top {
            fn next_u32(&mut self) -> u32 {
                u32::MAX
            }
            fn next_u64(&mut self) -> u64 {
                u64::MAX
            }
            fn fill_bytes(&mut self, dst: &mut [u8]) {
                dst.fill(0xff);
            }
        }
        let mut w = [0.0; 4];
        // exp(−800) underflows to a weight of exactly zero in the last state.
        assert_eq!(draw_heat_bath(&[0.1, 0.7, 0.3, -800.0], 1.0, &mut w, &mut Top), 2);
        assert_eq!(w[3], 0.0);
        assert_eq!(draw_heat_bath(&[-800.0, 0.0], 1.0, &mut w[..2], &mut Top), 1);
    }
}
