//! The multicanonical sampler on a first-order transition with exact answers: the 2D
//! q-state Potts model on the periodic 16×16 lattice (H = −Σ δ(σ_i, σ_j)), against Baxter's
//! β_t = ln(1 + √q) and the energies per site of the two coexisting phases (docs/spec.md
//! §10; issue #26).
//!
//! Finite-size theory used for the tolerances (Borgs & Kotecký 1990; Borgs, Kotecký &
//! Miracle-Solé 1991; Janke 1993). With periodic boundaries Z ≈ e^{−βN f_d} + q e^{−βN f_o}
//! up to corrections exponentially small in L. Hence:
//! - the **equal-weight β**, where the ordered peak weighs q times the disordered one, is β_t
//!   up to exponentially small terms: at L = 16 and q = 20 (disordered correlation length
//!   ≈ 2.7) below 10⁻⁴ in β. What remains is the cut between the peaks, which assigns the
//!   mixed-phase configurations of the valley (a fraction ~e^{−2σL} of the law) to one side
//!   or the other; the tolerance is 4 standard errors plus 2·10⁻³.
//! - the **specific-heat peak** C(β) = β² Var(E)/N sits at
//!   β_Cmax = β_t − ln q/(N Δe) + O(1/N²); from the two-Gaussian-peak model the next term is
//!   Δc (12 − ln²q) / (2 N² Δe³) with Δc = (c_o − c_d)/β_t² the difference of the two
//!   phases' energy variances per site (≈ 3–4 for q = 10), about +6·10⁻⁴ at L = 16. The
//!   tolerance is 4 standard errors plus 1.5·10⁻³.
//! - the **peak energies** of the histogram at the equal-weight point are the pure phases'
//!   ⟨E⟩/N = e_o, e_d up to the mode-versus-mean offset of a skewed peak, O(1/N) = O(1/L²):
//!   the mixed states of the valley skew each peak toward the middle, so its mode lies
//!   outward of its mean. Measured at q = 10, L = 16: ≈ 18/L² outward on both sides.
//!   Tolerance: 0.1 per site (25.6/L²), and the modes must lie outward.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use taustar_science::mc::mbar::Resample;
use taustar_science::mc::multicanonical::{run_multicanonical, MucaOptions, MucaReweighting, MucaRun};
use taustar_science::model::potts_lattice::{baxter, LatticePotts};

const L: u32 = 16;

/// β of the largest C = β² Var(E)/N in [lo, hi]: a scan, then golden section.
fn c_max(r: &MucaReweighting, lo: f64, hi: f64) -> f64 {
    let c = |b: f64| b * b * r.at(b).var_energy;
    let n = 40;
    let grid: Vec<f64> = (0..=n).map(|i| lo + (hi - lo) * i as f64 / n as f64).collect();
    let best = (0..=n).max_by(|&a, &b| c(grid[a]).total_cmp(&c(grid[b]))).unwrap_or(0);
    let (mut a, mut b) = (grid[best.saturating_sub(1)], grid[(best + 1).min(n)]);
    let g = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..40 {
        let (x1, x2) = (b - g * (b - a), a + g * (b - a));
        if c(x1) > c(x2) {
            b = x2;
        } else {
            a = x1;
        }
    }
    0.5 * (a + b)
}

/// The equal-weight β: ln(P(E < cut)/P(E ≥ cut)) = ln q, by bisection in [lo, hi] (the ratio
/// grows with β).
fn equal_weight(r: &MucaReweighting, cut: f64, q: f64, lo: f64, hi: f64) -> f64 {
    let (mut a, mut b) = (lo, hi);
    for _ in 0..50 {
        let m = 0.5 * (a + b);
        if r.phase_log_ratio(m, cut) < q.ln() {
            a = m;
        } else {
            b = m;
        }
    }
    0.5 * (a + b)
}

/// The law of E/N at β on bins of `width` energy units, and the modes on either side of
/// the deepest minimum between `lo` and `hi` (per site): (e_ordered, e_disordered, cut).
fn peaks(r: &MucaReweighting, beta: f64, width: f64, lo: f64, hi: f64) -> (f64, f64, f64) {
    let n = f64::from(L * L);
    let start = -2.0 * n - 0.5;
    let p = r.energy_distribution(beta, start, width);
    let e_of = |k: usize| (start + (k as f64 + 0.5) * width) / n;
    let inside: Vec<usize> = (0..p.len()).filter(|&k| (lo..=hi).contains(&e_of(k))).collect();
    let valley = *inside.iter().min_by(|&&a, &&b| p[a].total_cmp(&p[b])).unwrap();
    let mode = |ks: &mut dyn Iterator<Item = usize>| ks.max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    let o = mode(&mut (0..valley));
    let d = mode(&mut (valley + 1..p.len()));
    (e_of(o), e_of(d), start + (valley as f64 + 0.5) * width)
}

