//! One grid point's replicates → one [`SummaryRow`] (docs/spec.md §6 "Aggregation").

use serde::{Deserialize, Serialize};

use super::stats::Stats;
use crate::cell::{CellResult, DataSize, GridPoint, TruthSpec};

/// A per-replicate quantity whose distribution over replicates is summarised. The names
/// are the column prefixes of the summary table (`tau_rev_mean`, `gain_fwd_q75`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// τ*_rev, the minimiser of D_rev = D(q_τ ‖ p).
    TauRev,
    /// τ*_fwd, the minimiser of D_fwd = D(p ‖ q_τ).
    TauFwd,
    /// D_rev at τ = 1.
    DklRevAt1,
    /// D_rev at τ*_rev.
    DklRevOpt,
    /// gain_rev = D_rev(1) − D_rev(τ*_rev) ≥ 0: what tuning τ buys.
    GainRev,
    /// D_fwd at τ = 1.
    DklFwdAt1,
    /// D_fwd at τ*_fwd.
    DklFwdOpt,
    /// gain_fwd = D_fwd(1) − D_fwd(τ*_fwd).
    GainFwd,
    /// τ at the peak of the model's heat capacity (when defined).
    TauHeatPeak,
    /// The variance-match temperature τ_var (when defined).
    TauVar,
    /// Two-level fit: n̂_g.
    LowStatesHat,
    /// Two-level fit: Δ̂.
    GapHat,
    /// Two-level fit: n̂_g / n_g.
    LowStatesRatio,
    /// Two-level fit: Δ̂ / Δ.
    GapRatio,
    /// κ(1) = Cov_q(Ê, −log p) at τ = 1 (docs/spec.md §5).
    KappaAt1,
    /// C(1) = Var_q(Ê), the heat capacity at τ = 1.
    HeatCapacityAt1,
    /// κ(1) − C(1) = dD_rev/dτ at τ = 1: positive says cool, negative says heat.
    KappaMinusC,
    /// Monte Carlo cells: the standard error of τ*_rev within one cell (its mean over the
    /// replicates says how much of their spread is sampling noise rather than data).
    TauRevSe,
    /// Monte Carlo cells: the standard error of τ*_fwd within one cell.
    TauFwdSe,
    /// Monte Carlo cells: τ*_fwd where it can be trusted — of every replicate that passed
    /// its diagnostics, and from the equilibrated rungs (`tau_fwd_equilibrated`) of those
    /// that did not, where it lies inside them. Its count says how many replicates that is;
    /// the rest have no trustworthy τ*_fwd.
    TauFwdTrusted,
    /// Monte Carlo cells: τ*_rev of the replicates that passed their diagnostics (no rescue
    /// exists for the others: D_rev is not convex in 1/τ). Its count says how many
    /// replicates that is. Why a quantity of its own: a flagged cell's τ*_rev can be
    /// anything (a trapped walker's curve), and a median over every replicate of a point
    /// where most are flagged draws that on the map as a result.
    TauRevTrusted,
}

impl Quantity {
    /// Every quantity, in column order.
    pub const ALL: [Quantity; 21] = [
        Quantity::TauRev,
        Quantity::TauFwd,
        Quantity::DklRevAt1,
        Quantity::DklRevOpt,
        Quantity::GainRev,
        Quantity::DklFwdAt1,
        Quantity::DklFwdOpt,
        Quantity::GainFwd,
        Quantity::TauHeatPeak,
        Quantity::TauVar,
        Quantity::LowStatesHat,
        Quantity::GapHat,
        Quantity::LowStatesRatio,
        Quantity::GapRatio,
        Quantity::KappaAt1,
        Quantity::HeatCapacityAt1,
        Quantity::KappaMinusC,
        Quantity::TauRevSe,
        Quantity::TauFwdSe,
        Quantity::TauFwdTrusted,
        Quantity::TauRevTrusted,
    ];

