//! The multicanonical sampler against exact answers (docs/spec.md §10, "exact anchors"):
//! over ≥ 50 seeds the z-scores (estimate − exact) / s.e. of ln Z(β), ⟨E⟩_β, Var_β(E) and
//! Cov_β(E, E_p) must look standard normal (|mean| < 0.4, standard deviation in
//! [0.7, 1.4]), the bar tempering meets. Models small enough to enumerate: a fitted-like
//! 3×3 Ising model (lattice couplings plus noise on every pair, and fields) and an N = 4,
//! q = 3 Potts model with Gaussian parameters. Runs whose diagnostics fail are flagged, not
//! results, and are left out of the z-scores (at most a fifth of the Potts runs may be, two
//! fifths of the 3×3 ones, whose gapped spectrum defeats the flatness target). Then determinism
//! across thread counts.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use taustar_science::exact::spin;
use taustar_science::mc::model::SpinModel;
use taustar_science::mc::multicanonical::{run_multicanonical, MucaOptions};
use taustar_science::mc::stats::mean_var;
use taustar_science::model::ising::torus_bonds;
use taustar_science::potts::{decode_state, PottsModel};

const SEEDS: u64 = 50;

/// Exact ln Z, ⟨E⟩, Var(E), Cov(E, A) at β of a list of (E, A) over all configurations.
fn exact(states: &[(f64, f64)], beta: f64) -> [f64; 4] {
    let top = states.iter().map(|s| -beta * s.0).fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = states.iter().map(|s| (-beta * s.0 - top).exp()).collect();
    let z: f64 = w.iter().sum();
    let me = states.iter().zip(&w).map(|(s, w)| s.0 * w).sum::<f64>() / z;
    let ma = states.iter().zip(&w).map(|(s, w)| s.1 * w).sum::<f64>() / z;
    let var = states.iter().zip(&w).map(|(s, w)| (s.0 - me).powi(2) * w).sum::<f64>() / z;
    let cov = states.iter().zip(&w).map(|(s, w)| (s.0 - me) * (s.1 - ma) * w).sum::<f64>() / z;
    [top + z.ln(), me, var, cov]
}

fn fitted_like_3x3() -> (SpinModel, SpinModel) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n = 9;
    let lattice = torus_bonds(3, 3);
    let noise = Normal::new(0.0, 0.1).unwrap();
    let mut bonds = Vec::new();
    let mut truth = Vec::new();
    for i in 0..n as u32 {
        for j in i + 1..n as u32 {
            let on = lattice.contains(&(i, j));
            let k = if on { 1.0 / 2.3 } else { 0.0 };
            bonds.push((i, j, k + noise.sample(&mut rng)));
            if on {
                truth.push((i, j, k));
            }
        }
    }
    let fields: Vec<f64> = (0..n).map(|_| rng.random_range(-0.1..0.1)).collect();
    (SpinModel::from_bonds(n, fields, &bonds), SpinModel::from_bonds(n, vec![0.0; n], &truth))
}

fn small_opts() -> MucaOptions {
    MucaOptions {
        tau_lo: 0.4,
        walkers: 4,
        pilot_sweeps: 50,
        wl_final_f: 1e-3,
        recursion_sweeps: 200,
        production_sweeps: 4_000,
        blocks: 16,
        resamples: 100,
        ..MucaOptions::default()
    }
}

