//! The two-level maximum-likelihood fit of docs/spec.md §4.1.

use rand::Rng;

/// A fitted two-level model.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoLevelFit {
    /// n̂_g: states labelled low.
    pub low_states_hat: u32,
    /// Δ̂ ≥ 0.
    pub gap_hat: f64,
    /// L̂(x) ∈ {0, 1} for every state.
    pub labels: Vec<u8>,
}

/// KL(Bernoulli(q) ‖ Bernoulli(r)) with r = k/N_s and 1 − r = (N_s − k)/N_s both from integers,
/// so that the exactly symmetric cases k ↔ N_s − k give bit-identical objectives.
fn bernoulli_kl(q: f64, k: u32, ns: u32) -> f64 {
    let r = f64::from(k) / f64::from(ns);
    let r1 = f64::from(ns - k) / f64::from(ns);
    let xlogy = |x: f64, y: f64| if x == 0.0 { 0.0 } else { x * (x / y).ln() };
    xlogy(q, r) + xlogy(1.0 - q, r1)
}

/// State indices ordered by count, descending, ties in uniformly random order.
pub(crate) fn rank_by_count<R: Rng>(counts: &[u64], rng: &mut R) -> Vec<u32> {
    let keys: Vec<u64> = counts.iter().map(|_| rng.random()).collect();
    let mut order: Vec<u32> = (0..counts.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        counts[b as usize].cmp(&counts[a as usize]).then(keys[a as usize].cmp(&keys[b as usize]))
    });
    order
}

/// Fit the two-level family to per-state counts (M = Σ counts ≥ 2).
///
/// States are ordered by count, descending, ties broken uniformly at random (by a random
/// key per state: breaking them by index would bias which states look "low" and shift τ*).
/// Among k = 1 … N_s−1 the maximiser of KL(Bern(q_k) ‖ Bern(k/N_s)) wins, the smaller k on
/// ties (a relative tolerance of 1e-12 keeps round-off from deciding them).
pub fn fit_two_level<R: Rng>(counts: &[u64], rng: &mut R) -> TwoLevelFit {
    let ns = counts.len() as u32;
    let m: u64 = counts.iter().sum();
    let order = rank_by_count(counts, rng);
    let mf = m as f64;
    let (mut best_k, mut best_kl, mut best_q) = (0u32, f64::NEG_INFINITY, 0.0);
    let mut cum = 0u64;
    for k in 1..ns {
        cum += counts[order[k as usize - 1] as usize];
        // The hard constraint keeps Δ̂ finite when no sample fell outside the top k.
        let q = if cum == m { 1.0 - 1.0 / mf } else { cum as f64 / mf };
        let kl = bernoulli_kl(q, k, ns);
        if best_k == 0 || kl > best_kl + 1e-12 * best_kl.abs() {
            (best_k, best_kl, best_q) = (k, kl, q);
        }
    }
    let mut gap = (best_q / (1.0 - best_q)).ln() + (f64::from(ns - best_k) / f64::from(best_k)).ln();
    let mut labels = vec![1u8; ns as usize];
    for &s in &order[..best_k as usize] {
        labels[s as usize] = 0;
    }
    let mut low = best_k;
    if gap < 0.0 {
        gap = -gap;
        labels.iter_mut().for_each(|l| *l = 1 - *l);
        low = ns - best_k;
    }
    TwoLevelFit { low_states_hat: low, gap_hat: gap, labels }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha12Rng {
        rand_chacha::ChaCha12Rng::seed_from_u64(3)
    }

    #[test]
    fn exact_truth_proportions_recover_n_g_and_the_gap() {
        // Counts proportional to p for N_s = 10, n_g = 3, Δ = ln 4: low states 4× as likely.
        let counts = [400, 400, 400, 100, 100, 100, 100, 100, 100, 100];
        let f = fit_two_level(&counts, &mut rng());
        assert_eq!(f.low_states_hat, 3);
        assert!((f.gap_hat - 4f64.ln()).abs() < 1e-12, "{}", f.gap_hat);
        assert_eq!(&f.labels[..3], &[0, 0, 0]);
        assert!(f.labels[3..].iter().all(|&l| l == 1));
    }

    #[test]
    fn all_samples_on_few_states_use_the_one_minus_one_over_m_constraint() {
        let mut counts = vec![0u64; 10];
        counts[2] = 5;
        counts[7] = 5;
        let f = fit_two_level(&counts, &mut rng());
        assert_eq!(f.low_states_hat, 2);
        let q: f64 = 1.0 - 0.1;
        assert!((f.gap_hat - ((q / (1.0 - q)).ln() + 4f64.ln())).abs() < 1e-12);
    }

    #[test]
    fn m_equal_two_ties_break_toward_the_smaller_k() {
        let mut counts = vec![0u64; 100];
        counts[40] = 1;
        counts[41] = 1;
        // q_1 = 1/2 (one sample outside the top state), q_99 = 1 → 1 − 1/M = 1/2: k = 1 and
        // k = 99 tie exactly and beat every other k; the smaller k must win.
        let f = fit_two_level(&counts, &mut rng());
        assert_eq!(f.low_states_hat, 1);
        assert_eq!(f.labels[40] + f.labels[41], 1, "one of the two sampled states is low");
        let mut counts = vec![0u64; 100];
        counts[5] = 2;
        let f = fit_two_level(&counts, &mut rng());
        assert_eq!(f.low_states_hat, 1, "k=1 and k=99 tie; the smaller k must win");
        assert_eq!(f.labels[5], 0);
    }

    #[test]
    fn ties_are_broken_uniformly_at_random_not_by_index() {
        let counts = [2, 1, 1, 1, 1, 0, 1];
        let mut first_after_top = [0u32; 7];
        let mut r = rng();
        let n = 6000;
        for _ in 0..n {
            let order = rank_by_count(&counts, &mut r);
            assert_eq!(order[0], 0, "the most frequent state comes first");
            assert_eq!(order[6], 5, "the empty state comes last");
            first_after_top[order[1] as usize] += 1;
        }
        // Five tied states: each must lead the tied block ~1/5 of the time.
        for s in [1, 2, 3, 4, 6] {
            let f = f64::from(first_after_top[s]) / f64::from(n);
            assert!((f - 0.2).abs() < 0.025, "state {s} led the tie {f} of the time");
        }
    }
}
