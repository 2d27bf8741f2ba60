//! What a run publishes: CloudWatch datums and the EventBridge event.
//!
//! Metrics follow Model Monitor so existing dashboards and alarms work: model-quality metrics
//! (`accuracy`, `f1`, `auc`, `rmse`, ...) in `aws/sagemaker/Endpoints/model-metrics`, data-quality
//! ones (`feature_data_<f>`, `feature_non_null_<f>`, `feature_baseline_drift_<f>`) in
//! `aws/sagemaker/Endpoints/data-metrics`, dimensions `Endpoint` and `MonitoringSchedule` (batch
//! transform: `aws/sagemaker/ModelMonitoring/...`, `MonitoringSchedule` only). A custom namespace
//! takes both kinds. Record counts are published on every run — also for an empty window — so "no
//! data" shows on a dashboard as zeros rather than as a gap (Count unit, same namespace as the
//! model metrics, or the data metrics' without a problem type): `records_captured`,
//! `records_ground_truth`, `records_matched`, `records_unmatched_predictions`,
//! `records_unmatched_labels`, `records_malformed` (capture + ground truth), `records_evaluated`,
//! `records_outside_window`, `constraint_violations`, and `window_empty` (1 for a window without
//! capture or ground truth). Every datum is timestamped with the window's start.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::layout::Target;
use crate::contract::DetailType;
use crate::metrics::{CloudWatchMetric, Counts, MetricKind};
use crate::publish::{MAX_DATUMS_PER_CALL, MetricDatum, MetricUnit, OutgoingEvent, PublishError};

pub const ENDPOINT_MODEL_NAMESPACE: &str = "aws/sagemaker/Endpoints/model-metrics";
pub const ENDPOINT_DATA_NAMESPACE: &str = "aws/sagemaker/Endpoints/data-metrics";
pub const BATCH_MODEL_NAMESPACE: &str = "aws/sagemaker/ModelMonitoring/model-metrics";
pub const BATCH_DATA_NAMESPACE: &str = "aws/sagemaker/ModelMonitoring/data-metrics";

/// A conservative budget for one `PutMetricData` body (the limit is 1 MB).
pub const MAX_CALL_BYTES: usize = 512 * 1024;

pub const COMPLETED: &str = DetailType::MonitoringCompleted.as_str();
pub const VIOLATIONS: &str = DetailType::MonitoringViolations.as_str();

/// Where the datums go.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTarget {
    pub model_namespace: String,
    pub data_namespace: String,
    pub dimensions: Vec<(String, String)>,
}

impl MetricTarget {
    /// Model Monitor's namespaces and dimensions, or one custom namespace for everything.
    pub fn new(
        target: &Target,
        schedule: &str,
        custom_namespace: Option<&str>,
        extra: &[(String, String)],
    ) -> MetricTarget {
        let (model, data) = match (custom_namespace, target) {
            (Some(ns), _) => (ns.to_owned(), ns.to_owned()),
            (None, Target::Endpoint { .. }) => (
                ENDPOINT_MODEL_NAMESPACE.to_owned(),
                ENDPOINT_DATA_NAMESPACE.to_owned(),
            ),
            (None, Target::BatchTransform) => (
                BATCH_MODEL_NAMESPACE.to_owned(),
                BATCH_DATA_NAMESPACE.to_owned(),
            ),
        };
        let mut dimensions = Vec::new();
        if let Target::Endpoint { endpoint_name, .. } = target {
            dimensions.push(("Endpoint".to_owned(), endpoint_name.clone()));
        }
        dimensions.push(("MonitoringSchedule".to_owned(), schedule.to_owned()));
        for (k, v) in extra {
            dimensions.retain(|(n, _)| n != k);
            dimensions.push((k.clone(), v.clone()));
        }
        MetricTarget {
            model_namespace: model,
            data_namespace: data,
            dimensions,
        }
    }
}

/// `records_malformed`: malformed capture plus malformed ground-truth lines.
pub fn malformed(c: &Counts) -> u64 {
    c.malformed_capture + c.malformed_ground_truth
}

