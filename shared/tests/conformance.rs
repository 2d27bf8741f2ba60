//! Conformance with real Model Monitor artifacts (copied into `tests/data/conformance/`, each with
//! its provenance line in `PROVENANCE.tsv`): every baseline file parses, violations files are read
//! and ours have their shape, model-quality checks reproduce Model Monitor's violations, and
//! headerless CSV capture is matched to header-named baselines by position — consistent capture
//! gives no violation (beyond what Model Monitor itself reported on the same data), drifted capture
//! gives exactly the drift checks of the drifted features. The cases of the same shapes written
//! here (output last, no output columns, a String feature with categorical buckets, column counts
//! that disagree, JSON capture, explicit names) use the engine's defaults, no tuned thresholds.

mod common;

use common::*;
use driftloop::metrics::dq::checks::check_model_quality;
use driftloop::metrics::dq::sample::rows_from_statistics;
use driftloop::metrics::dq::stats::DataQualityState;
use driftloop::metrics::dq::suggest::suggest_constraints;
use driftloop::metrics::{
    BaselineConstraints, BaselineStatistics, Engine, JobResult, MetricKind, MonitorConfig,
    OutputColumnsPosition, ProblemType,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn dq_config() -> MonitorConfig {
    MonitorConfig {
        data_quality: true,
        ..Default::default()
    }
}

fn run(
    cfg: MonitorConfig,
    stats: &BaselineStatistics,
    cons: &BaselineConstraints,
    lines: &[String],
) -> JobResult {
    let mut e =
        Engine::new(cfg).with_data_quality_baseline(Some(stats.clone()), Some(cons.clone()));
    for (i, l) in lines.iter().enumerate() {
        e.push_capture_line(l, "capture.jsonl", i as u64 + 1);
    }
    e.finish().unwrap()
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn drift_metrics(r: &JobResult) -> BTreeMap<String, f64> {
    r.cloudwatch_metrics()
        .into_iter()
        .filter(|m| m.kind == MetricKind::FeatureDrift)
        .map(|m| (m.name, m.value))
        .collect()
}

/// Descriptions equal word for word, numbers to the last digit or two (Model Monitor prints a value
/// in a description with Java's `Double.toString`, which differs from the shortest form — the one
/// in its own `statistics.json` — in the last digit now and then).
fn same_description(ours: &str, theirs: &str) {
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .map(|w| {
                w.trim_matches(|c| c == '\'' || c == '%' || c == '.')
                    .to_string()
            })
            .collect()
    };
    let (a, b) = (words(ours), words(theirs));
    assert_eq!(a.len(), b.len(), "{ours:?} vs {theirs:?}");
    for (x, y) in a.iter().zip(&b) {
        match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => assert!(
                (x - y).abs() <= 1e-14 * y.abs().max(1.0),
                "{ours:?} vs {theirs:?}"
            ),
            _ => assert_eq!(x, y, "{ours:?} vs {theirs:?}"),
        }
    }
}

#[test]
fn provenance_lists_every_copied_file_with_its_size() {
    let prov = text("PROVENANCE.tsv");
    let mut lines = prov.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(header[0], "local_file");
    let bytes_col = header.iter().position(|h| *h == "bytes").unwrap();
    let mut listed = BTreeMap::new();
    for l in lines {
        let cols: Vec<&str> = l.split('\t').collect();
        assert_eq!(cols.len(), header.len(), "{l}");
        listed.insert(cols[0].to_string(), cols[bytes_col].parse::<u64>().unwrap());
    }
    let files = all_files();
    assert_eq!(
        files.iter().cloned().collect::<BTreeSet<_>>(),
        listed.keys().cloned().collect::<BTreeSet<_>>()
    );
    for f in &files {
        assert_eq!(std::fs::metadata(path(f)).unwrap().len(), listed[f], "{f}");
    }
}