    /// The column prefix.
    pub fn name(self) -> &'static str {
        match self {
            Quantity::TauRev => "tau_rev",
            Quantity::TauFwd => "tau_fwd",
            Quantity::DklRevAt1 => "dkl_rev_at_1",
            Quantity::DklRevOpt => "dkl_rev_opt",
            Quantity::GainRev => "gain_rev",
            Quantity::DklFwdAt1 => "dkl_fwd_at_1",
            Quantity::DklFwdOpt => "dkl_fwd_opt",
            Quantity::GainFwd => "gain_fwd",
            Quantity::TauHeatPeak => "tau_heat_peak",
            Quantity::TauVar => "tau_var",
            Quantity::LowStatesHat => "low_states_hat",
            Quantity::GapHat => "gap_hat",
            Quantity::LowStatesRatio => "low_states_ratio",
            Quantity::GapRatio => "gap_ratio",
            Quantity::KappaAt1 => "kappa_at_1",
            Quantity::HeatCapacityAt1 => "heat_capacity_at_1",
            Quantity::KappaMinusC => "kappa_minus_c",
            Quantity::TauRevSe => "tau_rev_se",
            Quantity::TauFwdSe => "tau_fwd_se",
            Quantity::TauFwdTrusted => "tau_fwd_trusted",
            Quantity::TauRevTrusted => "tau_rev_trusted",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// This quantity's value in one result, if the result has it.
    fn of(self, r: &CellResult, truth: &TruthSpec) -> Option<f64> {
        match self {
            Quantity::TauRev => Some(r.tau.tau_rev),
            Quantity::TauFwd => Some(r.tau.tau_fwd),
            Quantity::DklRevAt1 => Some(r.tau.dkl_rev_at_1),
            Quantity::DklRevOpt => Some(r.tau.dkl_rev_opt),
            Quantity::GainRev => Some(r.tau.dkl_rev_at_1 - r.tau.dkl_rev_opt),
            Quantity::DklFwdAt1 => Some(r.tau.dkl_fwd_at_1),
            Quantity::DklFwdOpt => Some(r.tau.dkl_fwd_opt),
            Quantity::GainFwd => Some(r.tau.dkl_fwd_at_1 - r.tau.dkl_fwd_opt),
            Quantity::TauHeatPeak => r.tau.tau_heat_peak,
            Quantity::TauVar => r.tau.tau_var,
            Quantity::LowStatesHat => r.two_level.low_states_hat.map(f64::from),
            Quantity::GapHat => r.two_level.gap_hat,
            Quantity::LowStatesRatio => {
                let (low_states, _) = truth.two_level_truth()?;
                r.two_level.low_states_hat.map(|k| f64::from(k) / f64::from(low_states))
            }
            Quantity::GapRatio => {
                let (_, gap) = truth.two_level_truth()?;
                r.two_level.gap_hat.map(|g| g / gap)
            }
            Quantity::KappaAt1 => r.tau.kappa_at_1,
            Quantity::HeatCapacityAt1 => r.tau.heat_capacity_at_1,
            Quantity::KappaMinusC => kappa_minus_c(r),
            Quantity::TauRevSe => r.mcmc.tau_rev_se,
            Quantity::TauFwdSe => r.mcmc.tau_fwd_se,
            Quantity::TauFwdTrusted => match r.mcmc.ladder.as_ref()?.ok {
                true => Some(r.tau.tau_fwd),
                false => r.mcmc.tau_fwd_equilibrated,
            },
            Quantity::TauRevTrusted => r.mcmc.ladder.as_ref()?.ok.then_some(r.tau.tau_rev),
        }
    }
}

/// κ(1) − C(1) of a result that reports both.
fn kappa_minus_c(r: &CellResult) -> Option<f64> {
    Some(r.tau.kappa_at_1? - r.tau.heat_capacity_at_1?)
}

/// −1, 0 or +1 (0 for ±0 and NaN).
fn sign(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// The aggregate of one grid point over its replicates: one row of `summary.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// The grid point.
    pub point: GridPoint,
    /// Its canonical key ([`GridPoint::key`]).
    pub point_key: String,
    /// M: the grid point's sample count, or for a μ-specified point the M its replicates
    /// drew (the first replicate's; M depends only on μ and the truth, so all agree).
    pub samples: Option<u64>,
    /// Number of replicates (results) aggregated.
    pub replicates: u64,
    /// Statistics of each [`Quantity`], indexed by [`Quantity::ALL`] order.
    stats: Vec<Stats>,
    /// Fraction of replicates with τ*_rev < 1 (the "cool down" side of the phase boundary).
    pub frac_tau_rev_below_1: Option<f64>,
    /// Replicates whose τ*_rev sits at a search bound.
    pub tau_rev_at_bound: u64,
    /// Replicates whose τ*_fwd sits at a search bound.
    pub tau_fwd_at_bound: u64,
    /// Ising points: replicates whose fit diverged (the unregularised MLE does not exist).
    /// `None` for truths without an iterative fit.
    pub fit_diverged: Option<u64>,
    /// Fraction of replicates where sign(κ(1) − C(1)) equals sign(1 − τ*_rev): how often the
    /// appendix's truth-aware reading at τ = 1 predicts the direction of the optimal change.
    /// `None` when no replicate reports κ (results stored before κ existed).
    pub frac_kappa_sign_agrees: Option<f64>,
    /// Monte Carlo points: replicates whose estimate missed a diagnostic threshold
    /// (`mcmc_ok = false`). `None` when no replicate was evaluated by Monte Carlo.
    pub mcmc_not_ok: Option<u64>,
}

impl SummaryRow {
    /// The statistics of quantity `q`.
    pub fn stats(&self, q: Quantity) -> &Stats {
        &self.stats[q.index()]
    }
}

/// Collects the replicates of one grid point, in any order, and summarises them on demand
/// (so a running study can be summarised as results arrive).
#[derive(Debug, Clone)]
pub struct PointAggregator {
    point: GridPoint,
    replicates: u64,
    values: Vec<Vec<f64>>,
    first_samples: Option<u64>,
    tau_rev_at_bound: u64,
    tau_fwd_at_bound: u64,
    fit_diverged: u64,
    kappa_sign_seen: u64,
    kappa_sign_agrees: u64,
    mcmc_seen: u64,
    mcmc_not_ok: u64,
}

impl PointAggregator {
    /// An aggregator with no replicates yet.
    pub fn new(point: GridPoint) -> Self {
        PointAggregator {
            point,
            replicates: 0,
            values: vec![Vec::new(); Quantity::ALL.len()],
            first_samples: None,
            tau_rev_at_bound: 0,
            tau_fwd_at_bound: 0,
            fit_diverged: 0,
            kappa_sign_seen: 0,
            kappa_sign_agrees: 0,
            mcmc_seen: 0,
            mcmc_not_ok: 0,
        }
    }

