//! Study files (TOML) → grid points → cells (docs/spec.md §6).
//!
//! A study file names a ground truth, a data-size axis and a fit, any of whose swept values
//! may be a number, a list, or a range table; the study is their cartesian product (the
//! *grid points*) times `replicates`. This is the format users write, so it is a contract:
//! extend it, never break it.
//!
//! ```toml
//! name = "paper-fig2"             # required: 1-100 of A-Z a-z 0-9 - _ .
//! seed = 2025                     # required: reproducible on purpose
//! replicates = 50                 # default 1
//! [truth]
//! kind = "two-level"              # or "ising2d" with lattice = [4, 4] (or [[3, 3], [4, 4]])
//! states = 100                    #   and temperature = <swept>
//! low_states = 20
//! gap = { from = 2.5, to = 9.5, step = 0.25 }
//! [data]                          # exactly one of samples (M) and mu (docs/spec.md §3)
//! samples = { from = 4, to = 28000, count = 160, scale = "log" }   # integers, deduplicated
//! [fit]                           # optional
//! mode = "mle"                    # or "paper", or a list; ising2d only
//! l2 = 0.0                        # swept; ising2d only
//! max_iter = 15000                # not swept: iteration cap (paper: gradient steps)
//! rel_tol = 1e-5                  # not swept: paper mode's relative-NLL stopping rule
//! coupling_cap = 20.0             # not swept
//! [tau]                           # optional, not swept
//! grid = { from = 0.2, to = 5.0, count = 70 }   # 1.0 is always added
//! bounds = [0.01, 100.0]
//! curves = "all"                  # or "none": results keep no τ curve (smaller, faster store)
//! ```
//!
//! Swept values: `x`, `[x, y, …]`, `{from, to, step}` (inclusive of `to` within rounding),
//! `{from, to, count[, scale = "log"|"linear"]}`, or a list mixing numbers and range tables
//! (a union). Each axis is sorted and deduplicated, and real values are rounded to
//! [`axis::SIGNIFICANT_DIGITS`] significant digits, so the canonical cell keys
//! ([`CellSpec::key`]) depend only on the set of values, never on spelling or order; adding
//! values or replicates only adds cells. A cell's random stream is [`CellSpec::rng`] (study
//! seed + key).
//!
//! Order: truth axes outermost (`states`, `low_states`, `gap` or `lattice`, `temperature`),
//! then the data size, then `fit.mode`, then `fit.l2`, each ascending; the replicates of a
//! grid point are consecutive.

mod axis;
mod error;
mod parse;
mod source;

use std::path::Path;

pub use axis::{round_significant, SIGNIFICANT_DIGITS};
pub use error::{At, StudyError};

use crate::cell::{fmt_f64, CellSettings, CellSpec, CurveOutput, GridPoint, LEGACY_REL_TOL};

/// Most grid points a study may have: they are held in memory (about 56 bytes each).
pub const MAX_GRID_POINTS: usize = 1 << 20;

/// Sanity cap on the cells of a study: more is almost surely a mistyped range, and would
/// not fit the study store.
pub const MAX_CELLS: u64 = 1_000_000_000;

/// A parsed, validated study: grid points (in memory) and the cells they expand to
/// (streamed).
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    /// The study's name.
    pub name: String,
    /// The study seed; with a cell's key it determines the cell's random stream.
    pub seed: u64,
    /// Replicates per grid point.
    pub replicates: u32,
    /// Settings shared by every cell.
    pub settings: CellSettings,
    /// Which settings took their default because the file did not set them.
    pub defaulted: DefaultedSettings,
    /// Grid points, deterministic order, distinct keys, each validated.
    points: Vec<GridPoint>,
}

/// Settings whose default changed over the project's life, and whether a study file left
/// them unset. A file that leaves one unset, run against a store made under the *old*
/// default, resumes with the stored value ([`Study::adopt_stored`]): an old store reopens
/// with the values it was made with, never silently reinterpreted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultedSettings {
    /// `fit.max_iter` was not in the file (default 15 000; 10 000 before).
    pub max_iter: bool,
    /// `fit.rel_tol` was not in the file (default 1e-5; 1e-7 before the key existed).
    pub rel_tol: bool,
    /// `tau.curves` was not in the file (default `recompute` for two-level studies, `all`
    /// otherwise; `all` for every study before `recompute` existed).
    pub curves: bool,
}

