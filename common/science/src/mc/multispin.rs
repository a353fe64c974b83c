//! Multispin coding: 64 independent replicas of the nearest-neighbour Ising torus in the bits
//! of one `u64` per site, updated together by Metropolis with bitwise arithmetic.
//!
//! Bit r of `bits[i]` is replica r's spin at site i (1 = down). For a site, XOR with each of
//! its four neighbours marks the anti-aligned bonds; a bit-sliced adder counts them (c of 4)
//! in all 64 replicas at once. Flipping costs ΔE = 8K − 4Kc (p ∝ e^{K Σσσ}), so c ≥ 2 always
//! flips, c = 1 flips with probability e^{−4K} and c = 0 with e^{−8K}. Those two need random
//! bits: a mask whose bits are independently 1 with probability p is drawn by comparing 64
//! uniform binary fractions with p digit by digit, stopping once every bit is decided — about
//! log2(64) + 2 random words, exact to p's last binary digit. Random words are drawn only when
//! some replica has c ≤ 1.
//!
//! This is the truth's sampler of choice where many independent chains at one temperature are
//! wanted (training data, ⟨·⟩_p): it updates 64 spins for the price of a few word operations.

use rand::Rng;

use crate::exact::exp_nonpos;
use crate::model::ising::torus_bonds;

/// 64 replicas of the nearest-neighbour Ising model on a torus with sides ≥ 3.
#[derive(Debug, Clone)]
pub struct MultispinTorus {
    bits: Vec<u64>,
    neighbours: Vec<[u32; 4]>,
    bonds: Vec<(u32, u32)>,
    /// e^{−4K} and e^{−8K}.
    p1: f64,
    p0: f64,
    /// K = J/T.
    k: f64,
}

/// A 64-bit mask whose bits are independently 1 with probability `p` ∈ [0, 1]: bit r is
/// \[U_r < p\] for U_r uniform, compared with p's binary digits from the most significant,
/// until every bit is decided (or p's 53 significant digits are used up).
pub fn bernoulli_mask<R: Rng>(p: f64, rng: &mut R) -> u64 {
    bernoulli_bits(p, !0, rng)
}

/// [`bernoulli_mask`] for the bits of `need` only (the others come out 0): fewer bits to
/// decide, fewer random words.
pub fn bernoulli_bits<R: Rng>(p: f64, need: u64, rng: &mut R) -> u64 {
    if p >= 1.0 {
        return need;
    }
    if p <= 0.0 {
        return 0;
    }
    let (mut result, mut undecided) = (0u64, need);
    let mut frac = p;
    for _ in 0..1100 {
        // The next binary digit of p (exact: doubling and subtracting 1 are exact in f64).
        frac *= 2.0;
        let digit = frac >= 1.0;
        if digit {
            frac -= 1.0;
        }
        let r: u64 = rng.random();
        if digit {
            // U's digit 0 where p's is 1: U < p, decided 1; digit 1: still equal.
            result |= undecided & !r;
            undecided &= r;
        } else {
            // U's digit 1 where p's is 0: U > p, decided 0; digit 0: still equal.
            undecided &= !r;
        }
        if undecided == 0 || frac == 0.0 {
            break;
        }
    }
    result
}

impl MultispinTorus {
    /// 64 replicas at K = 1/T, each spin uniformly random.
    pub fn random<R: Rng>(rows: u32, cols: u32, temperature: f64, rng: &mut R) -> MultispinTorus {
        assert!(rows >= 3 && cols >= 3, "multispin coding needs four distinct neighbours (sides >= 3)");
        let n = (rows * cols) as usize;
        let site = |r: u32, c: u32| (r % rows) * cols + (c % cols);
        let neighbours = (0..rows * cols)
            .map(|s| {
                let (r, c) = (s / cols, s % cols);
                [site(r + 1, c), site(r + rows - 1, c), site(r, c + 1), site(r, c + cols - 1)]
            })
            .collect();
        let k = 1.0 / temperature;
        MultispinTorus {
            bits: (0..n).map(|_| rng.random()).collect(),
            neighbours,
            bonds: torus_bonds(rows, cols),
            // taustar's IEEE-pure exponential: the same chains on every machine.
            p1: exp_nonpos(-4.0 * k),
            p0: exp_nonpos(-8.0 * k),
            k,
        }
    }

