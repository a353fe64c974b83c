//! The multicanonical weight function ω(E): the sampled law is π(σ) ∝ e^{ω(E(σ))}.
//!
//! Inside the energy window [e_lo, e_hi], cut into bins of equal width, ω is linear inside
//! each bin: ω(E) = ω_k + b_k (E − c_k) in bin k, with c_k its centre and b_k the central
//! difference (ω_{k+1} − ω_{k−1}) / 2w (one-sided in the end bins). Why linear: the
//! energies of fitted models are continuous and ln g(E) changes by several units across a
//! bin at the cold end, so constant weights would leave each bin's histogram tilted. Why
//! the slope from the neighbours and not a line through the centres: a level's weight then
//! depends on its own bin's ω_k with coefficient 1 and on the neighbours' with at most ¼,
//! so the recursion that sets ω_k from bin k's histogram is well conditioned. With a line
//! through the centres a level at a bin edge is weighed half by a bin that never counts
//! it; on the sparse spectrum of a small model (gaps wider than a bin) the weights then
//! drift along a direction no histogram measures. For a smooth ln g the two agree, and
//! with ln g linear ω is continuous at every edge. When ω_k ≈ −ln g_k (g_k the number of
//! configurations in bin k) the energy histogram is flat and a walker diffuses freely
//! between the window's ends.
//!
//! Outside the window the walker is canonical at the window's ends: below it
//! ω(E) = ω(e_lo) − β_max (E − e_lo) (the law at β_max, the coldest β any answer is asked
//! at), above it ω(E) = ω(e_hi) (β = 0). Why: the window is placed from pilot runs and may
//! miss some of the tails; a walker that steps out is not lost (as with ω = −∞) nor drawn
//! away (as with a flat continuation into the ground states), and every β in [0, β_max] can
//! still be reweighted to, since those tails are exactly the tails of the end laws.

/// ω on a binned energy window.
#[derive(Debug, Clone, PartialEq)]
pub struct MucaWeights {
    /// Lower edge of the window.
    pub e_lo: f64,
    /// Bin width.
    pub width: f64,
    /// ω at the centre of each bin, c_k = e_lo + (k + ½) width.
    pub omega: Vec<f64>,
    /// β of the canonical continuation below the window.
    pub beta_max: f64,
}

impl MucaWeights {
    /// Flat weights (ω = 0: the β = 0 law inside the window) on `bins` bins from `e_lo`.
    pub fn flat(e_lo: f64, width: f64, bins: usize, beta_max: f64) -> MucaWeights {
        MucaWeights { e_lo, width, omega: vec![0.0; bins], beta_max }
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.omega.len()
    }

    /// Upper edge of the window.
    pub fn e_hi(&self) -> f64 {
        self.e_lo + self.width * self.omega.len() as f64
    }

    /// Centre of bin k.
    pub fn center(&self, k: usize) -> f64 {
        self.e_lo + (k as f64 + 0.5) * self.width
    }

    /// The bin holding E, or `None` outside the window.
    #[inline]
    pub fn bin(&self, e: f64) -> Option<usize> {
        let x = (e - self.e_lo) / self.width;
        (x >= 0.0 && x < self.omega.len() as f64).then_some(x as usize)
    }

    /// The bin holding E, energies below the window counted in the first bin and above it
    /// in the last. Why: a walker outside the window moves with ω tied to the end bin's
    /// value (module docs), so the weight iteration must lower that value while the walker
    /// is out there too; otherwise a state just below the window (a ground state a pilot's
    /// mean missed by round-off) is a trap no update ever drains.
    #[inline]
    pub fn bin_clamped(&self, e: f64) -> usize {
        let x = (e - self.e_lo) / self.width;
        if x < 0.0 {
            0
        } else {
            (x as usize).min(self.omega.len() - 1)
        }
    }

    /// The slope b_k of ω inside bin k (module docs).
    #[inline]
    fn slope(&self, k: usize) -> f64 {
        let b = self.omega.len();
        if b < 2 {
            0.0
        } else if k == 0 {
            (self.omega[1] - self.omega[0]) / self.width
        } else if k == b - 1 {
            (self.omega[b - 1] - self.omega[b - 2]) / self.width
        } else {
            (self.omega[k + 1] - self.omega[k - 1]) / (2.0 * self.width)
        }
    }

