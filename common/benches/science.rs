//! Criterion benchmarks of the science core, each against the naive algorithm where one
//! exists, so the numbers read as ratios on any machine:
//! (a) one exact pass over 2^16 states (energies, log Z, all 120 second moments);
//! (b) a full 4×4 Ising cell (M = 100, T = 2.3) in `mle` and in `paper` mode;
//! (c) a two-level cell (N_s = 100).

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use taustar_common::cell::{CellSettings, CellSpec, DataSize, FitMode, FitSpec, GridPoint, TruthSpec};
use taustar_common::run_cell;
use taustar_science::fit::ising::Enumerator;
use taustar_science::model::ising::Pairs;

/// The obvious loop: for every state, its energy from all pairs, its weight, and its
/// contribution to every second moment.
fn naive_pass(pairs: &Pairs, j: &[f64], out: &mut [f64]) -> f64 {
    let n = pairs.n;
    let mut z = 0.0;
    out.iter_mut().for_each(|v| *v = 0.0);
    let mut h = vec![0.0; 1usize << n];
    for (x, hx) in h.iter_mut().enumerate() {
        *hx = pairs.neg_energy_of(j, x as u32);
    }
    let hmax = h.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for (x, &hx) in h.iter().enumerate() {
        let w = (hx - hmax).exp();
        z += w;
        for (o, &(a, b)) in out.iter_mut().zip(&pairs.ij) {
            let s = if ((x >> a) ^ (x >> b)) & 1 == 0 { 1.0 } else { -1.0 };
            *o += w * s;
        }
    }
    out.iter_mut().for_each(|v| *v /= z);
    hmax + z.ln()
}

fn couplings(p: &Pairs) -> Vec<f64> {
    (0..p.len()).map(|k| 0.3 * ((k as f64) * 0.7).sin()).collect()
}

fn exact_pass(c: &mut Criterion) {
    let pairs = Pairs::new(16);
    let j = couplings(&pairs);
    let mut g = c.benchmark_group("exact_pass_2^16");
    let mut out = vec![0.0; pairs.len()];
    g.bench_function("naive", |b| b.iter(|| naive_pass(&pairs, black_box(&j), &mut out)));
    let mut en = Enumerator::new(pairs.clone());
    g.bench_function("walsh_hadamard", |b| b.iter(|| en.pass(black_box(&j))));
    // Its parts, to see where the time goes.
    let mut buf: Vec<f64> = (0..1 << 16).map(|i| (i as f64 * 1e-5).sin()).collect();
    g.bench_function("part_one_transform", |b| b.iter(|| taustar_science::exact::wht(black_box(&mut buf))));
    let mut out = vec![0.0; buf.len()];
    g.bench_function("part_exponentials_libm", |b| {
        b.iter(|| {
            for (o, &v) in out.iter_mut().zip(black_box(&buf)) {
                *o = (-v.abs()).exp();
            }
        })
    });
    g.bench_function("part_exponentials_exp_nonpos", |b| {
        b.iter(|| {
            for (o, &v) in out.iter_mut().zip(black_box(&buf)) {
                *o = taustar_science::exact::exp_nonpos(-v.abs());
            }
        })
    });
    g.finish();
}

fn ising_spec(mode: FitMode, replicate: u32) -> CellSpec {
    CellSpec {
        study_seed: 2025,
        point: GridPoint {
            truth: TruthSpec::Ising2d { rows: 4, cols: 4, temperature: 2.3 },
            data: DataSize::Samples(100),
            fit: FitSpec { mode, l2: 0.0 },
        },
        replicate,
        settings: CellSettings::default(),
    }
}

fn ising_cell(c: &mut Criterion) {
    let mut g = c.benchmark_group("ising_4x4_cell_M100_T2.3");
    g.sample_size(10);
    let mut r = 0;
    g.bench_function("mle", |b| {
        b.iter(|| {
            r += 1;
            run_cell(&ising_spec(FitMode::Mle, r % 20))
        })
    });
    g.measurement_time(std::time::Duration::from_secs(30));
    g.bench_function("paper", |b| b.iter(|| run_cell(&ising_spec(FitMode::Paper, 0))));
    g.finish();
}

fn two_level_cell(c: &mut Criterion) {
    let spec = |r| CellSpec {
        study_seed: 2025,
        point: GridPoint {
            truth: TruthSpec::TwoLevel { states: 100, low_states: 20, gap: 6.0 },
            data: DataSize::Samples(1000),
            fit: FitSpec::default(),
        },
        replicate: r,
        settings: CellSettings::default(),
    };
    let mut r = 0;
    c.bench_function("two_level_cell_Ns100_M1000", |b| {
        b.iter(|| {
            r += 1;
            run_cell(&spec(r % 50))
        })
    });
    // As a two-level study runs it by default (`tau.curves = "recompute"`): no curve.
    c.bench_function("two_level_cell_Ns100_M1000_no_curve", |b| {
        b.iter(|| {
            r += 1;
            let mut s = spec(r % 50);
            s.settings.curves = taustar_common::CurveOutput::Recompute;
            run_cell(&s)
        })
    });
}

