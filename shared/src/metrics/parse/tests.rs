//! The tiers behind one entry point: records and payload decoding through `parse_*`, and the
//! [`LineParser`] learning layouts, fitting the lines that repeat them and leaving the others to
//! the scanner and serde.

use super::testutil::cap_view;
use super::*;
use base64::Engine as _;
use std::borrow::Cow;

const CAP: &str = r#"{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"132,10,182.9","encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT","data":"0.0363977","encoding":"CSV"}},"eventMetadata":{"eventId":"f04a8538","inferenceId":"c7f0","inferenceTime":"2022-04-18T00:21:48Z"},"eventVersion":"0"}"#;

#[test]
fn parses_realtime_capture_borrowing() {
    let r = parse_capture_line(CAP, CaptureFormat::Realtime).unwrap();
    assert_eq!(r.join_key(), Some("c7f0"));
    assert!(matches!(r.event_id, Some(Cow::Borrowed("f04a8538"))));
    let out = r.output.as_ref().unwrap();
    assert!(matches!(out.data, Cow::Borrowed(_)));
    let d = out.decode().unwrap();
    assert_eq!(
        finite_number(&d.text(&Attr::Whole).unwrap()).unwrap(),
        0.0363977
    );
    let inp_p = r.input.unwrap();
    let inp = inp_p.decode().unwrap();
    assert_eq!(inp.text(&Attr::Index(2)).unwrap(), "182.9");
}

