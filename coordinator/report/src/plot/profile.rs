//! The appendix figure of the paper: κ(1) and C(1) against the truth's swept parameter (T or
//! Δ) at one data size, with ±2 standard errors over replicates, and the crossing κ(1) = C(1)
//! where the diagnostic says to stop cooling and start heating (docs/spec.md §5).
//!
//! Drawn by `taustar plot` for a facet with a single data size and several truth values (a
//! study such as `studies/paper-appendix-ising.toml`), where a heatmap would be one column.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::render::{plot_err, Figure};

/// One truth value of the profile: (mean, standard error) of κ(1) and of C(1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfilePoint {
    /// T or Δ.
    pub y: f64,
    /// κ(1): mean and standard error over replicates.
    pub kappa: (f64, f64),
    /// C(1): mean and standard error over replicates.
    pub heat_capacity: (f64, f64),
}

/// Picks (mean, standard error) of one quantity out of a point.
type MeanSe = fn(&ProfilePoint) -> (f64, f64);

/// κ(1) and C(1) against the truth parameter.
pub struct ProfileFigure {
    /// Title line.
    pub title: String,
    /// Second line (facet values, replicates).
    pub subtitle: String,
    /// The horizontal axis: "T, truth temperature" or "Δ, energy gap of the truth".
    pub x_desc: String,
    /// The points, ascending in `y`.
    pub points: Vec<ProfilePoint>,
}

impl ProfileFigure {
    /// Where mean κ(1) − C(1) changes sign, linearly interpolated between grid values.
    pub fn crossings(&self) -> Vec<f64> {
        let d: Vec<(f64, f64)> = self.points.iter().map(|p| (p.y, p.kappa.0 - p.heat_capacity.0)).collect();
        d.windows(2)
            .filter(|w| w[0].1 * w[1].1 < 0.0)
            .map(|w| w[0].0 + (0.0 - w[0].1) * (w[1].0 - w[0].0) / (w[1].1 - w[0].1))
            .collect()
    }
}

impl Figure for ProfileFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let err = plot_err::<DrawingAreaErrorKind<DB::ErrorType>>(&self.title);
        let root = root.margin(10, 10, 10, 10);
        let (top, area) = root.split_vertically(75);
        top.draw(&Text::new(
            self.title.clone(),
            (10, 5),
            ("sans-serif", 22).into_font().style(FontStyle::Bold),
        ))
        .map_err(&err)?;
        let crossings = self.crossings();
        let cross_text = if crossings.is_empty() {
            "κ(1) − C(1) keeps one sign over this range".to_string()
        } else {
            let c: Vec<String> = crossings.iter().map(|c| format!("{c:.3}")).collect();
            format!("κ(1) = C(1) at {} (dashed; interpolated)", c.join(", "))
        };
        top.draw(&Text::new(
            format!("{}; bars: ±2 s.e.; {cross_text}", self.subtitle),
            (10, 38),
            ("sans-serif", 15).into_font(),
        ))
        .map_err(&err)?;
        let ys = self.points.iter().map(|p| p.y);
        let (x0, x1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        let (x0, x1) = if x0 < x1 { (x0, x1) } else { (x0 - 1.0, x0 + 1.0) };
        let pad = 0.03 * (x1 - x0);
        let vals = self.points.iter().flat_map(|p| {
            [
                p.kappa.0 - 2.0 * p.kappa.1,
                p.kappa.0 + 2.0 * p.kappa.1,
                p.heat_capacity.0 - 2.0 * p.heat_capacity.1,
                p.heat_capacity.0 + 2.0 * p.heat_capacity.1,
            ]
        });
        let (v0, v1) = vals
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let (v0, v1) = if v0 < v1 { (v0, v1) } else { (0.0, 1.0) };
        let vpad = 0.05 * (v1 - v0);
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), (v0 - vpad)..(v1 + vpad))
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc("at τ = 1")
            .axis_desc_style(("sans-serif", 17))
            .label_style(("sans-serif", 14))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(&err)?;
        for c in &crossings {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(*c, v0 - vpad), (*c, v1 + vpad)],
                    6,
                    4,
                    BLACK.mix(0.6).stroke_width(1),
                ))
                .map_err(&err)?;
        }
        let series: [(&str, RGBColor, MeanSe); 2] = [
            ("κ(1) = Cov(Ê, −log p)", RGBColor(0x21, 0x66, 0xac), |p| p.kappa),
            ("C(1) = Var(Ê)", RGBColor(0xb2, 0x18, 0x2b), |p| p.heat_capacity),
        ];
        for (label, color, get) in series {
            chart
                .draw_series(LineSeries::new(
                    self.points.iter().map(|p| (p.y, get(p).0)),
                    color.stroke_width(2),
                ))
                .map_err(&err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart
                .draw_series(self.points.iter().map(|p| {
                    let (m, se) = get(p);
                    ErrorBar::new_vertical(p.y, m - 2.0 * se, m, m + 2.0 * se, color.filled(), 6)
                }))
                .map_err(&err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(&err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crossing_is_interpolated_where_kappa_minus_c_changes_sign() {
        let p = |y: f64, k: f64, c: f64| ProfilePoint { y, kappa: (k, 0.1), heat_capacity: (c, 0.1) };
        let fig = ProfileFigure {
            title: String::new(),
            subtitle: String::new(),
            x_desc: String::new(),
            // κ − C = 1, 0.5, −0.5: one crossing halfway between y = 3 and 4.
            points: vec![p(2.0, 3.0, 2.0), p(3.0, 2.5, 2.0), p(4.0, 1.5, 2.0)],
        };
        assert_eq!(fig.crossings(), vec![3.5]);
        let none = ProfileFigure { points: vec![p(1.0, 1.0, 0.0), p(2.0, 2.0, 0.0)], ..fig };
        assert!(none.crossings().is_empty());
    }
}
