//! Seeded synthetic protein families: the Potts truth kind `potts-random` (docs/spec.md §10,
//! "Potts truths").
//!
//! A real family's model (fitted by adabmDCA from a Pfam alignment) is a truth nobody knows
//! exactly; a synthetic family is one whose every parameter we wrote down, so what a fit
//! recovers can be compared with what generated the data. [`random_family`] builds one from
//! a [`PottsRandomSpec`]: N sites of q states, a sparse contact graph shaped like a protein's,
//! and on it couplings J_ij(a, b) ~ N(0, σ_J²), fields h_i(a) ~ N(0, σ_h²), all i.i.d.
//!
//! # The contact graph
//!
//! - **Backbone.** Every pair (i, i + 1) is a contact, as adjacent residues of a chain are.
//!   This makes the graph connected (it contains the path 0–1–…–(N−1)), so no site is
//!   independent of the rest and the family never splits into separate smaller models that
//!   a study would then be measuring instead; it also mirrors fitted DCA models, whose
//!   largest couplings are between residues close in sequence (which is why contact
//!   prediction skips |i − j| < 5).
//! - **Long-range contacts**, chosen uniformly at random (without replacement) among the
//!   remaining pairs, |i − j| ≥ 2, so that the contacts number
//!   max(round(f · N(N−1)/2), N − 1) with f = `contact_fraction` (`f64::round`, halves away
//!   from zero, of the product computed in `f64`). When f asks for fewer contacts than the
//!   backbone alone has, the graph is the backbone: a chain cannot have fewer contacts than
//!   its bonds.
//!
//! With σ_J > 0 the coupling block of every contact is nonzero (with probability 1) and every
//! other block is exactly zero, so [`PottsModel::pair_is_zero`] reads the graph back off the
//! model; [`contacts`] gives it without building the model.
//!
//! # The gauge
//!
//! The model is returned in the zero-sum gauge ([`zero_sum_gauge`]), which leaves its
//! Boltzmann law unchanged but is the gauge fits report (plmDCA, adabmDCA's `zerosum`, our
//! fits): a truth in another gauge would look different from a perfect fit of itself. Each
//! contact block is centred along rows and columns, J' = P J P with P = I − 11ᵀ/q, so its
//! entries keep variance σ_J²(q − 1)²/q²; the row means taken out move into the fields.
//!
//! # Determinism
//!
//! The model is a function of the spec alone: one `ChaCha8Rng::seed_from_u64(seed)` stream,
//! drawn from in this fixed order, on one thread:
//!
//! 1. the long-range contacts: with M = (N − 1)(N − 2)/2 candidate pairs numbered in
//!    lexicographic order of (i, j) and k of them wanted, Floyd's algorithm, one draw
//!    `random_range(0..=t)` for each t = M − k, …, M − 1 (none when k = 0);
//! 2. the fields, site-major: h_0(0), h_0(1), …, h_0(q − 1), h_1(0), …;
//! 3. the couplings, contacts in lexicographic order of (i, j), each block a-major then
//!    b-minor: J_ij(0, 0), J_ij(0, 1), …, J_ij(q − 1, q − 1);
//!
//! each normal being `rand_distr::Normal::new(0, σ)`, i.e. σ times one standard normal
//! variate. Drawing a normal even when σ = 0 keeps the stream independent of the strengths:
//! two specs differing only in σ_J have the same graph, the same fields before the gauge and
//! proportional couplings. The numbers depend on ChaCha8 (fixed by its specification) and on
//! the samplers of `rand` 0.9 and `rand_distr` 0.5 as locked in Cargo.lock; an integration
//! test pins a few values, so an upgrade that changed a sampler — and with it every
//! `potts-random` truth — fails a test instead of passing silently.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::error::PottsError;
use super::gauge::zero_sum_gauge;
use super::params::{max_sites, PottsModel};

/// Most states per site of a synthetic family. Biological alphabets have 5 (RNA, DNA) or
/// 21 (proteins) letters with the gap; 32 leaves room for custom alphabets while a value
/// far beyond any alphabet, such as a site count written into `states`, is refused.
pub const MAX_STATES: usize = 32;

