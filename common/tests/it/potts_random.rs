//! Synthetic protein families (`potts-random` truths): determinism in the spec, the contact
//! graph (backbone plus the requested fraction of pairs), the zero-sum gauge and the variance
//! it leaves the couplings, refusal of every bad field, and exact enumeration of a tiny family.

use proptest::prelude::*;
use taustar_science::potts::gauge::zero_sum_violation;
use taustar_science::potts::params::max_sites;
use taustar_science::potts::random::{contacts, MAX_STATES, MAX_STRENGTH};
use taustar_science::potts::{decode_state, enumerate, random_family, PottsModel, PottsRandomSpec};

fn spec(sites: usize, states: usize, coupling: f64, field: f64, fraction: f64, seed: u64) -> PottsRandomSpec {
    PottsRandomSpec {
        sites,
        states,
        coupling_strength: coupling,
        field_strength: field,
        contact_fraction: fraction,
        seed,
    }
}

/// Every field and coupling as bits, so "identical" means bit-identical (and −0 ≠ +0).
fn bits(model: &PottsModel) -> Vec<u64> {
    model.fields().iter().chain(model.couplings()).map(|x| x.to_bits()).collect()
}

/// Pairs i < j whose coupling block is not all zero.
fn coupled_pairs(model: &PottsModel) -> Vec<(usize, usize)> {
    let n = model.n();
    (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).filter(|&(i, j)| !model.pair_is_zero(i, j)).collect()
}

/// The expected number of contacts, computed here independently of the library:
/// max(round(f·N(N−1)/2), N − 1).
fn expected_contacts(n: usize, fraction: f64) -> usize {
    let pairs = n * (n - 1) / 2;
    ((fraction * pairs as f64).round() as usize).max(n - 1)
}

#[test]
fn the_same_spec_gives_the_same_model_and_another_seed_another() {
    let s = PottsRandomSpec::default();
    let a = random_family(&s).unwrap();
    let b = random_family(&s.clone()).unwrap();
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(contacts(&s).unwrap(), contacts(&s).unwrap());

    let other = random_family(&PottsRandomSpec { seed: 2, ..s.clone() }).unwrap();
    assert_ne!(bits(&a), bits(&other));
    assert_ne!(contacts(&s).unwrap(), contacts(&PottsRandomSpec { seed: 2, ..s }).unwrap());
}

/// A few numbers of two families, pinned: the stream (ChaCha8, `rand`'s integer ranges,
/// `rand_distr`'s normals, the documented draw order) must never change, or every
/// `potts-random` truth of every study would change with it.
#[test]
fn the_random_stream_is_pinned() {
    let s = spec(6, 3, 0.7, 1.0, 0.6, 7);
    assert_eq!(contacts(&s).unwrap(), PINNED_CONTACTS);
    let m = random_family(&s).unwrap();
    let got = [m.field(0, 0), m.field(5, 2), m.coupling(0, 1, 0, 0), m.coupling(2, 5, 2, 1)];
    assert_eq!(got.map(f64::to_bits), PINNED_VALUES.map(f64::to_bits), "{got:?}");
    let d = random_family(&PottsRandomSpec::default()).unwrap();
    assert_eq!(d.field(17, 4).to_bits(), PINNED_DEFAULT.to_bits(), "{}", d.field(17, 4));
}

const PINNED_CONTACTS: [(usize, usize); 9] =
    [(0, 1), (0, 2), (0, 3), (1, 2), (2, 3), (2, 5), (3, 4), (3, 5), (4, 5)];
const PINNED_VALUES: [f64; 4] =
    [0.8635316642252479, -0.3048932602225676, -0.274299759614747, 0.007815091461167649];
const PINNED_DEFAULT: f64 = 0.5388368013597875;

