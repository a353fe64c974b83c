//! Single-site moves decided by ΔE alone: what a sampler whose acceptance is not a
//! Boltzmann factor needs of a model (the multicanonical one, [`super::multicanonical`]).
//!
//! Why a trait of its own and not more methods of [`Replica`](super::replica::Replica): a
//! tempering rung only ever asks for a heat-bath sweep at its β, and its random-number
//! consumption pins every stored cell bit for bit. A multicanonical walker has no β: it
//! proposes one site and one new state, looks at the ΔE of that proposal, and accepts with
//! its own weight ratio e^{ω(E+ΔE) − ω(E)}. Keeping the two apart leaves the tempering code
//! untouched.
//!
//! Proposals are symmetric (a uniform site, a uniform other state), so the acceptance
//! min(1, π(new)/π(old)) alone satisfies detailed balance for any target π(E).

use rand::Rng;

use super::chain::Chain;
use super::model::SpinModel;
use super::replica::{Ensemble, SpinEnsemble};
use crate::potts::{PottsChain, PottsModel};

/// A proposed single-site change: `site` to `state`, and the energy change it would make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalMove {
    /// The site.
    pub site: u32,
    /// Its proposed new state (spins: ignored, a flip; Potts: the new letter).
    pub state: u32,
    /// E(new) − E(old).
    pub delta: f64,
}

/// A configuration that can propose symmetric single-site moves and apply them.
pub trait LocalMoves {
    /// What an observable of the configuration sees (`[i8]` spins, `[u8]` states).
    type Config: ?Sized;
    /// Propose a move (a uniform site, a uniform different state) without applying it.
    fn propose<R: Rng + ?Sized>(&self, rng: &mut R) -> LocalMove;
    /// Apply a move returned by [`LocalMoves::propose`] on the current configuration.
    fn apply(&mut self, m: &LocalMove);
    /// E of the current configuration.
    fn energy(&self) -> f64;
    /// The current configuration.
    fn config(&self) -> &Self::Config;
    /// Sites (a sweep is this many updates).
    fn sites(&self) -> usize;
    /// Recompute the incrementally kept energy (and whatever else is kept) from scratch, so
    /// the round-off of many millions of updates does not accumulate.
    fn resync(&mut self);
}

/// An [`Ensemble`] whose configurations also make single-site moves.
pub trait LocalEnsemble: Ensemble + Sync {
    /// The walkers (they may borrow the model).
    type Walker<'a>: LocalMoves<Config = Self::Config> + Send
    where
        Self: 'a;
    /// A walker from a uniformly random configuration (β = 0's equilibrium).
    fn random_walker<'a, R: Rng + ?Sized>(&'a self, rng: &mut R) -> Self::Walker<'a>;
}

/// A spin configuration of a [`SpinModel`] with its kept local fields.
#[derive(Debug, Clone)]
pub struct SpinWalker<'m> {
    model: &'m SpinModel,
    chain: Chain,
}

impl SpinWalker<'_> {
    /// The underlying chain.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }
}

impl LocalMoves for SpinWalker<'_> {
    type Config = [i8];
    #[inline]
    fn propose<R: Rng + ?Sized>(&self, rng: &mut R) -> LocalMove {
        let i = rng.random_range(0..self.model.len());
        LocalMove { site: i as u32, state: 0, delta: self.chain.flip_delta(i) }
    }
    #[inline]
    fn apply(&mut self, m: &LocalMove) {
        self.chain.flip(self.model, m.site as usize);
    }
    fn energy(&self) -> f64 {
        self.chain.energy()
    }
    fn config(&self) -> &[i8] {
        self.chain.spins()
    }
    fn sites(&self) -> usize {
        self.model.len()
    }
    fn resync(&mut self) {
        self.chain.resync(self.model);
    }
}

impl<'m> LocalEnsemble for SpinEnsemble<'m> {
    type Walker<'a>
        = SpinWalker<'m>
    where
        Self: 'a;
    fn random_walker<'a, R: Rng + ?Sized>(&'a self, rng: &mut R) -> SpinWalker<'m> {
        let spins = (0..self.model.len()).map(|_| if rng.random::<bool>() { 1 } else { -1 }).collect();
        SpinWalker { model: self.model, chain: Chain::new(self.model, 0.0, spins) }
    }
}

