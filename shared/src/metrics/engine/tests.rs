//! The engine through its API: joins, duplicates, windows, batch outputs, the label pipeline and
//! data quality over CSV and JSON payloads.

use super::*;
use crate::metrics::dq::stats::DataQualityState;
use crate::metrics::parse::csv_rows;
use crate::metrics::util::parse_time_millis;
use std::borrow::Cow;

/// Data quality over CSV payloads (the one-row fast path and the row-vector path) equals
/// Model Monitor's column order pushed row by row: output columns, then the input's.
#[test]
fn csv_input_rows_for_data_quality() {
    let inputs = [
        "1,2.5,a",
        "3, 4,b",
        "",
        "  ",
        "5,,c",
        "7,8.25,\"x,y\"",
        "9,1e3,d\n10,11,e",
        "12,13,f\r",
        "true,-0.5,g",
        "14,15,h,extra",
        "16",
    ];
    let cfg = MonitorConfig {
        data_quality: true,
        ..Default::default()
    };
    let mut e = Engine::new(cfg.clone());
    let mut want = DataQualityState::new(cfg.max_categories);
    let mut rows = 0;
    for (n, text) in inputs.iter().cycle().take(60).enumerate() {
        let data = serde_json::to_string(text).unwrap();
        let line = format!(
            r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":{data},"encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"0.5","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"e{n}","inferenceTime":"2024-01-01T00:00:00Z"}},"eventVersion":"0"}}"#
        );
        e.push_capture_bytes(line.as_bytes(), "cap", n as u64 + 1);
        // Output columns first; every input row repeats the (single) output row.
        let out: Vec<Cow<'_, str>> = vec![Cow::Borrowed("0.5")];
        let ins: Vec<Vec<Cow<'_, str>>> = csv_rows(text).collect();
        for r in 0..ins.len().max(1) {
            let mut fields = out.clone();
            if let Some(i) = ins.get(r) {
                fields.extend(i.iter().cloned());
            }
            want.push_csv_row(&fields, None);
            rows += 1;
        }
    }
    let got = e.snapshot();
    assert_eq!(got.counts.data_quality_records, rows);
    assert_eq!(got.data_quality.as_ref(), Some(&want));
    assert!(rows > 50, "{rows}");
}

fn cap(id: &str, out: &str, t: &str) -> String {
    format!(
        r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"1,2","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{out}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{id}","inferenceTime":"{t}"}},"eventVersion":"0"}}"#
    )
}

fn gt(id: &str, label: &str) -> String {
    format!(
        r#"{{"groundTruthData":{{"data":"{label}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#
    )
}

