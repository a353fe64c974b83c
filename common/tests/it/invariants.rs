//! docs/spec.md §8 invariants, one test each, plus further checks: closed forms versus
//! the numeric minimiser on many random cells, KLs computed two ways, rescaled-truth
//! evaluation, determinism, and property tests for the fits and the KLs.

// Index loops read like the matrix formulas they check.
#![allow(clippy::needless_range_loop)]

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use taustar_common::cell::{
    CellSettings, CellSpec, DataSize, FitMode, FitSpec, GridPoint, TauGrid, TruthSpec,
};
use taustar_common::compute::eval_ising_model;
use taustar_common::{run_cell, CellResult};
use taustar_science::exact::{log_sum_exp, spin};
use taustar_science::model::ising::{torus_bonds, IsingTruth, Pairs};

fn two_level(states: u32, low: u32, gap: f64, m: u64, seed: u64, r: u32) -> CellSpec {
    CellSpec {
        study_seed: seed,
        point: GridPoint {
            truth: TruthSpec::TwoLevel { states, low_states: low, gap },
            data: DataSize::Samples(m),
            fit: FitSpec::default(),
        },
        replicate: r,
        settings: CellSettings::default(),
    }
}

fn ising(rows: u32, cols: u32, t: f64, m: u64, mode: FitMode, l2: f64, r: u32) -> CellSpec {
    CellSpec {
        study_seed: 7,
        point: GridPoint {
            truth: TruthSpec::Ising2d { rows, cols, temperature: t },
            data: DataSize::Samples(m),
            fit: FitSpec { mode, l2 },
        },
        replicate: r,
        settings: CellSettings::default(),
    }
}

/// The truth's coupling matrix J/T scaled by `c`, as an N×N array.
fn scaled_truth_matrix(rows: u32, cols: u32, t: f64, c: f64) -> Vec<Vec<f64>> {
    let n = (rows * cols) as usize;
    let mut m = vec![vec![0.0; n]; n];
    for (i, j) in torus_bonds(rows, cols) {
        m[i as usize][j as usize] = c / t;
        m[j as usize][i as usize] = c / t;
    }
    m
}

fn all_finite(r: &CellResult) -> bool {
    let scalars = [
        r.tau.tau_rev,
        r.tau.tau_fwd,
        r.tau.dkl_rev_at_1,
        r.tau.dkl_rev_opt,
        r.tau.dkl_fwd_at_1,
        r.tau.dkl_fwd_opt,
    ];
    scalars.iter().all(|v| v.is_finite())
        && r.tau.tau_heat_peak.is_none_or(f64::is_finite)
        && r.tau.tau_var.is_none_or(f64::is_finite)
        && r.two_level.gap_hat.is_none_or(f64::is_finite)
        && r.curve.iter().all(|p| {
            [p.tau, p.dkl_rev, p.dkl_fwd, p.entropy, p.mean_energy, p.heat_capacity]
                .iter()
                .all(|v| v.is_finite())
        })
}

#[test]
fn divergences_are_non_negative() {
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(1);
    for k in 0..300 {
        let states = rng.random_range(2..300);
        let low = rng.random_range(1..states);
        let spec = two_level(states, low, rng.random_range(0.1..50.0), rng.random_range(2..5000), k, 0);
        let r = run_cell(&spec).unwrap();
        for p in &r.curve {
            assert!(p.dkl_rev >= 0.0 && p.dkl_fwd >= 0.0, "{}: {p:?}", r.key);
        }
        assert!(r.tau.dkl_rev_opt >= 0.0 && r.tau.dkl_fwd_opt >= 0.0);
        assert!(r.tau.dkl_rev_opt <= r.tau.dkl_rev_at_1 + 1e-15, "τ* must not be worse than τ = 1");
        assert!(r.tau.dkl_fwd_opt <= r.tau.dkl_fwd_at_1 + 1e-15);
    }
    for r in 0..4 {
        let res = run_cell(&ising(3, 3, 2.3, 60, FitMode::Mle, 0.01, r)).unwrap();
        assert!(res.curve.iter().all(|p| p.dkl_rev >= 0.0 && p.dkl_fwd >= 0.0));
    }
}

