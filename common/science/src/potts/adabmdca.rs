//! adabmDCA's text format for Potts parameters.
//!
//! What adabmDCA writes (read in github:spqb/adabmDCApy `adabmDCA/io.py` `save_params` with
//! `adabmDCA/utils.py` `get_mask_save`, github:spqb/adabmDCA.jl `src/source/utils.jl`
//! `save_model_new`, github:spqb/adabmDCAc `src/BMmc.cpp` `Model::print_model`; all three
//! agree on the layout):
//! - first one line `J i j a b value` per coupling, sites 0-based with **i < j only** (the
//!   upper triangle: `get_mask_save` masks `tril_indices(L, L, offset=0)`), in the order
//!   i, j, a, b; a and b are **letters** of the alphabet;
//! - then one line `h i a value` per field, in the order i, a, every field written;
//! - single spaces, no header, no comments. Numbers: pandas' / Julia's shortest repr of a
//!   float32 (Python, Julia) or `%.5f` (C). A sparse model (eaDCA, edDCA) writes only the
//!   couplings of its graph; the readers set missing ones to zero.
//!
//! Comments and blank lines: adabmDCA's `load_params` splits each line on whitespace, skips
//! empty ones and keeps only those whose first token is `J` or `h`, so a `#` line (which
//! adabmDCA 1.0.0 documents as a comment) is skipped. Here a line whose first non-blank
//! character is `#`, and a line of whitespace only, is skipped anywhere in the file; any
//! other line must be a `J` or `h` line (below).
//!
//! The legacy integer-state format: older adabmDCA (`load_params_oldformat` /
//! `save_params_oldformat` in `adabmDCA/io.py`) and the C++ bmDCA / adabmDCA write a and b as
//! 0-based integer states, `J i j a b value` / `h i a value` with a, b ∈ 0..q−1, otherwise the
//! same layout. adabmDCA does not guess: the user picks the loader (`load_params` maps letters
//! through the alphabet, and fails on integers; `load_params_oldformat` reads integers and
//! `scripts/convert_format_params.py` rewrites them as letters with `tokens[n]`). Here the
//! format is decided per file by its first state token — all decimal digits: integer states,
//! otherwise letters (alphabets hold no digits, [`Alphabet::new`], so this is never
//! ambiguous) — and every later state token must be of the same kind; a mix is an error
//! naming the line and the token.
//!
//! With integer states, q is the alphabet's, the one the user gives. `load_params_oldformat`
//! infers q as the largest state of the `h` lines + 1 instead, but then
//! `convert_format_params.py` names state n by `tokens[n]` of the user's alphabet, so the
//! alphabet decides what the states mean there too; and our model must have the q of the
//! alphabet that reads the alignments it is used with. A state ≥ q is an error, and so is a
//! file whose largest state is below q − 1 (its model has fewer states than the alphabet:
//! adabmDCA would infer that smaller q, so the user passed the wrong alphabet).
//!
//! Where we are stricter than adabmDCA, and why:
//! - adabmDCA's readers add the transpose of what they read (`J + J.transpose(1, 0, 3, 2)` in
//!   `load_params`), so a file with both `J i j a b` and `J j i b a` silently doubles the
//!   coupling. Here a lower-triangle line is read as the coupling it denotes, and a coupling
//!   given twice, in either triangle, is an error naming both lines.
//! - Lines other than `J`/`h` are ignored by adabmDCA's Python reader; here only `#` comments
//!   and blank lines are, any other line is an error (a typo such as `j` would otherwise drop
//!   couplings silently), as are non-finite values and sites i = j.
//! - Every field h_i(a) of sites 0..n must have a line (adabmDCA always writes them all), so a
//!   truncated file is an error rather than a model with zero fields; n is one more than the
//!   largest site of an `h` line, and a `J` line beyond it is an error.
//!
//! What we write: the same layout, letters, i < j. Numbers are written as the shortest decimal
//! that reads back to the same f64 (exponent form below 1e-4 and from 1e16), so a file
//! round-trips exactly; the C reader's `%lf` and the Python and Julia parsers read it. A pair
//! whose couplings are all zero is left out, as adabmDCA's sparse models leave out pairs
//! outside their graph (missing means zero, so nothing is lost).
//!
//! Parsing streams line by line (a 300-site protein model is 19.8 million `J` lines):
//! couplings are collected in a packed upper triangle whose pair (i < j) block sits at
//! j(j−1)/2 + i, an index that does not depend on n, which is only known after the last line.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use super::alphabet::Alphabet;
use super::error::{quote, PottsError};
use super::msa::for_each_line;
use super::params::{max_sites, PottsModel};

