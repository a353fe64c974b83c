//! Sequence reweighting: sequences of an alignment are not independent draws (close
//! relatives are over-represented), so DCA tools give sequence m the weight 1/N_m, N_m the
//! number of sequences within an identity threshold of it, and report the effective number
//! of sequences M_eff = Σ_m 1/N_m.
//!
//! We follow adabmDCA (github:spqb/adabmDCApy `adabmDCA/fasta.py` `compute_weights` /
//! `_get_sequence_weight`, and github:spqb/adabmDCAc `src/BMlib.cpp` `Data::compute_w`):
//! - identity = (number of columns with equal states) / L, over all L match columns, so two
//!   gaps in the same column count as a match;
//! - N_m counts sequences with identity **strictly greater** than the threshold (`seq_id > th`
//!   in Python, `d > L·(1 − w_th)` in C), and includes m itself (identity 1);
//! - default threshold 0.8.
//!
//! adabmDCA.jl (`compute_weights` in `src/source/utils.jl`) and the Python docstring say
//! `>=`; the code of the Python and C implementations, and the documentation ("identity above
//! the threshold") say `>`, which we follow. The comparison is made in integers: a pair is
//! close when its equal columns d satisfy d > θ·L, i.e. d ≥ ⌊θ·L⌋ + 1, with θ·L snapped to
//! an integer when rounding put it within 1e-9 of one (so 0.8 at L = 10 means d > 8 exactly).
//! adabmDCA compares floats (float32 in Python, and C's 1 − 0.2 is slightly below 0.8), so at
//! exactly d = θ·L its implementations differ; that is where ours is defined.
//!
//! Cost O(M²L): each pair is compared once, in chunks of 32 columns with an exit as soon as
//! the pair is decided either way, and rows are shared out across threads with rayon. The
//! counts are integers, so the result does not depend on the number of threads.

use rayon::prelude::*;

use super::error::PottsError;
use super::msa::Alignment;

/// The identity threshold of adabmDCA, plmDCA and most DCA tools.
pub const DEFAULT_IDENTITY_THRESHOLD: f64 = 0.8;

/// Columns compared between two early-exit checks: short enough to stop early on long
/// alignments, long enough for the comparison loop to vectorise.
const CHUNK: usize = 32;

/// Weights of an alignment's sequences and their sum.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceWeights {
    /// w_m = 1/N_m, in the alignment's order.
    pub weights: Vec<f64>,
    /// N_m: the sequences (m included) with identity above the threshold, for each m.
    pub cluster_sizes: Vec<u32>,
    /// M_eff = Σ_m w_m, summed in order.
    pub neff: f64,
    /// The identity threshold, `None` for unit weights.
    pub threshold: Option<f64>,
}

impl SequenceWeights {
    /// Unit weights (no reweighting): M_eff = M.
    pub fn uniform(alignment: &Alignment) -> SequenceWeights {
        let m = alignment.num_sequences();
        SequenceWeights { weights: vec![1.0; m], cluster_sizes: vec![1; m], neff: m as f64, threshold: None }
    }
}

/// Weights at identity threshold `threshold` (0 ≤ θ < 1; adabmDCA's default is
/// [`DEFAULT_IDENTITY_THRESHOLD`]); see the module docs for the exact rule.
pub fn reweight(alignment: &Alignment, threshold: f64) -> Result<SequenceWeights, PottsError> {
    check_threshold(threshold)?;
    let length = alignment.length();
    let need = matches_needed(threshold, length);
    let cluster_sizes = cluster_sizes(alignment, need);
    let weights: Vec<f64> = cluster_sizes.iter().map(|&c| 1.0 / f64::from(c)).collect();
    let neff = weights.iter().sum();
    Ok(SequenceWeights { weights, cluster_sizes, neff, threshold: Some(threshold) })
}

/// An identity threshold must lie in [0, 1): a sequence must be above it with itself.
pub(crate) fn check_threshold(threshold: f64) -> Result<(), PottsError> {
    if !(0.0..1.0).contains(&threshold) {
        return Err(PottsError::setting(
            "identity threshold",
            threshold,
            "need 0 <= threshold < 1 (a sequence must be above the threshold with itself)",
        ));
    }
    Ok(())
}