#[test]
fn every_baseline_file_parses() {
    let (mut dq_stats, mut dq_cons, mut mq) = (0, 0, 0);
    for f in all_files() {
        let v = json(&f);
        let is_violations = v.get("violations").is_some();
        if let Some(feats) = v.get("features").and_then(Value::as_array) {
            let names: Vec<&str> = feats.iter().map(|x| x["name"].as_str().unwrap()).collect();
            if f.ends_with("statistics.json") {
                let s = stats(&f);
                dq_stats += 1;
                assert_eq!(
                    s.features
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>(),
                    names
                );
                for (parsed, raw) in s.features.iter().zip(feats) {
                    let present = parsed.num_present;
                    if let Some(ns) = raw.get("numerical_statistics") {
                        assert!(parsed.inferred_type.is_numeric(), "{f} {}", parsed.name);
                        let k = ns
                            .pointer("/distribution/kll/sketch/parameters/k")
                            .and_then(Value::as_f64);
                        let weight: f64 = parsed.weighted_items().iter().map(|x| x.1).sum();
                        if k.is_some_and(|k| present <= k) {
                            // The sketch holds every value.
                            assert_eq!(weight, present, "{f} {}", parsed.name);
                        }
                        assert_eq!(parsed.mean, ns["mean"].as_f64(), "{f} {}", parsed.name);
                    } else {
                        let total: f64 = parsed.categories.iter().map(|c| c.1).sum();
                        assert_eq!(total, present, "{f} {}", parsed.name);
                    }
                }
            } else {
                let c = constraints(&f);
                dq_cons += 1;
                assert_eq!(
                    c.features
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>(),
                    names
                );
                assert!(c.monitoring_config.evaluate_constraints, "{f}");
                assert!(c.monitoring_config.perform_comparison, "{f}");
            }
        } else if !is_violations {
            let key = [
                ProblemType::Regression,
                ProblemType::BinaryClassification,
                ProblemType::MulticlassClassification,
            ]
            .into_iter()
            .find(|p| v.get(p.constraints_key()).is_some() || v.get(p.statistics_key()).is_some())
            .unwrap_or_else(|| panic!("{f}: neither data- nor model-quality"));
            if v.get(key.constraints_key()).is_some() {
                check_model_quality(&v, key.constraints_key(), &[]).unwrap();
            }
            mq += 1;
        }
    }
    assert_eq!((dq_stats, dq_cons), (4, 7));
    assert!(mq >= 6, "{mq}");
    // An older spelling: `enable_comparisons`, `min_domain_mass`, `monitoring_config_overrides`.
    let sdk = constraints("sdk-tests-data-monitor/constraints.json");
    assert_eq!(sdk.monitoring_config.comparison_threshold, 1.0);
    assert_eq!(sdk.monitoring_config.domain_content_threshold, 1.0);
    assert_eq!(
        sdk.features[0].domains.as_deref(),
        Some(&["preproc-not-YET-supported-for-csv-json".to_string()][..])
    );
}

#[test]
fn model_quality_checks_reproduce_model_monitor_violations() {
    let base = json("awsmljp-nyctaxi-model_quality/baseline/constraints.json");
    for run in ["2020/02/03/01", "2020/01/13/01"] {
        let dir = format!("awsmljp-nyctaxi-model_quality/reports/{run}");
        let st = json(&format!("{dir}/statistics.json"));
        let vals: Vec<(String, f64)> = st["regression_metrics"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["value"].as_f64().unwrap()))
            .collect();
        let mut ours = check_model_quality(&base, "regression_constraints", &vals).unwrap();
        let mut theirs = violations(&json(&format!("{dir}/constraint_violations.json")));
        ours.sort_by(|a, b| a.metric_name.cmp(&b.metric_name));
        theirs.sort_by(|a, b| a.metric_name.cmp(&b.metric_name));
        assert_eq!(kinds(&ours), kinds(&theirs), "{run}");
        for (a, b) in ours.iter().zip(&theirs) {
            same_description(&a.description, &b.description);
        }
    }
}

#[test]
fn model_quality_statistics_have_model_monitors_shape() {
    let mut e = Engine::new(MonitorConfig {
        problem_type: Some(ProblemType::Regression),
        ..Default::default()
    });
    for i in 0..50 {
        e.push_ground_truth_line(
            &format!(
                r#"{{"groundTruthData":{{"data":"{}","encoding":"CSV"}},"eventMetadata":{{"eventId":"e{i}"}},"eventVersion":"0"}}"#,
                i as f64
            ),
            "gt",
            i,
        )
        .unwrap();
    }
    for i in 0..50 {
        e.push_capture_line(
            &format!(
                r#"{{"captureData":{{"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"e{i}","inferenceTime":"2022-12-11T13:10:00Z"}},"eventVersion":"0"}}"#,
                i as f64 + 0.5
            ),
            "cap",
            i,
        );
    }
    let ours = e.finish().unwrap().statistics_json();
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    for f in [
        "awsmljp-nyctaxi-model_quality/baseline/statistics.json",
        "awsmljp-nyctaxi-model_quality/reports/2020/02/03/01/statistics.json",
        "sdk-model-card-metrics/model_monitor_model_quality_regression.json",
    ] {
        let real = json(f);
        let rm = real
            .get("regression_metrics")
            .unwrap_or_else(|| panic!("{f}"));
        assert!(
            keys(&ours["regression_metrics"]).is_superset(&keys(rm)),
            "{f}"
        );
        for (m, v) in rm.as_object().unwrap() {
            assert_eq!(keys(&ours["regression_metrics"][m]), keys(v), "{f} {m}");
        }
        if let Some(d) = real.get("dataset") {
            assert!(keys(&ours["dataset"]).contains("item_count"), "{f}");
            assert!(d.get("item_count").is_some());
            assert!(keys(&ours).is_superset(&keys(&real)), "{f}");
        }
    }
}

