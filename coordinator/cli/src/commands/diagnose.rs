//! `taustar diagnose`: the temperature curves of a Potts model a user already has (trained by
//! adabmDCA, bmDCA, plmDCA or taustar), with standard errors — no truth needed
//! (docs/spec.md §10, "diagnose").
//!
//! Sampled by parallel tempering and MBAR ([`taustar_science::mc::curves`]), it reports S(τ), ⟨E⟩(τ)
//! and C(τ) with the heat-capacity peak (where the model orders: sampling well below it
//! freezes the model into few sequences). Given held-out natural sequences, it adds the
//! held-out log-likelihood per sequence ℓ(τ) and the *energy-match* τ, where the model's
//! mean energy equals the held-out sequences' — ℓ's maximum, and τ*_fwd when the held-out
//! sequences stand in for the unknown truth. That is the data-driven answer to "at what
//! temperature should I sample this model?" for the forward (coverage) criterion.
//!
//! With `--heldout-identity θ` the held-out sequences are weighted as DCA weights training
//! sequences (1/N_m, N_m the held-out sequences above identity θ with m, m included), so a
//! sub-family with many near-copies among the held-out sequences counts once instead of
//! pulling the held-out mean energy, and with it the energy-match τ, towards itself.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use report::plot::diagnose::{draw_diagnose, DiagnoseFigure, DiagnosePoint};
use taustar_science::mc::curves::{
    model_curves_multicanonical, model_curves_reporting, HeldOut, ModelCurves,
};
use taustar_science::mc::estimate::{McOptions, McProgress};
use taustar_science::mc::multicanonical::MucaOptions;
use taustar_science::potts::{
    read_alignment_file, read_params_file, reweight, Alignment, AlignmentFormat, Alphabet, PottsModel,
};

use super::cell::parse_pair;
use super::table::emit;

/// Arguments of `taustar diagnose`.
///
/// Examples:
///   taustar diagnose --model params.dat
///   taustar diagnose --model params.dat --msa heldout.fasta --out diagnosis/
///   taustar diagnose --model rna.dat --alphabet rna --msa test.sto --json
///   taustar diagnose --model params.dat --msa heldout.fasta --heldout-identity 0.8
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model, in adabmDCA's text format (`J i j a b value` / `h i a value`; a coupling
    /// not listed is zero).
    #[arg(long)]
    pub model: PathBuf,
    /// The model's alphabet: protein (-ACDEFGHIKLMNPQRSTVWY), rna (-ACGU), dna (-ACGT), or
    /// the symbols themselves in state order.
    #[arg(long, default_value = "protein")]
    pub alphabet: String,
    /// Held-out sequences (FASTA, A2M or Stockholm, aligned to the model's columns): adds
    /// the held-out log-likelihood per sequence against τ and the energy-match τ.
    #[arg(long)]
    pub msa: Option<PathBuf>,
    /// Format of --msa [default: from its extension (.sto/.stk Stockholm, .a2m A2M), else
    /// FASTA].
    #[arg(long, value_parser = ["fasta", "a2m", "stockholm"])]
    pub msa_format: Option<String>,
    /// Weight the held-out sequences of --msa at this identity threshold (0.8 is adabmDCA's
    /// and plmDCA's): each gets 1/N_m, N_m the held-out sequences with identity above it,
    /// so clusters of near-copies count once in the held-out mean energy. Reports their
    /// M_eff. [default: unweighted]
    #[arg(long, requires = "msa", allow_negative_numbers = true)]
    pub heldout_identity: Option<f64>,
    /// Write diagnose.json, diagnose.png and diagnose.svg into this directory (created if
    /// missing).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Comma-separated τ values of the reported curve [default: 25 log-spaced values over
    /// --tau-bounds, plus 1].
    #[arg(long, value_delimiter = ',')]
    pub tau: Vec<f64>,
    /// Range LO:HI of τ the ladder covers (it runs to β = 1/LO; its length grows with it).
    #[arg(long, value_parser = parse_pair, default_value = "0.2:5")]
    pub tau_bounds: (f64, f64),
    /// The random seed (the same seed gives the same numbers on any machine).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Parallel-tempering steps recorded, all ladders together (each a sweep of every rung).
    #[arg(long, default_value_t = McOptions::default().steps)]
    pub steps: usize,
    /// Independent ladders (R̂ compares them when there are two or more).
    #[arg(long, default_value_t = McOptions::default().ladders)]
    pub ladders: usize,
    /// Bootstrap resamples behind every standard error (at least 200).
    #[arg(long, default_value_t = McOptions::default().resamples)]
    pub resamples: usize,
    /// How to sample the model: `tempering` (a placed β ladder, MBAR between the rungs) or
    /// `multicanonical` (walkers whose weights flatten the energy histogram: for a model
    /// that orders abruptly inside the range, where tempering fails its swap acceptance or
    /// R̂ at the cold end).
    #[arg(long, default_value = "tempering", value_parser = parse_sampler)]
    pub sampler: taustar_common::Sampler,
    /// multicanonical: production sweeps per walker (4 walkers).
    #[arg(long, default_value_t = taustar_common::McmcSettings::default().production_sweeps)]
    pub production_sweeps: u32,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_sampler(s: &str) -> Result<taustar_common::Sampler, String> {
    s.parse()
}