    /// Summarise a whole group at once.
    pub fn summarize(point: &GridPoint, results: &[CellResult]) -> SummaryRow {
        let mut agg = PointAggregator::new(point.clone());
        for r in results {
            agg.push(r);
        }
        agg.finish()
    }

    /// Add one replicate's result (a result of this grid point; the caller groups them).
    pub fn push(&mut self, r: &CellResult) {
        self.replicates += 1;
        for q in Quantity::ALL {
            if let Some(v) = q.of(r, &self.point.truth) {
                self.values[q.index()].push(v);
            }
        }
        self.first_samples.get_or_insert(r.samples);
        self.tau_rev_at_bound += u64::from(r.tau.tau_rev_at_bound);
        self.tau_fwd_at_bound += u64::from(r.tau.tau_fwd_at_bound);
        self.fit_diverged += u64::from(r.fit.fit_diverged == Some(true));
        if let Some(ok) = r.mcmc.ladder.as_ref().map(|l| l.ok) {
            self.mcmc_seen += 1;
            self.mcmc_not_ok += u64::from(!ok);
        }
        if let Some(d) = kappa_minus_c(r) {
            self.kappa_sign_seen += 1;
            self.kappa_sign_agrees += u64::from(sign(d) == sign(1.0 - r.tau.tau_rev));
        }
    }

    /// Number of replicates pushed so far.
    pub fn replicates(&self) -> u64 {
        self.replicates
    }