#[test]
fn both_divergences_vanish_when_the_model_is_the_truth() {
    let rep =
        eval_ising_model(3, 3, 2.3, &scaled_truth_matrix(3, 3, 2.3, 1.0), &[1.0], &CellSettings::default())
            .unwrap();
    assert!(rep.summary.dkl_rev_at_1.abs() < 1e-12 && rep.summary.dkl_fwd_at_1.abs() < 1e-12, "{rep:?}");
    assert!((rep.summary.tau_rev - 1.0).abs() < 1e-9 && (rep.summary.tau_fwd - 1.0).abs() < 1e-9);
}

/// docs/spec.md §8 states the rescaled truth by its couplings: with Ĵ = c·J/T, q_τ ∝ exp(−cE/(Tτ))
/// equals p ∝ exp(−E/T) at τ = c. Both directions are tested:
/// couplings c·J/T give τ* = c, couplings J/(c·T) give τ* = 1/c.
#[test]
fn rescaled_truth_gives_tau_star_equal_to_the_scale() {
    for c in [0.8, 1.3] {
        for (couplings_scale, want) in [(c, c), (1.0 / c, 1.0 / c)] {
            let j = scaled_truth_matrix(4, 4, 2.3, couplings_scale);
            let rep = eval_ising_model(4, 4, 2.3, &j, &[0.5, 1.0, 2.0], &CellSettings::default()).unwrap();
            assert!(
                (rep.summary.tau_rev - want).abs() < 1e-6,
                "c={c}: τ*_rev {} vs {want}",
                rep.summary.tau_rev
            );
            assert!(
                (rep.summary.tau_fwd - want).abs() < 1e-6,
                "c={c}: τ*_fwd {} vs {want}",
                rep.summary.tau_fwd
            );
            assert!(!rep.summary.tau_rev_at_bound && !rep.summary.tau_fwd_at_bound);
            assert!(rep.summary.dkl_rev_opt < 1e-10 && rep.summary.dkl_fwd_opt < 1e-10, "{rep:?}");
        }
    }
}

#[test]
fn two_level_closed_forms_equal_the_numeric_minimisers_on_1000_random_cells() {
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(2);
    let (mut rev_checked, mut fwd_checked) = (0, 0);
    for k in 0..1200 {
        let states = rng.random_range(3..200);
        let low = rng.random_range(1..states);
        let m = if rng.random_bool(0.5) { rng.random_range(2..50) } else { rng.random_range(50..20_000) };
        let r = run_cell(&two_level(states, low, rng.random_range(0.5..12.0), m, k, 0)).unwrap();
        match r.two_level.tau_rev_closed {
            Some(t) if t > 0.0101 && t < 99.0 => {
                assert!(
                    (r.tau.tau_rev - t).abs() < 1e-7 * t,
                    "{}: numeric {} closed {t}",
                    r.key,
                    r.tau.tau_rev
                );
                rev_checked += 1;
            }
            Some(t) => assert!(r.tau.tau_rev_at_bound, "{}: closed {t} outside the bounds", r.key),
            None => {
                assert!(r.tau.tau_rev_at_bound && r.tau.tau_rev == 100.0, "{}: D_rev falls to τ → ∞", r.key)
            }
        }
        match r.two_level.tau_fwd_closed {
            Some(t) if t > 0.0101 && t < 99.0 => {
                assert!(
                    (r.tau.tau_fwd - t).abs() < 1e-7 * t,
                    "{}: numeric {} closed {t}",
                    r.key,
                    r.tau.tau_fwd
                );
                fwd_checked += 1;
            }
            Some(_) => assert!(r.tau.tau_fwd_at_bound),
            None => assert!(r.tau.tau_fwd_at_bound),
        }
    }
    assert!(rev_checked >= 1000, "only {rev_checked} cells had an interior closed-form τ*_rev");
    assert!(fwd_checked >= 1000, "only {fwd_checked} cells had an interior closed-form τ*_fwd");
}

