//! Plain-text tables for the human-readable output of `cell` and `eval`, and the one rule
//! for writing to stdout: a closed pipe (`taustar cell … | head`) ends output quietly.

use std::io::{self, Write};

use serde_json::Value;
use taustar_common::cell::{CurvePoint, CurveSe, LadderDiagnostics};

/// Write `text` to stdout; a reader that went away (broken pipe) is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `v` (a JSON object) with a Monte Carlo run's diagnostics appended under the names the
/// `cells` table and `taustar cell --json` use (`mcmc_ok`, `mcmc_steps`, `ladder_rungs`, …),
/// so every command reports them alike.
pub fn with_diagnostics(mut v: Value, d: &LadderDiagnostics) -> Value {
    if let (Some(map), Ok(Value::Object(diag))) = (v.as_object_mut(), serde_json::to_value(d)) {
        map.extend(diag);
    }
    v
}

/// Every scalar field of a JSON object as `name  value` lines, in field order, without the curve.
pub fn scalars(v: &Value) -> String {
    let mut s = String::new();
    if let Value::Object(map) = v {
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (k, val) in map {
            if k == "curve" || k == "curve_se" {
                continue;
            }
            let shown = match val {
                Value::Null => "-".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            s.push_str(&format!("{k:<width$}  {shown}\n"));
        }
    }
    s
}

/// The τ curve as aligned columns; with standard errors (a Monte Carlo curve, `se` one per
/// point) each of D_rev, D_fwd and C is followed by its own.
pub fn curve(curve: &[CurvePoint], se: &[CurveSe]) -> String {
    if !se.is_empty() && se.len() == curve.len() {
        let mut s = format!(
            "\n{:>9} {:>11} {:>9} {:>11} {:>9} {:>11} {:>11} {:>11} {:>9}\n",
            "tau", "dkl_rev", "± s.e.", "dkl_fwd", "± s.e.", "entropy", "mean_energy", "heat_cap", "± s.e."
        );
        for (p, e) in curve.iter().zip(se) {
            s.push_str(&format!(
                "{:>9.4} {:>11.4e} {:>9.2e} {:>11.4e} {:>9.2e} {:>11.5} {:>11.5} {:>11.4e} {:>9.2e}\n",
                p.tau,
                p.dkl_rev,
                e.dkl_rev,
                p.dkl_fwd,
                e.dkl_fwd,
                p.entropy,
                p.mean_energy,
                p.heat_capacity,
                e.heat_capacity
            ));
        }
        return s;
    }
    let mut s = format!(
        "\n{:>9} {:>13} {:>13} {:>11} {:>13} {:>13}\n",
        "tau", "dkl_rev", "dkl_fwd", "entropy", "mean_energy", "heat_capacity"
    );
    for p in curve {
        s.push_str(&format!(
            "{:>9.4} {:>13.6e} {:>13.6e} {:>11.5} {:>13.6} {:>13.6e}\n",
            p.tau, p.dkl_rev, p.dkl_fwd, p.entropy, p.mean_energy, p.heat_capacity
        ));
    }
    s
}
