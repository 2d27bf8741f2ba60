//! Partial states add up: capture and ground truth split at random — each record to any worker,
//! both sides independently (so by object, by hour and by id hash are all special cases), ids
//! repeated on both sides, unmatched on both sides, malformed lines, records outside the window,
//! data quality on — and the merged partial states finish exactly as one single pass over all
//! sources in name order: every count, every error sample, the model-quality statistics bit for
//! bit, and the data-quality sketches (exact counts, categories and KLL items below capacity;
//! float sums to 1e-12).

use driftloop::metrics::{Engine, EngineState, JobResult, MonitorConfig, ProblemType};
use proptest::prelude::*;

mod equal;
use equal::same;

fn key(id: u8) -> String {
    if id % 2 == 0 {
        format!("{:08x}-0000-4000-8000-{:012x}", u32::from(id) * 7919, id)
    } else {
        format!("id-{id}")
    }
}

/// A ground-truth line: 0 = valid label, 1 = a label the problem cannot use, 2 = broken JSON.
fn gt_line(problem: Option<ProblemType>, id: u8, v: u8, kind: u8) -> String {
    let label = match (kind, problem) {
        (2, _) => return "{\"groundTruthData\":".into(),
        (1, _) => "zz".to_string(),
        (_, Some(ProblemType::Regression)) => format!("{}", f64::from(v) / 7.0),
        (_, Some(ProblemType::MulticlassClassification)) => format!("c{}", v % 4),
        _ => format!("{}", v % 2),
    };
    format!(
        r#"{{"groundTruthData":{{"data":"{label}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{}"}},"eventVersion":"0"}}"#,
        key(id)
    )
}

