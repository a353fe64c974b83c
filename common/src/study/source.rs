//! The study file's text, for turning parser spans into line numbers and quoted values.

use std::fmt::Display;
use std::ops::Range;

use super::error::{At, StudyError};

/// Longest quotation of a value in an error message, in characters.
const MAX_QUOTE_CHARS: usize = 80;

/// The source text of a study file; every error is built here so it carries a line.
pub(crate) struct Doc<'s> {
    src: &'s str,
}

impl<'s> Doc<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Doc { src }
    }

    /// 1-based line of the byte offset `span.start`.
    pub(crate) fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.src.len());
        self.src.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    pub(crate) fn at(&self, span: &Range<usize>) -> At {
        At(Some(self.line(span)))
    }

    /// The text of `span`, whitespace collapsed and truncated, for quoting in a message.
    pub(crate) fn text(&self, span: &Range<usize>) -> String {
        let raw = self.src.get(span.clone()).unwrap_or("");
        let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.chars().count() > MAX_QUOTE_CHARS {
            let cut: String = collapsed.chars().take(MAX_QUOTE_CHARS).collect();
            format!("{cut}…")
        } else {
            collapsed
        }
    }

    /// `key` holds the value written at `span`, which is wrong because of `reason`.
    pub(crate) fn invalid(&self, key: &str, span: &Range<usize>, reason: impl Into<String>) -> StudyError {
        StudyError::Invalid {
            key: key.to_string(),
            value: self.text(span),
            at: self.at(span),
            reason: reason.into(),
        }
    }

    /// Like [`Doc::invalid`], with a value computed from what was written (a range element).
    pub(crate) fn invalid_value(
        &self,
        key: &str,
        value: impl Display,
        span: &Range<usize>,
        reason: impl Into<String>,
    ) -> StudyError {
        StudyError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            at: self.at(span),
            reason: reason.into(),
        }
    }

    /// `key` is required inside the table written at `table_span` (or at top level).
    pub(crate) fn missing(
        &self,
        key: &str,
        table_span: Option<&Range<usize>>,
        reason: impl Into<String>,
    ) -> StudyError {
        StudyError::Missing {
            key: key.to_string(),
            at: At(table_span.map(|s| self.line(s))),
            reason: reason.into(),
        }
    }

    /// A key the format does not know.
    pub(crate) fn unknown(
        &self,
        key: &str,
        key_span: &Range<usize>,
        value_span: &Range<usize>,
        allowed: &[&str],
    ) -> StudyError {
        let expected = if allowed.is_empty() {
            "no keys are allowed here".to_string()
        } else {
            format!("expected one of: {}", allowed.join(", "))
        };
        StudyError::UnknownKey {
            key: key.to_string(),
            value: self.text(value_span),
            at: self.at(key_span),
            expected,
        }
    }

    /// A TOML syntax error, at the parser's position.
    pub(crate) fn syntax(&self, err: &toml::de::Error) -> StudyError {
        StudyError::Syntax {
            at: At(err.span().map(|s| self.line(&s))),
            message: err.message().trim().to_string(),
        }
    }
}
