//! Monte Carlo chains against exact answers (docs/spec.md §10, "exact anchors"): over many
//! seeds, the z-scores (estimate − exact) / s.e. must look standard normal — a biased
//! sampler shifts their mean, an error bar that ignores autocorrelation inflates their
//! spread. Thresholds: |mean| < 0.4 and standard deviation in [0.7, 1.4] over ≥ 50 seeds.

use common::exact::spin;
use common::mc::chain::Chain;
use common::mc::cluster::{wolff_step, WolffScratch};
use common::mc::model::SpinModel;
use common::mc::stats::{estimate, mean_var};
use common::model::kaufman;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SEEDS: u64 = 60;

/// Exact ⟨E⟩ and ⟨|m|⟩ of `model` at β by enumerating its 2^N states.
fn exact(model: &SpinModel, beta: f64) -> (f64, f64) {
    let n = model.len() as u32;
    let states: Vec<(f64, f64)> = (0..1u32 << n)
        .map(|x| {
            let spins: Vec<i8> = (0..n).map(|i| spin(x, i) as i8).collect();
            let m = spins.iter().map(|&s| f64::from(s)).sum::<f64>().abs() / f64::from(n);
            (model.energy(&spins), m)
        })
        .collect();
    let e_min = states.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let w: Vec<f64> = states.iter().map(|s| (-beta * (s.0 - e_min)).exp()).collect();
    let z: f64 = w.iter().sum();
    let e = states.iter().zip(&w).map(|(s, w)| s.0 * w).sum::<f64>() / z;
    let m = states.iter().zip(&w).map(|(s, w)| s.1 * w).sum::<f64>() / z;
    (e, m)
}

/// z-scores of ⟨E⟩ and ⟨|m|⟩ over seeds; `step` advances a chain by one measurement.
fn z_scores(
    model: &SpinModel,
    beta: f64,
    burn_in: usize,
    samples: usize,
    mut step: impl FnMut(&mut Chain, &mut ChaCha8Rng),
) -> [(f64, f64); 2] {
    let (e_exact, m_exact) = exact(model, beta);
    let mut z = [Vec::new(), Vec::new()];
    for seed in 0..SEEDS {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let mut chain = Chain::random(model, beta, &mut rng);
        for _ in 0..burn_in {
            step(&mut chain, &mut rng);
        }
        let (mut es, mut ms) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
        for _ in 0..samples {
            step(&mut chain, &mut rng);
            es.push(chain.energy());
            ms.push(chain.magnetisation().abs());
        }
        for (k, (series, exact)) in [(&es, e_exact), (&ms, m_exact)].into_iter().enumerate() {
            let est = estimate(series);
            assert!(est.autocorrelation.converged, "seed {seed}: τ_int window did not converge: {est:?}");
            z[k].push((est.mean - exact) / est.se);
        }
    }
    z.map(|zs| {
        let (m, v) = mean_var(&zs);
        (m, v.sqrt())
    })
}

fn assert_standard(what: &str, [(me, se), (mm, sm)]: [(f64, f64); 2]) {
    for (obs, m, s) in [("⟨E⟩", me, se), ("⟨|m|⟩", mm, sm)] {
        assert!(m.abs() < 0.4 && (0.7..=1.4).contains(&s), "{what} {obs}: z mean {m:.3}, sd {s:.3}");
    }
}

#[test]
fn metropolis_on_the_4x4_truth_agrees_with_enumeration() {
    for t in [2.0, 3.0] {
        let model = SpinModel::torus(4, 4, 1.0);
        let z = z_scores(&model, 1.0 / t, 500, 8_000, |c, rng| c.sweep(&model, rng));
        assert_standard(&format!("Metropolis 4x4 T={t}"), z);
    }
}

#[test]
fn metropolis_on_a_dense_model_with_fields_and_frustration_agrees_with_enumeration() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let n = 9;
    let fields: Vec<f64> = (0..n).map(|_| rng.random_range(-0.4..0.4)).collect();
    let mut bonds = Vec::new();
    for i in 0..n as u32 {
        for j in i + 1..n as u32 {
            bonds.push((i, j, rng.random_range(-0.6..0.6)));
        }
    }
    let model = SpinModel::from_bonds(n, fields, &bonds);
    let z = z_scores(&model, 1.0, 500, 8_000, |c, rng| c.sweep(&model, rng));
    assert_standard("Metropolis dense 9 spins", z);
}

#[test]
fn wolff_moves_on_the_4x4_truth_agree_with_enumeration_below_and_at_t_c() {
    for t in [1.8, 2.269185314213022] {
        let model = SpinModel::torus(4, 4, 1.0);
        let mut scratch = WolffScratch::default();
        let z = z_scores(&model, 1.0 / t, 500, 8_000, |c, rng| {
            wolff_step(c, &model, rng, &mut scratch);
        });
        assert_standard(&format!("Wolff 4x4 T={t}"), z);
    }
}

