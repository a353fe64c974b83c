//! How many cells one lease carries.
//!
//! A lease should carry a few seconds of work: far less and the worker spends its time in
//! round trips (trivial two-level cells take microseconds), far more and the tail of a study
//! waits on one slow worker while others idle. The worker reports its measured mean cell
//! duration; the coordinator sizes the batch as `threads × target / mean`, clamped. Before
//! the first measurement a worker gets one cell per thread.

/// Batch sizing parameters.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Wall seconds of work one lease should carry.
    pub target_seconds: f64,
    /// Upper bound on cells per lease (bounds message size and re-leasing after a loss).
    pub max_cells: u32,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy { target_seconds: 4.0, max_cells: 2048 }
    }
}

impl BatchPolicy {
    /// Cells for a worker with `threads` threads whose mean cell took `mean_cell_seconds`
    /// (≤ 0 or non-finite: unknown). Always at least one per thread and at most `max_cells`.
    pub fn cells_for(&self, threads: u32, mean_cell_seconds: f64) -> u32 {
        let threads = threads.clamp(1, self.max_cells.max(1));
        if !(mean_cell_seconds.is_finite() && mean_cell_seconds > 0.0) {
            return threads;
        }
        let per_thread = (self.target_seconds / mean_cell_seconds).max(1.0);
        let want = (f64::from(threads) * per_thread).min(f64::from(self.max_cells));
        (want as u32).clamp(threads, self.max_cells.max(threads))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unknown_duration_gives_one_cell_per_thread() {
        assert_eq!(BatchPolicy::default().cells_for(8, 0.0), 8);
        assert_eq!(BatchPolicy::default().cells_for(8, f64::NAN), 8);
    }

    #[test]
    fn a_lease_carries_about_the_target_seconds_of_work() {
        let p = BatchPolicy { target_seconds: 4.0, max_cells: 100_000 };
        // 4 threads, 0.1 s per cell: 40 cells per thread = 4 s of wall time.
        assert_eq!(p.cells_for(4, 0.1), 160);
    }

    #[test]
    fn trivial_cells_are_capped() {
        assert_eq!(BatchPolicy::default().cells_for(2, 1e-6), 2048);
    }

    #[test]
    fn slow_cells_still_get_one_per_thread() {
        assert_eq!(BatchPolicy::default().cells_for(3, 600.0), 3);
    }

    proptest! {
        #[test]
        fn batch_is_within_bounds_and_shrinks_as_cells_slow_down(
            threads in 1u32..256, a in 1e-7f64..1e4, b in 1e-7f64..1e4) {
            let p = BatchPolicy::default();
            let (fast, slow) = if a <= b { (a, b) } else { (b, a) };
            let nf = p.cells_for(threads, fast);
            let ns = p.cells_for(threads, slow);
            prop_assert!(nf >= threads.min(p.max_cells) && nf <= p.max_cells.max(threads));
            prop_assert!(ns <= nf);
        }

        /// Whatever a worker claims (0, NaN, ±∞, subnormal, u32::MAX threads), the batch is
        /// between 1 and max_cells.
        #[test]
        fn any_claim_is_clamped_to_max_cells(threads in any::<u32>(), mean in any::<f64>(), max in 1u32..5000) {
            let p = BatchPolicy { target_seconds: 4.0, max_cells: max };
            for m in [mean, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, 5e-324, f64::MAX] {
                let n = p.cells_for(threads, m);
                prop_assert!((1..=max).contains(&n), "threads {threads}, mean {m}: {n}");
            }
        }
    }
}
