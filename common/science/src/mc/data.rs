//! Training data from Markov chains of the truth (docs/spec.md §10): past enumeration, the M
//! samples a cell fits come from an equilibrated chain of the truth, thinned so that kept
//! samples are effectively independent. One sampler, [`draw_thinned`], serves every truth;
//! what differs is the chain's step and what its pilot watches ([`TruthChain`]):
//! - the nearest-neighbour torus (Ising): a Metropolis sweep and a Wolff move per step (near
//!   and below T_c single flips alone decorrelate too slowly); the pilot watches the energy
//!   and |magnetisation|;
//! - a Potts model: a heat-bath sweep per step; the pilot watches the energy.
//!
//! After a burn-in, a pilot run measures the integrated autocorrelation time τ_int (in steps)
//! of each watched series by Sokal's window, lengthened until every window converges; kept
//! samples are then ⌈2 τ_int⌉ steps apart (the largest τ_int), the spacing at which a series'
//! samples count as independent for its variance. Everything comes from the generator it is
//! handed (the cell's), so the data are a function of the cell key.

use rand::Rng;

use super::chain::Chain;
use super::cluster::{wolff_step, WolffScratch};
use super::model::SpinModel;
use super::stats::autocorrelation;
use crate::potts::chain::PottsChain;
use crate::potts::error::PottsError;
use crate::potts::params::PottsModel;

/// A Markov chain of a truth at β = 1, as the training-data sampler and the truth-side
/// series ([`super::truth`]) drive it.
pub trait TruthChain {
    /// One site's value (a spin, a Potts state).
    type Site: Copy;
    /// One step of the chain.
    fn step<R: Rng>(&mut self, rng: &mut R);
    /// The configuration now.
    fn state(&self) -> &[Self::Site];
    /// The series the pilot measures τ_int on, at the current configuration, in a fixed order.
    fn watched(&self) -> Vec<f64>;
}

/// The torus truth's chain: a Metropolis sweep and a Wolff move per step.
pub struct TorusChain<'m> {
    model: &'m SpinModel,
    chain: Chain,
    scratch: WolffScratch,
}

impl<'m> TorusChain<'m> {
    /// A chain of `model` at β = 1 from a random state; `model` must allow Wolff moves (no
    /// field, non-negative couplings).
    pub fn random<R: Rng>(model: &'m SpinModel, rng: &mut R) -> TorusChain<'m> {
        assert!(model.is_ferromagnetic_without_field(), "the truth chain uses Wolff moves");
        TorusChain { model, chain: Chain::random(model, 1.0, rng), scratch: WolffScratch::default() }
    }
}

impl TruthChain for TorusChain<'_> {
    type Site = i8;
    fn step<R: Rng>(&mut self, rng: &mut R) {
        self.chain.sweep(self.model, rng);
        wolff_step(&mut self.chain, self.model, rng, &mut self.scratch);
    }
    fn state(&self) -> &[i8] {
        self.chain.spins()
    }
    fn watched(&self) -> Vec<f64> {
        vec![self.chain.energy(), self.chain.magnetisation().abs()]
    }
}

impl TruthChain for PottsChain<'_> {
    type Site = u8;
    fn step<R: Rng>(&mut self, rng: &mut R) {
        self.sweep(rng);
    }
    fn state(&self) -> &[u8] {
        PottsChain::state(self)
    }
    fn watched(&self) -> Vec<f64> {
        vec![self.energy()]
    }
}

/// M configurations of the truth and how they were drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSamples<T> {
    /// Configurations, sample by sample: `states[m·n + i]` is site i of sample m.
    pub states: Vec<T>,
    /// Sites per sample.
    pub n: usize,
    /// τ_int of the pilot run, in steps (the largest of the watched series').
    pub tau_int: f64,
    /// Steps between kept samples.
    pub thinning: u32,
    /// Whether every pilot window converged (if not, `thinning` is a lower bound of what
    /// independence needs).
    pub converged: bool,
}

