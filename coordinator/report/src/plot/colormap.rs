//! Colour scales of the maps.
//!
//! τ and the fitted-to-true ratios live on a multiplicative scale centred on 1, so they get a
//! *diverging* map in log10 space: white at 1, blue below (τ* < 1: sample colder), red above
//! (sample hotter), symmetric so that τ = 1/2 and τ = 2 are equally saturated (ColorBrewer
//! RdBu). Fractions in [0, 1] get a sequential map (viridis).

use plotters::style::RGBColor;

/// ColorBrewer RdBu, 11 classes, blue (low) to red (high).
const RDBU: [(u8, u8, u8); 11] = [
    (0x05, 0x30, 0x61),
    (0x21, 0x66, 0xac),
    (0x43, 0x93, 0xc3),
    (0x92, 0xc5, 0xde),
    (0xd1, 0xe5, 0xf0),
    (0xf7, 0xf7, 0xf7),
    (0xfd, 0xdb, 0xc7),
    (0xf4, 0xa5, 0x82),
    (0xd6, 0x60, 0x4d),
    (0xb2, 0x18, 0x2b),
    (0x67, 0x00, 0x1f),
];

/// viridis, 9 anchors.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (0x44, 0x01, 0x54),
    (0x47, 0x2d, 0x7b),
    (0x3b, 0x52, 0x8b),
    (0x2c, 0x72, 0x8e),
    (0x21, 0x91, 0x8c),
    (0x28, 0xae, 0x80),
    (0x5e, 0xc9, 0x62),
    (0xad, 0xdc, 0x30),
    (0xfd, 0xe7, 0x25),
];

/// Colour of cells without results.
pub const MISSING: RGBColor = RGBColor(0xd0, 0xd0, 0xd0);

fn interpolate(anchors: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.5 };
    let x = t * (anchors.len() - 1) as f64;
    let i = (x.floor() as usize).min(anchors.len() - 2);
    let f = x - i as f64;
    let (a, b) = (anchors[i], anchors[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + f * (f64::from(q) - f64::from(p))).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// How values map to colours; the colour bar is drawn in the scale's own coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Diverging around 1 in log10 space: values in [10^−h, 10^h] span the map, beyond saturate.
    LogDiverging {
        /// Half-range h in decades.
        half_decades: f64,
    },
    /// Diverging around 0 on a linear scale over [−half, half]; *positive* values are blue,
    /// because the signed quantity drawn (κ(1) − C(1)) is positive where the model should be
    /// cooled, and every map draws "cool" in blue.
    LinearDiverging {
        /// Half-range: values beyond ±half saturate.
        half: f64,
    },
    /// Sequential over [lo, hi].
    Linear {
        /// Value at the low end.
        lo: f64,
        /// Value at the high end.
        hi: f64,
    },
}

impl Scale {
    /// A diverging scale wide enough for `values` (positive, finite ones considered): the
    /// 95th percentile of |log10 v|, so a few at-bound outliers (τ* = 100) do not wash the
    /// map out; they saturate instead. At least a factor 1.25 either way.
    pub fn log_diverging_for(values: impl IntoIterator<Item = f64>) -> Self {
        let mut d: Vec<f64> =
            values.into_iter().filter(|v| v.is_finite() && *v > 0.0).map(|v| v.log10().abs()).collect();
        d.sort_by(f64::total_cmp);
        let p95 = if d.is_empty() { 0.0 } else { taustar_common::aggregate::quantile_sorted(&d, 0.95) };
        Scale::LogDiverging { half_decades: p95.max(1.25f64.log10()) }
    }

