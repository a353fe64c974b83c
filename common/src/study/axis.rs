//! Swept values: a number, a list, or a range table → the sorted, deduplicated values of
//! one axis of the grid.
//!
//! Keys must not depend on spelling, so every real value is rounded to
//! [`SIGNIFICANT_DIGITS`] significant digits: `2.5 + 0.25·1` and the literal `2.75` become
//! the same `f64`, and `{from = 0.1, to = 0.3, step = 0.1}` yields `0.3`, not
//! `0.30000000000000004`. Integer axes round range values to the nearest integer.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::StudyError;
use super::source::Doc;
use super::MAX_GRID_POINTS;

/// Significant digits kept of every real swept value (f64 carries ~15.9).
pub const SIGNIFICANT_DIGITS: usize = 12;

/// Largest integer a study file may give on an integer axis: beyond 2^53 an `f64` range
/// could no longer represent every integer.
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// What values an axis takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domain {
    /// Real numbers, rounded to [`SIGNIFICANT_DIGITS`].
    Real,
    /// Non-negative integers up to `max`.
    Integer {
        /// Largest allowed value.
        max: u64,
    },
}

/// One value of an axis, with the span of the text it came from (for error lines).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sourced<T> {
    pub value: T,
    pub span: Range<usize>,
    /// The value was produced by a range table, so the quoted text differs from it.
    pub from_range: bool,
}

/// Round `x` to [`SIGNIFICANT_DIGITS`] significant digits (decimal), `-0` to `0`.
pub fn round_significant(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if x == 0.0 {
        return 0.0;
    }
    // Formatting in scientific notation with 11 fraction digits is exactly decimal rounding
    // to 12 significant digits; parsing it back gives the f64 nearest to that decimal,
    // the same f64 the literal would give.
    format!("{x:.prec$e}", prec = SIGNIFICANT_DIGITS - 1).parse().unwrap_or(x)
}

const EXPECTED: &str = "expected a number, a list of numbers, or a range table \
                        {from, to, step} / {from, to, count[, scale = \"log\"|\"linear\"]}";

/// The values of the axis at `key`, sorted ascending and deduplicated (first spelling kept).
pub(crate) fn axis_values(
    doc: &Doc<'_>,
    key: &str,
    item: &Spanned<DeValue<'_>>,
    domain: Domain,
) -> Result<Vec<Sourced<f64>>, StudyError> {
    let mut out = Vec::new();
    match item.get_ref() {
        DeValue::Array(items) => {
            if items.is_empty() {
                return Err(doc.invalid(
                    key,
                    &item.span(),
                    "an empty list sweeps nothing; give at least one value",
                ));
            }
            for element in items.iter() {
                match element.get_ref() {
                    DeValue::Table(table) => out.extend(range_values(doc, key, element, table, domain)?),
                    DeValue::Integer(_) | DeValue::Float(_) => out.push(scalar(doc, key, element, domain)?),
                    _ => {
                        return Err(doc.invalid(
                            key,
                            &element.span(),
                            format!("list element: {EXPECTED} (lists do not nest)"),
                        ))
                    }
                }
            }
        }
        DeValue::Table(table) => out = range_values(doc, key, item, table, domain)?,
        DeValue::Integer(_) | DeValue::Float(_) => out.push(scalar(doc, key, item, domain)?),
        _ => return Err(doc.invalid(key, &item.span(), EXPECTED)),
    }
    out.sort_by(|a, b| a.value.total_cmp(&b.value));
    out.dedup_by(|later, earlier| later.value == earlier.value);
    Ok(out)
}

/// A TOML integer or float as `f64`.
pub(crate) fn number(doc: &Doc<'_>, key: &str, item: &Spanned<DeValue<'_>>) -> Result<f64, StudyError> {
    match item.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(|v| v as f64)
            .map_err(|_| doc.invalid(key, &item.span(), "integer out of range")),
        DeValue::Float(f) => {
            f.as_str().parse::<f64>().map_err(|_| doc.invalid(key, &item.span(), "not a number"))
        }
        _ => Err(doc.invalid(key, &item.span(), "expected a number")),
    }
}

