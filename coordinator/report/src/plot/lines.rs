//! τ* against the data size, one line per truth value (T or Δ), with error bars.
//!
//! The heatmaps show where a study cools and heats; this figure shows by how much and how
//! sure we are: mean τ*_rev (left) and τ*_fwd (right) over replicates with ±1 standard error
//! of that mean, against M on a log axis (or μ). It is how studies of different system sizes
//! are compared point by point (README, large lattices).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::render::{plot_err, Figure};

/// One point of a line: x (log10 M or μ), mean τ* and its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinePoint {
    /// log10 M, or μ.
    pub x: f64,
    /// Mean over replicates.
    pub mean: f64,
    /// Standard error of the mean (0 with one replicate).
    pub sem: f64,
}

/// One line: a truth value and its points, ascending in x.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Legend text, e.g. "T = 2.27".
    pub label: String,
    /// τ*_rev points.
    pub rev: Vec<LinePoint>,
    /// τ*_fwd points.
    pub fwd: Vec<LinePoint>,
}

/// The two-panel figure.
pub struct LinesFigure {
    /// Title line.
    pub title: String,
    /// Second line (facet values, replicates).
    pub subtitle: String,
    /// Whether x is log10 M (else μ).
    pub x_is_log10: bool,
    /// One line per truth value.
    pub lines: Vec<Line>,
}

/// Distinct colours for up to ten lines (then they repeat): Okabe–Ito and two darker tones,
/// readable by colour-blind viewers.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x00, 0x72, 0xb2),
    RGBColor(0xd5, 0x5e, 0x00),
    RGBColor(0x00, 0x9e, 0x73),
    RGBColor(0xcc, 0x79, 0xa7),
    RGBColor(0xe6, 0x9f, 0x00),
    RGBColor(0x56, 0xb4, 0xe9),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xf0, 0xe4, 0x42),
    RGBColor(0x7f, 0x3c, 0x8d),
    RGBColor(0x66, 0x66, 0x66),
];

/// `v` rounded to two significant digits, as an integer when ≥ 10 (tick labels of a log
/// axis at arbitrary positions: 100, 160, 250 rather than 100, 158, 251).
pub(super) fn two_significant(v: f64) -> String {
    if !(v.is_finite() && v > 0.0) {
        return format!("{v}");
    }
    let scale = 10f64.powi(v.log10().floor() as i32 - 1);
    let r = (v / scale).round() * scale;
    if r >= 10.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.2}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The y range covering every mean ± s.e. and τ = 1, padded by 5 %.
fn y_range<'a>(points: impl Iterator<Item = &'a LinePoint>) -> (f64, f64) {
    let (lo, hi) = points
        .flat_map(|p| [p.mean - p.sem, p.mean + p.sem])
        .filter(|v| v.is_finite())
        .fold((1.0f64, 1.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let pad = 0.05 * (hi - lo).max(0.02);
    (lo - pad, hi + pad)
}

impl LinesFigure {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        which: &str,
        get: fn(&Line) -> &Vec<LinePoint>,
        x: (f64, f64),
    ) -> anyhow::Result<()> {
        let err = plot_err::<DrawingAreaErrorKind<DB::ErrorType>>(&self.title);
        let (y0, y1) = y_range(self.lines.iter().flat_map(|l| get(l).iter()));
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .caption(format!("mean {which} ± 1 s.e."), ("sans-serif", 18))
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(x.0..x.1, y0..y1)
            .map_err(&err)?;
        let log = self.x_is_log10;
        chart
            .configure_mesh()
            .x_desc(if log { "M, number of samples (log scale)" } else { "μ = ln M − S(p)" })
            .y_desc(which)
            .x_label_formatter(&|v| if log { two_significant(10f64.powf(*v)) } else { format!("{v:.1}") })
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 13))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x.0, 1.0), (x.1, 1.0)],
                6,
                4,
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(&err)?;
        for (i, line) in self.lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts = get(line);
            chart
                .draw_series(LineSeries::new(pts.iter().map(|p| (p.x, p.mean)), color.stroke_width(2)))
                .map_err(&err)?
                .label(line.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart
                .draw_series(pts.iter().map(|p| {
                    ErrorBar::new_vertical(p.x, p.mean - p.sem, p.mean, p.mean + p.sem, color.filled(), 6)
                }))
                .map_err(&err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(&err)?;
        Ok(())
    }
}

impl Figure for LinesFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let err = plot_err::<DrawingAreaErrorKind<DB::ErrorType>>(&self.title);
        let root = root.margin(10, 10, 10, 10);
        let (top, area) = root.split_vertically(70);
        top.draw(&Text::new(
            self.title.clone(),
            (10, 5),
            ("sans-serif", 22).into_font().style(FontStyle::Bold),
        ))
        .map_err(&err)?;
        top.draw(&Text::new(self.subtitle.clone(), (10, 38), ("sans-serif", 15).into_font()))
            .map_err(&err)?;
        let xs = self.lines.iter().flat_map(|l| l.rev.iter().chain(&l.fwd)).map(|p| p.x);
        let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
        let (x0, x1) = if x0 < x1 { (x0, x1) } else { (x0 - 1.0, x0 + 1.0) };
        let pad = 0.04 * (x1 - x0);
        let (left, right) = area.split_horizontally(area.dim_in_pixel().0 / 2);
        self.panel(&left, "τ*_rev", |l| &l.rev, (x0 - pad, x1 + pad))?;
        self.panel(&right, "τ*_fwd", |l| &l.fwd, (x0 - pad, x1 + pad))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_labels_have_two_significant_digits() {
        assert_eq!(two_significant(158.489), "160");
        assert_eq!(two_significant(251.19), "250");
        assert_eq!(two_significant(10_000.0), "10000");
        assert_eq!(two_significant(3.162), "3.2");
        assert_eq!(two_significant(1.0), "1");
    }

    #[test]
    fn the_y_range_covers_every_error_bar_and_tau_one() {
        let p = |mean: f64, sem: f64| LinePoint { x: 0.0, mean, sem };
        let pts = [p(1.2, 0.1), p(0.8, 0.05)];
        let (lo, hi) = y_range(pts.iter());
        assert!(lo < 0.75 && hi > 1.3, "({lo}, {hi})");
        // All above 1: τ = 1 is still inside.
        let pts = [p(2.0, 0.1), p(3.0, 0.2)];
        let (lo, hi) = y_range(pts.iter());
        assert!(lo < 1.0 && hi > 3.2, "({lo}, {hi})");
        // A non-finite error bar is ignored, not propagated.
        let pts = [p(1.1, f64::NAN)];
        let (lo, hi) = y_range(pts.iter());
        assert!(lo.is_finite() && hi.is_finite() && lo < 1.0 && hi > 1.0);
    }
}