impl LocalEnsemble for SpinModel {
    type Walker<'a> = SpinWalker<'a>;
    fn random_walker<'a, R: Rng + ?Sized>(&'a self, rng: &mut R) -> SpinWalker<'a> {
        SpinEnsemble::with_cluster(self, false).random_walker(rng)
    }
}

/// Proposes a uniform other letter (q ≥ 2; with q = 1 nothing can move and ΔE = 0).
impl LocalMoves for PottsChain<'_> {
    type Config = [u8];
    #[inline]
    fn propose<R: Rng + ?Sized>(&self, rng: &mut R) -> LocalMove {
        let q = self.model().q();
        let i = rng.random_range(0..self.state().len());
        let old = self.state()[i] as usize;
        if q < 2 {
            return LocalMove { site: i as u32, state: old as u32, delta: 0.0 };
        }
        let mut new = rng.random_range(0..q - 1);
        if new >= old {
            new += 1;
        }
        let f = &self.local_fields()[i * q..(i + 1) * q];
        LocalMove { site: i as u32, state: new as u32, delta: f[old] - f[new] }
    }
    #[inline]
    fn apply(&mut self, m: &LocalMove) {
        self.set_site(m.site as usize, m.state as u8);
    }
    fn energy(&self) -> f64 {
        PottsChain::energy(self)
    }
    fn config(&self) -> &[u8] {
        self.state()
    }
    fn sites(&self) -> usize {
        self.state().len()
    }
    fn resync(&mut self) {
        PottsChain::resync(self);
    }
}

impl LocalEnsemble for PottsModel {
    type Walker<'a> = PottsChain<'a>;
    fn random_walker<'a, R: Rng + ?Sized>(&'a self, rng: &mut R) -> PottsChain<'a> {
        let q = self.q();
        let state = (0..self.n()).map(|_| rng.random_range(0..q) as u8).collect();
        match PottsChain::new(self, 0.0, state) {
            Ok(c) => c,
            // Only a state outside the model could fail, and these are drawn inside it.
            Err(e) => unreachable!("a uniformly drawn state: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Applying a proposal changes the energy by exactly the ΔE it announced, for spins and
    /// Potts alike, and the kept energy stays that of the configuration.
    #[test]
    fn proposals_announce_the_energy_change_they_make() {
        let pairs = crate::model::ising::Pairs::new(7);
        let j: Vec<f64> = (0..pairs.len()).map(|k| ((k as f64) * 0.9).sin() * 0.5).collect();
        let spins = SpinModel::from_pairs(&pairs, &j);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut w = spins.random_walker(&mut rng);
        for _ in 0..200 {
            let m = w.propose(&mut rng);
            let before = w.energy();
            w.apply(&m);
            assert!((w.energy() - before - m.delta).abs() < 1e-12);
        }
        assert!((w.energy() - spins.energy(w.config())).abs() < 1e-9);
        let mut potts = PottsModel::zeros(4, 3).unwrap();
        for i in 0..4 {
            for a in 0..3 {
                potts.set_field(i, a, ((i * 3 + a) as f64).cos());
                for jj in i + 1..4 {
                    for b in 0..3 {
                        potts.set_coupling(i, jj, a, b, (((i * 4 + jj) * 9 + a * 3 + b) as f64 * 0.7).sin());
                    }
                }
            }
        }
        let mut w = potts.random_walker(&mut rng);
        for _ in 0..200 {
            let m = w.propose(&mut rng);
            assert_ne!(m.state as u8, w.config()[m.site as usize], "a proposal changes the letter");
            let before = LocalMoves::energy(&w);
            w.apply(&m);
            assert!((LocalMoves::energy(&w) - before - m.delta).abs() < 1e-12);
        }
        assert!((LocalMoves::energy(&w) - potts.energy(w.config())).abs() < 1e-9);
    }
}
