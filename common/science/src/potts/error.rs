//! Errors of Potts model and alignment files. They reach users verbatim, so each names the
//! file, the 1-based line, the field and the value as written: a parameter file has ~20
//! million lines and an alignment thousands of sequences, and "invalid file" alone would
//! leave the user to bisect it.

/// A Potts parameter file, alignment or setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PottsError {
    /// The file could not be opened or read (or written).
    #[error("cannot read {file}: {error}")]
    Io {
        /// The file, as the caller named it.
        file: String,
        /// Why reading failed.
        error: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write {file}: {error}")]
    Write {
        /// The file, as the caller named it.
        file: String,
        /// Why writing failed.
        error: std::io::Error,
    },
    /// One field of one line holds a value the format does not allow.
    #[error("{file} line {line}: {field} `{value}`: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
        /// Which field of the line, e.g. "site j" or "value".
        field: &'static str,
        /// The field as written (shortened when very long).
        value: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A line or block whose structure is wrong (a missing header, a second alignment).
    #[error("{file} line {line}: {reason}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A problem with the file as a whole (no sequences, no fields, a missing terminator).
    #[error("{file}: {reason}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The same coupling J_ij(a, b) given by two lines; with `transposed`, the second line
    /// wrote it as `J j i b a` (the other triangle of the coupling matrix).
    #[error(
        "{file} line {line}: pair ({i}, {j}) letters ({a}, {b}) listed twice (first at line {first}){}",
        if *transposed {
            format!(
                "; `J {j} {i} {b} {a}` is the same coupling as `J {i} {j} {a} {b}` (J_ji(b, a) = J_ij(a, b)): \
                 list each pair once, as adabmDCA does (i < j)"
            )
        } else {
            String::new()
        }
    )]
    DuplicateCoupling {
        /// The file.
        file: String,
        /// The second line.
        line: u64,
        /// The line that gave the coupling first.
        first: u64,
        /// Smaller site of the pair.
        i: u32,
        /// Larger site of the pair.
        j: u32,
        /// Letter of site i.
        a: char,
        /// Letter of site j.
        b: char,
        /// The second line wrote the pair as (j, i).
        transposed: bool,
    },
    /// The same field h_i(a) given by two lines.
    #[error("{file} line {line}: field of site {i} letter {a} listed twice (first at line {first})")]
    DuplicateField {
        /// The file.
        file: String,
        /// The second line.
        line: u64,
        /// The line that gave the field first.
        first: u64,
        /// The site.
        i: u32,
        /// The letter.
        a: char,
    },
    /// A field h_i(a) of a site the file describes has no line.
    #[error(
        "{file}: no line `h {i} {a} value` (site {i} of 0..{n}): adabmDCA writes every field after \
         the couplings, so the file is probably truncated"
    )]
    MissingField {
        /// The file.
        file: String,
        /// The site.
        i: u32,
        /// The letter.
        a: char,
        /// Number of sites (one more than the largest site of an `h` line).
        n: u32,
    },
    /// A symbol of a sequence that is not in the alphabet (or not allowed where it stands).
    #[error("{file} line {line}: sequence `{name}` column {column}: `{symbol}` {reason}")]
    Symbol {
        /// The file.
        file: String,
        /// 1-based line of the offending character.
        line: u64,
        /// The sequence's name.
        name: String,
        /// 1-based column of the character in the sequence as written (inserts included).
        column: usize,
        /// The character (escaped when not printable).
        symbol: String,
        /// Why it is refused.
        reason: String,
    },
    /// A sequence whose length differs from the first sequence's.
    #[error("{file} line {line}: sequence `{name}` has {length} {unit}, but `{first}` has {expected}{}", unit.hint())]
    Length {
        /// The file.
        file: String,
        /// 1-based line where the sequence starts.
        line: u64,
        /// The sequence's name.
        name: String,
        /// Its length.
        length: usize,
        /// The first sequence's name.
        first: String,
        /// The first sequence's length.
        expected: usize,
        /// What is counted.
        unit: LengthUnit,
    },
    /// An argument outside its allowed range (an identity threshold, an alphabet, a size).
    #[error("invalid {field} = {value}: {reason}")]
    Setting {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is allowed.
        reason: String,
    },
}

/// What the lengths of [`PottsError::Length`] count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthUnit {
    /// Characters of a rectangular (Stockholm) alignment.
    Columns,
    /// Characters of an aligned FASTA file (which might be A2M).
    FastaColumns,
    /// Match positions of an A2M sequence.
    MatchPositions,
}

impl LengthUnit {
    fn hint(self) -> &'static str {
        match self {
            LengthUnit::FastaColumns => {
                " (if lower case and `.` mark inserts per sequence, read the file as A2M)"
            }
            LengthUnit::Columns | LengthUnit::MatchPositions => "",
        }
    }
}

impl std::fmt::Display for LengthUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LengthUnit::Columns | LengthUnit::FastaColumns => "columns",
            LengthUnit::MatchPositions => "match positions (upper case and `-`)",
        })
    }
}

impl PottsError {
    /// Build a [`PottsError::Setting`].
    pub fn setting(field: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        PottsError::Setting { field, value: value.to_string(), reason: reason.into() }
    }

    /// The 1-based line the error points at, if it has one.
    pub fn line(&self) -> Option<u64> {
        match self {
            PottsError::Invalid { line, .. }
            | PottsError::Syntax { line, .. }
            | PottsError::DuplicateCoupling { line, .. }
            | PottsError::DuplicateField { line, .. }
            | PottsError::Symbol { line, .. }
            | PottsError::Length { line, .. } => Some(*line),
            PottsError::Io { .. }
            | PottsError::Write { .. }
            | PottsError::File { .. }
            | PottsError::MissingField { .. }
            | PottsError::Setting { .. } => None,
        }
    }
}

/// Longest quotation of a value in an error message, in characters.
const MAX_QUOTE_CHARS: usize = 60;

/// `bytes` as text for an error message: invalid UTF-8 replaced, control characters
/// escaped, and cut at [`MAX_QUOTE_CHARS`] so a binary file cannot flood the terminal.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (k, c) in text.chars().enumerate() {
        if k == MAX_QUOTE_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
