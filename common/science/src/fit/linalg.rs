//! The one piece of dense linear algebra the Newton fit needs: solving H d = −g for a
//! symmetric positive (semi)definite H by Cholesky, with a Levenberg–Marquardt ridge when
//! H is numerically singular (a sign that couplings are running off to infinity).

use ndarray::Array2;

/// Solve (H + μI) x = b by Cholesky, raising μ from 0 until the factorisation succeeds.
/// Returns x and the ridge μ used. `h` is left untouched.
pub fn solve_spd_with_ridge(h: &Array2<f64>, b: &[f64]) -> (Vec<f64>, f64) {
    let n = b.len();
    let max_diag = (0..n).map(|i| h[[i, i]].abs()).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let mut ridge = 0.0;
    let mut l = Array2::<f64>::zeros((n, n));
    loop {
        if cholesky_into(h, ridge, max_diag, &mut l) {
            return (cholesky_solve(&l, b), ridge);
        }
        ridge = if ridge == 0.0 { 1e-12 * max_diag } else { ridge * 10.0 };
    }
}

/// Lower Cholesky factor of H + μI into `l`; false if a pivot is not safely positive.
fn cholesky_into(h: &Array2<f64>, ridge: f64, max_diag: f64, l: &mut Array2<f64>) -> bool {
    let n = h.nrows();
    let floor = 1e-14 * max_diag;
    for j in 0..n {
        let mut d = h[[j, j]] + ridge;
        for k in 0..j {
            d -= l[[j, k]] * l[[j, k]];
        }
        // NaN-safe: a NaN pivot fails too.
        if d.is_nan() || d <= floor {
            return false;
        }
        let djj = d.sqrt();
        l[[j, j]] = djj;
        for i in j + 1..n {
            let mut s = h[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]];
            }
            l[[i, j]] = s / djj;
        }
    }
    true
}

fn cholesky_solve(l: &Array2<f64>, b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut y = b.to_vec();
    for i in 0..n {
        let mut s = y[i];
        for k in 0..i {
            s -= l[[i, k]] * y[k];
        }
        y[i] = s / l[[i, i]];
    }
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[[k, i]] * y[k];
        }
        y[i] = s / l[[i, i]];
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_positive_definite_system() {
        let h = ndarray::arr2(&[[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]]);
        let b = [1.0, -2.0, 0.5];
        let (x, ridge) = solve_spd_with_ridge(&h, &b);
        assert_eq!(ridge, 0.0);
        for i in 0..3 {
            let hx: f64 = (0..3).map(|j| h[[i, j]] * x[j]).sum();
            assert!((hx - b[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn a_singular_matrix_gets_a_ridge_instead_of_nan() {
        let h = ndarray::arr2(&[[1.0, 1.0], [1.0, 1.0]]);
        let (x, ridge) = solve_spd_with_ridge(&h, &[1.0, 1.0]);
        assert!(ridge > 0.0);
        assert!(x.iter().all(|v| v.is_finite()));
    }
}
