//! Exact enumeration of a small Potts model: ln Z and the Boltzmann probabilities at an
//! inverse temperature β, the oracle for samplers and estimators on models of a few sites.
//!
//! States are the integers x ∈ [0, q^n) with s_i the i-th base-q digit of x, site 0 least
//! significant (as bit i is spin i in [`crate::exact`]). For each setting of sites 1..n the
//! energy without site 0 is computed once and the q choices of s_0 are added in O(nq), so
//! every energy is a direct sum (no drift along the enumeration) at O(q^(n−1)·(n² + nq)).

use super::error::PottsError;
use super::params::PottsModel;
use crate::exact::log_sum_exp;

/// Most states [`enumerate`] visits (q^n ≤ 2^24: three 128 MiB vectors).
pub const MAX_ENUMERATED_STATES: usize = 1 << 24;

/// Every state's energy and probability under q_β(s) = e^{−βE(s)}/Z_β.
#[derive(Debug, Clone, PartialEq)]
pub struct Enumeration {
    /// β the probabilities are at.
    pub beta: f64,
    /// ln Z_β = ln Σ_s e^{−βE(s)}.
    pub log_z: f64,
    /// E(s) at index x(s) (module docs).
    pub energies: Vec<f64>,
    /// q_β(s) at index x(s).
    pub probabilities: Vec<f64>,
}

/// The states of the sites of state index `x` (site 0 the least significant base-q digit).
pub fn decode_state(mut x: usize, n: usize, q: usize) -> Vec<u8> {
    let mut s = vec![0u8; n];
    for si in &mut s {
        *si = (x % q) as u8;
        x /= q;
    }
    s
}

/// Enumerate all q^n states of `model` at inverse temperature `beta` (finite).
///
/// Errors when q^n exceeds [`MAX_ENUMERATED_STATES`] or β is not finite.
pub fn enumerate(model: &PottsModel, beta: f64) -> Result<Enumeration, PottsError> {
    let (n, q) = (model.n(), model.q());
    if !beta.is_finite() {
        return Err(PottsError::setting("beta", beta, "need a finite inverse temperature"));
    }
    let states = (0..n)
        .try_fold(1usize, |acc, _| acc.checked_mul(q).filter(|&s| s <= MAX_ENUMERATED_STATES))
        .ok_or_else(|| {
            PottsError::setting(
                "model size",
                format!("q^n = {q}^{n}"),
                format!("exact enumeration needs q^n <= 2^24 = {MAX_ENUMERATED_STATES} states"),
            )
        })?;
    let mut energies = Vec::with_capacity(states);
    let mut s = vec![0u8; n];
    let mut site0 = vec![0.0; q];
    for rest in 0..states / q {
        let mut x = rest;
        for si in s.iter_mut().skip(1) {
            *si = (x % q) as u8;
            x /= q;
        }
        // Energy of sites 1..n alone, then each choice of s_0 on top.
        let without0 = energy_without_site0(model, &s);
        for (a, e0) in site0.iter_mut().enumerate() {
            *e0 = -model.field(0, a) - pair_sum(model, &s, a);
        }
        energies.extend(site0.iter().map(|&e0| without0 + e0));
    }
    let log_weights: Vec<f64> = energies.iter().map(|&e| -beta * e).collect();
    let log_z = log_sum_exp(&log_weights);
    let probabilities = log_weights.iter().map(|&lw| (lw - log_z).exp()).collect();
    Ok(Enumeration { beta, log_z, energies, probabilities })
}

/// −Σ_{i ≥ 1} h_i(s_i) − Σ_{1 ≤ i < j} J_ij(s_i, s_j).
fn energy_without_site0(model: &PottsModel, s: &[u8]) -> f64 {
    let mut e = 0.0;
    for i in 1..s.len() {
        let a = s[i] as usize;
        e -= model.field(i, a);
        e -= (i + 1..s.len()).map(|j| model.coupling_row(i, j, a)[s[j] as usize]).sum::<f64>();
    }
    e
}

/// Σ_{j ≥ 1} J_0j(a, s_j).
fn pair_sum(model: &PottsModel, s: &[u8], a: usize) -> f64 {
    (1..s.len()).map(|j| model.coupling_row(0, j, a)[s[j] as usize]).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sites, q = 2, every number chosen by hand:
    /// h_0 = (0.5, −0.2), h_1 = (0.1, 0.3), J_01 = [[1.0, −0.5], [0.2, 0.0]].
    fn two_sites() -> PottsModel {
        let mut m = PottsModel::zeros(2, 2).unwrap();
        for (i, a, h) in [(0, 0, 0.5), (0, 1, -0.2), (1, 0, 0.1), (1, 1, 0.3)] {
            m.set_field(i, a, h);
        }
        for (a, b, j) in [(0, 0, 1.0), (0, 1, -0.5), (1, 0, 0.2), (1, 1, 0.0)] {
            m.set_coupling(0, 1, a, b, j);
        }
        m
    }

    #[test]
    fn two_site_model_computed_by_hand() {
        let m = two_sites();
        // E(s0, s1) = −h_0(s0) − h_1(s1) − J_01(s0, s1), states x = s0 + 2·s1:
        // x=0 (0,0): −0.5 − 0.1 − 1.0 = −1.6     x=1 (1,0): 0.2 − 0.1 − 0.2 = −0.1
        // x=2 (0,1): −0.5 − 0.3 + 0.5 = −0.3     x=3 (1,1): 0.2 − 0.3 − 0.0 = −0.1
        let expected = [-1.6, -0.1, -0.3, -0.1];
        let ex = enumerate(&m, 1.0).unwrap();
        for (x, (&e, &want)) in ex.energies.iter().zip(&expected).enumerate() {
            assert!((e - want).abs() < 1e-15, "x = {x}: {e} vs {want}");
            assert!((m.energy(&decode_state(x, 2, 2)) - e).abs() < 1e-15);
        }
        // Z = e^1.6 + 2 e^0.1 + e^0.3 = 4.953032424395115 + 2·1.1051709180756477 + 1.3498588075760032.
        let z = 4.953032424395115 + 2.0 * 1.1051709180756477 + 1.3498588075760032;
        assert!((ex.log_z - f64::ln(z)).abs() < 1e-14, "{} vs {}", ex.log_z, z.ln());
        assert!((ex.probabilities[0] - 4.953032424395115 / z).abs() < 1e-15);
        assert!((ex.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        // β = 0: uniform.
        let flat = enumerate(&m, 0.0).unwrap();
        assert!((flat.log_z - 4f64.ln()).abs() < 1e-15);
        assert!(flat.probabilities.iter().all(|&p| (p - 0.25).abs() < 1e-15));
    }

    #[test]
    fn states_decode_least_significant_site_first() {
        assert_eq!(decode_state(5, 3, 3), [2, 1, 0]);
        assert_eq!(decode_state(26, 3, 3), [2, 2, 2]);
    }

    #[test]
    fn too_many_states_is_an_error() {
        assert!(enumerate(&PottsModel::zeros(6, 21).unwrap(), 1.0).is_err());
        assert!(enumerate(&PottsModel::zeros(2, 2).unwrap(), f64::NAN).is_err());
    }
}