    /// One Metropolis sweep of every replica (sites in order).
    pub fn sweep<R: Rng>(&mut self, rng: &mut R) {
        for i in 0..self.bits.len() {
            let s = self.bits[i];
            let [a, b, c, d] = self.neighbours[i];
            let (x1, x2, x3, x4) = (
                s ^ self.bits[a as usize],
                s ^ self.bits[b as usize],
                s ^ self.bits[c as usize],
                s ^ self.bits[d as usize],
            );
            // Count the anti-aligned bonds, c = x1 + x2 + x3 + x4, bit-sliced.
            let (h1, c1) = (x1 ^ x2, x1 & x2);
            let (h2, c2) = (x3 ^ x4, x3 & x4);
            let ones = h1 ^ h2;
            let at_least_two = c1 | c2 | (h1 & h2);
            let exactly_one = ones & !at_least_two;
            let zero = !(ones | at_least_two);
            let mut flip = at_least_two;
            if exactly_one != 0 {
                flip |= bernoulli_bits(self.p1, exactly_one, rng);
            }
            if zero != 0 {
                flip |= bernoulli_bits(self.p0, zero, rng);
            }
            self.bits[i] = s ^ flip;
        }
    }

    /// E = −K Σ_bonds σσ of every replica (replica r at index r).
    pub fn energies(&self) -> [f64; 64] {
        let mut anti = [0u32; 64];
        for &(i, j) in &self.bonds {
            let mut x = self.bits[i as usize] ^ self.bits[j as usize];
            while x != 0 {
                anti[x.trailing_zeros() as usize] += 1;
                x &= x - 1;
            }
        }
        let bonds = self.bonds.len() as f64;
        std::array::from_fn(|r| -self.k * (bonds - 2.0 * f64::from(anti[r])))
    }

    /// Replica r's spins (±1).
    pub fn replica(&self, r: usize) -> Vec<i8> {
        self.bits.iter().map(|&w| if (w >> r) & 1 == 1 { -1 } else { 1 }).collect()
    }

    /// Number of sites.
    pub fn len(&self) -> usize {
        self.bits.len()
    }

    /// No sites (never: sides ≥ 3).
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mc::model::SpinModel;
    use rand::SeedableRng;

    #[test]
    fn bernoulli_masks_have_the_right_frequency() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for p in [0.0, 1e-3, 0.1, 0.5, 0.7316, 1.0] {
            let words = 4000;
            let ones: u32 = (0..words).map(|_| bernoulli_mask(p, &mut rng).count_ones()).sum();
            let n = f64::from(words * 64);
            // Only the needed bits, and each with probability p.
            let need = 0x00ff_00f0_0f0f_1234u64;
            let partial: u32 = (0..words)
                .map(|_| {
                    let m = bernoulli_bits(p, need, &mut rng);
                    assert_eq!(m & !need, 0);
                    m.count_ones()
                })
                .sum();
            let pn = f64::from(words * need.count_ones());
            let pse = (p * (1.0 - p) / pn).sqrt().max(1e-12);
            assert!((f64::from(partial) / pn - p).abs() <= 4.0 * pse, "p = {p}: partial frequency");
            let freq = f64::from(ones) / n;
            let se = (p * (1.0 - p) / n).sqrt().max(1e-12);
            assert!((freq - p).abs() <= 4.0 * se, "p = {p}: frequency {freq}");
        }
    }

    #[test]
    fn energies_match_the_spin_model() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut m = MultispinTorus::random(4, 5, 2.5, &mut rng);
        for _ in 0..10 {
            m.sweep(&mut rng);
        }
        let model = SpinModel::torus(4, 5, 1.0 / 2.5);
        let e = m.energies();
        for r in [0, 17, 63] {
            assert!((e[r] - model.energy(&m.replica(r))).abs() < 1e-12);
        }
    }
}
