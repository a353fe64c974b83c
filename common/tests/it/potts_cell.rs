//! One Potts cell as studies compute it (sample, fit by pseudo-likelihood, τ* by tempering +
//! MBAR: [`taustar_common::compute::potts::Potts`] through the one pipeline, `run_steps`)
//! against enumeration: on a truth small enough to enumerate (N = 5 sites, q = 3, a
//! `potts-random` family), each seed's fitted model is enumerated too, so the exact τ*_rev,
//! τ*_fwd, ln Z_p and D at τ = 1 of *that* fit are known. Over seeds the z-scores
//! (estimate − exact) / s.e. must look standard normal (|mean| < 0.6, standard deviation < 1.6
//! over 16 seeds), and the data's thinning must cover 2 τ_int.

use taustar_common::cell::{CellSettings, CellSpec, CurveOutput, FitSpec, GridPoint};
use taustar_common::compute::potts::Potts;
use taustar_common::compute::run_steps;
use taustar_common::{run_cell, DataSize, FitMode, McmcSettings, TruthSpec};
use taustar_science::potts::{enumerate, random_family, PottsModel, PottsRandomSpec};

const SEEDS: u64 = 16;
const BOUNDS: (f64, f64) = (0.3, 4.0);

/// (⟨E_p⟩_q, ⟨Ê⟩_q, ln Z_q) of the fitted model q at β, by enumeration; `e_p` is the truth's
/// energy of every state in enumeration order.
fn fit_at(fit: &PottsModel, beta: f64, e_p: &[f64]) -> (f64, f64, f64) {
    let e = enumerate(fit, beta).unwrap();
    let ep: f64 = e.probabilities.iter().zip(e_p).map(|(p, x)| p * x).sum();
    let eq: f64 = e.probabilities.iter().zip(&e.energies).map(|(p, x)| p * x).sum();
    (ep, eq, e.log_z)
}

/// Exact τ*_rev, τ*_fwd, D_rev(1), D_fwd(1) and ln Z_p of a fit against the truth.
fn exact(truth: &PottsModel, fit: &PottsModel) -> [f64; 5] {
    let p = enumerate(truth, 1.0).unwrap();
    let e_p = &p.energies;
    let model_e_under_p: f64 = {
        let f = enumerate(fit, 1.0).unwrap();
        p.probabilities.iter().zip(&f.energies).map(|(w, x)| w * x).sum()
    };
    let mean_truth: f64 = p.probabilities.iter().zip(e_p).map(|(w, x)| w * x).sum();
    let d_rev = |b: f64| {
        let (ep, eq, lz) = fit_at(fit, b, e_p);
        ep - b * eq - lz + p.log_z
    };
    let d_fwd = |b: f64| {
        let (_, _, lz) = fit_at(fit, b, e_p);
        b * model_e_under_p + lz - mean_truth - p.log_z
    };
    let argmin = |d: &dyn Fn(f64) -> f64| {
        let n = 1500;
        let (lo, hi) = ((1.0 / BOUNDS.1).ln(), (1.0 / BOUNDS.0).ln());
        let best = (0..=n)
            .map(|i| (lo + (hi - lo) * i as f64 / n as f64).exp())
            .map(|b| (b, d(b)))
            .fold((0.0, f64::INFINITY), |x, y| if y.1 < x.1 { y } else { x });
        1.0 / best.0
    };
    [argmin(&d_rev), argmin(&d_fwd), d_rev(1.0), d_fwd(1.0), p.log_z]
}

