//! Shared by the conformance tests: the copied Model Monitor artifacts
//! (`tests/data/conformance/`, provenance in its `PROVENANCE.tsv`) and capture generated from a
//! baseline's own statistics.
#![allow(dead_code)]

use driftloop::metrics::dq::checks::Violation;
use driftloop::metrics::dq::sample::rows_from_statistics;
use driftloop::metrics::{BaselineConstraints, BaselineStatistics};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub const NYC_DQ_BASELINE: &str = "awsmljp-nyctaxi-data_quality/baseline/constraints.json";
/// A Model Monitor run's own `statistics.json` (KLL sketches holding every value of the run).
pub const NYC_DQ_RUN_STATS: &str =
    "awsmljp-nyctaxi-data_quality/reports/2020/04/06/01/statistics.json";
/// Model Monitor's violations of that run against the baseline.
pub const NYC_DQ_RUN_VIOLATIONS: &str =
    "awsmljp-nyctaxi-data_quality/reports/2020/04/06/01/constraint_violations.json";
/// Two features of the nyctaxi baseline shifted in the drifted captures.
pub const NYC_SHIFTED: [&str; 2] = ["history_28slots", "fare_amount_mean_100slot"];

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance")
}

pub fn path(rel: &str) -> PathBuf {
    dir().join(rel)
}

pub fn text(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn json(rel: &str) -> Value {
    serde_json::from_str(&text(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every copied file (relative paths, sorted), PROVENANCE.tsv excluded.
pub fn all_files() -> Vec<String> {
    fn walk(base: &Path, p: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap().path();
            if e.is_dir() {
                walk(base, &e, out);
            } else {
                let rel = e.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                if rel != "PROVENANCE.tsv" {
                    out.push(rel);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir(), &dir(), &mut out);
    out.sort();
    out
}

pub fn stats(rel: &str) -> BaselineStatistics {
    BaselineStatistics::parse(&text(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn constraints(rel: &str) -> BaselineConstraints {
    BaselineConstraints::parse(&text(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A violations file's entries.
pub fn violations(v: &Value) -> Vec<Violation> {
    serde_json::from_value(v["violations"].clone()).expect("violations array")
}

/// (feature or metric, check type) of each violation.
pub fn kinds(v: &[Violation]) -> BTreeSet<(String, String)> {
    v.iter()
        .map(|v| {
            (
                v.feature_name
                    .clone()
                    .or_else(|| v.metric_name.clone())
                    .unwrap_or_default(),
                v.constraint_check_type.clone(),
            )
        })
        .collect()
}

/// Rows consistent with `stats` (its features in order), with the named features moved far
/// outside their range (value + 10 × (max − min) + 100).
pub fn rows_shifted(stats: &BaselineStatistics, shifted: &[&str]) -> Vec<Vec<String>> {
    let mut rows = rows_from_statistics(stats);
    for name in shifted {
        let (i, f) = stats
            .features
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == *name)
            .unwrap_or_else(|| panic!("no feature {name}"));
        let by = 10.0 * (f.max.unwrap() - f.min.unwrap()) + 100.0;
        for r in rows.iter_mut() {
            if let Ok(x) = r[i].parse::<f64>() {
                r[i] = format!("{:?}", x + by);
            }
        }
    }
    rows
}

/// A real-time capture line with CSV input and (when given) CSV output.
pub fn capture_line(i: usize, input: &str, output: Option<&str>) -> String {
    let mut cd = serde_json::json!({
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": input, "encoding": "CSV"},
    });
    if let Some(o) = output {
        cd["endpointOutput"] = serde_json::json!({"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT", "data": o, "encoding": "CSV"});
    }
    serde_json::json!({
        "captureData": cd,
        "eventMetadata": {"eventId": format!("00000000-0000-4000-8000-{i:012}"), "inferenceTime": "2020-04-06T01:10:00Z"},
        "eventVersion": "0",
    })
    .to_string()
}

/// Capture lines of rows whose first `outputs` fields are the model output (Model Monitor's
/// `output_columns_position='START'` baseline) and the rest the request.
pub fn capture_output_first(rows: &[Vec<String>], outputs: usize) -> Vec<String> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| capture_line(i, &r[outputs..].join(","), Some(&r[..outputs].join(","))))
        .collect()
}

/// The nyctaxi capture: rows of the real run's statistics, `pickup_count` (the output) first.
pub fn nyc_capture(shifted: &[&str]) -> Vec<String> {
    capture_output_first(&rows_shifted(&stats(NYC_DQ_RUN_STATS), shifted), 1)
}

/// What Model Monitor reported for the run's data against the baseline, besides drift (drift
/// there is measured against the baseline's own statistics, which were not published): the
/// data-type checks of the 9 String and 1 Integral baseline features whose captured values are
/// Fractional, and the completeness checks of the 3 features with missing values.
pub fn nyc_expected_non_drift() -> Vec<Violation> {
    violations(&json(NYC_DQ_RUN_VIOLATIONS))
        .into_iter()
        .filter(|v| v.constraint_check_type != "baseline_drift_check")
        .collect()
}
