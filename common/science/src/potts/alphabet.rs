//! Alphabets: which character is which Potts state.
//!
//! The built-in alphabets are adabmDCA's (`adabmDCA/fasta.py` in github:spqb/adabmDCApy,
//! `TOKENS_PROTEIN`, `TOKENS_RNA`, `TOKENS_DNA`; the same strings in adabmDCA.jl's
//! `set_alphabet` and adabmDCAc's `print_alphabet`), gap first, so state 0 is the gap and a
//! parameter file written with integer states (adabmDCA's old format) means the same model.
//! Like adabmDCA's `get_tokens`, any other string of symbols is accepted as a custom
//! alphabet, with restrictions adabmDCA does not need but our readers do (see
//! [`Alphabet::new`]).

use std::fmt;

use super::error::PottsError;

/// Protein alphabet: the gap, then the 20 amino acids in one-letter alphabetical order.
pub const PROTEIN: &str = "-ACDEFGHIKLMNPQRSTVWY";
/// RNA alphabet.
pub const RNA: &str = "-ACGU";
/// DNA alphabet.
pub const DNA: &str = "-ACGT";

/// Marks a byte that is not a symbol in [`Alphabet`]'s lookup table.
const NONE: u8 = u8::MAX;

/// An ordered set of q single-character symbols; symbol k is Potts state k.
#[derive(Clone, PartialEq, Eq)]
pub struct Alphabet {
    symbols: Vec<u8>,
    /// State of every byte, [`NONE`] for bytes outside the alphabet: one load per
    /// character when encoding millions of residues.
    index: [u8; 256],
}

impl Alphabet {
    /// A custom alphabet from its symbols in state order.
    ///
    /// Symbols must be distinct printable ASCII other than lower-case letters and `.`
    /// (those mark insert columns in A2M and Stockholm files, so they could never be read
    /// back as states), and other than digits (a parameter file may write a state as its
    /// integer index, so a digit would be ambiguous). At least 2 symbols.
    pub fn new(symbols: &str) -> Result<Alphabet, PottsError> {
        let bad = |reason: String| PottsError::setting("alphabet", format!("`{symbols}`"), reason);
        let bytes = symbols.as_bytes();
        if bytes.len() < 2 {
            return Err(bad("need at least 2 symbols".into()));
        }
        let mut index = [NONE; 256];
        for (k, &c) in bytes.iter().enumerate() {
            if !c.is_ascii_graphic() || c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' {
                return Err(bad(format!(
                    "symbol `{}` is not allowed: symbols are printable ASCII other than lower-case \
                     letters, digits and `.`",
                    super::error::quote(&[c])
                )));
            }
            if index[c as usize] != NONE {
                return Err(bad(format!("symbol `{}` appears twice", c as char)));
            }
            index[c as usize] = k as u8;
        }
        Ok(Alphabet { symbols: bytes.to_vec(), index })
    }

    /// adabmDCA's protein alphabet [`PROTEIN`], q = 21.
    pub fn protein() -> Alphabet {
        Self::builtin(PROTEIN)
    }

    /// adabmDCA's RNA alphabet [`RNA`], q = 5.
    pub fn rna() -> Alphabet {
        Self::builtin(RNA)
    }

    /// adabmDCA's DNA alphabet [`DNA`], q = 5.
    pub fn dna() -> Alphabet {
        Self::builtin(DNA)
    }

    fn builtin(symbols: &str) -> Alphabet {
        match Alphabet::new(symbols) {
            Ok(a) => a,
            Err(e) => unreachable!("built-in alphabet: {e}"),
        }
    }

    /// `protein`, `rna` or `dna`, or else a custom alphabet's symbols: adabmDCA's
    /// `--alphabet` argument.
    pub fn named(name: &str) -> Result<Alphabet, PottsError> {
        match name {
            "protein" => Ok(Alphabet::protein()),
            "rna" => Ok(Alphabet::rna()),
            "dna" => Ok(Alphabet::dna()),
            other => Alphabet::new(other),
        }
    }

    /// Number of states q.
    pub fn q(&self) -> usize {
        self.symbols.len()
    }

    /// The symbols in state order.
    pub fn symbols(&self) -> &str {
        // Only ASCII bytes are admitted by `new`.
        std::str::from_utf8(&self.symbols).unwrap_or_default()
    }

    /// The state of the character `c`, if it is a symbol.
    #[inline]
    pub fn state(&self, c: u8) -> Option<u8> {
        let k = self.index[c as usize];
        (k != NONE).then_some(k)
    }

    /// The symbol of `state` (panics if `state >= q`).
    pub fn symbol(&self, state: u8) -> char {
        self.symbols[state as usize] as char
    }

    /// The state of the gap `-`, if the alphabet has one (state 0 in the built-in ones).
    pub fn gap(&self) -> Option<u8> {
        self.state(b'-')
    }
}

impl fmt::Debug for Alphabet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Alphabet({:?})", self.symbols())
    }
}

impl fmt::Display for Alphabet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbols())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_alphabets_put_the_gap_first() {
        for (a, q) in [(Alphabet::protein(), 21), (Alphabet::rna(), 5), (Alphabet::dna(), 5)] {
            assert_eq!(a.q(), q);
            assert_eq!(a.gap(), Some(0));
            for k in 0..q as u8 {
                assert_eq!(a.state(a.symbol(k) as u8), Some(k));
            }
        }
        assert_eq!(Alphabet::protein().state(b'Y'), Some(20));
        assert_eq!(Alphabet::protein().state(b'X'), None);
        assert_eq!(Alphabet::protein().state(b'a'), None);
        assert_eq!(Alphabet::named("rna").unwrap(), Alphabet::rna());
        assert_eq!(Alphabet::named("AB").unwrap().q(), 2);
    }

    #[test]
    fn custom_alphabets_refuse_ambiguous_symbols() {
        for bad in ["", "A", "AA", "-a", "-1", "-.", "- ", "-\u{e9}"] {
            let e = Alphabet::new(bad).unwrap_err();
            assert!(matches!(e, PottsError::Setting { field: "alphabet", .. }), "{bad:?}: {e}");
        }
    }
}
