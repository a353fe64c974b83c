//! The Potts pseudo-likelihood fit (docs/spec.md §10): it recovers a truth's fields and
//! couplings in the zero-sum gauge from exact samples (tiny models, via enumeration) and
//! from a heat-bath chain (20 sites), is bit-identical on any number of threads, agrees
//! with the Ising fit at q = 2 under the documented penalty scale, and flags a site the
//! data predict perfectly when there is no coupling penalty.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use taustar_science::exact::sample_counts;
use taustar_science::fit::plm::{fit_plm, PlmOptions};
use taustar_science::fit::potts_plm::{fit_potts_plm, PottsPlmFit, PottsPlmOptions, DEFAULT_POTTS_PLM};
use taustar_science::potts::gauge::{zero_sum_gauge, zero_sum_violation};
use taustar_science::potts::{decode_state, enumerate, PottsChain, PottsModel};

/// A model with fields ~ N(0, sd²) and, for each pair with probability `density`,
/// couplings ~ N(0, sd²); not gauge-fixed.
fn random_model(n: usize, q: usize, sd: f64, density: f64, rng: &mut ChaCha8Rng) -> PottsModel {
    let normal = Normal::new(0.0, sd).unwrap();
    let mut m = PottsModel::zeros(n, q).unwrap();
    for i in 0..n {
        for a in 0..q {
            m.set_field(i, a, normal.sample(rng));
        }
        for j in i + 1..n {
            if rng.random::<f64>() < density {
                for a in 0..q {
                    for b in 0..q {
                        m.set_coupling(i, j, a, b, normal.sample(rng));
                    }
                }
            }
        }
    }
    m
}

/// `m` exact samples of a small model, as the distinct sequences drawn and their counts.
fn exact_samples(model: &PottsModel, m: u64, rng: &mut ChaCha8Rng) -> (Vec<u8>, Vec<f64>) {
    let (n, q) = (model.n(), model.q());
    let ex = enumerate(model, 1.0).unwrap();
    let mut seqs = Vec::new();
    let mut weights = Vec::new();
    for (x, c) in sample_counts(&ex.probabilities, m, rng) {
        seqs.extend(decode_state(x as usize, n, q));
        weights.push(c as f64);
    }
    (seqs, weights)
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// (max |ΔJ|, max |Δh|) of a fit against a truth, both in the zero-sum gauge.
fn errors(fit: &PottsModel, truth: &PottsModel) -> (f64, f64) {
    let t = zero_sum_gauge(truth);
    (max_diff(fit.couplings(), t.couplings()), max_diff(fit.fields(), t.fields()))
}

fn opts(l2: f64) -> PottsPlmOptions {
    PottsPlmOptions { l2_fields: l2, l2_couplings: l2, ..DEFAULT_POTTS_PLM }
}

fn bits(fit: &PottsPlmFit) -> Vec<u64> {
    let m = &fit.model;
    let diag =
        fit.sites.iter().flat_map(|s| [u64::from(s.iterations), s.nll.to_bits(), s.grad_max_norm.to_bits()]);
    m.fields().iter().chain(m.couplings()).map(|x| x.to_bits()).chain(diag).collect()
}

#[test]
fn recovers_a_four_site_three_state_truth_from_exact_samples() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let truth = random_model(4, 3, 0.5, 1.0, &mut rng);
    let (seqs, w) = exact_samples(&truth, 100_000, &mut rng);
    let start = Instant::now();
    let fit = fit_potts_plm(&seqs, 4, 3, &w, opts(1e-4)).unwrap();
    assert!(!fit.diverged, "{:?}", fit.note);
    let (dj, dh) = errors(&fit.model, &truth);
    eprintln!(
        "N=4 q=3, M=1e5 exact: max |ΔJ| {dj:.4}, max |Δh| {dh:.4}, {} distinct, max iter {}, {:.2?}",
        w.len(),
        fit.sites.iter().map(|s| s.iterations).max().unwrap(),
        start.elapsed()
    );
    // The pseudo-likelihood is consistent; with M = 10^5 a parameter's statistical error is
    // ~1/√(M·p(a)·p(b)) with letter frequencies p ≳ 0.1 (q = 3, |h| ≲ 1): ≲ 0.03, and
    // λ = 10^-4 biases by ~λ|J|/curvature ≪ 0.01. 0.06 is twice the worst expected error.
    assert!(dj < 0.06 && dh < 0.06, "max |ΔJ| = {dj}, max |Δh| = {dh}");
}

