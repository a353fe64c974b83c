//! The convergence diagnostics of one Monte Carlo run (docs/spec.md §10), in one type:
//! tempering's, and the multicanonical sampler's under the same names where they mean the
//! same thing.
//!
//! Every Monte Carlo answer carries them: the τ estimate of a cell
//! ([`McTau`](super::estimate::McTau)), a model's own curves
//! ([`ModelCurves`](super::curves::ModelCurves), `taustar diagnose`) and the stored result of
//! a cell (`McmcReport` in `taustar-common`). They are listed here once, so a new
//! diagnostic (or a new sampler's) is added in one struct and reaches every report.
//!
//! The serde names are those of the published `cells` table and JSON (`mcmc_ok`,
//! `ladder_rungs`, …), so a report can flatten this struct into its record.

use serde::{Deserialize, Serialize};

/// How a tempering (or multicanonical) run went, and whether its numbers can be trusted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LadderDiagnostics {
    /// Every diagnostic within its threshold (and the precision target met, if one was set).
    #[serde(rename = "mcmc_ok")]
    pub ok: bool,
    /// Why not, when not: the failed diagnostics in words, `; `-separated.
    #[serde(rename = "mcmc_note", default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Tempering steps recorded, all ladders together.
    #[serde(rename = "mcmc_steps")]
    pub steps: u64,
    /// Rungs of the β ladder.
    #[serde(rename = "ladder_rungs")]
    pub rungs: u32,
    /// Smallest neighbour swap acceptance on the ladder (over the independent ladders);
    /// `None` for the multicanonical sampler, which has no ladder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_swap_acceptance: Option<f64>,
    /// Completed round trips β = 0 ↔ β_max, all ladders together (multicanonical: between
    /// the energy window's ends, all walkers together).
    pub round_trips: u64,
    /// Largest Gelman–Rubin R̂ of any rung's energy across the independent ladders (1 with
    /// one ladder). Multicanonical: R̂ of ln g across walkers, averaged over the bins.
    pub r_hat: f64,
    /// Largest integrated autocorrelation time of any rung's energy, in tempering steps
    /// (multicanonical: of any walker's energy, in recorded samples).
    pub tau_int: f64,
    /// Effective samples per rung at that τ_int (multicanonical: all walkers together).
    pub ess: f64,
    /// The lowest τ down to which every rung passed on its own (τ_int converged, R̂ within
    /// bounds, swaps across every gap above it): the lower τ bound when all did, higher when
    /// the cold end of the ladder did not equilibrate; `None` when not even the first rung
    /// above β = 0 passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equilibrated_tau_lo: Option<f64>,
    /// Multicanonical only: the fewest round trips between the energy window's ends that any
    /// one walker made (each must make `min_walker_round_trips`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walker_round_trips_min: Option<u64>,
    /// Multicanonical only: min_k H_k / mean_k H_k of the production energy histogram over
    /// the window's visited bins (1 is perfectly flat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flatness: Option<f64>,
}

impl LadderDiagnostics {
    /// Record a failed check: `ok` turns false and `why` joins the note (after what failed
    /// before, `; `-separated, so the note reads in the order the checks ran).
    pub fn fail(&mut self, why: impl Into<String>) {
        append_note(&mut self.note, why.into());
        self.ok = false;
    }
}

/// `why` after the failures already in `note`, `; `-separated: a run's note reads in the
/// order its checks ran (tempering's and the multicanonical sampler's diagnostics alike).
pub(crate) fn append_note(note: &mut Option<String>, why: String) {
    *note = Some(match note.take() {
        Some(n) => format!("{n}; {why}"),
        None => why,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_join_the_note_in_order_and_clear_ok() {
        let mut d = LadderDiagnostics { ok: true, ..Default::default() };
        d.fail("R̂ 1.2 above 1.05");
        assert!(!d.ok);
        d.fail("MBAR did not converge");
        assert_eq!(d.note.as_deref(), Some("R̂ 1.2 above 1.05; MBAR did not converge"));
    }

    #[test]
    fn the_published_names_are_kept() {
        let d = LadderDiagnostics {
            ok: true,
            note: None,
            steps: 4000,
            rungs: 12,
            min_swap_acceptance: Some(0.3),
            round_trips: 9,
            r_hat: 1.01,
            tau_int: 3.5,
            ess: 500.0,
            equilibrated_tau_lo: Some(0.2),
            walker_round_trips_min: None,
            flatness: None,
        };
        let v = serde_json::to_value(&d).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "mcmc_ok",
            "mcmc_steps",
            "ladder_rungs",
            "min_swap_acceptance",
            "round_trips",
            "r_hat",
            "tau_int",
            "ess",
            "equilibrated_tau_lo",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        assert!(!keys.contains(&"mcmc_note"), "no note when none");
        for k in ["walker_round_trips_min", "flatness"] {
            assert!(!keys.contains(&k), "tempering's record has no {k}");
        }
        assert_eq!(serde_json::from_value::<LadderDiagnostics>(v).unwrap(), d);
    }
}