#[test]
fn a_potts_cell_agrees_with_enumeration_of_its_own_fit() {
    let spec = PottsRandomSpec {
        sites: 5,
        states: 3,
        coupling_strength: 0.8,
        field_strength: 0.8,
        contact_fraction: 0.6,
        seed: 3,
    };
    let truth = random_family(&spec).unwrap();
    let cell = |seed: u64| CellSpec {
        study_seed: seed,
        point: GridPoint {
            truth: TruthSpec::from_potts_random(&spec),
            data: DataSize::Samples(300),
            fit: FitSpec { mode: FitMode::Plm, l2: 0.01 },
        },
        replicate: 0,
        settings: CellSettings {
            tau_bounds: BOUNDS,
            curves: CurveOutput::None,
            mcmc: Some(McmcSettings {
                steps: 3_000,
                burn_in: 300,
                truth_steps: 6_000,
                ..McmcSettings::default()
            }),
            ..CellSettings::default()
        },
    };
    let names = ["τ*_rev", "τ*_fwd", "D_rev(1)", "D_fwd(1)", "ln Z_p"];
    let mut z: Vec<Vec<f64>> = vec![Vec::new(); 5];
    let mut failed = 0;
    for seed in 0..SEEDS {
        let c = cell(seed);
        c.validate().unwrap();
        let ran = run_steps(&Potts::load(&c).unwrap(), &c).unwrap();
        if seed == 0 {
            // The pieces checked here are those of the result a study stores.
            assert_eq!(ran.result, run_cell(&c).unwrap());
        }
        assert_eq!(ran.data.states.len(), 300 * 5);
        assert!(f64::from(ran.data.thinning) >= 2.0 * ran.data.tau_int && ran.data.converged);
        let (r, mc) = (&ran.result, &ran.result.mcmc);
        assert_eq!(r.fit.fit_diverged, Some(false), "seed {seed}");
        assert_eq!(r.fit.data_thinning, Some(ran.data.thinning));
        failed += usize::from(!mc.ladder.as_ref().is_some_and(|l| l.ok));
        let x = exact(&truth, &ran.fit);
        let se = |v: Option<f64>| v.expect("a Monte Carlo cell has every standard error");
        let got = [
            (r.tau.tau_rev, se(mc.tau_rev_se)),
            (r.tau.tau_fwd, se(mc.tau_fwd_se)),
            (r.tau.dkl_rev_at_1, se(mc.dkl_rev_at_1_se)),
            (r.tau.dkl_fwd_at_1, se(mc.dkl_fwd_at_1_se)),
            (ran.side.log_z.value, ran.side.log_z.se),
        ];
        for (k, ((value, se), want)) in got.into_iter().zip(x).enumerate() {
            assert!(se > 0.0 && se.is_finite(), "seed {seed}: {} s.e. {se}", names[k]);
            z[k].push((value - want) / se);
        }
    }
    assert!(failed <= 2, "{failed} of {SEEDS} cells failed their diagnostics");
    for (k, zs) in z.iter().enumerate() {
        let m = zs.iter().sum::<f64>() / zs.len() as f64;
        let sd = (zs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (zs.len() - 1) as f64).sqrt();
        eprintln!("{}: z mean {m:+.3}, sd {sd:.3}", names[k]);
        assert!(m.abs() < 0.6 && sd < 1.6, "{}: z mean {m:.3}, sd {sd:.3}: {zs:?}", names[k]);
    }
}

/// A `potts-file` truth is loaded only when its content is the one the study named.
#[test]
fn a_truth_file_is_checked_against_its_content_digest() {
    use taustar_common::compute::potts::{file_sha256, load_truth_file};
    use taustar_science::potts::{write_params_file, Alphabet};
    let dir = std::env::temp_dir().join(format!("taustar-truth-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.dat");
    let spec = PottsRandomSpec { sites: 4, states: 3, seed: 11, ..PottsRandomSpec::default() };
    let model = random_family(&spec).unwrap();
    write_params_file(&model, &Alphabet::new("ABC").unwrap(), &path).unwrap();
    let sha = file_sha256(&std::fs::read(&path).unwrap());
    let p = path.to_str().unwrap();
    let wrong = "0".repeat(64);
    let err = load_truth_file(p, "ABC", &wrong).unwrap_err().to_string();
    assert!(err.contains(&sha) && err.contains(&wrong) && err.contains("m.dat"), "{err}");
    let loaded = load_truth_file(p, "ABC", &sha).unwrap();
    assert_eq!(loaded.n(), 4);
    let s = [0u8, 1, 2, 1];
    assert!((loaded.energy(&s) - model.energy(&s)).abs() < 1e-12);
    let other = "1".repeat(64);
    let err = load_truth_file(dir.join("gone.dat").to_str().unwrap(), "ABC", &other).unwrap_err().to_string();
    assert!(err.contains("gone.dat"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
