//! `--point KEY=VALUE,...`: pick one grid point and draw the D_rev(τ) and D_fwd(τ) curves of
//! its replicates, with each replicate's τ* marked — the figure that shows *why* a cell's
//! optimum sits where it does.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use anyhow::{bail, Context};
use plotters::coord::Shift;
use plotters::prelude::*;
use taustar_common::aggregate::table::Descriptors;
use taustar_common::CellResult;

use super::render::{plot_err, Figure};

/// Keys a selection may use (the grid-point descriptors).
pub const KEYS: [&str; 12] = [
    "truth",
    "states",
    "low_states",
    "gap",
    "lattice",
    "temperature",
    "sites",
    "coupling_strength",
    "samples",
    "mu",
    "fit",
    "l2",
];

/// A grid-point selection, e.g. `gap=6,samples=200` or `temperature=2.05,samples=71`.
#[derive(Debug, Clone, PartialEq)]
pub struct PointSelector {
    /// (key, value) pairs; all must match.
    pub pairs: Vec<(String, String)>,
}

impl FromStr for PointSelector {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut pairs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                bail!("--point: {part:?} is not KEY=VALUE (keys: {})", KEYS.join(", "));
            };
            let (k, v) = (k.trim(), v.trim());
            if !KEYS.contains(&k) {
                bail!("--point: unknown key {k:?} (keys: {})", KEYS.join(", "));
            }
            if v.is_empty() {
                bail!("--point: key {k:?} has an empty value");
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        if pairs.is_empty() {
            bail!("--point: give at least one KEY=VALUE (keys: {})", KEYS.join(", "));
        }
        Ok(PointSelector { pairs })
    }
}

/// Equal as numbers (relative tolerance 1e-9, so `6`, `6.0` and `6.000000000001` match)
/// or, for text, exactly.
fn same_value(want: &str, have: &str) -> bool {
    match (want.parse::<f64>(), have.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300),
        _ => want == have,
    }
}

impl PointSelector {
    /// Does the grid point with descriptors `d` match every pair?
    pub fn matches(&self, d: &Descriptors) -> bool {
        let have = d.pairs();
        self.pairs.iter().all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && same_value(v, hv)))
    }
}

/// Collects the selected point's results during the pass over the study, and the values
/// seen for each selected key (for a helpful error when nothing matches).
#[derive(Default)]
pub struct Selection {
    /// Matched grid points: (key, descriptors, results).
    pub matched: Vec<(String, Descriptors, Vec<CellResult>)>,
    seen: BTreeMap<String, BTreeSet<String>>,
}

impl Selection {
    /// Look at one grid point.
    pub fn offer(&mut self, sel: &PointSelector, key: &str, d: Descriptors, results: &[CellResult]) {
        let pairs = d.pairs();
        for (k, _) in &sel.pairs {
            if let Some((_, v)) = pairs.iter().find(|(pk, _)| pk == k) {
                let set = self.seen.entry(k.clone()).or_default();
                if set.len() < 400 {
                    set.insert(v.clone());
                }
            }
        }
        if sel.matches(&d) {
            self.matched.push((key.to_string(), d, results.to_vec()));
        }
    }

    /// The one matched point, or an error that says what to change.
    pub fn into_single(self, sel: &PointSelector) -> anyhow::Result<(String, Descriptors, Vec<CellResult>)> {
        let wanted = sel.pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        match self.matched.len() {
            1 => Ok(self.matched.into_iter().next().context("one match")?),
            0 => {
                let hints: Vec<String> = sel
                    .pairs
                    .iter()
                    .map(|(k, _)| match self.seen.get(k) {
                        Some(vals) => {
                            let mut v: Vec<&String> = vals.iter().collect();
                            v.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
                                (Ok(x), Ok(y)) => x.total_cmp(&y),
                                _ => a.cmp(b),
                            });
                            let shown: Vec<&str> = v.iter().take(40).map(|s| s.as_str()).collect();
                            let more = if v.len() > 40 { ", …" } else { "" };
                            format!("{k} ∈ {{{}{more}}}", shown.join(", "))
                        }
                        None => format!("{k}: no grid point of this study has it"),
                    })
                    .collect();
                bail!(
                    "--point {wanted}: no grid point with results matches; the study has {}",
                    hints.join("; ")
                )
            }
            n => {
                let keys: Vec<&str> = self.matched.iter().take(5).map(|(k, _, _)| k.as_str()).collect();
                bail!(
                    "--point {wanted}: {n} grid points match (e.g. {}); add keys to pick one",
                    keys.join(" | ")
                )
            }
        }
    }
}

