//! The study file's document walk: every key is checked against the format, every value
//! is parsed with its span, and every grid point is validated with the line of each value
//! it was built from, so an error can say where the user wrote the bad value.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::axis::{axis_values, integer, number, Domain, Sourced};
use super::error::{At, StudyError};
use super::source::Doc;
use super::{DefaultedSettings, Study, MAX_CELLS, MAX_GRID_POINTS};
use crate::cell::{
    CellSettings, CellSpec, CurveOutput, DataSize, FitMode, FitSpec, GridPoint, McmcSettings, TruthSpec,
    MCMC_DEFAULT_TAU_BOUNDS,
};
use crate::error::SpecError;

type Item<'i> = Spanned<DeValue<'i>>;

const TOP_KEYS: &[&str] =
    &["name", "description", "seed", "replicates", "truth", "data", "fit", "tau", "eval", "mcmc"];
const TWO_LEVEL_KEYS: &[&str] = &["kind", "states", "low_states", "gap"];
const ISING_KEYS: &[&str] = &["kind", "lattice", "temperature"];
const POTTS_FILE_KEYS: &[&str] = &["kind", "model", "alphabet"];
const POTTS_RANDOM_KEYS: &[&str] =
    &["kind", "sites", "states", "coupling_strength", "field_strength", "contact_fraction", "family_seed"];
const DATA_KEYS: &[&str] = &["samples", "mu"];
const FIT_KEYS: &[&str] =
    &["mode", "l2", "max_iter", "rel_tol", "coupling_cap", "pearson_target", "max_sweeps"];
const TAU_KEYS: &[&str] = &["grid", "bounds", "curves"];
const TAU_GRID_KEYS: &[&str] = &["from", "to", "count"];
const EVAL_KEYS: &[&str] = &["method"];
const MCMC_KEYS: &[&str] = &[
    "steps",
    "burn_in",
    "pilot_sweeps",
    "resamples",
    "ladders",
    "target_se",
    "max_steps",
    "min_swap_acceptance",
    "min_round_trips",
    "max_r_hat",
    "truth_steps",
    "sampler",
    "walkers",
    "production_sweeps",
    "min_walker_round_trips",
];
const KINDS: &str = "expected \"two-level\", \"ising2d\", \"potts-random\" or \"potts-file\"";

/// Where a grid point's value came from: the field name [`GridPoint::validate`] uses, the
/// key path in the study file, and the value's span.
#[derive(Debug, Clone)]
struct Loc {
    field: &'static str,
    key: &'static str,
    span: Range<usize>,
    from_range: bool,
}

impl Loc {
    fn of<T>(field: &'static str, key: &'static str, v: &Sourced<T>) -> Loc {
        Loc { field, key, span: v.span.clone(), from_range: v.from_range }
    }
}

/// A swept value together with where it was written (`None` for a default).
struct Located<T> {
    value: T,
    loc: Option<Loc>,
}

