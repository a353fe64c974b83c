//! The entropy S(p) of the nearest-neighbour Ising truth on a torus (Kaufman's exact
//! finite-size ln Z minus ⟨ln w⟩), as CSV: what turns a data size M into μ = ln M − S(p)
//! when studies of different lattice sizes are compared (docs/figures/ising-sizes).
//!
//! cargo run --release -p taustar-common --example truth_entropy -- 4x4,8x8,16x16 1.5,2,2.27,2.5,3,3.5

use taustar_science::model::kaufman;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: truth_entropy ROWSxCOLS[,…] T[,…]";
    let lattices: Vec<(u32, u32)> = args
        .get(1)
        .expect(usage)
        .split(',')
        .map(|l| {
            let (r, c) = l.split_once('x').expect(usage);
            (r.parse().expect(usage), c.parse().expect(usage))
        })
        .collect();
    let temps: Vec<f64> = args.get(2).expect(usage).split(',').map(|t| t.parse().expect(usage)).collect();
    println!("lattice,temperature,entropy,entropy_per_site");
    for &(r, c) in &lattices {
        for &t in &temps {
            let (Some(ln_z), Some(mean_ln_w)) =
                (kaufman::log_partition(r, c, t), kaufman::mean_log_weight(r, c, t))
            else {
                eprintln!("{r}x{c} at T = {t}: no closed form (sides must be >= 3, T > 0)");
                std::process::exit(2);
            };
            let s = ln_z - mean_ln_w;
            println!("{r}x{c},{t},{s},{}", s / f64::from(r * c));
        }
    }
}
