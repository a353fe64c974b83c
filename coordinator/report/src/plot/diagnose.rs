//! The figure of `taustar diagnose`: a user's trained Potts model against the sampling
//! temperature τ, every value with its standard error.
//!
//! Panels, τ on a log axis in each: the heat capacity C(τ) with the τ of its peak; the mean
//! energy ⟨E⟩(τ) and, with held-out sequences, their mean energy Ē_h and the τ where ⟨E⟩ = Ē_h
//! (energy match); with held-out sequences also their log-likelihood ℓ(τ), whose maximum is
//! that same τ. A thin grey line marks τ = 1, the model as trained. One file per call, PNG or
//! SVG by the path's extension (or both through [`render_png_and_svg`](super::render::render_png_and_svg),
//! as [`DiagnoseFigure`] is a [`Figure`]).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::lines::two_significant;
use super::render::{plot_err, register_fonts, Figure};
use crate::export::sink::AtomicFile;

/// Pixel size of one panel; the figure is two or three panels wide.
pub const PANEL_SIZE: (u32, u32) = (600, 600);

/// One τ of the diagnosis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiagnosePoint {
    /// Sampling temperature.
    pub tau: f64,
    /// ⟨E⟩ under q_τ.
    pub mean_energy: f64,
    /// Standard error of `mean_energy`.
    pub mean_energy_se: f64,
    /// Entropy of q_τ.
    pub entropy: f64,
    /// Standard error of `entropy`.
    pub entropy_se: f64,
    /// Heat capacity C(τ).
    pub heat_capacity: f64,
    /// Standard error of `heat_capacity`.
    pub heat_capacity_se: f64,
    /// Held-out log-likelihood per sequence and its s.e., when held-out sequences were given.
    pub heldout_log_likelihood: Option<(f64, f64)>,
}

/// The diagnosis figure.
pub struct DiagnoseFigure {
    /// Title line.
    pub title: String,
    /// Second line (model, samples); a key to the marks (±1 s.e., τ = 1) is appended.
    pub subtitle: String,
    /// The points, ascending in τ.
    pub points: Vec<DiagnosePoint>,
    /// τ of the heat-capacity peak: value, standard error.
    pub heat_peak_tau: (f64, f64),
    /// Mean energy Ē_h of the held-out sequences: value, standard error.
    pub heldout_mean_energy: Option<(f64, f64)>,
    /// τ where ⟨E⟩(τ) = Ē_h (the maximum of ℓ): value, standard error.
    pub energy_match_tau: Option<(f64, f64)>,
}

/// Okabe–Ito colours, as in [`lines`](super::lines)' palette.
const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xb2);
const VERMILLION: RGBColor = RGBColor(0xd5, 0x5e, 0x00);
const GREEN: RGBColor = RGBColor(0x00, 0x9e, 0x73);
const PURPLE: RGBColor = RGBColor(0xcc, 0x79, 0xa7);
const ORANGE: RGBColor = RGBColor(0xe6, 0x9f, 0x00);
/// The τ = 1 line.
const GREY: RGBColor = RGBColor(0x99, 0x99, 0x99);

/// Picks (value, standard error) of one quantity out of a point, if it has it.
type ValueSe = fn(&DiagnosePoint) -> Option<(f64, f64)>;

/// A τ marked by a dashed vertical line and a shaded ±1 s.e. band.
struct Marker {
    tau: f64,
    se: f64,
    color: RGBColor,
    label: String,
}

/// One panel: a quantity against τ.
struct Panel<'a> {
    caption: &'a str,
    y_desc: &'a str,
    get: ValueSe,
    color: RGBColor,
    /// A horizontal reference line: value, legend label.
    level: Option<(f64, &'a str)>,
    markers: Vec<Marker>,
    legend: SeriesLabelPosition,
}

