//! Potts heat-bath chains against exact enumeration (docs/spec.md §10, "exact anchors"), as
//! `mc.rs` checks the spin chains: over many seeds the z-scores (estimate − exact) / s.e. of
//! ⟨E⟩_β, of one site's marginal P(s_i = a) and of one pair's P(s_i = a, s_j = b) must look
//! standard normal — a biased sampler shifts their mean, an error bar that ignores
//! autocorrelation inflates their spread. Thresholds: |mean| < 0.4 and standard deviation
//! in [0.7, 1.4]. The models are random (fields and couplings ~ N(0, σ²)) on the two shapes
//! the issue names: N = 4 sites of q = 3 states and N = 3 sites of the protein alphabet's 21.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use taustar_science::mc::stats::{estimate, mean_var};
use taustar_science::potts::{decode_state, enumerate, PottsChain, PottsModel};

const SEEDS: u64 = 100;
const BURN_IN: usize = 200;
const SWEEPS: usize = 4_000;

/// Fields and couplings drawn independently from N(0, σ²), every coupling nonzero.
pub(crate) fn random_model(n: usize, q: usize, sigma: f64, seed: u64) -> PottsModel {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0, sigma).unwrap();
    let mut m = PottsModel::zeros(n, q).unwrap();
    for i in 0..n {
        for a in 0..q {
            m.set_field(i, a, normal.sample(&mut rng));
        }
        for j in i + 1..n {
            for a in 0..q {
                for b in 0..q {
                    m.set_coupling(i, j, a, b, normal.sample(&mut rng));
                }
            }
        }
    }
    m
}

/// What the chains estimate, exactly, and how spread the law is.
#[derive(Debug)]
struct Exact {
    energy: f64,
    /// Standard deviation of E under the law.
    energy_sd: f64,
    /// Entropy over its maximum N ln q: near 1 the model is trivial (uniform), near 0 frozen.
    entropy_fraction: f64,
    /// Site 1 and the letter whose marginal is nearest 1/4 (a well-populated indicator).
    site: (usize, u8),
    p_site: f64,
    /// Sites 0 and N − 1 and the letters whose joint probability is nearest 1/4.
    pair: (usize, usize, u8, u8),
    p_pair: f64,
}

fn exact(model: &PottsModel, beta: f64) -> Exact {
    let (n, q) = (model.n(), model.q());
    let ex = enumerate(model, beta).unwrap();
    let p = &ex.probabilities;
    let energy: f64 = p.iter().zip(&ex.energies).map(|(p, e)| p * e).sum();
    let var: f64 = p.iter().zip(&ex.energies).map(|(p, e)| p * (e - energy) * (e - energy)).sum();
    let entropy: f64 = p.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.ln()).sum();
    let (i, j, k) = (1, 0, n - 1);
    let (mut site, mut pair) = (vec![0.0; q], vec![0.0; q * q]);
    for (x, &px) in p.iter().enumerate() {
        let s = decode_state(x, n, q);
        site[s[i] as usize] += px;
        pair[s[j] as usize * q + s[k] as usize] += px;
    }
    let nearest_quarter = |v: &[f64]| {
        (0..v.len()).min_by(|&a, &b| (v[a] - 0.25).abs().total_cmp(&(v[b] - 0.25).abs())).unwrap()
    };
    let a = nearest_quarter(&site);
    let ab = nearest_quarter(&pair);
    Exact {
        energy,
        energy_sd: var.sqrt(),
        entropy_fraction: entropy / (n as f64 * (q as f64).ln()),
        site: (i, a as u8),
        p_site: site[a],
        pair: (j, k, (ab / q) as u8, (ab % q) as u8),
        p_pair: pair[ab],
    }
}

const NAMES: [&str; 3] = ["⟨E⟩", "P(s_i = a)", "P(s_i = a, s_j = b)"];

/// z mean and standard deviation over the seeds of ⟨E⟩, the site marginal and the pair
/// probability, each estimated from one chain with the integrated autocorrelation time's
/// error bar.
fn z_scores(model: &PottsModel, beta: f64, want: &Exact, seed0: u64) -> [(f64, f64); 3] {
    let (i, a) = want.site;
    let (j, k, b, c) = want.pair;
    let truth = [want.energy, want.p_site, want.p_pair];
    let mut z = [Vec::new(), Vec::new(), Vec::new()];
    for seed in 0..SEEDS {
        let mut rng = ChaCha8Rng::seed_from_u64(seed0 + seed);
        let mut chain = PottsChain::random(model, beta, &mut rng).unwrap();
        for _ in 0..BURN_IN {
            chain.sweep(&mut rng);
        }
        let mut series = [Vec::with_capacity(SWEEPS), Vec::with_capacity(SWEEPS), Vec::with_capacity(SWEEPS)];
        for _ in 0..SWEEPS {
            chain.sweep(&mut rng);
            let s = chain.state();
            series[0].push(chain.energy());
            series[1].push(f64::from(u8::from(s[i] == a)));
            series[2].push(f64::from(u8::from(s[j] == b && s[k] == c)));
        }
        for (stat, x) in series.iter().enumerate() {
            let est = estimate(x);
            assert!(
                est.autocorrelation.converged,
                "seed {seed} {}: τ_int did not converge: {est:?}",
                NAMES[stat]
            );
            assert!(est.se > 0.0, "seed {seed} {}: a constant series", NAMES[stat]);
            z[stat].push((est.mean - truth[stat]) / est.se);
        }
    }
    z.map(|zs| {
        let (m, v) = mean_var(&zs);
        (m, v.sqrt())
    })
}