    /// The summary of the replicates pushed so far.
    pub fn finish(&self) -> SummaryRow {
        let stats: Vec<Stats> = self.values.iter().map(|v| Stats::of(v)).collect();
        let tau_rev = &self.values[Quantity::TauRev.index()];
        let finite_tau_rev = tau_rev.iter().filter(|t| t.is_finite()).count();
        let below = tau_rev.iter().filter(|&&t| t.is_finite() && t < 1.0).count();
        let frac_tau_rev_below_1 = (finite_tau_rev > 0).then(|| below as f64 / finite_tau_rev as f64);
        let samples = match self.point.data {
            DataSize::Samples(m) => Some(m),
            DataSize::Mu(_) => self.first_samples,
        };
        // Only fits of a coupling model can diverge; the two-level closed form cannot.
        let fit_diverged = self.point.truth.two_level_truth().is_none().then_some(self.fit_diverged);
        SummaryRow {
            point_key: self.point.key(),
            point: self.point.clone(),
            samples,
            replicates: self.replicates,
            stats,
            frac_tau_rev_below_1,
            tau_rev_at_bound: self.tau_rev_at_bound,
            tau_fwd_at_bound: self.tau_fwd_at_bound,
            fit_diverged,
            frac_kappa_sign_agrees: (self.kappa_sign_seen > 0)
                .then(|| self.kappa_sign_agrees as f64 / self.kappa_sign_seen as f64),
            mcmc_not_ok: (self.mcmc_seen > 0).then_some(self.mcmc_not_ok),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cell::{
        CellKey, CurvePoint, FitMode, FitReport, FitSpec, LadderDiagnostics, TauSummary, TwoLevelFitReport,
    };

    /// A synthetic result with the given τ*s and D values; everything else plausible.
    pub(crate) fn result(point: &GridPoint, r: u32, tau_rev: f64, tau_fwd: f64) -> CellResult {
        let two_level = matches!(point.truth, TruthSpec::TwoLevel { .. });
        CellResult {
            key: CellKey::new(&point.key(), r),
            samples: match point.data {
                DataSize::Samples(m) => m,
                DataSize::Mu(_) => 77,
            },
            tau: TauSummary {
                tau_rev,
                tau_fwd,
                tau_rev_at_bound: false,
                tau_fwd_at_bound: false,
                dkl_rev_at_1: 0.5 + f64::from(r),
                dkl_rev_opt: 0.25,
                dkl_fwd_at_1: 0.75,
                dkl_fwd_opt: 0.5,
                tau_heat_peak: None,
                tau_var: None,
                kappa_at_1: Some(1.0 + 0.1 * f64::from(r)),
                heat_capacity_at_1: Some(1.0),
            },
            two_level: TwoLevelFitReport {
                low_states_hat: two_level.then_some(18 + r),
                gap_hat: two_level.then_some(5.0 + f64::from(r)),
                overlap: two_level.then_some(15),
                tau_rev_closed: None,
                tau_fwd_closed: None,
            },
            fit: FitReport {
                fit_mode: (!two_level).then_some(FitMode::Mle),
                fit_iterations: (!two_level).then_some(12),
                fit_stop: (!two_level).then_some(crate::cell::FitStop::GradTol),
                grad_max_norm: (!two_level).then_some(1e-9),
                nll: (!two_level).then_some(7.5),
                coupling_max_abs: (!two_level).then_some(0.4),
                fit_diverged: (!two_level).then_some(false),
                fit_note: None,
                data_tau_int: None,
                data_thinning: None,
                fit_pearson: None,
            },
            mcmc: Default::default(),
            curve: vec![CurvePoint {
                tau: 1.0,
                dkl_rev: 0.5,
                dkl_fwd: 0.75,
                entropy: 3.0,
                mean_energy: 1.0,
                heat_capacity: 0.1,
                kappa: Some(0.2),
            }],
        }
    }

    pub(crate) fn two_level_point(gap: f64, m: u64) -> GridPoint {
        GridPoint {
            truth: TruthSpec::TwoLevel { states: 100, low_states: 20, gap },
            data: DataSize::Samples(m),
            fit: FitSpec::default(),
        }
    }

    pub(crate) fn ising_point(t: f64, m: u64) -> GridPoint {
        GridPoint {
            truth: TruthSpec::Ising2d { rows: 4, cols: 4, temperature: t },
            data: DataSize::Samples(m),
            fit: FitSpec { mode: FitMode::Mle, l2: 0.0 },
        }
    }

    #[test]
    fn two_level_point_summary_matches_hand_computation() {
        let p = two_level_point(4.0, 100);
        // τ*_rev = 0.5, 0.9, 1.3: mean 0.9, 2 of 3 below 1; D_rev(1) = 0.5, 1.5, 2.5 and
        // D_rev(τ*) = 0.25 → gain_rev = 0.25, 1.25, 2.25 (mean 1.25, std 1).
        let mut rs: Vec<CellResult> =
            [0.5, 0.9, 1.3].iter().enumerate().map(|(i, &t)| result(&p, i as u32, t, 2.0)).collect();
        rs[2].tau.tau_rev_at_bound = true;
        rs[1].tau.tau_heat_peak = Some(1.5);
        let s = PointAggregator::summarize(&p, &rs);
        assert_eq!(s.replicates, 3);
        assert_eq!(s.samples, Some(100));
        assert_eq!(s.point_key, p.key());
        let tr = s.stats(Quantity::TauRev);
        assert!((tr.mean.unwrap() - 0.9).abs() < 1e-15);
        assert_eq!(tr.median, Some(0.9));
        assert!((tr.std.unwrap() - 0.4).abs() < 1e-15);
        assert_eq!(s.frac_tau_rev_below_1, Some(2.0 / 3.0));
        let g = s.stats(Quantity::GainRev);
        assert_eq!((g.mean, g.std, g.q25, g.q75), (Some(1.25), Some(1.0), Some(0.75), Some(1.75)));
        assert_eq!(s.stats(Quantity::GainFwd).mean, Some(0.25));
        assert_eq!((s.tau_rev_at_bound, s.tau_fwd_at_bound), (1, 0));
        // τ_heat_peak present in one replicate only: aggregated over that one.
        let hp = s.stats(Quantity::TauHeatPeak);
        assert_eq!((hp.count, hp.mean, hp.std), (1, Some(1.5), None));
        assert_eq!(s.stats(Quantity::TauVar).count, 0);
        // n̂_g = 18, 19, 20 over n_g = 20; Δ̂ = 5, 6, 7 over Δ = 4.
        assert_eq!(s.stats(Quantity::LowStatesHat).mean, Some(19.0));
        assert!((s.stats(Quantity::LowStatesRatio).mean.unwrap() - 0.95).abs() < 1e-15);
        assert_eq!(s.stats(Quantity::GapHat).mean, Some(6.0));
        assert_eq!(s.stats(Quantity::GapRatio).mean, Some(1.5));
        assert_eq!(s.fit_diverged, None);
    }

    #[test]
    fn kappa_minus_c_statistics_and_the_sign_agreement_fraction() {
        let p = ising_point(3.0, 54);
        // κ(1) − C(1) = 0.3, −0.2, 0.5, none; τ*_rev = 0.8, 0.9, 1.2, 0.7. Replicate 0 agrees
        // (cool, τ* < 1), 1 does not (says heat, τ* < 1), 2 does not (says cool, τ* > 1);
        // replicate 3 reports no κ (a result stored before κ existed) and is not counted.
        let mut rs: Vec<CellResult> =
            [0.8, 0.9, 1.2, 0.7].iter().enumerate().map(|(i, &t)| result(&p, i as u32, t, 1.0)).collect();
        for (r, d) in rs.iter_mut().zip([0.3, -0.2, 0.5]) {
            r.tau.kappa_at_1 = Some(2.0 + d);
            r.tau.heat_capacity_at_1 = Some(2.0);
        }
        rs[3].tau.kappa_at_1 = None;
        let s = PointAggregator::summarize(&p, &rs);
        let d = s.stats(Quantity::KappaMinusC);
        assert_eq!(d.count, 3);
        assert!((d.mean.unwrap() - 0.2).abs() < 1e-12, "{d:?}");
        assert_eq!(s.stats(Quantity::HeatCapacityAt1).count, 4);
        assert_eq!(s.frac_kappa_sign_agrees, Some(1.0 / 3.0));
        let none: Vec<CellResult> = rs
            .iter()
            .cloned()
            .map(|mut r| {
                r.tau.kappa_at_1 = None;
                r
            })
            .collect();
        assert_eq!(PointAggregator::summarize(&p, &none).frac_kappa_sign_agrees, None);
    }

    /// The trusted τ*_fwd of a Monte Carlo point: passed replicates' τ*_fwd, flagged ones'
    /// τ*_fwd from the equilibrated rungs where it exists, nothing for the rest; exact
    /// points have none (their τ*_fwd is the statistic).
    #[test]
    fn trusted_tau_fwd_takes_passed_cells_and_equilibrated_estimates_only() {
        let p = ising_point(2.5, 316);
        let mut rs: Vec<CellResult> = (0..4).map(|i| result(&p, i, 1.0, 2.0 + f64::from(i))).collect();
        let exact = PointAggregator::summarize(&p, &rs);
        assert_eq!(exact.stats(Quantity::TauFwdTrusted).count, 0);
        for (i, r) in rs.iter_mut().enumerate() {
            r.mcmc.ladder = Some(LadderDiagnostics { ok: i == 0, ..Default::default() });
        }
        rs[1].mcmc.tau_fwd_equilibrated = Some(2.5);
        let row = PointAggregator::summarize(&p, &rs);
        let t = row.stats(Quantity::TauFwdTrusted);
        assert_eq!(t.count, 2, "replicate 0 passed, 1 has an equilibrated estimate, 2 and 3 neither");
        assert_eq!(t.mean, Some((2.0 + 2.5) / 2.0));
        assert_eq!(row.stats(Quantity::TauFwd).count, 4);
        assert_eq!(row.mcmc_not_ok, Some(3));
    }

    /// The trusted τ*_rev of a Monte Carlo point: passed replicates' τ*_rev only (a flagged
    /// cell's has no rescue); exact points have none.
    #[test]
    fn trusted_tau_rev_takes_passed_cells_only() {
        let p = ising_point(2.27, 1000);
        let mut rs: Vec<CellResult> = (0..4).map(|i| result(&p, i, 1.0 + f64::from(i), 2.0)).collect();
        assert_eq!(PointAggregator::summarize(&p, &rs).stats(Quantity::TauRevTrusted).count, 0);
        for (i, r) in rs.iter_mut().enumerate() {
            r.mcmc.ladder = Some(LadderDiagnostics { ok: i % 2 == 1, ..Default::default() });
        }
        let row = PointAggregator::summarize(&p, &rs);
        let t = row.stats(Quantity::TauRevTrusted);
        assert_eq!(t.count, 2, "replicates 1 and 3 passed");
        assert_eq!(t.mean, Some((2.0 + 4.0) / 2.0));
        assert_eq!(row.stats(Quantity::TauRev).count, 4);
    }

    #[test]
    fn ising_point_counts_diverged_fits_and_has_no_two_level_statistics() {
        let p = ising_point(2.05, 50);
        let mut rs: Vec<CellResult> = (0..4).map(|i| result(&p, i, 1.2, 80.0)).collect();
        rs[0].fit.fit_diverged = Some(true);
        rs[3].fit.fit_diverged = Some(true);
        rs[1].tau.tau_fwd_at_bound = true;
        let s = PointAggregator::summarize(&p, &rs);
        assert_eq!(s.fit_diverged, Some(2));
        assert_eq!(s.tau_fwd_at_bound, 1);
        assert_eq!(s.frac_tau_rev_below_1, Some(0.0));
        for q in [Quantity::LowStatesHat, Quantity::GapHat, Quantity::LowStatesRatio, Quantity::GapRatio] {
            assert_eq!(s.stats(q).count, 0, "{}", q.name());
        }
    }

    #[test]
    fn mu_point_reports_the_drawn_sample_count_and_empty_point_has_no_statistics() {
        let mut p = two_level_point(3.0, 10);
        p.data = DataSize::Mu(1.5);
        let s = PointAggregator::summarize(&p, &[result(&p, 0, 1.0, 1.0)]);
        assert_eq!(s.samples, Some(77));
        let e = PointAggregator::new(p).finish();
        assert_eq!((e.replicates, e.samples, e.frac_tau_rev_below_1), (0, None, None));
        assert_eq!(e.stats(Quantity::TauRev).mean, None);
    }

    #[test]
    fn incremental_pushes_equal_the_batch_summary() {
        let p = two_level_point(6.0, 400);
        let rs: Vec<CellResult> = (0..7).map(|i| result(&p, i, 0.3 + 0.2 * f64::from(i), 1.1)).collect();
        let mut agg = PointAggregator::new(p.clone());
        for r in rs.iter().rev() {
            agg.push(r);
        }
        let a = agg.finish();
        let b = PointAggregator::summarize(&p, &rs);
        assert_eq!(a.stats(Quantity::TauRev).median, b.stats(Quantity::TauRev).median);
        assert_eq!(a.frac_tau_rev_below_1, b.frac_tau_rev_below_1);
        assert_eq!(a.replicates, 7);
    }
}