/// The least number of equal columns d with d > θ·L, at most L (a sequence always counts
/// itself). θ·L is a product of a decimal and an integer, rounded: within 1e-9 of an integer
/// it is taken as that integer, so θ = 0.07 at L = 100 asks for d > 7, not d > 7.000000000000001.
pub(crate) fn matches_needed(threshold: f64, length: usize) -> usize {
    let t = threshold * length as f64;
    let t = if (t - t.round()).abs() <= 1e-9 { t.round() } else { t };
    (t.floor() as usize + 1).min(length)
}

/// For each sequence, 1 + the number of others sharing at least `need` columns with it.
fn cluster_sizes(alignment: &Alignment, need: usize) -> Vec<u32> {
    let m = alignment.num_sequences();
    let seqs: Vec<&[u8]> = alignment.sequences().collect();
    let mut counts = (0..m)
        .into_par_iter()
        .fold(
            || vec![0u32; m],
            |mut counts, a| {
                for b in a + 1..m {
                    if close(seqs[a], seqs[b], need) {
                        counts[a] += 1;
                        counts[b] += 1;
                    }
                }
                counts
            },
        )
        .reduce(
            || vec![0u32; m],
            |mut x, y| {
                x.iter_mut().zip(&y).for_each(|(x, y)| *x += y);
                x
            },
        );
    counts.iter_mut().for_each(|c| *c += 1);
    counts
}

/// Whether `x` and `y` (equal lengths) agree in at least `need` columns.
#[inline]
pub(crate) fn close(x: &[u8], y: &[u8], need: usize) -> bool {
    let max_mismatches = x.len() - need;
    let (mut matches, mut mismatches) = (0, 0);
    for (cx, cy) in x.chunks(CHUNK).zip(y.chunks(CHUNK)) {
        let same = cx.iter().zip(cy).map(|(a, b)| usize::from(a == b)).sum::<usize>();
        matches += same;
        mismatches += cx.len() - same;
        if matches >= need {
            return true;
        }
        if mismatches > max_mismatches {
            return false;
        }
    }
    matches >= need
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alignment(rows: &[&[u8]]) -> Alignment {
        let names = (0..rows.len()).map(|k| k.to_string()).collect();
        Alignment::new(names, rows.concat(), rows[0].len(), 4).unwrap()
    }

    #[test]
    fn identity_exactly_at_the_threshold_does_not_count() {
        // L = 5, θ = 0.8: 4 of 5 equal is identity 0.8, not above it.
        let a = alignment(&[&[0, 1, 2, 3, 0], &[0, 1, 2, 3, 1], &[0, 1, 2, 3, 0]]);
        let w = reweight(&a, 0.8).unwrap();
        assert_eq!(w.cluster_sizes, [2, 1, 2]);
        assert_eq!(w.neff, 2.0);
        // θ = 0.79: 4 of 5 is above it, all three are one cluster.
        assert_eq!(reweight(&a, 0.79).unwrap().cluster_sizes, [3, 3, 3]);
    }

    #[test]
    fn early_exit_agrees_with_a_full_count_past_one_chunk() {
        let len = 3 * CHUNK + 5;
        let x: Vec<u8> = (0..len).map(|k| (k % 4) as u8).collect();
        for mismatches in [0, 1, 10, 40, len] {
            let mut y = x.clone();
            for k in 0..mismatches {
                y[(k * 7) % len] ^= 1;
            }
            let d = x.iter().zip(&y).filter(|(a, b)| a == b).count();
            for need in [1, d.saturating_sub(1).max(1), d.max(1), d + 1, len] {
                assert_eq!(close(&x, &y, need.min(len)), d >= need.min(len), "d {d} need {need}");
            }
        }
    }

    #[test]
    fn decimal_thresholds_mean_what_they_say() {
        assert_eq!(matches_needed(0.8, 10), 9);
        assert_eq!(matches_needed(0.07, 100), 8);
        assert_eq!(matches_needed(0.62, 50), 32);
        assert_eq!(matches_needed(0.625, 50), 32);
        assert_eq!(matches_needed(0.0, 50), 1);
        assert_eq!(matches_needed(0.999_999_999_999, 50), 50);
    }

    #[test]
    fn thresholds_outside_zero_one_are_errors() {
        let a = alignment(&[&[0, 1]]);
        for t in [-0.1, 1.0, 1.5, f64::NAN] {
            assert!(reweight(&a, t).is_err(), "{t}");
        }
        assert_eq!(reweight(&a, 0.0).unwrap().neff, 1.0);
    }
}
