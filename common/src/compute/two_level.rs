//! The two-level truth's cell (docs/spec.md §4.1): exact counts of M draws, the two-level
//! fit, the exact landscape of the fit against the truth, and the closed forms of τ* beside it.

use rand_chacha::ChaCha12Rng;

use super::{analyse, reported_taus, resolve_samples, CellSteps, Evaluated, Fitted};
use crate::cell::{CellSpec, FitReport, McmcReport, TwoLevelFitReport};
use crate::error::SpecError;
use taustar_science::fit::two_level::{fit_two_level, TwoLevelFit};
use taustar_science::model::two_level::TwoLevelTruth;
use taustar_science::tau::Landscape;

/// The two-level truth as a cell's steps.
pub struct TwoLevel {
    truth: TwoLevelTruth,
}

impl TwoLevel {
    /// The truth of `states` states, `low_states` of them at energy 0 and the rest at `gap`.
    pub fn new(states: u32, low_states: u32, gap: f64) -> TwoLevel {
        TwoLevel { truth: TwoLevelTruth::new(states, low_states, gap) }
    }

    /// c[L][L̂]: how many states of true label L the fit labels L̂.
    fn classes(&self, fit: &TwoLevelFit) -> [[u32; 2]; 2] {
        let mut classes = [[0u32; 2]; 2];
        for (s, &lh) in fit.labels.iter().enumerate() {
            let l = usize::from(s as u32 >= self.truth.low_states);
            classes[l][usize::from(lh)] += 1;
        }
        classes
    }
}

/// The data: how often each state was drawn.
pub struct Counts {
    counts: Vec<u64>,
    m: u64,
}

impl CellSteps for TwoLevel {
    type Data = Counts;
    type Fitted = TwoLevelFit;
    type Side = ();

    fn samples(&self, spec: &CellSpec) -> Result<u64, SpecError> {
        resolve_samples(spec.point.data, self.truth.entropy(), 2)
    }

    fn draw(&self, _: &CellSpec, m: u64, rng: &mut ChaCha12Rng) -> Result<Counts, SpecError> {
        Ok(Counts { counts: self.truth.sample_counts(m, rng), m })
    }

    fn fit(
        &self,
        _: &CellSpec,
        data: &Counts,
        rng: &mut ChaCha12Rng,
    ) -> Result<Fitted<TwoLevelFit>, SpecError> {
        let fit = fit_two_level(&data.counts, rng);
        let classes = self.classes(&fit);
        let (rev_closed, fwd_closed) = two_level_closed_forms(classes, self.truth.gap, fit.gap_hat);
        let two_level = TwoLevelFitReport {
            low_states_hat: Some(fit.low_states_hat),
            gap_hat: Some(fit.gap_hat),
            overlap: Some(classes[1][1]),
            tau_rev_closed: rev_closed,
            tau_fwd_closed: fwd_closed,
        };
        Ok(Fitted { model: fit, report: FitReport::default(), two_level })
    }

    fn evaluate(
        &self,
        spec: &CellSpec,
        data: &Counts,
        fit: &TwoLevelFit,
        _: &mut ChaCha12Rng,
    ) -> Result<Evaluated<()>, SpecError> {
        let truth = &self.truth;
        let classes = self.classes(fit);
        let log_z = truth.log_partition();
        let (mut mult, mut energy, mut log_p) = (Vec::new(), Vec::new(), Vec::new());
        for (l, row) in classes.iter().enumerate() {
            for (lh, &count) in row.iter().enumerate() {
                if count > 0 {
                    mult.push(f64::from(count));
                    energy.push(fit.gap_hat * lh as f64);
                    log_p.push(-truth.gap * l as f64 - log_z);
                }
            }
        }
        let land = Landscape::new(mult, energy, log_p);
        // Ê over the data is Δ̂ on fitted-high states, 0 elsewhere.
        let high: u64 = data.counts.iter().zip(&fit.labels).filter(|(_, &l)| l == 1).map(|(&c, _)| c).sum();
        let f1 = high as f64 / data.m as f64;
        let data_energy = (fit.gap_hat * f1, fit.gap_hat * fit.gap_hat * f1 * (1.0 - f1));
        let tau = analyse(&land, &reported_taus(&spec.settings), spec.settings.tau_bounds, Some(data_energy));
        Ok(Evaluated { tau, mcmc: McmcReport::default(), side: () })
    }
}

/// The two-level closed forms of docs/spec.md §4.1, with c[L][L̂] the class sizes.
///
/// Under q_τ states of one fitted label are equally likely, so with π = q(L̂ = 1):
/// Var_q(L̂) = π(1−π) and Cov_q(L, L̂) = π(1−π)(ℓ/n̂_e − (n_e−ℓ)/n̂_g). The stationarity
/// condition β̂ Var_q(L̂) = Δ Cov_q(L, L̂) of dD_rev/dβ̂ = 0 loses π entirely:
/// β̂* = Δ(ℓN_s − n_e n̂_e)/(n̂_g n̂_e), so τ*_rev = Δ̂/β̂* = (Δ̂/Δ)·n̂_g n̂_e/(ℓN_s − n_e n̂_e)
/// when the denominator is positive (else D_rev falls all the way to τ → ∞).
/// Forward: E_{q_τ}[L̂] = E_p[L̂] gives e^{−β̂} = (P/(1−P))·n̂_g/n̂_e with P = E_p[L̂], i.e.
/// β̂ = ln(((1−P)/P)·n̂_e/n̂_g), τ*_fwd = Δ̂/β̂ when β̂ > 0.
fn two_level_closed_forms(c: [[u32; 2]; 2], gap: f64, gap_hat: f64) -> (Option<f64>, Option<f64>) {
    let f = |x: u32| f64::from(x);
    let (ng_hat, ne_hat) = (f(c[0][0] + c[1][0]), f(c[0][1] + c[1][1]));
    let ne = f(c[1][0] + c[1][1]);
    let ns = ng_hat + ne_hat;
    let overlap = f(c[1][1]);
    if gap_hat <= 0.0 {
        return (None, None);
    }
    let denom = overlap * ns - ne * ne_hat;
    let rev = (denom > 0.0).then(|| gap_hat / gap * ng_hat * ne_hat / denom);
    let eg = (-gap).exp();
    // (1 − P)/P without forming P: both over the same Z_p.
    let odds = (f(c[0][0]) + f(c[1][0]) * eg) / (f(c[0][1]) + f(c[1][1]) * eg);
    let beta_hat = (odds * ne_hat / ng_hat).ln();
    let fwd = (beta_hat > 0.0).then(|| gap_hat / beta_hat);
    (rev, fwd)
}
