//! Training data from Markov chains of the truth (docs/spec.md §10): for lattices past
//! enumeration, the M samples a cell fits come from an equilibrated chain of the
//! nearest-neighbour torus, thinned so that kept samples are effectively independent.
//!
//! One step is a Metropolis sweep and a Wolff move (near and below T_c single flips alone
//! decorrelate too slowly). After a burn-in, a pilot run measures the integrated
//! autocorrelation time τ_int (in steps) of the energy and of |magnetisation| by Sokal's
//! window; kept samples are then ⌈2 τ_int⌉ steps apart, the spacing at which a series'
//! samples count as independent for its variance. Everything comes from the generator it is
//! handed (the cell's), so the data are a function of the cell key.

use rand::Rng;

use super::chain::Chain;
use super::cluster::{wolff_step, WolffScratch};
use super::model::SpinModel;
use super::stats::autocorrelation;

/// M configurations of the truth and how they were drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSamples {
    /// Spins, sample by sample: `spins[m·n + i]` is σ_i of sample m.
    pub spins: Vec<i8>,
    /// Spins per sample.
    pub n: usize,
    /// τ_int of the pilot run, in steps (the larger of energy's and |m|'s).
    pub tau_int: f64,
    /// Steps between kept samples.
    pub thinning: u32,
    /// Whether the pilot's τ_int window converged (if not, `thinning` is a lower bound of
    /// what independence needs).
    pub converged: bool,
}

/// Steps discarded before the pilot.
const BURN_IN: usize = 500;
/// Pilot steps, first and most.
const PILOT: usize = 2_000;
const MAX_PILOT: usize = 32_000;

/// `m` samples of `model` at β = 1 (the truth with its temperature folded in), which must
/// allow Wolff moves (no field, non-negative couplings).
pub fn sample_chain<R: Rng>(model: &SpinModel, m: usize, rng: &mut R) -> ChainSamples {
    assert!(model.is_ferromagnetic_without_field(), "the truth chain uses Wolff moves");
    let n = model.len();
    let mut chain = Chain::random(model, 1.0, rng);
    let mut scratch = WolffScratch::default();
    let mut step = |chain: &mut Chain, rng: &mut R| {
        chain.sweep(model, rng);
        wolff_step(chain, model, rng, &mut scratch);
    };
    for _ in 0..BURN_IN {
        step(&mut chain, rng);
    }
    // Pilot: lengthen until both windows converge (or the cap).
    let mut pilot = PILOT;
    let (mut tau_int, mut converged);
    loop {
        let (mut e, mut mag) = (Vec::with_capacity(pilot), Vec::with_capacity(pilot));
        for _ in 0..pilot {
            step(&mut chain, rng);
            e.push(chain.energy());
            mag.push(chain.magnetisation().abs());
        }
        let (a, b) = (autocorrelation(&e), autocorrelation(&mag));
        tau_int = a.tau_int.max(b.tau_int);
        converged = a.converged && b.converged;
        if converged || pilot >= MAX_PILOT {
            break;
        }
        pilot *= 2;
    }
    let thinning = (2.0 * tau_int).ceil().max(1.0) as u32;
    let mut spins = Vec::with_capacity(m * n);
    for _ in 0..m {
        for _ in 0..thinning {
            step(&mut chain, rng);
        }
        spins.extend_from_slice(chain.spins());
    }
    ChainSamples { spins, n, tau_int, thinning, converged }
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
        assert_eq!(a.spins.len(), 4_000 * 64);
        assert!(a.converged && a.thinning >= 1 && a.thinning as f64 >= 2.0 * a.tau_int);
        let energies: Vec<f64> = a.spins.chunks_exact(64).map(|s| model.energy(s)).collect();
        let want = -crate::model::kaufman::mean_log_weight(l, l, t).unwrap();
        let est = super::super::stats::estimate(&energies);
        // Thinned samples: nearly independent, so τ_int of the kept series is ~0.5.
        assert!(est.autocorrelation.tau_int < 1.5, "{:?}", est.autocorrelation);
        let z = (est.mean - want) / est.se;
        assert!(z.abs() < 4.0, "⟨E⟩ {} ± {} vs Kaufman {want}", est.mean, est.se);
    }
}