#[test]
fn join_counts_duplicates_and_window() {
    let cfg = MonitorConfig {
        problem_type: Some(ProblemType::BinaryClassification),
        window_start_ms: parse_time_millis("2024-01-01T00:00:00Z"),
        window_end_ms: parse_time_millis("2024-01-01T01:00:00Z"),
        ..Default::default()
    };
    let mut e = Engine::new(cfg);
    let g = [
        gt("a", "1"),
        gt("b", "0"),
        gt("b", "1"),
        gt("c", "0"),
        gt("d", "7"),
        "not json".into(),
        gt("z", "1"),
    ]
    .join("\n");
    e.feed_ground_truth("gt.jsonl", g.as_bytes()).unwrap();
    let c = [
        cap("a", "0.9", "2024-01-01T00:10:00Z"),
        cap("a", "0.1", "2024-01-01T00:10:00Z"),
        cap("b", "0.8", "2024-01-01T00:20:00Z"),
        cap("c", "0.7", "2024-01-01T00:30:00Z"),
        cap("d", "0.7", "2024-01-01T00:30:00Z"),
        cap("x", "0.7", "2024-01-01T00:30:00Z"),
        cap("c", "0.7", "2024-01-01T02:30:00Z"),
        cap("y", "NaN", "2024-01-01T00:30:00Z"),
        "{\"truncated".into(),
        String::new(),
    ]
    .join("\n");
    e.feed_capture("cap.jsonl", c.as_bytes(), |_| {}).unwrap();
    assert!(matches!(
        e.push_ground_truth_line(&gt("q", "1"), "late", 1),
        Err(EngineError::GroundTruthAfterCapture)
    ));
    let r = e.finish().unwrap();
    let k = &r.counts;
    assert_eq!(k.duplicate_ground_truth_ids, 1);
    assert_eq!(k.malformed_ground_truth, 1);
    assert_eq!(k.matched, 4, "{k:?}");
    assert_eq!(k.duplicate_capture_ids, 1);
    assert_eq!(k.unmatched_predictions, 2);
    assert_eq!(k.unmatched_labels, 1); // z
    assert_eq!(k.outside_window, 1);
    assert_eq!(k.malformed_capture, 1);
    assert_eq!(k.invalid_labels, 1); // d = 7
    assert_eq!(k.evaluated, 3);
    assert!(
        r.error_samples
            .iter()
            .any(|s| s.source == "cap.jsonl" && s.line == 9),
        "{:?}",
        r.error_samples
    );
    // Evaluated: a (1, 0.9), b (last wins: 1, 0.8), c (0, 0.7) -> tp 2, fp 1.
    let q = r.quality.as_ref().unwrap();
    assert_eq!(q.get("precision").unwrap().value, 2.0 / 3.0);
    assert_eq!(q.get("recall").unwrap().value, 1.0);
    assert_eq!(q.get("auc").unwrap().value, 1.0);
    let st = r.statistics_json();
    assert_eq!(st["dataset"]["item_count"], 3);
    assert!(st["binary_classification_metrics"]["auc"]["standard_deviation"] == "NaN");
    assert!(r.summary().contains("4 matched"));
}

#[test]
fn batch_transform_outputs_join_on_generated_ids() {
    use crate::metrics::CaptureFormat;
    for (format, lines) in [
        (
            CaptureFormat::BatchCsv,
            vec![
                "3.5,a1,2024-01-01T00:00:00Z",
                "1.0,a2,2024-01-01T00:00:01Z",
                "2.0,zz,2024-01-01T00:00:02Z",
            ],
        ),
        (
            CaptureFormat::Realtime,
            vec![
                r#"{"prediction":3.5,"SageMakerInferenceId":"a1","SageMakerInferenceTime":"2024-01-01T00:00:00Z"}"#,
                r#"{"prediction":1.0,"SageMakerInferenceId":"a2","SageMakerInferenceTime":"2024-01-01T00:00:01Z"}"#,
                r#"{"prediction":2.0,"SageMakerInferenceId":"zz","SageMakerInferenceTime":"2024-01-01T00:00:02Z"}"#,
            ],
        ),
    ] {
        let json = format != CaptureFormat::BatchCsv;
        let cfg = MonitorConfig {
            problem_type: Some(ProblemType::Regression),
            capture_format: format,
            inference_attribute: Some(if json { "prediction" } else { "0" }.into()),
            ..Default::default()
        };
        let mut e = Engine::new(cfg);
        e.push_ground_truth_line(&gt("a1", "3"), "g", 1).unwrap();
        e.push_ground_truth_line(&gt("a2", "2"), "g", 2).unwrap();
        for (i, l) in lines.iter().enumerate() {
            e.push_capture_line(l, "c", i as u64 + 1);
        }
        let r = e.finish().unwrap();
        assert_eq!(r.counts.matched, 2, "{format:?}");
        assert_eq!(r.counts.unmatched_predictions, 1);
        // errors 0.5 and 1.0
        assert_eq!(r.quality.as_ref().unwrap().get("mae").unwrap().value, 0.75);
    }
}