/// Run `taustar diagnose`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = options(&args)?;
    let alphabet =
        Alphabet::named(&args.alphabet).with_context(|| format!("--alphabet {}", args.alphabet))?;
    let model = read_params_file(&args.model, &alphabet)?;
    let heldout = match &args.msa {
        Some(path) => Some(heldout_energies(
            &model,
            &alphabet,
            path,
            args.msa_format.as_deref(),
            args.heldout_identity,
        )?),
        None => None,
    };
    let taus = if args.tau.is_empty() { default_taus(args.tau_bounds) } else { args.tau.clone() };
    let opts = McOptions { curve: taus.clone(), ..opts };
    let started = Instant::now();
    let curves = {
        let bar = progress_bar();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
        let heldout =
            heldout.as_ref().map(|h| HeldOut { energies: &h.energies, weights: h.weights.as_deref() });
        let mut progress = |p| match p {
            McProgress::LadderPlaced { rungs } => bar.set_message(format!("ladder of {rungs} rungs placed")),
            McProgress::Steps { done, total } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
            McProgress::Bootstrap => bar.set_message("bootstrapping the error bars"),
        };
        let c = match args.sampler {
            taustar_common::Sampler::Tempering => {
                model_curves_reporting(&model, &taus, heldout, &opts, &mut rng, &mut progress)
            }
            taustar_common::Sampler::Multicanonical => {
                bar.set_message("multicanonical weights and production");
                let muca = multicanonical_options(&args)?;
                model_curves_multicanonical(&model, &taus, heldout, &opts, &muca, &mut rng, &mut progress)
                    .with_context(|| format!("--sampler multicanonical on {}", args.model.display()))?
            }
        };
        bar.finish_and_clear();
        c
    };
    let report = to_json(&args, &model, heldout.as_ref(), &curves, started.elapsed().as_secs_f64());
    if let Some(dir) = &args.out {
        write_outputs(dir, &report, &curves, &args)?;
    }
    if args.json {
        emit(&(serde_json::to_string_pretty(&report).context("serialising the report")? + "\n"))
    } else {
        emit(&table(&model, heldout.as_ref(), &curves))
    }
}

/// The multicanonical sampler's options from the flags (checked as a study's `[mcmc]` would
/// be, the error naming the flag).
fn multicanonical_options(args: &Args) -> anyhow::Result<MucaOptions> {
    let mcmc = taustar_common::McmcSettings {
        sampler: taustar_common::Sampler::Multicanonical,
        production_sweeps: args.production_sweeps,
        ..taustar_common::McmcSettings::default()
    };
    mcmc.validate().map_err(super::cell::flag_error)?;
    Ok(taustar_common::compute::muca_options(&mcmc))
}

