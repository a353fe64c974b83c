//! A Potts model: n sites with q states each, fields h_i(a) and couplings J_ij(a, b), with
//! E(s) = −Σ_i h_i(s_i) − Σ_{i<j} J_ij(s_i, s_j).
//!
//! # Layout
//!
//! Couplings are stored dense, both triangles, as `J[((i·n + j)·q + a)·q + b]` =
//! J_ij(a, b), with J_ji(b, a) = J_ij(a, b) kept equal by every setter and J_ii = 0. So
//! for any ordered pair (i, j) and state a, the row J_ij(a, ·) is q contiguous numbers:
//! - the conditional energy of site i for all its states, Σ_j J_ij(·, s_j) = Σ_j J_ji(s_j, ·),
//!   reads one contiguous row per neighbour j;
//! - after site j changes from b to b', every local field F_i(·) moves by
//!   J_ji(b', ·) − J_ji(b, ·): again two contiguous rows.
//!
//! A packed upper triangle would halve the memory but make half of those accesses strided
//! (J_ij(·, b) for i < j is a column of the (i, j) block). The cost of the dense layout is
//! n²q² doubles: 318 MB for the largest protein truth of docs/spec.md (n = 300, q = 21), which
//! is why [`MAX_COUPLING_ENTRIES`] bounds n²q².

use super::error::PottsError;

/// Largest n²q² of a model: 2^28 doubles (2 GiB). At q = 21 that is n ≤ 780 sites, at q = 5
/// n ≤ 3 276; a site index beyond it in a file is refused before anything is allocated.
pub const MAX_COUPLING_ENTRIES: usize = 1 << 28;

/// Largest number of sites of a model with q states (see [`MAX_COUPLING_ENTRIES`]).
pub fn max_sites(q: usize) -> usize {
    // floor(sqrt(2^28)) = 2^14.
    (1usize << 14) / q.max(1)
}

/// Fields and couplings of a Potts model.
#[derive(Clone, PartialEq)]
pub struct PottsModel {
    n: usize,
    q: usize,
    /// h_i(a) at `i·q + a`.
    fields: Vec<f64>,
    /// J_ij(a, b) at `((i·n + j)·q + a)·q + b`, both triangles (module docs).
    couplings: Vec<f64>,
}

impl PottsModel {
    /// The model with n sites, q states, all fields and couplings zero.
    ///
    /// Errors when n = 0, q < 2, q > 256 (states are bytes) or n > [`max_sites`]`(q)`.
    pub fn zeros(n: usize, q: usize) -> Result<PottsModel, PottsError> {
        if !(2..=256).contains(&q) {
            return Err(PottsError::setting("q", q, "need 2 <= q <= 256 states"));
        }
        if n == 0 || n > max_sites(q) {
            return Err(PottsError::setting(
                "n",
                n,
                format!(
                    "need 1 <= n <= {} sites at q = {q} (the dense couplings hold n²q² <= 2^28 numbers)",
                    max_sites(q)
                ),
            ));
        }
        Ok(PottsModel { n, q, fields: vec![0.0; n * q], couplings: vec![0.0; n * n * q * q] })
    }

    /// Number of sites n.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of states per site q.
    pub fn q(&self) -> usize {
        self.q
    }

    /// All fields, h_i(a) at `i·q + a`.
    pub fn fields(&self) -> &[f64] {
        &self.fields
    }

    /// h_i(·), the q fields of site i.
    pub fn site_fields(&self, i: usize) -> &[f64] {
        &self.fields[i * self.q..(i + 1) * self.q]
    }

    /// h_i(a).
    pub fn field(&self, i: usize, a: usize) -> f64 {
        assert!(i < self.n && a < self.q, "field ({i}, {a}) of a model with n = {}, q = {}", self.n, self.q);
        self.fields[i * self.q + a]
    }

    /// Set h_i(a).
    pub fn set_field(&mut self, i: usize, a: usize, value: f64) {
        assert!(i < self.n && a < self.q, "field ({i}, {a}) of a model with n = {}, q = {}", self.n, self.q);
        self.fields[i * self.q + a] = value;
    }

    /// All couplings, J_ij(a, b) at `((i·n + j)·q + a)·q + b`, both triangles.
    pub fn couplings(&self) -> &[f64] {
        &self.couplings
    }

    /// The q×q block J_ij(·, ·), row a at `a·q..(a + 1)·q`; zero for i = j.
    pub fn coupling_block(&self, i: usize, j: usize) -> &[f64] {
        assert!(i < self.n && j < self.n, "pair ({i}, {j}) of a model with n = {}", self.n);
        let qq = self.q * self.q;
        let at = (i * self.n + j) * qq;
        &self.couplings[at..at + qq]
    }

