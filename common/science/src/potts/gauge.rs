//! The zero-sum (Ising) gauge of a Potts model.
//!
//! The energy E(s) = −Σ_i h_i(s_i) − Σ_{i<j} J_ij(s_i, s_j) is unchanged, up to a constant,
//! when a function of one letter moves between a coupling and a field, so fields and
//! couplings are only defined up to a gauge. The zero-sum gauge fixes it by
//! Σ_a J_ij(a, b) = 0 = Σ_b J_ij(a, b) and Σ_a h_i(a) = 0; it is the gauge DCA tools report
//! (plmDCA, adabmDCA's `zerosum`), and the one in which fits and truths are compared, since
//! the L2 penalties of the fits pick (nearly) that gauge among all equivalent ones.
//!
//! With x̄ the mean over the q letters at the dotted position:
//!
//! J'_ij(a, b) = J_ij(a, b) − J_ij(·, b) − J_ij(a, ·) + J_ij(·, ·),
//! h'_i(a) = h_i(a) − h_i(·) + Σ_{j≠i} [J_ij(a, ·) − J_ij(·, ·)].
//!
//! The terms J_ij(a, ·) taken out of the coupling of (i, j) go into the field of i,
//! J_ij(·, b) = J_ji(b, ·) into the field of j, and the constants drop: E'(s) = E(s) + c for
//! every s, so every probability is unchanged.

use super::params::PottsModel;

/// The model in the zero-sum gauge, with the same Boltzmann law (module docs).
pub fn zero_sum_gauge(model: &PottsModel) -> PottsModel {
    let (n, q) = (model.n(), model.q());
    let qf = q as f64;
    let mut out = model.clone();
    for i in 0..n {
        let h = model.site_fields(i);
        let h_mean = h.iter().sum::<f64>() / qf;
        for a in 0..q {
            let mut shift = 0.0;
            for j in (0..n).filter(|&j| j != i) {
                let block = model.coupling_block(i, j);
                let row_mean = block[a * q..(a + 1) * q].iter().sum::<f64>() / qf;
                shift += row_mean - block.iter().sum::<f64>() / (qf * qf);
            }
            out.set_field(i, a, h[a] - h_mean + shift);
        }
        for j in i + 1..n {
            let block = model.coupling_block(i, j);
            let row_means: Vec<f64> = block.chunks_exact(q).map(|r| r.iter().sum::<f64>() / qf).collect();
            let col_means: Vec<f64> =
                (0..q).map(|b| (0..q).map(|a| block[a * q + b]).sum::<f64>() / qf).collect();
            let mean = block.iter().sum::<f64>() / (qf * qf);
            for a in 0..q {
                for b in 0..q {
                    out.set_coupling(i, j, a, b, block[a * q + b] - col_means[b] - row_means[a] + mean);
                }
            }
        }
    }
    out
}

/// The largest |Σ_a h_i(a)|, |Σ_a J_ij(a, b)| or |Σ_b J_ij(a, b)|: 0 in the zero-sum
/// gauge, up to round-off.
pub fn zero_sum_violation(model: &PottsModel) -> f64 {
    let (n, q) = (model.n(), model.q());
    let mut worst: f64 = 0.0;
    for i in 0..n {
        worst = worst.max(model.site_fields(i).iter().sum::<f64>().abs());
        for j in (0..n).filter(|&j| j != i) {
            let block = model.coupling_block(i, j);
            for a in 0..q {
                worst = worst.max(block[a * q..(a + 1) * q].iter().sum::<f64>().abs());
                worst = worst.max((0..q).map(|b| block[b * q + a]).sum::<f64>().abs());
            }
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_site_model_by_hand() {
        // q = 2, J_01 = [[1, 0], [0, 0]], no fields: J' = ±1/4, h'_0(a) = J_01(a, ·) − 1/4.
        let mut m = PottsModel::zeros(2, 2).unwrap();
        m.set_coupling(0, 1, 0, 0, 1.0);
        let g = zero_sum_gauge(&m);
        assert_eq!(g.coupling_block(0, 1), &[0.25, -0.25, -0.25, 0.25]);
        assert_eq!(g.site_fields(0), &[0.25, -0.25]);
        assert_eq!(g.site_fields(1), &[0.25, -0.25]);
        assert_eq!(zero_sum_violation(&g), 0.0);
        // E differences: E(0,0) − E(1,1) = −1 before and after.
        assert_eq!(g.energy(&[0, 0]) - g.energy(&[1, 1]), -1.0);
    }
}
