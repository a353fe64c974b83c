//! Errors of study files. They reach users verbatim, so each names the key path
//! (`truth.gap`), the value as written and the 1-based line where the file says it.

use std::fmt;
use std::path::PathBuf;

/// Where in the study file a problem sits: displayed as `line N: `, or as nothing when the
/// problem has no single place (a missing top-level key, a cap on the whole grid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct At(pub Option<usize>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, "line {line}: "),
            None => Ok(()),
        }
    }
}

/// A study file that cannot be read, parsed or expanded into cells.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The file could not be read.
    #[error("cannot read study file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        error: std::io::Error,
    },
    /// An error inside a named file (wraps any other variant).
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error inside it.
        error: Box<StudyError>,
    },
    /// The text is not valid TOML.
    #[error("{at}not valid TOML: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: At,
        /// The TOML parser's message.
        message: String,
    },
    /// A key the study format does not know (a typo, or a parameter of another truth kind).
    #[error("{at}unknown key `{key}` = {value}; {expected}")]
    UnknownKey {
        /// Full key path, e.g. `truth.gapp`.
        key: String,
        /// The value as written.
        value: String,
        /// Where the key is.
        at: At,
        /// What is allowed there.
        expected: String,
    },
    /// A required key is absent.
    #[error("{at}missing key `{key}`: {reason}")]
    Missing {
        /// Full key path, e.g. `seed`.
        key: String,
        /// The enclosing table's line, if it has one.
        at: At,
        /// Why it is needed and what to write.
        reason: String,
    },
    /// A value of the wrong type or outside its allowed range.
    #[error("{at}{key} = {value}: {reason}")]
    Invalid {
        /// Full key path, e.g. `truth.gap` or `truth.gap.step`.
        key: String,
        /// The value as written (or as computed, for a value a range produced).
        value: String,
        /// Where the value is.
        at: At,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

impl StudyError {
    /// The 1-based line of the study file the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            StudyError::Read { .. } => None,
            StudyError::InFile { error, .. } => error.line(),
            StudyError::Syntax { at, .. }
            | StudyError::UnknownKey { at, .. }
            | StudyError::Missing { at, .. }
            | StudyError::Invalid { at, .. } => at.0,
        }
    }

    /// The key path the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            StudyError::Read { .. } | StudyError::Syntax { .. } => None,
            StudyError::InFile { error, .. } => error.key(),
            StudyError::UnknownKey { key, .. }
            | StudyError::Missing { key, .. }
            | StudyError::Invalid { key, .. } => Some(key),
        }
    }
}