/// A TOML integer as `i64` (floats are refused: counts and seeds are written exactly).
pub(crate) fn integer(doc: &Doc<'_>, key: &str, item: &Spanned<DeValue<'_>>) -> Result<i64, StudyError> {
    match item.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| doc.invalid(key, &item.span(), "integer out of range")),
        _ => Err(doc.invalid(key, &item.span(), "expected an integer")),
    }
}

/// A single number on an axis.
fn scalar(
    doc: &Doc<'_>,
    key: &str,
    item: &Spanned<DeValue<'_>>,
    domain: Domain,
) -> Result<Sourced<f64>, StudyError> {
    let x = number(doc, key, item)?;
    let value = match domain {
        Domain::Real => round_significant(x),
        Domain::Integer { max } => {
            if !(x.is_finite() && x.fract() == 0.0) {
                return Err(doc.invalid(key, &item.span(), "expected an integer"));
            }
            check_integer(doc, key, x, &item.span(), max)?
        }
    };
    Ok(Sourced { value, span: item.span(), from_range: false })
}

fn check_integer(doc: &Doc<'_>, key: &str, x: f64, span: &Range<usize>, max: u64) -> Result<f64, StudyError> {
    let max = max.min(MAX_EXACT_INTEGER);
    if x < 0.0 {
        return Err(doc.invalid_value(key, x, span, "expected a non-negative integer"));
    }
    if x > max as f64 {
        return Err(doc.invalid_value(key, x, span, format!("must be at most {max}")));
    }
    Ok(x)
}

const RANGE_KEYS: &[&str] = &["from", "to", "step", "count", "scale"];

