//! Single-site Metropolis sweeps with incrementally maintained local fields.
//!
//! Flipping spin i changes the energy by ΔE = 2 σ_i f_i, where f_i = h_i + Σ_j J_ij σ_j is
//! its local field; the chain keeps every f_i and E up to date on each accepted flip
//! (O(degree) work), so a proposal costs one lookup and, when ΔE > 0, one exponential —
//! taustar's IEEE-pure [`exp_nonpos`], so a chain is bit-identical on every machine.

use rand::Rng;

use super::model::SpinModel;
use crate::exact::exp_nonpos;

/// The state of one Markov chain at inverse temperature β.
#[derive(Debug, Clone)]
pub struct Chain {
    /// σ_i = ±1.
    spins: Vec<i8>,
    /// f_i = h_i + Σ_j J_ij σ_j.
    local: Vec<f64>,
    /// E(σ), kept incrementally (see [`Chain::resync`]).
    energy: f64,
    /// β.
    pub beta: f64,
    proposed: u64,
    accepted: u64,
}

impl Chain {
    /// A chain at `beta` starting from `spins`.
    pub fn new(model: &SpinModel, beta: f64, spins: Vec<i8>) -> Chain {
        assert_eq!(spins.len(), model.len(), "one spin per site");
        let local = model.local_fields(&spins);
        let energy = model.energy(&spins);
        Chain { spins, local, energy, beta, proposed: 0, accepted: 0 }
    }

    /// A chain at `beta` from a uniformly random configuration (β = 0's equilibrium).
    pub fn random<R: Rng>(model: &SpinModel, beta: f64, rng: &mut R) -> Chain {
        let spins = (0..model.len()).map(|_| if rng.random::<bool>() { 1 } else { -1 }).collect();
        Chain::new(model, beta, spins)
    }

    /// The spins.
    pub fn spins(&self) -> &[i8] {
        &self.spins
    }

    /// E(σ) of the current configuration.
    pub fn energy(&self) -> f64 {
        self.energy
    }

    /// Σ_i σ_i / N.
    pub fn magnetisation(&self) -> f64 {
        self.spins.iter().map(|&s| f64::from(s)).sum::<f64>() / self.spins.len() as f64
    }

    /// Accepted over proposed single-site moves so far.
    pub fn acceptance(&self) -> f64 {
        if self.proposed == 0 {
            return f64::NAN;
        }
        self.accepted as f64 / self.proposed as f64
    }

    /// ΔE of flipping spin i (nothing changes): 2 σ_i f_i. What a sampler that decides a
    /// flip from ΔE alone (the multicanonical one) needs before it calls [`Chain::flip`].
    #[inline]
    pub fn flip_delta(&self, i: usize) -> f64 {
        2.0 * f64::from(self.spins[i]) * self.local[i]
    }

    /// Flip spin i unconditionally, updating the local fields and the energy; returns ΔE.
    #[inline]
    pub fn flip(&mut self, model: &SpinModel, i: usize) -> f64 {
        let s = f64::from(self.spins[i]);
        let delta = 2.0 * s * self.local[i];
        match model.dense_row(i) {
            // (2s)·c = (2c)·s exactly (s = ±1, 2 a power of two), and a zero coupling
            // subtracts an exact 0: the same bits as the neighbour-list loop below.
            Some(row) => {
                let d = 2.0 * s;
                for (l, &c) in self.local.iter_mut().zip(row) {
                    *l -= d * c;
                }
            }
            None => {
                for &(j, c) in model.row(i) {
                    self.local[j as usize] -= 2.0 * c * s;
                }
            }
        }
        self.spins[i] = -self.spins[i];
        self.energy += delta;
        delta
    }

    /// One sweep: a Metropolis proposal at every site in order (sequential sweeps keep q_β
    /// stationary).
    pub fn sweep<R: Rng>(&mut self, model: &SpinModel, rng: &mut R) {
        for i in 0..self.spins.len() {
            let delta = 2.0 * f64::from(self.spins[i]) * self.local[i];
            let accept = delta <= 0.0 || rng.random::<f64>() < exp_nonpos(-self.beta * delta);
            self.proposed += 1;
            if accept {
                self.accepted += 1;
                self.flip(model, i);
            }
        }
    }