#[test]
fn uuid_labels_pipeline_keeps_last_wins_and_counts() {
    let id = |i: u32| format!("00000000-0000-4000-8000-{i:012x}");
    let cfg = MonitorConfig {
        problem_type: Some(ProblemType::BinaryClassification),
        ..Default::default()
    };
    let mut e = Engine::new(cfg);
    // 30 labels, id 3 relabelled 0 -> 1 (last wins), id 5 duplicated right away.
    for i in 0..30 {
        e.push_ground_truth_line(&gt(&id(i), "0"), "g", i as u64)
            .unwrap();
    }
    e.push_ground_truth_line(&gt(&id(3), "1"), "g", 31).unwrap();
    e.push_ground_truth_line(&gt(&id(5), "0"), "g", 32).unwrap();
    // Before any capture (labels still in flight): counts already include them.
    let r = e.finish().unwrap();
    assert_eq!(r.counts.duplicate_ground_truth_ids, 2);
    assert_eq!(r.counts.unmatched_labels, 30);
    assert_eq!(e.ground_truth_len(), 30);
    assert_eq!(e.snapshot().counts.duplicate_ground_truth_ids, 2);
    e.push_capture_line(&cap(&id(3), "0.9", "2024-01-01T00:00:00Z"), "c", 1);
    e.push_capture_line(&cap(&id(4), "0.9", "2024-01-01T00:00:00Z"), "c", 2);
    let r = e.finish().unwrap();
    assert_eq!(r.counts.duplicate_ground_truth_ids, 2);
    assert_eq!(r.counts.matched, 2);
    assert_eq!(r.counts.unmatched_labels, 28);
    let q = r.quality.as_ref().unwrap();
    // id 3 is positive (relabelled), id 4 negative: both predicted positive.
    assert_eq!(q.get("precision").unwrap().value, 0.5);
    assert_eq!(q.get("recall").unwrap().value, 1.0);
}

#[test]
fn data_quality_only_with_json_input() {
    let cfg = MonitorConfig {
        data_quality: true,
        ..Default::default()
    };
    let mut e = Engine::new(cfg);
    let line = r#"{"captureData":{"endpointInput":{"observedContentType":"application/json","data":"{\"age\":30,\"city\":\"x\"}","encoding":"JSON"},"endpointOutput":{"observedContentType":"text/csv","data":"0.5","encoding":"CSV"}},"eventMetadata":{"eventId":"e"}}"#;
    e.push_capture_line(line, "s", 1);
    e.push_capture_line(line, "s", 2);
    let r = e.finish().unwrap();
    let st = r.statistics_json();
    assert_eq!(st["dataset"]["item_count"], 2);
    let names: Vec<&str> = st["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["_c0", "age", "city"]);
    assert_eq!(st["features"][1]["inferred_type"], "Integral");
    assert!(
        r.cloudwatch_metrics()
            .iter()
            .any(|m| m.name == "feature_data_age"
                && m.value == 30.0
                && m.kind == MetricKind::FeatureMean)
    );
}

/// Each CloudWatch metric's kind is the one its name spells, model quality first.
#[test]
fn cloudwatch_metric_kinds_match_their_names() {
    let cfg = MonitorConfig {
        problem_type: Some(ProblemType::BinaryClassification),
        data_quality: true,
        ..Default::default()
    };
    let mut e = Engine::new(cfg);
    for (i, label) in ["1", "0", "1"].iter().enumerate() {
        e.push_ground_truth_line(&gt(&format!("e{i}"), label), "g", i as u64 + 1)
            .unwrap();
    }
    for (i, score) in ["0.9", "0.2", "0.4"].iter().enumerate() {
        e.push_capture_line(
            &cap(&format!("e{i}"), score, "2024-01-01T00:00:00Z"),
            "c",
            i as u64 + 1,
        );
    }
    let m = e.finish().unwrap().cloudwatch_metrics();
    assert!(m.iter().any(|m| m.kind == MetricKind::ModelQuality));
    assert!(m.iter().any(|m| m.kind == MetricKind::FeatureMean));
    assert!(m.iter().any(|m| m.kind == MetricKind::FeatureCompleteness));
    let first_feature = m.iter().position(|m| m.kind.is_data_quality()).unwrap();
    for (i, x) in m.iter().enumerate() {
        let spelled = if x.name.starts_with("feature_baseline_drift_") {
            MetricKind::FeatureDrift
        } else if x.name.starts_with("feature_data_") {
            MetricKind::FeatureMean
        } else if x.name.starts_with("feature_non_null_") {
            MetricKind::FeatureCompleteness
        } else {
            MetricKind::ModelQuality
        };
        assert_eq!(x.kind, spelled, "{}", x.name);
        assert_eq!(x.kind.is_data_quality(), i >= first_feature, "{}", x.name);
    }
}
