//! Exact computations over enumerated states: the Walsh–Hadamard transform, log-sum-exp,
//! and exact sampling (docs/spec.md §3, §9).
//!
//! Spin states are the integers x ∈ [0, 2^N): bit i of x is 0 for σ_i = +1 and 1 for
//! σ_i = −1. Then the parity χ_S(x) = Π_{i∈S} σ_i(x) = (−1)^{popcount(x & S)}, and the
//! (unnormalised) Walsh–Hadamard transform H, with H\[S\]\[x\] = χ_S(x), maps
//! - a coefficient vector c over subsets to the function Σ_S c_S χ_S(x) over states
//!   (energies of a pairwise model are H applied to its couplings), and
//! - a distribution q over states to all its parity moments ⟨χ_S⟩_q at once (second moments
//!   are the |S| = 2 entries, the Newton Hessian needs |S| ≤ 4).
//!
//! Both cost N·2^(N−1) butterflies instead of 2^N per subset.

use rand::Rng;

/// In-place unnormalised fast Walsh–Hadamard transform of a slice of length 2^N.
///
/// H is symmetric and H·H = 2^N·I. The stages are cache-blocked: all stages that stay
/// inside a 2^12-element (32 KiB) block run while the block is in L1, then the remaining
/// stages stream over the whole array — 5 passes over memory instead of N for N = 16.
/// Summation order is fixed, so results are bit-identical across runs and machines.
pub fn wht(a: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { wht_avx2(a) };
        return;
    }
    wht_generic(a);
}

/// [`wht`] compiled for AVX2 (4 lanes instead of SSE2's 2). The same additions in the same
/// order, so results are bit-identical to the generic path.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn wht_avx2(a: &mut [f64]) {
    wht_generic(a);
}

#[inline(always)]
fn wht_generic(a: &mut [f64]) {
    const BLOCK: usize = 1 << 12;
    let n = a.len();
    debug_assert!(n.is_power_of_two());
    if n <= 1 {
        return;
    }
    let block = BLOCK.min(n);
    for chunk in a.chunks_exact_mut(block) {
        wht_stages(chunk, 1, block);
    }
    wht_stages(a, block, n);
}