fn check(what: &str, n: usize, q: usize, sigma: f64, model_seed: u64, betas: [f64; 2]) {
    let model = random_model(n, q, sigma, model_seed);
    for (k, beta) in betas.into_iter().enumerate() {
        let want = exact(&model, beta);
        eprintln!("{what} β = {beta}: {want:?}");
        // Neither trivial nor frozen, and the indicators are well populated.
        assert!(
            (0.15..0.9).contains(&want.entropy_fraction) && want.energy_sd > 0.3,
            "{what} β = {beta}: pick σ for a model that is neither uniform nor frozen: {want:?}"
        );
        assert!(want.p_site > 0.05 && want.p_pair > 0.02, "{what} β = {beta}: {want:?}");
        let z = z_scores(&model, beta, &want, 1_000 * (k as u64 + 1));
        for (stat, (m, s)) in z.iter().enumerate() {
            eprintln!("{what} β = {beta} {}: z mean {m:.3}, sd {s:.3}", NAMES[stat]);
        }
        for (stat, &(m, s)) in z.iter().enumerate() {
            assert!(
                m.abs() < 0.4 && (0.7..=1.4).contains(&s),
                "{what} β = {beta} {}: z mean {m:.3}, sd {s:.3}",
                NAMES[stat]
            );
        }
    }
}

#[test]
fn heat_bath_on_four_sites_of_three_states_agrees_with_enumeration() {
    check("N=4 q=3", 4, 3, 0.5, 4_3, [1.0, 2.0]);
}

#[test]
fn heat_bath_on_three_sites_of_twenty_one_states_agrees_with_enumeration() {
    check("N=3 q=21", 3, 21, 0.8, 3_21, [1.0, 2.0]);
}

/// A larger dense model where every update moves many fields: after 1 000 sweeps the kept
/// fields and energy equal a recomputation from scratch to 1e-9 relative.
#[test]
fn kept_local_fields_equal_a_resync_after_a_thousand_sweeps() {
    let model = random_model(30, 21, 0.3, 7);
    let (n, q) = (model.n(), model.q());
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut chain = PottsChain::random(&model, 1.0, &mut rng).unwrap();
    for _ in 0..1_000 {
        chain.sweep(&mut rng);
    }
    let rate = chain.change_rate();
    assert!(rate > 0.1 && rate < 1.0, "most updates should move the fields: change rate {rate}");
    let kept = chain.local_fields().to_vec();
    let kept_energy = chain.energy();
    let drift = chain.resync();
    assert!(drift < 1e-9, "drift {drift:e}");
    for (x, (&k, &f)) in kept.iter().zip(chain.local_fields()).enumerate() {
        assert!((k - f).abs() <= 1e-9 * f.abs().max(1.0), "f_{}({}): kept {k} vs {f}", x / q, x % q);
    }
    let energy = model.energy(chain.state());
    assert_eq!(chain.energy(), energy);
    assert!((kept_energy - energy).abs() <= 1e-9 * energy.abs().max(1.0), "{kept_energy} vs {energy}");
    // And from scratch by hand, for one site: h_i(a) + Σ_{j≠i} J_ij(a, s_j).
    let i = 11;
    for a in 0..q {
        let by_hand = model.field(i, a)
            + (0..n)
                .filter(|&j| j != i)
                .map(|j| model.coupling(i, j, a, chain.state()[j] as usize))
                .sum::<f64>();
        assert!((chain.local_fields()[i * q + a] - by_hand).abs() < 1e-12);
    }
}

/// The same generator gives the same chain, bit for bit; another seed another one.
#[test]
fn a_potts_chain_is_determined_by_its_generator() {
    let model = random_model(12, 21, 0.3, 9);
    let run = |seed: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut chain = PottsChain::random(&model, 1.3, &mut rng).unwrap();
        let trace: Vec<u64> = (0..200)
            .map(|_| {
                chain.sweep(&mut rng);
                chain.energy().to_bits()
            })
            .collect();
        let fields: Vec<u64> = chain.local_fields().iter().map(|x| x.to_bits()).collect();
        (chain.state().to_vec(), trace, fields)
    };
    let (a, b) = (run(5), run(5));
    assert_eq!(a, b);
    assert_ne!(a.0, run(6).0);
}