/// `v ± se` with two significant digits of the standard error (`1.234 ± 0.056`), or `v`
/// alone to four significant digits when the error is not a finite positive number.
fn fmt_pm(v: f64, se: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if se.is_finite() && se > 0.0 {
        let decimals = (1 - se.log10().floor() as i32).clamp(0, 12) as usize;
        format!("{v:.decimals$} ± {se:.decimals$}")
    } else {
        let decimals = if v == 0.0 { 0 } else { (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize };
        format!("{v:.decimals$}")
    }
}

/// Is `tau` drawable on a log axis?
fn positive(tau: f64) -> bool {
    tau.is_finite() && tau > 0.0
}

/// The (log10 τ, value, s.e.) a panel draws: points with a finite τ > 0 and a finite value;
/// a non-finite or negative s.e. becomes `None` (the point is drawn without a bar).
fn finite_points(points: &[DiagnosePoint], get: ValueSe) -> Vec<(f64, f64, Option<f64>)> {
    points
        .iter()
        .filter(|p| positive(p.tau))
        .filter_map(|p| get(p).map(|(v, se)| (p.tau.log10(), v, se)))
        .filter(|(_, v, _)| v.is_finite())
        .map(|(x, v, se)| (x, v, Some(se).filter(|s| s.is_finite() && *s >= 0.0)))
        .collect()
}

/// The y range covering every value ± s.e. and the reference level, padded by 5 %.
fn y_range(pts: &[(f64, f64, Option<f64>)], level: Option<f64>) -> (f64, f64) {
    let vals = pts
        .iter()
        .flat_map(|&(_, v, se)| {
            let s = se.unwrap_or(0.0);
            [v - s, v + s]
        })
        .chain(level)
        .filter(|v| v.is_finite());
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let pad = 0.05 * (hi - lo).max(1e-3 * lo.abs().max(hi.abs())).max(1e-9);
    (lo - pad, hi + pad)
}

impl DiagnoseFigure {
    /// Whether the ℓ(τ) panel is drawn: some point has a held-out log-likelihood.
    pub fn has_heldout(&self) -> bool {
        self.points.iter().any(|p| p.heldout_log_likelihood.is_some())
    }

    /// Pixel size: two panels wide, three with held-out data.
    pub fn size(&self) -> (u32, u32) {
        let panels = if self.has_heldout() { 3 } else { 2 };
        (PANEL_SIZE.0 * panels, PANEL_SIZE.1)
    }

    /// The x range in log10 τ: every drawable τ of the points, τ = 1 and the marked τ,
    /// padded by 4 %.
    fn x_range(&self) -> (f64, f64) {
        let marks = [Some(self.heat_peak_tau), self.energy_match_tau].into_iter().flatten().map(|m| m.0);
        let xs = self.points.iter().map(|p| p.tau).chain(marks).chain([1.0]).filter(|t| positive(*t));
        let (x0, x1) = xs.map(f64::log10).fold((0.0f64, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
        let (x0, x1) = if x0 < x1 { (x0, x1) } else { (x0 - 0.5, x0 + 0.5) };
        let pad = 0.04 * (x1 - x0);
        (x0 - pad, x1 + pad)
    }

    /// The energy-match marker, labelled `label`.
    fn energy_match(&self, label: impl Fn(&str) -> String) -> Option<Marker> {
        self.energy_match_tau.filter(|m| positive(m.0)).map(|(tau, se)| Marker {
            tau,
            se,
            color: VERMILLION,
            label: label(&fmt_pm(tau, se)),
        })
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &Panel,
        x: (f64, f64),
    ) -> anyhow::Result<()> {
        let err = plot_err::<DrawingAreaErrorKind<DB::ErrorType>>(&self.title);
        let pts = finite_points(&self.points, panel.get);
        let (y0, y1) = y_range(&pts, panel.level.map(|l| l.0));
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .caption(panel.caption, ("sans-serif", 18))
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x.0..x.1, y0..y1)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("τ, sampling temperature (log scale)")
            .y_desc(panel.y_desc)
            .x_label_formatter(&|v| two_significant(10f64.powf(*v)))
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 13))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(&err)?;
        // τ = 1: the model as trained.
        chart.draw_series(LineSeries::new(vec![(0.0, y0), (0.0, y1)], GREY.stroke_width(1))).map_err(&err)?;
        for m in &panel.markers {
            if m.se.is_finite() && m.se > 0.0 {
                // τ − s.e. may be ≤ 0: the band then starts at the left edge.
                let lo = if positive(m.tau - m.se) { (m.tau - m.se).log10().max(x.0) } else { x.0 };
                let hi = (m.tau + m.se).log10().min(x.1);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(lo, y0), (hi, y1)],
                        m.color.mix(0.15).filled(),
                    )))
                    .map_err(&err)?;
            }
            let color = m.color;
            let t = m.tau.log10();
            chart
                .draw_series(DashedLineSeries::new(vec![(t, y0), (t, y1)], 6, 4, color.stroke_width(2)))
                .map_err(&err)?
                .label(m.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        if let Some((level, label)) = panel.level.filter(|l| l.0.is_finite()) {
            chart
                .draw_series(LineSeries::new(vec![(x.0, level), (x.1, level)], VERMILLION.stroke_width(1)))
                .map_err(&err)?
                .label(label)
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], VERMILLION.stroke_width(1)));
        }
        let color = panel.color;
        chart
            .draw_series(LineSeries::new(pts.iter().map(|&(x, v, _)| (x, v)), color.stroke_width(2)))
            .map_err(&err)?
            .label(format!("{} ± 1 s.e.", panel.y_desc))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart
            .draw_series(pts.iter().filter_map(|&(x, v, se)| {
                se.map(|s| ErrorBar::new_vertical(x, v - s, v, v + s, color.filled(), 6))
            }))
            .map_err(&err)?;
        chart
            .draw_series(pts.iter().map(|&(x, v, _)| Circle::new((x, v), 3, color.filled())))
            .map_err(&err)?;
        chart
            .configure_series_labels()
            .position(panel.legend.clone())
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(&err)?;
        Ok(())
    }
}

