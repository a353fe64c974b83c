//! Hostile study files: the parser never panics on arbitrary text or on
//! arbitrary mutations of the shipped studies, and its errors name the field at fault.

use proptest::prelude::*;
use taustar_common::study::{Study, StudyError};

const SHIPPED: [&str; 5] = [
    include_str!("../../../studies/paper-fig2.toml"),
    include_str!("../../../studies/paper-fig3.toml"),
    include_str!("../../../studies/paper-fig3-mle.toml"),
    include_str!("../../../studies/quick.toml"),
    include_str!("../../../studies/quick-ising.toml"),
];

/// Values a mutation writes in place of one number of a shipped study.
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("1e308".to_string()),
        Just("18446744073709551615".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("\"text\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("{ from = 1, to = 1e300, step = 1e-300 }".to_string()),
        Just("{ from = 1e-300, to = 1e300, count = 1000000000, scale = \"log\" }".to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        any::<i64>().prop_map(|x| x.to_string()),
    ]
}

/// An error from a syntactically valid file names a key (or is a TOML syntax error).
fn names_the_field(e: &StudyError) -> bool {
    matches!(e, StudyError::Syntax { .. }) || e.key().is_some_and(|k| !k.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_the_parser(src in "[a-z_=\\[\\]{}\\.,\"0-9 \\n#-]{0,200}") {
        if let Err(e) = Study::from_toml_str(&src) {
            prop_assert!(names_the_field(&e), "{e}");
        }
    }

    /// Replace the `nth` number of a shipped study with a hostile value.
    #[test]
    fn a_mutated_number_in_a_shipped_study_is_refused_naming_the_field_or_accepted(
        which in 0..SHIPPED.len(), nth in 0usize..64, value in hostile_value()) {
        let src = SHIPPED[which];
        let numbers: Vec<(usize, usize)> = number_spans(src);
        prop_assume!(!numbers.is_empty());
        let (start, end) = numbers[nth % numbers.len()];
        let mutated = format!("{}{}{}", &src[..start], value, &src[end..]);
        match Study::from_toml_str(&mutated) {
            Ok(study) => prop_assert!(study.cell_count() >= 1),
            Err(e) => prop_assert!(names_the_field(&e), "{e}\n--- mutated:\n{mutated}"),
        }
    }

    /// Drop or duplicate one line of a shipped study.
    #[test]
    fn a_dropped_or_duplicated_line_never_panics(which in 0..SHIPPED.len(), nth in 0usize..64, dup in any::<bool>()) {
        let lines: Vec<&str> = SHIPPED[which].lines().collect();
        let i = nth % lines.len();
        let mut out: Vec<&str> = lines.clone();
        if dup { out.insert(i, lines[i]); } else { out.remove(i); }
        if let Err(e) = Study::from_toml_str(&out.join("\n")) {
            prop_assert!(names_the_field(&e), "{e}");
        }
    }
}

/// Byte spans of the numbers in `src` outside comments and strings (good enough for the
/// shipped files, which quote only names and kinds).
fn number_spans(src: &str) -> Vec<(usize, usize)> {
    let mut spans = vec![];
    let mut offset = 0;
    for line in src.split_inclusive('\n') {
        let code = line.split('#').next().unwrap_or("");
        let bytes = code.as_bytes();
        let mut i = 0;
        let mut in_string = false;
        while i < bytes.len() {
            let c = bytes[i];
            if c == b'"' {
                in_string = !in_string;
                i += 1;
                continue;
            }
            let starts_number = c.is_ascii_digit()
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
            if !in_string && starts_number {
                let s = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_digit()
                        || matches!(bytes[i], b'.' | b'e' | b'E' | b'_' | b'+' | b'-'))
                {
                    i += 1;
                }
                spans.push((offset + s, offset + i));
                continue;
            }
            i += 1;
        }
        offset += line.len();
    }
    spans
}
