//! Model Monitor baseline and violation files written from the spec parse and evaluate.

use driftloop::metrics::dq::checks::{Violation, check_data_quality};
use driftloop::metrics::dq::stats::{DataQualityState, DqValue};
use driftloop::metrics::dq::types::DataType;
use driftloop::metrics::{
    BaselineConstraints, BaselineStatistics, Engine, MonitorConfig, ProblemType,
};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/model-monitor/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn current(values: &[(&str, &str)], n: usize) -> DataQualityState {
    let mut s = DataQualityState::default();
    for _ in 0..n {
        s.push_named(values.iter().map(|(k, v)| (*k, DqValue::Text(v))));
    }
    s
}

#[test]
fn spec_statistics_and_constraints_parse() {
    let st = BaselineStatistics::parse(&fixture("statistics.json")).unwrap();
    assert_eq!(st.item_count, Some(100.0));
    let c0 = st.feature("_c0").unwrap();
    assert_eq!(c0.inferred_type, DataType::Fractional);
    assert_eq!(c0.kll.as_ref().unwrap().levels, vec![vec![3.0, 1.0, 2.0]]);
    assert_eq!(
        st.feature("message").unwrap().categories,
        vec![("hello".to_string(), 418.0)]
    );
    let c = BaselineConstraints::parse(&fixture("constraints.json")).unwrap();
    assert_eq!(c.features.len(), 2);
    assert_eq!(c.features[0].is_non_negative, Some(true));
    assert_eq!(c.monitoring_config.comparison_threshold, 0.1);
    let legacy = BaselineConstraints::parse(&fixture("constraints_legacy.json")).unwrap();
    assert!(legacy.monitoring_config.perform_comparison);
    assert_eq!(legacy.features[1].config.domain_content_threshold, 0.5);
    assert_eq!(legacy.features[0].config.datatype_check_threshold, 0.1);
}

#[test]
fn spec_violation_files_parse() {
    for f in [
        "constraint_violations.json",
        "model_quality_violations.json",
    ] {
        let v: serde_json::Value = serde_json::from_str(&fixture(f)).unwrap();
        let parsed: Vec<Violation> = serde_json::from_value(v["violations"].clone()).unwrap();
        assert!(!parsed.is_empty());
        // Round trip keeps the shape.
        assert_eq!(serde_json::to_value(&parsed).unwrap(), v["violations"]);
    }
}

