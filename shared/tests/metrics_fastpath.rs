//! The engine's fast paths give the results of its general paths, through the public API:
//! * lines spelled so that the line scanner must give up (escapes, whitespace, reordered keys)
//!   give the same job result as their canonical spelling (which the scanner takes);
//! * `feed_capture` (which queues joins behind a prefetch) gives the same result, state and error
//!   samples as pushing the same lines one by one (which never queues), on mixed input: UUID and
//!   other ids, duplicates on both sides, unmatched records, bad scores and labels, missing ids,
//!   malformed, blank and non-UTF-8 lines, a time window, and a few error samples only;
//! * line shapes (layouts learned from earlier lines) change nothing: the same input with and
//!   without them gives the same result, state and error samples.

use driftloop::metrics::{Engine, JobResult, MonitorConfig, ProblemType};
use proptest::prelude::*;

fn uuid(i: u64) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        i.wrapping_mul(2_654_435_761) as u32,
        i
    )
}

fn key(i: u64, kind: u8) -> String {
    match kind % 4 {
        0 => format!("id-{i}"),
        _ => uuid(i),
    }
}

/// A capture line in SageMaker's layout (keys in SageMaker's order, no whitespace).
fn cap(id: &str, inference_id: Option<&str>, out: &str, minute: u32) -> String {
    let meta = match inference_id {
        Some(inf) => format!(
            r#""eventId":"{id}","inferenceId":"{inf}","inferenceTime":"2024-01-01T00:{minute:02}:00Z""#
        ),
        None => format!(r#""eventId":"{id}","inferenceTime":"2024-01-01T00:{minute:02}:00Z""#),
    };
    format!(
        r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"1,2,3","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT","data":"{out}","encoding":"CSV"}}}},"eventMetadata":{{{meta}}},"eventVersion":"0"}}"#
    )
}

fn gt(id: &str, label: &str) -> String {
    format!(
        r#"{{"groundTruthData":{{"data":"{label}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#
    )
}

/// The same record spelled so that the scanner gives up: `\u` escapes in values and keys, `\/`,
/// whitespace between tokens, reordered keys.
fn perturb(line: &str, how: u8) -> String {
    match how % 5 {
        0 => line.replacen("\"data\"", "\"d\\u0061ta\"", 2),
        1 => line.replace(":\"", " :\t\"").replace(",\"", " ,\r \"") + " ",
        2 => line
            .replace("text/csv", "text\\/csv")
            .replace("-4000-", "-\\u0034000-"),
        3 => line.replace(r#"{"captureData""#, r#"{"eventVersion":"0","captureData""#),
        _ => line.replace("CSV", "\\u0043SV"),
    }
}

fn config(problem: u8, window: bool, samples: usize) -> MonitorConfig {
    let mut cfg = MonitorConfig {
        problem_type: Some(match problem % 3 {
            0 => ProblemType::BinaryClassification,
            1 => ProblemType::Regression,
            _ => ProblemType::MulticlassClassification,
        }),
        max_error_samples: samples,
        max_curve_points: 100_000,
        ..Default::default()
    };
    if window {
        cfg.window_start_ms = Some(1_704_067_200_000 + 5 * 60_000); // 00:05
        cfg.window_end_ms = Some(1_704_067_200_000 + 50 * 60_000); // 00:50
    }
    cfg
}

/// Everything observable about a result except the evaluation timestamp.
fn view(r: &JobResult) -> String {
    let mut st = r.statistics_json();
    if let Some(d) = st.get_mut("dataset") {
        d["evaluation_time"] = serde_json::Value::Null;
    }
    format!(
        "{:?}\n{:?}\n{}\n{:?}\n{:?}\n{:?}",
        r.counts,
        r.error_samples,
        st,
        r.quality.as_ref().map(|q| &q.scalars),
        r.min_inference_time_ms,
        r.max_inference_time_ms
    )
}

#[derive(Debug, Clone)]
struct Case {
    labels: Vec<(u64, u8, u8)>,
    captures: Vec<(u64, u8, u8, u8, u32)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0u64..60, any::<u8>(), any::<u8>()), 0..80),
        prop::collection::vec(
            (0u64..70, any::<u8>(), any::<u8>(), any::<u8>(), 0u32..60),
            0..120,
        ),
    )
        .prop_map(|(labels, captures)| Case { labels, captures })
}