/// Steps discarded before the pilot.
const BURN_IN: usize = 500;
/// Pilot steps, first and most.
const PILOT: usize = 2_000;
const MAX_PILOT: usize = 32_000;

/// `m` samples from `chain` (module docs): burn-in, pilot, then one kept configuration every
/// ⌈2 τ_int⌉ steps.
pub fn draw_thinned<C: TruthChain, R: Rng>(chain: &mut C, m: usize, rng: &mut R) -> ChainSamples<C::Site> {
    for _ in 0..BURN_IN {
        chain.step(rng);
    }
    // Pilot: lengthen until every window converges (or the cap).
    let mut pilot = PILOT;
    let (mut tau_int, mut converged);
    loop {
        let mut series: Vec<Vec<f64>> = Vec::new();
        for _ in 0..pilot {
            chain.step(rng);
            let w = chain.watched();
            series.resize_with(w.len(), || Vec::with_capacity(pilot));
            for (s, x) in series.iter_mut().zip(w) {
                s.push(x);
            }
        }
        let acfs: Vec<_> = series.iter().map(|s| autocorrelation(s)).collect();
        tau_int = acfs.iter().map(|a| a.tau_int).reduce(f64::max).unwrap_or(0.5);
        converged = acfs.iter().all(|a| a.converged);
        if converged || pilot >= MAX_PILOT {
            break;
        }
        pilot *= 2;
    }
    let thinning = (2.0 * tau_int).ceil().max(1.0) as u32;
    let n = chain.state().len();
    let mut states = Vec::with_capacity(m * n);
    for _ in 0..m {
        for _ in 0..thinning {
            chain.step(rng);
        }
        states.extend_from_slice(chain.state());
    }
    ChainSamples { states, n, tau_int, thinning, converged }
}

/// `m` samples of `model` at β = 1 (the torus truth with its temperature folded in), which
/// must allow Wolff moves (no field, non-negative couplings).
pub fn sample_chain<R: Rng>(model: &SpinModel, m: usize, rng: &mut R) -> ChainSamples<i8> {
    draw_thinned(&mut TorusChain::random(model, rng), m, rng)
}

/// `m` sequences of a Potts `model` at β = 1 from one heat-bath chain started at a uniformly
/// random sequence.
pub fn sample_sequences<R: Rng>(
    model: &PottsModel,
    m: usize,
    rng: &mut R,
) -> Result<ChainSamples<u8>, PottsError> {
    let mut chain = PottsChain::random(model, 1.0, rng)?;
    Ok(draw_thinned(&mut chain, m, rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn samples_are_deterministic_thinned_and_unbiased_for_the_energy() {
        // 8×8 torus at T = 3 (above T_c): ⟨E⟩ per bond from Kaufman.
        let (l, t) = (8u32, 3.0);
        let model = SpinModel::torus(l, l, 1.0 / t);
        let draw = |seed| sample_chain(&model, 4_000, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let a = draw(1);
        assert_eq!(a, draw(1), "a function of the generator");
        assert_eq!(a.states.len(), 4_000 * 64);
        assert!(a.converged && a.thinning >= 1 && a.thinning as f64 >= 2.0 * a.tau_int);
        let energies: Vec<f64> = a.states.chunks_exact(64).map(|s| model.energy(s)).collect();
        let want = -crate::model::kaufman::mean_log_weight(l, l, t).unwrap();
        let est = super::super::stats::estimate(&energies);
        // Thinned samples: nearly independent, so τ_int of the kept series is ~0.5.
        assert!(est.autocorrelation.tau_int < 1.5, "{:?}", est.autocorrelation);
        let z = (est.mean - want) / est.se;
        assert!(z.abs() < 4.0, "⟨E⟩ {} ± {} vs Kaufman {want}", est.mean, est.se);
    }
}
