//! Parallel tempering (replica exchange) over a ladder of β, and the ladder's placement.
//!
//! One chain per rung, updated by heat-bath sweeps (which, unlike Metropolis, mix at β = 0);
//! after every sweep of all rungs, neighbouring rungs k, k+1 (even pairs
//! on even steps, odd pairs on odd steps) swap configurations with probability
//! min(1, exp((β_{k+1} − β_k)(E_{k+1} − E_k))), which keeps every rung at its own q_β. A
//! configuration that is stuck at a large β escapes by walking down the ladder, through
//! β = 0 where it decorrelates at once. What to watch (docs/spec.md §10): the smallest
//! neighbour swap acceptance (a gap in the ladder cuts the walk) and the number of round
//! trips β = 0 → β_max → β = 0 (few round trips: the rungs are not mixing).

use rand::Rng;

use super::replica::{Ensemble, Replica};
use super::stats::mean_var;
use crate::exact::exp_nonpos;

/// Swap acceptance the ladder placement aims at.
pub const TARGET_SWAP_ACCEPTANCE: f64 = 0.25;

/// β spacing that gives [`TARGET_SWAP_ACCEPTANCE`] between two rungs whose energies are
/// Gaussian with standard deviation σ: acceptance ≈ erfc(Δβσ/2), and erfc(0.8134) = 0.25.
const SPACING_TIMES_SIGMA: f64 = 2.0 * 0.8134;

/// Rounds of splitting the gaps a trial run finds too wide.
const REFINE_ROUNDS: usize = 3;

/// Most rungs a placement may use before it gives up (a ladder that long means the model's
/// energy fluctuations are huge; the caller's budget decides).
pub const MAX_RUNGS: usize = 400;

/// Place a ladder from β = 0 to `beta_max` (both included) for `model`: at each rung a
/// short pilot chain (`pilot_sweeps` sweeps after as many to settle, continuing from the
/// previous state) measures σ_E(β), a second one σ_E at the predicted next rung, and the
/// next rung is Δβ = 1.63/σ̄ further (σ̄ their mean), which aims every neighbour swap at
/// acceptance 0.25. Then a trial run of the ladder splits every gap that swaps below 0.125
/// (up to three rounds). Returns `None` past [`MAX_RUNGS`].
pub fn place_ladder<E: Ensemble + ?Sized, R: Rng>(
    model: &E,
    beta_max: f64,
    pilot_sweeps: usize,
    rng: &mut R,
) -> Option<Vec<f64>> {
    assert!(beta_max > 0.0 && pilot_sweeps >= 10, "a ladder needs β_max > 0 and a pilot of ≥ 10 sweeps");
    let mut betas = vec![0.0];
    // The pilots move like the production run (the ensemble's sweeps: with Wolff moves
    // wherever they are valid for spins). Near a critical point single flips alone
    // equilibrate too slowly for a 100-sweep pilot, which then sees too small a σ_E and
    // leaves gaps that no swap crosses.
    let mut chain = model.random_chain(0.0, rng);
    let mut energies = Vec::with_capacity(pilot_sweeps);
    // σ_E at β from a pilot continuing the chain's state.
    let mut sigma_at = |chain: &mut E::Chain<'_>, beta: f64, rng: &mut R| {
        chain.set_beta(beta);
        energies.clear();
        for s in 0..2 * pilot_sweeps {
            chain.sweep(rng);
            if s >= pilot_sweeps {
                energies.push(chain.energy());
            }
        }
        mean_var(&energies).1.sqrt()
    };
    while *betas.last()? < beta_max {
        if betas.len() >= MAX_RUNGS {
            return None;
        }
        let beta = *betas.last()?;
        // Predict with σ_E here, correct with σ_E at the predicted rung: where σ_E grows
        // (towards a heat-capacity peak) one end's σ alone overshoots.
        let sigma_here = sigma_at(&mut chain, beta, rng);
        // A frozen pilot (σ = 0) says nothing about the spacing: step to the end.
        if sigma_here == 0.0 {
            betas.push(beta_max);
            continue;
        }
        let predicted = (beta + SPACING_TIMES_SIGMA / sigma_here).min(beta_max);
        let sigma_there = sigma_at(&mut chain, predicted, rng);
        let sigma = 0.5 * (sigma_here + sigma_there.max(sigma_here * 0.5));
        betas.push((beta + SPACING_TIMES_SIGMA / sigma).min(beta_max));
    }
    // The Gaussian rule misjudges small systems (few, discrete energy levels): run the
    // ladder briefly and split every gap that swaps less than half the target.
    for _ in 0..REFINE_ROUNDS {
        let mut pt = Tempering::new(model, betas.clone(), rng);
        for _ in 0..4 * pilot_sweeps {
            pt.step(rng);
        }
        let acc = pt.swap_acceptance();
        if acc.iter().all(|&a| a >= TARGET_SWAP_ACCEPTANCE / 2.0) {
            break;
        }
        let mut refined = vec![betas[0]];
        for (k, &a) in acc.iter().enumerate() {
            if a < TARGET_SWAP_ACCEPTANCE / 2.0 {
                refined.push(0.5 * (betas[k] + betas[k + 1]));
            }
            refined.push(betas[k + 1]);
        }
        if refined.len() > MAX_RUNGS {
            return None;
        }
        betas = refined;
    }
    Some(betas)
}

/// Parallel tempering state: rung k holds a chain at `betas[k]`.
#[derive(Debug)]
pub struct Tempering<C> {
    betas: Vec<f64>,
    rungs: Vec<C>,
    /// The walker (configuration identity) at each rung.
    walker_at: Vec<usize>,
    /// Per walker: +1 heading up (last extreme seen: β = 0), −1 heading down, 0 neither yet.
    heading: Vec<i8>,
    round_trips: u64,
    attempts: Vec<u64>,
    accepts: Vec<u64>,
    steps: u64,
}