impl Figure for DiagnoseFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        if self.points.is_empty() {
            bail!("drawing {}: the diagnosis has no τ points to draw", self.title);
        }
        let err = plot_err::<DrawingAreaErrorKind<DB::ErrorType>>(&self.title);
        let root = root.margin(10, 10, 10, 10);
        let (top, area) = root.split_vertically(70);
        top.draw(&Text::new(
            self.title.clone(),
            (10, 5),
            ("sans-serif", 22).into_font().style(FontStyle::Bold),
        ))
        .map_err(&err)?;
        top.draw(&Text::new(
            format!("{}; bars and bands: ±1 s.e.; grey line: τ = 1, the model as trained", self.subtitle),
            (10, 38),
            ("sans-serif", 15).into_font(),
        ))
        .map_err(&err)?;

        let x = self.x_range();
        let heldout = self.has_heldout();
        let (peak, peak_se) = self.heat_peak_tau;
        let heat = Panel {
            caption: "heat capacity",
            y_desc: "C(τ)",
            get: |p| Some((p.heat_capacity, p.heat_capacity_se)),
            color: GREEN,
            level: None,
            markers: positive(peak)
                .then(|| Marker {
                    tau: peak,
                    se: peak_se,
                    color: ORANGE,
                    label: format!("C peak τ = {}", fmt_pm(peak, peak_se)),
                })
                .into_iter()
                .collect(),
            legend: SeriesLabelPosition::UpperRight,
        };
        let energy = Panel {
            caption: "mean energy",
            y_desc: "⟨E⟩(τ)",
            get: |p| Some((p.mean_energy, p.mean_energy_se)),
            color: BLUE,
            level: self.heldout_mean_energy.map(|(e, _)| (e, "held-out mean energy")),
            markers: self.energy_match(|pm| format!("energy match τ = {pm}")).into_iter().collect(),
            legend: SeriesLabelPosition::UpperLeft,
        };
        let likelihood = Panel {
            caption: "held-out log-likelihood per sequence",
            y_desc: "ℓ(τ)",
            get: |p| p.heldout_log_likelihood,
            color: PURPLE,
            level: None,
            markers: self
                .energy_match(|pm| format!("energy match τ = {pm} (ℓ's maximum)"))
                .into_iter()
                .collect(),
            legend: SeriesLabelPosition::LowerMiddle,
        };
        let panels = if heldout { vec![heat, energy, likelihood] } else { vec![heat, energy] };
        let areas = area.split_evenly((1, panels.len()));
        for (a, p) in areas.iter().zip(&panels) {
            self.panel(a, p, x)?;
        }
        Ok(())
    }
}