/// Butterfly stages with half-widths h = from, 2·from, … < to, over `a` (len a multiple of 2h).
#[inline(always)]
fn wht_stages(a: &mut [f64], from: usize, to: usize) {
    let mut h = from;
    if h == 1 && to >= 4 {
        // The first two stages on contiguous quadruples: length-1 inner loops don't vectorise.
        for q in a.chunks_exact_mut(4) {
            let (x0, x1, x2, x3) = (q[0], q[1], q[2], q[3]);
            let (s0, d0, s1, d1) = (x0 + x1, x0 - x1, x2 + x3, x2 - x3);
            q[0] = s0 + s1;
            q[1] = d0 + d1;
            q[2] = s0 - s1;
            q[3] = d0 - d1;
        }
        h = 4;
    }
    while h < to {
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

/// e^x for x ≤ 0, to within ~1 ulp, written so loops over it vectorise.
///
/// Every exponential in taustar has a non-positive argument (weights relative to the
/// ground state), and 2^16 of them per exact pass dominate the fits; libm's `exp` is a
/// scalar call. Cody–Waite reduction x = k·ln2 + r with |r| ≤ ln2/2, a degree-13 Taylor
/// polynomial for e^r (truncation < 2e-17 relative), and 2^k assembled from bits.
/// Arguments below −708 give exactly 0 (the true value is < 1e-307). Pure IEEE arithmetic,
/// no fused multiply-add: results are bit-identical on every x86-64 and aarch64 machine.
#[inline(always)]
pub fn exp_nonpos(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // fdlibm's split of ln 2: the high part has trailing zero bits, so k·LN2_HI is exact.
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
    // 1.5·2^52: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    let xc = x.max(-708.0);
    let t = xc * LOG2E + MAGIC;
    let kf = t - MAGIC;
    let r = (xc - kf * LN2_HI) - kf * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0; // 1/13!
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let k = (t.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    let scale = f64::from_bits(((k + 1023) as u64) << 52);
    if x < -708.0 {
        0.0
    } else {
        p * scale
    }
}

/// out\[i\] = e^{shift − e\[i\]} for every i (shift ≥ max of the e\[i\]'s negation range, so every
/// argument is ≤ 0), returning Σ out in [`sum4`] order. The hot loop of every exact pass.
pub fn boltzmann_weights(energy: &[f64], shift: f64, out: &mut [f64]) -> f64 {
    exp_weights(energy, shift, out);
    sum4(out)
}

/// out[i] = e^{shift − e[i]}, vectorised (AVX2 when the CPU has it: the same operations, so
/// the same bits).
fn exp_weights(energy: &[f64], shift: f64, out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { exp_weights_avx2(energy, shift, out) };
    }
    exp_weights_generic(energy, shift, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn exp_weights_avx2(energy: &[f64], shift: f64, out: &mut [f64]) {
    exp_weights_generic(energy, shift, out)
}

#[inline(always)]
fn exp_weights_generic(energy: &[f64], shift: f64, out: &mut [f64]) {
    for (w, &e) in out.iter_mut().zip(energy) {
        *w = exp_nonpos(shift - e);
    }
}

/// [`boltzmann_weights`] for energies even under the global flip: `energy[N−1−x]` equals
/// `energy[x]` bit for bit (pair energies, see `model::ising`), N a power of two ≥ 8. The
/// exponentials of the first half are computed and mirrored into the second, so `out` and
/// the sum are the bits [`boltzmann_weights`] gives, at half the exponentials.
pub fn boltzmann_weights_flip_even(energy: &[f64], shift: f64, out: &mut [f64]) -> f64 {
    let n = energy.len();
    debug_assert!(n.is_power_of_two() && n >= 8 && out.len() == n);
    debug_assert!(
        (0..n / 2).all(|x| energy[x].to_bits() == energy[n - 1 - x].to_bits()),
        "energies not flip-even"
    );
    let h = n / 2;
    let (lo, hi) = out.split_at_mut(h);
    exp_weights(&energy[..h], shift, lo);
    for (w, &v) in hi.iter_mut().zip(lo.iter().rev()) {
        *w = v;
    }
    sum4(out)
}

/// Σ of a slice with four interleaved accumulators: vectorisable, and — unlike an
/// iterator `sum` — in a fixed order that does not depend on the target's vector width.
#[inline(always)]
pub fn sum4(a: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let chunks = a.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            acc[k] += c[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for &v in rest {
        s += v;
    }
    s
}

/// log Σ_i exp(a_i), stable for any finite inputs; −∞ for an empty slice.
pub fn log_sum_exp(a: &[f64]) -> f64 {
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + a.iter().map(|&x| exp_nonpos(x - m)).sum::<f64>().ln()
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
    if (x & s).count_ones().is_multiple_of(2) {
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
        for n in (0..8).chain([13, 14]) {
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
    fn vectorised_paths_are_bit_identical_to_the_generic_code() {
        let a: Vec<f64> = (0..1 << 14).map(|i| ((i as f64) * 0.37).sin() * 3.0).collect();
        let (mut x, mut y) = (a.clone(), a.clone());
        wht(&mut x);
        wht_generic(&mut y);
        assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()));
        let shift = a.iter().copied().fold(f64::INFINITY, f64::min);
        let (mut w1, mut w2) = (vec![0.0; a.len()], vec![0.0; a.len()]);
        let z1 = boltzmann_weights(&a, shift, &mut w1);
        exp_weights_generic(&a, shift, &mut w2);
        let z2 = sum4(&w2);
        assert_eq!(z1.to_bits(), z2.to_bits());
        assert!(w1.iter().zip(&w2).all(|(p, q)| p.to_bits() == q.to_bits()));
    }

    #[test]
    fn flip_even_weights_are_the_bits_of_the_full_computation() {
        let n = 1usize << 12;
        let half: Vec<f64> = (0..n / 2).map(|i| ((i as f64) * 0.37).sin() * 3.0).collect();
        let e: Vec<f64> = (0..n).map(|x| half[x.min(n - 1 - x)]).collect();
        let shift = e.iter().copied().fold(f64::INFINITY, f64::min);
        let (mut full, mut mirrored) = (vec![0.0; n], vec![0.0; n]);
        let z1 = boltzmann_weights(&e, shift, &mut full);
        let z2 = boltzmann_weights_flip_even(&e, shift, &mut mirrored);
        assert_eq!(z1.to_bits(), z2.to_bits());
        assert!(full.iter().zip(&mirrored).all(|(p, q)| p.to_bits() == q.to_bits()));
    }

    #[test]
    fn fast_exp_is_within_two_ulp_of_libm() {
        let mut worst: f64 = 0.0;
        for i in 0..200_000 {
            let x = -(i as f64) * 708.0 / 200_000.0 - (i % 7) as f64 * 1e-7;
            let (a, b) = (exp_nonpos(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 4.5e-16, "worst relative error {worst:e}");
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert_eq!(exp_nonpos(-800.0), 0.0);
        assert_eq!(exp_nonpos(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn sum4_adds_everything() {
        for n in 0..11 {
            let v: Vec<f64> = (0..n).map(f64::from).collect();
            assert_eq!(sum4(&v), f64::from(n * (n - 1).max(0) / 2));
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
