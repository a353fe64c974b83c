//! The pseudo-likelihood fit (docs/spec.md §10): it recovers the truth's couplings from many
//! samples, exact (4×4) or from Markov chains (8×8), and how far it sits from the exact
//! maximum-likelihood fit of the same data is measured, not assumed.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use taustar_science::exact::{sample_counts, spin};
use taustar_science::fit::ising::{fit_mle, Enumerator, FitOptions, IsingData};
use taustar_science::fit::plm::{fit_plm, PlmOptions};
use taustar_science::mc::data::sample_chain;
use taustar_science::mc::model::SpinModel;
use taustar_science::model::ising::{torus_bonds, IsingTruth, Pairs};

const OPTS: PlmOptions = PlmOptions {
    l2: 1e-4,
    max_iter: 1_000,
    grad_tol: 1e-7,
    coupling_cap: 20.0,
    memory: taustar_science::fit::plm::DEFAULT_MEMORY,
};

/// J/T on the torus bonds, 0 elsewhere, in pair order.
fn truth_couplings(pairs: &Pairs, rows: u32, cols: u32, t: f64) -> Vec<f64> {
    let bonds = torus_bonds(rows, cols);
    pairs.ij.iter().map(|ij| if bonds.contains(ij) { 1.0 / t } else { 0.0 }).collect()
}

/// `m` samples of `n` random spins except that spin 1 always equals spin 0: data for which
/// the unregularised fits have no finite optimum.
pub(crate) fn pair_always_equal(n: usize, m: usize, rng: &mut ChaCha8Rng) -> Vec<i8> {
    let mut spin = || if rand::Rng::random::<bool>(rng) { 1i8 } else { -1 };
    let mut spins = Vec::with_capacity(n * m);
    for _ in 0..m {
        let s0 = spin();
        spins.extend([s0, s0]);
        for _ in 2..n {
            spins.push(spin());
        }
    }
    spins
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn plm_recovers_the_4x4_truth_from_exact_samples_and_sits_near_the_exact_mle() {
    let (rows, cols, t) = (4u32, 4u32, 3.0);
    let pairs = Pairs::new(16);
    let truth = IsingTruth::new(rows, cols, t, &pairs);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let counts = sample_counts(&truth.probabilities(), 100_000, &mut rng);
    let mut spins = Vec::new();
    let mut weights = Vec::new();
    for &(x, c) in &counts {
        spins.extend((0..16).map(|i| spin(x, i) as i8));
        weights.push(c as f64);
    }
    let plm = fit_plm(16, &spins, &weights, OPTS);
    assert!(!plm.diverged, "{:?}", plm.note);
    let want = truth_couplings(&pairs, rows, cols, t);
    let err_truth = max_diff(&plm.couplings, &want);
    // 10^5 samples: the statistical error of each coupling is ~1/√M·O(1) ≈ 0.005.
    assert!(err_truth < 0.03, "plm vs J/T: max |ΔJ| = {err_truth}");
    let data = IsingData::new(&pairs, counts);
    let mut en = Enumerator::new(pairs.clone());
    let fo = FitOptions { l2: OPTS.l2, max_iter: 100, rel_tol: 1e-7, coupling_cap: 20.0 };
    let mle = fit_mle(&mut en, &data.pair_moments, fo);
    let err_mle = max_diff(&plm.couplings, &mle.couplings);
    // PLM is consistent too, so with this much data the two fits nearly agree; their
    // difference is of the order of the statistical error.
    assert!(err_mle < 0.03, "plm vs exact MLE: max |ΔJ| = {err_mle}");
    eprintln!(
        "4x4, M = 1e5: max |ΔJ| plm−truth {err_truth:.4}, plm−mle {err_mle:.4}, mle−truth {:.4}",
        max_diff(&mle.couplings, &want)
    );
}

#[test]
fn plm_recovers_the_8x8_truth_from_chain_samples() {
    let (l, t) = (8u32, 3.0);
    let model = SpinModel::torus(l, l, 1.0 / t);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let data = sample_chain(&model, 100_000, &mut rng);
    let weights = vec![1.0; 100_000];
    let plm = fit_plm(64, &data.states, &weights, OPTS);
    assert!(!plm.diverged, "{:?}", plm.note);
    let pairs = Pairs::new_without_masks(64);
    let want = truth_couplings(&pairs, l, l, t);
    let err = max_diff(&plm.couplings, &want);
    assert!(err < 0.03, "plm vs J/T on 8x8: max |ΔJ| = {err}");
}

#[test]
fn plm_without_a_penalty_flags_a_pair_that_is_always_equal() {
    // Spins 0 and 1 always equal, the others random: site 0 is predicted perfectly.
    let n = 5;
    let spins = pair_always_equal(n, 400, &mut ChaCha8Rng::seed_from_u64(3));
    let w = vec![1.0; 400];
    let free = fit_plm(n, &spins, &w, PlmOptions { l2: 0.0, ..OPTS });
    assert!(free.diverged, "{free:?}");
    assert!(free.note.as_deref().unwrap_or("").contains("use l2 > 0"), "{:?}", free.note);
    let penalised = fit_plm(n, &spins, &w, PlmOptions { l2: 0.01, ..OPTS });
    assert!(!penalised.diverged && penalised.couplings[0] > 1.0, "{penalised:?}");
}

#[test]
fn plm_is_the_same_on_any_number_of_threads() {
    let model = SpinModel::torus(4, 4, 0.4);
    let data = sample_chain(&model, 2_000, &mut ChaCha8Rng::seed_from_u64(4));
    let w = vec![1.0; 2_000];
    let a = fit_plm(16, &data.states, &w, OPTS);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let b = pool.install(|| fit_plm(16, &data.states, &w, OPTS));
    assert_eq!(a, b);
}
