//! Multiple sequence alignments: FASTA, A2M and Stockholm, encoded as Potts states.
//!
//! DCA models only the alignment's match columns, so insert columns are dropped on reading.
//! How a file marks them differs:
//! - **A2M** marks them per residue: upper-case letters and `-` are match positions,
//!   lower-case letters and `.` are inserts (each sequence has its own). Every sequence must
//!   have the same number of match positions.
//! - **Stockholm** and **FASTA** (aligned FASTA, as adabmDCA reads and HMMER's `afa` writes)
//!   are rectangular: every sequence has the same number of characters, and a whole column
//!   is an insert column when it holds only lower-case letters and `.` (HMMER's alignments),
//!   or, in Stockholm, when a `#=GC RF` line marks it with a gap character. Deciding per
//!   column rather than per character matters for Pfam seed alignments, which are written in
//!   upper case with `.` for every gap: there `.` in a match column is a gap (`-`), as the
//!   Stockholm format defines it. In FASTA `.` has no such meaning and is an error outside
//!   insert columns (read a file with `.` gaps as A2M or Stockholm).
//!
//! Any other symbol not in the alphabet (`X`, `B`, `*`, a lower-case letter in a match
//! column) is an error naming the sequence, the line and the column as written. adabmDCA
//! instead drops such sequences (`filter_sequences`, `adabmDCA/fasta.py` in
//! github:spqb/adabmDCApy) or refuses the file; an error makes the choice the user's.
//!
//! A Stockholm file holds one alignment here: text after its `//` is an error, and so is a
//! missing `//` (a truncated file). `#=GF`, `#=GS`, `#=GR` and other `#` lines are skipped;
//! interleaved blocks are joined by sequence name.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::alphabet::Alphabet;
use super::error::{quote, LengthUnit, PottsError};

/// The file formats of [`read_alignment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlignmentFormat {
    /// Aligned FASTA (`>name` lines, then the aligned sequence on one or more lines).
    Fasta,
    /// A2M: FASTA whose lower-case letters and `.` are inserts, per sequence.
    A2m,
    /// Stockholm 1.0, one alignment.
    Stockholm,
}

impl AlignmentFormat {
    /// `fasta`, `a2m` or `stockholm`.
    pub fn named(name: &str) -> Result<AlignmentFormat, PottsError> {
        match name {
            "fasta" => Ok(AlignmentFormat::Fasta),
            "a2m" => Ok(AlignmentFormat::A2m),
            "stockholm" => Ok(AlignmentFormat::Stockholm),
            other => Err(PottsError::setting("alignment format", other, "expected fasta, a2m or stockholm")),
        }
    }

    /// The format a file's extension names: `.fa .fasta .fas .faa .afa .mfa` → FASTA,
    /// `.a2m` → A2M, `.sto .stk .sth .stockholm` → Stockholm (case-insensitive).
    pub fn from_path(path: &Path) -> Option<AlignmentFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "fa" | "fasta" | "fas" | "faa" | "afa" | "mfa" => Some(AlignmentFormat::Fasta),
            "a2m" => Some(AlignmentFormat::A2m),
            "sto" | "stk" | "sth" | "stockholm" => Some(AlignmentFormat::Stockholm),
            _ => None,
        }
    }
}

impl fmt::Display for AlignmentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlignmentFormat::Fasta => "fasta",
            AlignmentFormat::A2m => "a2m",
            AlignmentFormat::Stockholm => "stockholm",
        })
    }
}

/// M sequences of L match columns, as states of an alphabet of q symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alignment {
    names: Vec<String>,
    /// Sequence m at `m·L..(m + 1)·L`: one flat buffer, so the O(M²L) reweighting and
    /// statistics stream through memory.
    data: Vec<u8>,
    length: usize,
    q: usize,
}

impl Alignment {
    /// From names and the sequences' states row by row (`data.len()` = M·L). Errors when
    /// there are no sequences, L = 0, the sizes disagree or a state is not below q.
    pub fn new(names: Vec<String>, data: Vec<u8>, length: usize, q: usize) -> Result<Alignment, PottsError> {
        if names.is_empty() || length == 0 {
            return Err(PottsError::setting(
                "alignment size",
                format!("M = {}, L = {length}", names.len()),
                "need at least one sequence and one column",
            ));
        }
        if data.len() != names.len() * length {
            return Err(PottsError::setting(
                "alignment data",
                format!("{} states", data.len()),
                format!("expected M·L = {}·{length}", names.len()),
            ));
        }
        if let Some(&s) = data.iter().find(|&&s| s as usize >= q) {
            return Err(PottsError::setting("alignment state", s, format!("expected states below q = {q}")));
        }
        Ok(Alignment { names, data, length, q })
    }

