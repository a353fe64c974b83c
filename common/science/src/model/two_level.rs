//! The two-level ("toy") truth of docs/spec.md §2.1: states 0..n_g are low (E = 0, label L = 0),
//! states n_g..N_s are high (E = Δ, label L = 1).

use rand::Rng;
use rand_distr::{Binomial, Distribution};

/// A two-level truth. Construct through [`TwoLevelTruth::new`] with validated values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoLevelTruth {
    /// N_s.
    pub states: u32,
    /// n_g.
    pub low_states: u32,
    /// Δ.
    pub gap: f64,
}

impl TwoLevelTruth {
    /// A truth with N_s states of which n_g are low, at gap Δ (assumed validated).
    pub fn new(states: u32, low_states: u32, gap: f64) -> Self {
        TwoLevelTruth { states, low_states, gap }
    }

    /// n_e = N_s − n_g.
    pub fn high_states(&self) -> u32 {
        self.states - self.low_states
    }

    /// log Z_p = log(n_g + n_e e^{−Δ}).
    pub fn log_partition(&self) -> f64 {
        let (ng, ne) = (f64::from(self.low_states), f64::from(self.high_states()));
        ng.ln() + (ne / ng * (-self.gap).exp()).ln_1p()
    }

    /// Probability mass of the whole low class, n_g / (n_g + n_e e^{−Δ}).
    pub fn low_mass(&self) -> f64 {
        let (ng, ne) = (f64::from(self.low_states), f64::from(self.high_states()));
        1.0 / (1.0 + ne / ng * (-self.gap).exp())
    }

    /// Exact entropy S(p) in nats.
    pub fn entropy(&self) -> f64 {
        // S = log Z + Δ ⟨L⟩_p.
        self.log_partition() + self.gap * (1.0 - self.low_mass())
    }

    /// Draw M iid samples and return the count of every state.
    ///
    /// Exact multinomial sampling by binomial splitting: first how many samples fall in the
    /// low class, then how they spread over its (equally likely) states, state by state.
    /// O(N_s) binomial draws instead of M categorical draws, so large M costs nothing extra.
    pub fn sample_counts<R: Rng>(&self, m: u64, rng: &mut R) -> Vec<u64> {
        let mut counts = vec![0u64; self.states as usize];
        let k_low = binomial(m, self.low_mass(), rng);
        spread_uniformly(&mut counts[..self.low_states as usize], k_low, rng);
        spread_uniformly(&mut counts[self.low_states as usize..], m - k_low, rng);
        counts
    }
}

/// Spread `n` draws uniformly over the slots of `counts` (a uniform multinomial).
///
/// Few draws per slot: one uniform index per draw. Many: one binomial per slot (each
/// binomial costs a setup of its own, so this wins only when draws outnumber slots).
/// Both are exact.
fn spread_uniformly<R: Rng>(counts: &mut [u64], n: u64, rng: &mut R) {
    let slots = counts.len();
    if n <= 4 * slots as u64 {
        for _ in 0..n {
            counts[rng.random_range(0..slots)] += 1;
        }
        return;
    }
    let mut remaining = n;
    for (i, c) in counts.iter_mut().enumerate() {
        if remaining == 0 {
            break;
        }
        let left = slots - i;
        *c = if left == 1 { remaining } else { binomial(remaining, 1.0 / left as f64, rng) };
        remaining -= *c;
    }
}

/// One Binomial(n, p) draw; p is clamped into [0, 1] (it always is, up to rounding).
fn binomial<R: Rng>(n: u64, p: f64, rng: &mut R) -> u64 {
    let p = p.clamp(0.0, 1.0);
    match Binomial::new(n, p) {
        Ok(b) => b.sample(rng),
        // Unreachable for p in [0, 1]; keep the draw well-defined anyway.
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sample_counts_sum_to_m_and_follow_the_class_masses() {
        let t = TwoLevelTruth::new(100, 20, 3.0);
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(1);
        let m = 200_000;
        let c = t.sample_counts(m, &mut rng);
        assert_eq!(c.iter().sum::<u64>(), m);
        let low: u64 = c[..20].iter().sum();
        let freq = low as f64 / m as f64;
        assert!((freq - t.low_mass()).abs() < 0.005, "{freq} vs {}", t.low_mass());
        // Within a class every state is equally likely.
        let per_low = m as f64 * t.low_mass() / 20.0;
        for &k in &c[..20] {
            assert!((k as f64 - per_low).abs() < 6.0 * per_low.sqrt(), "{k} vs {per_low}");
        }
    }

    #[test]
    fn both_spreading_regimes_are_uniform() {
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(9);
        for n in [30u64, 4000] {
            let mut total = vec![0u64; 10];
            for _ in 0..500 {
                let mut c = vec![0u64; 10];
                spread_uniformly(&mut c, n, &mut rng);
                assert_eq!(c.iter().sum::<u64>(), n);
                total.iter_mut().zip(&c).for_each(|(t, x)| *t += x);
            }
            let expect = (n * 500 / 10) as f64;
            for &t in &total {
                assert!((t as f64 - expect).abs() < 6.0 * expect.sqrt(), "n={n}: {t} vs {expect}");
            }
        }
    }

    #[test]
    fn entropy_matches_direct_sum() {
        let t = TwoLevelTruth::new(50, 7, 2.2);
        let lz = t.log_partition();
        let direct: f64 = (0..50)
            .map(|s| {
                let e = if s < 7 { 0.0 } else { 2.2 };
                let lp = -e - lz;
                -lp.exp() * lp
            })
            .sum();
        assert!((direct - t.entropy()).abs() < 1e-12);
    }
}