/// Expand a range table `{from, to, step}` or `{from, to, count[, scale]}`.
fn range_values(
    doc: &Doc<'_>,
    key: &str,
    item: &Spanned<DeValue<'_>>,
    table: &DeTable<'_>,
    domain: Domain,
) -> Result<Vec<Sourced<f64>>, StudyError> {
    let span = item.span();
    for (k, v) in table.iter() {
        if !RANGE_KEYS.contains(&k.get_ref().as_ref()) {
            return Err(doc.unknown(&format!("{key}.{}", k.get_ref()), &k.span(), &v.span(), RANGE_KEYS));
        }
    }
    let sub = |name: &str| format!("{key}.{name}");
    let finite = |name: &str| -> Result<Option<(f64, Range<usize>)>, StudyError> {
        match table.get(name) {
            None => Ok(None),
            Some(v) => {
                let x = number(doc, &sub(name), v)?;
                if !x.is_finite() {
                    return Err(doc.invalid(&sub(name), &v.span(), "must be a finite number"));
                }
                Ok(Some((x, v.span())))
            }
        }
    };
    let Some((from, from_span)) = finite("from")? else {
        return Err(doc.missing(&sub("from"), Some(&span), "a range table needs from and to"));
    };
    let Some((to, _)) = finite("to")? else {
        return Err(doc.missing(&sub("to"), Some(&span), "a range table needs from and to"));
    };
    let step = finite("step")?;
    let count = match table.get("count") {
        None => None,
        Some(v) => Some((integer(doc, &sub("count"), v)?, v.span())),
    };
    let log = match table.get("scale") {
        None => None,
        Some(v) => match v.get_ref().as_str() {
            Some("log") => Some((true, v.span())),
            Some("linear") => Some((false, v.span())),
            _ => return Err(doc.invalid(&sub("scale"), &v.span(), "expected \"log\" or \"linear\"")),
        },
    };
    if to < from {
        return Err(doc.invalid(
            key,
            &span,
            format!("to = {to} < from = {from}: the range yields no values"),
        ));
    }
    let cap = MAX_GRID_POINTS as f64;
    let values: Vec<f64> = match (step, count) {
        (Some(_), Some(_)) => {
            return Err(doc.invalid(key, &span, "give either step or count, not both"));
        }
        (None, None) => {
            return Err(doc.missing(&sub("step"), Some(&span), "a range table needs a step or a count"));
        }
        (Some((step, step_span)), None) => {
            if let Some((_, scale_span)) = log {
                return Err(doc.invalid(
                    &sub("scale"),
                    &scale_span,
                    "scale applies to {from, to, count} ranges; a step range is always linear",
                ));
            }
            if step <= 0.0 {
                return Err(doc.invalid(&sub("step"), &step_span, "the step must be > 0"));
            }
            if matches!(domain, Domain::Integer { .. }) {
                if from.fract() != 0.0 {
                    return Err(doc.invalid(
                        &sub("from"),
                        &from_span,
                        "a step range on an integer axis needs an integer from",
                    ));
                }
                if step.fract() != 0.0 {
                    return Err(doc.invalid(
                        &sub("step"),
                        &step_span,
                        "a step range on an integer axis needs an integer step",
                    ));
                }
            }
            // Inclusive of `to` within rounding: (to - from)/step may come out a hair below an
            // integer (0.2/0.1 = 1.9999999999999998).
            let ratio = (to - from) / step;
            let n = (ratio + 1e-9 * ratio.max(1.0)).floor() + 1.0;
            if !(n.is_finite() && n <= cap) {
                return Err(doc.invalid(
                    key,
                    &span,
                    format!("the range yields {n} values, more than the limit of {MAX_GRID_POINTS} per axis"),
                ));
            }
            (0..n as u64).map(|i| from + i as f64 * step).collect()
        }
        (None, Some((count, count_span))) => {
            if count < 1 {
                return Err(doc.invalid(&sub("count"), &count_span, "count must be >= 1"));
            }
            if count as f64 > cap {
                return Err(doc.invalid(
                    &sub("count"),
                    &count_span,
                    format!("more than the limit of {MAX_GRID_POINTS} values per axis"),
                ));
            }
            let log = log.is_some_and(|(l, _)| l);
            if log && from <= 0.0 {
                return Err(doc.invalid(&sub("from"), &from_span, "a log-scaled range needs from > 0"));
            }
            if count == 1 {
                if from != to {
                    return Err(doc.invalid(&sub("count"), &count_span, "count = 1 needs from = to"));
                }
                vec![from]
            } else {
                let last = (count - 1) as f64;
                let (a, b) = if log { (from.ln(), to.ln()) } else { (from, to) };
                (0..count)
                    .map(|i| {
                        // End points exactly as written, not as exp(ln(x)) gives them back.
                        if i == 0 {
                            from
                        } else if i == count - 1 {
                            to
                        } else {
                            let t = a + (b - a) * i as f64 / last;
                            if log {
                                t.exp()
                            } else {
                                t
                            }
                        }
                    })
                    .collect()
            }
        }
    };
    values
        .into_iter()
        .map(|x| {
            let value = match domain {
                Domain::Real => round_significant(x),
                Domain::Integer { max } => check_integer(doc, key, x.round(), &span, max)?,
            };
            Ok(Sourced { value, span: span.clone(), from_range: true })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_makes_sums_equal_literals() {
        assert_eq!(round_significant(2.5 + 0.25 * 1.0), 2.75);
        assert_eq!(round_significant(0.1 + 0.2), 0.3);
        assert_eq!(round_significant(2.0 + 0.05 * 3.0), 2.15);
        assert_eq!(round_significant(-0.0).to_bits(), 0.0f64.to_bits());
        assert!(round_significant(f64::NAN).is_nan());
        assert_eq!(round_significant(1e-300 * 3.0), 3e-300);
    }
}