#[test]
fn evaluate_against_spec_baseline() {
    let st = BaselineStatistics::parse(&fixture("statistics.json")).unwrap();
    let c = BaselineConstraints::parse(&fixture("constraints.json")).unwrap();
    // Same distribution as the sketch (1, 2, 3) and the known category: no violations.
    let mut cur = DataQualityState::default();
    for x in ["1.0", "2.0", "3.0"] {
        cur.push_named([
            ("_c0", DqValue::Text(x)),
            ("message", DqValue::Text("hello")),
        ]);
    }
    let r = check_data_quality(&cur, Some(&st), &c);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    // Drifted numbers, an unknown category, a string in a Fractional column, an extra column.
    let mut cur = current(&[("_c0", "9.5"), ("message", "bye"), ("extra", "1")], 300);
    cur.push_named([
        ("_c0", DqValue::Text("oops")),
        ("message", DqValue::Text("hello")),
    ]);
    let r = check_data_quality(&cur, Some(&st), &c);
    let kinds: Vec<(String, String)> = r
        .violations
        .iter()
        .map(|v| {
            (
                v.feature_name.clone().unwrap(),
                v.constraint_check_type.clone(),
            )
        })
        .collect();
    // The spec's sketch holds 3 items: the Robust correction 1.8*sqrt((3+301)/(3*301)) > 1 makes
    // the distance 0, so no numeric drift violation with Robust...
    let d0 = r.drift.iter().find(|d| d.feature == "_c0").unwrap();
    assert_eq!(d0.distance, 0.0);
    // ...but Simple (legacy constraints file) sees L∞ = 1.
    let legacy = BaselineConstraints::parse(&fixture("constraints_legacy.json")).unwrap();
    let rl = check_data_quality(&cur, Some(&st), &legacy);
    let dl = rl.drift.iter().find(|d| d.feature == "_c0").unwrap();
    assert_eq!(dl.distance, 1.0);
    assert!(
        rl.violations
            .iter()
            .any(|v| v.constraint_check_type == "baseline_drift_check"
                && v.description == "Baseline drift distance: 1 exceeds threshold: 0.1")
    );
    for want in [
        ("_c0", "data_type_check"),
        ("message", "categorical_values_check"),
        ("message", "baseline_drift_check"),
        ("extra", "extra_column_check"),
        ("extra", "completeness_check"),
    ] {
        let found = kinds.iter().any(|(f, k)| f == want.0 && k == want.1);
        // `extra` has no constraint, so it cannot fail completeness.
        assert_eq!(
            found,
            want.0 != "extra" || want.1 != "completeness_check",
            "{want:?} in {kinds:?}"
        );
    }
    let dt = r
        .violations
        .iter()
        .find(|v| v.constraint_check_type == "data_type_check")
        .unwrap();
    assert_eq!(
        dt.description,
        "Data type match requirement is not met. Expected data type: Fractional, Expected match: 100.0%. Observed: Only 99.67% of data is Fractional."
    );
    // Missing column.
    let cur = current(&[("_c0", "2.0")], 10);
    let r = check_data_quality(&cur, Some(&st), &c);
    assert!(
        r.violations
            .iter()
            .any(|v| v.constraint_check_type == "missing_column_check"
                && v.feature_name.as_deref() == Some("message"))
    );
}

#[test]
fn model_quality_constraints_fixture() {
    let cons: serde_json::Value =
        serde_json::from_str(&fixture("model_quality_constraints.json")).unwrap();
    let cfg = MonitorConfig {
        problem_type: Some(ProblemType::BinaryClassification),
        ..Default::default()
    };
    let mut e = Engine::new(cfg).with_model_quality_constraints(cons);
    // y = 1,1,0,0 ; scores 0.9, 0.3, 0.8, 0.1 -> tp 1, fn 1, fp 1, tn 1.
    for (i, (y, s)) in [(1, 0.9), (1, 0.3), (0, 0.8), (0, 0.1)].iter().enumerate() {
        e.push_ground_truth_line(
            &format!(r#"{{"groundTruthData":{{"data":"{y}","encoding":"CSV"}},"eventMetadata":{{"eventId":"id{i}"}},"eventVersion":"0"}}"#),
            "gt",
            i as u64 + 1,
        )
        .unwrap();
        let _ = s;
    }
    for (i, s) in [0.9, 0.3, 0.8, 0.1].iter().enumerate() {
        e.push_capture_line(
            &format!(r#"{{"captureData":{{"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{s}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"id{i}"}},"eventVersion":"0"}}"#),
            "cap",
            i as u64 + 1,
        );
    }
    let r = e.finish().unwrap();
    let names: Vec<&str> = r
        .violations
        .iter()
        .map(|v| v.metric_name.as_deref().unwrap())
        .collect();
    // recall 0.5 < 0.9, precision 0.5 not < 0.5, f2 0.5 < 0.625, fpr 0.5 > 0.4.
    assert_eq!(names, vec!["f2", "false_positive_rate", "recall"]);
    assert_eq!(
        r.violations[0].description,
        "Metric f2 with 0.5 was LessThanThreshold '0.625'"
    );
    assert_eq!(
        r.job_message(),
        "CompletedWithViolations: Job completed successfully with 3 violations."
    );
    assert_eq!(
        r.violations_json()["violations"][0]["constraint_check_type"],
        "LessThanThreshold"
    );
}