fn label_text(v: u8, problem: u8) -> String {
    match (v % 10, problem % 3) {
        (0, _) => "7".into(),
        (1, _) => "cat".into(),
        (_, 1) => format!("{}.5", v % 4),
        (_, 2) => format!("{}", v % 3),
        _ => format!("{}", v % 2),
    }
}

fn score_text(v: u8, problem: u8) -> String {
    match (v % 12, problem % 3) {
        (0, _) => "NaN".into(),
        (1, _) => "abc".into(),
        (2, _) => "".into(),
        (_, 2) => format!("{}", v % 3),
        _ => format!("0.{:03}", v as u32 * 7 % 1000),
    }
}

/// Lines of a case: ground truth, then capture (with some malformed, blank and non-UTF-8 lines).
fn lines(c: &Case, problem: u8) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let g = c
        .labels
        .iter()
        .map(|&(i, kind, v)| gt(&key(i, kind), &label_text(v, problem)).into_bytes())
        .collect();
    let caps = c
        .captures
        .iter()
        .map(|&(i, kind, v, junk, minute)| {
            let id = key(i, kind);
            match junk % 16 {
                0 => b"{\"captureData\":{\"endpointOutput\"".to_vec(),
                1 => Vec::new(),
                2 => b"\xff\xfe{}".to_vec(),
                3 => cap("", None, &score_text(v, problem), minute).into_bytes(),
                4 => cap(&uuid(999), Some(&id), &score_text(v, problem), minute).into_bytes(),
                _ => cap(&id, None, &score_text(v, problem), minute).into_bytes(),
            }
        })
        .collect();
    (g, caps)
}

fn run_lines(cfg: &MonitorConfig, g: &[Vec<u8>], caps: &[Vec<u8>], fed: bool) -> JobResult {
    run_engine(Engine::new(cfg.clone()), g, caps, fed)
}