/// Asserts the z-scores of every (β, quantity) look standard normal, printing them.
fn assert_standard(what: &str, probes: &[f64], z: &[Vec<f64>]) {
    let names = ["ln Z", "<E>", "Var E", "Cov(E, A)"];
    let mut failures = Vec::new();
    for (i, zs) in z.iter().enumerate().filter(|(_, zs)| !zs.is_empty()) {
        let (m, v) = mean_var(zs);
        let line =
            format!("{what} β = {} {}: z mean {m:.3}, sd {:.3}", probes[i / 4], names[i % 4], v.sqrt());
        println!("{line}");
        if !(m.abs() < 0.4 && (0.7..=1.4).contains(&v.sqrt())) {
            failures.push(line);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
#[ignore = "about a minute in the test profile (50 seeds)"]
fn multicanonical_reweighting_agrees_with_enumeration_on_a_fitted_like_3x3_ising_model() {
    let (model, truth) = fitted_like_3x3();
    let states: Vec<(f64, f64)> = (0..1u32 << 9)
        .map(|x| {
            let s: Vec<i8> = (0..9).map(|i| spin(x, i) as i8).collect();
            (model.energy(&s), truth.energy(&s))
        })
        .collect();
    let probes = [0.0, 0.4, 1.0, 2.5];
    let exact: Vec<f64> = probes.iter().flat_map(|&b| exact(&states, b)).collect();
    let mut z = vec![Vec::new(); exact.len()];
    let opts = small_opts();
    let mut ok = 0;
    for seed in 0..SEEDS {
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
        let run = run_multicanonical(&model, &|s: &[i8]| truth.energy(s), &opts, &mut rng).unwrap();
        ok += usize::from(run.diagnostics.ok);
        if !run.diagnostics.ok {
            println!("seed {seed} flagged: {:?}", run.diagnostics);
            continue;
        }
        let points = run.points(&probes, opts.resamples, &mut rng);
        for (j, p) in points.iter().enumerate() {
            for (q, v) in
                [p.log_z, p.mean_energy, p.var_energy, p.cov_energy_observable].into_iter().enumerate()
            {
                let i = 4 * j + q;
                if i == 0 {
                    // ln Z(0) is the anchor itself: exact by construction.
                    assert!((v.value - exact[i]).abs() < 1e-9, "{i}: {} vs {}", v.value, exact[i]);
                } else {
                    assert!(v.se > 0.0, "seed {seed}, {i}: {v:?} {:?}", run.diagnostics);
                    z[i].push((v.value - exact[i]) / v.se);
                }
            }
        }
        if seed == 0 {
            println!("{:?}", run.diagnostics);
        }
    }
    println!("{ok} of {SEEDS} runs passed their diagnostics");
    assert_standard("3×3 Ising", &probes, &z);
    // The flagged ones fail on flatness (a spectrum with gaps wider than a bin: two ground
    // states 2.3 below the next level, 5 bins) or round trips; flagged runs are not results.
    // Measured: 37 of 50 pass (43 before the pilots warmed back from 3 β_max, which puts the
    // window's low end on the isolated ground states). The z-scores of those that pass are
    // what this test is about.
    assert!(ok as u64 >= SEEDS * 3 / 5, "{ok} of {SEEDS} passed");
}

fn random_potts(n: usize, q: usize, sigma: f64, seed: u64) -> PottsModel {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0, sigma).unwrap();
    let mut m = PottsModel::zeros(n, q).unwrap();
    for i in 0..n {
        for a in 0..q {
            m.set_field(i, a, normal.sample(&mut rng));
            for j in i + 1..n {
                for b in 0..q {
                    m.set_coupling(i, j, a, b, normal.sample(&mut rng));
                }
            }
        }
    }
    m
}

#[test]
#[ignore = "about a minute in the test profile (50 seeds)"]
fn multicanonical_reweighting_agrees_with_enumeration_on_an_n4_potts_model() {
    let model = random_potts(4, 3, 0.8, 3);
    let other = random_potts(4, 3, 0.5, 4);
    let states: Vec<(f64, f64)> = (0..81)
        .map(|x| {
            let s = decode_state(x, 4, 3);
            (model.energy(&s), other.energy(&s))
        })
        .collect();
    let probes = [0.0, 0.4, 1.0, 2.5];
    let exact: Vec<f64> = probes.iter().flat_map(|&b| exact(&states, b)).collect();
    let mut z = vec![Vec::new(); exact.len()];
    let opts = small_opts();
    let mut ok = 0;
    for seed in 0..SEEDS {
        let mut rng = ChaCha8Rng::seed_from_u64(300 + seed);
        let run = run_multicanonical(&model, &|s: &[u8]| other.energy(s), &opts, &mut rng).unwrap();
        ok += usize::from(run.diagnostics.ok);
        if !run.diagnostics.ok {
            println!("seed {seed} flagged: {:?}", run.diagnostics);
            continue;
        }
        let points = run.points(&probes, opts.resamples, &mut rng);
        for (j, p) in points.iter().enumerate() {
            for (q, v) in
                [p.log_z, p.mean_energy, p.var_energy, p.cov_energy_observable].into_iter().enumerate()
            {
                let i = 4 * j + q;
                if i == 0 {
                    // ln Z(0) is the anchor itself: exact by construction.
                    assert!((v.value - exact[i]).abs() < 1e-9, "{i}: {} vs {}", v.value, exact[i]);
                } else {
                    assert!(v.se > 0.0, "seed {seed}, {i}: {v:?} {:?}", run.diagnostics);
                    z[i].push((v.value - exact[i]) / v.se);
                }
            }
        }
        if seed == 0 {
            println!("{:?}", run.diagnostics);
        }
    }
    println!("{ok} of {SEEDS} runs passed their diagnostics");
    assert_standard("N = 4 Potts", &probes, &z);
    assert!(ok as u64 >= SEEDS * 8 / 10, "{ok} of {SEEDS} passed");
}

/// A run is the same, bit for bit, on one thread and on two.
#[test]
fn a_run_is_bit_identical_on_one_and_two_threads() {
    let (model, truth) = fitted_like_3x3();
    let opts = MucaOptions { production_sweeps: 1_000, resamples: 20, ..small_opts() };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let r = run_multicanonical(&model, &|s: &[i8]| truth.energy(s), &opts, &mut rng).unwrap();
            let p = r.points(&[0.5, 1.5], opts.resamples, &mut rng);
            let mut bits: Vec<u64> = r.reweighting.energies().iter().map(|e| e.to_bits()).collect();
            bits.extend(r.weights.omega.iter().map(|w| w.to_bits()));
            bits.extend(p.iter().flat_map(|p| {
                [p.log_z.value.to_bits(), p.log_z.se.to_bits(), p.cov_energy_observable.se.to_bits()]
            }));
            (bits, format!("{:?}", r.diagnostics))
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
}