/// Per-rung energies of one step, for MBAR: `energy[k]` is E of the configuration at rung k
/// and `observable[k]` the caller's function of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RungSample {
    /// E(σ) under the sampled model.
    pub energy: f64,
    /// The observable of the configuration (e.g. the truth's energy E_p(σ)).
    pub observable: f64,
}

impl<C: Replica> Tempering<C> {
    /// Random starting configurations of `model` on `betas` (ascending, starting at 0).
    pub fn new<'a, E, R>(model: &'a E, betas: Vec<f64>, rng: &mut R) -> Tempering<C>
    where
        E: Ensemble<Chain<'a> = C> + ?Sized,
        R: Rng,
    {
        assert!(betas.len() >= 2 && betas[0] == 0.0, "a ladder starts at β = 0 and has ≥ 2 rungs");
        assert!(betas.windows(2).all(|w| w[0] < w[1]), "the ladder ascends");
        let k = betas.len();
        let rungs = betas.iter().map(|&b| model.random_chain(b, rng)).collect();
        Tempering {
            betas,
            rungs,
            walker_at: (0..k).collect(),
            heading: vec![0; k],
            round_trips: 0,
            attempts: vec![0; k - 1],
            accepts: vec![0; k - 1],
            steps: 0,
        }
    }

    /// The ladder.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// The chain at rung k.
    pub fn rung(&self, k: usize) -> &C {
        &self.rungs[k]
    }

    /// One step: a sweep at every rung, then one round of swaps.
    pub fn step<R: Rng>(&mut self, rng: &mut R) {
        for chain in &mut self.rungs {
            chain.sweep(rng);
        }
        let first = (self.steps % 2) as usize;
        for k in (first..self.betas.len() - 1).step_by(2) {
            self.attempts[k] += 1;
            let log_ratio =
                (self.betas[k + 1] - self.betas[k]) * (self.rungs[k + 1].energy() - self.rungs[k].energy());
            if log_ratio >= 0.0 || rng.random::<f64>() < exp_nonpos(log_ratio) {
                self.accepts[k] += 1;
                self.rungs.swap(k, k + 1);
                // Configurations move; temperatures stay with the rungs.
                self.rungs[k].set_beta(self.betas[k]);
                self.rungs[k + 1].set_beta(self.betas[k + 1]);
                self.walker_at.swap(k, k + 1);
            }
        }
        let top = self.betas.len() - 1;
        let (bottom_walker, top_walker) = (self.walker_at[0], self.walker_at[top]);
        if self.heading[bottom_walker] == -1 {
            self.round_trips += 1;
        }
        self.heading[bottom_walker] = 1;
        self.heading[top_walker] = -1;
        self.steps += 1;
    }

    /// The energy and `observable` of the configuration at every rung.
    pub fn sample(&self, observable: &dyn Fn(&C::Config) -> f64) -> Vec<RungSample> {
        self.rungs
            .iter()
            .map(|c| RungSample { energy: c.energy(), observable: observable(c.config()) })
            .collect()
    }

    /// Swap acceptance of each neighbouring pair of rungs so far.
    pub fn swap_acceptance(&self) -> Vec<f64> {
        self.accepts
            .iter()
            .zip(&self.attempts)
            .map(|(&a, &n)| if n == 0 { f64::NAN } else { a as f64 / n as f64 })
            .collect()
    }

    /// Completed round trips β = 0 → β_max → β = 0 of any walker.
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::SpinModel;
    use super::super::replica::SpinEnsemble;
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_placed_ladder_swaps_near_its_target_and_walkers_make_round_trips() {
        let model = SpinModel::torus(8, 8, 1.0);
        for seed in 0..6 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let betas = place_ladder(&SpinEnsemble::new(&model), 1.0 / 1.5, 200, &mut rng).unwrap();
            assert!(betas.len() >= 4 && betas.len() < 40, "{betas:?}");
            assert_eq!(*betas.last().unwrap(), 1.0 / 1.5);
            let mut pt = Tempering::new(&SpinEnsemble::with_cluster(&model, false), betas, &mut rng);
            for _ in 0..4000 {
                pt.step(&mut rng);
            }
            let acc = pt.swap_acceptance();
            // Aimed at 0.25; the last gap is clipped at β_max, so it may be easier.
            let min = acc.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(min > 0.12 && acc[..acc.len() - 1].iter().all(|&a| a < 0.5), "seed {seed}: {acc:?}");
            assert!(pt.round_trips() >= 5, "seed {seed}: {} round trips", pt.round_trips());
            // Every rung still holds a chain at its own β with a consistent energy.
            for (k, &b) in pt.betas().iter().enumerate() {
                assert_eq!(pt.rung(k).beta(), b);
                assert!((pt.rung(k).energy() - model.energy(pt.rung(k).config())).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn a_ladder_with_a_gap_shows_it_in_its_smallest_acceptance() {
        let model = SpinModel::torus(8, 8, 1.0);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut pt =
            Tempering::new(&SpinEnsemble::with_cluster(&model, false), vec![0.0, 0.05, 0.1, 0.9], &mut rng);
        for _ in 0..2000 {
            pt.step(&mut rng);
        }
        let acc = pt.swap_acceptance();
        assert!(acc[2] < 0.01, "0.1 → 0.9 on 64 spins cannot swap: {acc:?}");
        assert_eq!(pt.round_trips(), 0);
    }
}