/// Read a parameter file in adabmDCA's format (module docs) with the given alphabet.
pub fn read_params_file(path: &Path, alphabet: &Alphabet) -> Result<PottsModel, PottsError> {
    let file = path.display().to_string();
    let f = File::open(path).map_err(|error| PottsError::Io { file: file.clone(), error })?;
    read_params(BufReader::with_capacity(1 << 16, f), alphabet, &file)
}

/// Read parameters in adabmDCA's format from `reader`; `file` names it in errors.
pub fn read_params<R: BufRead>(reader: R, alphabet: &Alphabet, file: &str) -> Result<PottsModel, PottsError> {
    let mut acc = Collected::new(alphabet.q(), file);
    let mut format: Option<(StateFormat, u64)> = None;
    for_each_line(reader, file, |line, text| {
        if line > u64::from(u32::MAX) {
            return Err(PottsError::Syntax {
                file: file.to_string(),
                line,
                reason: "more than 2^32 - 1 lines: larger than any model this program holds".into(),
            });
        }
        let mut fields = Fields::new(text);
        let Some(tag) = fields.next() else { return Ok(()) };
        if tag.starts_with(b"#") {
            return Ok(());
        }
        let at = Line { file, line, alphabet };
        match tag {
            b"J" => {
                let [i, j, a, b, v] = at.fields::<5>(&mut fields, "J i j a b value")?;
                let (i, j) = (at.site(i, "site i")?, at.site(j, "site j")?);
                let (a, b) = (at.state(a, "a", &mut format)?, at.state(b, "b", &mut format)?);
                let v = at.value(v)?;
                if i == j {
                    let reason = "equals site i: a site has no coupling with itself";
                    return Err(at.invalid("site j", &j.to_string(), reason));
                }
                acc.coupling(i, j, a, b, v, line, alphabet)?;
            }
            b"h" => {
                let [i, a, v] = at.fields::<3>(&mut fields, "h i a value")?;
                let (i, a, v) = (at.site(i, "site i")?, at.state(a, "a", &mut format)?, at.value(v)?);
                acc.field(i, a, v, line, alphabet)?;
            }
            other => {
                return Err(at.invalid(
                    "line tag",
                    &quote(other),
                    "expected `J i j a b value` or `h i a value` (adabmDCA's parameter format), \
                     or a `#` comment",
                ));
            }
        }
        Ok(())
    })?;
    acc.finish(alphabet, format.map(|(f, _)| f))
}

/// How a file writes the states a and b: as letters of the alphabet (adabmDCA) or as 0-based
/// integers (adabmDCA's old format, bmDCA); one or the other for a whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateFormat {
    Letters,
    Integers,
}

impl StateFormat {
    fn of(token: &[u8]) -> StateFormat {
        if !token.is_empty() && token.iter().all(u8::is_ascii_digit) {
            StateFormat::Integers
        } else {
            StateFormat::Letters
        }
    }

    fn describe(self) -> &'static str {
        match self {
            StateFormat::Letters => "letters of the alphabet (adabmDCA's format)",
            StateFormat::Integers => "integer states 0..q-1 (adabmDCA's old format)",
        }
    }
}

/// Write `model` in adabmDCA's format (module docs) to the file at `path`.
pub fn write_params_file(model: &PottsModel, alphabet: &Alphabet, path: &Path) -> Result<(), PottsError> {
    let file = path.display().to_string();
    let err = |error| PottsError::Write { file: file.clone(), error };
    let f = File::create(path).map_err(err)?;
    let mut w = BufWriter::with_capacity(1 << 16, f);
    write_params(model, alphabet, &mut w).map_err(|e| match e {
        PottsError::Write { error, .. } => err(error),
        other => other,
    })?;
    w.flush().map_err(err)
}