/// Past enumeration: a 16×16 torus at T = 2.5, ⟨E⟩ from Kaufman's ln Z.
#[test]
fn wolff_and_metropolis_on_16x16_agree_with_kaufman() {
    let t: f64 = 2.5;
    let model = SpinModel::torus(16, 16, 1.0);
    // ⟨E⟩ = −⟨Σ σσ⟩ = −(1/K)·⟨Σ K σσ⟩ with K = 1/T.
    let exact = -t * kaufman::mean_log_weight(16, 16, t).unwrap();
    let mut zs = Vec::new();
    for seed in 0..20 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut chain = Chain::random(&model, 1.0 / t, &mut rng);
        let mut scratch = WolffScratch::default();
        let mut es = Vec::new();
        for s in 0..6_000 {
            // One sweep and one cluster move per measurement.
            chain.sweep(&model, &mut rng);
            wolff_step(&mut chain, &model, &mut rng, &mut scratch);
            if s >= 500 {
                es.push(chain.energy());
            }
        }
        let est = estimate(&es);
        zs.push((est.mean - exact) / est.se);
    }
    let (m, v) = mean_var(&zs);
    assert!(m.abs() < 0.6 && (0.6..=1.6).contains(&v.sqrt()), "16x16: z mean {m:.3}, sd {:.3}", v.sqrt());
}

/// MBAR over a placed tempering ladder against enumeration. The sampled model is a dense
/// 16-spin model — the 4×4 truth at T = 2.3 plus a small random coupling on every pair, as a
/// fit gives — and the observable is the truth's energy E_p, so this checks every input of
/// the τ estimators: ln Z_q(β), ⟨Ê⟩_β, ⟨E_p⟩_β and Cov_β(Ê, E_p), at β inside the ladder, with
/// the block bootstrap's own standard errors.
#[test]
fn mbar_over_a_tempering_ladder_agrees_with_enumeration() {
    use common::mc::mbar::{bootstrap_se, Mbar};
    use common::mc::stats::autocorrelation;
    use common::mc::tempering::{place_ladder, Tempering};
    use common::model::ising::{torus_bonds, Pairs};

    let pairs = Pairs::new(16);
    let bonds = torus_bonds(4, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let k_truth = 1.0 / 2.3;
    let truth_j: Vec<f64> =
        pairs.ij.iter().map(|ij| if bonds.contains(ij) { k_truth } else { 0.0 }).collect();
    let j: Vec<f64> = truth_j.iter().map(|&t| t + rng.random_range(-0.05..0.05)).collect();
    let model = SpinModel::from_pairs(&pairs, &j);
    let truth = SpinModel::from_pairs(&pairs, &truth_j);
    let (mut e, mut ep) = (vec![0.0; 1 << 16], vec![0.0; 1 << 16]);
    pairs.energies_into(&j, &mut e);
    pairs.energies_into(&truth_j, &mut ep);
    let probes = [0.4, 1.0, 1.6];
    let exact: Vec<f64> = probes
        .iter()
        .flat_map(|&b| {
            let top = e.iter().map(|&x| -b * x).fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = e.iter().map(|&x| (-b * x - top).exp()).collect();
            let z: f64 = w.iter().sum();
            let mean = |a: &[f64]| a.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() / z;
            let (me, mp) = (mean(&e), mean(&ep));
            let cov = e.iter().zip(&ep).zip(&w).map(|((x, y), w)| (x - me) * (y - mp) * w).sum::<f64>() / z;
            [top + z.ln(), me, mp, cov]
        })
        .collect();
    let log_z0 = 16.0 * std::f64::consts::LN_2;
    let names = ["ln Z", "<E>", "<E_p>", "Cov(E, E_p)"];
    let seeds = 50;
    let mut z = vec![Vec::new(); exact.len()];
    for seed in 0..seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(500 + seed);
        let betas = place_ladder(&model, 1.6, 100, &mut rng).expect("a short ladder");
        let mut pt = Tempering::new(&model, betas.clone(), false, &mut rng);
        let (mut es, mut obs) = (vec![Vec::new(); betas.len()], vec![Vec::new(); betas.len()]);
        for step in 0..1_300 {
            pt.step(&model, &mut rng);
            if step >= 100 {
                for (k, s) in pt.sample(&|spins: &[i8]| truth.energy(spins)).into_iter().enumerate() {
                    es[k].push(s.energy);
                    obs[k].push(s.observable);
                }
            }
        }
        let tau = es.iter().map(|s| autocorrelation(s).tau_int).fold(0.5, f64::max);
        let block = (4.0 * tau).ceil() as usize;
        let stat = |m: &Mbar| -> Vec<f64> {
            probes
                .iter()
                .flat_map(|&b| {
                    let r = m.at(b);
                    [r.log_z, r.mean_energy, r.mean_observable, r.cov_energy_observable]
                })
                .collect()
        };
        let (est, se) = bootstrap_se(&betas, &es, &obs, log_z0, block, 50, &mut rng, &stat);
        for i in 0..exact.len() {
            z[i].push((est[i] - exact[i]) / se[i]);
        }
    }
    for (i, zs) in z.iter().enumerate() {
        let (m, v) = mean_var(zs);
        let what = format!("β = {} {}", probes[i / 4], names[i % 4]);
        assert!(
            m.abs() < 0.4 && (0.7..=1.4).contains(&v.sqrt()),
            "{what}: z mean {m:.3}, sd {:.3}",
            v.sqrt()
        );
    }
}