/// The D vs τ figure of one grid point.
pub struct CurvesFigure {
    /// Title.
    pub title: String,
    /// Subtitle.
    pub subtitle: String,
    /// The point's results (one curve each).
    pub results: Vec<CellResult>,
}

/// A short label with two significant digits (`0.0032`, `1.5`, `120`), or `1e-6`
/// below 10^-3.
fn fmt_sig(v: f64) -> String {
    if !(v.is_finite() && v > 0.0) {
        return format!("{v}");
    }
    if v < 1e-3 {
        return format!("{v:.0e}");
    }
    let decimals = (1 - v.log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

/// A distinguishable colour per replicate.
fn replicate_color(i: usize) -> RGBColor {
    const C: [(u8, u8, u8); 10] = [
        (0x1f, 0x77, 0xb4),
        (0xff, 0x7f, 0x0e),
        (0x2c, 0xa0, 0x2c),
        (0xd6, 0x27, 0x28),
        (0x94, 0x67, 0xbd),
        (0x8c, 0x56, 0x4b),
        (0xe3, 0x77, 0xc2),
        (0x7f, 0x7f, 0x7f),
        (0xbc, 0xbd, 0x22),
        (0x17, 0xbe, 0xcf),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

impl CurvesFigure {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        reverse: bool,
        err: &dyn Fn(DrawingAreaErrorKind<DB::ErrorType>) -> anyhow::Error,
    ) -> anyhow::Result<usize> {
        let d = |c: &taustar_common::cell::CurvePoint| if reverse { c.dkl_rev } else { c.dkl_fwd };
        let opt = |r: &CellResult| {
            if reverse {
                (r.tau.tau_rev, r.tau.dkl_rev_opt)
            } else {
                (r.tau.tau_fwd, r.tau.dkl_fwd_opt)
            }
        };
        let taus = self.results.iter().flat_map(|r| r.curve.iter().map(|c| c.tau));
        let (t0, t1) = taus.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| (a.min(t), b.max(t)));
        let (t0, t1) = if t0 < t1 { (t0, t1) } else { (0.1, 10.0) };
        let ds = self
            .results
            .iter()
            .flat_map(|r| r.curve.iter().map(d).chain(std::iter::once(opt(r).1)))
            .filter(|v| v.is_finite() && *v > 0.0);
        let (d0, d1) = ds.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let (d0, d1) = if d0 < d1 { (d0.max(d1 * 1e-8), d1) } else { (1e-6, 1.0) };
        let floor = d0 / 1.5;
        let name = if reverse { "D_rev(τ) = D(q_τ ‖ p)" } else { "D_fwd(τ) = D(p ‖ q_τ)" };
        let mut chart = ChartBuilder::on(area)
            .caption(name, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(t0..t1, (floor..d1 * 1.5).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("τ, sampling temperature")
            .y_desc(if reverse { "D_rev (nats, log scale)" } else { "D_fwd (nats, log scale)" })
            .axis_desc_style(("sans-serif", 17))
            .label_style(("sans-serif", 14))
            .y_labels(8)
            .y_label_formatter(&|v| fmt_sig(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(1.0, floor), (1.0, d1 * 1.5)],
                6,
                4,
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(err)?;
        let mut outside = 0;
        for (i, r) in self.results.iter().enumerate() {
            let color = replicate_color(i);
            // A Monte Carlo curve: its ±1 standard error as a band under the line.
            let se = &r.mcmc.curve_se;
            if !se.is_empty() && se.len() == r.curve.len() {
                let s = |e: &taustar_common::cell::CurveSe| if reverse { e.dkl_rev } else { e.dkl_fwd };
                let band = |sign: f64| {
                    r.curve.iter().zip(se).map(move |(c, e)| (c.tau, (d(c) + sign * s(e)).max(floor)))
                };
                let outline: Vec<(f64, f64)> =
                    band(1.0).chain(band(-1.0).collect::<Vec<_>>().into_iter().rev()).collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(outline, color.mix(0.2).filled())))
                    .map_err(err)?;
            }
            chart
                .draw_series(LineSeries::new(
                    r.curve.iter().map(|c| (c.tau, d(c).max(floor))),
                    color.mix(0.8).stroke_width(2),
                ))
                .map_err(err)?;
            let (ts, ds) = opt(r);
            let tau_se = if reverse { r.mcmc.tau_rev_se } else { r.mcmc.tau_fwd_se };
            if let Some(e) = tau_se.filter(|e| *e > 0.0 && ts >= t0 && ts <= t1) {
                // τ* ± its standard error.
                let y = ds.max(floor);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![((ts - e).max(t0), y), ((ts + e).min(t1), y)],
                        color.stroke_width(3),
                    )))
                    .map_err(err)?;
            }
            if ts >= t0 && ts <= t1 {
                chart
                    .draw_series(std::iter::once(Circle::new((ts, ds.max(floor)), 6, color.filled())))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Circle::new((ts, ds.max(floor)), 6, BLACK.stroke_width(1))))
                    .map_err(err)?;
            } else {
                outside += 1;
            }
        }
        Ok(outside)
    }
}