/// Write `model` in adabmDCA's format to `w` (wrap a file in a `BufWriter`).
pub fn write_params<W: Write>(model: &PottsModel, alphabet: &Alphabet, w: &mut W) -> Result<(), PottsError> {
    if alphabet.q() != model.q() {
        return Err(PottsError::setting(
            "alphabet",
            format!("`{alphabet}`"),
            format!("has {} symbols but the model has q = {} states", alphabet.q(), model.q()),
        ));
    }
    let err = |error| PottsError::Write { file: "parameters".into(), error };
    let (n, q) = (model.n(), model.q());
    let mut num = String::with_capacity(32);
    for i in 0..n {
        for j in i + 1..n {
            if model.pair_is_zero(i, j) {
                continue;
            }
            let block = model.coupling_block(i, j);
            for a in 0..q {
                for b in 0..q {
                    format_value(block[a * q + b], &mut num);
                    writeln!(w, "J {i} {j} {} {} {num}", alphabet.symbol(a as u8), alphabet.symbol(b as u8))
                        .map_err(err)?;
                }
            }
        }
    }
    for i in 0..n {
        for (a, &h) in model.site_fields(i).iter().enumerate() {
            format_value(h, &mut num);
            writeln!(w, "h {i} {} {num}", alphabet.symbol(a as u8)).map_err(err)?;
        }
    }
    Ok(())
}

/// `x` as the shortest decimal that parses back to the same f64, in exponent form for
/// magnitudes below 1e-4 or from 1e16 (as Python's `repr`), so 1e-300 is not 300 digits.
fn format_value(x: f64, out: &mut String) {
    use std::fmt::Write as _;
    out.clear();
    let m = x.abs();
    // Writing to a String cannot fail.
    let _ = if m != 0.0 && !(1e-4..1e16).contains(&m) { write!(out, "{x:e}") } else { write!(out, "{x}") };
}

/// ASCII-whitespace separated fields of one line (spaces, tabs, `\r` of CRLF files).
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(line: &'a [u8]) -> Self {
        Fields { rest: line }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|c| !c.is_ascii_whitespace())?;
        let rest = &self.rest[start..];
        let end = rest.iter().position(|c| c.is_ascii_whitespace()).unwrap_or(rest.len());
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

/// One line being parsed, for building its errors.
struct Line<'a> {
    file: &'a str,
    line: u64,
    alphabet: &'a Alphabet,
}

impl Line<'_> {
    fn invalid(&self, field: &'static str, value: &str, reason: impl Into<String>) -> PottsError {
        PottsError::Invalid {
            file: self.file.to_string(),
            line: self.line,
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Exactly N more fields.
    fn fields<'f, const N: usize>(
        &self,
        fields: &mut Fields<'f>,
        layout: &str,
    ) -> Result<[&'f [u8]; N], PottsError> {
        let mut out: [&[u8]; N] = [&[]; N];
        let mut count = 0;
        for f in fields.by_ref() {
            if count < N {
                out[count] = f;
            }
            count += 1;
        }
        if count != N {
            return Err(PottsError::Syntax {
                file: self.file.to_string(),
                line: self.line,
                reason: format!("{} fields after the tag, expected {N}: `{layout}`", count),
            });
        }
        Ok(out)
    }

    /// A 0-based site index, below [`max_sites`] so the dense model can be allocated.
    fn site(&self, text: &[u8], field: &'static str) -> Result<u32, PottsError> {
        let cap = max_sites(self.alphabet.q());
        let bad = || {
            self.invalid(
                field,
                &quote(text),
                format!(
                    "expected a 0-based site index below {cap} (the largest model held at q = {})",
                    self.alphabet.q()
                ),
            )
        };
        let v = parse_index(text).ok_or_else(bad)?;
        if v >= cap as u64 {
            return Err(bad());
        }
        Ok(v as u32)
    }

    /// A state: a symbol of the alphabet, or its 0-based integer index, whichever the file
    /// uses (`format`: the kind of its first state token and that token's line).
    fn state(
        &self,
        text: &[u8],
        which: &'static str,
        format: &mut Option<(StateFormat, u64)>,
    ) -> Result<u8, PottsError> {
        let kind = StateFormat::of(text);
        let (file_kind, first) = *format.get_or_insert((kind, self.line));
        let q = self.alphabet.q();
        let field = match (file_kind, which) {
            (StateFormat::Letters, "a") => "letter a",
            (StateFormat::Letters, _) => "letter b",
            (StateFormat::Integers, "a") => "state a",
            (StateFormat::Integers, _) => "state b",
        };
        if kind != file_kind {
            return Err(self.invalid(
                field,
                &quote(text),
                format!(
                    "the file writes states as {} (from line {first}), this one as {}: \
                     one or the other for the whole file",
                    file_kind.describe(),
                    kind.describe()
                ),
            ));
        }
        let found = match (file_kind, text) {
            (StateFormat::Letters, [c]) => self.alphabet.state(*c),
            (StateFormat::Letters, _) => None,
            (StateFormat::Integers, _) => parse_index(text).filter(|&k| k < q as u64).map(|k| k as u8),
        };
        found.ok_or_else(|| match file_kind {
            StateFormat::Letters => self.invalid(
                field,
                &quote(text),
                format!("expected a letter of the alphabet `{}`", self.alphabet),
            ),
            StateFormat::Integers => self.invalid(
                field,
                &quote(text),
                format!(
                    "expected an integer state 0..{} of the alphabet `{}` (q = {q}); an integer-state \
                     file needs the alphabet the model was trained with (--alphabet)",
                    q - 1,
                    self.alphabet
                ),
            ),
        })
    }

    fn value(&self, text: &[u8]) -> Result<f64, PottsError> {
        let v = std::str::from_utf8(text).ok().and_then(|s| s.parse::<f64>().ok());
        match v {
            Some(v) if v.is_finite() => Ok(v),
            Some(_) => Err(self.invalid("value", &quote(text), "expected a finite number")),
            None => Err(self.invalid("value", &quote(text), "expected a number")),
        }
    }
}

