//! `taustar plot`: phase diagrams of a study as PNG and SVG.
//!
//! One streaming pass over the store summarises each grid point (`taustar_common::aggregate`) —
//! only the summaries (one small row per point) and, with `--point`, the chosen point's
//! results are kept. Then per facet (see [`maps`]): heatmaps of mean and median τ*_rev and
//! τ*_fwd over (log10 M, Δ) or (log10 M, T) with a diverging colour map centred on τ = 1 and
//! the τ*_rev = 1 contour as the phase boundary; two-level studies also get Δ̂/Δ and
//! n̂_g/n_g maps, Ising studies the fraction of diverged fits; every study the fraction of
//! replicates with τ*_rev < 1; with several data sizes, τ*_rev and τ*_fwd against M with
//! ±1 s.e. bars, one line per truth value ([`lines`]). `--point` adds the D vs τ curves of one
//! grid point.

use std::path::{Path, PathBuf};

use anyhow::Context;
use taustar_common::aggregate::table::Descriptors;
use taustar_common::aggregate::{PointAggregator, SummaryRow};

pub mod colormap;
pub mod contour;
pub mod diagnose;
pub mod heatmap;
pub mod lines;
pub mod maps;
pub mod point;
pub mod profile;
pub mod render;
#[cfg(test)]
mod tests;

use crate::export::source::PointSource;
use point::{CurvesFigure, PointSelector, Selection};

/// Pixel size of the `--point` figure.
pub const CURVES_SIZE: (u32, u32) = (1200, 600);

/// What a plot run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotReport {
    /// Grid points summarised.
    pub points: u64,
    /// Files written (PNG and SVG pairs).
    pub files: Vec<PathBuf>,
}

/// Draw every map of `source` (and the `point` curves) into `out`.
pub fn plot_study(
    source: &dyn PointSource,
    out: &Path,
    point: Option<&PointSelector>,
) -> anyhow::Result<PlotReport> {
    std::fs::create_dir_all(out).with_context(|| format!("creating output directory {}", out.display()))?;
    let study = source.study_name();
    let mut rows: Vec<SummaryRow> = Vec::new();
    let mut selection = Selection::default();
    source.for_each_point(&mut |p, results| {
        let row = PointAggregator::summarize(p, results);
        if let Some(sel) = point {
            let d = Descriptors::of(p);
            if sel.matches(&d) && results.iter().any(|r| r.curve.is_empty()) {
                // The chosen point's curves, computed again if the store left them out.
                let mut completed = results.to_vec();
                source.complete_curves(p, &mut completed)?;
                selection.offer(sel, &row.point_key, d, &completed);
            } else {
                selection.offer(sel, &row.point_key, d, results);
            }
        }
        rows.push(row);
        Ok(())
    })?;
    if rows.is_empty() {
        anyhow::bail!("study {study:?} has no results yet: nothing to plot");
    }
    let mut files = maps::draw_maps(&study, &rows, out)?;
    if let Some(sel) = point {
        let (key, d, results) = selection.into_single(sel)?;
        if results.iter().all(|r| r.curve.is_empty()) {
            anyhow::bail!(
                "--point: the results of {key} have no τ curves to draw (the study sets \
                 [tau] curves = \"none\"); the phase diagrams are written without them"
            );
        }
        let values: Vec<String> = d.pairs().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let monte_carlo = results.iter().any(|r| !r.mcmc.curve_se.is_empty());
        let fig = CurvesFigure {
            title: format!("{study}: divergence vs sampling temperature, {} replicates", results.len()),
            subtitle: format!(
                "{}; dots: τ* of each replicate; dashed: τ = 1{}",
                values.iter().filter(|v| !v.starts_with("truth=")).cloned().collect::<Vec<_>>().join(", "),
                if monte_carlo { "; bands and bars: ±1 s.e. (Monte Carlo)" } else { "" }
            ),
            results,
        };
        let stem = format!("point__{}", file_stem_of(&key));
        files.extend(render::render_png_and_svg(out, &stem, CURVES_SIZE, &fig)?);
    }
    Ok(PlotReport { points: rows.len() as u64, files })
}

/// A file-name-safe form of a grid-point key.
fn file_stem_of(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '=') { c } else { '_' })
        .collect()
}