#[test]
fn kl_at_tau_one_agrees_with_a_direct_sum_over_states() {
    // A random 3x3 model evaluated by the library, and by a plain loop over the 512 states.
    let (rows, cols, t) = (3u32, 3u32, 2.1);
    let n = 9usize;
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(5);
    let mut j = vec![vec![0.0; n]; n];
    for a in 0..n {
        for b in a + 1..n {
            let v = rng.random_range(-0.8..0.8);
            j[a][b] = v;
            j[b][a] = v;
        }
    }
    let rep = eval_ising_model(rows, cols, t, &j, &[1.0], &CellSettings::default()).unwrap();
    let pairs = Pairs::new(n as u32);
    let truth = IsingTruth::new(rows, cols, t, &pairs);
    let h: Vec<f64> = (0..1u32 << n)
        .map(|x| {
            let mut s = 0.0;
            for a in 0..n {
                for b in a + 1..n {
                    s += j[a][b] * spin(x, a as u32) * spin(x, b as u32);
                }
            }
            s
        })
        .collect();
    let lz = log_sum_exp(&h);
    let (mut rev, mut fwd, mut total_q, mut total_p) = (0.0, 0.0, 0.0, 0.0);
    for (x, &hx) in h.iter().enumerate() {
        let lq = hx - lz;
        let lp = truth.log_p[x];
        rev += lq.exp() * (lq - lp);
        fwd += lp.exp() * (lp - lq);
        total_q += lq.exp();
        total_p += lp.exp();
    }
    assert!((total_q - 1.0).abs() < 1e-12 && (total_p - 1.0).abs() < 1e-12, "probabilities sum to 1");
    assert!((rev - rep.summary.dkl_rev_at_1).abs() < 1e-12, "{rev} vs {}", rep.summary.dkl_rev_at_1);
    assert!((fwd - rep.summary.dkl_fwd_at_1).abs() < 1e-12, "{fwd} vs {}", rep.summary.dkl_fwd_at_1);
}

#[test]
fn ising_cells_report_fit_diagnostics_and_flag_non_existent_mles() {
    // Sparse data at low T: on a 4x4 torus the unregularised MLE essentially never exists.
    let mut diverged = 0;
    for r in 0..4 {
        let res = run_cell(&ising(4, 4, 2.05, 50, FitMode::Mle, 0.0, r)).unwrap();
        assert_eq!(res.fit.fit_mode, Some(FitMode::Mle));
        if res.fit.fit_diverged == Some(true) {
            diverged += 1;
            assert!(
                res.fit.fit_note.as_deref().is_some_and(|n| n.contains("does not exist")),
                "{:?}",
                res.fit.fit_note
            );
        } else {
            assert!(res.fit.grad_max_norm.unwrap() <= 1e-8);
        }
        assert!(all_finite(&res));
    }
    assert!(diverged >= 3, "only {diverged}/4 replicates at T=2.05, M=50 flagged a non-existent MLE");
    // With an L2 penalty the optimum always exists and is reached.
    let res = run_cell(&ising(4, 4, 2.05, 50, FitMode::Mle, 0.01, 0)).unwrap();
    assert_eq!(res.fit.fit_diverged, Some(false), "{:?}", res.fit.fit_note);
    assert!(res.fit.grad_max_norm.unwrap() <= 1e-8);
}

#[test]
fn large_data_fits_come_close_to_the_truth_couplings() {
    // M = 10^5 at T = 3: the converged MLE gives τ* near 1 and tiny divergences.
    let res = run_cell(&ising(3, 3, 3.0, 100_000, FitMode::Mle, 0.0, 0)).unwrap();
    assert_eq!(res.fit.fit_diverged, Some(false));
    assert!((res.tau.tau_rev - 1.0).abs() < 0.05 && (res.tau.tau_fwd - 1.0).abs() < 0.05, "{res:?}");
    assert!(res.tau.dkl_fwd_at_1 < 1e-3);
}

