//! Curves a store left out (`tau.curves = "recompute"`), computed again on demand.
//!
//! A cell is a pure function of its spec (docs/spec.md §6), so computing it again gives its
//! curve bit for bit. Every stored scalar is compared with the recomputed one first: if
//! this build computes a different result than the one that wrote the store (a changed
//! algorithm, another platform's libm), the curve would not belong to the stored τ*, and
//! the reader stops with an error naming the cell, the field and both values.

use anyhow::Context;
use rayon::prelude::*;
use taustar_common::cell::CurveOutput;
use taustar_common::result_fields::first_difference;
use taustar_common::{run_cell, CellKey, CellResult, CellSpec};

/// Fill in every empty curve of `results`, the results of `point.point`, computing each such
/// cell again from `point` with the result's replicate; cells run in parallel. Results
/// that carry a curve are left as they are. Returns how many were recomputed.
pub fn recompute_missing(point: &CellSpec, results: &mut [CellResult]) -> anyhow::Result<usize> {
    let missing: Vec<usize> = (0..results.len()).filter(|&i| results[i].curve.is_empty()).collect();
    let curves: Vec<anyhow::Result<(usize, Vec<taustar_common::cell::CurvePoint>)>> = missing
        .par_iter()
        .map(|&i| {
            let stored = &results[i];
            let (_, replicate) = CellKey::split(&stored.key.0)
                .with_context(|| format!("result key {:?} names no replicate", stored.key.0))?;
            let mut spec = CellSpec { replicate, ..point.clone() };
            spec.settings.curves = CurveOutput::All;
            let again = run_cell(&spec).with_context(|| format!("computing {} again", stored.key.0))?;
            if again.key != stored.key {
                anyhow::bail!("computing {} again gave the result of {}", stored.key.0, again.key.0);
            }
            if let Some((field, was, now)) = first_difference(stored, &again) {
                anyhow::bail!(
                    "cannot recompute the curve of {}: this build computes {field} = {now}, the store \
                     holds {was} (the study was computed by a build with different numerics; \
                     rerun it with this build, or export with the build that computed it)",
                    stored.key.0
                );
            }
            Ok((i, again.curve))
        })
        .collect();
    let n = curves.len();
    for c in curves {
        let (i, curve) = c?;
        results[i].curve = curve;
    }
    Ok(n)
}