    /// A signed diverging scale wide enough for `values`: the 95th percentile of |v|, so a
    /// few outliers saturate instead of washing the map out.
    pub fn linear_diverging_for(values: impl IntoIterator<Item = f64>) -> Self {
        let mut d: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).map(f64::abs).collect();
        d.sort_by(f64::total_cmp);
        let p95 = if d.is_empty() { 0.0 } else { taustar_common::aggregate::quantile_sorted(&d, 0.95) };
        Scale::LinearDiverging { half: if p95 > 0.0 { p95 } else { 1.0 } }
    }

    /// The colour bar's coordinate of `v` (log10 v for diverging scales).
    pub fn coord(&self, v: f64) -> f64 {
        match self {
            Scale::LogDiverging { .. } => v.log10(),
            Scale::LinearDiverging { .. } | Scale::Linear { .. } => v,
        }
    }

    /// The colour bar's coordinate range.
    pub fn coord_range(&self) -> (f64, f64) {
        match *self {
            Scale::LogDiverging { half_decades } => (-half_decades, half_decades),
            Scale::LinearDiverging { half } => (-half, half),
            Scale::Linear { lo, hi } => (lo, hi),
        }
    }

    /// The colour at bar coordinate `c`.
    pub fn color_at_coord(&self, c: f64) -> RGBColor {
        let (lo, hi) = self.coord_range();
        match self {
            Scale::LogDiverging { .. } => interpolate(&RDBU, (c - lo) / (hi - lo)),
            Scale::LinearDiverging { .. } => interpolate(&RDBU, (hi - c) / (hi - lo)),
            Scale::Linear { .. } => interpolate(&VIRIDIS, (c - lo) / (hi - lo)),
        }
    }

    /// The colour of value `v` (`None` or non-positive on a log scale: [`MISSING`]).
    pub fn color(&self, v: Option<f64>) -> RGBColor {
        match (self, v) {
            (_, None) => MISSING,
            (Scale::LogDiverging { .. }, Some(v)) if !(v > 0.0 && v.is_finite()) => MISSING,
            (_, Some(v)) => self.color_at_coord(self.coord(v)),
        }
    }

    /// Tick positions (bar coordinates) with their labels.
    pub fn ticks(&self) -> Vec<(f64, String)> {
        let (lo, hi) = self.coord_range();
        match self {
            Scale::LogDiverging { .. } => {
                let nice = [
                    0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0,
                    10.0, 20.0, 50.0, 100.0,
                ];
                let inside: Vec<f64> = nice
                    .iter()
                    .copied()
                    .filter(|v: &f64| (lo - 1e-9..=hi + 1e-9).contains(&v.log10()))
                    .collect();
                // Keep about seven labels: thin out evenly, always keeping 1.
                let step = inside.len().div_ceil(7).max(1);
                let one = inside.iter().position(|&v| v == 1.0).unwrap_or(0);
                inside
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i.abs_diff(one) % step == 0)
                    .map(|(_, &v)| (v.log10(), format!("{v}")))
                    .collect()
            }
            Scale::LinearDiverging { .. } | Scale::Linear { .. } => (0..=4)
                .map(|i| {
                    let v = lo + (hi - lo) * f64::from(i) / 4.0;
                    (v, format!("{v:.2}"))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverging_scale_is_white_at_one_blue_below_red_above_and_symmetric() {
        let s = Scale::LogDiverging { half_decades: 1.0 };
        assert_eq!(s.color(Some(1.0)), RGBColor(0xf7, 0xf7, 0xf7));
        let (lo, hi) = (s.color(Some(0.5)), s.color(Some(2.0)));
        assert!(lo.2 > lo.0, "below 1 is blue: {lo:?}");
        assert!(hi.0 > hi.2, "above 1 is red: {hi:?}");
        // Saturation beyond the range, missing values grey.
        assert_eq!(s.color(Some(1e-6)), s.color(Some(0.1)));
        assert_eq!(s.color(Some(1e6)), s.color(Some(10.0)));
        assert_eq!(s.color(None), MISSING);
        assert_eq!(s.color(Some(0.0)), MISSING);
    }

    #[test]
    fn signed_scale_is_white_at_zero_blue_for_positive_red_for_negative() {
        let s = Scale::linear_diverging_for([-2.0, -1.0, 0.5, 3.0]);
        let Scale::LinearDiverging { half } = s else { unreachable!() };
        assert!(half > 2.0 && half <= 3.0, "{half}");
        assert_eq!(s.color(Some(0.0)), RGBColor(0xf7, 0xf7, 0xf7));
        let (pos, neg) = (s.color(Some(1.0)), s.color(Some(-1.0)));
        assert!(pos.2 > pos.0, "positive (cool) is blue: {pos:?}");
        assert!(neg.0 > neg.2, "negative (heat) is red: {neg:?}");
        assert_eq!(s.color(Some(1e9)), s.color(Some(half)));
    }

    #[test]
    fn diverging_range_ignores_a_few_outliers() {
        let mut v: Vec<f64> = (0..100).map(|i| 0.8 + 0.004 * f64::from(i)).collect();
        v.extend([100.0, 100.0]);
        let Scale::LogDiverging { half_decades } = Scale::log_diverging_for(v) else { unreachable!() };
        assert!(half_decades < 0.2, "{half_decades}");
        assert!(Scale::ticks(&Scale::LogDiverging { half_decades })
            .iter()
            .any(|(c, l)| *c == 0.0 && l == "1"));
    }
}
