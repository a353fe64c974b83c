//! Which phase-diagram maps a study gets, and how summaries become heatmap grids.
//!
//! The axes are the data size (x: log10 M, or μ) and the truth's swept parameter (y: Δ for
//! two-level truths, T for Ising, σ_J for `potts-random`; `TruthColumns::axis`). A
//! `potts-file` truth has no swept parameter: it gets τ* against M and no maps. Every other
//! swept value (N_s, n_g, lattice, λ, fit mode) makes a separate *facet*: its maps get a
//! file-name suffix naming its values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use taustar_common::aggregate::table::Descriptors;
use taustar_common::aggregate::{Quantity, SummaryRow};

use super::colormap::Scale;
use super::contour::zero_contour;
use super::heatmap::Heatmap;
use super::lines::{Line, LinePoint, LinesFigure};
use super::profile::{ProfileFigure, ProfilePoint};
use super::render::render_png_and_svg;

/// The boundary is drawn only next to points whose τ*_rev is farther than this from 1
/// in ln τ (2 %), besides two standard errors.
pub const BOUNDARY_MIN_LN_OFFSET: f64 = 0.02;

/// Pixel size of a map.
pub const MAP_SIZE: (u32, u32) = (1000, 700);

/// Most lines in the τ*-vs-M figure (its palette has ten colours).
pub const MAX_LINES: usize = 10;

/// Pixel size of the τ*-vs-M figure (two panels side by side).
pub const LINES_SIZE: (u32, u32) = (1400, 650);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stat {
    Mean,
    Median,
}

/// The colour scale of a map.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MapScale {
    /// Temperatures and ratios: diverging around 1 on a log scale.
    AroundOne,
    /// Fractions in [0, 1].
    Fraction,
    /// Signed quantities (κ(1) − C(1)): diverging around 0, positive (cool) blue.
    AroundZero,
}

/// Which line a map draws.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Boundary {
    /// The phase boundary τ*_rev = 1, of the mean or median τ*_rev.
    TauRev(Stat),
    /// The same line drawn from the median τ*_rev of the replicates that passed.
    TrustedTauRev,
    /// The zero contour of mean κ(1) − C(1): where the appendix diagnostic flips.
    KappaMinusC,
}

/// One map: file stem, quantity title, value getter, scale, colour-bar label, the line it
/// draws, and the truth it is for (all when `None`).
struct MapKind {
    stem: &'static str,
    title: &'static str,
    value: fn(&SummaryRow) -> Option<f64>,
    scale: MapScale,
    bar: &'static str,
    boundary: Boundary,
    only: Option<&'static str>,
}

fn fraction_diverged(r: &SummaryRow) -> Option<f64> {
    r.fit_diverged.filter(|_| r.replicates > 0).map(|d| d as f64 / r.replicates as f64)
}