#[test]
fn the_contacts_are_the_backbone_and_the_requested_fraction() {
    let cases = [
        // Defaults: round(0.1 · 1225) = 123 > 49.
        PottsRandomSpec::default(),
        spec(30, 4, 0.7, 1.0, 0.25, 3),
        spec(30, 4, 0.7, 1.0, 1.0, 4),
        // round(0.01 · 435) = 4 < 29: the backbone alone.
        spec(30, 4, 0.7, 1.0, 0.01, 5),
        spec(2, 2, 0.3, 0.0, 0.5, 6),
        spec(3, 5, 0.3, 0.2, 1e-6, 7),
        spec(101, 3, 0.4, 0.2, 0.037, 8),
    ];
    for s in cases {
        let (n, f) = (s.sites, s.contact_fraction);
        let model = random_family(&s).unwrap();
        let coupled = coupled_pairs(&model);
        assert_eq!(coupled.len(), expected_contacts(n, f), "{s:?}");
        assert_eq!(s.contact_count(), expected_contacts(n, f), "{s:?}");
        for i in 0..n - 1 {
            assert!(!model.pair_is_zero(i, i + 1), "backbone pair ({i}, {}) of {s:?}", i + 1);
        }
        // The graph reported is the graph coupled, sorted.
        assert_eq!(contacts(&s).unwrap(), coupled, "{s:?}");
    }
    // Below the backbone's own fraction the long-range contacts are absent.
    let backbone_only = spec(30, 4, 0.7, 1.0, 0.01, 5);
    assert!(contacts(&backbone_only).unwrap().iter().all(|&(i, j)| j == i + 1));
}

#[test]
fn long_range_contacts_spread_over_all_pairs() {
    // N = 8 at f = 0.4: round(0.4 · 28) = 11 contacts, 7 of them backbone, so 4 drawn from
    // the 21 candidate pairs, each chosen with probability 4/21 over seeds; a sampler that
    // favoured low or high indices (or a row walk that misplaced them) would skew the counts.
    let (n, seeds) = (8, 4_000u64);
    let drawn = expected_contacts(n, 0.4) - (n - 1);
    assert_eq!(drawn, 4);
    let mut counts = std::collections::BTreeMap::new();
    for seed in 0..seeds {
        for (i, j) in contacts(&spec(n, 2, 1.0, 1.0, 0.4, seed)).unwrap() {
            if j > i + 1 {
                *counts.entry((i, j)).or_insert(0u64) += 1;
            }
        }
    }
    assert_eq!(counts.len(), 21, "every candidate pair is drawn sometimes");
    let p = drawn as f64 / 21.0;
    let (mean, sd) = (seeds as f64 * p, (seeds as f64 * p * (1.0 - p)).sqrt());
    for (pair, &c) in &counts {
        assert!(
            (c as f64 - mean).abs() < 4.5 * sd,
            "pair {pair:?} drawn {c} times, expected {mean:.0} ± {sd:.0}"
        );
    }
}

#[test]
fn the_model_is_in_the_zero_sum_gauge() {
    for s in [PottsRandomSpec::default(), spec(30, 4, 0.7, 2.0, 1.0, 9), spec(12, 32, 3.0, 5.0, 0.3, 10)] {
        let model = random_family(&s).unwrap();
        let v = zero_sum_violation(&model);
        assert!(v < 1e-12, "violation {v:e} for {s:?}");
    }
}

/// The zero-sum projection of a block X of i.i.d. N(0, σ²) entries is J' = P X P with
/// P = I − 11ᵀ/q (symmetric, idempotent, P_aa = (q − 1)/q), so
/// Var J'(a, b) = σ² Σ_c P_ac² Σ_d P_bd² = σ² P_aa P_bb = σ² (q − 1)²/q².
/// Summed over a block, Σ J'(a, b)² = σ² χ² with (q − 1)² degrees of freedom, so the pooled
/// estimate over B blocks has relative standard deviation √(2 / (B (q − 1)²)): with four
/// seeds of N = 30 (B = 4·435 = 1 740 blocks) and q = 4 that is 1.1 %, and the 5 % tolerance
/// is 4.4 standard deviations. A family left in its drawn gauge would be 78 % high.
#[test]
fn gauged_couplings_keep_the_projected_variance() {
    let (n, q, sigma) = (30, 4, 0.7);
    let (mut sum_sq, mut count) = (0.0, 0usize);
    for seed in 1..=4 {
        let model = random_family(&spec(n, q, sigma, 1.0, 1.0, seed)).unwrap();
        for i in 0..n {
            for j in i + 1..n {
                let block = model.coupling_block(i, j);
                sum_sq += block.iter().map(|x| x * x).sum::<f64>();
                count += block.len();
            }
        }
    }
    let variance = sum_sq / count as f64;
    let qf = q as f64;
    let want = sigma * sigma * (qf - 1.0).powi(2) / (qf * qf);
    assert!((variance / want - 1.0).abs() < 0.05, "variance {variance} vs σ²(q−1)²/q² = {want}");
}

