//! A training / held-out split of an alignment by identity cluster, so that held-out
//! sequences are not near-copies of training ones.
//!
//! Why: a model is judged on held-out sequences as stand-ins for fresh draws of the family.
//! Natural alignments are full of close relatives; a held-out sequence 95 % identical to a
//! training one is scored as if it had been trained on, which flatters the model and drags
//! the energy-match τ towards the training set's. So no held-out sequence may have identity
//! above the threshold θ with any training sequence.
//!
//! # Clustering: single linkage, because only it guarantees the invariant
//!
//! Two sequences are linked when their identity is above θ (the rule of
//! [`reweight`](super::weights::reweight): equal columns over all L match columns, gaps
//! included, strictly above θ). Clusters are the connected components of that graph
//! (single linkage). Whole clusters go to one side, so a held-out and a training sequence
//! are never linked: the invariant holds by construction. Greedy centroid clustering
//! (CD-HIT, MMseqs2's cluster mode) does not give this: a member of one cluster can be
//! above θ with a member of another, so whole clusters on different sides can still hold
//! near-copies. The price of single linkage is chaining: a family with a dense core can
//! form one giant component. Its size is reported ([`IdentitySplit::largest_cluster`]); a
//! cluster larger than the held-out target simply stays in training.
//!
//! # Which clusters are held out
//!
//! The clusters, in the order of their first sequence, are shuffled by the caller's
//! generator, then visited in that order: a cluster joins the held-out side when that
//! brings the held-out count closer to the target ⌊fraction·M⌉ (i.e. when
//! held-out + size/2 < target), else it stays in training. Every cluster has its chance,
//! clusters much larger than the target never overshoot it, and the result depends on the
//! seed alone (the graph and its components are found the same way on any thread count).
//!
//! Cost: the O(M²L) pair comparisons of the reweighting (shared code, early exits), rows
//! in parallel, then a union-find over the links in sequence order.

use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;

use super::error::PottsError;
use super::msa::Alignment;
use super::weights::{check_threshold, close, matches_needed};

/// The outcome of [`split_by_identity`]: sequence indices into the alignment, each side in
/// alignment order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySplit {
    /// Training sequences.
    pub train: Vec<usize>,
    /// Held-out sequences: none has identity above the threshold with a training one.
    pub heldout: Vec<usize>,
    /// Number of single-linkage clusters.
    pub clusters: usize,
    /// Size of the largest cluster.
    pub largest_cluster: usize,
    /// Clusters on the held-out side.
    pub heldout_clusters: usize,
}

/// Single-linkage clusters at identity threshold θ: `labels[m]` is the smallest index of
/// the cluster holding sequence m (so equal labels ⇔ same cluster, and labels do not depend
/// on thread count).
pub fn identity_clusters(alignment: &Alignment, threshold: f64) -> Result<Vec<usize>, PottsError> {
    check_threshold(threshold)?;
    let m = alignment.num_sequences();
    let need = matches_needed(threshold, alignment.length());
    let seqs: Vec<&[u8]> = alignment.sequences().collect();
    // Links of each row to later rows, found in parallel, collected in row order.
    let links: Vec<Vec<u32>> = (0..m)
        .into_par_iter()
        .map(|a| (a + 1..m).filter(|&b| close(seqs[a], seqs[b], need)).map(|b| b as u32).collect())
        .collect();
    let mut parent: Vec<usize> = (0..m).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (a, row) in links.iter().enumerate() {
        for &b in row {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b as usize));
            // The smaller index is the root, so a root is its cluster's smallest member.
            if ra != rb {
                let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
                parent[hi] = lo;
            }
        }
    }
    Ok((0..m).map(|x| root(&mut parent, x)).collect())
}