#[test]
fn same_spec_gives_bit_identical_json_in_any_thread_and_order() {
    let specs: Vec<CellSpec> = (0..6)
        .map(|r| two_level(100, 20, 4.0 + f64::from(r), 40, 99, r))
        .chain((0..2).map(|r| ising(3, 3, 2.3, 80, FitMode::Mle, 0.0, r)))
        .chain(std::iter::once(ising(2, 3, 2.3, 80, FitMode::Paper, 0.0, 0)))
        .collect();
    let serial: Vec<String> =
        specs.iter().map(|s| serde_json::to_string(&run_cell(s).unwrap()).unwrap()).collect();
    let parallel: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = specs
            .iter()
            .rev()
            .map(|s| scope.spawn(move || serde_json::to_string(&run_cell(s).unwrap()).unwrap()))
            .collect();
        let mut out: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        out.reverse();
        out
    });
    assert_eq!(serial, parallel);
    // Different replicates draw different data.
    assert_ne!(serial[0], serial[1]);
}

/// Random cells of both truths, small enough to run many: two-level with random N_s, n_g, Δ,
/// M; Ising 3×3 and 2×4 in both fit modes at random T and M.
fn random_cells(n: usize, seed: u64) -> Vec<CellSpec> {
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                let states = rng.random_range(4..60);
                let low = rng.random_range(1..states);
                two_level(states, low, rng.random_range(0.5..12.0), rng.random_range(2..500), seed, i as u32)
            } else {
                let (rows, cols) = if i % 4 == 1 { (3, 3) } else { (2, 4) };
                let mode = if i % 3 == 0 { FitMode::Paper } else { FitMode::Mle };
                let l2 = if mode == FitMode::Mle { 0.01 } else { 0.0 };
                ising(rows, cols, rng.random_range(1.5..5.0), rng.random_range(20..3000), mode, l2, i as u32)
            }
        })
        .collect()
}

/// The cell again with the reporting grid `count` points from `from` to `to` (and τ = 1).
fn with_grid(spec: &CellSpec, from: f64, to: f64, count: u32) -> CellResult {
    let mut s = spec.clone();
    s.settings.tau_grid = TauGrid { from, to, count };
    run_cell(&s).unwrap()
}

#[test]
fn kappa_minus_c_at_one_is_the_tau_slope_of_d_rev_on_random_cells_of_both_truths() {
    // docs/spec.md §5: dD_rev/dτ = (κ − C)/τ, so at τ = 1 the slope is κ(1) − C(1).
    let h = 1e-5;
    for spec in random_cells(40, 3) {
        let r = with_grid(&spec, 1.0 - h, 1.0 + h, 2);
        let (lo, hi) = (r.curve.first().unwrap(), r.curve.last().unwrap());
        let slope = (hi.dkl_rev - lo.dkl_rev) / (hi.tau - lo.tau);
        let (kappa, c) = (r.tau.kappa_at_1.unwrap(), r.tau.heat_capacity_at_1.unwrap());
        let p1 = r.curve.iter().find(|p| p.tau == 1.0).unwrap();
        assert_eq!(p1.kappa, Some(kappa), "the curve's κ(1) is the cell's");
        assert_eq!(p1.heat_capacity, c, "the curve's C(1) is the cell's");
        assert!(
            ((kappa - c) - slope).abs() <= 1e-6 * (1.0 + slope.abs()),
            "{}: κ(1) − C(1) = {} but dD_rev/dτ = {slope}",
            r.key,
            kappa - c
        );
    }
}

#[test]
fn kappa_equals_c_at_interior_optima_and_its_sign_at_one_gives_the_direction() {
    let mut interior = 0;
    for spec in random_cells(40, 5) {
        let r = run_cell(&spec).unwrap();
        if r.tau.tau_rev_at_bound {
            continue;
        }
        interior += 1;
        let t = r.tau.tau_rev;
        let at = with_grid(&spec, t, t, 1);
        let p = at.curve.iter().find(|p| p.tau == t).unwrap();
        let (kappa, c) = (p.kappa.unwrap(), p.heat_capacity);
        assert!((kappa - c).abs() <= 1e-7 * (1.0 + c.abs()), "{}: κ(τ*) = {kappa}, C(τ*) = {c}", r.key);
        // κ − C changes sign at τ*_rev, from negative below (D_rev falls) to positive above.
        let near = with_grid(&spec, 0.999 * t, 1.001 * t, 2);
        let (below, above) = (near.curve.iter().find(|q| q.tau < t).unwrap(), near.curve.last().unwrap());
        assert!(above.tau > t);
        assert!(below.kappa.unwrap() < below.heat_capacity, "{}: below τ* {below:?}", r.key);
        assert!(above.kappa.unwrap() > above.heat_capacity, "{}: above τ* {above:?}", r.key);
        // Where D_rev is unimodal the sign at τ = 1 says which side τ*_rev is on.
        let d1 = r.tau.kappa_at_1.unwrap() - r.tau.heat_capacity_at_1.unwrap();
        if t.ln().abs() > 1e-3 {
            assert_eq!(d1 > 0.0, t < 1.0, "{}: κ(1) − C(1) = {d1}, τ*_rev = {t}", r.key);
        }
    }
    assert!(interior >= 20, "only {interior} interior optima");
}

