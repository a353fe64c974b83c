//! The ground truths a cell can have (docs/spec.md §2, §10), and what tables, summaries
//! and maps see of them ([`TruthColumns`]).

use serde::{Deserialize, Serialize};

/// The ground truth p(x) of a cell (docs/spec.md §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TruthSpec {
    /// N_s states, n_g of them at energy 0 and the rest at energy Δ (docs/spec.md §2.1).
    TwoLevel {
        /// N_s, the number of states.
        states: u32,
        /// n_g, the number of low-energy states (1 ≤ n_g < N_s).
        low_states: u32,
        /// Δ > 0, the energy gap.
        gap: f64,
    },
    /// Periodic nearest-neighbour Ising model on a rows×cols torus at temperature T (docs/spec.md §2.2).
    Ising2d {
        /// Lattice rows m.
        rows: u32,
        /// Lattice columns n.
        cols: u32,
        /// Truth temperature T > 0.
        temperature: f64,
    },
    /// A seeded synthetic protein-like Potts family (docs/spec.md §10, "Potts truths";
    /// [`taustar_science::potts::random`]): N sites of q states, a backbone plus random long-range
    /// contacts, Gaussian couplings σ_J on them and fields σ_h, at temperature 1.
    PottsRandom {
        /// N, the number of sites.
        sites: u32,
        /// q, the states per site (21 for proteins).
        states: u32,
        /// σ_J of the couplings on contacts.
        coupling_strength: f64,
        /// σ_h of the fields.
        field_strength: f64,
        /// Fraction of pairs in contact.
        contact_fraction: f64,
        /// Which family (the study seed picks the data; this picks the truth).
        family_seed: u64,
    },
    /// A user's Potts model as the truth, in adabmDCA's text format (docs/spec.md §10): the
    /// file is named by its content (SHA-256) in the key, so a cell's result always belongs
    /// to the model it was computed from, wherever the file lives; workers read it from
    /// `path` and refuse a file whose content changed.
    PottsFile {
        /// Where workers read the model (absolute once a study file is parsed).
        path: String,
        /// Its alphabet: `protein`, `rna`, `dna` or the symbols in state order.
        alphabet: String,
        /// N, read from the file when the study was parsed.
        sites: u32,
        /// q, the alphabet's size.
        states: u32,
        /// SHA-256 of the file's bytes, lower-case hex.
        sha256: String,
    },
}

/// A truth's swept values as table columns (`None` where the kind has no such value): what
/// the `cells` and `summary` tables and the maps show of it.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthColumns {
    /// The kind as study files, keys and tables spell it: `two-level`, `ising2d`,
    /// `potts-random` or `potts-file`.
    pub kind: &'static str,
    /// N_s of a two-level truth, q of a Potts truth.
    pub states: Option<u64>,
    /// n_g.
    pub low_states: Option<u64>,
    /// Δ.
    pub gap: Option<f64>,
    /// `rows x cols`, e.g. `4x4`.
    pub lattice: Option<String>,
    /// T.
    pub temperature: Option<f64>,
    /// N of a Potts truth.
    pub sites: Option<u64>,
    /// σ_J of a `potts-random` truth.
    pub coupling_strength: Option<f64>,
}

impl TruthColumns {
    /// The truth's own axis of a phase diagram (the other is the data size): its value, its
    /// symbol and what it is — Δ of a two-level truth, T of an Ising truth, σ_J of a
    /// `potts-random` family; `None` for a `potts-file` truth, which has no such parameter.
    pub fn axis(&self) -> Option<(f64, &'static str, &'static str)> {
        if let Some(g) = self.gap {
            Some((g, "Δ", "energy gap of the truth"))
        } else if let Some(t) = self.temperature {
            Some((t, "T", "truth temperature"))
        } else {
            self.coupling_strength.map(|c| (c, "σ_J", "coupling strength of the truth"))
        }
    }
}

impl TruthSpec {
    /// The truth as table columns. With [`GridPoint::key`](super::GridPoint::key) and the validation of a point,
    /// one of the few places that look at the kind: the tables, summaries and maps ask this
    /// rather than match on it.
    pub fn columns(&self) -> TruthColumns {
        let mut c = TruthColumns {
            kind: "",
            states: None,
            low_states: None,
            gap: None,
            lattice: None,
            temperature: None,
            sites: None,
            coupling_strength: None,
        };
        match self {
            TruthSpec::TwoLevel { states, low_states, gap } => {
                c.kind = "two-level";
                c.states = Some(u64::from(*states));
                c.low_states = Some(u64::from(*low_states));
                c.gap = Some(*gap);
            }
            TruthSpec::Ising2d { rows, cols, temperature } => {
                c.kind = "ising2d";
                c.lattice = Some(format!("{rows}x{cols}"));
                c.temperature = Some(*temperature);
            }
            TruthSpec::PottsRandom { sites, states, coupling_strength, .. } => {
                c.kind = "potts-random";
                c.sites = Some(u64::from(*sites));
                c.states = Some(u64::from(*states));
                c.coupling_strength = Some(*coupling_strength);
            }
            TruthSpec::PottsFile { sites, states, .. } => {
                c.kind = "potts-file";
                c.sites = Some(u64::from(*sites));
                c.states = Some(u64::from(*states));
            }
        }
        c
    }

    /// (n_g, Δ) of a two-level truth, what its closed-form fit's n̂_g and Δ̂ are measured
    /// against; `None` for the kinds fitted by a coupling model (whose fit can diverge).
    pub fn two_level_truth(&self) -> Option<(u32, f64)> {
        match *self {
            TruthSpec::TwoLevel { low_states, gap, .. } => Some((low_states, gap)),
            TruthSpec::Ising2d { .. } | TruthSpec::PottsRandom { .. } | TruthSpec::PottsFile { .. } => None,
        }
    }

    /// The `potts-random` truth of a family (the inverse of [`TruthSpec::potts_random`]).
    pub fn from_potts_random(family: &taustar_science::potts::PottsRandomSpec) -> TruthSpec {
        TruthSpec::PottsRandom {
            sites: family.sites as u32,
            states: family.states as u32,
            coupling_strength: family.coupling_strength,
            field_strength: family.field_strength,
            contact_fraction: family.contact_fraction,
            family_seed: family.seed,
        }
    }

    /// The `potts-random` family's spec; `None` for the other kinds.
    pub fn potts_random(&self) -> Option<taustar_science::potts::PottsRandomSpec> {
        match *self {
            TruthSpec::PottsRandom {
                sites,
                states,
                coupling_strength,
                field_strength,
                contact_fraction,
                family_seed,
            } => Some(taustar_science::potts::PottsRandomSpec {
                sites: sites as usize,
                states: states as usize,
                coupling_strength,
                field_strength,
                contact_fraction,
                seed: family_seed,
            }),
            _ => None,
        }
    }
}