/// Largest coupling or field strength σ. Fitted protein models rarely have |J| or |h| above
/// ~5; at σ = 1000 every conditional is frozen into one letter at any β ≥ 0.01, so a larger
/// value is taken for a typing error (a lost decimal point or exponent). The bound also keeps
/// every energy finite: |E| stays many orders of magnitude below `f64::MAX`.
pub const MAX_STRENGTH: f64 = 1e3;

/// Spec of a synthetic family: N sites of q states, a sparse contact graph, Gaussian
/// couplings on the contacts (module docs).
///
/// Every field is required when read from a study file: a truth is part of a cell's key, so
/// it must not change meaning if a default ever does, and a misspelt field is then reported
/// as the missing one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PottsRandomSpec {
    /// N, the number of sites: 2 ≤ N ≤ [`max_sites`]`(q)`.
    pub sites: usize,
    /// q, the number of states per site: 2 ≤ q ≤ [`MAX_STATES`].
    pub states: usize,
    /// σ_J: the standard deviation of every J_ij(a, b) of a contact before the gauge,
    /// 0 ≤ σ_J ≤ [`MAX_STRENGTH`].
    pub coupling_strength: f64,
    /// σ_h: the standard deviation of every h_i(a) before the gauge,
    /// 0 ≤ σ_h ≤ [`MAX_STRENGTH`].
    pub field_strength: f64,
    /// f ∈ (0, 1]: the fraction of the N(N−1)/2 pairs that are contacts (at least the N − 1
    /// backbone pairs; module docs).
    pub contact_fraction: f64,
    /// Seed of the one random stream the family is drawn from.
    pub seed: u64,
}

impl Default for PottsRandomSpec {
    /// A small protein-like family:
    ///
    /// - `sites` = 50 and `states` = 21: the protein alphabet with the gap, and the smallest
    ///   protein truth of docs/spec.md (Pfam families of interest have N = 50–300), the
    ///   cheapest to sample and fit (n²q² ≈ 1.1·10⁶ couplings).
    /// - `contact_fraction` = 0.1: DCA contact maps have a few % to ~10 % of pairs in contact
    ///   (each residue touches ~5–10 others, so the fraction falls as 1/N: ~10–15 % at
    ///   N = 50, ~3 % at N = 300); at N = 50 that is 123 contacts, ~4.9 per site.
    /// - `field_strength` = 1 and `coupling_strength` = 0.5: a site's conditional energy
    ///   then gets comparable spreads from its field, σ_h·√((q−1)/q) ≈ 0.98, and from its ~5
    ///   contacts, ≈ √4.9·σ_J·(q−1)/q ≈ 1.06, so the family is neither an independent-site
    ///   model (couplings a fit could ignore) nor frozen (couplings much larger than fields
    ///   would pin most sites to one letter, while protein columns keep a few letters each).
    ///   Measured by a heat-bath run at β = 1 (20 000 sweeps): the default family's sites have
    ///   a mean entropy of 2.50 nats (≈ 12 effective letters of 21), 2.57 without couplings
    ///   and 2.29 with σ_J = 1.
    /// - `seed` = 1.
    fn default() -> Self {
        PottsRandomSpec {
            sites: 50,
            states: 21,
            coupling_strength: 0.5,
            field_strength: 1.0,
            contact_fraction: 0.1,
            seed: 1,
        }
    }
}

impl PottsRandomSpec {
    /// Check every field against its range; the error names the field
    /// (`potts-random.<field>`), the value and what is allowed.
    pub fn validate(&self) -> Result<(), PottsError> {
        let q = self.states;
        if !(2..=MAX_STATES).contains(&q) {
            return Err(PottsError::setting(
                "potts-random.states",
                q,
                format!("need 2 <= states <= {MAX_STATES} (q = 21 for proteins, 5 for RNA and DNA)"),
            ));
        }
        let max = max_sites(q);
        if !(2..=max).contains(&self.sites) {
            return Err(PottsError::setting(
                "potts-random.sites",
                self.sites,
                format!(
                    "need 2 <= sites <= {max} at {q} states (a family needs a pair of sites; the \
                     dense couplings hold n²q² <= 2^28 numbers)"
                ),
            ));
        }
        for (field, sigma) in [
            ("potts-random.coupling_strength", self.coupling_strength),
            ("potts-random.field_strength", self.field_strength),
        ] {
            if !(0.0..=MAX_STRENGTH).contains(&sigma) {
                return Err(PottsError::setting(
                    field,
                    sigma,
                    format!("need a standard deviation 0 <= σ <= {MAX_STRENGTH}"),
                ));
            }
        }
        let f = self.contact_fraction;
        if !(f > 0.0 && f <= 1.0) {
            return Err(PottsError::setting(
                "potts-random.contact_fraction",
                f,
                "need a fraction of pairs 0 < f <= 1",
            ));
        }
        Ok(())
    }