/// Parse and expand a study file.
/// `base`: the directory relative paths in the file (a `potts-file` model) are read from; the
/// current directory when `None`.
pub(crate) fn parse_study(src: &str, base: Option<&std::path::Path>) -> Result<Study, StudyError> {
    let doc = Doc::new(src);
    let root = DeTable::parse(src).map_err(|e| doc.syntax(&e))?;
    let root = root.get_ref();
    check_keys(&doc, "", root, TOP_KEYS)?;

    let name = parse_name(&doc, root)?;
    if let Some(d) = root.get("description") {
        if d.get_ref().as_str().is_none() {
            return Err(doc.invalid("description", &d.span(), "expected a string"));
        }
    }
    let seed = parse_seed(&doc, root)?;
    let replicates = match root.get("replicates") {
        None => 1,
        Some(v) => {
            let r = integer(&doc, "replicates", v)?;
            u32::try_from(r).ok().filter(|&r| r >= 1).ok_or_else(|| {
                doc.invalid("replicates", &v.span(), "need an integer 1 <= replicates <= 2^32 - 1")
            })?
        }
    };

    let (truth_item, truth) = required_table(
        &doc,
        root,
        "truth",
        "the ground truth: kind = \"two-level\" or \"ising2d\" and its parameters",
    )?;
    let (data_item, data) =
        required_table(&doc, root, "data", "the data size: samples = ... (M) or mu = ... (docs/spec.md §3)")?;
    let fit = optional_table(&doc, root, "fit")?;
    let tau = optional_table(&doc, root, "tau")?;

    let truths = parse_truths(&doc, truth_item, truth, base)?;
    let sizes = parse_data(&doc, data_item, data)?;
    let is_two_level = matches!(truths, TruthAxes::TwoLevel { .. });
    let (modes, l2s) = parse_fit_axes(&doc, fit, is_two_level)?;
    let eval = Eval { eval: optional_table(&doc, root, "eval")?, mcmc: optional_table(&doc, root, "mcmc")? };
    let mut settings = parse_settings(&doc, fit, tau, eval, is_two_level)?;
    let has_fit_key = |k: &str| fit.is_some_and(|(_, t)| t.get(k).is_some());
    let defaulted = DefaultedSettings {
        max_iter: !has_fit_key("max_iter"),
        rel_tol: !has_fit_key("rel_tol"),
        curves: tau.is_none_or(|(_, t)| t.get("curves").is_none()),
    };
    if defaulted.curves && is_two_level {
        // A two-level cell costs ~10 µs, less than reading its 4 KB curve back.
        settings.curves = CurveOutput::Recompute;
    }

    // Check the size of the grid before building any of it.
    let mut lens = truths.lens();
    lens.extend([("data sizes", sizes.len()), ("fit modes", modes.len()), ("l2", l2s.len())]);
    let grid_points = lens.iter().fold(1u128, |acc, &(_, n)| acc.saturating_mul(n as u128));
    if grid_points > MAX_GRID_POINTS as u128 {
        let product: Vec<String> = lens.iter().map(|(what, n)| format!("{n} {what}")).collect();
        return Err(StudyError::Invalid {
            key: "grid".into(),
            value: format!("{} = {grid_points} grid points", product.join(" × ")),
            at: At(None),
            reason: format!(
                "more than {MAX_GRID_POINTS} grid points (they are held in memory while the study \
                 runs); split the study or check the ranges"
            ),
        });
    }
    let cells = grid_points * u128::from(replicates);
    if cells > u128::from(MAX_CELLS) {
        let span = root.get("replicates").map(|r| r.span());
        return Err(StudyError::Invalid {
            key: "replicates".into(),
            value: format!(
                "{replicates} ({grid_points} grid points × {replicates} replicates = {cells} cells)"
            ),
            at: At(span.map(|s| doc.line(&s))),
            reason: format!(
                "more than the sanity cap of {MAX_CELLS} cells, almost surely a mistake in a range; \
                 a study that large would not fit the study store, split it"
            ),
        });
    }

    let mut points = Vec::with_capacity(grid_points as usize);
    truths.try_for_each(|truth, truth_locs| {
        for size in &sizes {
            for mode in &modes {
                for l2 in &l2s {
                    let point = GridPoint {
                        truth: truth.clone(),
                        data: size.value,
                        fit: FitSpec { mode: mode.value, l2: l2.value },
                    };
                    let spec = CellSpec { study_seed: seed, point, replicate: 0, settings: settings.clone() };
                    if let Err(err) = spec.point.validate().and_then(|()| spec.validate()) {
                        let locs = truth_locs.iter().chain(&size.loc).chain(&l2.loc).chain(&mode.loc);
                        return Err(locate(&doc, err, locs));
                    }
                    let point = spec.point;
                    points.push(point);
                }
            }
        }
        Ok(())
    })?;
    Ok(Study { name, seed, replicates, settings, defaulted, points })
}

/// Turn a [`SpecError`] about field `f` into a [`StudyError`] at the key and line `f` came from.
fn locate<'a>(doc: &Doc<'_>, err: SpecError, mut locs: impl Iterator<Item = &'a Loc>) -> StudyError {
    let SpecError::Invalid { field, value, reason } = err;
    match locs.find(|l| l.field == field) {
        Some(loc) => {
            let value = if loc.from_range {
                format!("{value} (from the range {})", doc.text(&loc.span))
            } else {
                value
            };
            doc.invalid_value(loc.key, value, &loc.span, reason)
        }
        None => StudyError::Invalid { key: field, value, at: Default::default(), reason },
    }
}