#[test]
fn every_bad_field_is_refused_by_name_and_value() {
    let ok = PottsRandomSpec::default();
    ok.validate().unwrap();
    let big = MAX_STRENGTH * 1.5;
    let cases: Vec<(PottsRandomSpec, &str, String)> = vec![
        (PottsRandomSpec { sites: 1, ..ok.clone() }, "potts-random.sites", "1".into()),
        (PottsRandomSpec { sites: 0, ..ok.clone() }, "potts-random.sites", "0".into()),
        (
            PottsRandomSpec { sites: max_sites(21) + 1, ..ok.clone() },
            "potts-random.sites",
            (max_sites(21) + 1).to_string(),
        ),
        (PottsRandomSpec { states: 1, ..ok.clone() }, "potts-random.states", "1".into()),
        (PottsRandomSpec { states: 0, ..ok.clone() }, "potts-random.states", "0".into()),
        (PottsRandomSpec { states: MAX_STATES + 1, ..ok.clone() }, "potts-random.states", "33".into()),
        (PottsRandomSpec { states: 256, ..ok.clone() }, "potts-random.states", "256".into()),
        (
            PottsRandomSpec { coupling_strength: -0.5, ..ok.clone() },
            "potts-random.coupling_strength",
            "-0.5".into(),
        ),
        (
            PottsRandomSpec { coupling_strength: f64::NAN, ..ok.clone() },
            "potts-random.coupling_strength",
            "NaN".into(),
        ),
        (
            PottsRandomSpec { coupling_strength: f64::INFINITY, ..ok.clone() },
            "potts-random.coupling_strength",
            "inf".into(),
        ),
        (
            PottsRandomSpec { coupling_strength: big, ..ok.clone() },
            "potts-random.coupling_strength",
            "1500".into(),
        ),
        (PottsRandomSpec { field_strength: -1.0, ..ok.clone() }, "potts-random.field_strength", "-1".into()),
        (
            PottsRandomSpec { field_strength: f64::NAN, ..ok.clone() },
            "potts-random.field_strength",
            "NaN".into(),
        ),
        (PottsRandomSpec { field_strength: big, ..ok.clone() }, "potts-random.field_strength", "1500".into()),
        (
            PottsRandomSpec { contact_fraction: 0.0, ..ok.clone() },
            "potts-random.contact_fraction",
            "0".into(),
        ),
        (
            PottsRandomSpec { contact_fraction: 1.5, ..ok.clone() },
            "potts-random.contact_fraction",
            "1.5".into(),
        ),
        (
            PottsRandomSpec { contact_fraction: -0.1, ..ok.clone() },
            "potts-random.contact_fraction",
            "-0.1".into(),
        ),
        (
            PottsRandomSpec { contact_fraction: f64::NAN, ..ok.clone() },
            "potts-random.contact_fraction",
            "NaN".into(),
        ),
    ];
    for (s, field, value) in cases {
        let message = s.validate().expect_err(&format!("{s:?} validated")).to_string();
        assert!(message.contains(field), "`{message}` does not name {field}");
        assert!(message.contains(&format!("= {value}:")), "`{message}` does not quote {value}");
        assert_eq!(random_family(&s).unwrap_err().to_string(), message);
        assert_eq!(contacts(&s).unwrap_err().to_string(), message);
    }
    // The limits themselves are allowed.
    for s in [
        PottsRandomSpec { sites: 2, states: 2, ..ok.clone() },
        PottsRandomSpec { states: MAX_STATES, sites: 3, ..ok.clone() },
        PottsRandomSpec { coupling_strength: 0.0, field_strength: MAX_STRENGTH, ..ok.clone() },
        PottsRandomSpec {
            coupling_strength: MAX_STRENGTH,
            field_strength: 0.0,
            contact_fraction: 1.0,
            ..ok.clone()
        },
    ] {
        s.validate().unwrap();
        random_family(&s).unwrap();
    }
}

