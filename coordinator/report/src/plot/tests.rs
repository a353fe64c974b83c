//! Plot files: valid PNG (signature, IHDR dimensions, decodable) and SVG (root element with
//! the expected size), for two-level and Ising studies, facets and `--point`.

use std::fs::File;
use std::path::Path;

use super::maps::{LINES_SIZE, MAX_LINES};
use super::point::PointSelector;
use super::{maps::MAP_SIZE, plot_study, CURVES_SIZE};
use crate::export::synthetic::SyntheticSource;
use crate::export::test_dir;

/// Decode a PNG fully; returns (width, height) and the set of distinct colours (capped).
fn check_png(path: &Path) -> ((u32, u32), usize) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}: PNG signature", path.display());
    let decoder = png::Decoder::new(std::io::BufReader::new(File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let mut colours = std::collections::HashSet::new();
    for px in buf[..info.buffer_size()].chunks(3) {
        if colours.len() < 5000 {
            colours.insert((px[0], px[1], px[2]));
        }
    }
    ((info.width, info.height), colours.len())
}

fn check_svg(path: &Path, size: (u32, u32)) {
    let text = std::fs::read_to_string(path).unwrap();
    let open = text.find("<svg").unwrap_or_else(|| panic!("{}: no <svg", path.display()));
    let tag = &text[open..open + text[open..].find('>').unwrap()];
    assert!(tag.contains(&format!("width=\"{}\"", size.0)), "{tag}");
    assert!(tag.contains(&format!("height=\"{}\"", size.1)), "{tag}");
    assert!(text.trim_end().ends_with("</svg>"), "{}: not closed", path.display());
    assert!(text.contains("<text"), "{}: has text", path.display());
}

#[test]
fn two_level_study_gets_tau_ratio_and_fraction_maps_as_valid_png_and_svg() {
    let source = SyntheticSource {
        samples: crate::export::synthetic::log_spaced(4.0, 28000.0, 30),
        ..SyntheticSource::fig2_like(4, 8)
    };
    let dir = test_dir("plot2");
    let report =
        plot_study(&source, &dir, Some(&"gap=6,samples=28000".parse::<PointSelector>().unwrap())).unwrap();
    let names: Vec<String> =
        report.files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for stem in [
        "tau_rev_mean",
        "tau_rev_median",
        "tau_fwd_mean",
        "tau_fwd_median",
        "gap_ratio_mean",
        "low_states_ratio_mean",
        "frac_tau_rev_below_1",
        "tau_vs_samples",
    ] {
        assert!(
            names.contains(&format!("{stem}.png")) && names.contains(&format!("{stem}.svg")),
            "{stem}: {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n.starts_with("fit_diverged")), "no divergence map for two-level");
    for f in &report.files {
        let name = f.file_name().unwrap().to_string_lossy();
        let size = if name.starts_with("point__") {
            CURVES_SIZE
        } else if name.starts_with("tau_vs_samples") {
            LINES_SIZE
        } else {
            MAP_SIZE
        };
        if f.extension().unwrap() == "png" {
            let (dims, colours) = check_png(f);
            assert_eq!(dims, size, "{}", f.display());
            assert!(colours > 50, "{}: a real picture has many colours, got {colours}", f.display());
        } else {
            check_svg(f, size);
        }
    }
    assert!(
        names.iter().any(|n| n.starts_with("point__two-level_states=100_low_states=20_gap=6_samples=28000")
            && n.ends_with(".png")),
        "{names:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ising_study_gets_a_divergence_map_and_l2_facets_get_separate_files() {
    let source = SyntheticSource { l2s: vec![0.0, 0.01], ..SyntheticSource::fig3_like(3, 5) };
    let dir = test_dir("plot3");
    let report = plot_study(&source, &dir, None).unwrap();
    let names: Vec<String> =
        report.files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for stem in [
        "fit_diverged_frac__l2=0",
        "fit_diverged_frac__l2=0.01",
        "tau_rev_mean__l2=0.01",
        "tau_vs_samples__l2=0",
        "tau_vs_samples__l2=0.01",
    ] {
        assert!(names.contains(&format!("{stem}.png")), "{stem}: {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("gap_ratio")), "no two-level maps for Ising");
    for f in report.files.iter().filter(|f| f.extension().unwrap() == "png") {
        let lines = f.file_name().unwrap().to_string_lossy().starts_with("tau_vs_samples");
        let (dims, colours) = check_png(f);
        assert_eq!(dims, if lines { LINES_SIZE } else { MAP_SIZE });
        assert!(colours > 5, "{}: {colours} colours", f.display());
    }
    // One line per temperature: the SVG legend names each of them.
    let svg = std::fs::read_to_string(dir.join("tau_vs_samples__l2=0.svg")).unwrap();
    // Fig. 3 has 31 temperatures: ten evenly spaced ones are drawn, from the first to the last.
    let legend: Vec<&str> = svg.lines().map(str::trim).filter(|l| l.starts_with("T = ")).collect();
    assert_eq!(legend.len(), 2 * MAX_LINES, "ten lines in both panels' legends: {legend:?}");
    assert!(legend.contains(&"T = 2") && legend.contains(&"T = 5"), "the extremes are kept: {legend:?}");
    assert!(svg.contains("10 of 31 truth values"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_phase_boundary_is_drawn_where_tau_rev_crosses_one() {
    // The synthetic τ*_rev crosses 1 at log10 M = 0.9 + 0.25 Δ: inside the Fig. 2 grid, so the
    // SVG holds a black boundary path; shifting every M far above the boundary removes it.
    let source = SyntheticSource::fig2_like(2, 3);
    let dir = test_dir("boundary");
    plot_study(&source, &dir, None).unwrap();
    let svg = std::fs::read_to_string(dir.join("tau_rev_median.svg")).unwrap();
    let black_paths = svg.matches("stroke=\"#000000\" stroke-width=\"3\"").count();
    assert!(black_paths > 20, "boundary segments: {black_paths}");
    let far =
        SyntheticSource { samples: vec![1_000_000_000, 2_000_000_000], ..SyntheticSource::fig2_like(2, 3) };
    plot_study(&far, &dir, None).unwrap();
    let svg = std::fs::read_to_string(dir.join("tau_rev_median.svg")).unwrap();
    assert_eq!(svg.matches("stroke=\"#000000\" stroke-width=\"3\"").count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_kappa_minus_c_map_is_drawn_with_its_zero_contour_for_both_truths() {
    // The synthetic κ(1) − C(1) = 0.3 (1 − τ*_rev): its zero contour is the phase boundary.
    for (name, source) in
        [("kappa2", SyntheticSource::fig2_like(2, 3)), ("kappa3", SyntheticSource::fig3_like(3, 5))]
    {
        let dir = test_dir(name);
        let report = plot_study(&source, &dir, None).unwrap();
        assert!(report.files.iter().any(|f| f.ends_with("kappa_minus_c_mean.png")), "{:?}", report.files);
        check_png(&dir.join("kappa_minus_c_mean.png"));
        let svg = std::fs::read_to_string(dir.join("kappa_minus_c_mean.svg")).unwrap();
        assert!(svg.contains("κ(1) − C(1) = 0"), "the subtitle names the line");
        let black_paths = svg.matches("stroke=\"#000000\" stroke-width=\"3\"").count();
        assert!(black_paths > 5, "{name}: zero-contour segments: {black_paths}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_single_data_size_gets_the_kappa_c_profile_with_its_crossing() {
    // One M, several gaps: the appendix's layout. The synthetic κ(1) − C(1) = 0.3 (1 − τ*_rev)
    // changes sign where τ*_rev crosses 1.
    let source = SyntheticSource { samples: vec![200], ..SyntheticSource::fig2_like(4, 8) };
    let dir = test_dir("profile");
    let report = plot_study(&source, &dir, None).unwrap();
    assert!(report.files.iter().any(|f| f.ends_with("kappa_c_profile.png")), "{:?}", report.files);
    let (dims, colours) = check_png(&dir.join("kappa_c_profile.png"));
    assert_eq!(dims, MAP_SIZE);
    assert!(colours > 20, "a real picture: {colours} colours");
    let svg = std::fs::read_to_string(dir.join("kappa_c_profile.svg")).unwrap();
    assert!(svg.contains("κ(1) = C(1) at "), "the crossing is named");
    // Two or more data sizes: maps only.
    let many = test_dir("profile-many");
    let report = plot_study(&SyntheticSource::fig2_like(2, 3), &many, None).unwrap();
    assert!(!report.files.iter().any(|f| f.to_string_lossy().contains("kappa_c_profile")));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&many).unwrap();
}

/// A study with `[tau] curves = "none"` still gets its maps; `--point` says why it cannot
/// draw curves instead of drawing empty axes.
#[test]
fn a_study_without_curves_gets_maps_and_a_point_error_naming_the_setting() {
    let source = SyntheticSource::fig3_like(2, 0);
    let dir = test_dir("nocurves");
    let e = plot_study(&source, &dir, Some(&"temperature=2.05,samples=50".parse().unwrap())).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("no τ curves") && msg.contains("curves = \"none\""), "{msg}");
    let report = plot_study(&source, &dir, None).unwrap();
    assert!(report.files.iter().any(|f| f.ends_with("tau_rev_mean.png")), "{:?}", report.files);
    check_png(&dir.join("tau_rev_mean.png"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_point_that_does_not_exist_is_an_error_naming_the_values_there_are() {
    let source = SyntheticSource::fig3_like(2, 3);
    let dir = test_dir("nopoint");
    let e = plot_study(&source, &dir, Some(&"temperature=9,samples=50".parse().unwrap())).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("temperature ∈ {2,") && msg.contains("samples ∈ {50,"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_study_given_by_mu_and_a_single_gap_still_plots_on_a_linear_axis() {
    use crate::export::source::MemorySource;
    use taustar_common::cell::DataSize;
    // One gap (a single row of cells) and μ instead of M: the x axis is linear in μ.
    let base =
        SyntheticSource { ys: vec![5.0], samples: vec![10, 100, 1000], ..SyntheticSource::fig2_like(3, 4) };
    let mut points = Vec::new();
    for (i, &m) in base.samples.iter().enumerate() {
        let mut p = base.point(5.0, m, 0.0);
        let results: Vec<_> = (0..3).map(|r| base.result(&p, r)).collect();
        p.data = DataSize::Mu(-1.0 + f64::from(i as u32));
        points.push((p, results));
    }
    let source = MemorySource { name: "mu-study".into(), points };
    let dir = test_dir("mu");
    let report = plot_study(&source, &dir, Some(&"mu=0".parse().unwrap())).unwrap();
    assert!(report.files.iter().any(|f| f.ends_with("tau_rev_mean.png")));
    assert!(report
        .files
        .iter()
        .any(|f| f.to_string_lossy().contains("point__two-level_states=100_low_states=20_gap=5_mu=0")));
    for f in report.files.iter().filter(|f| f.extension().unwrap() == "png") {
        assert!(check_png(f).1 > 20);
    }
    let svg = std::fs::read_to_string(dir.join("tau_rev_mean.svg")).unwrap();
    assert!(svg.contains("μ = ln M − S(p)"), "the x axis names μ");
    std::fs::remove_dir_all(&dir).unwrap();
}
