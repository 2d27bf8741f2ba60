//! Property tests: split inputs at random points, merge the partial states, compare with the
//! single pass (exact for counts, confusion matrices, AUC, KLL below capacity and categorical
//! counts; float sums to 1e-12 relative). And: no input makes the parsers panic.

use driftloop::metrics::dq::stats::{DataQualityState, DqValue};
use driftloop::metrics::{Engine, EngineState, MonitorConfig, ProblemType};
use proptest::prelude::*;

fn gt(id: usize, label: &str) -> String {
    format!(
        r#"{{"groundTruthData":{{"data":"{label}","encoding":"CSV"}},"eventMetadata":{{"eventId":"id-{id}"}},"eventVersion":"0"}}"#
    )
}
fn cap(id: usize, out: &str) -> String {
    format!(
        r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{id},x{}","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{out}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"id-{id}","inferenceTime":"2024-01-01T00:00:00Z"}},"eventVersion":"0"}}"#,
        id % 3
    )
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// Runs the engine over `caps` in one pass and in parts split at `cuts`, merging the parts'
/// states through JSON (as workers would).
fn single_and_merged(
    cfg: &MonitorConfig,
    gts: &[String],
    caps: &[String],
    cuts: &[usize],
) -> (driftloop::metrics::JobResult, driftloop::metrics::JobResult) {
    let run = |lines: &[String]| {
        let mut e = Engine::new(cfg.clone());
        for (i, g) in gts.iter().enumerate() {
            e.push_ground_truth_line(g, "gt", i as u64 + 1).unwrap();
        }
        for (i, c) in lines.iter().enumerate() {
            e.push_capture_line(c, "cap", i as u64 + 1);
        }
        e
    };
    let single = run(caps).finish().unwrap();
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (caps.len() + 1)).collect();
    bounds.push(0);
    bounds.push(caps.len());
    bounds.sort();
    let mut merged = Engine::new(cfg.clone());
    for w in bounds.windows(2) {
        let part = run(&caps[w[0]..w[1]]);
        let mut st = part.snapshot();
        st.counts.unmatched_labels = 0; // every worker sees all labels; not additive here
        let json = serde_json::to_string(&st).unwrap();
        let back: EngineState = serde_json::from_str(&json).unwrap();
        merged.merge_state(&back).unwrap();
    }
    (single, merged.finish().unwrap())
}