const MAPS: [MapKind; 11] = [
    MapKind {
        stem: "tau_rev_mean",
        title: "mean τ*_rev (reverse KL optimum)",
        value: |r| r.stats(Quantity::TauRev).mean,
        scale: MapScale::AroundOne,
        bar: "τ*_rev (log scale)",
        boundary: Boundary::TauRev(Stat::Mean),
        only: None,
    },
    MapKind {
        stem: "tau_rev_median",
        title: "median τ*_rev (reverse KL optimum)",
        value: |r| r.stats(Quantity::TauRev).median,
        scale: MapScale::AroundOne,
        bar: "τ*_rev (log scale)",
        boundary: Boundary::TauRev(Stat::Median),
        only: None,
    },
    MapKind {
        stem: "tau_fwd_mean",
        title: "mean τ*_fwd (forward KL optimum)",
        value: |r| r.stats(Quantity::TauFwd).mean,
        scale: MapScale::AroundOne,
        bar: "τ*_fwd (log scale)",
        boundary: Boundary::TauRev(Stat::Mean),
        only: None,
    },
    MapKind {
        stem: "tau_fwd_median",
        title: "median τ*_fwd (forward KL optimum)",
        value: |r| r.stats(Quantity::TauFwd).median,
        scale: MapScale::AroundOne,
        bar: "τ*_fwd (log scale)",
        boundary: Boundary::TauRev(Stat::Median),
        only: None,
    },
    MapKind {
        stem: "tau_fwd_trusted_mean",
        title: "mean trusted τ*_fwd (passed, or from equilibrated rungs)",
        value: |r| r.stats(Quantity::TauFwdTrusted).mean,
        scale: MapScale::AroundOne,
        bar: "τ*_fwd (log scale)",
        boundary: Boundary::TauRev(Stat::Mean),
        only: None,
    },
    MapKind {
        stem: "tau_rev_trusted_median",
        title: "median τ*_rev of the passed replicates",
        value: |r| r.stats(Quantity::TauRevTrusted).median,
        scale: MapScale::AroundOne,
        bar: "τ*_rev (log scale)",
        boundary: Boundary::TrustedTauRev,
        only: None,
    },
    MapKind {
        stem: "gap_ratio_mean",
        title: "mean fitted gap / true gap (Δ_fit / Δ)",
        value: |r| r.stats(Quantity::GapRatio).mean,
        scale: MapScale::AroundOne,
        bar: "Δ_fit / Δ (log scale)",
        boundary: Boundary::TauRev(Stat::Mean),
        only: Some("two-level"),
    },
    MapKind {
        stem: "low_states_ratio_mean",
        title: "mean fitted / true low-state count (n_g,fit / n_g)",
        value: |r| r.stats(Quantity::LowStatesRatio).mean,
        scale: MapScale::AroundOne,
        bar: "n_g,fit / n_g (log scale)",
        boundary: Boundary::TauRev(Stat::Mean),
        only: Some("two-level"),
    },
    MapKind {
        stem: "frac_tau_rev_below_1",
        title: "fraction of replicates with τ*_rev < 1",
        value: |r| r.frac_tau_rev_below_1,
        scale: MapScale::Fraction,
        bar: "fraction",
        boundary: Boundary::TauRev(Stat::Median),
        only: None,
    },
    MapKind {
        stem: "fit_diverged_frac",
        title: "fraction of replicates whose unregularised MLE diverged",
        value: fraction_diverged,
        scale: MapScale::Fraction,
        bar: "fraction diverged",
        boundary: Boundary::TauRev(Stat::Median),
        only: Some("ising2d"),
    },
    MapKind {
        stem: "kappa_minus_c_mean",
        title: "mean κ(1) − C(1) = dD_rev/dτ at τ = 1 (> 0: cool, < 0: heat)",
        value: |r| r.stats(Quantity::KappaMinusC).mean,
        scale: MapScale::AroundZero,
        bar: "κ(1) − C(1)",
        boundary: Boundary::KappaMinusC,
        only: None,
    },
];

/// The x value of a point: (plot coordinate, is log10).
fn x_of(d: &Descriptors) -> Option<(f64, bool)> {
    match (d.samples, d.mu) {
        (Some(m), _) => Some(((m as f64).log10(), true)),
        (None, Some(mu)) => Some((mu, false)),
        _ => None,
    }
}

/// The y value of a point: the truth's swept parameter, or 0 for a truth that has none (a
/// `potts-file` model), whose points then form one row: τ* against M still applies.
fn y_of(d: &Descriptors) -> Option<f64> {
    Some(d.truth.axis().map_or(0.0, |(y, _, _)| y))
}

/// The facet of a point: every descriptor but the two axes (and which kind of x it has).
fn facet_pairs(d: &Descriptors) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = d
        .pairs()
        .into_iter()
        .filter(|(k, _)| !matches!(*k, "samples" | "mu" | "gap" | "temperature" | "coupling_strength"))
        .collect();
    v.push(("x", if d.samples.is_some() { "samples".into() } else { "mu".into() }));
    v
}

/// Make a string safe as part of a file name.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '=') { c } else { '_' })
        .collect()
}

