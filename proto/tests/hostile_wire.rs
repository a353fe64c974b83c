//! Hostile wire input: every conversion from a wire message into `common`'s
//! types either succeeds or returns a [`ConvertError`] naming the field — never panics —
//! whatever bytes arrive or whatever fields a peer leaves out or fills with unknown values.

use proptest::prelude::*;
use prost::Message;
use taustar_common::{CellResult, CellSpec, GridPoint};
use taustar_proto::convert::{result_from_bytes, ConvertError};
use taustar_proto::pb;

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(-0.0)]
}

fn wire_point() -> impl Strategy<Value = pb::GridPoint> {
    let truth = proptest::option::of(prop_oneof![
        (any::<u32>(), any::<u32>(), any_f64()).prop_map(|(states, low_states, gap)| {
            pb::grid_point::Truth::TwoLevel(pb::TwoLevelTruth { states, low_states, gap })
        }),
        (any::<u32>(), any::<u32>(), any_f64()).prop_map(|(rows, cols, temperature)| {
            pb::grid_point::Truth::Ising2d(pb::Ising2dTruth { rows, cols, temperature })
        }),
    ]);
    let data = proptest::option::of(prop_oneof![
        any::<u64>().prop_map(pb::grid_point::Data::Samples),
        any_f64().prop_map(pb::grid_point::Data::Mu),
    ]);
    let fit = proptest::option::of((any::<i32>(), any_f64()).prop_map(|(mode, l2)| pb::FitSpec { mode, l2 }));
    (truth, data, fit).prop_map(|(truth, data, fit)| pb::GridPoint { truth, data, fit })
}

/// A wire curve whose columns may disagree in length.
fn wire_curve() -> impl Strategy<Value = pb::Curve> {
    let column = || proptest::collection::vec(any_f64(), 0..4);
    (column(), column(), column(), column(), column(), column(), column()).prop_map(
        |(tau, dkl_rev, dkl_fwd, entropy, mean_energy, heat_capacity, kappa)| pb::Curve {
            tau,
            dkl_rev,
            dkl_fwd,
            entropy,
            mean_energy,
            heat_capacity,
            kappa,
        },
    )
}

fn wire_result() -> impl Strategy<Value = pb::CellResult> {
    (
        ".{0,30}",
        any::<u64>(),
        any_f64(),
        proptest::option::of(any::<i32>()),
        proptest::option::of(any_f64()),
        proptest::option::of(".{0,30}"),
        proptest::collection::vec(any_f64(), 0..13),
        proptest::option::of(wire_curve()),
    )
        .prop_map(|(key, samples, x, fit_mode, opt, note, points, curve)| pb::CellResult {
            key,
            samples,
            tau_rev: x,
            tau_fwd: x,
            dkl_rev_opt: x,
            tau_heat_peak: opt,
            nll: opt,
            fit_mode,
            fit_note: note,
            curve_points: points
                .chunks(6)
                .map(|c| pb::CurvePoint { tau: c[0], dkl_rev: c[c.len() - 1], ..Default::default() })
                .collect(),
            curve,
            ..Default::default()
        })
}

/// The field a conversion error names is one of the message's real fields.
fn names_a_field(e: &ConvertError) -> bool {
    let text = e.to_string();
    ["GridPoint.", "CellSpec.", "FitSpec.", "CellResult.", "Curve.", "LeasedCell.", "undecodable"]
        .iter()
        .any(|f| text.contains(f))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes: decoding may fail; whatever decodes converts or errs, never panics.
    #[test]
    fn arbitrary_bytes_never_panic_a_conversion(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(m) = pb::CellSpec::decode(bytes.as_slice()) {
            if let Err(e) = CellSpec::try_from(m) { prop_assert!(names_a_field(&e), "{e}"); }
        }
        if let Ok(m) = pb::GridPoint::decode(bytes.as_slice()) {
            if let Err(e) = GridPoint::try_from(m) { prop_assert!(names_a_field(&e), "{e}"); }
        }
        if let Ok(m) = pb::CellResult::decode(bytes.as_slice()) {
            if let Err(e) = CellResult::try_from(m) { prop_assert!(names_a_field(&e), "{e}"); }
        }
        if let Ok(m) = pb::ResultUpload::decode(bytes.as_slice()) {
            if let Some(pb::result_upload::Outcome::Result(r)) = m.outcome {
                let _ = CellResult::try_from(r);
            }
        }
        if let Ok(m) = pb::LeaseReply::decode(bytes.as_slice()) {
            for c in m.cells {
                if let Some(spec) = c.spec { let _ = CellSpec::try_from(spec); }
            }
        }
        if let Err(e) = result_from_bytes(&bytes) { prop_assert!(names_a_field(&e), "{e}"); }
    }

    /// Structured messages with missing sub-messages and unknown enum values.
    #[test]
    fn arbitrary_messages_convert_or_name_the_field(point in wire_point(), with_point in any::<bool>(),
                                                    with_settings in any::<bool>(), result in wire_result()) {
        let spec = pb::CellSpec {
            study_seed: 1,
            point: with_point.then(|| point.clone()),
            replicate: 0,
            settings: with_settings.then(pb::CellSettings::default),
        };
        match CellSpec::try_from(spec) {
            Ok(s) => prop_assert!(with_point && with_settings && point.truth.is_some() && s.replicate == 0),
            Err(e) => prop_assert!(names_a_field(&e), "{e}"),
        }
        if let Err(e) = GridPoint::try_from(point) { prop_assert!(names_a_field(&e), "{e}"); }
        let fit_mode = result.fit_mode;
        match CellResult::try_from(result.clone()) {
            // Whatever converts is stable through the quarantine encoding (bytes → result →
            // the same bytes). Not the identity on values: proto3 omits a non-optional
            // double equal to 0.0, so -0.0 arrives as 0.0 (the store loses that sign too).
            Ok(r) => {
                let bytes = taustar_proto::convert::result_to_bytes(&r);
                let back = result_from_bytes(&bytes).unwrap();
                prop_assert_eq!(taustar_proto::convert::result_to_bytes(&back), bytes);
                prop_assert_eq!(back.tau.tau_rev.to_bits() == r.tau.tau_rev.to_bits(), r.tau.tau_rev.to_bits() != (-0.0f64).to_bits());
            }
            // The three ways a structurally valid result can be refused, each naming its field.
            Err(e @ ConvertError::UnknownEnum { .. }) => {
                prop_assert_eq!(e, ConvertError::UnknownEnum { field: "CellResult.fit_mode", value: fit_mode.unwrap() });
            }
            Err(ConvertError::TwoCurves) => {
                prop_assert!(result.curve.is_some() && !result.curve_points.is_empty());
            }
            Err(ConvertError::CurveColumnLength { len, points, .. }) => {
                let c = result.curve.as_ref().unwrap();
                prop_assert_eq!(points, c.tau.len());
                prop_assert!(len != points);
            }
            Err(e) => prop_assert!(false, "unexpected refusal {e}"),
        }
    }
}
