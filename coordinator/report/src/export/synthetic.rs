//! A generated study for tests and benchmarks: plausible results on a (log M, Δ) or (M, T)
//! grid with a known phase boundary, produced one grid point at a time (so a 10^6-cell
//! study costs no memory to "hold").
//!
//! The model: τ*_rev = exp(s · (log10 M − b(y))) · noise, with b rising in y, so τ*_rev < 1 at
//! small M; D_rev(τ) = a (ln τ − ln τ*_rev)² + c, D_fwd likewise around τ*_fwd.

use taustar_common::cell::{
    CellKey, CurvePoint, DataSize, FitMode, FitReport, FitSpec, FitStop, GridPoint, TauSummary, TruthSpec,
    TwoLevelFitReport,
};
use taustar_common::CellResult;

use super::source::PointSource;

/// Which truth the generated study has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Two-level truth, N_s = 100, n_g = 20, y = Δ.
    TwoLevel,
    /// 4×4 Ising, y = T.
    Ising,
}

/// A generated study.
pub struct SyntheticSource {
    /// Truth family.
    pub kind: Kind,
    /// Values of M (x axis).
    pub samples: Vec<u64>,
    /// Values of Δ or T (y axis).
    pub ys: Vec<f64>,
    /// L2 penalties (a third swept axis if more than one).
    pub l2s: Vec<f64>,
    /// Replicates per point.
    pub replicates: u32,
    /// Points of each curve (at least 2), or 0 for none (a study with `[tau] curves = "none"`).
    pub curve_len: usize,
}

