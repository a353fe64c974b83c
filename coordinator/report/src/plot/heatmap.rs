//! A phase-diagram heatmap: one coloured cell per grid point over (log10 M, y), a colour
//! bar, and the τ*_rev = 1 contour as the phase boundary.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::colormap::{Scale, MISSING};
use super::contour::Segment;
use super::render::{plot_err, Figure};

/// Everything one heatmap shows.
pub struct Heatmap {
    /// Title (names the study and the quantity).
    pub title: String,
    /// Lines under the title (facet, replicates, what the black line is).
    pub subtitle: String,
    /// x axis description.
    pub x_desc: String,
    /// y axis description.
    pub y_desc: String,
    /// Cell centres along x, ascending, in plot coordinates (log10 M).
    pub xs: Vec<f64>,
    /// True when `xs` are log10 of the data values (ticks then label the data values).
    pub x_is_log10: bool,
    /// Cell centres along y, ascending.
    pub ys: Vec<f64>,
    /// Values, row-major: `values[iy * xs.len() + ix]`.
    pub values: Vec<Option<f64>>,
    /// The colour scale.
    pub scale: Scale,
    /// Colour bar label.
    pub bar_label: String,
    /// The phase boundary, in plot coordinates.
    pub contour: Vec<Segment>,
}

/// Cell edges around ascending centres: midpoints, the outer cells mirrored (a lone centre
/// gets a cell of width `lone_width`).
pub fn edges(centres: &[f64], lone_width: f64) -> Vec<f64> {
    let n = centres.len();
    match n {
        0 => vec![],
        1 => vec![centres[0] - lone_width / 2.0, centres[0] + lone_width / 2.0],
        _ => {
            let mut e = Vec::with_capacity(n + 1);
            e.push(centres[0] - (centres[1] - centres[0]) / 2.0);
            e.extend(centres.windows(2).map(|w| (w[0] + w[1]) / 2.0));
            e.push(centres[n - 1] + (centres[n - 1] - centres[n - 2]) / 2.0);
            e
        }
    }
}

/// Tick positions on a log10 axis at 1, 2, 5 × 10^k inside [lo, hi].
fn log10_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut t = Vec::new();
    let (k0, k1) = (lo.floor() as i32 - 1, hi.ceil() as i32 + 1);
    for k in k0..=k1 {
        for m in [1.0, 2.0, 5.0] {
            let v = (m * 10f64.powi(k)).log10();
            if v >= lo && v <= hi {
                t.push(v);
            }
        }
    }
    t
}

fn fmt_pow10(v: f64) -> String {
    let x = 10f64.powf(v);
    if x >= 1.0 {
        format!("{}", x.round())
    } else {
        format!("{}", (x * 1e6).round() / 1e6)
    }
}

impl Figure for Heatmap {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let err = plot_err::<DrawingAreaErrorKind<DB::ErrorType>>(&self.title);
        let full = root;
        let (w, _h) = root.dim_in_pixel();
        let root = root.margin(10, 10, 10, 10);
        let (top, rest) = root.split_vertically(85);
        top.draw(&Text::new(
            self.title.clone(),
            (10, 5),
            ("sans-serif", 24).into_font().style(FontStyle::Bold),
        ))
        .map_err(&err)?;
        for (i, line) in self.subtitle.lines().enumerate() {
            top.draw(&Text::new(line.to_string(), (10, 38 + 21 * i as i32), ("sans-serif", 16).into_font()))
                .map_err(&err)?;
        }
        let bar_w = 150u32.min(w / 4);
        let (main, bar) = rest.split_horizontally(w as i32 - 20 - bar_w as i32);