/// The Monte Carlo options from the flags; the error names the bad flag and value.
fn options(args: &Args) -> anyhow::Result<McOptions> {
    let (lo, hi) = args.tau_bounds;
    if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo < hi) {
        anyhow::bail!("invalid --tau-bounds {lo}:{hi}: need 0 < LO < HI, both finite");
    }
    if let Some(t) = args.tau.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
        anyhow::bail!("invalid --tau {t}: every τ must be a finite number > 0");
    }
    if let Some(t) = args.heldout_identity {
        if !(0.0..1.0).contains(&t) {
            anyhow::bail!("invalid --heldout-identity {t}: need 0 <= θ < 1 (0.8 is the usual threshold)");
        }
    }
    if args.steps < 100 {
        anyhow::bail!("invalid --steps {}: need at least 100", args.steps);
    }
    if args.ladders == 0 || args.ladders > args.steps / 50 {
        anyhow::bail!("invalid --ladders {}: need 1 to --steps/50 = {}", args.ladders, args.steps / 50);
    }
    if args.resamples < taustar_common::cell::MIN_RESAMPLES as usize {
        anyhow::bail!(
            "invalid --resamples {}: need at least {}",
            args.resamples,
            taustar_common::cell::MIN_RESAMPLES
        );
    }
    Ok(McOptions {
        tau_bounds: args.tau_bounds,
        steps: args.steps,
        burn_in: args.steps / 10,
        resamples: args.resamples,
        ladders: args.ladders,
        // One model and every core free: the ladders run side by side, each on its own
        // stream (the same numbers on any thread count).
        parallel_ladders: true,
        ..McOptions::default()
    })
}

/// 25 log-spaced τ over the bounds, and τ = 1 (the model as trained) when inside.
fn default_taus((lo, hi): (f64, f64)) -> Vec<f64> {
    let mut t: Vec<f64> = (0..25).map(|i| lo * (hi / lo).powf(i as f64 / 24.0)).collect();
    if (lo..=hi).contains(&1.0) && !t.contains(&1.0) {
        t.push(1.0);
        t.sort_by(f64::total_cmp);
    }
    t
}

/// The held-out sequences as diagnose uses them.
struct Heldout {
    /// Their energies under the model.
    energies: Vec<f64>,
    /// Their weights at `--heldout-identity`, if given.
    weights: Option<Vec<f64>>,
    /// Σ of the weights (the number of sequences when unweighted).
    meff: f64,
}

/// The model energies of the held-out sequences, weighted at `identity` if given. The
/// alignment must have the model's length; its alphabet is the model's.
fn heldout_energies(
    model: &PottsModel,
    alphabet: &Alphabet,
    path: &Path,
    format: Option<&str>,
    identity: Option<f64>,
) -> anyhow::Result<Heldout> {
    let msa = read_msa_for(model, alphabet, path, format)?;
    let energies: Vec<f64> = msa.sequences().map(|s| model.energy(s)).collect();
    let (weights, meff) = match identity {
        Some(t) => {
            let w = reweight(&msa, t).with_context(|| format!("--heldout-identity {t}"))?;
            (Some(w.weights), w.neff)
        }
        None => (None, energies.len() as f64),
    };
    Ok(Heldout { energies, weights, meff })
}

/// An input alignment and how to read it: the flags `taustar fit` and `taustar split` share.
#[derive(clap::Args, Debug)]
pub struct AlignmentArgs {
    /// The alignment (FASTA, A2M or Stockholm): one site per match column, insert columns
    /// dropped.
    #[arg(long)]
    pub msa: PathBuf,
    /// Format of --msa [default: from its extension (.sto/.stk Stockholm, .a2m A2M), else
    /// FASTA].
    #[arg(long, value_parser = ["fasta", "a2m", "stockholm"])]
    pub msa_format: Option<String>,
    /// The alphabet: protein (-ACDEFGHIKLMNPQRSTVWY), rna (-ACGU), dna (-ACGT), or the symbols
    /// themselves in state order. A fitted model is written in its letters.
    #[arg(long, default_value = "protein", allow_hyphen_values = true)]
    pub alphabet: String,
}

impl AlignmentArgs {
    /// The alphabet and the alignment read with it.
    pub(crate) fn read(&self) -> anyhow::Result<(Alphabet, Alignment)> {
        let alphabet =
            Alphabet::named(&self.alphabet).with_context(|| format!("--alphabet {}", self.alphabet))?;
        let msa = read_msa(&alphabet, &self.msa, self.msa_format.as_deref())?;
        Ok((alphabet, msa))
    }
}

/// The alignment at `path` (`format` by name, else from the extension, else FASTA).
pub(crate) fn read_msa(alphabet: &Alphabet, path: &Path, format: Option<&str>) -> anyhow::Result<Alignment> {
    let format = match format {
        Some(f) => AlignmentFormat::named(f)?,
        None => AlignmentFormat::from_path(path).unwrap_or(AlignmentFormat::Fasta),
    };
    Ok(read_alignment_file(path, format, alphabet)?)
}