#[test]
fn violations_files_are_read_and_ours_have_their_keys() {
    let mut real_keys: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    let mut files = 0;
    for f in all_files() {
        let v = json(&f);
        let Some(list) = v.get("violations").and_then(Value::as_array) else {
            continue;
        };
        files += 1;
        let parsed = violations(&v);
        assert_eq!(parsed.len(), list.len(), "{f}");
        for (p, raw) in parsed.iter().zip(list) {
            assert!(!p.constraint_check_type.is_empty(), "{f}");
            assert!(p.feature_name.is_some() || p.metric_name.is_some(), "{f}");
            if !f.starts_with("ase-nlp-byoc-mmd/") {
                // The bring-your-own-container file adds keys of its own.
                real_keys.insert(raw.as_object().unwrap().keys().cloned().collect());
            }
        }
    }
    assert_eq!(files, 5);
    // Ours: a data-quality and a model-quality violation.
    let r = run(
        dq_config(),
        &stats(NYC_DQ_RUN_STATS),
        &constraints(NYC_DQ_BASELINE),
        &nyc_capture(&NYC_SHIFTED),
    );
    let mq = check_model_quality(
        &json("awsmljp-nyctaxi-model_quality/baseline/constraints.json"),
        "regression_constraints",
        &[("mae".into(), 1e9)],
    )
    .unwrap();
    let mut ours = violations(&r.violations_json());
    ours.extend(mq);
    let checks: BTreeSet<&str> = ours
        .iter()
        .map(|v| v.constraint_check_type.as_str())
        .collect();
    assert!(checks.len() >= 4, "{checks:?}");
    for v in &ours {
        let k: BTreeSet<String> = serde_json::to_value(v)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert!(real_keys.contains(&k), "{k:?} not among {real_keys:?}");
    }
}