impl Study {
    /// Parse and expand a study file's text. Errors name the key, the value and the line. A
    /// `potts-file` model is read relative to the current directory.
    pub fn from_toml_str(src: &str) -> Result<Study, StudyError> {
        parse::parse_study(src, None)
    }

    /// Read and parse a study file; errors also name the file. A `potts-file` model is read
    /// relative to the study file's directory.
    pub fn from_path(path: &Path) -> Result<Study, StudyError> {
        let src = std::fs::read_to_string(path)
            .map_err(|error| StudyError::Read { path: path.to_path_buf(), error })?;
        parse::parse_study(&src, path.parent())
            .map_err(|error| StudyError::InFile { path: path.to_path_buf(), error: Box::new(error) })
    }

    /// A study from grid points built in code (tests, benchmarks, generated studies).
    /// Points are validated and deduplicated by key (first occurrence kept, order kept).
    pub fn new(
        name: impl Into<String>,
        seed: u64,
        replicates: u32,
        settings: CellSettings,
        points: Vec<GridPoint>,
    ) -> Result<Study, StudyError> {
        let invalid = |key: &str, value: String, reason: String| StudyError::Invalid {
            key: key.to_string(),
            value,
            at: At(None),
            reason,
        };
        if replicates == 0 {
            return Err(invalid("replicates", "0".into(), "need at least 1 replicate".into()));
        }
        if points.is_empty() {
            return Err(invalid("grid", "[]".into(), "a study needs at least one grid point".into()));
        }
        if points.len() > MAX_GRID_POINTS {
            return Err(invalid(
                "grid",
                points.len().to_string(),
                format!("more than {MAX_GRID_POINTS} grid points"),
            ));
        }
        if points.len() as u64 * u64::from(replicates) > MAX_CELLS {
            return Err(invalid(
                "replicates",
                replicates.to_string(),
                format!("more than {MAX_CELLS} cells"),
            ));
        }
        let spec_err = |e: crate::SpecError| {
            let crate::SpecError::Invalid { field, value, reason } = e;
            invalid(&field, value, reason)
        };
        settings.validate().map_err(spec_err)?;
        let mut seen = std::collections::HashSet::with_capacity(points.len());
        let mut unique = Vec::with_capacity(points.len());
        for p in points {
            p.validate().map_err(spec_err)?;
            if seen.insert(p.key()) {
                unique.push(p);
            }
        }
        Ok(Study {
            name: name.into(),
            seed,
            replicates,
            settings,
            defaulted: DefaultedSettings::default(),
            points: unique,
        })
    }

    /// The grid points, in the study's deterministic order, with distinct keys.
    pub fn grid_points(&self) -> &[GridPoint] {
        &self.points
    }

    /// Number of cells: grid points × replicates.
    pub fn cell_count(&self) -> u64 {
        self.points.len() as u64 * u64::from(self.replicates)
    }