fn run_engine(mut e: Engine, g: &[Vec<u8>], caps: &[Vec<u8>], fed: bool) -> JobResult {
    if fed {
        let all: Vec<u8> = g
            .iter()
            .flat_map(|l| l.iter().chain(b"\n"))
            .copied()
            .collect();
        let n = e
            .feed_ground_truth("gt", std::io::BufReader::with_capacity(4096, &all[..]))
            .unwrap();
        assert_eq!(n as usize, g.len());
    } else {
        for (i, l) in g.iter().enumerate() {
            e.push_ground_truth_bytes(l, "gt", i as u64 + 1).unwrap();
        }
    }
    if fed {
        let mut all = Vec::new();
        for l in caps {
            all.extend_from_slice(l);
            all.push(b'\n');
        }
        // Two reads: lines straddle the refills of a tiny buffer, then most lie whole in a
        // larger one (and are read ahead when they fit a shape).
        let half = caps.len() / 2;
        let cut: usize = caps[..half].iter().map(|l| l.len() + 1).sum();
        let n1 = e
            .feed_capture(
                "cap",
                std::io::BufReader::with_capacity(7, &all[..cut]),
                |_| {},
            )
            .unwrap();
        let n2 = e
            .feed_capture(
                "cap2",
                std::io::BufReader::with_capacity(4096, &all[cut..]),
                |_| {},
            )
            .unwrap();
        assert_eq!((n1 + n2) as usize, caps.len());
    } else {
        let half = caps.len() / 2;
        for (i, l) in caps.iter().enumerate() {
            let (src, n) = if i < half {
                ("cap", i + 1)
            } else {
                ("cap2", i - half + 1)
            };
            e.push_capture_bytes(l, src, n as u64);
        }
    }
    let r = e.finish().unwrap();
    // The mergeable state is the same too (score lists in the same order).
    let snap = serde_json::to_string(&e.snapshot()).unwrap();
    let mut r2 = r.clone();
    r2.evaluation_time = snap;
    r2
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn queued_joins_equal_line_by_line(c in case(), problem in 0u8..3, window in any::<bool>(), samples in 0usize..6) {
        let cfg = config(problem, window, samples);
        let (g, caps) = lines(&c, problem);
        let fed = run_lines(&cfg, &g, &caps, true);
        let pushed = run_lines(&cfg, &g, &caps, false);
        prop_assert_eq!(view(&fed), view(&pushed));
        prop_assert_eq!(&fed.evaluation_time, &pushed.evaluation_time, "snapshot");
    }

    #[test]
    fn line_shapes_change_nothing(c in case(), problem in 0u8..3, window in any::<bool>(), how in any::<u8>(), fed in any::<bool>()) {
        let cfg = config(problem, window, 8);
        let (g, mut caps) = lines(&c, problem);
        // Some lines in other layouts, so shapes are learned, evicted and missed.
        for (i, l) in caps.iter_mut().enumerate() {
            if let Ok(s) = std::str::from_utf8(l)
                && (i as u8 ^ how) % 4 == 0
                && serde_json::from_str::<serde_json::Value>(s).is_ok()
            {
                *l = perturb(s, how.wrapping_add(i as u8)).into_bytes();
            }
        }
        let with = run_engine(Engine::new(cfg.clone()), &g, &caps, fed);
        let without = run_engine(Engine::new(cfg.clone()).without_line_shapes(), &g, &caps, fed);
        prop_assert_eq!(view(&with), view(&without));
        prop_assert_eq!(&with.evaluation_time, &without.evaluation_time, "snapshot");
    }

    #[test]
    fn perturbed_spellings_equal_canonical(c in case(), problem in 0u8..3, window in any::<bool>(), how in any::<u8>()) {
        let cfg = config(problem, window, 8);
        let (g, caps) = lines(&c, problem);
        let p = |v: &[Vec<u8>], salt: u8| -> Vec<Vec<u8>> {
            // Valid JSON lines only: a malformed line's error message names a column.
            v.iter().enumerate().map(|(i, l)| match std::str::from_utf8(l) {
                Ok(s) if serde_json::from_str::<serde_json::Value>(s).is_ok() => {
                    perturb(s, how.wrapping_add(salt).wrapping_add(i as u8)).into_bytes()
                }
                _ => l.clone(),
            }).collect()
        };
        let canonical = run_lines(&cfg, &g, &caps, true);
        let perturbed = run_lines(&cfg, &p(&g, 0), &p(&caps, 1), true);
        prop_assert_eq!(view(&canonical), view(&perturbed));
    }
}

/// A larger mixed run in one go, binary classification: both feeding styles agree and the counts
/// add up.
#[test]
fn large_mixed_binary_run_agrees() {
    let c = Case {
        labels: (0..3000)
            .map(|i| (i % 2500, (i % 7) as u8, (i * 13 % 251) as u8))
            .collect(),
        captures: (0..4000)
            .map(|i| {
                (
                    i * 7 % 2900,
                    (i % 5) as u8,
                    (i * 31 % 253) as u8,
                    (i * 17 % 241) as u8,
                    (i % 60) as u32,
                )
            })
            .collect(),
    };
    let cfg = config(0, false, 20);
    let (g, caps) = lines(&c, 0);
    let fed = run_lines(&cfg, &g, &caps, true);
    let pushed = run_lines(&cfg, &g, &caps, false);
    assert_eq!(view(&fed), view(&pushed));
    let k = &fed.counts;
    assert!(k.matched > 1000 && k.duplicate_capture_ids > 100 && k.invalid_predictions > 50);
    assert_eq!(
        k.evaluated + k.invalid_labels + k.invalid_predictions,
        k.matched
    );
}