impl Figure for CurvesFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let err = plot_err::<DrawingAreaErrorKind<DB::ErrorType>>(&self.title);
        let root = root.margin(10, 10, 10, 10);
        let (top, rest) = root.split_vertically(75);
        top.draw(&Text::new(
            self.title.clone(),
            (10, 5),
            ("sans-serif", 22).into_font().style(FontStyle::Bold),
        ))
        .map_err(&err)?;
        let (left, right) = rest.split_horizontally(rest.dim_in_pixel().0 / 2);
        let out_rev = self.panel(&left, true, &err)?;
        let out_fwd = self.panel(&right, false, &err)?;
        let mut sub = self.subtitle.clone();
        if out_rev + out_fwd > 0 {
            sub.push_str(&format!(
                "; τ* outside the plotted τ range: {out_rev} reverse, {out_fwd} forward (see cells.* for values)"
            ));
        }
        top.draw(&Text::new(sub, (10, 38), ("sans-serif", 15).into_font())).map_err(&err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taustar_common::cell::{DataSize, FitSpec, GridPoint, TruthSpec};

    fn d(gap: f64, m: u64) -> Descriptors {
        Descriptors::of(&GridPoint {
            truth: TruthSpec::TwoLevel { states: 100, low_states: 20, gap },
            data: DataSize::Samples(m),
            fit: FitSpec::default(),
        })
    }

    #[test]
    fn axis_labels_have_two_significant_digits() {
        assert_eq!(fmt_sig(0.0032), "0.0032");
        assert_eq!(fmt_sig(1.5), "1.5");
        assert_eq!(fmt_sig(120.0), "120");
        assert_eq!(fmt_sig(2e-6), "2e-6");
    }

    #[test]
    fn selector_parses_and_matches_numbers_by_value() {
        let s: PointSelector = "gap=6, samples=200".parse().unwrap();
        assert!(s.matches(&d(6.0, 200)));
        assert!(!s.matches(&d(6.25, 200)));
        let s: PointSelector = "gap=6.000,truth=two-level".parse().unwrap();
        assert!(s.matches(&d(6.0, 4)));
    }

    #[test]
    fn selector_rejects_unknown_keys_and_malformed_pairs() {
        for bad in ["", "gap", "colour=red", "gap="] {
            let e = bad.parse::<PointSelector>().unwrap_err().to_string();
            assert!(e.contains("--point"), "{bad}: {e}");
        }
        assert!("colour=red".parse::<PointSelector>().unwrap_err().to_string().contains("\"colour\""));
    }

    #[test]
    fn no_match_lists_available_values_and_several_matches_ask_for_more_keys() {
        let sel: PointSelector = "gap=7".parse().unwrap();
        let mut s = Selection::default();
        s.offer(&sel, "a", d(6.0, 10), &[]);
        s.offer(&sel, "b", d(2.5, 10), &[]);
        let e = s.into_single(&sel).unwrap_err().to_string();
        assert!(e.contains("gap ∈ {2.5, 6}"), "{e}");

        let sel: PointSelector = "gap=6".parse().unwrap();
        let mut s = Selection::default();
        s.offer(&sel, "a", d(6.0, 10), &[]);
        s.offer(&sel, "b", d(6.0, 20), &[]);
        let e = s.into_single(&sel).unwrap_err().to_string();
        assert!(e.contains("2 grid points match"), "{e}");
    }
}
