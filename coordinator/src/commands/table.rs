//! Plain-text tables for the human-readable output of `cell` and `eval`.

use common::cell::CurvePoint;
use serde_json::Value;

/// Print every scalar field of a JSON object as `name  value`, skipping the curve.
pub fn print_scalars(v: &Value) {
    if let Value::Object(map) = v {
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (k, val) in map {
            if k == "curve" {
                continue;
            }
            let shown = match val {
                Value::Null => "-".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("{k:<width$}  {shown}");
        }
    }
}

/// Print the τ curve as aligned columns.
pub fn print_curve(curve: &[CurvePoint]) {
    println!();
    println!(
        "{:>9} {:>13} {:>13} {:>11} {:>13} {:>13}",
        "tau", "dkl_rev", "dkl_fwd", "entropy", "mean_energy", "heat_capacity"
    );
    for p in curve {
        println!(
            "{:>9.4} {:>13.6e} {:>13.6e} {:>11.5} {:>13.6} {:>13.6e}",
            p.tau, p.dkl_rev, p.dkl_fwd, p.entropy, p.mean_energy, p.heat_capacity
        );
    }
}