#[test]
fn a_tiny_family_enumerates() {
    let s = spec(4, 3, 0.8, 1.0, 0.5, 11);
    let model = random_family(&s).unwrap();
    let ex = enumerate(&model, 1.0).unwrap();
    assert_eq!(ex.probabilities.len(), 81);
    assert!(ex.log_z.is_finite());
    assert!((ex.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    for (x, &e) in ex.energies.iter().enumerate() {
        assert!((model.energy(&decode_state(x, 4, 3)) - e).abs() < 1e-12, "state {x}");
    }
    // Not uniform: the fields and couplings are felt.
    let (lo, hi) = ex.probabilities.iter().fold((1.0f64, 0.0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    assert!(hi > 2.0 * lo, "probabilities in [{lo}, {hi}]");
}

#[test]
fn specs_read_from_study_files_need_every_field() {
    let text = "sites = 120\nstates = 21\ncoupling_strength = 0.4\nfield_strength = 1.0\n\
                contact_fraction = 0.05\nseed = 42\n";
    let s: PottsRandomSpec = toml::from_str(text).unwrap();
    assert_eq!(s, spec(120, 21, 0.4, 1.0, 0.05, 42));
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<PottsRandomSpec>(&json).unwrap(), s);
    // A misspelt field is reported as the missing one.
    let typo = text.replace("contact_fraction", "contact_fracton");
    let err = toml::from_str::<PottsRandomSpec>(&typo).unwrap_err().to_string();
    assert!(err.contains("contact_fraction"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any spec inside the ranges validates, builds a model with the documented graph and
    /// finite energies.
    #[test]
    fn every_spec_in_range_builds_a_finite_model(
        sites in 2usize..=9,
        states in 2usize..=6,
        coupling in 0.0..=MAX_STRENGTH,
        field in 0.0..=MAX_STRENGTH,
        fraction in prop_oneof![Just(1.0), 1e-9..=1.0f64],
        seed in any::<u64>(),
        picks in prop::collection::vec(any::<u8>(), 9),
    ) {
        let s = spec(sites, states, coupling, field, fraction, seed);
        prop_assert!(s.validate().is_ok());
        let model = random_family(&s).unwrap();
        let graph = contacts(&s).unwrap();
        prop_assert_eq!(graph.len(), expected_contacts(sites, fraction));
        prop_assert!(graph.windows(2).all(|w| w[0] < w[1]) && graph.iter().all(|&(i, j)| i < j && j < sites));
        for i in 0..sites {
            for j in i + 1..sites {
                let contact = graph.binary_search(&(i, j)).is_ok();
                prop_assert!(contact || j > i + 1, "backbone ({}, {}) missing", i, j);
                if !contact {
                    prop_assert!(model.pair_is_zero(i, j), "non-contact ({}, {}) coupled", i, j);
                } else if coupling > 1e-100 {
                    prop_assert!(!model.pair_is_zero(i, j), "contact ({}, {}) uncoupled", i, j);
                }
            }
        }
        let last = (states - 1) as u8;
        let picked: Vec<u8> = picks[..sites].iter().map(|&p| p % states as u8).collect();
        for s in [vec![0; sites], vec![last; sites], picked] {
            let e = model.energy(&s);
            prop_assert!(e.is_finite(), "E({:?}) = {}", s, e);
        }
    }
}