fn check_keys(doc: &Doc<'_>, prefix: &str, table: &DeTable<'_>, allowed: &[&str]) -> Result<(), StudyError> {
    for (k, v) in table.iter() {
        let name: &str = k.get_ref();
        if !allowed.contains(&name) {
            let key = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
            return Err(doc.unknown(&key, &k.span(), &v.span(), allowed));
        }
    }
    Ok(())
}

fn as_table<'a, 'i>(doc: &Doc<'_>, key: &str, item: &'a Item<'i>) -> Result<&'a DeTable<'i>, StudyError> {
    item.get_ref()
        .as_table()
        .ok_or_else(|| doc.invalid(key, &item.span(), format!("expected a table [{key}]")))
}

fn required_table<'a, 'i>(
    doc: &Doc<'_>,
    root: &'a DeTable<'i>,
    key: &str,
    what: &str,
) -> Result<(&'a Item<'i>, &'a DeTable<'i>), StudyError> {
    let item =
        root.get(key).ok_or_else(|| doc.missing(key, None, format!("add a [{key}] table with {what}")))?;
    Ok((item, as_table(doc, key, item)?))
}

fn optional_table<'a, 'i>(
    doc: &Doc<'_>,
    root: &'a DeTable<'i>,
    key: &str,
) -> Result<Option<(&'a Item<'i>, &'a DeTable<'i>)>, StudyError> {
    root.get(key).map(|item| Ok((item, as_table(doc, key, item)?))).transpose()
}

fn parse_name(doc: &Doc<'_>, root: &DeTable<'_>) -> Result<String, StudyError> {
    let item = root
        .get("name")
        .ok_or_else(|| doc.missing("name", None, "every study needs a name, e.g. name = \"gap-sweep\""))?;
    let name =
        item.get_ref().as_str().ok_or_else(|| doc.invalid("name", &item.span(), "expected a string"))?;
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(doc.invalid(
            "name",
            &item.span(),
            "a name is 1 to 100 characters from A-Z a-z 0-9 - _ . (it names files and exports)",
        ));
    }
    Ok(name.to_string())
}

fn parse_seed(doc: &Doc<'_>, root: &DeTable<'_>) -> Result<u64, StudyError> {
    let item = root.get("seed").ok_or_else(|| {
        doc.missing(
            "seed",
            None,
            "a study needs an explicit seed (an integer >= 0) so that its random streams are \
             reproducible on purpose, e.g. seed = 2025",
        )
    })?;
    match item.get_ref() {
        DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| doc.invalid("seed", &item.span(), "need an integer 0 <= seed < 2^64")),
        _ => Err(doc.invalid("seed", &item.span(), "need an integer 0 <= seed < 2^64")),
    }
}

/// The swept values of the truth, per kind.
enum TruthAxes {
    TwoLevel {
        states: Vec<Sourced<f64>>,
        lows: Vec<Sourced<f64>>,
        gaps: Vec<Sourced<f64>>,
    },
    Ising {
        lattices: Vec<Sourced<(u32, u32)>>,
        temperatures: Vec<Sourced<f64>>,
    },
    /// sites, states, coupling_strength, field_strength, contact_fraction, family_seed.
    PottsRandom([Vec<Sourced<f64>>; 6]),
    /// One model file, read and named by its content.
    PottsFile(TruthSpec),
}

impl TruthAxes {
    fn lens(&self) -> Vec<(&'static str, usize)> {
        match self {
            TruthAxes::TwoLevel { states, lows, gaps } => {
                vec![("states", states.len()), ("low_states", lows.len()), ("gaps", gaps.len())]
            }
            TruthAxes::Ising { lattices, temperatures } => {
                vec![("lattices", lattices.len()), ("temperatures", temperatures.len())]
            }
            TruthAxes::PottsRandom(axes) => {
                POTTS_RANDOM_KEYS[1..].iter().zip(axes.iter()).map(|(k, a)| (*k, a.len())).collect()
            }
            TruthAxes::PottsFile(_) => vec![("model", 1)],
        }
    }

