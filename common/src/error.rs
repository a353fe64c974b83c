//! Errors of the science library. Every message names the offending field and value,
//! because they reach users of the CLI and study files verbatim.

use std::fmt::Display;

/// An invalid cell, grid point, model or setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A field holds a value outside its allowed range.
    #[error("invalid {field} = {value}: {reason}")]
    Invalid {
        /// The field (flag or study key) at fault.
        field: String,
        /// The offending value, as the user wrote it or as parsed.
        value: String,
        /// What is allowed instead.
        reason: String,
    },
}

impl SpecError {
    /// Build an [`SpecError::Invalid`] naming `field`, `value` and what is wrong.
    pub fn invalid(field: impl Into<String>, value: impl Display, reason: impl Into<String>) -> Self {
        SpecError::Invalid { field: field.into(), value: value.to_string(), reason: reason.into() }
    }
}

/// A name outside an enum's (a fit mode, a stop reason) is an invalid value of its field.
impl From<taustar_science::fit::UnknownName> for SpecError {
    fn from(e: taustar_science::fit::UnknownName) -> Self {
        SpecError::invalid(e.field, e.value, format!("expected {}", e.expected))
    }
}
