//! The exact partition function of the nearest-neighbour Ising model on a finite m×n torus
//! (Kaufman 1949), the anchor of every Monte Carlo estimate on lattices too large to
//! enumerate (docs/spec.md §10).
//!
//! With K = J/T (J = 1) and periodic boundaries in both directions,
//!
//! Z = ½ (2 sinh 2K)^{mn/2} (Z₁ + Z₂ + Z₃ + Z₄),
//! Z₁ = Π_{k=0}^{n−1} 2 cosh(m γ_{2k+1}/2),  Z₂ = Π_{k=0}^{n−1} 2 sinh(m γ_{2k+1}/2),
//! Z₃ = Π_{k=0}^{n−1} 2 cosh(m γ_{2k}/2),    Z₄ = Π_{k=0}^{n−1} 2 sinh(m γ_{2k}/2),
//!
//! where cosh γ_l = cosh 2K · coth 2K − cos(lπ/n) with γ_l ≥ 0 for l ≥ 1, and γ₀ carries a
//! sign: γ₀ = 2K + ln tanh K, negative above the critical temperature (K < ½ ln(1 + √2)).
//! The four terms are the Pfaffians of the four boundary conditions of the fermion
//! representation; the sign of γ₀ makes Z₄ negative above T_c, and dropping it (taking
//! γ₀ = |arccosh(…)|) is the classic mistake: log Z is then wrong by O(e^{−n}) above T_c,
//! invisible on large lattices and plain on small ones (the tests catch it on 3×3).
//!
//! Everything is computed in logs with signs, so lattices of any size neither overflow nor
//! lose the small terms: ln(2 cosh x) = |x| + ln(1 + e^{−2|x|}) and
//! ln|2 sinh x| = |x| + ln(1 − e^{−2|x|}).

/// ln Z of the nearest-neighbour Ising model (J = 1) on the `rows`×`cols` torus at
/// temperature `temperature`, or `None` where the closed form does not describe taustar's
/// truth: a side shorter than 3 (taustar links the two rows of a side of 2 by one bond, the
/// torus formula by two) or a temperature that is not finite and positive.
pub fn log_partition(rows: u32, cols: u32, temperature: f64) -> Option<f64> {
    if rows < 3 || cols < 3 || !(temperature.is_finite() && temperature > 0.0) {
        return None;
    }
    let k = 1.0 / temperature;
    let (m, n) = (f64::from(cols), rows as usize);
    let two_k = 2.0 * k;
    // cosh 2K · coth 2K = cosh² 2K / sinh 2K.
    let c = two_k.cosh() * two_k.cosh() / two_k.sinh();
    let gamma = |l: usize| -> f64 {
        if l == 0 {
            two_k + k.tanh().ln()
        } else {
            let x = c - (std::f64::consts::PI * l as f64 / n as f64).cos();
            // arccosh x = ln(x + √(x² − 1)), x ≥ 1 here (c ≥ 2 for every K > 0).
            (x + (x * x - 1.0).sqrt()).ln()
        }
    };
    // (ln |Z_i|, sign of Z_i) for the four terms.
    let term = |odd: bool, sinh: bool| -> (f64, f64) {
        let (mut log_abs, mut sign) = (0.0, 1.0);
        for j in 0..n {
            let x = m * gamma(2 * j + usize::from(odd)) / 2.0;
            let a = x.abs();
            if sinh {
                if x == 0.0 {
                    return (f64::NEG_INFINITY, 0.0);
                }
                log_abs += a + (-(-2.0 * a).exp()).ln_1p();
                sign *= x.signum();
            } else {
                log_abs += a + (-2.0 * a).exp().ln_1p();
            }
        }
        (log_abs, sign)
    };
    let terms = [term(true, false), term(true, true), term(false, false), term(false, true)];
    let top = terms.iter().filter(|t| t.1 != 0.0).map(|t| t.0).fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = terms.iter().filter(|t| t.1 != 0.0).map(|t| t.1 * (t.0 - top).exp()).sum();
    if sum <= 0.0 {
        return None;
    }
    Some(-std::f64::consts::LN_2 + (m * n as f64 / 2.0) * (2.0 * two_k.sinh()).ln() + top + sum.ln())
}