    /// One heat-bath sweep: every site in order takes its conditional law, flipping with
    /// probability 1/(1 + e^{βΔE}). Unlike Metropolis it mixes at β = 0 (where Metropolis
    /// flips every spin every sweep and the chain just alternates between two states), so
    /// the high-temperature rungs of a ladder use it.
    pub fn sweep_heat_bath<R: Rng>(&mut self, model: &SpinModel, rng: &mut R) {
        for i in 0..self.spins.len() {
            let x = self.beta * 2.0 * f64::from(self.spins[i]) * self.local[i];
            // 1/(1 + e^x), with the exponential's argument kept ≤ 0.
            let p_flip = if x >= 0.0 {
                let e = exp_nonpos(-x);
                e / (1.0 + e)
            } else {
                1.0 / (1.0 + exp_nonpos(x))
            };
            self.proposed += 1;
            if rng.random::<f64>() < p_flip {
                self.accepted += 1;
                self.flip(model, i);
            }
        }
    }

    /// Recompute the energy and local fields from scratch, returning how far the kept
    /// energy had drifted (round-off of many incremental updates).
    pub fn resync(&mut self, model: &SpinModel) -> f64 {
        let energy = model.energy(&self.spins);
        let drift = (energy - self.energy).abs();
        self.energy = energy;
        self.local = model.local_fields(&self.spins);
        drift
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_kept_energy_and_local_fields_follow_the_spins() {
        let pairs = crate::model::ising::Pairs::new(12);
        let j: Vec<f64> = (0..pairs.len()).map(|k| ((k as f64) * 1.3).sin() * 0.4).collect();
        let model = SpinModel::from_pairs(&pairs, &j);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut chain = Chain::random(&model, 0.8, &mut rng);
        for _ in 0..500 {
            chain.sweep(&model, &mut rng);
        }
        assert!((chain.energy() - model.energy(chain.spins())).abs() < 1e-9);
        let local = model.local_fields(chain.spins());
        assert!(local.iter().zip(&chain.local).all(|(a, b)| (a - b).abs() < 1e-9));
        assert!(chain.resync(&model) < 1e-9);
        let a = chain.acceptance();
        assert!(a > 0.0 && a < 1.0, "{a}");
    }

    #[test]
    fn a_chain_is_determined_by_its_generator() {
        let model = SpinModel::torus(4, 4, 0.44);
        let run = || {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
            let mut c = Chain::random(&model, 1.0, &mut rng);
            (0..100)
                .map(|_| {
                    c.sweep(&model, &mut rng);
                    c.energy().to_bits()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    /// Dense rows and neighbour lists are two layouts of one model: the same generator gives
    /// the same spins, energies and local fields, bit for bit, under both.
    #[test]
    fn dense_rows_and_neighbour_lists_give_the_same_chain_bit_for_bit() {
        let pairs = crate::model::ising::Pairs::new(20);
        // A fitted-like model, with some couplings exactly zero.
        let j: Vec<f64> = (0..pairs.len())
            .map(|k| if k % 7 == 0 { 0.0 } else { ((k as f64) * 0.37).sin() * 0.3 })
            .collect();
        let dense = SpinModel::from_pairs(&pairs, &j);
        assert!(dense.dense_row(0).is_some(), "a fully connected model keeps dense rows");
        let sparse = dense.clone().with_dense_rows(false);
        assert!(sparse.dense_row(0).is_none());
        let run = |model: &SpinModel| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
            let mut c = Chain::random(model, 1.1, &mut rng);
            let mut trace = Vec::new();
            for step in 0..300 {
                if step % 2 == 0 {
                    c.sweep(model, &mut rng);
                } else {
                    c.sweep_heat_bath(model, &mut rng);
                }
                trace.push(c.energy().to_bits());
            }
            (trace, c.spins().to_vec(), c.local.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        };
        assert_eq!(run(&dense), run(&sparse));
        assert!(SpinModel::torus(8, 8, 0.4).dense_row(0).is_none(), "a lattice stays sparse");
    }
}