    /// N(N−1)/2, the number of pairs i < j.
    pub fn pairs(&self) -> usize {
        self.sites * self.sites.saturating_sub(1) / 2
    }

    /// The number of contacts, max(round(f · N(N−1)/2), N − 1) (module docs).
    pub fn contact_count(&self) -> usize {
        let wanted = (self.contact_fraction * self.pairs() as f64).round() as usize;
        wanted.min(self.pairs()).max(self.sites.saturating_sub(1))
    }
}

/// The contact graph of the family of `spec`, pairs (i, j) with i < j in lexicographic
/// order: the backbone (i, i + 1) and the long-range contacts drawn first from the family's
/// random stream (module docs), exactly those [`random_family`] couples.
///
/// Errors when the spec is invalid ([`PottsRandomSpec::validate`]).
pub fn contacts(spec: &PottsRandomSpec) -> Result<Vec<(usize, usize)>, PottsError> {
    spec.validate()?;
    Ok(draw_contacts(spec, &mut ChaCha8Rng::seed_from_u64(spec.seed)))
}

/// The synthetic family of `spec` in the zero-sum gauge (module docs).
///
/// Errors when the spec is invalid ([`PottsRandomSpec::validate`]).
pub fn random_family(spec: &PottsRandomSpec) -> Result<PottsModel, PottsError> {
    spec.validate()?;
    let (n, q) = (spec.sites, spec.states);
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let contacts = draw_contacts(spec, &mut rng);
    // Finite σ >= 0 was checked, so neither constructor can fail.
    let fields = Normal::new(0.0, spec.field_strength).expect("validated field strength");
    let couplings = Normal::new(0.0, spec.coupling_strength).expect("validated coupling strength");
    let mut model = PottsModel::zeros(n, q)?;
    for i in 0..n {
        for a in 0..q {
            model.set_field(i, a, fields.sample(&mut rng));
        }
    }
    for &(i, j) in &contacts {
        for a in 0..q {
            for b in 0..q {
                model.set_coupling(i, j, a, b, couplings.sample(&mut rng));
            }
        }
    }
    Ok(zero_sum_gauge(&model))
}

/// Step 1 of the stream (module docs): backbone plus k long-range pairs by Floyd's
/// algorithm, which makes exactly k draws and keeps only the k chosen indices.
fn draw_contacts<R: Rng + ?Sized>(spec: &PottsRandomSpec, rng: &mut R) -> Vec<(usize, usize)> {
    let n = spec.sites;
    let backbone = n - 1;
    // Pairs with j − i >= 2, numbered lexicographically: row i holds (i, i + 2..n).
    let candidates = spec.pairs() - backbone;
    let k = spec.contact_count() - backbone;
    let mut chosen = BTreeSet::new();
    for t in candidates - k..candidates {
        let pick = rng.random_range(0..=t);
        if !chosen.insert(pick) {
            chosen.insert(t);
        }
    }
    let mut out: Vec<(usize, usize)> = (0..backbone).map(|i| (i, i + 1)).collect();
    out.reserve(k);
    let (mut row, mut row_start) = (0, 0);
    // `chosen` is sorted, so one walk along the rows maps every index to its pair; an index
    // below `candidates` never walks past row n − 3, the last with a candidate.
    for index in chosen {
        while index >= row_start + (n - row - 2) {
            row_start += n - row - 2;
            row += 1;
        }
        out.push((row, row + 2 + (index - row_start)));
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_candidate_pair_is_mapped_once_at_full_contact() {
        for n in 2..9 {
            let spec = PottsRandomSpec { sites: n, states: 2, contact_fraction: 1.0, ..Default::default() };
            let all: Vec<(usize, usize)> = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).collect();
            assert_eq!(contacts(&spec).unwrap(), all, "n = {n}");
        }
    }
}