#[test]
fn recovers_a_three_site_twenty_one_state_truth_with_few_strong_couplings() {
    // q = 21 (protein size): fields ~ N(0, 0.5²), six strong entries ±1.5 per pair, the rest
    // zero. 21³ = 9 261 states, many seen rarely, so compare on the entries the data pin.
    let (n, q) = (3, 21);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let normal = Normal::new(0.0, 0.5).unwrap();
    let mut truth = PottsModel::zeros(n, q).unwrap();
    for i in 0..n {
        for a in 0..q {
            truth.set_field(i, a, normal.sample(&mut rng));
        }
        for j in i + 1..n {
            for k in 0..6 {
                let (a, b) = (rng.random_range(0..q), rng.random_range(0..q));
                truth.set_coupling(i, j, a, b, if k % 2 == 0 { 1.5 } else { -1.5 });
            }
        }
    }
    let (seqs, w) = exact_samples(&truth, 100_000, &mut rng);
    let start = Instant::now();
    let fit = fit_potts_plm(&seqs, n, q, &w, opts(1e-5)).unwrap();
    assert!(!fit.diverged, "{:?}", fit.note);
    let t = zero_sum_gauge(&truth);
    // λ = 10^-5: at q = 21 a pair cell holds ~M/441 samples, and λ = 10^-4 already shrinks
    // cells seen ~50 times by 0.1–0.5. An entry's error is ~1/√(M p_ij(a, b)) plus the gauge
    // terms' (means over 21 cells, smaller): ≲ 0.06 where M p ≥ 400, so the maximum over
    // ~350 such entries stays ~3σ ≈ 0.18; rarer cells are not compared (shrunk, noisy).
    let ex = enumerate(&truth, 1.0).unwrap();
    let mut pair = vec![0.0; n * n * q * q];
    for (x, &p) in ex.probabilities.iter().enumerate() {
        let s = decode_state(x, n, q);
        for i in 0..n {
            for j in 0..n {
                pair[((i * n + j) * q + s[i] as usize) * q + s[j] as usize] += p;
            }
        }
    }
    let (mut worst, mut compared) = (0.0f64, 0);
    for (k, (&a, &b)) in fit.model.couplings().iter().zip(t.couplings()).enumerate() {
        if pair[k] * 1e5 >= 400.0 && (k / (q * q)) % (n + 1) != 0 {
            worst = worst.max((a - b).abs());
            compared += 1;
        }
    }
    let strong: f64 = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .flat_map(|(i, j)| (0..q * q).map(move |ab| (i, j, ab / q, ab % q)))
        .filter(|&(i, j, a, b)| {
            truth.coupling(i, j, a, b) != 0.0 && pair[((i * n + j) * q + a) * q + b] * 1e5 >= 400.0
        })
        .map(|(i, j, a, b)| (fit.model.coupling(i, j, a, b) - t.coupling(i, j, a, b)).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "N=3 q=21, M=1e5 exact: max |ΔJ| on {compared} well-sampled entries {worst:.4}, on the well-sampled strong entries \
         {strong:.4}, max iter {}, {:.2?}",
        fit.sites.iter().map(|s| s.iterations).max().unwrap(),
        start.elapsed()
    );
    assert!(
        compared > 100 && worst < 0.2 && strong < 0.2,
        "max |ΔJ| = {worst} on {compared} entries, {strong} strong"
    );
}