    /// The row J_ij(a, ·) (equal to the column J_ji(·, a)); zero for i = j.
    pub fn coupling_row(&self, i: usize, j: usize, a: usize) -> &[f64] {
        assert!(a < self.q, "state {a} of a model with q = {}", self.q);
        &self.coupling_block(i, j)[a * self.q..(a + 1) * self.q]
    }

    /// J_ij(a, b), for any ordered pair (zero for i = j).
    pub fn coupling(&self, i: usize, j: usize, a: usize, b: usize) -> f64 {
        self.coupling_row(i, j, a)[b]
    }

    /// Set J_ij(a, b) and its mirror J_ji(b, a). Panics for i = j: a site has no coupling
    /// with itself (that would be a field).
    pub fn set_coupling(&mut self, i: usize, j: usize, a: usize, b: usize, value: f64) {
        let (n, q) = (self.n, self.q);
        assert!(i < n && j < n && i != j, "pair ({i}, {j}) of a model with n = {n}");
        assert!(a < q && b < q, "states ({a}, {b}) of a model with q = {q}");
        self.couplings[((i * n + j) * q + a) * q + b] = value;
        self.couplings[((j * n + i) * q + b) * q + a] = value;
    }

    /// Whether every J_ij(·, ·) of the pair is zero (the pair is not coupled).
    pub fn pair_is_zero(&self, i: usize, j: usize) -> bool {
        self.coupling_block(i, j).iter().all(|&x| x == 0.0)
    }

    /// E(s) = −Σ_i h_i(s_i) − Σ_{i<j} J_ij(s_i, s_j).
    ///
    /// Panics when `s` has not n states below q: sequences come from an alignment read with
    /// the model's alphabet, so a mismatch is a programming error, not bad input.
    pub fn energy(&self, s: &[u8]) -> f64 {
        let (n, q) = (self.n, self.q);
        assert_eq!(s.len(), n, "a sequence of the model's {n} sites");
        assert!(s.iter().all(|&a| (a as usize) < q), "states below q = {q}");
        let mut e = 0.0;
        for i in 0..n {
            let a = s[i] as usize;
            e -= self.fields[i * q + a];
            let row = (i * n) * q * q + a * q;
            let mut pair = 0.0;
            for (j, &b) in s.iter().enumerate().skip(i + 1) {
                pair += self.couplings[row + j * q * q + b as usize];
            }
            e -= pair;
        }
        e
    }
}

impl std::fmt::Debug for PottsModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // n²q² numbers would drown a test failure.
        write!(f, "PottsModel {{ n: {}, q: {} }}", self.n, self.q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn couplings_are_kept_symmetric_and_rows_contiguous() {
        let mut m = PottsModel::zeros(3, 4).unwrap();
        m.set_coupling(2, 0, 1, 3, 0.5);
        assert_eq!(m.coupling(2, 0, 1, 3), 0.5);
        assert_eq!(m.coupling(0, 2, 3, 1), 0.5);
        assert_eq!(m.coupling_row(0, 2, 3), &[0.0, 0.5, 0.0, 0.0]);
        assert!(m.pair_is_zero(0, 1) && !m.pair_is_zero(0, 2) && m.pair_is_zero(1, 1));
    }

    #[test]
    fn sizes_outside_the_bounds_are_errors() {
        assert!(PottsModel::zeros(0, 21).is_err());
        assert!(PottsModel::zeros(3, 1).is_err());
        assert!(PottsModel::zeros(3, 257).is_err());
        assert!(PottsModel::zeros(max_sites(21) + 1, 21).is_err());
        assert_eq!(max_sites(21), 780);
    }

    #[test]
    fn energy_of_a_three_site_model_by_hand() {
        let mut m = PottsModel::zeros(3, 2).unwrap();
        m.set_field(0, 1, 0.5);
        m.set_field(2, 0, -1.0);
        m.set_coupling(0, 1, 1, 0, 2.0);
        m.set_coupling(2, 1, 0, 0, 0.25);
        // s = (1, 0, 0): −h_0(1) − h_2(0) − J_01(1, 0) − J_12(0, 0) = −0.5 + 1 − 2 − 0.25.
        assert_eq!(m.energy(&[1, 0, 0]), -1.75);
        assert_eq!(m.energy(&[0, 1, 1]), 0.0);
    }
}