    /// Every cell, streamed: the replicates of a grid point consecutively, grid points in
    /// [`Study::grid_points`] order.
    pub fn cells(&self) -> impl Iterator<Item = CellSpec> + '_ {
        self.points.iter().flat_map(move |point| (0..self.replicates).map(move |r| self.make_cell(point, r)))
    }

    /// The cell at position `index` of [`Study::cells`], without iterating to it.
    pub fn cell(&self, index: u64) -> Option<CellSpec> {
        let reps = u64::from(self.replicates);
        let point = self.points.get(usize::try_from(index / reps).ok()?)?;
        Some(self.make_cell(point, (index % reps) as u32))
    }

    fn make_cell(&self, point: &GridPoint, replicate: u32) -> CellSpec {
        CellSpec { study_seed: self.seed, point: point.clone(), replicate, settings: self.settings.clone() }
    }

    /// Canonical text of everything that, when changed, changes every cell's result without
    /// changing its key: the seed and the shared settings. The name, the replicates and the
    /// swept values are left out, so a study extended with more values or replicates keeps
    /// its fingerprint (the coordinator refuses to extend a study whose fingerprint changed).
    pub fn settings_fingerprint(&self) -> String {
        let s = &self.settings;
        format!(
            "settings-v1;seed={};tau.grid={}..{}/{};tau.bounds={}..{};fit.max_iter={};fit.coupling_cap={}",
            self.seed,
            fmt_f64(s.tau_grid.from),
            fmt_f64(s.tau_grid.to),
            s.tau_grid.count,
            fmt_f64(s.tau_bounds.0),
            fmt_f64(s.tau_bounds.1),
            s.max_iter,
            fmt_f64(s.coupling_cap),
        ) + &if s.rel_tol == LEGACY_REL_TOL {
            // Absent for the value every study had before the key existed, so their
            // stores still match.
            String::new()
        } else {
            format!(";fit.rel_tol={}", fmt_f64(s.rel_tol))
        } + match s.curves {
            // Absent for the default, so stores made before `tau.curves` existed still match.
            CurveOutput::All => "",
            CurveOutput::None => ";tau.curves=none",
            CurveOutput::Recompute => ";tau.curves=recompute",
        } + &if (s.pearson_target, s.max_sweeps)
            == (CellSettings::default().pearson_target, CellSettings::default().max_sweeps)
        {
            // Absent for the defaults, which studies had before the keys existed.
            String::new()
        } else {
            format!(";fit.pearson_target={};fit.max_sweeps={}", fmt_f64(s.pearson_target), s.max_sweeps)
        } + &match &s.mcmc {
            // Absent for exact evaluation, so every store made before Monte Carlo still matches.
            None => String::new(),
            Some(m) => format!(
                ";eval=mcmc;mcmc.steps={};mcmc.burn_in={};mcmc.pilot_sweeps={};mcmc.resamples={};\
                 mcmc.ladders={};mcmc.target_se={};mcmc.max_steps={};mcmc.min_swap_acceptance={};\
                 mcmc.min_round_trips={};mcmc.max_r_hat={}{}{}",
                m.steps,
                m.burn_in,
                m.pilot_sweeps,
                m.resamples,
                m.ladders,
                m.target_se.map_or("none".to_string(), fmt_f64),
                m.max_steps,
                fmt_f64(m.min_swap_acceptance),
                m.min_round_trips,
                fmt_f64(m.max_r_hat),
                // Absent for the default, which studies had before the key existed.
                if m.truth_steps == crate::cell::McmcSettings::default().truth_steps {
                    String::new()
                } else {
                    format!(";mcmc.truth_steps={}", m.truth_steps)
                },
                // Absent for tempering, which every study used before the key existed; the
                // multicanonical sampler's own settings only with it.
                match m.sampler {
                    crate::cell::Sampler::Tempering => String::new(),
                    crate::cell::Sampler::Multicanonical => format!(
                        ";mcmc.sampler=multicanonical;mcmc.walkers={};mcmc.production_sweeps={};\
                         mcmc.min_walker_round_trips={}",
                        m.walkers, m.production_sweeps, m.min_walker_round_trips
                    ),
                },
            ),
        }
    }

    /// Resume under the settings a store was made with: every setting this file left at its
    /// default takes the stored value instead. Returns `key = value` for each one adopted
    /// that differs from the default, for the log.
    ///
    /// Why: the defaults of `fit.max_iter` and `fit.rel_tol` changed (to the constants of
    /// the authors' Fig. 3 sweep). A study file written before, run again on its store, must
    /// compute the missing cells exactly as the finished ones were computed.
    pub fn adopt_stored(&mut self, stored: &CellSettings) -> Vec<String> {
        let mut adopted = Vec::new();
        if self.defaulted.max_iter && stored.max_iter != self.settings.max_iter {
            self.settings.max_iter = stored.max_iter;
            adopted.push(format!("fit.max_iter = {}", stored.max_iter));
        }
        if self.defaulted.rel_tol && stored.rel_tol != self.settings.rel_tol {
            self.settings.rel_tol = stored.rel_tol;
            adopted.push(format!("fit.rel_tol = {:e}", stored.rel_tol));
        }
        if self.defaulted.curves && stored.curves != self.settings.curves {
            self.settings.curves = stored.curves;
            adopted.push(format!("tau.curves = {:?}", format!("{:?}", stored.curves).to_lowercase()));
        }
        adopted
    }
}