fn compare(
    single: &driftloop::metrics::JobResult,
    merged: &driftloop::metrics::JobResult,
) -> Result<(), TestCaseError> {
    let mut a = single.counts.clone();
    let b = merged.counts.clone();
    // Every worker reads all labels: label-side counts are per worker, not additive here.
    a.unmatched_labels = b.unmatched_labels;
    a.ground_truth_lines = b.ground_truth_lines;
    a.malformed_ground_truth = b.malformed_ground_truth;
    a.duplicate_ground_truth_ids = b.duplicate_ground_truth_ids;
    prop_assert_eq!(a, b);
    let (qa, qb) = (
        single.quality.as_ref().unwrap(),
        merged.quality.as_ref().unwrap(),
    );
    prop_assert_eq!(qa.item_count, qb.item_count);
    for ((na, ma), (nb, mb)) in qa.scalars.iter().zip(qb.scalars.iter()) {
        prop_assert_eq!(na, nb);
        prop_assert!(
            close(ma.value, mb.value),
            "{} {} vs {}",
            na,
            ma.value,
            mb.value
        );
        match (ma.standard_deviation, mb.standard_deviation) {
            (Some(x), Some(y)) => prop_assert!(close(x, y), "{} std {} vs {}", na, x, y),
            (x, y) => prop_assert_eq!(x, y),
        }
    }
    for key in [
        "confusion_matrix",
        "receiver_operating_characteristic_curve",
        "precision_recall_curve",
    ] {
        prop_assert_eq!(qa.metrics_json.get(key), qb.metrics_json.get(key));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn binary_split_merge_equals_single_pass(
        data in prop::collection::vec((0u8..=20, any::<bool>(), 0u8..10), 1..400),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let gts: Vec<String> = data.iter().enumerate().map(|(i, (_, y, _))| gt(i, if *y { "1" } else { "0" })).collect();
        let caps: Vec<String> = data.iter().enumerate().map(|(i, (s, _, junk))| match junk {
            0 => "{\"broken".to_string(),
            1 => cap(i, "NaN"),
            2 => cap(i + 100_000, "0.5"),
            _ => cap(i, &format!("{}", *s as f64 / 20.0)),
        }).collect();
        let cfg = MonitorConfig { problem_type: Some(ProblemType::BinaryClassification), max_curve_points: 10_000, ..Default::default() };
        let (s, m) = single_and_merged(&cfg, &gts, &caps, &cuts);
        compare(&s, &m)?;
        // AUC is exact (not just close).
        let (a, b) = (s.quality.as_ref().unwrap().get("auc").unwrap().value, m.quality.as_ref().unwrap().get("auc").unwrap().value);
        prop_assert!(a == b || (a.is_nan() && b.is_nan()));
    }

    #[test]
    fn regression_and_multiclass_split_merge(
        data in prop::collection::vec((-1000i32..1000, -1000i32..1000), 1..300),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let gts: Vec<String> = data.iter().enumerate().map(|(i, (y, _))| gt(i, &format!("{}", *y as f64 / 7.0))).collect();
        let caps: Vec<String> = data.iter().enumerate().map(|(i, (_, p))| cap(i, &format!("{}", *p as f64 / 3.0))).collect();
        let cfg = MonitorConfig { problem_type: Some(ProblemType::Regression), ..Default::default() };
        let (s, m) = single_and_merged(&cfg, &gts, &caps, &cuts);
        compare(&s, &m)?;

        let gts: Vec<String> = data.iter().enumerate().map(|(i, (y, _))| gt(i, &format!("c{}", y.rem_euclid(4)))).collect();
        let caps: Vec<String> = data.iter().enumerate().map(|(i, (_, p))| cap(i, &format!("c{}", p.rem_euclid(5)))).collect();
        let cfg = MonitorConfig { problem_type: Some(ProblemType::MulticlassClassification), ..Default::default() };
        let (s, m) = single_and_merged(&cfg, &gts, &caps, &cuts);
        compare(&s, &m)?;
    }

    #[test]
    fn data_quality_split_merge(
        rows in prop::collection::vec((prop::option::of(-50i32..50), prop::sample::select(vec!["a", "b", "c", "", "1.5"])), 1..500),
        cut in any::<usize>(),
    ) {
        let push = |s: &mut DataQualityState, r: &(Option<i32>, &str)| {
            let x = r.0.map(|v| v.to_string()).unwrap_or_default();
            s.push_named([("x", DqValue::Text(&x)), ("c", DqValue::Text(r.1))]);
        };
        let mut single = DataQualityState::default();
        rows.iter().for_each(|r| push(&mut single, r));
        let k = cut % (rows.len() + 1);
        let (mut a, mut b) = (DataQualityState::default(), DataQualityState::default());
        rows[..k].iter().for_each(|r| push(&mut a, r));
        rows[k..].iter().for_each(|r| push(&mut b, r));
        let b: DataQualityState = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        a.merge(&b);
        prop_assert_eq!(a.item_count, single.item_count);
        for (ca, cs) in a.columns.iter().zip(single.columns.iter()) {
            prop_assert_eq!(&ca.name, &cs.name);
            prop_assert_eq!(ca.types, cs.types);
            prop_assert_eq!(&ca.categories, &cs.categories);
            prop_assert_eq!(ca.num.n, cs.num.n);
            prop_assert_eq!(ca.num.min, cs.num.min);
            prop_assert_eq!(ca.num.max, cs.num.max);
            prop_assert!(close(ca.num.sum.value(), cs.num.sum.value()));
            prop_assert!(close(ca.num.mean, cs.num.mean));
            prop_assert!((ca.num.std_dev() - cs.num.std_dev()).abs() < 1e-9 || (ca.num.n == 0));
            // Below capacity the KLL sketch is exact: same weighted items.
            prop_assert_eq!(ca.kll.weighted_items(), cs.kll.weighted_items());
        }
        let (ja, js) = (a.statistics_json(), single.statistics_json());
        prop_assert_eq!(&ja["features"][0]["inferred_type"], &js["features"][0]["inferred_type"]);
        prop_assert_eq!(&ja["features"][1]["string_statistics"]["distribution"], &js["features"][1]["string_statistics"]["distribution"]);
    }

    #[test]
    fn parsers_never_panic_on_garbage(line in ".{0,300}", bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        for problem in [None, Some(ProblemType::Regression), Some(ProblemType::BinaryClassification), Some(ProblemType::MulticlassClassification), Some(ProblemType::Forecast)] {
            let cfg = MonitorConfig { problem_type: problem, data_quality: true, ..Default::default() };
            let mut e = Engine::new(cfg);
            e.push_ground_truth_line(&line, "g", 1).unwrap();
            e.feed_ground_truth("g", &bytes[..]).unwrap();
            e.push_capture_line(&line, "c", 1);
            e.feed_capture("c", &bytes[..], |_| {}).unwrap();
            let r = e.finish().unwrap();
            let _ = (r.statistics_json(), r.violations_json(), r.summary(), r.cloudwatch_metrics());
        }
    }

    #[test]
    fn truncated_and_mutated_records_never_panic(cut in 0usize..400, pos in 0usize..400, byte in any::<u8>(),
                                                  score in prop::sample::select(vec!["NaN", "inf", "-inf", "1e400", "", "abc", "0.5", "\\\"x\\\"", "[1,2]", "{\\\"a\\\":1}"])) {
        let base_gt = gt(1, score);
        let base_cap = cap(1, score);
        let b64 = r#"{"captureData":{"endpointInput":{"observedContentType":"application/json","data":"eyJhIjogMX0=","encoding":"BASE64"},"endpointOutput":{"observedContentType":"application/json","data":"eyJwcmVkaWN0aW9ucyI6W3sibWVhbiI6WzEsMl19XX0=","encoding":"BASE64"}},"eventMetadata":{"eventId":"id-1"}}"#;
        for problem in [ProblemType::Regression, ProblemType::BinaryClassification, ProblemType::MulticlassClassification, ProblemType::Forecast] {
            let cfg = MonitorConfig { problem_type: Some(problem), data_quality: true, inference_attribute: Some("predictions[0].mean".into()), ..Default::default() };
            let mut e = Engine::new(cfg);
            let mut g = base_gt.clone().into_bytes();
            g.truncate(cut.min(g.len()));
            e.feed_ground_truth("g", &g[..]).unwrap();
            e.push_ground_truth_line(&base_gt, "g", 2).unwrap();
            for c in [base_cap.as_str(), b64] {
                let mut m = c.as_bytes().to_vec();
                if pos < m.len() { m[pos] = byte; }
                e.feed_capture("c", &m[..], |_| {}).unwrap();
                let t = &c[..cut.min(c.len())];
                if c.is_char_boundary(t.len()) { e.push_capture_line(t, "c", 3); }
            }
            let r = e.finish().unwrap();
            let _ = (r.statistics_json(), r.summary());
        }
    }
}

#[test]
fn empty_inputs() {
    let cfg = MonitorConfig {
        problem_type: Some(ProblemType::BinaryClassification),
        data_quality: true,
        ..Default::default()
    };
    let e = Engine::new(cfg);
    let r = e.finish().unwrap();
    assert_eq!(r.counts.evaluated, 0);
    assert!(
        r.quality
            .as_ref()
            .unwrap()
            .get("auc")
            .unwrap()
            .value
            .is_nan()
    );
    assert_eq!(r.statistics_json()["dataset"]["item_count"], 0);
    assert!(r.cloudwatch_metrics().iter().all(|m| m.value.is_finite()));
}

#[test]
fn huge_field_is_handled() {
    let cfg = MonitorConfig {
        problem_type: Some(ProblemType::Regression),
        data_quality: true,
        ..Default::default()
    };
    let mut e = Engine::new(cfg);
    e.push_ground_truth_line(&gt(1, "1"), "g", 1).unwrap();
    let huge = "9".repeat(2_000_000);
    e.push_capture_line(&cap(1, &huge), "c", 1);
    let r = e.finish().unwrap();
    // 2 million nines parse as +inf: counted as an invalid prediction, not a panic.
    assert_eq!(r.counts.invalid_predictions, 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Feeding arbitrary byte chunks through `LineAssembler` equals feeding a reader.
    #[test]
    fn chunked_feeding_equals_reader(n in 1usize..60, cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        use driftloop::metrics::engine::LineAssembler;
        let gts: String = (0..n).map(|i| gt(i, if i % 3 == 0 { "1" } else { "0" }) + "\n").collect();
        let caps: String = (0..n).map(|i| cap(i, &format!("0.{}", i % 10)) + "\n").collect::<String>() + "{\"partial";
        let cfg = MonitorConfig { problem_type: Some(ProblemType::BinaryClassification), data_quality: true, ..Default::default() };
        let mut a = Engine::new(cfg.clone());
        a.feed_ground_truth("g", gts.as_bytes()).unwrap();
        a.feed_capture("c", caps.as_bytes(), |_| {}).unwrap();
        let mut b = Engine::new(cfg);
        b.feed_ground_truth("g", gts.as_bytes()).unwrap();
        let bytes = caps.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.push(0);
        points.push(bytes.len());
        points.sort();
        let mut la = LineAssembler::default();
        for w in points.windows(2) {
            la.push(&bytes[w[0]..w[1]], |l, k| b.push_capture_bytes(l, "c", k));
        }
        la.finish(|l, k| b.push_capture_bytes(l, "c", k));
        let (ra, rb) = (a.finish().unwrap(), b.finish().unwrap());
        prop_assert_eq!(&ra.counts, &rb.counts);
        prop_assert_eq!(&ra.error_samples, &rb.error_samples);
        prop_assert_eq!(ra.statistics_json()["binary_classification_metrics"].clone(), rb.statistics_json()["binary_classification_metrics"].clone());
        prop_assert_eq!(ra.data_quality_statistics_json(), rb.data_quality_statistics_json());
    }
}