/// Split `alignment` into training and held-out sequences by single-linkage clusters at
/// identity threshold `threshold` (module docs), aiming at `heldout_fraction` of the
/// sequences held out. Errors when θ is outside [0, 1), the fraction outside (0, 1), or no
/// cluster can be held out (every cluster is too large for the target: the error says how
/// large the largest is, and that a higher θ splits it).
pub fn split_by_identity<R: Rng>(
    alignment: &Alignment,
    threshold: f64,
    heldout_fraction: f64,
    rng: &mut R,
) -> Result<IdentitySplit, PottsError> {
    if !(heldout_fraction > 0.0 && heldout_fraction < 1.0) {
        return Err(PottsError::setting("held-out fraction", heldout_fraction, "need 0 < fraction < 1"));
    }
    let labels = identity_clusters(alignment, threshold)?;
    let m = labels.len();
    let mut sizes = vec![0usize; m];
    for &l in &labels {
        sizes[l] += 1;
    }
    let mut order: Vec<usize> = (0..m).filter(|&l| sizes[l] > 0).collect();
    let clusters = order.len();
    let largest_cluster = order.iter().map(|&l| sizes[l]).max().unwrap_or(0);
    order.shuffle(rng);
    let target = (heldout_fraction * m as f64).round() as usize;
    let mut held = vec![false; m];
    let (mut count, mut heldout_clusters) = (0usize, 0usize);
    for &l in &order {
        // Joins when it brings the count closer to the target: count + size/2 < target.
        if 2 * count + sizes[l] < 2 * target {
            held[l] = true;
            count += sizes[l];
            heldout_clusters += 1;
        }
    }
    if count == 0 || count == m {
        return Err(PottsError::setting(
            "held-out fraction",
            heldout_fraction,
            format!(
                "no split of {m} sequences into {clusters} identity clusters comes near it (the largest \
                 holds {largest_cluster}); a higher identity threshold than {threshold} splits clusters"
            ),
        ));
    }
    let (mut train, mut heldout) = (Vec::with_capacity(m - count), Vec::with_capacity(count));
    for (k, &l) in labels.iter().enumerate() {
        if held[l] {
            heldout.push(k);
        } else {
            train.push(k);
        }
    }
    Ok(IdentitySplit { train, heldout, clusters, largest_cluster, heldout_clusters })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Identity above θ by the plain definition: equal columns / L > θ.
    fn above(x: &[u8], y: &[u8], threshold: f64) -> bool {
        let d = x.iter().zip(y).filter(|(a, b)| a == b).count();
        d as f64 / x.len() as f64 > threshold + 1e-12
    }

    /// A family of `m` sequences of length `len`: a few ancestors, each mutated at random
    /// sites, so that identities spread across the threshold.
    fn family(m: usize, len: usize, q: u8, seed: u64) -> Alignment {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ancestors: Vec<Vec<u8>> =
            (0..4).map(|_| (0..len).map(|_| rng.random_range(0..q)).collect()).collect();
        let mut data = Vec::with_capacity(m * len);
        for _ in 0..m {
            let mut s = ancestors[rng.random_range(0..ancestors.len())].clone();
            let mutations = rng.random_range(0..len / 2 + 1);
            for _ in 0..mutations {
                let i = rng.random_range(0..len);
                s[i] = rng.random_range(0..q);
            }
            data.extend(s);
        }
        Alignment::new((0..m).map(|k| format!("s{k}")).collect(), data, len, q as usize).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The invariant: no held-out sequence is above θ with any training sequence; the
        /// sides partition the alignment; the same seed gives the same split.
        #[test]
        fn no_heldout_sequence_is_near_a_training_one(
            m in 5usize..60, len in 5usize..40, q in 2u8..6, family_seed in any::<u64>(),
            split_seed in any::<u64>(), threshold in 0.3f64..0.95, fraction in 0.1f64..0.5,
        ) {
            let a = family(m, len, q, family_seed);
            let split = split_by_identity(&a, threshold, fraction, &mut ChaCha8Rng::seed_from_u64(split_seed));
            let Ok(split) = split else { return Ok(()) };
            for &h in &split.heldout {
                for &t in &split.train {
                    prop_assert!(!above(a.sequence(h), a.sequence(t), threshold), "{h} ~ {t}");
                }
            }
            let mut all: Vec<usize> = split.train.iter().chain(&split.heldout).copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..m).collect::<Vec<_>>());
            prop_assert!(!split.heldout.is_empty() && !split.train.is_empty());
            let again = split_by_identity(&a, threshold, fraction, &mut ChaCha8Rng::seed_from_u64(split_seed));
            prop_assert_eq!(again.ok(), Some(split));
        }

        /// Clusters are exactly the connected components of "identity above θ".
        #[test]
        fn clusters_are_the_components_of_the_identity_graph(
            m in 2usize..40, len in 3usize..30, family_seed in any::<u64>(), threshold in 0.3f64..0.95,
        ) {
            let a = family(m, len, 3, family_seed);
            let labels = identity_clusters(&a, threshold).unwrap();
            // Brute force: flood fill from each sequence.
            for start in 0..m {
                let mut seen = vec![false; m];
                let mut stack = vec![start];
                seen[start] = true;
                while let Some(x) = stack.pop() {
                    for (y, seen_y) in seen.iter_mut().enumerate() {
                        if !*seen_y && above(a.sequence(x), a.sequence(y), threshold) {
                            *seen_y = true;
                            stack.push(y);
                        }
                    }
                }
                for (y, &seen_y) in seen.iter().enumerate() {
                    prop_assert_eq!(seen_y, labels[y] == labels[start]);
                }
                prop_assert_eq!(labels[start], seen.iter().position(|&s| s).unwrap());
            }
        }
    }

    #[test]
    fn one_cluster_cannot_be_split_and_the_error_says_why() {
        let a = Alignment::new(vec!["a".into(), "b".into(), "c".into()], vec![0; 3 * 10], 10, 2).unwrap();
        let e = split_by_identity(&a, 0.8, 0.2, &mut ChaCha8Rng::seed_from_u64(1)).unwrap_err().to_string();
        assert!(e.contains("largest holds 3") && e.contains("higher identity threshold"), "{e}");
        for f in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(split_by_identity(&a, 0.8, f, &mut ChaCha8Rng::seed_from_u64(1)).is_err(), "{f}");
        }
        assert!(split_by_identity(&a, 1.0, 0.2, &mut ChaCha8Rng::seed_from_u64(1)).is_err());
    }
}
