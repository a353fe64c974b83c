//! Potts models (docs/spec.md §10, "Potts truths"): q states per site, fields h_i(a) and
//! couplings J_ij(a, b), E(s) = −Σ_i h_i(s_i) − Σ_{i<j} J_ij(s_i, s_j); the files they come
//! from and the alignments they are fitted to.
//!
//! - [`alphabet`]: adabmDCA's protein, RNA and DNA alphabets (gap first) and custom ones.
//! - [`params`]: [`PottsModel`], dense couplings with contiguous rows J_ij(a, ·) for samplers,
//!   and the energy of a sequence.
//! - [`gauge`]: the zero-sum gauge (Σ_a J_ij(a, b) = 0 = Σ_b J_ij(a, b), Σ_a h_i(a) = 0) that
//!   fits report their models in; energy differences are unchanged by it.
//! - [`chain`]: [`PottsChain`], single-site heat-bath sweeps with incrementally kept local
//!   fields f_i(·) and energy.
//! - [`adabmdca`]: adabmDCA's text format `J i j a b value` / `h i a value`, read streaming
//!   and written as adabmDCA writes it.
//! - [`msa`]: alignments from FASTA, A2M and Stockholm files, insert columns dropped.
//! - [`weights`]: sequence reweighting at an identity threshold and M_eff.
//! - [`split`]: training / held-out splits by single-linkage identity clusters, so held-out
//!   sequences are not near-copies of training ones.
//! - [`enumerate`](mod@enumerate): exact ln Z and probabilities of models with few states, the oracle.
//! - [`random`]: [`PottsRandomSpec`] and [`random_family`], seeded synthetic protein-like families
//!   (truth kind `potts-random`): a backbone plus random long-range contacts, Gaussian couplings
//!   on them, returned in the zero-sum gauge.
//! - [`error`]: [`PottsError`], naming file, line, field and value.
//!
//! Which choices follow adabmDCA (github:spqb/adabmDCApy, adabmDCA.jl, adabmDCAc) and where
//! we differ is documented in each module.

pub mod adabmdca;
pub mod alphabet;
pub mod chain;
pub mod enumerate;
pub mod error;
pub mod gauge;
pub mod msa;
pub mod params;
pub mod random;
pub mod split;
pub mod weights;

pub use adabmdca::{read_params, read_params_file, write_params, write_params_file};
pub use alphabet::Alphabet;
pub use chain::PottsChain;
pub use enumerate::{decode_state, enumerate, Enumeration};
pub use error::PottsError;
pub use msa::{read_alignment, read_alignment_file, write_fasta_file, Alignment, AlignmentFormat};
pub use params::PottsModel;
pub use random::{random_family, PottsRandomSpec};
pub use split::{identity_clusters, split_by_identity, IdentitySplit};
pub use weights::{reweight, SequenceWeights, DEFAULT_IDENTITY_THRESHOLD};