    /// ω(E) (module docs): linear inside each bin, canonical at β_max below the window and
    /// flat above it.
    #[inline]
    pub fn omega(&self, e: f64) -> f64 {
        let x = (e - self.e_lo) / self.width;
        let last = self.omega.len() - 1;
        if x < 0.0 {
            let edge = self.omega[0] - 0.5 * self.width * self.slope(0);
            return edge - self.beta_max * (e - self.e_lo);
        }
        let k = x as usize;
        if k > last {
            return self.omega[last] + 0.5 * self.width * self.slope(last);
        }
        self.omega[k] + self.slope(k) * (e - self.center(k))
    }

    /// Add `extra` bins below the window, their ω on the β_max continuation (so ω changes
    /// little where the walkers have been; the iteration goes on from there).
    pub fn extend_down(&mut self, extra: usize) {
        let (w0, beta) = (self.omega[0], self.beta_max);
        let mut omega: Vec<f64> = (0..extra).map(|j| w0 + beta * self.width * (extra - j) as f64).collect();
        omega.append(&mut self.omega);
        self.omega = omega;
        self.e_lo -= self.width * extra as f64;
    }

    /// Give every bin not `visited` the ω of the straight line through its nearest visited
    /// neighbours (below the lowest visited bin the β_max continuation, above the highest
    /// the flat one). Why: a bin no walker has entered holds no energy level at all (the
    /// spectrum of a small model has gaps wider than a bin) or none yet; its ω is not
    /// determined by anything, but through the interpolation it sets the weight of the
    /// levels in the half bins around it. Left alone, it is never lowered while its
    /// neighbours are, and the weights run away around it.
    pub fn fill_unvisited(&mut self, visited: &[bool]) {
        let seen: Vec<usize> = (0..self.bins()).filter(|&k| visited[k]).collect();
        let (Some(&first), Some(&last)) = (seen.first(), seen.last()) else {
            return;
        };
        let mut below = first;
        for k in 0..self.bins() {
            if visited[k] {
                below = k;
                continue;
            }
            self.omega[k] = if k < first {
                self.omega[first] + self.beta_max * self.width * (first - k) as f64
            } else if k > last {
                self.omega[last]
            } else {
                let above = (k + 1..=last).find(|&j| visited[j]).unwrap_or(last);
                let t = (k - below) as f64 / (above - below) as f64;
                self.omega[below] * (1.0 - t) + self.omega[above] * t
            };
        }
    }

    /// Shift ω so that its largest value is 0 (only differences matter; this keeps the
    /// numbers small over many iterations).
    pub fn normalise(&mut self) {
        let top = self.omega.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if top.is_finite() {
            for w in &mut self.omega {
                *w -= top;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omega_is_linear_in_each_bin_and_canonical_outside() {
        let w = MucaWeights { e_lo: -10.0, width: 2.0, omega: vec![4.0, 2.0, 1.0], beta_max: 3.0 };
        assert_eq!(w.e_hi(), -4.0);
        assert_eq!(w.bin(-10.0), Some(0));
        assert_eq!(w.bin(-4.0), None);
        assert_eq!(w.bin(-10.5), None);
        assert_eq!((w.bin_clamped(-10.5), w.bin_clamped(-3.0)), (0, 2));
        // Centres carry ω_k; slopes −1, −¾, −½.
        assert_eq!(w.omega(-9.0), 4.0);
        assert_eq!(w.omega(-7.0), 2.0);
        assert_eq!(w.omega(-6.5), 2.0 - 0.375);
        assert_eq!(w.omega(-6.0), 1.5, "a step of ¼ at the edge: ω is not straight here");
        assert_eq!(w.omega(-5.0), 1.0);
        assert_eq!(w.omega(-4.5), 0.75);
        assert_eq!(w.omega(100.0), 0.5, "β = 0 above the window");
        assert_eq!(w.omega(-11.0), 5.0 + 3.0, "β_max below it");
        let mut u = MucaWeights { omega: vec![9.0, 1.0, 9.0, 3.0, 9.0, 9.0], ..w.clone() };
        u.fill_unvisited(&[false, true, false, true, false, false]);
        assert_eq!(u.omega, vec![1.0 + 3.0 * 2.0, 1.0, 2.0, 3.0, 3.0, 3.0]);
        // A straight ω stays straight when extended down along it.
        let mut v = MucaWeights { e_lo: -10.0, width: 2.0, omega: vec![6.0, 0.0, -6.0], beta_max: 3.0 };
        let before: Vec<f64> = [-9.5, -7.0, -5.0].iter().map(|&e| v.omega(e)).collect();
        v.extend_down(2);
        assert_eq!((v.bins(), v.e_lo), (5, -14.0));
        let after: Vec<f64> = [-9.5, -7.0, -5.0].iter().map(|&e| v.omega(e)).collect();
        assert_eq!(before, after);
        assert_eq!(v.omega(-13.0), 18.0);
    }
}