#[test]
fn a_header_named_baseline_names_headerless_capture_by_position() {
    let st = stats(NYC_DQ_RUN_STATS);
    let cons = constraints(NYC_DQ_BASELINE);
    let r = run(dq_config(), &st, &cons, &nyc_capture(&[]));
    assert_eq!(r.counts.data_quality_records, 93);
    assert_eq!(r.counts.data_quality_column_mismatch, 0);
    // Statistics, checks and metrics carry the baseline's names, in its order.
    let ours = r.data_quality_statistics_json().unwrap();
    let names: Vec<&str> = ours["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let base: Vec<&str> = cons.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, base);
    // What Model Monitor reported on this data, besides drift, to the description; no drift (the
    // baseline statistics are the data's own), no missing or extra column.
    let expected = nyc_expected_non_drift();
    assert_eq!(expected.len(), 13);
    let sorted = |mut v: Vec<driftloop::metrics::Violation>| {
        v.sort_by(|a, b| {
            (&a.feature_name, &a.constraint_check_type)
                .cmp(&(&b.feature_name, &b.constraint_check_type))
        });
        v
    };
    let (ours, theirs) = (sorted(r.violations.clone()), sorted(expected));
    assert_eq!(kinds(&ours), kinds(&theirs));
    for (a, b) in ours.iter().zip(&theirs) {
        same_description(&a.description, &b.description);
    }
    let drift = drift_metrics(&r);
    assert_eq!(
        drift.len(),
        143,
        "one drift metric per named numeric feature"
    );
    assert!(
        drift
            .keys()
            .all(|k| !k.starts_with("feature_baseline_drift__c")),
        "{drift:?}"
    );
    assert_eq!(drift["feature_baseline_drift_history_28slots"], 0.0);
    assert!(
        r.cloudwatch_metrics()
            .iter()
            .all(|m| !m.name.ends_with("__c0"))
    );
}

#[test]
fn drifted_named_features_are_the_only_new_violations() {
    let r = run(
        dq_config(),
        &stats(NYC_DQ_RUN_STATS),
        &constraints(NYC_DQ_BASELINE),
        &nyc_capture(&NYC_SHIFTED),
    );
    let mut expected = kinds(&nyc_expected_non_drift());
    for f in NYC_SHIFTED {
        expected.insert((f.to_string(), "baseline_drift_check".to_string()));
    }
    assert_eq!(kinds(&r.violations), expected);
    let drift = drift_metrics(&r);
    for f in NYC_SHIFTED {
        assert!(
            drift[&format!("feature_baseline_drift_{f}")] > 0.5,
            "{drift:?}"
        );
    }
    assert_eq!(
        drift.values().filter(|d| **d > 0.1).count(),
        NYC_SHIFTED.len()
    );
}

const BOSTON_NO_OUTPUT: &str =
    "nb-amazon-sagemaker-mlops-workshop-boston/RECONSTRUCTED_from_notebook_log_run-2021-03-14";
const BOSTON_OUTPUT_LAST: &str =
    "nb-packt-learn-sagemaker-2e-boston/RECONSTRUCTED_from_notebook_log";

#[test]
fn a_baseline_without_output_columns_leaves_the_output_out() {
    let st = stats(&format!("{BOSTON_NO_OUTPUT}/statistics.json"));
    let cons = constraints(&format!("{BOSTON_NO_OUTPUT}/constraints.json"));
    assert_eq!(cons.features.len(), 13);
    let lines = |shifted: &[&str]| -> Vec<String> {
        rows_shifted(&st, shifted)
            .iter()
            .enumerate()
            .map(|(i, r)| capture_line(i, &r.join(","), Some("23.5")))
            .collect()
    };
    let r = run(dq_config(), &st, &cons, &lines(&[]));
    assert_eq!(r.counts.data_quality_records, 404);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.counts.data_quality_column_mismatch, 0);
    assert_eq!(drift_metrics(&r).len(), 13);
    let r = run(dq_config(), &st, &cons, &lines(&["RM", "LSTAT"]));
    assert_eq!(
        kinds(&r.violations),
        set(&[
            ("LSTAT", "baseline_drift_check"),
            ("RM", "baseline_drift_check")
        ])
    );
}

#[test]
fn a_baseline_with_the_output_last_matches_by_position_end_or_by_explicit_names() {
    let st = stats(&format!("{BOSTON_OUTPUT_LAST}/statistics.json"));
    let cons = constraints(&format!("{BOSTON_OUTPUT_LAST}/constraints.json"));
    let names: Vec<String> = cons.features.iter().map(|f| f.name.clone()).collect();
    assert_eq!(names.last().map(String::as_str), Some("medv"));
    let lines = |shifted: &[&str]| -> Vec<String> {
        rows_shifted(&st, shifted)
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (input, output) = r.split_at(r.len() - 1);
                capture_line(i, &input.join(","), Some(&output[0]))
            })
            .collect()
    };
    let end = MonitorConfig {
        output_columns_position: OutputColumnsPosition::End,
        ..dq_config()
    };
    let r = run(end.clone(), &st, &cons, &lines(&[]));
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    // The names in capture order (output first) do the same with the default layout.
    let mut capture_order = vec!["medv".to_string()];
    capture_order.extend(names[..names.len() - 1].iter().cloned());
    let explicit = MonitorConfig {
        feature_names: Some(capture_order),
        ..dq_config()
    };
    let r = run(explicit.clone(), &st, &cons, &lines(&[]));
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    for cfg in [end, explicit] {
        let r = run(cfg, &st, &cons, &lines(&["lstat"]));
        assert_eq!(
            kinds(&r.violations),
            set(&[("lstat", "baseline_drift_check")])
        );
    }
    // Positions are positions: with the default layout the output lands on `crim`.
    let r = run(dq_config(), &st, &cons, &lines(&[]));
    assert!(
        kinds(&r.violations).contains(&("crim".into(), "baseline_drift_check".into())),
        "{:?}",
        r.violations
    );
}

