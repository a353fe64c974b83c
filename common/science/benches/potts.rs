//! Criterion benchmark of Potts heat-bath updates at the protein shape q = 21, N = 100, every
//! pair coupled (fields ~ N(0, 1), couplings ~ N(0, 0.1²): local fields vary by O(1) across
//! letters, as in a fitted model). Three ways to make the same single-site update, in the
//! same run and with the same draw ([`draw_heat_bath`]):
//! - `kept_fields`: [`PottsChain`], local fields kept incrementally (a change of site j
//!   streams two contiguous rows of each block (j, ·) into every other site's fields);
//! - `recompute_strided`: the formula as written, f_i(a) = h_i(a) + Σ_j J_ij(a, s_j) for
//!   every a from scratch at each update, through `PottsModel::coupling` (stride q in a);
//! - `recompute_rows`: the same recomputation reading the contiguous rows J_ji(s_j, ·);
//! - `kept_fields_site_major`: kept fields as in `kept_fields`, but over a private copy of
//!   the couplings laid out J_ji(b, a) at `((j·q + b)·n + i)·q + a`, so that a change of
//!   site j reads two contiguous vectors of n·q numbers instead of two rows of q from each
//!   of n blocks: what a layout change of `PottsModel` would buy.
//!
//! At β = 1 most updates change the site; at β = 3 few do, which is where kept fields pay
//! (each group prints the change rate). Throughput is in updates: Melem/s ÷ 1000 = updates
//! per ns, one core.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::hint::black_box;
use taustar_science::potts::chain::draw_heat_bath;
use taustar_science::potts::{PottsChain, PottsModel};

const N: usize = 100;
const Q: usize = 21;

fn dense_model() -> PottsModel {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (field, coupling) = (Normal::new(0.0, 1.0).unwrap(), Normal::new(0.0, 0.1).unwrap());
    let mut m = PottsModel::zeros(N, Q).unwrap();
    for i in 0..N {
        for a in 0..Q {
            m.set_field(i, a, field.sample(&mut rng));
        }
        for j in i + 1..N {
            for a in 0..Q {
                for b in 0..Q {
                    m.set_coupling(i, j, a, b, coupling.sample(&mut rng));
                }
            }
        }
    }
    m
}

/// One sweep recomputing each site's local fields from scratch, through `field` (which
/// fills f_i(·) given the state).
fn sweep_from_scratch(
    state: &mut [u8],
    beta: f64,
    f: &mut [f64],
    weights: &mut [f64],
    rng: &mut ChaCha8Rng,
    field: impl Fn(usize, &[u8], &mut [f64]),
) {
    for i in 0..state.len() {
        field(i, state, f);
        state[i] = draw_heat_bath(f, beta, weights, rng);
    }
}

/// J_ji(b, a) at `((j·q + b)·n + i)·q + a`: for each site j and letter b, the change of every
/// local field when s_j = b, contiguous.
fn site_major(model: &PottsModel) -> Vec<f64> {
    let mut out = vec![0.0; N * Q * N * Q];
    for j in 0..N {
        for b in 0..Q {
            for i in (0..N).filter(|&i| i != j) {
                let at = ((j * Q + b) * N + i) * Q;
                out[at..at + Q].copy_from_slice(model.coupling_row(j, i, b));
            }
        }
    }
    out
}

/// One kept-fields sweep over the site-major copy (J_jj = 0, so a site's own segment of the
/// update adds exact zeros and needs no branch).
fn sweep_site_major(
    chain: &mut (Vec<u8>, Vec<f64>, f64),
    couplings: &[f64],
    beta: f64,
    weights: &mut [f64],
    rng: &mut ChaCha8Rng,
) {
    let (state, local, energy) = chain;
    for i in 0..N {
        let drawn = draw_heat_bath(&local[i * Q..(i + 1) * Q], beta, weights, rng);
        let (old, new) = (state[i] as usize, drawn as usize);
        if old != new {
            *energy += local[i * Q + old] - local[i * Q + new];
            let row_old = &couplings[(i * Q + old) * N * Q..(i * Q + old + 1) * N * Q];
            let row_new = &couplings[(i * Q + new) * N * Q..(i * Q + new + 1) * N * Q];
            for ((f, &jn), &jo) in local.iter_mut().zip(row_new).zip(row_old) {
                *f += jn - jo;
            }
            state[i] = drawn;
        }
    }
}

fn potts_heat_bath(c: &mut Criterion) {
    let model = dense_model();
    let copy = site_major(&model);
    for beta in [1.0, 3.0] {
        let mut g = c.benchmark_group(format!("potts_heat_bath_N{N}_q{Q}_beta{beta}"));
        g.throughput(Throughput::Elements(N as u64));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut chain = PottsChain::random(&model, beta, &mut rng).unwrap();
        // Equilibrate, so the change rate is the stationary one.
        for _ in 0..200 {
            chain.sweep(&mut rng);
        }
        let mut state = chain.state().to_vec();
        g.bench_function("kept_fields", |b| b.iter(|| chain.sweep(&mut rng)));
        eprintln!("β = {beta}: share of updates that change the site {:.3}", chain.change_rate());
        let (mut f, mut w) = (vec![0.0; Q], vec![0.0; Q]);
        g.bench_function("recompute_strided", |b| {
            b.iter(|| {
                sweep_from_scratch(&mut state, beta, &mut f, &mut w, &mut rng, |i, s, f| {
                    for (a, fa) in f.iter_mut().enumerate() {
                        *fa = model.field(i, a)
                            + (0..N)
                                .filter(|&j| j != i)
                                .map(|j| model.coupling(i, j, a, s[j] as usize))
                                .sum::<f64>();
                    }
                })
            })
        });
        g.bench_function("recompute_rows", |b| {
            b.iter(|| {
                sweep_from_scratch(&mut state, beta, &mut f, &mut w, &mut rng, |i, s, f| {
                    f.copy_from_slice(model.site_fields(i));
                    for (j, &sj) in s.iter().enumerate() {
                        if j != i {
                            for (fa, &c) in f.iter_mut().zip(model.coupling_row(j, i, sj as usize)) {
                                *fa += c;
                            }
                        }
                    }
                })
            })
        });
        let start = PottsChain::new(&model, beta, state.clone()).unwrap();
        let mut site_major_chain = (state.clone(), start.local_fields().to_vec(), start.energy());
        g.bench_function("kept_fields_site_major", |b| {
            b.iter(|| sweep_site_major(&mut site_major_chain, &copy, beta, &mut w, &mut rng))
        });
        // The copy's chain kept its fields and energy right.
        let (s, local, energy) = &site_major_chain;
        let fresh = PottsChain::new(&model, beta, s.clone()).unwrap();
        assert!((fresh.energy() - energy).abs() < 1e-9);
        assert!(fresh.local_fields().iter().zip(local).all(|(x, y)| (x - y).abs() < 1e-9));
        black_box(&state);
        g.finish();
    }
}

criterion_group!(benches, potts_heat_bath);
criterion_main!(benches);