/// ⟨Σ_bonds K σ_iσ_j⟩_p = K ∂ln Z/∂K, that is −⟨E_p⟩ in the truth's units (p ∝ e^{−E_p}),
/// by a central difference of [`log_partition`] in K (step 1e-5·K; error ~1e-10 relative,
/// checked against enumeration). With ln Z it gives D(τ) of a rescaled truth without
/// sampling (docs/spec.md §10).
pub fn mean_log_weight(rows: u32, cols: u32, temperature: f64) -> Option<f64> {
    let k = 1.0 / temperature;
    let h = 1e-5 * k;
    let lz = |kk: f64| log_partition(rows, cols, 1.0 / kk);
    // ⟨Σ K σσ⟩ = K d ln Z / dK.
    Some(k * (lz(k + h)? - lz(k - h)?) / (2.0 * h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ising::{torus_bonds, IsingTruth, Pairs};

    /// ln Z by enumerating all 2^N states: log p(all up) = K·bonds − ln Z.
    fn enumerated(rows: u32, cols: u32, t: f64) -> f64 {
        let pairs = Pairs::new(rows * cols);
        let truth = IsingTruth::new(rows, cols, t, &pairs);
        torus_bonds(rows, cols).len() as f64 / t - truth.log_p[0]
    }

    #[test]
    fn matches_enumeration_on_small_tori_both_orientations_and_both_sides_of_t_c() {
        for (rows, cols) in [(3, 3), (3, 4), (4, 3), (4, 4), (3, 5), (5, 3), (4, 5)] {
            for t in [0.5, 1.5, 2.0, 2.269185314213022, 2.5, 3.5, 10.0, 100.0] {
                let exact = enumerated(rows, cols, t);
                let kaufman = log_partition(rows, cols, t).unwrap();
                assert!(
                    (kaufman - exact).abs() < 1e-10 * exact.abs().max(1.0),
                    "{rows}x{cols} T={t}: Kaufman {kaufman} vs enumeration {exact}"
                );
            }
        }
    }

    #[test]
    fn matches_enumeration_on_4x6_and_6x4() {
        for t in [1.0, 2.269185314213022, 4.0] {
            let exact = enumerated(4, 6, t);
            for (r, c) in [(4, 6), (6, 4)] {
                let kaufman = log_partition(r, c, t).unwrap();
                assert!((kaufman - exact).abs() < 1e-10 * exact.abs(), "{r}x{c} T={t}: {kaufman} vs {exact}");
            }
        }
    }

    #[test]
    fn limits_and_large_lattices_are_finite_and_right() {
        // T → ∞: ln Z → N ln 2. T → 0: ln Z → ln 2 + K·2N (two ground states, 2N bonds).
        let n = 64.0 * 64.0;
        let hot = log_partition(64, 64, 1e6).unwrap();
        assert!((hot - n * std::f64::consts::LN_2).abs() < 1e-2, "{hot}");
        let t = 0.2;
        let cold = log_partition(64, 64, t).unwrap();
        let ground = std::f64::consts::LN_2 + 2.0 * n / t;
        assert!((cold - ground).abs() < 1e-6 * ground, "{cold} vs {ground}");
        // The free energy per site converges to Onsager's value at T_c: 0.9296953983…
        let tc = 2.0 / (1.0 + 2f64.sqrt()).ln();
        let f = log_partition(256, 256, tc).unwrap() / (256.0 * 256.0);
        assert!((f - 0.929_695_398_341_610_3).abs() < 1e-4, "{f}");
        assert!(log_partition(2, 8, 2.0).is_none() && log_partition(4, 4, 0.0).is_none());
    }

    #[test]
    fn mean_log_weight_matches_enumeration() {
        let (rows, cols, t) = (4, 4, 2.3);
        let pairs = Pairs::new(16);
        let truth = IsingTruth::new(rows, cols, t, &pairs);
        let mut e = vec![0.0; 1 << 16];
        pairs.energies_into(&truth.couplings_over_t, &mut e);
        // energies_into gives −Σ K σσ; ⟨Σ K σσ⟩ = −Σ p E.
        let exact: f64 = -truth.log_p.iter().zip(&e).map(|(lp, e)| lp.exp() * e).sum::<f64>();
        let kaufman = mean_log_weight(rows, cols, t).unwrap();
        assert!((kaufman - exact).abs() < 1e-7 * exact.abs(), "{kaufman} vs {exact}");
    }
}