/// Decimal digits only (no sign), at most 18 of them.
fn parse_index(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 18 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0')))
}

/// Couplings and fields gathered so far, with the line that gave each (0: none yet).
struct Collected<'f> {
    file: &'f str,
    q: usize,
    /// Pair (i < j) block at j(j−1)/2 + i, each q·q values J_ij(a, b) at a·q + b.
    couplings: Vec<f64>,
    coupling_lines: Vec<u32>,
    /// h_i(a) at i·q + a.
    fields: Vec<f64>,
    field_lines: Vec<u32>,
    /// The largest site of a `J` line and that line.
    max_coupled_site: Option<(u32, u64)>,
    /// The largest state of an `h` line.
    max_state: usize,
}

impl<'f> Collected<'f> {
    fn new(q: usize, file: &'f str) -> Self {
        Collected {
            file,
            q,
            couplings: Vec::new(),
            coupling_lines: Vec::new(),
            fields: Vec::new(),
            field_lines: Vec::new(),
            max_coupled_site: None,
            max_state: 0,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn coupling(
        &mut self,
        i: u32,
        j: u32,
        a: u8,
        b: u8,
        v: f64,
        line: u64,
        alphabet: &Alphabet,
    ) -> Result<(), PottsError> {
        let transposed = i > j;
        let (i, j, a, b) = if transposed { (j, i, b, a) } else { (i, j, a, b) };
        let qq = self.q * self.q;
        let (iu, ju) = (i as usize, j as usize);
        let needed = (ju * (ju + 1) / 2) * qq;
        if self.couplings.len() < needed {
            self.couplings.resize(needed, 0.0);
            self.coupling_lines.resize(needed, 0);
        }
        let at = (ju * (ju - 1) / 2 + iu) * qq + a as usize * self.q + b as usize;
        let first = self.coupling_lines[at];
        if first != 0 {
            return Err(PottsError::DuplicateCoupling {
                file: self.file.to_string(),
                line,
                first: u64::from(first),
                i,
                j,
                a: alphabet.symbol(a),
                b: alphabet.symbol(b),
                transposed,
            });
        }
        self.couplings[at] = v;
        self.coupling_lines[at] = line as u32;
        if self.max_coupled_site.is_none_or(|(s, _)| j > s) {
            self.max_coupled_site = Some((j, line));
        }
        Ok(())
    }

    fn field(&mut self, i: u32, a: u8, v: f64, line: u64, alphabet: &Alphabet) -> Result<(), PottsError> {
        let needed = (i as usize + 1) * self.q;
        if self.fields.len() < needed {
            self.fields.resize(needed, 0.0);
            self.field_lines.resize(needed, 0);
        }
        let at = i as usize * self.q + a as usize;
        let first = self.field_lines[at];
        if first != 0 {
            return Err(PottsError::DuplicateField {
                file: self.file.to_string(),
                line,
                first: u64::from(first),
                i,
                a: alphabet.symbol(a),
            });
        }
        self.fields[at] = v;
        self.field_lines[at] = line as u32;
        self.max_state = self.max_state.max(a as usize);
        Ok(())
    }

    fn finish(self, alphabet: &Alphabet, format: Option<StateFormat>) -> Result<PottsModel, PottsError> {
        let q = self.q;
        let n = self.fields.len() / q;
        let fewer_states = |k: usize| {
            self.field_lines
                .chunks_exact(q)
                .all(|site| site.iter().enumerate().all(|(a, &l)| (a < k) == (l != 0)))
        };
        if format == Some(StateFormat::Integers)
            && n > 0
            && self.max_state + 1 < q
            && fewer_states(self.max_state + 1)
        {
            return Err(PottsError::File {
                file: self.file.to_string(),
                reason: format!(
                    "integer states go up to {} only (q = {}, as adabmDCA's load_params_oldformat would \
                     infer from the `h` lines), but the alphabet `{alphabet}` has q = {q}: pass the \
                     alphabet the model was trained with (--alphabet)",
                    self.max_state,
                    self.max_state + 1
                ),
            });
        }
        if n == 0 {
            return Err(PottsError::File {
                file: self.file.to_string(),
                reason: "no field lines `h i a value`: adabmDCA writes all of them after the couplings \
                         (empty or truncated file?)"
                    .into(),
            });
        }
        if let Some((site, line)) = self.max_coupled_site.filter(|&(s, _)| s as usize >= n) {
            return Err(PottsError::Invalid {
                file: self.file.to_string(),
                line,
                field: "site",
                value: site.to_string(),
                reason: format!("beyond the {n} sites that have fields (`h` lines for sites 0..{})", n - 1),
            });
        }
        if let Some(at) = self.field_lines.iter().position(|&l| l == 0) {
            return Err(PottsError::MissingField {
                file: self.file.to_string(),
                i: (at / q) as u32,
                a: alphabet.symbol((at % q) as u8),
                n: n as u32,
            });
        }
        drop(self.coupling_lines);
        let mut model = PottsModel::zeros(n, q)?;
        for (i, &h) in self.fields.iter().enumerate() {
            model.set_field(i / q, i % q, h);
        }
        let qq = q * q;
        let mut pair = 0;
        for j in 1..n {
            for i in 0..j {
                let at = pair * qq;
                pair += 1;
                if at >= self.couplings.len() {
                    break;
                }
                let block = &self.couplings[at..at + qq];
                if block.iter().all(|&x| x == 0.0) {
                    continue;
                }
                for (k, &v) in block.iter().enumerate() {
                    model.set_coupling(i, j, k / q, k % q, v);
                }
            }
        }
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_shortest_and_read_back_exactly() {
        let mut s = String::new();
        for (x, text) in
            [(0.0, "0"), (-0.0, "-0"), (1.5, "1.5"), (-0.1, "-0.1"), (1e-5, "1e-5"), (2.5e16, "2.5e16")]
        {
            format_value(x, &mut s);
            assert_eq!(s, text);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), x.to_bits());
        }
    }

    #[test]
    fn fields_split_on_any_ascii_whitespace() {
        let f: Vec<&[u8]> = Fields::new(b"  J\t1 2 \r\n").collect();
        assert_eq!(f, [&b"J"[..], b"1", b"2"]);
        assert_eq!(Fields::new(b" \r\n").next(), None);
    }

    #[test]
    fn indices_parse_digits_only() {
        assert_eq!(parse_index(b"0"), Some(0));
        assert_eq!(parse_index(b"0042"), Some(42));
        for bad in [&b""[..], b"-1", b"+1", b"1.0", b"1e3", b"9999999999999999999"] {
            assert_eq!(parse_index(bad), None);
        }
    }
}