/// The alignment at `path` ([`read_msa`]) read with the model's alphabet; an error unless
/// its sequences have the model's length.
pub(crate) fn read_msa_for(
    model: &PottsModel,
    alphabet: &Alphabet,
    path: &Path,
    format: Option<&str>,
) -> anyhow::Result<Alignment> {
    let msa = read_msa(alphabet, path, format)?;
    if msa.length() != model.n() {
        anyhow::bail!(
            "--msa {}: sequences of {} columns, but the model --model has {} sites",
            path.display(),
            msa.length(),
            model.n()
        );
    }
    Ok(msa)
}

/// A bar on a terminal; nothing otherwise (a batch job's stderr is a file).
fn progress_bar() -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(4)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(1), target);
    if let Ok(style) =
        ProgressStyle::with_template("[{elapsed_precise}] {wide_bar:.cyan/blue} {pos}/{len} steps  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("placing the ladder");
    bar
}

fn with_se(v: taustar_science::mc::estimate::WithSe) -> serde_json::Value {
    serde_json::json!({ "value": v.value, "se": v.se })
}

/// The report as JSON: inputs, results with standard errors, diagnostics, the curve.
fn to_json(
    args: &Args,
    model: &PottsModel,
    heldout: Option<&Heldout>,
    c: &ModelCurves,
    seconds: f64,
) -> serde_json::Value {
    let curve: Vec<serde_json::Value> = c
        .points
        .iter()
        .map(|p| {
            serde_json::json!({
                "tau": p.tau,
                "log_z": p.log_z.value, "log_z_se": p.log_z.se,
                "mean_energy": p.mean_energy.value, "mean_energy_se": p.mean_energy.se,
                "entropy": p.entropy.value, "entropy_se": p.entropy.se,
                "heat_capacity": p.heat_capacity.value, "heat_capacity_se": p.heat_capacity.se,
                "heldout_log_likelihood": p.heldout_log_likelihood.map(|l| l.value),
                "heldout_log_likelihood_se": p.heldout_log_likelihood.map(|l| l.se),
            })
        })
        .collect();
    let v = serde_json::json!({
        "model": args.model.display().to_string(),
        "sites": model.n(),
        "states": model.q(),
        "msa": args.msa.as_ref().map(|p| p.display().to_string()),
        "heldout_sequences": heldout.map(|h| h.energies.len()),
        "heldout_identity": args.heldout_identity,
        "heldout_meff": heldout.map(|h| h.meff),
        "seed": args.seed,
        "sampler": args.sampler.name(),
        "steps": args.steps,
        "tau_bounds": [args.tau_bounds.0, args.tau_bounds.1],
        "heat_peak_tau": with_se(c.heat_peak_tau),
        "heat_peak": with_se(c.heat_peak),
        "heat_peak_at_bound": c.heat_peak_at_bound,
        "heldout_mean_energy": c.heldout_mean_energy.map(with_se),
        "energy_match_tau": c.energy_match_tau.map(with_se),
        "energy_match_at_bound": c.energy_match_tau.map(|_| c.energy_match_at_bound),
        "seconds": seconds,
    });
    let mut v = super::table::with_diagnostics(v, &c.diagnostics);
    v["curve"] = serde_json::Value::Array(curve);
    v
}