    /// Number of match columns L.
    pub fn length(&self) -> usize {
        self.length
    }

    /// Number of sequences M.
    pub fn num_sequences(&self) -> usize {
        self.names.len()
    }

    /// Number of states q of the alphabet the alignment was read with.
    pub fn q(&self) -> usize {
        self.q
    }

    /// The sequences' names (FASTA/A2M: the first word of the `>` line).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The states of sequence m.
    pub fn sequence(&self, m: usize) -> &[u8] {
        &self.data[m * self.length..(m + 1) * self.length]
    }

    /// The sequences in order.
    pub fn sequences(&self) -> std::slice::ChunksExact<'_, u8> {
        self.data.chunks_exact(self.length)
    }

    /// All states, sequence after sequence.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The sequences at `indices`, in that order (an index may repeat). Panics on an index
    /// ≥ M or an empty list: callers pick indices from this alignment.
    pub fn subset(&self, indices: &[usize]) -> Alignment {
        assert!(!indices.is_empty(), "a subset of at least one sequence");
        let names = indices.iter().map(|&k| self.names[k].clone()).collect();
        let mut data = Vec::with_capacity(indices.len() * self.length);
        for &k in indices {
            data.extend_from_slice(self.sequence(k));
        }
        Alignment { names, data, length: self.length, q: self.q }
    }
}

/// Write `alignment` as aligned FASTA to `path`: `>name` and the match columns in the
/// alphabet's symbols on one line, the file every reader here (and adabmDCA) reads back to
/// the same alignment. The alphabet must have the alignment's q.
pub fn write_fasta_file(alignment: &Alignment, alphabet: &Alphabet, path: &Path) -> Result<(), PottsError> {
    use std::io::Write;
    if alphabet.q() != alignment.q() {
        return Err(PottsError::setting(
            "alphabet",
            format!("`{alphabet}`"),
            format!("has {} symbols but the alignment has q = {} states", alphabet.q(), alignment.q()),
        ));
    }
    let file = path.display().to_string();
    let err = |error| PottsError::Write { file: file.clone(), error };
    let mut w = std::io::BufWriter::new(File::create(path).map_err(err)?);
    let mut line = String::with_capacity(alignment.length() + 1);
    for (name, seq) in alignment.names().iter().zip(alignment.sequences()) {
        line.clear();
        line.extend(seq.iter().map(|&s| alphabet.symbol(s)));
        writeln!(w, ">{name}\n{line}").map_err(err)?;
    }
    w.flush().map_err(err)
}

/// Read the alignment in `path` (see the module docs for what each format means).
pub fn read_alignment_file(
    path: &Path,
    format: AlignmentFormat,
    alphabet: &Alphabet,
) -> Result<Alignment, PottsError> {
    let file = path.display().to_string();
    let f = File::open(path).map_err(|error| PottsError::Io { file: file.clone(), error })?;
    read_alignment(BufReader::new(f), format, alphabet, &file)
}

/// Read an alignment from `reader`; `file` names it in errors.
pub fn read_alignment<R: BufRead>(
    reader: R,
    format: AlignmentFormat,
    alphabet: &Alphabet,
    file: &str,
) -> Result<Alignment, PottsError> {
    let ctx = Ctx { file, alphabet, format };
    let raw = match format {
        AlignmentFormat::Fasta | AlignmentFormat::A2m => read_fasta(reader, file)?,
        AlignmentFormat::Stockholm => read_stockholm(reader, file)?,
    };
    if raw.rows.is_empty() {
        return Err(PottsError::File {
            file: file.to_string(),
            reason: format!("no sequences (read as {format})"),
        });
    }
    match format {
        AlignmentFormat::A2m => ctx.encode_a2m(raw.rows),
        AlignmentFormat::Fasta | AlignmentFormat::Stockholm => ctx.encode_columns(raw),
    }
}

/// A sequence as written, whitespace removed.
struct Row {
    name: String,
    /// Line of the `>` header or of the first Stockholm line.
    line: u64,
    text: Vec<u8>,
    /// (first column, line) of each piece of `text`, to name the line of a column.
    pieces: Vec<(usize, u64)>,
}