criterion_group!(
    benches,
    exact_pass,
    two_level_cell,
    two_level_parts,
    ising_cell,
    mc_sweep,
    mc_sweep_dense,
    mc_update_muca_vs_tempering,
    plm_fit
);
criterion_main!(benches);

fn two_level_parts(c: &mut Criterion) {
    use taustar_science::tau::{Landscape, Scan};
    let land =
        Landscape::new(vec![19.0, 1.0, 1.0, 79.0], vec![0.0, 6.5, 0.0, 6.5], vec![-3.0, -3.0, -9.0, -9.0]);
    let taus = taustar_common::cell::TauGrid { from: 0.2, to: 5.0, count: 70 }.values();
    c.bench_function("part_two_level_eval", |b| b.iter(|| land.eval(black_box(0.7))));
    c.bench_function("part_two_level_scan", |b| b.iter(|| Scan::new(&land, (0.01, 100.0))));
    c.bench_function("part_two_level_analyse", |b| {
        b.iter(|| taustar_common::compute::analyse(&land, &taus, (0.01, 100.0), Some((0.1, 0.5))))
    });
}

/// Spin updates of a 64×64 nearest-neighbour torus at T_c: the chain's local-field
/// Metropolis sweep against a plain scalar Metropolis loop (neighbour sum recomputed and
/// libm's exp at every proposal), same model, same run. Criterion's throughput is in
/// updates per second (Melem/s ÷ 1000 = updates per ns).
fn mc_sweep(c: &mut Criterion) {
    use criterion::Throughput;
    use rand::{Rng, SeedableRng};
    use taustar_science::mc::chain::Chain;
    use taustar_science::mc::model::SpinModel;
    let model = SpinModel::torus(64, 64, 1.0);
    let beta = (1.0 + 2f64.sqrt()).ln() / 2.0;
    let mut g = c.benchmark_group("mc_sweep_64x64_Tc");
    g.throughput(Throughput::Elements(model.len() as u64));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut chain = Chain::random(&model, beta, &mut rng);
    g.bench_function("local_fields", |b| b.iter(|| chain.sweep(&model, &mut rng)));
    let mut spins: Vec<i8> = chain.spins().to_vec();
    g.bench_function("plain_scalar", |b| {
        b.iter(|| {
            for i in 0..spins.len() {
                let h: f64 = model.row(i).iter().map(|&(j, c)| c * f64::from(spins[j as usize])).sum();
                let delta = 2.0 * f64::from(spins[i]) * h;
                if delta <= 0.0 || rng.random::<f64>() < (-beta * delta).exp() {
                    spins[i] = -spins[i];
                }
            }
        })
    });
    g.finish();
    // Multispin coding: 64 replicas per sweep, so 64·N updates.
    let mut g = c.benchmark_group("mc_sweep_64x64_Tc_multispin");
    g.throughput(Throughput::Elements(64 * model.len() as u64));
    let mut multi = taustar_science::mc::multispin::MultispinTorus::random(64, 64, 1.0 / beta, &mut rng);
    g.bench_function("64_replicas", |b| b.iter(|| multi.sweep(&mut rng)));
    g.finish();
}

/// Spin updates of a dense fitted-like model (N = 256, every pair coupled): local-field
/// A fully coupled model of `n` spins (couplings uniform in ±0.1, what a plm fit of a
/// lattice looks like to a chain) and the generator that drew it, seeded alike for every
/// group that samples it.
fn dense_model(n: u32) -> (taustar_science::mc::model::SpinModel, rand_chacha::ChaCha8Rng) {
    use rand::{Rng, SeedableRng};
    let pairs = taustar_science::model::ising::Pairs::new(n);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let j: Vec<f64> = (0..pairs.len()).map(|_| (rng.random::<f64>() - 0.5) * 0.2).collect();
    (taustar_science::mc::model::SpinModel::from_pairs(&pairs, &j), rng)
}