/// diagnose.json, diagnose.png and diagnose.svg in `dir`.
fn write_outputs(dir: &Path, report: &serde_json::Value, c: &ModelCurves, args: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating --out {}", dir.display()))?;
    let json = dir.join("diagnose.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    let name =
        args.model.file_name().map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned());
    let fig = DiagnoseFigure {
        title: format!("taustar diagnose: {name}"),
        subtitle: format!(
            "N = {}, q = {}; {}{}",
            report["sites"],
            report["states"],
            match report["heldout_sequences"].as_u64() {
                Some(n) => format!("{n} held-out sequences; "),
                None => String::new(),
            },
            if c.diagnostics.ok {
                "diagnostics passed".to_string()
            } else {
                format!("DIAGNOSTICS FAILED: {}", c.diagnostics.note.as_deref().unwrap_or(""))
            }
        ),
        points: c
            .points
            .iter()
            .map(|p| DiagnosePoint {
                tau: p.tau,
                mean_energy: p.mean_energy.value,
                mean_energy_se: p.mean_energy.se,
                entropy: p.entropy.value,
                entropy_se: p.entropy.se,
                heat_capacity: p.heat_capacity.value,
                heat_capacity_se: p.heat_capacity.se,
                heldout_log_likelihood: p.heldout_log_likelihood.map(|l| (l.value, l.se)),
            })
            .collect(),
        heat_peak_tau: (c.heat_peak_tau.value, c.heat_peak_tau.se),
        heldout_mean_energy: c.heldout_mean_energy.map(|e| (e.value, e.se)),
        energy_match_tau: c.energy_match_tau.map(|t| (t.value, t.se)),
    };
    for ext in ["png", "svg"] {
        let path = dir.join(format!("diagnose.{ext}"));
        draw_diagnose(&fig, &path).with_context(|| format!("drawing {}", path.display()))?;
    }
    Ok(())
}

/// The human-readable report.
fn table(model: &PottsModel, heldout: Option<&Heldout>, c: &ModelCurves) -> String {
    let d = &c.diagnostics;
    let mut t = format!("model             N = {} sites, q = {} states\n", model.n(), model.q());
    let pm = |w: taustar_science::mc::estimate::WithSe| format!("{:.4} ± {:.4}", w.value, w.se);
    t += &format!(
        "heat peak         C = {} at τ = {}{}\n",
        pm(c.heat_peak),
        pm(c.heat_peak_tau),
        if c.heat_peak_at_bound { " (at the range's end: widen --tau-bounds)" } else { "" }
    );
    if let (Some(e), Some(m)) = (c.heldout_mean_energy, c.energy_match_tau) {
        if let Some(h) = heldout {
            t += &format!("held-out          {} sequences, M_eff {:.1}\n", h.energies.len(), h.meff);
        }
        t += &format!("held-out energy   {}\n", pm(e));
        t += &format!(
            "energy-match τ    {}{}\n",
            pm(m),
            if c.energy_match_at_bound { " (at the range's end: widen --tau-bounds)" } else { "" }
        );
    }
    let verdict =
        if d.ok { "passed".to_string() } else { format!("FAILED: {}", d.note.as_deref().unwrap_or("")) };
    t += &match (d.walker_round_trips_min, d.flatness) {
        (Some(trips), Some(flat)) => format!(
            "diagnostics       {verdict}; multicanonical, fewest round trips of a walker {trips} ({} in all), \
             flatness {flat:.3}, R̂ of ln g {:.3}, τ_int {:.1} samples\n",
            d.round_trips, d.r_hat, d.tau_int
        ),
        _ => format!(
            "diagnostics       {verdict}; {} rungs, smallest swap acceptance {}, {} round trips, R̂ {:.3}, τ_int {:.1} steps\n",
            d.rungs,
            d.min_swap_acceptance.map_or("none".to_string(), |a| format!("{a:.3}")),
            d.round_trips,
            d.r_hat,
            d.tau_int
        ),
    };
    if !d.ok {
        t += &match d.equilibrated_tau_lo {
            Some(lo) => format!(
                "equilibrated      every rung down to τ = {lo:.4} passed on its own: trust the curves above it only\n"
            ),
            None => "equilibrated      no rung passed on its own: trust none of the curves\n".to_string(),
        };
    }
    let heldout = c.heldout_mean_energy.is_some();
    t += "\n       tau          <E>    ± s.e.          S    ± s.e.          C    ± s.e.";
    t += if heldout { "   held-out ll    ± s.e.\n" } else { "\n" };
    for p in &c.points {
        t += &format!(
            "{:>10.4} {:>12.4} {:>9.4} {:>10.4} {:>9.4} {:>10.4} {:>9.4}",
            p.tau,
            p.mean_energy.value,
            p.mean_energy.se,
            p.entropy.value,
            p.entropy.se,
            p.heat_capacity.value,
            p.heat_capacity.se
        );
        if let Some(l) = p.heldout_log_likelihood {
            t += &format!(" {:>13.4} {:>9.4}", l.value, l.se);
        }
        t += "\n";
    }
    t
}