#[test]
fn the_new_paper_mode_defaults_are_in_effect() {
    // The constants of the authors' Fig. 3 sweep: relative-NLL tolerance 1e-5, 15 000 steps.
    let s = CellSettings::default();
    assert_eq!((s.rel_tol, s.max_iter), (1e-5, 15_000));
    let spec = ising(3, 3, 2.3, 54, FitMode::Paper, 0.0, 0);
    let r = run_cell(&spec).unwrap();
    assert_eq!(r.fit.fit_stop, Some(taustar_common::FitStop::RelTol), "{r:?}");
    let stopped_early = r.fit.fit_iterations.unwrap();
    assert!(stopped_early < 15_000);
    // A tighter tolerance runs longer from the same start; a cap ends it with the reason.
    let mut tight = spec.clone();
    tight.settings.rel_tol = 1e-7;
    let t = run_cell(&tight).unwrap();
    assert!(
        t.fit.fit_iterations.unwrap() > stopped_early,
        "{} vs {stopped_early}",
        t.fit.fit_iterations.unwrap()
    );
    let mut capped = spec.clone();
    capped.settings.max_iter = 10;
    let c = run_cell(&capped).unwrap();
    assert_eq!((c.fit.fit_iterations, c.fit.fit_stop), (Some(10), Some(taustar_common::FitStop::MaxIter)));
    assert!(c.fit.fit_note.unwrap().contains("max_iter = 10"));
    // The converged mode says so.
    let m = run_cell(&ising(3, 3, 2.3, 500, FitMode::Mle, 0.01, 0)).unwrap();
    assert_eq!(m.fit.fit_stop, Some(taustar_common::FitStop::GradTol));
}

