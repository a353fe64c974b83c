//! Where the time of one cell past enumeration goes: drawing the data from the truth chain,
//! the fit, the truth's side, and the Monte Carlo evaluation (the same steps and settings as
//! `taustar cell --fit plm|bml --eval mcmc`, with the default `[mcmc]` settings).
//!
//! cargo run --release -p taustar-common --example cell_split -- 16 1000 plm

use std::time::Instant;

use rand::SeedableRng;
use taustar_common::cell::{CellSettings, McmcSettings, MCMC_DEFAULT_TAU_BOUNDS};
use taustar_science::fit::bml::{fit_bml, moments, BmlOptions, DEFAULT_BML};
use taustar_science::fit::plm::{fit_plm, PlmOptions, DEFAULT_MEMORY};
use taustar_science::mc::model::SpinModel;
use taustar_science::model::ising::Pairs;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let side: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(8);
    let m: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let fit = args.get(3).map_or("plm", String::as_str);
    let (t, l2) = (2.5, 0.01);
    let n = (side * side) as usize;
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(1);
    let truth = SpinModel::torus(side, side, 1.0 / t);

    let t0 = Instant::now();
    let data = taustar_science::mc::data::sample_chain(&truth, m, &mut rng);
    let t_data = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let couplings = if fit == "bml" {
        let (pair, mean) = moments(n, &data.states, &vec![1.0; m]);
        fit_bml(n, (&pair, &mean), BmlOptions { l2, ..DEFAULT_BML }, &mut rng).couplings
    } else {
        let opts =
            PlmOptions { l2, max_iter: 15_000, grad_tol: 1e-7, coupling_cap: 20.0, memory: DEFAULT_MEMORY };
        fit_plm(n, &data.states, &vec![1.0; m], opts).couplings
    };
    let t_fit = t0.elapsed().as_secs_f64();

    let q = SpinModel::from_pairs(&Pairs::new_without_masks(n as u32), &couplings);
    let mcmc = McmcSettings::default();
    let t0 = Instant::now();
    let (side_p, series, _) =
        taustar_science::mc::truth::torus_truth_side(side, side, t, &q, mcmc.truth_steps as usize, &mut rng)
            .expect("sides >= 3");
    let t_truth = t0.elapsed().as_secs_f64();

    let settings = CellSettings {
        tau_bounds: MCMC_DEFAULT_TAU_BOUNDS,
        mcmc: Some(mcmc.clone()),
        ..CellSettings::default()
    };
    let t0 = Instant::now();
    let e_p = |s: &[i8]| truth.energy(s);
    let (report, mc) =
        taustar_common::compute::mcmc_analysis(&q, &e_p, side_p, Some(&series), &mcmc, &settings, &mut rng)
            .expect("a model tempering can sample");
    let t_eval = t0.elapsed().as_secs_f64();

    let total = t_data + t_fit + t_truth + t_eval;
    println!(
        "{side}x{side}, M = {m}, {fit}: τ*_rev = {:.4} ± {:.4}",
        report.summary.tau_rev,
        mc.tau_rev_se.unwrap_or(f64::NAN)
    );
    for (what, s) in [
        ("data (truth chain, thinned)", t_data),
        ("fit", t_fit),
        ("truth side (Kaufman + chain)", t_truth),
        ("evaluation (tempering, MBAR, bootstrap)", t_eval),
    ] {
        println!("  {what:<42} {s:>8.2} s  {:>5.1} %", 100.0 * s / total);
    }
    println!("  {:<42} {total:>8.2} s", "total");
}
