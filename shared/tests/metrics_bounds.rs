//! Bounded memory and bad input at the engine's edges: the ground-truth limit
//! (`Engine::with_ground_truth_limit`), the line maximum (`Engine::with_max_line_bytes`) and
//! arbitrary window bounds and times — the fuzz target `bounded_feed`'s generator as a proptest.

use driftloop::metrics::engine::exercise_bounded_feed;
use driftloop::metrics::{Engine, EngineError, MonitorConfig, ProblemType};
use proptest::prelude::*;

fn label(id: &str, v: u32) -> String {
    format!(
        r#"{{"groundTruthData":{{"data":"{v}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#
    ) + "\n"
}

fn capture(id: &str, time: &str) -> String {
    format!(
        r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"1,2","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"0.7","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{id}","inferenceTime":"{time}"}},"eventVersion":"0"}}"#
    ) + "\n"
}

fn uuid(i: u64) -> String {
    format!("{:08x}-0000-4000-8000-{i:012x}", i as u32)
}

fn binary() -> MonitorConfig {
    MonitorConfig {
        problem_type: Some(ProblemType::BinaryClassification),
        ..Default::default()
    }
}

#[test]
fn labels_past_the_limit_fail_with_a_clear_error_before_the_store_outgrows_it() {
    let labels: String = (0..100_000)
        .map(|i| label(&uuid(i), (i % 2) as u32))
        .collect();
    let labels_other: String = (0..20_000)
        .map(|i| label(&format!("order-{i}"), 1))
        .collect();
    for (gt, limit) in [(&labels, 1u64 << 20), (&labels_other, 512 << 10)] {
        let mut e = Engine::new(binary()).with_ground_truth_limit(limit);
        e.reserve_ground_truth(10_000_000); // a hint far past the limit is cut down, not obeyed
        assert!(e.ground_truth_bytes() as u64 <= limit / 3 + 4096);
        let err = e
            .feed_ground_truth("s3://bkt/gt/2024/05/01/09/labels.jsonl", gt.as_bytes())
            .unwrap_err();
        let EngineError::GroundTruthTooLarge {
            limit_bytes,
            labels,
            ref source_name,
        } = err
        else {
            panic!("{err}")
        };
        assert_eq!(limit_bytes, limit);
        assert!(labels > 1000, "{labels} labels fit");
        assert!(source_name.ends_with("labels.jsonl"));
        assert!(
            e.ground_truth_bytes() as u64 <= limit,
            "{}",
            e.ground_truth_bytes()
        );
        assert!(
            err.to_string().contains(&format!("{} MiB", limit >> 20)),
            "{err}"
        );
    }
    // With room, the same labels are all stored, the table grown as they arrived.
    let mut e = Engine::new(binary()).with_ground_truth_limit(64 << 20);
    e.feed_ground_truth("gt", labels.as_bytes()).unwrap();
    assert_eq!(e.ground_truth_len(), 100_000);
    assert!(
        e.ground_truth_bytes() < 16 << 20,
        "{}",
        e.ground_truth_bytes()
    );
}

#[test]
fn lines_past_the_maximum_are_malformed_not_buffered() {
    let long_id = "x".repeat(450);
    let gt = label(&uuid(1), 1) + &label(&long_id, 1) + &label(&uuid(2), 0);
    let cap = capture(&uuid(1), "2024-05-01T09:00:00Z")
        + &capture(&long_id, "2024-05-01T09:00:00Z")
        + &capture(&uuid(2), "2024-05-01T09:00:00Z");
    for buffer in [7, 64, 4096] {
        let mut e = Engine::new(binary()).with_max_line_bytes(400);
        e.feed_ground_truth(
            "gt.jsonl",
            std::io::BufReader::with_capacity(buffer, gt.as_bytes()),
        )
        .unwrap();
        e.feed_capture(
            "capture.jsonl",
            std::io::BufReader::with_capacity(buffer, cap.as_bytes()),
            |_| {},
        )
        .unwrap();
        let r = e.finish().unwrap();
        assert_eq!(r.counts.ground_truth_lines, 3, "buffer {buffer}");
        assert_eq!(r.counts.malformed_ground_truth, 1, "buffer {buffer}");
        assert_eq!(r.counts.capture_lines, 3, "buffer {buffer}");
        assert_eq!(r.counts.malformed_capture, 1, "buffer {buffer}");
        assert_eq!(r.counts.matched, 2, "buffer {buffer}");
        let samples: Vec<String> = r.error_samples.iter().map(ToString::to_string).collect();
        assert!(
            samples
                .iter()
                .any(|s| s.starts_with("gt.jsonl:2:") && s.contains("maximum of 400 bytes")),
            "{samples:?}"
        );
        assert!(
            samples.iter().any(|s| s.starts_with("capture.jsonl:2:")),
            "{samples:?}"
        );
    }
}

/// Times at chrono's extremes and windows at i64's: outside the window, counted, no panic.
#[test]
fn extreme_inference_times_and_window_bounds_are_counted() {
    for (start, end) in [
        (Some(i64::MIN), Some(i64::MAX)),
        (Some(i64::MAX), None),
        (None, Some(i64::MIN)),
        (Some(1_714_550_400_000), Some(1_714_554_000_000)),
    ] {
        let mut e = Engine::new(MonitorConfig {
            window_start_ms: start,
            window_end_ms: end,
            data_quality: true,
            ..binary()
        });
        e.push_ground_truth_line(label("a", 1).trim_end(), "gt", 1)
            .unwrap();
        for (i, t) in [
            "+262143-12-31T23:59:59Z",
            "-262144-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "0000-01-01T00:00:00Z",
            "2024-05-01T08:30:00Z",
        ]
        .iter()
        .enumerate()
        {
            e.push_capture_line(capture("a", t).trim_end(), "cap", i as u64 + 1);
        }
        let r = e.finish().unwrap();
        assert_eq!(r.counts.capture_lines, 5);
        let _ = (r.statistics_json(), r.summary(), r.cloudwatch_metrics());
    }
}

fn time_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("+262143-12-31T23:59:59Z".to_owned()),
        Just("-262144-01-01T00:00:00Z".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("1970-01-01T00:00:00.000+23:59".to_owned()),
        Just("2024-05-01T09:00:00Z".to_owned()),
        "[0-9+:TZ.-]{0,30}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..50, 0u32..3).prop_map(|(i, v)| label(&uuid(i), v)),
        (0u64..50, time_text()).prop_map(|(i, t)| capture(&uuid(i), &t)),
        (1usize..600).prop_map(|n| "y".repeat(n) + "\n"),
        "[ -~]{0,80}\n",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// `exercise_bounded_feed`'s invariants (the store within its limit, no error but
    /// GroundTruthTooLarge, no panic) over structured inputs.
    #[test]
    fn bounded_feed_holds_its_invariants(
        header in proptest::collection::vec(any::<u8>(), 21),
        gt in proptest::collection::vec(line(), 0..60),
        cap in proptest::collection::vec(line(), 0..60),
    ) {
        let mut data = header;
        data.extend(gt.concat().into_bytes());
        data.push(0);
        data.extend(cap.concat().into_bytes());
        let counts = exercise_bounded_feed(&data);
        prop_assert!(counts.capture_lines <= cap.iter().map(|l| l.matches('\n').count() as u64).sum::<u64>() + 1);
    }

    #[test]
    fn bounded_feed_on_raw_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise_bounded_feed(&data);
    }
}