/// A baseline suggested from a CSV with a header: output `label` (String) first, then a String
/// feature with categorical buckets, a Fractional and an Integral one.
fn churn_baseline() -> (BaselineStatistics, BaselineConstraints, Vec<Vec<String>>) {
    let header: Vec<String> = ["label", "plan", "minutes", "calls"]
        .map(String::from)
        .to_vec();
    let plans = ["basic", "basic", "pro", "max", "pro"];
    let mut rows = Vec::new();
    for i in 0..1000u32 {
        rows.push(vec![
            if i % 3 == 0 { "yes" } else { "no" }.to_string(),
            plans[i as usize % plans.len()].to_string(),
            format!("{:.2}", 50.0 + f64::from(i % 97) * 1.37),
            format!("{}", i % 13),
        ]);
    }
    let mut dq = DataQualityState::default();
    for r in &rows {
        dq.push_csv_fields(r.iter().map(String::as_str), Some(&header));
    }
    let st = BaselineStatistics::from_value(&dq.statistics_json()).unwrap();
    let cons = BaselineConstraints::from_value(&suggest_constraints(&dq)).unwrap();
    assert_eq!(st.features[1].categories.len(), 3);
    (st, cons, rows)
}

#[test]
fn a_string_feature_with_categorical_buckets_drifts_by_its_buckets() {
    let (st, cons, _) = churn_baseline();
    let rows = rows_from_statistics(&st);
    let r = run(dq_config(), &st, &cons, &capture_output_first(&rows, 1));
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    let drift = drift_metrics(&r);
    assert_eq!(
        drift.keys().cloned().collect::<Vec<_>>(),
        [
            "feature_baseline_drift_calls",
            "feature_baseline_drift_label",
            "feature_baseline_drift_minutes",
            "feature_baseline_drift_plan"
        ]
    );
    // Same domain, another mix: every plan is "basic".
    let drifted: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r[1] = "basic".into();
            r
        })
        .collect();
    let r = run(dq_config(), &st, &cons, &capture_output_first(&drifted, 1));
    assert_eq!(
        kinds(&r.violations),
        set(&[("plan", "baseline_drift_check")])
    );
}

#[test]
fn a_column_count_that_disagrees_is_a_missing_or_extra_column() {
    let (st, cons, rows) = churn_baseline();
    // One request column short: `calls` gets no value.
    let short: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| capture_line(i, &r[1..3].join(","), Some(&r[0])))
        .collect();
    let r = run(dq_config(), &st, &cons, &short);
    assert_eq!(
        kinds(&r.violations),
        set(&[("calls", "missing_column_check")])
    );
    assert_eq!(r.counts.data_quality_column_mismatch, 1000);
    assert!(
        r.violations[0].description.contains(
            "Number of columns in current dataset: 3, Number of columns in baseline constraints: 4"
        ),
        "{}",
        r.violations[0].description
    );
    assert!(
        r.error_samples.iter().any(|e| e
            .message
            .contains("record has 3 columns (1 output + 2 input)")),
        "{:?}",
        r.error_samples
    );
    // Two columns too many: `_c4`, `_c5` are extra.
    let long: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| capture_line(i, &format!("{},7,8", r[1..].join(",")), Some(&r[0])))
        .collect();
    let r = run(dq_config(), &st, &cons, &long);
    assert_eq!(
        kinds(&r.violations),
        set(&[("_c4", "extra_column_check"), ("_c5", "extra_column_check")])
    );
    assert_eq!(r.counts.data_quality_column_mismatch, 1000);
}

#[test]
fn explicit_feature_names_override_the_baseline() {
    let (st, cons, rows) = churn_baseline();
    let cfg = MonitorConfig {
        feature_names: Some(
            ["label", "plan", "minutes", "n_calls"]
                .map(String::from)
                .to_vec(),
        ),
        ..dq_config()
    };
    let r = run(cfg, &st, &cons, &capture_output_first(&rows, 1));
    assert_eq!(
        kinds(&r.violations),
        set(&[
            ("calls", "missing_column_check"),
            ("n_calls", "extra_column_check")
        ])
    );
    assert_eq!(r.counts.data_quality_column_mismatch, 0);
}

#[test]
fn json_capture_keeps_matching_by_key() {
    let (st, cons, rows) = churn_baseline();
    let lines: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            // Keys in another order than the baseline's: matched by name, not position.
            let input = serde_json::json!({"calls": r[3].parse::<i64>().unwrap(), "minutes": r[2].parse::<f64>().unwrap(), "plan": r[1]});
            let output = serde_json::json!({"label": r[0]});
            serde_json::json!({
                "captureData": {
                    "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": input.to_string(), "encoding": "JSON"},
                    "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": output.to_string(), "encoding": "JSON"},
                },
                "eventMetadata": {"eventId": format!("j{i}"), "inferenceTime": "2024-01-01T00:00:00Z"},
                "eventVersion": "0",
            })
            .to_string()
        })
        .collect();
    let r = run(dq_config(), &st, &cons, &lines);
    assert_eq!(r.counts.data_quality_records, 1000);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(drift_metrics(&r).len(), 4);
}
