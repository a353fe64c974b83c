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
