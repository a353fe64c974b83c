//! Exact computations over enumerated states: the Walsh–Hadamard transform, log-sum-exp,
//! and exact sampling (SPEC §3, §9).
//!
//! Spin states are the integers x ∈ [0, 2^N): bit i of x is 0 for σ_i = +1 and 1 for
//! σ_i = −1. Then the parity χ_S(x) = Π_{i∈S} σ_i(x) = (−1)^{popcount(x & S)}, and the
//! (unnormalised) Walsh–Hadamard transform H, with H[S][x] = χ_S(x), maps
//! - a coefficient vector c over subsets to the function Σ_S c_S χ_S(x) over states
//!   (energies of a pairwise model are H applied to its couplings), and
//! - a distribution q over states to all its parity moments ⟨χ_S⟩_q at once (second moments
//!   are the |S| = 2 entries, the Newton Hessian needs |S| ≤ 4).
//!
//! Both cost N·2^(N−1) butterflies instead of 2^N per subset.

use rand::Rng;

/// In-place unnormalised fast Walsh–Hadamard transform of a slice of length 2^N.
///
/// H is symmetric and H·H = 2^N·I. Summation order is fixed, so results are bit-identical
/// across runs and machines with the same floating-point semantics.
pub fn wht(a: &mut [f64]) {
    let n = a.len();
    debug_assert!(n.is_power_of_two());
    // The first two stages on contiguous quadruples: short inner loops do not vectorise.
    if n >= 4 {
        for q in a.chunks_exact_mut(4) {
            let (x0, x1, x2, x3) = (q[0], q[1], q[2], q[3]);
            let (s0, d0, s1, d1) = (x0 + x1, x0 - x1, x2 + x3, x2 - x3);
            q[0] = s0 + s1;
            q[1] = d0 + d1;
            q[2] = s0 - s1;
            q[3] = d0 - d1;
        }
    } else if n == 2 {
        let (x0, x1) = (a[0], a[1]);
        a[0] = x0 + x1;
        a[1] = x0 - x1;
        return;
    } else {
        return;
    }
    let mut h = 4;
    while h < n {
        for block in a.chunks_exact_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let (u, v) = (*x, *y);
                *x = u + v;
                *y = u - v;
            }
        }
        h *= 2;
    }
}

/// log Σ_i exp(a_i), stable for any finite inputs; −∞ for an empty slice.
pub fn log_sum_exp(a: &[f64]) -> f64 {
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + a.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
}

/// Draw `m` iid states from the distribution with probabilities `p` (summing to 1) and
/// return the distinct states drawn with their counts, sorted by state.
///
/// Inverse-CDF sampling: the cumulative sum is built once (fixed order, so deterministic),
/// then each draw is a binary search. Costs O(2^N + M log 2^N).
pub fn sample_counts<R: Rng>(p: &[f64], m: u64, rng: &mut R) -> Vec<(u32, u64)> {
    let mut cdf = Vec::with_capacity(p.len());
    let mut acc = 0.0;
    for &pi in p {
        acc += pi;
        cdf.push(acc);
    }
    let total = acc;
    let mut draws: Vec<u32> = (0..m)
        .map(|_| {
            let u = rng.random::<f64>() * total;
            // First index whose cumulative mass exceeds u; skips zero-probability states.
            let i = cdf.partition_point(|&c| c <= u);
            i.min(p.len() - 1) as u32
        })
        .collect();
    draws.sort_unstable();
    let mut out: Vec<(u32, u64)> = Vec::new();
    for x in draws {
        match out.last_mut() {
            Some((s, c)) if *s == x => *c += 1,
            _ => out.push((x, 1)),
        }
    }
    out
}

/// The ±1 value of spin `i` in state `x`.
#[inline]
pub fn spin(x: u32, i: u32) -> f64 {
    if (x >> i) & 1 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// χ_S(x) = (−1)^{popcount(x & S)}.
#[inline]
pub fn parity(x: u32, s: u32) -> f64 {
    if (x & s).count_ones() % 2 == 0 {
        1.0
    } else {
        -1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn naive_wht(a: &[f64]) -> Vec<f64> {
        (0..a.len() as u32).map(|s| (0..a.len() as u32).map(|x| parity(x, s) * a[x as usize]).sum()).collect()
    }

    #[test]
    fn wht_matches_the_definition_and_is_its_own_inverse_up_to_scale() {
        for n in 0..8 {
            let len = 1usize << n;
            let a: Vec<f64> = (0..len).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
            let mut b = a.clone();
            wht(&mut b);
            let want = naive_wht(&a);
            for (x, y) in b.iter().zip(&want) {
                assert!((x - y).abs() < 1e-9, "n={n}: {x} vs {y}");
            }
            wht(&mut b);
            for (x, y) in b.iter().zip(&a) {
                assert!((x / len as f64 - y).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn log_sum_exp_is_stable_for_huge_and_tiny_inputs() {
        assert!((log_sum_exp(&[1000.0, 1000.0]) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert!((log_sum_exp(&[-1000.0, -1000.0]) - (-1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(log_sum_exp(&[]), f64::NEG_INFINITY);
    }

    #[test]
    fn sampling_never_draws_zero_probability_states_and_counts_sum_to_m() {
        let p = [0.0, 0.5, 0.0, 0.25, 0.25, 0.0];
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(7);
        let c = sample_counts(&p, 10_000, &mut rng);
        assert_eq!(c.iter().map(|&(_, k)| k).sum::<u64>(), 10_000);
        for &(s, k) in &c {
            assert!(p[s as usize] > 0.0, "drew state {s} of probability 0");
            let freq = k as f64 / 10_000.0;
            assert!((freq - p[s as usize]).abs() < 0.03, "state {s}: {freq}");
        }
    }
}
