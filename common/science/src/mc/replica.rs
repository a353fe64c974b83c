//! What parallel tempering, the ladder placement and the estimators need of a model, whatever
//! its configurations are: ±1 spins ([`SpinEnsemble`]) or sequences of q states
//! ([`crate::potts::PottsModel`]).
//!
//! Why a trait: the ladder, the swap rule, MBAR and the bootstrap only ever see energies, so
//! the same code must serve the Ising cells and the Potts ones (docs/spec.md §10, "Potts
//! truths") — one implementation validated against enumeration, not two drifting copies.
//! The Ising implementation draws its random numbers in exactly the order the spin-only code
//! did, so every stored Monte Carlo cell is reproduced bit for bit.

use rand::Rng;

use super::chain::Chain;
use super::cluster::{wolff_step, WolffScratch};
use super::model::SpinModel;
use crate::potts::{PottsChain, PottsModel};

/// One Markov chain that can be moved between temperatures: a rung of a ladder.
pub trait Replica {
    /// What an observable of the configuration sees (`[i8]` spins, `[u8]` states).
    type Config: ?Sized;
    /// The chain's β.
    fn beta(&self) -> f64;
    /// Move the chain to another β, keeping its configuration (a swap exchanges
    /// configurations; temperatures stay with the rungs).
    fn set_beta(&mut self, beta: f64);
    /// One sweep of the chain's moves at its β.
    fn sweep<R: Rng>(&mut self, rng: &mut R);
    /// E of the current configuration under the sampled model.
    fn energy(&self) -> f64;
    /// The current configuration.
    fn config(&self) -> &Self::Config;
}

/// A model that parallel tempering can sample: it starts chains, and knows its
/// configuration count (ln Z at β = 0, the anchor MBAR and thermodynamic integration start
/// from).
pub trait Ensemble: Sync {
    /// What observables see of a configuration.
    type Config: ?Sized;
    /// Its chains (they may borrow the model; `Send`, so that independent ladders can run
    /// on their own threads).
    type Chain<'a>: Replica<Config = Self::Config> + Send
    where
        Self: 'a;
    /// A chain at `beta` from a uniformly random configuration (β = 0's equilibrium).
    fn random_chain<'a, R: Rng>(&'a self, beta: f64, rng: &mut R) -> Self::Chain<'a>;
    /// ln of the number of configurations, = ln Z(β = 0).
    fn log_configurations(&self) -> f64;
}

/// The pairwise spin model's chains: heat-bath sweeps, each followed by a Wolff move when
/// `cluster` (valid only for zero fields and non-negative couplings, where single flips
/// stall near and below a critical point).
#[derive(Debug, Clone, Copy)]
pub struct SpinEnsemble<'m> {
    /// The model.
    pub model: &'m SpinModel,
    /// Wolff moves after every sweep.
    pub cluster: bool,
}

impl<'m> SpinEnsemble<'m> {
    /// Wolff moves wherever they are valid (no field, no antiferromagnetic bond).
    pub fn new(model: &'m SpinModel) -> SpinEnsemble<'m> {
        SpinEnsemble { model, cluster: model.is_ferromagnetic_without_field() }
    }

    /// Explicitly with or without Wolff moves. Panics when `cluster` is asked of a model
    /// with fields or negative couplings (a caller's error: the move would be wrong).
    pub fn with_cluster(model: &'m SpinModel, cluster: bool) -> SpinEnsemble<'m> {
        assert!(!cluster || model.is_ferromagnetic_without_field(), "Wolff moves need zero fields and J ≥ 0");
        SpinEnsemble { model, cluster }
    }
}

/// A [`Chain`] of a [`SpinEnsemble`].
#[derive(Debug)]
pub struct SpinReplica<'m> {
    model: &'m SpinModel,
    cluster: bool,
    chain: Chain,
    scratch: WolffScratch,
}

impl SpinReplica<'_> {
    /// The underlying chain.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }
}

impl Replica for SpinReplica<'_> {
    type Config = [i8];
    fn beta(&self) -> f64 {
        self.chain.beta
    }
    fn set_beta(&mut self, beta: f64) {
        self.chain.beta = beta;
    }
    fn sweep<R: Rng>(&mut self, rng: &mut R) {
        self.chain.sweep_heat_bath(self.model, rng);
        if self.cluster {
            wolff_step(&mut self.chain, self.model, rng, &mut self.scratch);
        }
    }
    fn energy(&self) -> f64 {
        self.chain.energy()
    }
    fn config(&self) -> &[i8] {
        self.chain.spins()
    }
}

impl<'m> Ensemble for SpinEnsemble<'m> {
    type Config = [i8];
    type Chain<'a>
        = SpinReplica<'m>
    where
        Self: 'a;
    fn random_chain<'a, R: Rng>(&'a self, beta: f64, rng: &mut R) -> SpinReplica<'m> {
        let chain = Chain::random(self.model, beta, rng);
        SpinReplica { model: self.model, cluster: self.cluster, chain, scratch: WolffScratch::default() }
    }
    fn log_configurations(&self) -> f64 {
        self.model.len() as f64 * std::f64::consts::LN_2
    }
}

/// A spin model samples as [`SpinEnsemble::new`] does: Wolff moves wherever they are valid.
impl Ensemble for SpinModel {
    type Config = [i8];
    type Chain<'a> = SpinReplica<'a>;
    fn random_chain<'a, R: Rng>(&'a self, beta: f64, rng: &mut R) -> SpinReplica<'a> {
        SpinEnsemble::new(self).random_chain(beta, rng)
    }
    fn log_configurations(&self) -> f64 {
        SpinEnsemble::new(self).log_configurations()
    }
}

impl Replica for PottsChain<'_> {
    type Config = [u8];
    fn beta(&self) -> f64 {
        PottsChain::beta(self)
    }
    fn set_beta(&mut self, beta: f64) {
        PottsChain::set_beta(self, beta);
    }
    fn sweep<R: Rng>(&mut self, rng: &mut R) {
        PottsChain::sweep(self, rng);
    }
    fn energy(&self) -> f64 {
        PottsChain::energy(self)
    }
    fn config(&self) -> &[u8] {
        self.state()
    }
}

/// Potts chains: single-site heat-bath sweeps ([`PottsChain`]).
impl Ensemble for PottsModel {
    type Config = [u8];
    type Chain<'a> = PottsChain<'a>;
    /// Panics when β is not finite (ladders are checked where they are built).
    fn random_chain<'a, R: Rng>(&'a self, beta: f64, rng: &mut R) -> PottsChain<'a> {
        match PottsChain::random(self, beta, rng) {
            Ok(c) => c,
            Err(e) => panic!("a ladder rung at β = {beta}: {e}"),
        }
    }
    fn log_configurations(&self) -> f64 {
        self.n() as f64 * (self.q() as f64).ln()
    }
}