/// Metropolis with dense rows against the same chain on neighbour lists, and the memory
/// bound of the flips: `axpy_all_rows` streams every coupling row once through the local
/// fields, which is what a sweep would cost if every proposal were accepted. A sweep at
/// acceptance a is at memory speed when its time ≈ a × that of `axpy_all_rows` (the
/// acceptance is printed). Throughput in updates (N per iteration).
fn mc_sweep_dense(c: &mut Criterion) {
    use criterion::Throughput;
    use taustar_science::mc::chain::Chain;
    let n = 256;
    let (dense, mut rng) = dense_model(n);
    let lists = dense.clone().with_dense_rows(false);
    let mut g = c.benchmark_group("mc_sweep_dense_N256");
    g.throughput(Throughput::Elements(u64::from(n)));
    let mut chain = Chain::random(&dense, 1.0, &mut rng);
    g.bench_function("dense_rows", |b| b.iter(|| chain.sweep(&dense, &mut rng)));
    eprintln!("mc_sweep_dense_N256: Metropolis acceptance {:.3}", chain.acceptance());
    let mut chain = Chain::random(&lists, 1.0, &mut rng);
    g.bench_function("neighbour_lists", |b| b.iter(|| chain.sweep(&lists, &mut rng)));
    let mut local = vec![0.0f64; n as usize];
    g.bench_function("axpy_all_rows", |b| {
        b.iter(|| {
            for i in 0..n as usize {
                let row = dense.dense_row(i).unwrap_or(&[]);
                let d = if i % 2 == 0 { 2.0 } else { -2.0 };
                for (l, &c) in local.iter_mut().zip(row) {
                    *l -= d * c;
                }
            }
            black_box(&local);
        })
    });
    g.finish();
}

/// Updates per second of a multicanonical walker against a tempering rung's heat-bath sweep
/// on the same dense N = 256 model (a plm fit of a 16×16 lattice has every pair coupled), in
/// the same run: a sweep is N single-site updates either way, so the ratio of the two times
/// is the ratio of the samplers' update rates. The walker's weights are ω(E) = −E over a
/// window around its energy, so it samples the same β = 1 law as the rung: an accepted flip
/// costs O(N) either way (the local fields), and equal acceptance makes the ratio the
/// samplers' own overhead.
fn mc_update_muca_vs_tempering(c: &mut Criterion) {
    use criterion::Throughput;
    use taustar_science::mc::chain::Chain;
    use taustar_science::mc::local::{LocalEnsemble, LocalMoves};
    use taustar_science::mc::multicanonical::{update, MucaWeights};
    let n = 256;
    let (model, mut rng) = dense_model(n);
    let mut g = c.benchmark_group("mc_updates_dense_N256");
    g.throughput(Throughput::Elements(u64::from(n)));
    let mut chain = Chain::random(&model, 1.0, &mut rng);
    g.bench_function("tempering_rung_sweep", |b| b.iter(|| chain.sweep(&model, &mut rng)));
    let mut walker = model.random_walker(&mut rng);
    let e0 = walker.energy();
    let mut weights = MucaWeights::flat(e0 - 200.0, 0.5, 800, 1.0);
    for k in 0..weights.bins() {
        weights.omega[k] = -weights.center(k);
    }
    let mut om = weights.omega(walker.energy());
    let mut accepted = 0u64;
    let mut tried = 0u64;
    g.bench_function("multicanonical_walker_sweep", |b| {
        b.iter(|| {
            for _ in 0..n {
                let before = om;
                update(&mut walker, &weights, &mut om, &mut rng);
                accepted += u64::from(om != before);
                tried += 1;
            }
        })
    });
    g.finish();
    eprintln!(
        "mc_updates_dense_N256: tempering acceptance {:.3}, multicanonical acceptance {:.3}",
        chain.acceptance(),
        accepted as f64 / tried.max(1) as f64
    );
}

/// The pseudo-likelihood fit of a 16×16 torus (256 spins, 32 640 couplings) from M = 1000
/// chain samples at T = 2.5, λ = 0.01, every site to a gradient of 1e-7: L-BFGS (what cells
/// use) against steepest descent with the same Armijo line search (the straightforward
/// method), in the same run. The iteration counts are printed.
fn plm_fit(c: &mut Criterion) {
    use rand::SeedableRng;
    use taustar_science::fit::plm::{fit_plm, PlmOptions, DEFAULT_MEMORY};
    use taustar_science::mc::model::SpinModel;
    let model = SpinModel::torus(16, 16, 1.0 / 2.5);
    let data = taustar_science::mc::data::sample_chain(
        &model,
        1_000,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(3),
    );
    let weights = vec![1.0; 1_000];
    let opts =
        |memory| PlmOptions { l2: 0.01, max_iter: 100_000, grad_tol: 1e-7, coupling_cap: 20.0, memory };
    let mut g = c.benchmark_group("plm_fit_16x16_M1000");
    g.sample_size(10);
    for (name, memory) in [("lbfgs", DEFAULT_MEMORY), ("steepest_descent", 0)] {
        let fit = fit_plm(256, &data.states, &weights, opts(memory));
        eprintln!(
            "plm_fit_16x16_M1000/{name}: at most {} iterations per site, {:?}",
            fit.iterations, fit.stop
        );
        g.bench_function(name, |b| b.iter(|| fit_plm(256, black_box(&data.states), &weights, opts(memory))));
    }
    g.finish();
}