/// The record counts as published (name, value).
pub fn count_metrics(c: &Counts, violations: usize, empty: bool) -> Vec<(&'static str, f64)> {
    vec![
        ("records_captured", c.capture_lines as f64),
        ("records_ground_truth", c.ground_truth_lines as f64),
        ("records_matched", c.matched as f64),
        (
            "records_unmatched_predictions",
            c.unmatched_predictions as f64,
        ),
        ("records_unmatched_labels", c.unmatched_labels as f64),
        ("records_malformed", malformed(c) as f64),
        ("records_evaluated", c.evaluated as f64),
        ("records_outside_window", c.outside_window as f64),
        ("constraint_violations", violations as f64),
        ("window_empty", if empty { 1.0 } else { 0.0 }),
    ]
}

/// Every datum of a run, by namespace (in publication order). `metrics` are the engine's
/// `cloudwatch_metrics()`; their kind says which are data quality.
pub fn build_datums(
    metrics: &[CloudWatchMetric],
    counts: &Counts,
    violations: usize,
    empty: bool,
    has_problem_type: bool,
    target: &MetricTarget,
    at: DateTime<Utc>,
) -> Vec<(String, Vec<MetricDatum>)> {
    let datum = |name: &str, value: f64, unit: MetricUnit| {
        let mut d = MetricDatum::new(name, value, unit).at(at);
        d.dimensions = target.dimensions.clone();
        d
    };
    let mut model = Vec::new();
    let mut data = Vec::new();
    for m in metrics {
        if m.kind.is_data_quality() {
            data.push(datum(&m.name, m.value, MetricUnit::None));
        } else if m.kind == MetricKind::ModelQuality && counts.evaluated == 0 {
            // No capture record met a usable label: the engine's figures (accuracy 0, ...) measure
            // nothing, and an alarm on them would fire on every window whose labels are late. The
            // counts (window_empty, ...) say what happened; the alarm sees missing data.
            continue;
        } else {
            model.push(datum(&m.name, m.value, MetricUnit::None));
        }
    }
    let counts: Vec<MetricDatum> = count_metrics(counts, violations, empty)
        .into_iter()
        .map(|(n, v)| datum(n, v, MetricUnit::Count))
        .collect();
    if has_problem_type {
        model.extend(counts)
    } else {
        data.extend(counts)
    }
    let mut out: Vec<(String, Vec<MetricDatum>)> = Vec::new();
    for (ns, ds) in [
        (&target.model_namespace, model),
        (&target.data_namespace, data),
    ] {
        if ds.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(n, _)| n == ns) {
            Some((_, v)) => v.extend(ds),
            None => out.push((ns.clone(), ds)),
        }
    }
    out
}

/// An upper bound of a datum's share of a `PutMetricData` body (any of its protocols).
pub fn estimated_size(d: &MetricDatum) -> usize {
    96 + d.name.len()
        + d.dimensions
            .iter()
            .map(|(n, v)| 32 + n.len() + v.len())
            .sum::<usize>()
}