#[test]
fn the_reporting_grid_contains_tau_one() {
    let g = TauGrid { from: 0.2, to: 5.0, count: 70 };
    let v = g.values();
    assert_eq!(v.len(), 71);
    assert!(v.contains(&1.0));
    assert!(v.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn invalid_cells_are_errors_naming_the_field() {
    let msg = |s: CellSpec| run_cell(&s).unwrap_err().to_string();
    assert!(msg(two_level(10, 10, 1.0, 10, 0, 0)).contains("low_states = 10"));
    assert!(msg(two_level(10, 3, 0.0, 10, 0, 0)).contains("gap = 0"));
    assert!(msg(two_level(10, 3, 1.0, 0, 0, 0)).contains("samples = 0"));
    assert!(msg(ising(3, 3, -1.0, 10, FitMode::Mle, 0.0, 0)).contains("temperature = -1"));
    let big = msg(ising(5, 5, 2.0, 10, FitMode::Mle, 0.0, 0));
    assert!(big.contains("lattice = 5x5") && big.contains("24 spins") && big.contains("plm"), "{big}");
    // Past enumeration: plm, Monte Carlo evaluation and Kaufman's sides ≥ 3 are required.
    let big = msg(ising(5, 5, 2.0, 10, FitMode::Plm, 0.0, 0));
    assert!(big.contains("eval.method = exact") && big.contains("mcmc"), "{big}");
    let mut thin = ising(2, 13, 2.0, 10, FitMode::Plm, 0.0, 0);
    thin.settings.mcmc = Some(taustar_common::McmcSettings::default());
    thin.settings.tau_bounds = (0.2, 5.0);
    assert!(msg(thin).contains("lattice = 2x13"));
    // Monte Carlo settings: on a two-level truth, and values out of range, name the key.
    let mut mc = two_level(10, 3, 1.0, 10, 0, 0);
    mc.settings.mcmc = Some(taustar_common::McmcSettings::default());
    assert!(msg(mc).contains("eval.method = mcmc"));
    let mut mc = ising(3, 3, 2.0, 10, FitMode::Mle, 0.0, 0);
    mc.settings.mcmc = Some(taustar_common::McmcSettings { resamples: 50, ..Default::default() });
    assert!(msg(mc.clone()).contains("mcmc.resamples = 50"));
    mc.settings.mcmc = Some(taustar_common::McmcSettings::default());
    mc.settings.tau_bounds = (1.5, 5.0);
    assert!(msg(mc.clone()).contains("tau.bounds = 1.5:5"));
    mc.settings.tau_bounds = (0.2, 5.0);
    mc.settings.curves = taustar_common::CurveOutput::Recompute;
    assert!(msg(mc).contains("tau.curves = recompute"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No NaN anywhere for Δ up to 50 and τ down to 0.01; KLs non-negative; fit within range.
    #[test]
    fn two_level_cells_are_finite_and_sane(
        states in 2u32..400,
        low_frac in 0.0f64..1.0,
        gap in 0.001f64..50.0,
        m in 2u64..100_000,
        seed in any::<u64>(),
    ) {
        let low = ((f64::from(states - 1) * low_frac) as u32).clamp(1, states - 1);
        let mut spec = two_level(states, low, gap, m, seed, 0);
        spec.settings.tau_grid = TauGrid { from: 0.01, to: 5.0, count: 40 };
        let r = run_cell(&spec).unwrap();
        prop_assert!(all_finite(&r), "{:?}", r);
        prop_assert!(r.curve.iter().all(|p| p.dkl_rev >= 0.0 && p.dkl_fwd >= 0.0 && p.entropy >= -1e-12));
        let ng = r.two_level.low_states_hat.unwrap();
        prop_assert!(ng >= 1 && ng < states);
        prop_assert!(r.two_level.gap_hat.unwrap() >= 0.0);
        prop_assert!(r.two_level.overlap.unwrap() <= states - low);
        prop_assert!(r.tau.tau_rev >= 0.01 && r.tau.tau_rev <= 100.0);
        prop_assert!(r.tau.tau_fwd >= 0.01 && r.tau.tau_fwd <= 100.0);
    }

    /// Ising fits: finite, non-negative KLs, and with λ > 0 always converged.
    #[test]
    fn penalised_ising_fits_converge(t in 1.0f64..5.0, m in 5u64..400, l2 in 0.001f64..0.1, r in 0u32..1000) {
        let res = run_cell(&ising(2, 3, t, m, FitMode::Mle, l2, r)).unwrap();
        prop_assert!(all_finite(&res));
        prop_assert_eq!(res.fit.fit_diverged, Some(false));
        prop_assert!(res.fit.grad_max_norm.unwrap() <= 1e-8);
        prop_assert!(res.curve.iter().all(|p| p.dkl_rev >= 0.0 && p.dkl_fwd >= 0.0));
    }
}

/// A Monte Carlo cell (`[eval] method = "mcmc"`) is as deterministic as an exact one, carries
/// a standard error for every estimate and a curve error for every curve point, and agrees
/// with the exact cell of the same spec (same data, same fit) within its error bars.
#[test]
fn monte_carlo_cells_are_deterministic_carry_error_bars_and_agree_with_exact_ones() {
    let mut exact = ising(3, 3, 2.5, 200, FitMode::Mle, 0.01, 0);
    exact.settings.tau_bounds = (0.2, 5.0);
    exact.settings.tau_grid = taustar_common::cell::TauGrid { from: 0.5, to: 2.0, count: 4 };
    let mut mc = exact.clone();
    mc.settings.mcmc =
        Some(taustar_common::McmcSettings { steps: 1_000, burn_in: 200, ..Default::default() });
    let a = run_cell(&mc).unwrap();
    let b = run_cell(&mc).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "bit-identical on a second run");
    // … and on any number of threads (the bootstrap's resamples run in parallel).
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let c = pool.install(|| run_cell(&mc).unwrap());
        assert_eq!(format!("{a:?}"), format!("{c:?}"), "bit-identical on {threads} threads");
    }
    let e = run_cell(&exact).unwrap();
    // Same data, same fit: the fit's report is the exact cell's.
    assert_eq!(a.fit, e.fit);
    assert_eq!(a.samples, e.samples);
    assert_eq!(e.mcmc, taustar_common::McmcReport::default(), "an exact cell has no Monte Carlo part");
    let m = &a.mcmc;
    let l = m.ladder.as_ref().expect("a Monte Carlo cell has diagnostics");
    assert_eq!(l.steps, 1_000);
    assert!(l.rungs >= 3 && l.round_trips > 0 && l.ess > 0.0);
    assert_eq!(a.curve.len(), e.curve.len());
    assert_eq!(m.curve_se.len(), a.curve.len());
    for (value, se, want, what) in [
        (a.tau.tau_rev, m.tau_rev_se, e.tau.tau_rev, "tau_rev"),
        (a.tau.dkl_rev_at_1, m.dkl_rev_at_1_se, e.tau.dkl_rev_at_1, "dkl_rev_at_1"),
        (a.tau.dkl_fwd_at_1, m.dkl_fwd_at_1_se, e.tau.dkl_fwd_at_1, "dkl_fwd_at_1"),
        (
            a.tau.heat_capacity_at_1.unwrap(),
            m.heat_capacity_at_1_se,
            e.tau.heat_capacity_at_1.unwrap(),
            "C(1)",
        ),
        (a.tau.kappa_at_1.unwrap(), m.kappa_at_1_se, e.tau.kappa_at_1.unwrap(), "kappa(1)"),
    ] {
        let se = se.unwrap();
        assert!(se > 0.0 && ((value - want) / se).abs() < 4.0, "{what}: {value} ± {se}, exact {want}");
    }
    for ((p, s), q) in a.curve.iter().zip(&m.curve_se).zip(&e.curve) {
        assert_eq!(p.tau.to_bits(), q.tau.to_bits());
        assert!(
            ((p.dkl_rev - q.dkl_rev) / s.dkl_rev).abs() < 4.0,
            "D_rev({}) {} ± {} vs {}",
            p.tau,
            p.dkl_rev,
            s.dkl_rev,
            q.dkl_rev
        );
    }
    // The JSON of a Monte Carlo result has the documented keys next to today's.
    let json = serde_json::to_value(&a).unwrap();
    for k in ["tau_rev_se", "tau_fwd_se", "mcmc_ok", "curve_se"] {
        assert!(json.get(k).is_some(), "no {k} in {json}");
    }
    assert!(json.get("mcmc_note").is_none() == l.ok);
}

/// A cell past enumeration (6×6 = 36 spins): data from a thinned truth chain, a
/// pseudo-likelihood fit, Monte Carlo evaluation against Kaufman's side. It is a pure
/// function of its spec on any number of threads, reports how its data were drawn, and its
/// numbers are finite and flagged as the diagnostics say.
#[test]
fn a_cell_past_enumeration_is_deterministic_and_reports_its_sampling() {
    let mut spec = ising(6, 6, 2.5, 300, FitMode::Plm, 0.01, 2);
    spec.settings.tau_bounds = (0.3, 4.0);
    spec.settings.tau_grid = taustar_common::cell::TauGrid { from: 0.5, to: 2.0, count: 4 };
    spec.settings.mcmc = Some(taustar_common::McmcSettings {
        steps: 600,
        burn_in: 100,
        truth_steps: 2_000,
        ..Default::default()
    });
    let a = run_cell(&spec).unwrap();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let b = pool.install(|| run_cell(&spec).unwrap());
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "bit-identical on {threads} threads");
    }
    assert_eq!(a.fit.fit_mode, Some(FitMode::Plm));
    assert!(a.fit.data_thinning.unwrap() >= 1 && a.fit.data_tau_int.unwrap() > 0.0);
    assert_eq!(a.fit.nll, None, "no likelihood without ln Z_q");
    assert!(a.mcmc.tau_rev_se.unwrap() > 0.0 && a.mcmc.tau_fwd_se.unwrap() > 0.0);
    assert_eq!(a.curve.len(), 4);
    assert_eq!(taustar_common::result_fields::invalid_value(&a), None);
}