#[test]
fn recovers_a_sparse_twenty_site_truth_from_a_heat_bath_chain() {
    let (n, q) = (20, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let truth = random_model(n, q, 0.5, 0.1, &mut rng);
    let m = 20_000;
    let mut chain = PottsChain::random(&truth, 1.0, &mut rng).unwrap();
    for _ in 0..1_000 {
        chain.sweep(&mut rng);
    }
    let mut seqs = Vec::with_capacity(m * n);
    for _ in 0..m {
        // Thinned by 5 sweeps: at these couplings (|J| ~ 0.5, a few neighbours per site)
        // successive samples are nearly independent.
        for _ in 0..5 {
            chain.sweep(&mut rng);
        }
        seqs.extend_from_slice(chain.state());
    }
    let start = Instant::now();
    let fit = fit_potts_plm(&seqs, n, q, &vec![1.0; m], opts(1e-3)).unwrap();
    assert!(!fit.diverged, "{:?}", fit.note);
    let (dj, dh) = errors(&fit.model, &truth);
    let t = zero_sum_gauge(&truth);
    let rms = (fit.model.couplings().iter().zip(t.couplings()).map(|(a, b)| (a - b).powi(2)).sum::<f64>()
        / (n * (n - 1) * q * q) as f64)
        .sqrt();
    eprintln!(
        "N=20 q=4 sparse, M=2e4 chain: max |ΔJ| {dj:.4}, rms ΔJ {rms:.4}, max |Δh| {dh:.4}, max iter {}, {:.2?}",
        fit.sites.iter().map(|s| s.iterations).max().unwrap(),
        start.elapsed()
    );
    // M = 2·10^4, letter frequencies ≳ 0.05: an entry's error ~1/√(M p p') up to ~0.1,
    // and the maximum over 3 040 entries reaches ~4σ; the rms is the typical error.
    assert!(dj < 0.3 && rms < 0.05 && dh < 0.3, "max |ΔJ| {dj}, rms {rms}, max |Δh| {dh}");
}

#[test]
fn the_fit_is_bit_identical_on_one_two_and_three_threads() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let truth = random_model(6, 4, 0.5, 0.6, &mut rng);
    let (seqs, w) = exact_samples(&truth, 5_000, &mut rng);
    let fits: Vec<PottsPlmFit> = [1, 2, 3]
        .into_iter()
        .map(|t| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap();
            pool.install(|| fit_potts_plm(&seqs, 6, 4, &w, opts(0.01)).unwrap())
        })
        .collect();
    assert!(!fits[0].diverged, "{:?}", fits[0].note);
    assert_eq!(bits(&fits[0]), bits(&fits[1]));
    assert_eq!(bits(&fits[0]), bits(&fits[2]));
    assert_eq!(fits[0], fits[2]);
}

#[test]
fn the_output_is_zero_sum_and_the_gauge_keeps_every_energy_difference() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let truth = random_model(5, 3, 0.5, 1.0, &mut rng);
    let (seqs, w) = exact_samples(&truth, 20_000, &mut rng);
    let fit = fit_potts_plm(&seqs, 5, 3, &w, opts(0.01)).unwrap();
    assert!(zero_sum_violation(&fit.model) < 1e-12, "{}", zero_sum_violation(&fit.model));
    // A model far from the gauge (offsets of 3 on every field and coupling).
    let (n, q) = (7, 5);
    let mut raw = random_model(n, q, 1.0, 1.0, &mut rng);
    for i in 0..n {
        for a in 0..q {
            raw.set_field(i, a, raw.field(i, a) + 3.0);
        }
    }
    assert!(zero_sum_violation(&raw) > 1.0);
    let fixed = zero_sum_gauge(&raw);
    assert!(zero_sum_violation(&fixed) < 1e-12, "{}", zero_sum_violation(&fixed));
    // Idempotent, to round-off.
    assert!(max_diff(zero_sum_gauge(&fixed).couplings(), fixed.couplings()) < 1e-14);
    let seqs: Vec<Vec<u8>> =
        (0..50).map(|_| (0..n).map(|_| rng.random_range(0..q as u8)).collect()).collect();
    for s in &seqs {
        for t in &seqs {
            let before = raw.energy(s) - raw.energy(t);
            let after = fixed.energy(s) - fixed.energy(t);
            assert!((before - after).abs() < 1e-12 * (1.0 + raw.energy(s).abs()), "{before} vs {after}");
        }
    }
}