    /// Call `f` with every truth (outer axes first) and where its values were written.
    fn try_for_each(
        &self,
        mut f: impl FnMut(TruthSpec, &[Loc]) -> Result<(), StudyError>,
    ) -> Result<(), StudyError> {
        match self {
            TruthAxes::TwoLevel { states, lows, gaps } => {
                for s in states {
                    for l in lows {
                        for g in gaps {
                            let truth = TruthSpec::TwoLevel {
                                states: s.value as u32,
                                low_states: l.value as u32,
                                gap: g.value,
                            };
                            let locs = [
                                Loc::of("states", "truth.states", s),
                                Loc::of("low_states", "truth.low_states", l),
                                Loc::of("gap", "truth.gap", g),
                            ];
                            f(truth, &locs)?;
                        }
                    }
                }
            }
            TruthAxes::Ising { lattices, temperatures } => {
                for lat in lattices {
                    for t in temperatures {
                        let (rows, cols) = lat.value;
                        let truth = TruthSpec::Ising2d { rows, cols, temperature: t.value };
                        let locs = [
                            Loc::of("lattice", "truth.lattice", lat),
                            Loc::of("temperature", "truth.temperature", t),
                        ];
                        f(truth, &locs)?;
                    }
                }
            }
            TruthAxes::PottsFile(truth) => f(truth.clone(), &[])?,
            TruthAxes::PottsRandom([sites, states, coupling, field, contacts, family]) => {
                for n in sites {
                    for q in states {
                        for c in coupling {
                            for h in field {
                                for fr in contacts {
                                    for fam in family {
                                        let truth = TruthSpec::PottsRandom {
                                            sites: n.value as u32,
                                            states: q.value as u32,
                                            coupling_strength: c.value,
                                            field_strength: h.value,
                                            contact_fraction: fr.value,
                                            family_seed: fam.value as u64,
                                        };
                                        let locs = [
                                            Loc::of("sites", "truth.sites", n),
                                            Loc::of("states", "truth.states", q),
                                            Loc::of("coupling_strength", "truth.coupling_strength", c),
                                            Loc::of("field_strength", "truth.field_strength", h),
                                            Loc::of("contact_fraction", "truth.contact_fraction", fr),
                                            Loc::of("family_seed", "truth.family_seed", fam),
                                        ];
                                        f(truth, &locs)?;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn parse_truths<'i>(
    doc: &Doc<'_>,
    item: &Item<'i>,
    table: &DeTable<'i>,
    base: Option<&std::path::Path>,
) -> Result<TruthAxes, StudyError> {
    let span = item.span();
    let kind_item = table.get("kind").ok_or_else(|| doc.missing("truth.kind", Some(&span), KINDS))?;
    let kind =
        kind_item.get_ref().as_str().ok_or_else(|| doc.invalid("truth.kind", &kind_item.span(), KINDS))?;
    let req = |key: &str, what: &str| {
        table.get(key).ok_or_else(|| doc.missing(&format!("truth.{key}"), Some(&span), what.to_string()))
    };
    match kind {
        "two-level" => {
            check_keys(doc, "truth", table, TWO_LEVEL_KEYS)?;
            let int32 = Domain::Integer { max: u64::from(u32::MAX) };
            Ok(TruthAxes::TwoLevel {
                states: axis_values(doc, "truth.states", req("states", "N_s, the number of states")?, int32)?,
                lows: axis_values(
                    doc,
                    "truth.low_states",
                    req("low_states", "n_g, the number of low states")?,
                    int32,
                )?,
                gaps: axis_values(doc, "truth.gap", req("gap", "Δ, the energy gap")?, Domain::Real)?,
            })
        }
        "ising2d" => {
            check_keys(doc, "truth", table, ISING_KEYS)?;
            Ok(TruthAxes::Ising {
                lattices: parse_lattices(doc, req("lattice", "the lattice size [rows, cols]")?)?,
                temperatures: axis_values(
                    doc,
                    "truth.temperature",
                    req("temperature", "T, the truth temperature")?,
                    Domain::Real,
                )?,
            })
        }
        "potts-random" => {
            check_keys(doc, "truth", table, POTTS_RANDOM_KEYS)?;
            let int32 = Domain::Integer { max: u64::from(u32::MAX) };
            // Seeds beyond 2^53 would not survive the axis' f64 values exactly.
            let seed = Domain::Integer { max: 1 << 53 };
            Ok(TruthAxes::PottsRandom([
                axis_values(doc, "truth.sites", req("sites", "N, the number of sites")?, int32)?,
                axis_values(
                    doc,
                    "truth.states",
                    req("states", "q, the states per site (21 for proteins)")?,
                    int32,
                )?,
                axis_values(
                    doc,
                    "truth.coupling_strength",
                    req("coupling_strength", "σ_J, the spread of the couplings on contacts")?,
                    Domain::Real,
                )?,
                axis_values(
                    doc,
                    "truth.field_strength",
                    req("field_strength", "σ_h, the spread of the fields")?,
                    Domain::Real,
                )?,
                axis_values(
                    doc,
                    "truth.contact_fraction",
                    req("contact_fraction", "the fraction of site pairs in contact, in (0, 1]")?,
                    Domain::Real,
                )?,
                axis_values(
                    doc,
                    "truth.family_seed",
                    req("family_seed", "which synthetic family (an integer)")?,
                    seed,
                )?,
            ]))
        }
        "potts-file" => {
            check_keys(doc, "truth", table, POTTS_FILE_KEYS)?;
            let model_item =
                req("model", "the model file in adabmDCA's text format, relative to the study file")?;
            let model = model_item.get_ref().as_str().ok_or_else(|| {
                doc.invalid("truth.model", &model_item.span(), "expected a file name (a string)")
            })?;
            let alphabet = match table.get("alphabet") {
                None => "protein",
                Some(a) => a.get_ref().as_str().ok_or_else(|| {
                    doc.invalid("truth.alphabet", &a.span(), "expected protein, rna, dna or the symbols")
                })?,
            };
            let path = base.map_or_else(|| std::path::PathBuf::from(model), |b| b.join(model));
            // Workers may run elsewhere: they get the absolute path and check the content.
            let path = std::path::absolute(&path).unwrap_or(path);
            let bad = |why: String| doc.invalid("truth.model", &model_item.span(), why);
            let bytes =
                std::fs::read(&path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
            let letters = taustar_science::potts::Alphabet::named(alphabet).map_err(|e| {
                doc.invalid(
                    "truth.alphabet",
                    &table.get("alphabet").map_or(span.clone(), |a| a.span()),
                    e.to_string(),
                )
            })?;
            let shown = path.display().to_string();
            let m = taustar_science::potts::read_params(std::io::Cursor::new(&bytes), &letters, &shown)
                .map_err(|e| bad(e.to_string()))?;
            let to_u32 = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
            Ok(TruthAxes::PottsFile(TruthSpec::PottsFile {
                path: shown,
                alphabet: alphabet.to_string(),
                sites: to_u32(m.n()),
                states: to_u32(m.q()),
                sha256: crate::compute::potts::file_sha256(&bytes),
            }))
        }
        _ => Err(doc.invalid("truth.kind", &kind_item.span(), KINDS)),
    }
}

const LATTICE: &str = "expected a lattice [rows, cols] or a list of them, e.g. [4, 4] or [[3, 3], [4, 4]]";

fn parse_lattices(doc: &Doc<'_>, item: &Item<'_>) -> Result<Vec<Sourced<(u32, u32)>>, StudyError> {
    let key = "truth.lattice";
    let Some(items) = item.get_ref().as_array() else {
        return Err(doc.invalid(key, &item.span(), LATTICE));
    };
    let pairs: Vec<&Item<'_>> = match items.first().map(|f| f.get_ref()) {
        None => return Err(doc.invalid(key, &item.span(), LATTICE)),
        Some(DeValue::Array(_)) => items.iter().collect(),
        Some(_) => vec![item],
    };
    let mut out = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let dims = match pair.get_ref().as_array() {
            Some(d) if d.len() == 2 => d,
            _ => return Err(doc.invalid(key, &pair.span(), LATTICE)),
        };
        let mut rc = [0u32; 2];
        for (slot, dim) in rc.iter_mut().zip(dims.iter()) {
            let n = integer(doc, key, dim)?;
            *slot = u32::try_from(n)
                .map_err(|_| doc.invalid(key, &dim.span(), "a lattice dimension is an integer >= 1"))?;
        }
        out.push(Sourced { value: (rc[0], rc[1]), span: pair.span(), from_range: false });
    }
    out.sort_by_key(|s| s.value);
    out.dedup_by(|later, earlier| later.value == earlier.value);
    Ok(out)
}

fn parse_data<'i>(
    doc: &Doc<'_>,
    item: &Item<'i>,
    table: &DeTable<'i>,
) -> Result<Vec<Located<DataSize>>, StudyError> {
    check_keys(doc, "data", table, DATA_KEYS)?;
    match (table.get("samples"), table.get("mu")) {
        (Some(_), Some(mu)) => Err(doc.invalid(
            "data.mu",
            &mu.span(),
            "give either data.samples or data.mu, not both (a study sweeps one data-size axis)",
        )),
        (None, None) => Err(doc.missing(
            "data.samples",
            Some(&item.span()),
            "give data.samples (M, the number of samples) or data.mu (M = round(exp(mu + S)), docs/spec.md §3)",
        )),
        (Some(samples), None) => {
            let values = axis_values(doc, "data.samples", samples, Domain::Integer { max: u64::MAX })?;
            Ok(values
                .iter()
                .map(|v| Located {
                    value: DataSize::Samples(v.value as u64),
                    loc: Some(Loc::of("samples", "data.samples", v)),
                })
                .collect())
        }
        (None, Some(mu)) => {
            let values = axis_values(doc, "data.mu", mu, Domain::Real)?;
            Ok(values
                .iter()
                .map(|v| Located { value: DataSize::Mu(v.value), loc: Some(Loc::of("mu", "data.mu", v)) })
                .collect())
        }
    }
}

const MODES: &str = "expected \"mle\", \"paper\", \"plm\" or \"bml\", or a list of them";

type FitAxes = (Vec<Located<FitMode>>, Vec<Located<f64>>);

fn parse_fit_axes(
    doc: &Doc<'_>,
    fit: Option<(&Item<'_>, &DeTable<'_>)>,
    is_two_level: bool,
) -> Result<FitAxes, StudyError> {
    let default = FitSpec::default();
    let Some((_, table)) = fit else {
        return Ok((
            vec![Located { value: default.mode, loc: None }],
            vec![Located { value: default.l2, loc: None }],
        ));
    };
    check_keys(doc, "fit", table, FIT_KEYS)?;
    let mut modes = match table.get("mode") {
        None => vec![Located { value: default.mode, loc: None }],
        Some(item) => {
            let elements: Vec<&Item<'_>> = match item.get_ref() {
                DeValue::String(_) => vec![item],
                DeValue::Array(a) if !a.is_empty() => a.iter().collect(),
                _ => return Err(doc.invalid("fit.mode", &item.span(), MODES)),
            };
            let mut modes = Vec::with_capacity(elements.len());
            for e in elements {
                let mode = e
                    .get_ref()
                    .as_str()
                    .and_then(|s| s.parse::<FitMode>().ok())
                    .ok_or_else(|| doc.invalid("fit.mode", &e.span(), MODES))?;
                if is_two_level && mode != FitMode::Mle {
                    return Err(doc.invalid(
                        "fit.mode",
                        &e.span(),
                        "the two-level fit (docs/spec.md §4.1) has a single closed-form procedure; fit modes \
                         apply to ising2d truths only (remove fit.mode)",
                    ));
                }
                let span = e.span();
                modes.push(Located {
                    value: mode,
                    loc: Some(Loc { field: "mode", key: "fit.mode", span, from_range: false }),
                });
            }
            modes
        }
    };
    modes.sort_by_key(|m| m.value.as_str());
    modes.dedup_by(|later, earlier| later.value == earlier.value);
    let l2s = match table.get("l2") {
        None => vec![Located { value: default.l2, loc: None }],
        Some(item) => {
            let values = axis_values(doc, "fit.l2", item, Domain::Real)?;
            if is_two_level {
                if let Some(v) = values.iter().find(|v| v.value != 0.0) {
                    return Err(doc.invalid_value(
                        "fit.l2",
                        v.value,
                        &v.span,
                        "the two-level fit (docs/spec.md §4.1) has no L2 penalty; fit.l2 applies to ising2d \
                         truths only (remove it)",
                    ));
                }
            }
            values.iter().map(|v| Located { value: v.value, loc: Some(Loc::of("l2", "fit.l2", v)) }).collect()
        }
    };
    Ok((modes, l2s))
}

/// The `[eval]` and `[mcmc]` tables of a study file, if present.
struct Eval<'a, 'i> {
    eval: Option<(&'a Item<'i>, &'a DeTable<'i>)>,
    mcmc: Option<(&'a Item<'i>, &'a DeTable<'i>)>,
}

/// `[eval] method` and the `[mcmc]` table: `None` for exact evaluation. Records the span of
/// every key it reads, for errors found when the settings are validated.
fn parse_eval(
    doc: &Doc<'_>,
    eval: Eval<'_, '_>,
    is_two_level: bool,
    spans: &mut Vec<(&'static str, Range<usize>)>,
) -> Result<Option<McmcSettings>, StudyError> {
    const METHODS: &str = "expected \"exact\" (enumerate every state, up to 24 spins) or \"mcmc\" \
                           (Monte Carlo with error bars, docs/spec.md §10)";
    let mut mcmc = false;
    if let Some((_, table)) = eval.eval {
        check_keys(doc, "eval", table, EVAL_KEYS)?;
        if let Some(item) = table.get("method") {
            mcmc = match item.get_ref().as_str() {
                Some("exact") => false,
                Some("mcmc") => true,
                _ => return Err(doc.invalid("eval.method", &item.span(), METHODS)),
            };
            if mcmc && is_two_level {
                return Err(doc.invalid(
                    "eval.method",
                    &item.span(),
                    "Monte Carlo evaluation applies to ising2d truths; a two-level cell is exact in \
                     microseconds (remove [eval])",
                ));
            }
            spans.push(("eval.method", item.span()));
        }
    }
    let Some((mcmc_item, table)) = eval.mcmc else {
        return Ok(mcmc.then(McmcSettings::default));
    };
    if !mcmc {
        return Err(doc.invalid(
            "mcmc",
            &mcmc_item.span(),
            "the [mcmc] table configures Monte Carlo evaluation; add [eval] method = \"mcmc\" or remove it",
        ));
    }
    check_keys(doc, "mcmc", table, MCMC_KEYS)?;
    let mut m = McmcSettings::default();
    let count = |key: &'static str, item: &Item<'_>| -> Result<u32, StudyError> {
        let n = integer(doc, key, item)?;
        u32::try_from(n).map_err(|_| doc.invalid(key, &item.span(), "need an integer 0 <= n < 2^32"))
    };
    for (key, field) in [
        ("mcmc.steps", &mut m.steps),
        ("mcmc.burn_in", &mut m.burn_in),
        ("mcmc.pilot_sweeps", &mut m.pilot_sweeps),
        ("mcmc.resamples", &mut m.resamples),
        ("mcmc.ladders", &mut m.ladders),
        ("mcmc.max_steps", &mut m.max_steps),
        ("mcmc.min_round_trips", &mut m.min_round_trips),
        ("mcmc.truth_steps", &mut m.truth_steps),
        ("mcmc.walkers", &mut m.walkers),
        ("mcmc.production_sweeps", &mut m.production_sweeps),
        ("mcmc.min_walker_round_trips", &mut m.min_walker_round_trips),
    ] {
        if let Some(item) = table.get(&key["mcmc.".len()..]) {
            *field = count(key, item)?;
            spans.push((key, item.span()));
        }
    }
    for (key, field) in
        [("mcmc.min_swap_acceptance", &mut m.min_swap_acceptance), ("mcmc.max_r_hat", &mut m.max_r_hat)]
    {
        if let Some(item) = table.get(&key["mcmc.".len()..]) {
            *field = number(doc, key, item)?;
            spans.push((key, item.span()));
        }
    }
    if let Some(item) = table.get("target_se") {
        m.target_se = Some(number(doc, "mcmc.target_se", item)?);
        spans.push(("mcmc.target_se", item.span()));
    }
    if let Some(item) = table.get("sampler") {
        m.sampler = match item.get_ref().as_str() {
            Some(name) => {
                name.parse().map_err(|why: String| doc.invalid("mcmc.sampler", &item.span(), &why))?
            }
            None => {
                return Err(doc.invalid(
                    "mcmc.sampler",
                    &item.span(),
                    "expected \"tempering\" or \"multicanonical\" (a string)",
                ))
            }
        };
        spans.push(("mcmc.sampler", item.span()));
    }
    if table.get("burn_in").is_none() {
        m.burn_in = m.steps / 10;
    }
    Ok(Some(m))
}

fn parse_settings(
    doc: &Doc<'_>,
    fit: Option<(&Item<'_>, &DeTable<'_>)>,
    tau: Option<(&Item<'_>, &DeTable<'_>)>,
    eval: Eval<'_, '_>,
    is_two_level: bool,
) -> Result<CellSettings, StudyError> {
    let mut settings = CellSettings::default();
    let mut spans: Vec<(&'static str, Range<usize>)> = Vec::new();
    settings.mcmc = parse_eval(doc, eval, is_two_level, &mut spans)?;
    if settings.mcmc.is_some() {
        settings.tau_bounds = MCMC_DEFAULT_TAU_BOUNDS;
    }
    if let Some((_, table)) = fit {
        if let Some(item) = table.get("max_iter") {
            let n = integer(doc, "fit.max_iter", item)?;
            settings.max_iter = u32::try_from(n).map_err(|_| {
                doc.invalid("fit.max_iter", &item.span(), "need an integer 1 <= max_iter < 2^32")
            })?;
            spans.push(("fit.max_iter", item.span()));
        }
        if let Some(item) = table.get("rel_tol") {
            settings.rel_tol = number(doc, "fit.rel_tol", item)?;
            spans.push(("fit.rel_tol", item.span()));
        }
        if let Some(item) = table.get("coupling_cap") {
            settings.coupling_cap = number(doc, "fit.coupling_cap", item)?;
            spans.push(("fit.coupling_cap", item.span()));
        }
        if let Some(item) = table.get("pearson_target") {
            settings.pearson_target = number(doc, "fit.pearson_target", item)?;
            spans.push(("fit.pearson_target", item.span()));
        }
        if let Some(item) = table.get("max_sweeps") {
            let n = integer(doc, "fit.max_sweeps", item)?;
            settings.max_sweeps = u64::try_from(n).map_err(|_| {
                doc.invalid("fit.max_sweeps", &item.span(), "need an integer max_sweeps >= 1")
            })?;
            spans.push(("fit.max_sweeps", item.span()));
        }
    }
    if let Some((_, table)) = tau {
        check_keys(doc, "tau", table, TAU_KEYS)?;
        if let Some(item) = table.get("grid") {
            let grid = item
                .get_ref()
                .as_table()
                .ok_or_else(|| doc.invalid("tau.grid", &item.span(), "expected a table {from, to, count}"))?;
            check_keys(doc, "tau.grid", grid, TAU_GRID_KEYS)?;
            let get = |k: &str| {
                grid.get(k).ok_or_else(|| {
                    doc.missing(
                        &format!("tau.grid.{k}"),
                        Some(&item.span()),
                        "the τ grid is {from, to, count}",
                    )
                })
            };
            settings.tau_grid.from = number(doc, "tau.grid.from", get("from")?)?;
            settings.tau_grid.to = number(doc, "tau.grid.to", get("to")?)?;
            let count_item = get("count")?;
            let count = integer(doc, "tau.grid.count", count_item)?;
            settings.tau_grid.count = u32::try_from(count).map_err(|_| {
                doc.invalid("tau.grid.count", &count_item.span(), "need an integer count >= 1")
            })?;
            spans.push(("tau.grid", item.span()));
        }
        if let Some(item) = table.get("bounds") {
            const BOUNDS: &str = "expected [lo, hi], the bounds of the τ* search";
            let pair = match item.get_ref().as_array() {
                Some(a) if a.len() == 2 => a,
                _ => return Err(doc.invalid("tau.bounds", &item.span(), BOUNDS)),
            };
            settings.tau_bounds =
                (number(doc, "tau.bounds", &pair[0])?, number(doc, "tau.bounds", &pair[1])?);
            spans.push(("tau.bounds", item.span()));
        }
        if let Some(item) = table.get("curves") {
            const CURVES: &str = "expected \"all\" (every result keeps its τ curve), \"recompute\" \
                                  (curves are computed again when exported or plotted) or \"none\"";
            settings.curves = match item.get_ref().as_str() {
                Some("all") => CurveOutput::All,
                Some("none") => CurveOutput::None,
                Some("recompute") => CurveOutput::Recompute,
                _ => return Err(doc.invalid("tau.curves", &item.span(), CURVES)),
            };
            spans.push(("tau.curves", item.span()));
        }
    }
    if let Err(SpecError::Invalid { field, value, reason }) = settings.validate() {
        let at = spans.iter().find(|(k, _)| *k == field).map(|(_, s)| doc.line(s));
        return Err(StudyError::Invalid { key: field, value, at: At(at), reason });
    }
    Ok(settings)
}