impl Row {
    fn new(name: String, line: u64) -> Row {
        Row { name, line, text: Vec::new(), pieces: Vec::new() }
    }

    fn push(&mut self, piece: &[u8], line: u64) {
        self.pieces.push((self.text.len(), line));
        self.text.extend(piece.iter().copied().filter(|c| !c.is_ascii_whitespace()));
    }

    /// The line holding 0-based column `col`.
    fn line_of(&self, col: usize) -> u64 {
        let k = self.pieces.partition_point(|&(start, _)| start <= col);
        if k == 0 {
            self.line
        } else {
            self.pieces[k - 1].1
        }
    }
}

/// Rows of a file, and the Stockholm `#=GC RF` line if any.
struct Raw {
    rows: Vec<Row>,
    rf: Option<Row>,
}

/// Calls `each(line_number, line)` for every line, without its line terminator.
pub(crate) fn for_each_line<R: BufRead>(
    mut reader: R,
    file: &str,
    mut each: impl FnMut(u64, &[u8]) -> Result<(), PottsError>,
) -> Result<(), PottsError> {
    let mut buf = Vec::with_capacity(256);
    let mut line = 0u64;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|error| PottsError::Io { file: file.to_string(), error })?;
        if read == 0 {
            return Ok(());
        }
        line += 1;
        let mut text = &buf[..];
        while let [rest @ .., b'\n' | b'\r'] = text {
            text = rest;
        }
        each(line, text)?;
    }
}

fn is_blank(text: &[u8]) -> bool {
    text.iter().all(u8::is_ascii_whitespace)
}

/// ASCII-whitespace separated words.
fn words(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(u8::is_ascii_whitespace).filter(|w| !w.is_empty())
}

fn read_fasta<R: BufRead>(reader: R, file: &str) -> Result<Raw, PottsError> {
    let mut rows: Vec<Row> = Vec::new();
    for_each_line(reader, file, |line, text| {
        if let Some(header) = text.strip_prefix(b">") {
            let name = words(header).next().unwrap_or_default();
            rows.push(Row::new(String::from_utf8_lossy(name).into_owned(), line));
        } else if !is_blank(text) {
            let Some(row) = rows.last_mut() else {
                return Err(PottsError::Syntax {
                    file: file.to_string(),
                    line,
                    reason: format!("`{}` before the first `>` header: not a FASTA file?", quote(text)),
                });
            };
            row.push(text, line);
        }
        Ok(())
    })?;
    Ok(Raw { rows, rf: None })
}

fn read_stockholm<R: BufRead>(reader: R, file: &str) -> Result<Raw, PottsError> {
    let mut rows: Vec<Row> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut rf: Option<Row> = None;
    let (mut header, mut end) = (false, None::<u64>);
    let syntax = |line, reason: String| PottsError::Syntax { file: file.to_string(), line, reason };
    for_each_line(reader, file, |line, text| {
        if is_blank(text) {
            return Ok(());
        }
        if !header {
            if !text.starts_with(b"# STOCKHOLM") {
                return Err(syntax(line, format!("`{}`: expected `# STOCKHOLM 1.0` first", quote(text))));
            }
            header = true;
            return Ok(());
        }
        if let Some(end) = end {
            return Err(syntax(
                line,
                format!(
                    "`{}` after the `//` that ends the alignment at line {end}: one alignment per file \
                     (split a multi-alignment file first)",
                    quote(text)
                ),
            ));
        }
        if text.trim_ascii_end() == b"//" {
            end = Some(line);
            return Ok(());
        }
        if let Some(markup) = text.strip_prefix(b"#=GC") {
            let mut w = words(markup);
            if w.next() == Some(&b"RF"[..]) {
                let piece = w.next().unwrap_or_default();
                rf.get_or_insert_with(|| Row::new("#=GC RF".into(), line)).push(piece, line);
            }
            return Ok(());
        }
        if text.starts_with(b"#") {
            return Ok(());
        }
        let mut w = words(text);
        let (Some(name), Some(seq), None) = (w.next(), w.next(), w.next()) else {
            return Err(syntax(line, format!("`{}`: expected `name aligned-sequence`", quote(text))));
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let k = *by_name.entry(name.clone()).or_insert_with(|| {
            rows.push(Row::new(name, line));
            rows.len() - 1
        });
        rows[k].push(seq, line);
        Ok(())
    })?;
    if !header {
        return Err(PottsError::File {
            file: file.to_string(),
            reason: "empty: no `# STOCKHOLM 1.0` line".into(),
        });
    }
    if end.is_none() {
        return Err(PottsError::File {
            file: file.to_string(),
            reason: "no `//` line ending the alignment (truncated file?)".into(),
        });
    }
    Ok(Raw { rows, rf })
}

/// Gap characters of a `#=GC RF` line (Easel's `-_.~`): the column is an insert column.
fn is_rf_gap(c: u8) -> bool {
    matches!(c, b'-' | b'_' | b'.' | b'~')
}

/// An insert character: lower case or `.`.
fn is_insert(c: u8) -> bool {
    c.is_ascii_lowercase() || c == b'.'
}

struct Ctx<'a> {
    file: &'a str,
    alphabet: &'a Alphabet,
    format: AlignmentFormat,
}

