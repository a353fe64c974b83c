//! Marching squares: the level-0 contour of a field sampled on a rectilinear grid, drawn as
//! the phase boundary τ*_rev = 1 (the field is ln τ*_rev at the cell centres).

/// A line segment in data coordinates.
pub type Segment = ((f64, f64), (f64, f64));

/// Segments of the contour f = 0 of `f` (row-major, `f[iy * xs.len() + ix]`) sampled at
/// (xs\[ix\], ys\[iy\]). Squares with a missing corner are skipped; crossings are placed by
/// linear interpolation along the square's edges; a saddle (opposite corners on the same
/// side) is resolved by the mean of the four corners.
///
/// `significant` (same layout as `f`), when given, marks the samples whose sign is
/// statistically meaningful; squares with no significant corner are skipped. Without it a
/// field that hovers at 0 within noise (τ*_rev → 1 at large M) would be covered in tiny loops
/// that carry no information.
pub fn zero_contour(xs: &[f64], ys: &[f64], f: &[Option<f64>], significant: Option<&[bool]>) -> Vec<Segment> {
    let nx = xs.len();
    let mut out = Vec::new();
    if nx < 2 || ys.len() < 2 || f.len() != nx * ys.len() {
        return out;
    }
    let at = |ix: usize, iy: usize| f[iy * nx + ix].filter(|v| v.is_finite());
    for iy in 0..ys.len() - 1 {
        for ix in 0..nx - 1 {
            // Corners counter-clockwise from bottom-left.
            let pts =
                [(xs[ix], ys[iy]), (xs[ix + 1], ys[iy]), (xs[ix + 1], ys[iy + 1]), (xs[ix], ys[iy + 1])];
            let (Some(a), Some(b), Some(c), Some(d)) =
                (at(ix, iy), at(ix + 1, iy), at(ix + 1, iy + 1), at(ix, iy + 1))
            else {
                continue;
            };
            if let Some(sig) = significant {
                let idx = [iy * nx + ix, iy * nx + ix + 1, (iy + 1) * nx + ix + 1, (iy + 1) * nx + ix];
                if !idx.iter().any(|&i| sig.get(i).copied().unwrap_or(true)) {
                    continue;
                }
            }
            let v = [a, b, c, d];
            let above = v.map(|x| x >= 0.0);
            // Crossing on edge k (corner k → corner k+1), if the sign changes there.
            let cross = |k: usize| -> Option<(f64, f64)> {
                let j = (k + 1) % 4;
                if above[k] == above[j] {
                    return None;
                }
                // Interpolate from the edge's lower-left end, so the two squares sharing an
                // edge compute bit-identical crossings and the polyline has no gaps.
                let (p, q, fp, fq) = if (pts[k].0, pts[k].1) <= (pts[j].0, pts[j].1) {
                    (pts[k], pts[j], v[k], v[j])
                } else {
                    (pts[j], pts[k], v[j], v[k])
                };
                let t = fp / (fp - fq);
                Some((p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1)))
            };
            let e: Vec<(usize, (f64, f64))> = (0..4).filter_map(|k| cross(k).map(|p| (k, p))).collect();
            match e.len() {
                2 => out.push((e[0].1, e[1].1)),
                4 => {
                    let centre_above = (a + b + c + d) / 4.0 >= 0.0;
                    let p = |k: usize| e[k].1;
                    if centre_above == above[0] {
                        // Corners 0 and 2 connect through the centre: cut off corners 1 and 3.
                        out.push((p(0), p(1)));
                        out.push((p(2), p(3)));
                    } else {
                        // Cut off corners 0 and 2.
                        out.push((p(3), p(0)));
                        out.push((p(1), p(2)));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(xs: &[f64], ys: &[f64], g: impl Fn(f64, f64) -> f64) -> Vec<Option<f64>> {
        ys.iter().flat_map(|&y| xs.iter().map(move |&x| (x, y))).map(|(x, y)| Some(g(x, y))).collect()
    }

    #[test]
    fn a_linear_field_gives_a_straight_boundary_at_its_zero() {
        let xs: Vec<f64> = (0..6).map(f64::from).collect();
        let ys: Vec<f64> = (0..4).map(|i| 0.5 * f64::from(i)).collect();
        let f = field(&xs, &ys, |x, _| x - 2.3);
        let segs = zero_contour(&xs, &ys, &f, None);
        assert_eq!(segs.len(), 3, "one segment per row of squares");
        for ((x0, _), (x1, _)) in segs {
            assert!((x0 - 2.3).abs() < 1e-12 && (x1 - 2.3).abs() < 1e-12);
        }
    }

    #[test]
    fn a_circle_is_closed_and_stays_on_its_radius() {
        let xs: Vec<f64> = (0..41).map(|i| -2.0 + 0.1 * f64::from(i)).collect();
        let f = field(&xs, &xs, |x, y| x * x + y * y - 0.97 * 0.97);
        let segs = zero_contour(&xs, &xs, &f, None);
        assert!(segs.len() > 30);
        // Every endpoint is shared by exactly two segments (a closed curve).
        let key = |p: (f64, f64)| (p.0.to_bits(), p.1.to_bits());
        let mut count = std::collections::HashMap::new();
        for (a, b) in &segs {
            *count.entry(key(*a)).or_insert(0) += 1;
            *count.entry(key(*b)).or_insert(0) += 1;
            let r = (a.0 * a.0 + a.1 * a.1).sqrt();
            assert!((r - 0.97).abs() < 0.01, "r = {r}");
        }
        assert!(count.values().all(|&c| c == 2), "open ends");
    }

    #[test]
    fn missing_corners_and_constant_sign_give_nothing_and_saddles_give_two_segments() {
        let xs = [0.0, 1.0];
        assert!(zero_contour(&xs, &xs, &[Some(1.0), None, Some(-1.0), Some(-1.0)], None).is_empty());
        assert!(zero_contour(&xs, &xs, &[Some(1.0), Some(2.0), Some(3.0), Some(0.5)], None).is_empty());
        // Saddle: bottom-left and top-right above, the others below; centre above.
        let s = zero_contour(&xs, &xs, &[Some(2.0), Some(-1.0), Some(-1.0), Some(2.0)], None);
        assert_eq!(s.len(), 2);
        // With the centre above, corner 1 (bottom-right) is cut off by a segment joining
        // the bottom and right edges.
        let ((x0, y0), (x1, y1)) = s[0];
        assert!(y0.abs() < 1e-12 && (x1 - 1.0).abs() < 1e-12, "{:?}", s[0]);
        assert!(x0 > 0.5 && y1 < 0.5);
    }

    #[test]
    fn squares_without_a_significant_corner_are_skipped() {
        let xs = [0.0, 1.0, 2.0];
        let ys = [0.0, 1.0];
        // Sign changes in both squares; only the right square has a significant corner.
        let f = [Some(0.01), Some(-0.01), Some(-2.0), Some(0.01), Some(-0.01), Some(-2.0)];
        assert_eq!(zero_contour(&xs, &ys, &f, None).len(), 1, "the left square crosses, the right does not");
        let sig = [false, false, true, false, false, true];
        assert!(zero_contour(&xs, &ys, &f, Some(&sig)).is_empty());
        let sig = [true, false, false, false, false, false];
        assert_eq!(zero_contour(&xs, &ys, &f, Some(&sig)).len(), 1);
    }
}
