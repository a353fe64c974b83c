//! Maximum-likelihood fits of the learned families (docs/spec.md §4).

pub mod bml;
pub mod ising;
pub mod lbfgs;
pub(crate) mod linalg;
pub mod plm;
pub mod potts_bml;
pub mod potts_plm;
pub mod two_level;

use serde::{Deserialize, Serialize};

/// A name that is not one of an enum's: the field it was read for, the value, the names allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} = {value}: expected {expected}")]
pub struct UnknownName {
    /// The field (study key, column) the name was read for.
    pub field: &'static str,
    /// The name as given.
    pub value: String,
    /// The names allowed.
    pub expected: &'static str,
}

/// Which fitting procedure an Ising cell uses (docs/spec.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FitMode {
    /// Converged (penalised) maximum likelihood; non-existence is detected and flagged.
    #[default]
    Mle,
    /// The paper's plain gradient ascent with early stopping, for reproduction.
    Paper,
    /// Pseudo-likelihood (docs/spec.md §10): no partition function, so any lattice size;
    /// the fit of lattices past enumeration.
    Plm,
    /// Boltzmann-machine learning (docs/spec.md §10): the likelihood's gradient from
    /// persistent Markov chains, stopped at a Pearson target or a sweep budget; any lattice.
    Bml,
}

impl FitMode {
    /// Whether the fit works from samples alone (no partition function), so on any lattice.
    pub fn samples(self) -> bool {
        matches!(self, FitMode::Plm | FitMode::Bml)
    }

    /// The name used in study files, keys and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FitMode::Mle => "mle",
            FitMode::Paper => "paper",
            FitMode::Plm => "plm",
            FitMode::Bml => "bml",
        }
    }
}

impl std::str::FromStr for FitMode {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mle" => Ok(FitMode::Mle),
            "paper" => Ok(FitMode::Paper),
            "plm" => Ok(FitMode::Plm),
            "bml" => Ok(FitMode::Bml),
            other => Err(UnknownName {
                field: "fit.mode",
                value: other.to_string(),
                expected: "\"mle\", \"paper\", \"plm\" or \"bml\"",
            }),
        }
    }
}

/// Why an iterative Ising fit stopped (docs/spec.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitStop {
    /// `paper`: the relative change of the NLL fell below `rel_tol` (early stopping).
    RelTol,
    /// `mle`: the gradient max-norm and the Newton step are below their tolerances.
    GradTol,
    /// The iteration cap `max_iter` (or `bml`'s sweep budget) was reached first.
    MaxIter,
    /// `bml`: the Pearson correlation of the model's and the data's connected correlations
    /// reached its target.
    Pearson,
    /// The fit ran away: the unregularised MLE does not exist, or the couplings became
    /// non-finite.
    Diverged,
}

impl FitStop {
    /// The name used in JSON, tables and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            FitStop::RelTol => "rel_tol",
            FitStop::GradTol => "grad_tol",
            FitStop::MaxIter => "max_iter",
            FitStop::Diverged => "diverged",
            FitStop::Pearson => "pearson",
        }
    }
}

impl std::str::FromStr for FitStop {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rel_tol" => Ok(FitStop::RelTol),
            "grad_tol" => Ok(FitStop::GradTol),
            "max_iter" => Ok(FitStop::MaxIter),
            "diverged" => Ok(FitStop::Diverged),
            "pearson" => Ok(FitStop::Pearson),
            other => Err(UnknownName {
                field: "fit_stop",
                value: other.to_string(),
                expected: "\"rel_tol\", \"grad_tol\", \"max_iter\", \"diverged\" or \"pearson\"",
            }),
        }
    }
}