impl Ctx<'_> {
    fn symbol_error(&self, row: &Row, col: usize, reason: String) -> PottsError {
        PottsError::Symbol {
            file: self.file.to_string(),
            line: row.line_of(col),
            name: row.name.clone(),
            column: col + 1,
            symbol: quote(&row.text[col..col + 1]),
            reason,
        }
    }

    fn not_in_alphabet(&self) -> String {
        format!("is not in the alphabet `{}`", self.alphabet)
    }

    fn finish(&self, rows: Vec<Row>, data: Vec<u8>, length: usize) -> Result<Alignment, PottsError> {
        let names = rows.into_iter().map(|r| r.name).collect();
        Alignment::new(names, data, length, self.alphabet.q())
    }

    fn no_columns(&self, why: &str) -> PottsError {
        PottsError::File { file: self.file.to_string(), reason: format!("no match columns ({why})") }
    }

    /// A2M: per residue, upper case and `-` are match positions.
    fn encode_a2m(&self, rows: Vec<Row>) -> Result<Alignment, PottsError> {
        let mut data = Vec::new();
        let mut length = None;
        for row in &rows {
            let start = data.len();
            for (col, &c) in row.text.iter().enumerate() {
                if is_insert(c) {
                    continue;
                }
                match self.alphabet.state(c) {
                    Some(s) => data.push(s),
                    None => return Err(self.symbol_error(row, col, self.not_in_alphabet())),
                }
            }
            let len = data.len() - start;
            match length {
                None => length = Some(len),
                Some(expected) if expected != len => {
                    return Err(PottsError::Length {
                        file: self.file.to_string(),
                        line: row.line,
                        name: row.name.clone(),
                        length: len,
                        first: rows[0].name.clone(),
                        expected,
                        unit: LengthUnit::MatchPositions,
                    });
                }
                Some(_) => {}
            }
        }
        let length = length.unwrap_or(0);
        if length == 0 {
            return Err(self.no_columns("every residue is lower case or `.`"));
        }
        self.finish(rows, data, length)
    }

    /// FASTA and Stockholm: rectangular, insert columns decided per column.
    fn encode_columns(&self, raw: Raw) -> Result<Alignment, PottsError> {
        let rows = raw.rows;
        let width = rows[0].text.len();
        let unit = match self.format {
            AlignmentFormat::Fasta => LengthUnit::FastaColumns,
            _ => LengthUnit::Columns,
        };
        for row in &rows[1..] {
            if row.text.len() != width {
                return Err(PottsError::Length {
                    file: self.file.to_string(),
                    line: row.line,
                    name: row.name.clone(),
                    length: row.text.len(),
                    first: rows[0].name.clone(),
                    expected: width,
                    unit,
                });
            }
        }
        let is_match: Vec<bool> = match &raw.rf {
            Some(rf) => {
                if rf.text.len() != width {
                    return Err(PottsError::Syntax {
                        file: self.file.to_string(),
                        line: rf.line,
                        reason: format!(
                            "the `#=GC RF` line has {} columns, the sequences {width}",
                            rf.text.len()
                        ),
                    });
                }
                rf.text.iter().map(|&c| !is_rf_gap(c)).collect()
            }
            None => (0..width).map(|col| rows.iter().any(|r| !is_insert(r.text[col]))).collect(),
        };
        let length = is_match.iter().filter(|&&m| m).count();
        if length == 0 {
            return Err(self.no_columns(if raw.rf.is_some() {
                "the `#=GC RF` line marks every column as an insert"
            } else {
                "every column holds only lower case and `.`"
            }));
        }
        let stockholm = self.format == AlignmentFormat::Stockholm;
        let gap = self.alphabet.gap();
        let mut data = Vec::with_capacity(rows.len() * length);
        for row in &rows {
            for (col, &c) in row.text.iter().enumerate() {
                if !is_match[col] {
                    continue;
                }
                let state = match (c, stockholm) {
                    (b'.', true) => gap,
                    _ => self.alphabet.state(c),
                };
                match state {
                    Some(s) => data.push(s),
                    None => return Err(self.symbol_error(row, col, self.refusal(c, raw.rf.is_some()))),
                }
            }
        }
        self.finish(rows, data, length)
    }

    /// Why `c` in a match column of a FASTA or Stockholm file is refused.
    fn refusal(&self, c: u8, rf: bool) -> String {
        let stockholm = self.format == AlignmentFormat::Stockholm;
        if c.is_ascii_lowercase() {
            let why = if rf {
                "the `#=GC RF` line marks the column as a match column"
            } else {
                "other sequences have upper case or `-` in this column"
            };
            format!("is lower case (an insert) in a match column: {why}")
        } else if c == b'.' && stockholm {
            format!("(a gap) but the alphabet `{}` has no gap `-`", self.alphabet)
        } else if c == b'.' {
            format!(
                "{}: `.` is a gap of insert columns in A2M and Stockholm files; read the file as one of those",
                self.not_in_alphabet()
            )
        } else {
            self.not_in_alphabet()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, format: AlignmentFormat) -> Result<Alignment, PottsError> {
        read_alignment(text.as_bytes(), format, &Alphabet::protein(), "t")
    }

    #[test]
    fn row_pieces_name_the_line_of_a_column() {
        let mut r = Row::new("s".into(), 3);
        r.push(b"AC", 4);
        r.push(b" D E ", 5);
        assert_eq!(r.text, b"ACDE");
        assert_eq!([r.line_of(0), r.line_of(1), r.line_of(2), r.line_of(3)], [4, 4, 5, 5]);
    }

    #[test]
    fn fasta_a2m_and_stockholm_agree_on_the_same_alignment() {
        let fasta = ">a x\nAC-D\n>b\nA\nCYD\n";
        let a2m = ">a\nAC-D\n>b\nACYD\n";
        let sto = "# STOCKHOLM 1.0\na AC-D\nb ACYD\n//\n";
        let f = read(fasta, AlignmentFormat::Fasta).unwrap();
        assert_eq!(f, read(a2m, AlignmentFormat::A2m).unwrap());
        assert_eq!(f, read(sto, AlignmentFormat::Stockholm).unwrap());
        assert_eq!(f.names(), ["a", "b"]);
        assert_eq!(f.sequence(1), [1, 2, 20, 3]);
    }

    #[test]
    fn written_fasta_reads_back_to_the_same_alignment() {
        let a = read(">a x\nAC-D\n>b\nACYD\n>c\nWWWW\n", AlignmentFormat::Fasta).unwrap();
        let sub = a.subset(&[2, 0]);
        assert_eq!(sub.names(), ["c", "a"]);
        let dir = std::env::temp_dir().join(format!("taustar-msa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sub.fasta");
        write_fasta_file(&sub, &Alphabet::protein(), &path).unwrap();
        let back = read_alignment_file(&path, AlignmentFormat::Fasta, &Alphabet::protein()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back, sub);
        assert!(write_fasta_file(&sub, &Alphabet::rna(), &path).is_err());
    }

    #[test]
    fn formats_are_named_by_extension() {
        assert_eq!(AlignmentFormat::from_path(Path::new("x/PF1.sto")), Some(AlignmentFormat::Stockholm));
        assert_eq!(AlignmentFormat::from_path(Path::new("a.A2M")), Some(AlignmentFormat::A2m));
        assert_eq!(AlignmentFormat::from_path(Path::new("a.faa")), Some(AlignmentFormat::Fasta));
        assert_eq!(AlignmentFormat::from_path(Path::new("a.txt")), None);
        assert_eq!(AlignmentFormat::named("a2m").unwrap(), AlignmentFormat::A2m);
        assert!(AlignmentFormat::named("clustal").is_err());
    }
}