/// Draw `fig` into `path`: a PNG or an SVG by the extension (`.png` or `.svg`, any case),
/// written atomically, at [`DiagnoseFigure::size`].
pub fn draw_diagnose(fig: &DiagnoseFigure, path: &Path) -> anyhow::Result<()> {
    if fig.points.is_empty() {
        bail!("drawing {}: the diagnosis has no τ points to draw", path.display());
    }
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let what = path.display().to_string();
    let size = fig.size();
    register_fonts();
    match ext.as_deref() {
        Some("png") => {
            let mut rgb = vec![255u8; size.0 as usize * size.1 as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                root.fill(&WHITE).map_err(plot_err(&what))?;
                fig.draw(&root)?;
                root.present().map_err(plot_err(&what))?;
            }
            let mut file = AtomicFile::create(path)?;
            {
                let mut enc = png::Encoder::new(&mut file, size.0, size.1);
                enc.set_color(png::ColorType::Rgb);
                enc.set_depth(png::BitDepth::Eight);
                let mut w = enc.write_header().with_context(|| format!("writing {what}"))?;
                w.write_image_data(&rgb).with_context(|| format!("writing {what}"))?;
                w.finish().with_context(|| format!("writing {what}"))?;
            }
            file.commit()
        }
        Some("svg") => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                root.fill(&WHITE).map_err(plot_err(&what))?;
                fig.draw(&root)?;
                root.present().map_err(plot_err(&what))?;
            }
            let mut file = AtomicFile::create(path)?;
            file.write_all(svg.as_bytes()).with_context(|| format!("writing {what}"))?;
            file.commit()
        }
        _ => bail!("drawing {what}: give a file name ending in .png or .svg"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

    fn points(heldout: bool) -> Vec<DiagnosePoint> {
        (0..15)
            .map(|i| {
                let tau = 0.25 * 16f64.powf(i as f64 / 14.0);
                let c = 40.0 * (-(tau.ln() - 0.1).powi(2) / 0.2).exp() + 5.0;
                DiagnosePoint {
                    tau,
                    mean_energy: -100.0 + 30.0 * tau.ln(),
                    mean_energy_se: 0.8,
                    entropy: 20.0 + 10.0 * tau.ln(),
                    entropy_se: 0.3,
                    heat_capacity: c,
                    heat_capacity_se: 0.05 * c,
                    heldout_log_likelihood: heldout.then(|| (-80.0 - 15.0 * (tau.ln() - 0.05).powi(2), 0.4)),
                }
            })
            .collect()
    }

    fn figure(heldout: bool) -> DiagnoseFigure {
        DiagnoseFigure {
            title: "model.npz: diagnosis against τ".into(),
            subtitle: "L = 48, q = 21; 2000 sweeps per τ".into(),
            points: points(heldout),
            heat_peak_tau: (1.105, 0.03),
            heldout_mean_energy: heldout.then_some((-97.0, 0.5)),
            energy_match_tau: heldout.then_some((1.05, 0.04)),
        }
    }

    /// Draw `fig` as PNG and SVG; returns the PNG's (width, height) and the SVG text.
    fn draw_both(fig: &DiagnoseFigure, dir: &Path, stem: &str) -> ((u32, u32), String) {
        let png_path = dir.join(format!("{stem}.png"));
        let svg_path = dir.join(format!("{stem}.svg"));
        draw_diagnose(fig, &png_path).unwrap();
        draw_diagnose(fig, &svg_path).unwrap();
        let bytes = std::fs::read(&png_path).unwrap();
        assert!(bytes.len() > 5000, "{}: {} bytes", png_path.display(), bytes.len());
        assert_eq!(&bytes[..8], PNG_MAGIC, "{}: PNG signature", png_path.display());
        let info = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap().info().clone();
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        assert!(svg.len() > 5000, "{}: {} bytes", svg_path.display(), svg.len());
        assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"), "{}", svg_path.display());
        ((info.width, info.height), svg)
    }

    #[test]
    fn draws_two_panels_without_and_three_with_heldout_data_as_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();

        let (size, svg) = draw_both(&figure(false), dir.path(), "plain");
        assert_eq!(size, (2 * PANEL_SIZE.0, PANEL_SIZE.1));
        assert!(svg.contains("C peak τ = 1.105 ± 0.030"), "heat-peak label");
        assert!(!svg.contains("energy match"), "no held-out data: no energy-match mark");
        assert!(!svg.contains("held-out"), "no held-out data: no held-out level or panel");

        let (size, svg) = draw_both(&figure(true), dir.path(), "heldout");
        assert_eq!(size, (3 * PANEL_SIZE.0, PANEL_SIZE.1));
        assert!(svg.contains("C peak τ = 1.105 ± 0.030"), "heat-peak label");
        assert!(svg.contains("energy match τ = 1.050 ± 0.040"), "energy-match label");
        assert!(svg.contains("held-out mean energy"), "held-out level");
        assert!(svg.contains("held-out log-likelihood"), "ℓ panel");
    }

    #[test]
    fn the_extension_picks_the_format_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("fig.PNG");
        draw_diagnose(&figure(false), &upper).unwrap();
        assert_eq!(&std::fs::read(&upper).unwrap()[..8], PNG_MAGIC);
        for bad in ["fig.pdf", "fig"] {
            let e = draw_diagnose(&figure(false), &dir.path().join(bad)).unwrap_err().to_string();
            assert!(e.contains(".png or .svg"), "{bad}: {e}");
            assert!(!dir.path().join(bad).exists());
        }
    }

    #[test]
    fn no_points_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let fig = DiagnoseFigure { points: Vec::new(), ..figure(true) };
        for name in ["empty.png", "empty.svg"] {
            let path = dir.path().join(name);
            let e = draw_diagnose(&fig, &path).unwrap_err().to_string();
            assert!(e.contains("no τ points"), "{e}");
            assert!(!path.exists());
        }
        // Through the Figure trait too.
        let e = super::super::render::render_png_and_svg(dir.path(), "empty", fig.size(), &fig).unwrap_err();
        assert!(e.to_string().contains("no τ points"), "{e}");
    }

    #[test]
    fn non_finite_values_are_skipped_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let mut fig = figure(true);
        fig.points[2].heat_capacity = f64::NAN;
        fig.points[3].heat_capacity_se = f64::INFINITY;
        fig.points[4].mean_energy = f64::NEG_INFINITY;
        fig.points[5].heldout_log_likelihood = Some((f64::NAN, f64::NAN));
        fig.points[6].tau = f64::NAN;
        fig.points[7].heldout_log_likelihood = None;
        fig.heat_peak_tau = (f64::NAN, f64::NAN);
        fig.energy_match_tau = Some((1.05, f64::NAN));
        draw_both(&fig, dir.path(), "some_nan");

        // Nothing finite at all.
        let nan = DiagnosePoint {
            tau: f64::NAN,
            mean_energy: f64::NAN,
            mean_energy_se: f64::NAN,
            entropy: f64::NAN,
            entropy_se: f64::NAN,
            heat_capacity: f64::NAN,
            heat_capacity_se: f64::NAN,
            heldout_log_likelihood: Some((f64::NAN, f64::NAN)),
        };
        let fig = DiagnoseFigure {
            points: vec![nan; 3],
            heat_peak_tau: (f64::INFINITY, 0.1),
            heldout_mean_energy: Some((f64::NAN, f64::NAN)),
            energy_match_tau: Some((-1.0, 0.2)),
            ..figure(true)
        };
        draw_both(&fig, dir.path(), "all_nan");

        // One point, zero errors: a degenerate range still draws.
        let fig = DiagnoseFigure {
            points: vec![DiagnosePoint { mean_energy_se: 0.0, heat_capacity_se: 0.0, ..points(false)[7] }],
            ..figure(false)
        };
        draw_both(&fig, dir.path(), "single");
    }

    #[test]
    fn plus_minus_labels_show_two_significant_digits_of_the_error() {
        assert_eq!(fmt_pm(1.23456, 0.0567), "1.235 ± 0.057");
        assert_eq!(fmt_pm(0.87, 0.12), "0.87 ± 0.12");
        assert_eq!(fmt_pm(123.4, 15.0), "123 ± 15");
        assert_eq!(fmt_pm(1.05, f64::NAN), "1.050");
        assert_eq!(fmt_pm(1.05, 0.0), "1.050");
        assert_eq!(fmt_pm(f64::NAN, 0.1), "NaN");
    }

    #[test]
    fn the_y_range_covers_bars_and_the_level_and_ignores_non_finite_values() {
        let pts = [(0.0, 1.0, Some(0.5)), (0.5, 3.0, None), (1.0, f64::NAN, Some(1.0))];
        let (lo, hi) = y_range(&pts, Some(-2.0));
        assert!(lo < -2.0 && hi > 3.0 && lo.is_finite() && hi.is_finite(), "({lo}, {hi})");
        assert_eq!(y_range(&[], None), (0.0, 1.0));
        let (lo, hi) = y_range(&[(0.0, 5.0, Some(0.0))], None);
        assert!(lo < 5.0 && hi > 5.0, "({lo}, {hi})");
    }
}