#[test]
fn base64_json_payload() {
    let data = base64::engine::general_purpose::STANDARD.encode(br#"{"score":0.25,"label":"1"}"#);
    let line = format!(
        r#"{{"captureData":{{"endpointOutput":{{"observedContentType":"application/json","data":"{data}","encoding":"BASE64"}}}},"eventMetadata":{{"eventId":"e1"}}}}"#
    );
    let r = parse_capture_line(&line, CaptureFormat::Realtime).unwrap();
    assert_eq!(r.join_key(), Some("e1"));
    let out_p = r.output.unwrap();
    let d = out_p.decode().unwrap();
    assert_eq!(d.text(&Attr::parse(Some("score"))).unwrap(), "0.25");
    assert_eq!(d.text(&Attr::parse(Some("label"))).unwrap(), "1");
}

#[test]
fn batch_forms() {
    let r =
        parse_capture_line("0.9,1,abc-id,2024-01-01T00:00:00Z", CaptureFormat::BatchCsv).unwrap();
    assert_eq!(r.join_key(), Some("abc-id"));
    assert_eq!(
        r.output
            .unwrap()
            .decode()
            .unwrap()
            .text(&Attr::Index(1))
            .unwrap(),
        "1"
    );
    let r = parse_capture_line(r#"{"score":0.4,"SageMakerInferenceId":"x1","SageMakerInferenceTime":"2024-01-01T00:00:00Z"}"#, CaptureFormat::Realtime).unwrap();
    assert_eq!(r.join_key(), Some("x1"));
    assert_eq!(
        r.output
            .unwrap()
            .decode()
            .unwrap()
            .text(&Attr::parse(Some("score")))
            .unwrap(),
        "0.4"
    );
}

#[test]
fn ground_truth_and_errors() {
    let g = parse_ground_truth_line(r#"{"groundTruthData":{"data":"1","encoding":"CSV"},"eventMetadata":{"eventId":"id-1"},"eventVersion":"0"}"#).unwrap();
    assert_eq!(g.event_id, "id-1");
    assert_eq!(g.data.decode().unwrap().text(&Attr::Whole).unwrap(), "1");
    assert!(parse_ground_truth_line(r#"{"groundTruthData":{"data":"1"}}"#).is_err());
    assert!(parse_ground_truth_line("{\"groundTruthData\":").is_err());
    assert!(parse_capture_line("[1,2]", CaptureFormat::Realtime).is_err());
    assert!(parse_capture_line("", CaptureFormat::Realtime).is_err());
    assert_eq!(finite_number("NaN"), Err(RecordError::NonFinite));
    assert!(finite_number("abc").is_err());
    let bad = r#"{"captureData":{"endpointOutput":{"data":"!!!","encoding":"BASE64"}}}"#;
    assert_eq!(
        parse_capture_line(bad, CaptureFormat::Realtime)
            .unwrap()
            .output
            .unwrap()
            .decode()
            .unwrap_err(),
        RecordError::Base64
    );
}

/// A cache learns a stream's layouts, fits the lines that repeat them, and leaves the others
/// to the scanner and serde with the same records.
#[test]
fn cache_learns_layouts_and_falls_back() {
    let a = r#"{"captureData":{"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT","data":"0.9","encoding":"CSV"}},"eventMetadata":{"eventId":"e1","inferenceTime":"2024-01-01T00:00:00Z"},"eventVersion":"0"}"#;
    let b = r#"{"captureData":{"endpointOutput":{"data":"0.1","encoding":"CSV"}},"eventMetadata":{"eventId":"e2"}}"#;
    let mut parser = LineParser::new(CaptureFormat::Realtime, false);
    assert!(parser.capture.fit_capture(a.as_bytes(), false).is_none());
    let first = parser.capture_text(a).unwrap();
    assert_eq!(first.event_id.as_deref(), Some("e1"));
    let a2 = a.replace("e1", "e-77").replace("0.9", "1e-3");
    let r = parser
        .capture
        .fit_capture(a2.as_bytes(), false)
        .expect("same layout fits");
    assert_eq!(cap_view(&r), cap_view(&scan::capture(&a2, false).unwrap()));
    // Learned in another mode: no fit.
    assert!(parser.capture.fit_capture(a2.as_bytes(), true).is_none());
    // A second layout is learned beside the first.
    assert!(parser.capture.fit_capture(b.as_bytes(), false).is_none());
    parser.capture_text(b).unwrap();
    assert!(
        parser
            .capture
            .fit_capture(b.replace("e2", "e3").as_bytes(), false)
            .is_some()
    );
    assert!(parser.capture.fit_capture(a2.as_bytes(), false).is_some());
    // An escape where a field is read does not fit; the scanner gives up, serde reads it.
    let esc = a.replace("\"e1\"", "\"e\\u0031\"");
    assert!(parser.capture.fit_capture(esc.as_bytes(), false).is_none());
    let r = parser.capture_text(&esc).unwrap();
    assert_eq!(r.event_id.as_deref(), Some("e1"));
    // Not UTF-8 inside a hole: no fit.
    let mut bad = a.as_bytes().to_vec();
    let at = a.find("e1").unwrap();
    bad[at] = 0xff;
    assert!(parser.capture.fit_capture(&bad, false).is_none());
    // Trailing bytes: no fit.
    assert!(
        parser
            .capture
            .fit_capture(format!("{a} ").as_bytes(), false)
            .is_none()
    );
    // Long lines are read, not learned from.
    let mut long = LineParser::new(CaptureFormat::Realtime, false);
    let big = a.replace("0.9", &"9".repeat(shape::MAX_LEARNED_LINE));
    assert!(long.capture_text(&big).is_ok());
    assert_eq!(long.capture.len(), 0);
    // Batch CSV never learns.
    let mut csv = LineParser::new(CaptureFormat::BatchCsv, false);
    let row = "0.5,id-1,2024-01-01T00:00:00Z";
    assert_eq!(
        csv.capture_text(row).map(|r| cap_view(&r)),
        parse_capture_line_with(row, CaptureFormat::BatchCsv, false)
            .map(|r| cap_view(&r))
            .map_err(Skip::Invalid)
    );
    assert_eq!(csv.capture.len(), 0);
}

/// Escaped payload `data` (JSON payloads, multi-row CSV) is read by the scanner and fitted by a
/// learned shape, decoded into an owned string equal to serde's; surrogate escapes are left to
/// serde; two equal decoded fields are not learned (which hole is which would be ambiguous).
#[test]
fn escaped_payload_data_takes_the_fast_tiers() {
    let line = |score: &str, rows: &str| {
        format!(
            r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{rows}","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"application/json","mode":"OUTPUT","data":"{{\"prediction\":{{\"score\":{score}}}}}","encoding":"JSON"}}}},"eventMetadata":{{"eventId":"e1","inferenceTime":"2024-01-01T00:00:00Z"}},"eventVersion":"0"}}"#
        )
    };
    let a = line("0.25", r"1,2\n3,4");
    let fast = scan::capture(&a, true).expect("the scanner reads escaped data");
    let slow = serde::capture(&a, CaptureFormat::Realtime, true).unwrap();
    assert_eq!(cap_view(&fast), cap_view(&slow));
    let out = fast.output.as_ref().unwrap();
    assert!(matches!(out.data, Cow::Owned(_)));
    assert_eq!(&*out.data, r#"{"prediction":{"score":0.25}}"#);
    assert_eq!(&*fast.input.as_ref().unwrap().data, "1,2\n3,4");
    let d = out.decode().unwrap();
    assert_eq!(
        d.text(&Attr::parse(Some("prediction.score"))).unwrap(),
        "0.25"
    );
    for want_input in [false, true] {
        let mut p = LineParser::new(CaptureFormat::Realtime, want_input);
        p.capture_text(&a).unwrap();
        for (score, rows) in [
            ("0.75", r"5,6\n7,8\n9,0"),
            ("1e-3", "5"),
            ("0.5", r"\u00e9\/\t"),
        ] {
            let b = line(score, rows);
            let fit = p
                .capture
                .fit_capture(b.as_bytes(), want_input)
                .expect("same layout fits");
            let slow = serde::capture(&b, CaptureFormat::Realtime, want_input).unwrap();
            assert_eq!(cap_view(&fit), cap_view(&slow), "{b}");
        }
        // A surrogate pair in a read field: serde decodes it, the fast tiers give up (a skipped
        // input is only validated).
        let s = line("0.5", r"\ud83c\udf89");
        assert_eq!(
            p.capture.fit_capture(s.as_bytes(), want_input).is_none(),
            want_input
        );
        assert_eq!(scan::capture(&s, want_input).is_none(), want_input);
        let r = p.capture_text(&s).unwrap();
        assert_eq!(
            &*r.input.map(|i| i.data).unwrap_or_default(),
            if want_input { "🎉" } else { "" }
        );
    }
    // The same escaped value in input and output: read, but not learned from.
    let same = a.replace(r"1,2\n3,4", r#"{\"prediction\":{\"score\":0.25}}"#);
    let (rec, spans) = scan::capture_learn(&same, true).unwrap();
    let mut cache = shape::ShapeCache::default();
    cache.learn_capture(&same, &spans, &rec, true);
    assert_eq!(cache.len(), 0);
    // Ground-truth labels with escapes.
    let gt = r#"{"groundTruthData":{"data":"{\"label\":1}","encoding":"JSON"},"eventMetadata":{"eventId":"g1"},"eventVersion":"0"}"#;
    let fast = scan::ground_truth(gt).expect("escaped label data");
    assert_eq!(
        super::testutil::gt_view(&fast),
        super::testutil::gt_view(&serde::ground_truth(gt).unwrap())
    );
}

mod tiers {
    //! The fuzz target `parse_tiers`'s check on generated streams: lines of one layout with other
    //! values (so shapes are learned and fitted), perturbed lines among them.
    use super::super::exercise_parse_tiers;
    use super::super::testutil::{capture_value, ground_truth_value, knobs, render};
    use crate::metrics::util::SplitMix64;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn streams_through_the_tiers_equal_serde(seed in any::<u64>(), keep in 128u64..257,
                                                 other in prop_oneof![Just(0u64), 0u64..64], knobs in knobs()) {
            let mut rng = SplitMix64(seed);
            let mut text = String::new();
            for i in 0..6u64 {
                // The same render seed and knobs: mostly the same layout, other values.
                let v = if i % 3 == 2 { ground_truth_value(&mut rng, keep, other) } else { capture_value(&mut rng, keep, other) };
                text.push_str(&render(&v, seed ^ (i % 2), knobs));
                text.push('\n');
            }
            exercise_parse_tiers(text.as_bytes());
        }
    }
}