/// SplitMix64: a deterministic hash for the generated noise.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in (−1, 1) from a hash.
fn noise(h: u64) -> f64 {
    (mix(h) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// `count` integers log-spaced from `from` to `to` (deduplicated).
pub fn log_spaced(from: f64, to: f64, count: usize) -> Vec<u64> {
    let mut v: Vec<u64> = (0..count)
        .map(|i| {
            let t = if count == 1 { 0.0 } else { i as f64 / (count - 1) as f64 };
            (from.ln() + t * (to.ln() - from.ln())).exp().round() as u64
        })
        .collect();
    v.dedup();
    v
}

impl SyntheticSource {
    /// The paper's Fig. 2 grid (29 Δ × 160 M) with `replicates` replicates.
    pub fn fig2_like(replicates: u32, curve_len: usize) -> Self {
        SyntheticSource {
            kind: Kind::TwoLevel,
            samples: log_spaced(10f64.powf(0.6), 10f64.powf(4.45), 160),
            ys: (0..29).map(|i| 2.5 + 0.25 * f64::from(i)).collect(),
            l2s: vec![0.0],
            replicates,
            curve_len,
        }
    }

    /// The paper's Fig. 3 grid (31 T × 17 M).
    pub fn fig3_like(replicates: u32, curve_len: usize) -> Self {
        let mut samples = log_spaced(50.0, 1500.0, 13);
        samples.extend([2000, 4667, 7333, 10000]);
        let mut ys: Vec<f64> = (0..21).map(|i| 2.0 + 0.05 * f64::from(i)).collect();
        ys.extend((1..=10).map(|i| 3.0 + 0.2 * f64::from(i)));
        SyntheticSource { kind: Kind::Ising, samples, ys, l2s: vec![0.0], replicates, curve_len }
    }

    /// Number of cells.
    pub fn cells(&self) -> u64 {
        (self.samples.len() * self.ys.len() * self.l2s.len()) as u64 * u64::from(self.replicates)
    }

    /// The grid point of (y, M, λ).
    pub fn point(&self, y: f64, m: u64, l2: f64) -> GridPoint {
        let truth = match self.kind {
            Kind::TwoLevel => TruthSpec::TwoLevel { states: 100, low_states: 20, gap: y },
            Kind::Ising => TruthSpec::Ising2d { rows: 4, cols: 4, temperature: y },
        };
        GridPoint { truth, data: DataSize::Samples(m), fit: FitSpec { mode: FitMode::Mle, l2 } }
    }

    /// The result of replicate `r` of `point` (x = log10 M, y = Δ or T).
    pub fn result(&self, point: &GridPoint, r: u32) -> CellResult {
        let (y, m) = match (&point.truth, point.data) {
            (TruthSpec::TwoLevel { gap, .. }, DataSize::Samples(m)) => (*gap, m),
            (TruthSpec::Ising2d { temperature, .. }, DataSize::Samples(m)) => (*temperature, m),
            _ => unreachable!("synthetic points are given by M"),
        };
        let x = (m as f64).log10();
        let h = mix(m) ^ mix(y.to_bits()) ^ mix(u64::from(r) << 32) ^ mix(point.fit.l2.to_bits() + 7);
        let (boundary, slope) = match self.kind {
            Kind::TwoLevel => (0.9 + 0.25 * y, 0.6),
            Kind::Ising => (1.5 + 0.6 * (y - 2.0), 0.5),
        };
        let tau_rev = (slope * (x - boundary) + 0.15 * noise(h)).exp();
        let tau_fwd = (0.5 * slope * (x - boundary) + 0.3 + 0.15 * noise(h ^ 1)).exp();
        let (a, c) = (0.5 / (1.0 + x), 0.02 / (1.0 + x));
        let d_rev = |t: f64| a * (t.ln() - tau_rev.ln()).powi(2) + c;
        let d_fwd = |t: f64| 0.7 * a * (t.ln() - tau_fwd.ln()).powi(2) + 1.3 * c;
        let n = if self.curve_len == 0 { 0 } else { self.curve_len.max(2) };
        let curve = (0..n)
            .map(|i| {
                let tau = 0.2 + 4.8 * i as f64 / (n - 1) as f64;
                CurvePoint {
                    tau,
                    dkl_rev: d_rev(tau),
                    dkl_fwd: d_fwd(tau),
                    entropy: 3.0 + tau.ln(),
                    mean_energy: -1.0 / tau,
                    heat_capacity: 1.0 / (1.0 + (tau - 1.5).powi(2)),
                    kappa: Some(1.0 / (1.0 + (tau - 1.5).powi(2)) + 0.3 * (tau_rev - tau)),
                }
            })
            .collect();
        let two_level = self.kind == Kind::TwoLevel;
        let diverged = !two_level && noise(h ^ 3) < 1.0 - 2.0 * (x - 1.7 + 0.8 * (y - 2.0)).clamp(0.0, 1.0);
        CellResult {
            key: CellKey::new(&point.key(), r),
            samples: m,
            tau: TauSummary {
                tau_rev,
                tau_fwd,
                tau_rev_at_bound: false,
                tau_fwd_at_bound: !two_level && diverged && noise(h ^ 4) > 0.0,
                dkl_rev_at_1: d_rev(1.0),
                dkl_rev_opt: c,
                dkl_fwd_at_1: d_fwd(1.0),
                dkl_fwd_opt: 1.3 * c,
                tau_heat_peak: Some(1.5),
                tau_var: (!r.is_multiple_of(5)).then_some(tau_rev * 1.1),
                // κ(1) − C(1) has the sign of 1 − τ*_rev, as where D_rev is unimodal.
                kappa_at_1: Some(0.8 + 0.3 * (1.0 - tau_rev)),
                heat_capacity_at_1: Some(0.8),
            },
            two_level: TwoLevelFitReport {
                low_states_hat: two_level
                    .then(|| (20.0 * (1.0 + 2.0 / x.powi(2) * noise(h ^ 5).abs())).round() as u32),
                gap_hat: two_level.then(|| y * (1.0 + 1.5 / (1.0 + x) * (0.5 + 0.5 * noise(h ^ 6)))),
                overlap: two_level.then_some(18),
                tau_rev_closed: two_level.then_some(tau_rev),
                tau_fwd_closed: None,
            },
            fit: FitReport {
                fit_mode: (!two_level).then_some(FitMode::Mle),
                fit_iterations: (!two_level).then_some(9),
                fit_stop: (!two_level).then_some(if diverged { FitStop::Diverged } else { FitStop::GradTol }),
                grad_max_norm: (!two_level).then_some(1e-10),
                nll: (!two_level).then_some(8.0),
                coupling_max_abs: (!two_level).then_some(if diverged { 20.0 } else { 0.5 }),
                fit_diverged: (!two_level).then_some(diverged),
                fit_note: (!two_level && diverged)
                    .then(|| "max|J| passed the cap, still improving".to_string()),
                data_tau_int: None,
                data_thinning: None,
                fit_pearson: None,
            },
            mcmc: Default::default(),
            curve,
        }
    }
}

impl PointSource for SyntheticSource {
    fn study_name(&self) -> String {
        match self.kind {
            Kind::TwoLevel => "synthetic-two-level".into(),
            Kind::Ising => "synthetic-ising".into(),
        }
    }

    fn for_each_point(
        &self,
        f: &mut dyn FnMut(&GridPoint, &[CellResult]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut results = Vec::with_capacity(self.replicates as usize);
        for &l2 in &self.l2s {
            for &y in &self.ys {
                for &m in &self.samples {
                    let p = self.point(y, m, l2);
                    results.clear();
                    results.extend((0..self.replicates).map(|r| self.result(&p, r)));
                    f(&p, &results)?;
                }
            }
        }
        Ok(())
    }
}