/// A capture line: 0..=5 = valid, 6 = unreadable prediction, 7 = outside the window, 8 = no id,
/// 9 = broken JSON.
fn cap_line(problem: Option<ProblemType>, id: u8, v: u8, kind: u8) -> String {
    let out = match (kind, problem) {
        (9, _) => return "{\"captureData\":{".into(),
        (6, _) => "NaN".to_string(),
        (_, Some(ProblemType::Regression)) => format!("{}", f64::from(v) / 3.0),
        (_, Some(ProblemType::MulticlassClassification)) => format!("c{}", v % 5),
        _ => format!("{}", f64::from(v % 21) / 20.0),
    };
    let time = if kind == 7 {
        "2023-06-01T00:00:00Z"
    } else {
        "2024-01-01T00:00:00Z"
    };
    let meta = if kind == 8 {
        format!(r#"{{"inferenceTime":"{time}"}}"#)
    } else {
        format!(r#"{{"eventId":"{}","inferenceTime":"{time}"}}"#, key(id))
    };
    format!(
        r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{},{},x{}","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{out}","encoding":"CSV"}}}},"eventMetadata":{meta},"eventVersion":"0"}}"#,
        v,
        f64::from(v) * 0.37,
        id % 3
    )
}

/// A record placed in a source: (file index, worker index, line text).
type Placed = (usize, usize, String);

/// Sources named so that name order differs from the order files were created in.
fn source(side: &str, file: usize) -> String {
    format!("{side}/{}.jsonl", ["m", "c", "x", "a"][file % 4])
}

/// Lines per source with their 1-based line numbers, sources in name order.
fn by_source(side: &str, recs: &[Placed]) -> Vec<(String, Vec<(u64, usize, String)>)> {
    let mut files: std::collections::BTreeMap<String, Vec<(u64, usize, String)>> =
        Default::default();
    for (f, w, line) in recs {
        let v = files.entry(source(side, *f)).or_default();
        let n = v.len() as u64 + 1;
        v.push((n, *w, line.clone()));
    }
    files.into_iter().collect()
}

fn single(cfg: &MonitorConfig, gts: &[Placed], caps: &[Placed]) -> JobResult {
    let mut e = Engine::new(cfg.clone());
    for (src, lines) in by_source("gt", gts) {
        for (n, _, l) in lines {
            e.push_ground_truth_line(&l, &src, n).unwrap();
        }
    }
    for (src, lines) in by_source("cap", caps) {
        for (n, _, l) in lines {
            e.push_capture_line(&l, &src, n);
        }
    }
    e.finish().unwrap()
}

/// Each worker feeds its capture first, then its ground truth, sources in reverse name order
/// (a partial engine needs no order); the reducer merges the states through JSON in `order`.
fn merged(
    cfg: &MonitorConfig,
    gts: &[Placed],
    caps: &[Placed],
    workers: usize,
    rotate: usize,
) -> JobResult {
    let mut engines: Vec<Engine> = (0..workers).map(|_| Engine::partial(cfg.clone())).collect();
    for (src, lines) in by_source("cap", caps).into_iter().rev() {
        for (n, w, l) in lines {
            engines[w].push_capture_line(&l, &src, n);
        }
    }
    for (src, lines) in by_source("gt", gts).into_iter().rev() {
        for (n, w, l) in lines {
            engines[w].push_ground_truth_line(&l, &src, n).unwrap();
        }
    }
    let mut states: Vec<EngineState> = engines
        .iter()
        .map(|e| serde_json::from_str(&serde_json::to_string(&e.snapshot()).unwrap()).unwrap())
        .collect();
    states.rotate_left(rotate % workers);
    // Merge some states into each other first (a tree of reducers), then into the reducer.
    let mut reducer = Engine::new(cfg.clone());
    let mut it = states.into_iter();
    while let Some(mut s) = it.next() {
        if let Some(t) = it.next() {
            s.merge(&t, cfg.max_error_samples).unwrap();
        }
        reducer.merge_state(&s).unwrap();
    }
    reducer.finish().unwrap()
}

fn problem(i: u8) -> Option<ProblemType> {
    match i % 4 {
        0 => Some(ProblemType::BinaryClassification),
        1 => Some(ProblemType::Regression),
        2 => Some(ProblemType::MulticlassClassification),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_splits_of_both_sides_merge_to_the_single_pass(
        p in 0u8..4,
        labels in prop::collection::vec((0u8..30, any::<u8>(), prop::sample::select(vec![0u8, 0, 0, 0, 0, 1, 2]), 0usize..3, 0usize..4), 0..120),
        captures in prop::collection::vec((0u8..30, any::<u8>(), 0u8..10, 0usize..4, 0usize..4), 0..160),
        workers in 1usize..5,
        rotate in 0usize..4,
        samples in 0usize..6,
    ) {
        let problem = problem(p);
        let cfg = MonitorConfig {
            problem_type: problem,
            data_quality: true,
            window_start_ms: Some(1_700_000_000_000),
            max_error_samples: samples,
            max_curve_points: 10_000,
            ..Default::default()
        };
        let gts: Vec<Placed> = labels.iter().map(|&(id, v, k, f, w)| (f, w % workers, gt_line(problem, id, v, k))).collect();
        let caps: Vec<Placed> = captures.iter().map(|&(id, v, k, f, w)| (f, w % workers, cap_line(problem, id, v, k))).collect();
        let s = single(&cfg, &gts, &caps);
        let m = merged(&cfg, &gts, &caps, workers, rotate);
        same(&s, &m)?;
    }
}

/// Many records, so that standard deviations (≥ 200 evaluated) and score compaction take part;
/// split by id hash on the capture side and by object on the label side.
#[test]
fn large_split_by_id_hash_and_by_object_is_bit_for_bit() {
    for p in 0..3u8 {
        let problem = problem(p);
        let cfg = MonitorConfig {
            problem_type: problem,
            data_quality: true,
            ..Default::default()
        };
        let n = 3000usize;
        let gts: Vec<Placed> = (0..n)
            .map(|i| {
                let id = (i % 250) as u8; // 250 ids, labelled ~12 times each
                (
                    i % 3,
                    (i * 7 / n) % 3,
                    gt_line(problem, id, (i * 31 % 251) as u8, 0),
                )
            })
            .collect();
        let caps: Vec<Placed> = (0..n)
            .map(|i| {
                let id = ((i * 13) % 256) as u8;
                (
                    i % 4,
                    usize::from(id) % 4,
                    cap_line(problem, id, (i * 17 % 253) as u8, (i % 10) as u8 % 7),
                )
            })
            .collect();
        let s = single(&cfg, &gts, &caps);
        let m = merged(&cfg, &gts, &caps, 4, 1);
        assert!(s.counts.evaluated > 200, "{:?}", s.counts);
        assert!(s.counts.duplicate_capture_ids > 0 && s.counts.duplicate_ground_truth_ids > 0);
        same(&s, &m).unwrap();
    }
}

/// The rule that makes splits add up is the documented one: the first capture record of an id
/// by (source, line) and the last label are used, whichever worker saw them.
#[test]
fn first_capture_and_last_label_win_across_workers() {
    let cfg = MonitorConfig {
        problem_type: Some(ProblemType::Regression),
        ..Default::default()
    };
    let p = Some(ProblemType::Regression);
    let mut w1 = Engine::partial(cfg.clone());
    let mut w2 = Engine::partial(cfg.clone());
    // Worker 1: the later capture (b.jsonl) and the earlier label (l1); worker 2 the others.
    w1.push_capture_line(&cap_line(p, 1, 30, 0), "b.jsonl", 1); // prediction 10
    w2.push_capture_line(&cap_line(p, 1, 6, 0), "a.jsonl", 2); // prediction 2: wins
    w1.push_ground_truth_line(&gt_line(p, 1, 70, 0), "l1", 1)
        .unwrap(); // 10
    w2.push_ground_truth_line(&gt_line(p, 1, 7, 0), "l2", 1)
        .unwrap(); // 1: wins
    let mut r = Engine::new(cfg);
    r.merge_state(&w1.snapshot()).unwrap();
    r.merge_state(&w2.snapshot()).unwrap();
    let res = r.finish().unwrap();
    assert_eq!(res.counts.matched, 1);
    assert_eq!(res.counts.duplicate_capture_ids, 1);
    assert_eq!(res.counts.duplicate_ground_truth_ids, 1);
    assert_eq!(res.counts.unmatched_labels, 0);
    let mae = res.quality.unwrap().get("mae").unwrap().value;
    assert_eq!(mae, 1.0, "|2 - 1|");
}