#[test]
fn at_two_states_it_is_the_ising_fit_with_a_quarter_of_the_penalty() {
    // Flip-symmetric data (each sample and its flip): the Potts optimum has h = 0 and
    // J_ij = ŵ_ij·[[1, −1], [−1, 1]], where ŵ is the Ising fit with λ = 4 λ_J.
    let (n, m) = (6, 1_000);
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let mut spins = Vec::with_capacity(2 * n * m);
    for _ in 0..m {
        let mut s: i8 = if rng.random::<bool>() { 1 } else { -1 };
        let mut row = Vec::with_capacity(n);
        for _ in 0..n {
            row.push(s);
            if rng.random::<f64>() < 0.3 {
                s = -s;
            }
        }
        spins.extend(&row);
        spins.extend(row.iter().map(|s| -s));
    }
    let w = vec![1.0; 2 * m];
    let ising = fit_plm(
        n,
        &spins,
        &w,
        PlmOptions { l2: 0.04, max_iter: 1_000, grad_tol: 1e-10, coupling_cap: 20.0, memory: 10 },
    );
    let letters: Vec<u8> = spins.iter().map(|&s| u8::from(s < 0)).collect();
    let potts = fit_potts_plm(
        &letters,
        n,
        2,
        &w,
        PottsPlmOptions { l2_fields: 0.01, l2_couplings: 0.01, grad_tol: 1e-10, ..DEFAULT_POTTS_PLM },
    )
    .unwrap();
    let mut k = 0;
    for i in 0..n {
        assert!(
            potts.model.site_fields(i).iter().all(|h| h.abs() < 1e-6),
            "{:?}",
            potts.model.site_fields(i)
        );
        for j in i + 1..n {
            let want = ising.couplings[k];
            k += 1;
            let block = potts.model.coupling_block(i, j);
            assert!(max_diff(block, &[want, -want, -want, want]) < 1e-6, "({i}, {j}): {block:?} vs {want}");
        }
    }
}

#[test]
fn without_a_penalty_a_site_fixed_by_another_is_a_divergence() {
    // Site 1 is always (s_0 + 1) mod 3, the others random.
    let (n, q, m) = (4, 3, 600);
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let mut seqs = Vec::with_capacity(n * m);
    for _ in 0..m {
        let s0 = rng.random_range(0..3u8);
        seqs.extend([s0, (s0 + 1) % 3, rng.random_range(0..3), rng.random_range(0..3)]);
    }
    let w = vec![1.0; m];
    let free = fit_potts_plm(&seqs, n, q, &w, opts(0.0)).unwrap();
    assert!(free.diverged, "{:?}", free.sites);
    assert!(free.note.as_deref().unwrap_or("").contains("use l2_couplings > 0"), "{:?}", free.note);
    assert_eq!(free.sites[2].stop, taustar_common::cell::FitStop::GradTol, "{:?}", free.sites);
    let penalised = fit_potts_plm(&seqs, n, q, &w, opts(0.01)).unwrap();
    assert!(!penalised.diverged, "{:?}", penalised.note);
    // The strong diagonal J_01(a, a+1) is recovered as a large positive entry.
    assert!(penalised.model.coupling(0, 1, 0, 1) > 0.5, "{}", penalised.model.coupling(0, 1, 0, 1));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let w = vec![1.0; 2];
    assert!(fit_potts_plm(&[0, 1, 2, 0], 2, 3, &w, DEFAULT_POTTS_PLM).is_ok());
    assert!(fit_potts_plm(&[0, 1, 3, 0], 2, 3, &w, DEFAULT_POTTS_PLM).is_err());
    assert!(fit_potts_plm(&[0, 1, 2], 2, 3, &w, DEFAULT_POTTS_PLM).is_err());
    assert!(fit_potts_plm(&[0, 1, 2, 0], 2, 3, &[1.0, -1.0], DEFAULT_POTTS_PLM).is_err());
    assert!(fit_potts_plm(&[0, 1, 2, 0], 2, 3, &[0.0, 0.0], DEFAULT_POTTS_PLM).is_err());
    assert!(fit_potts_plm(&[0, 1], 1, 3, &w, DEFAULT_POTTS_PLM).is_err());
    assert!(fit_potts_plm(&[0, 1, 1, 0], 2, 1, &w, DEFAULT_POTTS_PLM).is_err());
    assert!(fit_potts_plm(&[0, 1, 1, 0], 2, 2, &w, opts(f64::NAN)).is_err());
}