/// Splits datums into calls of at most 1,000 datums and [`MAX_CALL_BYTES`] estimated bytes.
pub fn chunk_datums(datums: Vec<MetricDatum>) -> Vec<Vec<MetricDatum>> {
    let mut out: Vec<Vec<MetricDatum>> = Vec::new();
    let mut cur: Vec<MetricDatum> = Vec::new();
    let mut bytes = 0;
    for d in datums {
        let s = estimated_size(&d);
        if !cur.is_empty() && (cur.len() == MAX_DATUMS_PER_CALL || bytes + s > MAX_CALL_BYTES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += s;
        cur.push(d);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The event of a run: `Model Monitoring Violations` when the detail lists violations, else
/// `Model Monitoring Completed`. A detail over EventBridge's 256 KB is shrunk — violations, then
/// metrics, halved until it fits, then error samples dropped — and marked `"truncated": true`
/// (the complete lists are in the reports, whose URIs the event carries).
pub fn fit_event(
    source: &str,
    mut detail: Value,
    bus: Option<&str>,
    resources: Vec<String>,
) -> Result<OutgoingEvent, PublishError> {
    let count = detail["violationCount"].as_u64().unwrap_or(0);
    let detail_type = if count > 0 { VIOLATIONS } else { COMPLETED };
    loop {
        let event = OutgoingEvent::new(source, detail_type, detail.clone())
            .on_bus(bus)
            .with_resources(resources.clone());
        match event.validate() {
            Ok(_) => return Ok(event),
            Err(PublishError::EntryTooLarge { size, limit }) => {
                let Some(obj) = detail.as_object_mut() else {
                    return Err(PublishError::EntryTooLarge { size, limit });
                };
                if !shrink(obj) {
                    return Err(PublishError::EntryTooLarge { size, limit });
                }
                obj.insert("truncated".into(), json!(true));
            }
            Err(e) => return Err(e),
        }
    }
}

fn shrink(obj: &mut Map<String, Value>) -> bool {
    if let Some(Value::Array(v)) = obj.get_mut("violations")
        && !v.is_empty()
    {
        v.truncate(v.len() / 2);
        return true;
    }
    if let Some(Value::Object(m)) = obj.get_mut("metrics")
        && !m.is_empty()
    {
        let keep = m.len() / 2;
        let drop: Vec<String> = m.keys().skip(keep).cloned().collect();
        for k in drop {
            m.remove(&k);
        }
        return true;
    }
    for k in ["errorSamples", "baseline", "inputs"] {
        if obj.remove(k).is_some() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{MAX_EVENT_ENTRY_BYTES, prepare_metric_data};
    use chrono::TimeZone;

    fn endpoint() -> Target {
        Target::Endpoint {
            endpoint_name: "churn".into(),
            variant_name: "AllTraffic".into(),
        }
    }

    #[test]
    fn model_monitor_namespaces_and_dimensions() {
        let t = MetricTarget::new(&endpoint(), "sched", None, &[]);
        assert_eq!(t.model_namespace, ENDPOINT_MODEL_NAMESPACE);
        assert_eq!(t.data_namespace, ENDPOINT_DATA_NAMESPACE);
        assert_eq!(
            t.dimensions,
            vec![
                ("Endpoint".into(), "churn".into()),
                ("MonitoringSchedule".into(), "sched".into())
            ]
        );
        let b = MetricTarget::new(
            &Target::BatchTransform,
            "sched",
            None,
            &[("Team".into(), "risk".into())],
        );
        assert_eq!(b.model_namespace, BATCH_MODEL_NAMESPACE);
        assert_eq!(
            b.dimensions,
            vec![
                ("MonitoringSchedule".into(), "sched".into()),
                ("Team".into(), "risk".into())
            ]
        );
        let c = MetricTarget::new(&endpoint(), "sched", Some("driftloop/custom"), &[]);
        assert_eq!(
            (c.model_namespace.as_str(), c.data_namespace.as_str()),
            ("driftloop/custom", "driftloop/custom")
        );
    }

    #[test]
    fn datums_split_by_kind_and_carry_counts() {
        let target = MetricTarget::new(&endpoint(), "s", None, &[]);
        let counts = Counts {
            capture_lines: 10,
            matched: 7,
            evaluated: 7,
            malformed_capture: 2,
            malformed_ground_truth: 1,
            ..Default::default()
        };
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap();
        let metric = |name: &str, value, kind| CloudWatchMetric {
            name: name.to_owned(),
            value,
            kind,
        };
        let mut m = vec![
            metric("accuracy", 0.9, MetricKind::ModelQuality),
            metric("feature_data_age", 31.0, MetricKind::FeatureMean),
        ];
        let out = build_datums(&m, &counts, 1, false, true, &target, at);
        // Drift statistics and the prediction's drift go with the data metrics.
        m.push(metric(
            "feature_psi_age",
            0.3,
            MetricKind::FeatureDriftStatistic,
        ));
        m.push(metric("prediction_ks", 0.2, MetricKind::PredictionDrift));
        let with_drift = build_datums(&m, &counts, 1, false, true, &target, at);
        assert_eq!(
            with_drift[1]
                .1
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>(),
            ["feature_data_age", "feature_psi_age", "prediction_ks"]
        );
        assert_eq!(with_drift[1].0, ENDPOINT_DATA_NAMESPACE);
        m.truncate(2);
        assert_eq!(out.len(), 2);
        let (ns, model) = &out[0];
        assert_eq!(ns, ENDPOINT_MODEL_NAMESPACE);
        let get = |n: &str| model.iter().find(|d| d.name == n).map(|d| d.value);
        assert_eq!(get("accuracy"), Some(0.9));
        assert_eq!(get("records_matched"), Some(7.0));
        assert_eq!(get("records_malformed"), Some(3.0));
        assert_eq!(get("constraint_violations"), Some(1.0));
        assert_eq!(get("window_empty"), Some(0.0));
        assert!(
            model
                .iter()
                .all(|d| d.timestamp == Some(at) && d.dimensions.len() == 2)
        );
        assert_eq!(
            out[1].1.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["feature_data_age"]
        );
        // No labelled record evaluated (labels not in yet): no model-quality figure (the engine's
        // zeros would trip an accuracy alarm), the counts still say what happened.
        let unlabelled = Counts {
            evaluated: 0,
            matched: 0,
            ..counts.clone()
        };
        let out = build_datums(&m, &unlabelled, 0, true, true, &target, at);
        let names: Vec<&str> = out[0].1.iter().map(|d| d.name.as_str()).collect();
        assert!(!names.contains(&"accuracy"), "{names:?}");
        assert!(names.contains(&"window_empty"), "{names:?}");
        assert_eq!(
            out[1].1[0].name, "feature_data_age",
            "data quality still published"
        );
        // One custom namespace: one group.
        let custom = MetricTarget::new(&endpoint(), "s", Some("x"), &[]);
        assert_eq!(
            build_datums(&m, &counts, 0, true, true, &custom, at).len(),
            1
        );
    }

    #[test]
    fn chunks_respect_count_and_size() {
        let many: Vec<MetricDatum> = (0..2500)
            .map(|i| MetricDatum::count(format!("m{i}"), 1.0))
            .collect();
        let sizes: Vec<usize> = chunk_datums(many).iter().map(Vec::len).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        let fat: Vec<MetricDatum> = (0..100)
            .map(|i| {
                (0..30).fold(MetricDatum::count(format!("m{i}"), 1.0), |d, k| {
                    d.dimension(format!("d{k}"), "v".repeat(1000))
                })
            })
            .collect();
        let chunks = chunk_datums(fat);
        assert!(chunks.len() > 1);
        for c in &chunks {
            assert!(c.iter().map(estimated_size).sum::<usize>() <= MAX_CALL_BYTES);
            let (batches, dropped) = prepare_metric_data(c.clone());
            assert!(dropped.is_empty() && batches.len() == 1);
        }
    }

    #[test]
    fn events_shrink_to_fit_and_pick_their_type() {
        let violations: Vec<Value> =
            (0..5000).map(|i| json!({"feature_name": format!("f{i}"), "constraint_check_type": "baseline_drift_check", "description": "x".repeat(100)})).collect();
        let detail = json!({"violationCount": 5000, "violations": violations, "metrics": {"a": 1.0}, "reports": {"summary": "s3://b/k"}});
        let e = fit_event("driftloop", detail, Some("bus"), vec![]).unwrap();
        assert_eq!(e.detail_type, VIOLATIONS);
        let size = e.entry_size(&e.detail.to_string());
        assert!(size <= MAX_EVENT_ENTRY_BYTES, "{size}");
        assert_eq!(e.detail["truncated"], true);
        assert_eq!(e.detail["violationCount"], 5000);
        assert!(!e.detail["violations"].as_array().unwrap().is_empty());
        assert_eq!(e.event_bus_name.as_deref(), Some("bus"));
        let ok = fit_event(
            "driftloop",
            json!({"violationCount": 0, "violations": []}),
            None,
            vec![],
        )
        .unwrap();
        assert_eq!(ok.detail_type, COMPLETED);
        assert!(ok.detail.get("truncated").is_none());
        let hopeless = fit_event(
            "driftloop",
            json!({"violationCount": 0, "reports": "x".repeat(300_000)}),
            None,
            vec![],
        );
        assert!(matches!(hopeless, Err(PublishError::EntryTooLarge { .. })));
    }
}
