//! Thermodynamic integration: ln Z(β) along a ladder from each rung's own energy moments,
//! the independent cross-check of MBAR (docs/spec.md §10).
//!
//! d ln Z/dβ = −⟨E⟩_β and d²ln Z/dβ² = Var_β(E), so across a gap [a, b] of width h the
//! Euler–Maclaurin-corrected trapezoid rule (exact for cubics)
//! ∫_a^b g ≈ h (g_a + g_b)/2 + h² (g'_a − g'_b)/12, with g = −⟨E⟩ and g' = Var(E),
//! integrates ln Z from β = 0 (where it is N ln 2) using nothing but the sample mean and
//! variance at every rung. MBAR pools every sample and reweights; this uses each rung alone.
//! Where they disagree by more than their noise, the ladder is too sparse for one of them or
//! a rung is not in equilibrium.

/// ln Z at every rung of the ascending ladder `betas` (`betas[0] = 0`, where ln Z = `log_z0`)
/// from each rung's series of energies, by the quintic Hermite rule, with an estimate of
/// its quadrature error: (ln Z per rung, |quintic − cubic| accumulated to each rung).
///
/// With g = d ln Z/dβ = −⟨E⟩, g' = Var(E) and g'' = −κ₃ (the third cumulant of E), the
/// two-point Hermite rules over a gap of width h are
/// cubic: h(g_a + g_b)/2 + h²(g'_a − g'_b)/12 (exact for cubics), and
/// quintic: h(g_a + g_b)/2 + h²(g'_a − g'_b)/10 + h³(g''_a + g''_b)/120 (exact for quintics).
/// Where the ladder is coarse compared with how fast ⟨E⟩ bends (few discrete levels, a
/// frozen low-temperature end) neither is accurate, and their difference says so.
pub fn log_z_ladder(betas: &[f64], energies: &[Vec<f64>], log_z0: f64) -> (Vec<f64>, Vec<f64>) {
    assert!(betas.len() == energies.len() && !betas.is_empty() && betas[0] == 0.0);
    let cumulants: Vec<(f64, f64, f64)> = energies.iter().map(|e| cumulants(e)).collect();
    let (mut out, mut err) = (Vec::with_capacity(betas.len()), Vec::with_capacity(betas.len()));
    out.push(log_z0);
    err.push(0.0);
    for k in 1..betas.len() {
        let h = betas[k] - betas[k - 1];
        let ((ma, va, ta), (mb, vb, tb)) = (cumulants[k - 1], cumulants[k]);
        let trapezoid = h * (-ma - mb) / 2.0;
        let cubic = trapezoid + h * h * (va - vb) / 12.0;
        let quintic = trapezoid + h * h * (va - vb) / 10.0 + h * h * h * (-ta - tb) / 120.0;
        out.push(out[k - 1] + quintic);
        err.push(err[k - 1] + (quintic - cubic).abs());
    }
    (out, err)
}

/// Mean, variance and third central moment of a series.
fn cumulants(x: &[f64]) -> (f64, f64, f64) {
    let n = x.len().max(1) as f64;
    let mean = x.iter().sum::<f64>() / n;
    let (mut m2, mut m3) = (0.0, 0.0);
    for &v in x {
        let d = v - mean;
        m2 += d * d;
        m3 += d * d * d;
    }
    (mean, m2 / n, m3 / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binomial(n: u64, k: u64) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    /// N free spins in a field: E = −Σ s_i, ln Z(β) = N ln(2 cosh β). With (nearly) exact
    /// moments in place of samples, the error is the quadrature's alone.
    #[test]
    fn exact_moments_integrate_to_the_closed_form() {
        let n = 10.0;
        let err = |k: usize| {
            let betas: Vec<f64> = (0..=k).map(|i| 2.0 * i as f64 / k as f64).collect();
            // E = −Σ s_i exactly: every configuration's energy is −N + 2·(number of −1
            // spins), binomially distributed; a series of all 2^N energies weighted by
            // repetition would be large, so use the exact law's levels with integer weights
            // proportional to their probabilities (rounded: the moments are then exact to
            // ~1e-6).
            let series: Vec<Vec<f64>> = betas
                .iter()
                .map(|&b| {
                    let p_up = 1.0 / (1.0 + (-2.0 * b).exp());
                    let mut s = Vec::new();
                    for down in 0..=n as usize {
                        let prob = binomial(n as u64, down as u64)
                            * (1.0 - p_up).powi(down as i32)
                            * p_up.powi((n as usize - down) as i32);
                        let copies = (prob * 1e6).round() as usize;
                        s.extend(std::iter::repeat_n(-n + 2.0 * down as f64, copies));
                    }
                    s
                })
                .collect();
            let (got, est) = log_z_ladder(&betas, &series, n * 2f64.ln());
            ((got[k] - n * (2.0 * 2f64.cosh()).ln()).abs(), est[k])
        };
        let ((coarse, coarse_est), (fine, fine_est)) = (err(6), err(12));
        assert!(fine < 1e-4, "{fine}");
        assert!(coarse > fine, "{coarse} / {fine}");
        // The error estimate (quintic − cubic) bounds the actual error of the quintic rule.
        assert!(coarse_est >= coarse && fine_est >= fine, "{coarse} ≤ {coarse_est}, {fine} ≤ {fine_est}");
    }
}