        let xe = edges(&self.xs, if self.x_is_log10 { 0.2 } else { 1.0 });
        let ye = edges(&self.ys, 1.0);
        let (x0, x1) = (xe[0], xe[xe.len() - 1]);
        let (y0, y1) = (ye[0], ye[ye.len() - 1]);
        let mut chart = ChartBuilder::on(&main)
            .margin(5)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(&err)?;
        let mut mesh = chart.configure_mesh();
        mesh.disable_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", 15))
            .y_labels(10);
        if self.x_is_log10 {
            // Ticks at 1, 2, 5 × 10^k of M, drawn below (plotters' own ticks would sit at
            // round values of log10 M).
            mesh.x_labels(0);
        } else {
            mesh.x_labels(10);
        }
        mesh.draw().map_err(&err)?;
        if self.x_is_log10 {
            let style =
                TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
            for v in log10_ticks(x0, x1) {
                let (px, py) = chart.backend_coord(&(v, y0));
                full.draw(&PathElement::new(vec![(px, py), (px, py + 6)], BLACK.stroke_width(1)))
                    .map_err(&err)?;
                full.draw(&Text::new(fmt_pow10(v), (px, py + 9), style.clone())).map_err(&err)?;
            }
        }
        let nx = self.xs.len();
        chart
            .draw_series(self.values.iter().enumerate().map(|(i, v)| {
                let (ix, iy) = (i % nx, i / nx);
                let c = self.scale.color(*v);
                Rectangle::new([(xe[ix], ye[iy]), (xe[ix + 1], ye[iy + 1])], c.filled())
            }))
            .map_err(&err)?;
        if !self.contour.is_empty() {
            // A white halo under the black line keeps it visible on dark colours too.
            chart
                .draw_series(
                    self.contour.iter().map(|&(a, b)| PathElement::new(vec![a, b], WHITE.stroke_width(6))),
                )
                .map_err(&err)?;
            chart
                .draw_series(
                    self.contour.iter().map(|&(a, b)| PathElement::new(vec![a, b], BLACK.stroke_width(3))),
                )
                .map_err(&err)?;
        }
        // The mesh is drawn again on top so the axes frame the cells.
        chart.configure_mesh().disable_mesh().disable_x_axis().disable_y_axis().draw().map_err(&err)?;

        // Colour bar: a strip of thin rectangles in the scale's coordinate.
        let (c0, c1) = self.scale.coord_range();
        let ticks = self.scale.ticks();
        let mut bar_chart = ChartBuilder::on(&bar)
            .margin_top(5)
            .margin_bottom(60)
            .margin_right(5)
            .y_label_area_size(0)
            .right_y_label_area_size(60)
            .build_cartesian_2d(0.0..1.0, c0..c1)
            .map_err(&err)?;
        bar_chart
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(0)
            .y_desc(self.bar_label.as_str())
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(&err)?;
        let style = TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (c, label) in &ticks {
            let (px, py) = bar_chart.backend_coord(&(1.0, *c));
            full.draw(&PathElement::new(vec![(px, py), (px + 6, py)], BLACK.stroke_width(1)))
                .map_err(&err)?;
            full.draw(&Text::new(label.clone(), (px + 9, py), style.clone())).map_err(&err)?;
        }
        let steps = 200;
        bar_chart
            .draw_series((0..steps).map(|i| {
                let a = c0 + (c1 - c0) * f64::from(i) / f64::from(steps);
                let b = c0 + (c1 - c0) * f64::from(i + 1) / f64::from(steps);
                Rectangle::new([(0.0, a), (1.0, b)], self.scale.color_at_coord((a + b) / 2.0).filled())
            }))
            .map_err(&err)?;
        if self.values.iter().any(Option::is_none) {
            bar.draw(&Rectangle::new(
                [(5, bar.dim_in_pixel().1 as i32 - 40), (25, bar.dim_in_pixel().1 as i32 - 25)],
                MISSING.filled(),
            ))
            .map_err(&err)?;
            bar.draw(&Text::new(
                "no data",
                (30, bar.dim_in_pixel().1 as i32 - 40),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(&err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_midpoints_with_mirrored_ends() {
        assert_eq!(edges(&[1.0, 2.0, 4.0], 1.0), vec![0.5, 1.5, 3.0, 5.0]);
        assert_eq!(edges(&[3.0], 0.5), vec![2.75, 3.25]);
        assert!(edges(&[], 1.0).is_empty());
    }

    #[test]
    fn log_ticks_are_one_two_five_per_decade() {
        let t: Vec<String> = log10_ticks(0.6, 2.1).into_iter().map(fmt_pow10).collect();
        assert_eq!(t, ["5", "10", "20", "50", "100"]);
    }
}