/// Draw every map of every facet of `rows` into `out`; returns the files written.
pub fn draw_maps(study: &str, rows: &[SummaryRow], out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let descriptors: Vec<Descriptors> = rows.iter().map(|r| Descriptors::of(&r.point)).collect();
    let mut facets: BTreeMap<Vec<(&'static str, String)>, Vec<usize>> = BTreeMap::new();
    for (i, d) in descriptors.iter().enumerate() {
        facets.entry(facet_pairs(d)).or_default().push(i);
    }
    // Name facets by the facet fields that differ between them.
    let keys: Vec<&Vec<(&'static str, String)>> = facets.keys().collect();
    let varying: Vec<&'static str> = keys
        .first()
        .map(|first| {
            first
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| {
                    keys.iter()
                        .any(|f| f.iter().find(|(kk, _)| kk == k) != first.iter().find(|(kk, _)| kk == k))
                })
                .collect()
        })
        .unwrap_or_default();

    let mut files = Vec::new();
    for (facet, idx) in &facets {
        let label: Vec<String> =
            facet.iter().filter(|(k, _)| varying.contains(k)).map(|(k, v)| format!("{k}={v}")).collect();
        let suffix =
            if label.is_empty() { String::new() } else { format!("__{}", file_safe(&label.join("_"))) };
        let describe: Vec<String> =
            facet.iter().filter(|(k, _)| *k != "x").map(|(k, v)| format!("{k}={v}")).collect();
        let truth = descriptors[idx[0]].truth.kind;
        let axis = descriptors[idx[0]].truth.axis().map(|(_, symbol, name)| (symbol, name));

        let mut xs: Vec<f64> = Vec::new();
        let mut ys: Vec<f64> = Vec::new();
        let mut x_is_log10 = true;
        for &i in idx {
            let d = &descriptors[i];
            let (Some((x, log)), Some(y)) = (x_of(d), y_of(d)) else { continue };
            x_is_log10 = log;
            xs.push(x);
            ys.push(y);
        }
        let sort_dedup = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.dedup();
        };
        sort_dedup(&mut xs);
        sort_dedup(&mut ys);
        if xs.is_empty() || ys.is_empty() {
            continue;
        }
        let cell_of = |i: usize| -> Option<usize> {
            let d = &descriptors[i];
            let (x, _) = x_of(d)?;
            let y = y_of(d)?;
            let ix = xs.binary_search_by(|v| v.total_cmp(&x)).ok()?;
            let iy = ys.binary_search_by(|v| v.total_cmp(&y)).ok()?;
            Some(iy * xs.len() + ix)
        };
        let grid = |value: &dyn Fn(&SummaryRow) -> Option<f64>| -> Vec<Option<f64>> {
            let mut g = vec![None; xs.len() * ys.len()];
            for &i in idx {
                if let Some(c) = cell_of(i) {
                    g[c] = value(&rows[i]);
                }
            }
            g
        };
        let ln_tau_rev = |q: Quantity, stat: Stat| {
            grid(&|r: &SummaryRow| {
                let s = r.stats(q);
                match stat {
                    Stat::Mean => s.mean,
                    Stat::Median => s.median,
                }
                .filter(|t| *t > 0.0)
                .map(f64::ln)
            })
        };
        // A point's side of τ*_rev = 1 counts when the statistic is more than two standard
        // errors (of the mean over replicates) *and* more than 2 % away from 1: at large M,
        // τ*_rev → 1 and tiny, statistically resolvable wobbles would otherwise fill the
        // map with loops. One replicate (no standard error): the 2 % rule alone.
        let significant = |q: Quantity, stat: Stat| -> Vec<bool> {
            grid(&|r: &SummaryRow| {
                let s = r.stats(q);
                let centre = match stat {
                    Stat::Mean => s.mean,
                    Stat::Median => s.median,
                }?;
                let off = (centre - 1.0).abs();
                let sig = off > 2.0 * s.sem.unwrap_or(0.0) && centre.ln().abs() > BOUNDARY_MIN_LN_OFFSET;
                Some(f64::from(u8::from(sig)))
            })
            .into_iter()
            .map(|v| v == Some(1.0))
            .collect()
        };
        // κ(1) − C(1) changes sign where the diagnostic flips; drawn next to points whose
        // mean is more than two standard errors from 0.
        let kappa_minus_c = grid(&|r: &SummaryRow| r.stats(Quantity::KappaMinusC).mean);
        let kappa_significant: Vec<bool> = grid(&|r: &SummaryRow| {
            let s = r.stats(Quantity::KappaMinusC);
            let m = s.mean?;
            Some(f64::from(u8::from(m.abs() > 2.0 * s.sem.unwrap_or(0.0))))
        })
        .into_iter()
        .map(|v| v == Some(1.0))
        .collect();
        let boundary_kappa = zero_contour(&xs, &ys, &kappa_minus_c, Some(&kappa_significant));
        let boundary = |q: Quantity, stat: Stat| {
            zero_contour(&xs, &ys, &ln_tau_rev(q, stat), Some(&significant(q, stat)))
        };
        let boundary_mean = boundary(Quantity::TauRev, Stat::Mean);
        let boundary_median = boundary(Quantity::TauRev, Stat::Median);
        let boundary_trusted = boundary(Quantity::TauRevTrusted, Stat::Median);
        let reps: Vec<u64> = idx.iter().map(|&i| rows[i].replicates).collect();
        let (rmin, rmax) = (reps.iter().min().copied().unwrap_or(0), reps.iter().max().copied().unwrap_or(0));
        let reps_text = if rmin == rmax { format!("{rmin}") } else { format!("{rmin}–{rmax}") };
        let (x_desc, y_desc) = (
            if x_is_log10 { "M, number of samples (log scale)" } else { "μ = ln M − S(p)" },
            match axis {
                Some((symbol, name)) => format!("{symbol}, {name}"),
                None => format!("the truth ({truth}: no swept parameter)"),
            },
        );

        // One data size and several truth values (the appendix's studies): a heatmap would
        // be one column, so κ(1) and C(1) are also drawn as curves against T or Δ.
        if xs.len() == 1 && ys.len() >= 2 {
            let mut points: Vec<ProfilePoint> = idx
                .iter()
                .filter_map(|&i| {
                    let r = &rows[i];
                    let (k, c) = (r.stats(Quantity::KappaAt1), r.stats(Quantity::HeatCapacityAt1));
                    Some(ProfilePoint {
                        y: y_of(&descriptors[i])?,
                        kappa: (k.mean?, k.sem.unwrap_or(0.0)),
                        heat_capacity: (c.mean?, c.sem.unwrap_or(0.0)),
                    })
                })
                .collect();
            points.sort_by(|a, b| a.y.total_cmp(&b.y));
            if points.len() >= 2 {
                let x = if x_is_log10 {
                    format!("M = {}", 10f64.powf(xs[0]).round())
                } else {
                    format!("μ = {}", xs[0])
                };
                let fig = ProfileFigure {
                    title: format!("{study}: κ(1) and C(1); κ > C: cool, κ < C: heat"),
                    subtitle: format!("{}, {x}; {reps_text} replicates per point", describe.join(", ")),
                    x_desc: y_desc.clone(),
                    points,
                };
                files.extend(render_png_and_svg(out, &format!("kappa_c_profile{suffix}"), MAP_SIZE, &fig)?);
            }
        }

        // Several data sizes: τ* against M, one line per truth value, with error bars.
        if xs.len() >= 2 {
            let mut lines: Vec<Line> = ys
                .iter()
                .map(|y| Line {
                    label: axis.map_or_else(|| truth.to_string(), |(symbol, _)| format!("{symbol} = {y}")),
                    rev: Vec::new(),
                    fwd: Vec::new(),
                })
                .collect();
            for &i in idx {
                let d = &descriptors[i];
                let (Some((x, _)), Some(y)) = (x_of(d), y_of(d)) else { continue };
                let Ok(line) = ys.binary_search_by(|v| v.total_cmp(&y)) else { continue };
                let point = |q: Quantity| {
                    let s = rows[i].stats(q);
                    s.mean.map(|mean| LinePoint { x, mean, sem: s.sem.unwrap_or(0.0) })
                };
                // A Monte Carlo point draws what can be trusted: a flagged replicate's τ* can
                // be anything (a trapped walker's curve).
                let (rev, fwd) = match rows[i].mcmc_not_ok {
                    Some(_) => (Quantity::TauRevTrusted, Quantity::TauFwdTrusted),
                    None => (Quantity::TauRev, Quantity::TauFwd),
                };
                lines[line].rev.extend(point(rev));
                lines[line].fwd.extend(point(fwd));
            }
            for l in &mut lines {
                l.rev.sort_by(|a, b| a.x.total_cmp(&b.x));
                l.fwd.sort_by(|a, b| a.x.total_cmp(&b.x));
            }
            lines.retain(|l| !l.rev.is_empty() || !l.fwd.is_empty());
            // More lines than distinguishable colours: evenly spaced truth values.
            let all = lines.len();
            if all > MAX_LINES {
                let keep: Vec<usize> =
                    (0..MAX_LINES).map(|k| (k * (all - 1) + (MAX_LINES - 1) / 2) / (MAX_LINES - 1)).collect();
                lines =
                    lines.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, l)| l).collect();
            }
            let shown = if lines.len() < all {
                format!("{} of {all} truth values; ", lines.len())
            } else {
                String::new()
            };
            if !lines.is_empty() {
                let fig = LinesFigure {
                    title: format!("{study}: optimal sampling temperature vs data size"),
                    subtitle: format!(
                        "{}; {shown}{reps_text} replicates per point{}; dashed: τ = 1 (below: cool, above: heat)",
                        describe.join(", "),
                        if idx.iter().any(|&i| rows[i].mcmc_not_ok.is_some()) {
                            " (Monte Carlo: the passed ones; τ*_fwd also from equilibrated rungs)"
                        } else {
                            ""
                        }
                    ),
                    x_is_log10,
                    lines,
                };
                files.extend(render_png_and_svg(out, &format!("tau_vs_samples{suffix}"), LINES_SIZE, &fig)?);
            }
        }

        // A truth without a swept parameter has no second axis to map over.
        for map in MAPS.iter().filter(|m| axis.is_some() && m.only.is_none_or(|t| t == truth)) {
            let values = grid(&map.value);
            if values.iter().all(Option::is_none) {
                continue;
            }
            let scale = match map.scale {
                MapScale::Fraction => Scale::Linear { lo: 0.0, hi: 1.0 },
                MapScale::AroundOne => Scale::log_diverging_for(values.iter().flatten().copied()),
                MapScale::AroundZero => Scale::linear_diverging_for(values.iter().flatten().copied()),
            };
            let line = match map.boundary {
                Boundary::TauRev(stat) => format!(
                    "black line: {} τ*_rev = 1, the phase boundary (drawn next to points > 2 s.e. and > 2 % \
                     away from 1)",
                    if stat == Stat::Mean { "mean" } else { "median" }
                ),
                Boundary::TrustedTauRev => "black line: median τ*_rev = 1 over the passed replicates (drawn next to \
                                             points > 2 s.e. and > 2 % away from 1); grey: no replicate passed"
                    .to_string(),
                Boundary::KappaMinusC => {
                    "black line: mean κ(1) − C(1) = 0 (drawn next to points > 2 s.e. away from 0)".to_string()
                }
            };
            let heatmap = Heatmap {
                title: format!("{study}: {}", map.title),
                subtitle: format!("{}; {reps_text} replicates per point\n{line}", describe.join(", ")),
                x_desc: x_desc.into(),
                y_desc: y_desc.clone(),
                xs: xs.clone(),
                x_is_log10,
                ys: ys.clone(),
                values,
                scale,
                bar_label: map.bar.into(),
                contour: match map.boundary {
                    Boundary::TauRev(Stat::Mean) => boundary_mean.clone(),
                    Boundary::TauRev(Stat::Median) => boundary_median.clone(),
                    Boundary::TrustedTauRev => boundary_trusted.clone(),
                    Boundary::KappaMinusC => boundary_kappa.clone(),
                },
            };
            files.extend(render_png_and_svg(out, &format!("{}{suffix}", map.stem), MAP_SIZE, &heatmap)?);
        }
    }
    Ok(files)
}