fn run(q: usize, beta_max: f64, production_sweeps: usize, seed: u64) -> (MucaRun, f64) {
    let model = LatticePotts::new(L, L, q).unwrap();
    let opts = MucaOptions {
        tau_lo: 1.0 / beta_max,
        walkers: 4,
        pilot_sweeps: 500,
        production_sweeps,
        resamples: 40,
        ..MucaOptions::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t = Instant::now();
    let run = run_multicanonical(&model, &|_: &[u8]| 0.0, &opts, &mut rng).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("q = {q}: {:?}\n{secs:.1} s", run.diagnostics);
    (run, secs)
}

#[test]
#[ignore = "two to four minutes in the test profile"]
fn q10_on_16x16_has_baxters_transition_and_the_finite_size_c_peak() {
    let b = baxter(10).unwrap();
    let n = f64::from(L * L);
    let (run, _) = run(10, 1.5, 400_000, 10);
    let d = &run.diagnostics;
    let r = &run.reweighting;
    let predicted_c = b.beta_t - 10f64.ln() / (n * b.latent_heat());
    assert!((predicted_c - 1.41314).abs() < 1e-5);
    let cut0 = 0.5 * (b.e_ordered + b.e_disordered) * n;
    let stat = |r: &MucaReweighting, _: Resample| -> Vec<f64> {
        let bc = c_max(r, 1.38, 1.46);
        let beq = equal_weight(r, cut0, 10.0, 1.38, 1.48);
        vec![bc, beq]
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (est, se) = run.bootstrap(30, &mut rng, &stat);
    let (bc, beq) = (est[0], est[1]);
    // The cut at the valley of the law at the equal-weight point, then the point again.
    let (_, _, cut) = peaks(r, beq, 2.0, -1.5, -1.1);
    let beq2 = equal_weight(r, cut, 10.0, 1.38, 1.48);
    let (eo, ed, _) = peaks(r, beq2, 2.0, -1.5, -1.1);
    println!(
        "q = 10, L = 16: β_Cmax = {bc:.5} ± {:.5} (predicted {predicted_c:.5}); equal weight β = {beq:.5} ± {:.5} \
         (cut at the midpoint), {beq2:.5} (cut at the valley {:.3}/site), β_t = {:.5}; peaks e_o = {eo:.4} \
         (Baxter {:.6}), e_d = {ed:.4} (Baxter {:.6})",
        se[0],
        se[1],
        cut / n,
        b.beta_t,
        b.e_ordered,
        b.e_disordered
    );
    assert!(d.ok, "{d:?}");
    assert!((bc - predicted_c).abs() < 4.0 * se[0] + 1.5e-3, "β_Cmax {bc} ± {}", se[0]);
    assert!((beq - b.beta_t).abs() < 4.0 * se[1] + 2e-3, "β_eqw {beq} ± {}", se[1]);
    assert!((beq2 - b.beta_t).abs() < 4.0 * se[1] + 2e-3, "β_eqw {beq2} ± {}", se[1]);
    // Measured at L = 16: the modes sit outward of Baxter's values by ≈ 18/L² (the mixed
    // states of the shallow valley, e^{−2σL} ≈ 0.2 of the peaks at q = 10, skew each peak
    // toward the middle, pulling its mean in and leaving the mode outside); 0.1 = 25.6/L².
    assert!((eo - b.e_ordered).abs() < 0.1 && (ed - b.e_disordered).abs() < 0.1, "{eo} {ed}");
    assert!(eo < b.e_ordered && ed > b.e_disordered, "the modes lie outward: {eo} {ed}");
}

/// At q = 20 the barrier between the phases is high (the law at β_t has a valley ~e^{−2σL}
/// deep): multicanonical walkers should cross it (tempering's side is the next test).
///
/// Measured (seed 20, 10⁶ production sweeps per walker, end zones of 5 % of the window):
/// flat weights (production flatness 0.54), round trips 17, 18, 19, 16 (0.068 per million
/// updates; tempering makes 0.020), R̂ of ln g 0.99, equal-weight β = 1.69989 ± 0.00051
/// against β_t = 1.699669 (0.4 s.e.), peaks −1.826 and −0.584 per site against Baxter's
/// −1.8207 and −0.6265 (the 1/L² shifts of the q = 10 test); about four minutes on 2 cores.
/// At 4·10⁵ sweeps the walkers made 8, 8, 8, 5 round trips: τ_int is about 10⁴ sweeps, and
/// each walker must make 10.
#[test]
#[ignore = "about four minutes in the test profile"]
fn q20_on_16x16_multicanonical_walkers_tunnel_and_tempering_does_not() {
    let b = baxter(20).unwrap();
    let n = f64::from(L * L);
    let beta_max = 1.8;
    let (run, secs) = run(20, beta_max, 1_000_000, 20);
    let d = run.diagnostics.clone();
    let r = &run.reweighting;
    let cut0 = 0.5 * (b.e_ordered + b.e_disordered) * n;
    let stat = |r: &MucaReweighting, _: Resample| -> Vec<f64> { vec![equal_weight(r, cut0, 20.0, 1.6, 1.8)] };
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (est, se) = run.bootstrap(30, &mut rng, &stat);
    let (_, _, cut) = peaks(r, est[0], 2.0, -1.6, -0.8);
    let beq2 = equal_weight(r, cut, 20.0, 1.6, 1.8);
    let (eo, ed, _) = peaks(r, beq2, 2.0, -1.6, -0.8);
    let muca_trips: u64 = d.round_trips.iter().sum();
    let per_million = |trips: u64, updates: f64| trips as f64 / (updates / 1e6);
    println!(
        "q = 20, L = 16: equal-weight β = {:.5} ± {:.5} (cut at the midpoint), {beq2:.5} (cut at the valley \
         {:.3}/site), β_t = {:.6}; peaks e_o = {eo:.4} (Baxter {:.6}), e_d = {ed:.4} (Baxter {:.6}); \
         multicanonical round trips {:?} = {:.3} per million updates ({} updates, {secs:.0} s with the weight iteration)",
        est[0],
        se[0],
        cut / n,
        b.beta_t,
        b.e_ordered,
        b.e_disordered,
        d.round_trips,
        per_million(muca_trips, d.production_updates as f64),
        d.production_updates
    );

    assert!(d.min_round_trips() >= 10, "{d:?}");
    assert!((est[0] - b.beta_t).abs() < 4.0 * se[0] + 2e-3, "β_eqw {} ± {}", est[0], se[0]);
    assert!((beq2 - b.beta_t).abs() < 4.0 * se[0] + 2e-3, "β_eqw {beq2} ± {}", se[0]);
    assert!((eo - b.e_ordered).abs() < 0.1 && (ed - b.e_disordered).abs() < 0.1, "{eo} {ed}");
}

/// Parallel tempering on the q = 20, 16×16 lattice, from β = 0 across β_t to 1.8 on a placed
/// ladder, for 2·10⁸ single-site updates (a fifth of the multicanonical production above;
/// the round trips per million updates are what compare):
/// round trips β = 0 ↔ β_max need a configuration to pass from the disordered phase to the
/// ordered one, across a valley ~e^{−2σL} deep, and they essentially do not happen.
#[test]
#[ignore = "a few minutes in the test profile"]
fn q20_on_16x16_tempering_across_the_transition_does_not_tunnel() {
    use taustar_science::mc::replica::Replica;
    use taustar_science::mc::tempering::{place_ladder, Tempering};
    let b = baxter(20).unwrap();
    let n = f64::from(L * L);
    let beta_max = 1.8;
    let cut = 0.5 * (b.e_ordered + b.e_disordered) * n;
    let per_million = |trips: u64, updates: f64| trips as f64 / (updates / 1e6);
    let updates = 2.048e8;
    // Tempering from β = 0 to the same β_max, on a placed ladder, for as many updates.
    let model = LatticePotts::new(L, L, 20).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let t = Instant::now();
    let betas = place_ladder(&model, beta_max, 200, &mut rng).expect("a ladder");
    let rungs = betas.len();
    let steps = (updates / (rungs as f64 * n)) as usize;
    let mut pt = Tempering::new(&model, betas.clone(), &mut rng);
    // Which phase each rung's configuration is in, to count crossings of the valley too.
    let mut crossings = 0u64;
    let mut phase: Vec<bool> = (0..rungs).map(|k| pt.rung(k).energy() < cut).collect();
    let mut at_top_ordered = 0u64;
    for _ in 0..steps {
        pt.step(&mut rng);
        for (k, p) in phase.iter_mut().enumerate() {
            let now = pt.rung(k).energy() < cut;
            if now != *p && k == rungs - 1 {
                crossings += 1;
            }
            *p = now;
        }
        at_top_ordered += u64::from(phase[rungs - 1]);
    }
    let acc = pt.swap_acceptance();
    let min_acc = acc.iter().copied().fold(f64::INFINITY, f64::min);
    let pt_updates = (steps * rungs) as f64 * n;
    println!(
        "tempering: {rungs} rungs, smallest swap acceptance {min_acc:.4}, {steps} steps = {pt_updates:.3e} updates, \
         {} round trips β = 0 ↔ {beta_max} = {:.3} per million updates; phase changes of the β_max rung {crossings}; \
         β_max rung ordered {:.2} of the time; {:.0} s",
        pt.round_trips(),
        per_million(pt.round_trips(), pt_updates),
        at_top_ordered as f64 / steps as f64,
        t.elapsed().as_secs_f64()
    );
    // Measured: 4 round trips in 2.048·10⁸ updates (0.02 per million), against 0.17 per
    // million for the multicanonical walkers at q = 10.
    assert!(pt.round_trips() <= 10, "{} round trips", pt.round_trips());
}
