//! The broadcast join (`driftloop::metrics::engine::broadcast`, `parallel::feed_broadcast`)
//! equals the single pass: sources of random records (ids repeated within and across sources on
//! both sides, unmatched on both sides, malformed lines, unusable labels and predictions, records
//! outside the window, data quality on) dealt to 1–4 threads in any order, for every problem
//! type. Every count, every error sample and the model-quality statistics bit for bit; the
//! data-quality sketches as merged states (exact below the sketch's capacity, float sums to
//! 1e-12).

use driftloop::metrics::engine::broadcast::{Applier, Contributions, SharedLabels};
use driftloop::metrics::engine::parallel::{Input, feed_broadcast};
use driftloop::metrics::{Engine, EngineError, JobResult, MonitorConfig, ProblemType};
use proptest::prelude::*;

mod equal;
use equal::same;

fn key(id: u8) -> String {
    if id.is_multiple_of(2) {
        format!("{:08x}-0000-4000-8000-{:012x}", u32::from(id) * 7919, id)
    } else {
        format!("id-{id}")
    }
}

/// A ground-truth line: 0 = valid label, 1 = a label the problem cannot use, 2 = broken JSON,
/// 3 = blank.
fn gt_line(problem: Option<ProblemType>, id: u8, v: u8, kind: u8) -> String {
    let (label, enc) = match (kind, problem) {
        (3, _) => return String::new(),
        (2, _) => return "{\"groundTruthData\":".into(),
        (1, Some(ProblemType::Forecast)) => ("{\\\"x\\\":1}".to_string(), "JSON"),
        (1, _) => ("zz".to_string(), "CSV"),
        (_, Some(ProblemType::Regression)) => (format!("{}", f64::from(v) / 7.0), "CSV"),
        (_, Some(ProblemType::MulticlassClassification)) => (format!("c{}", v % 4), "CSV"),
        (_, Some(ProblemType::Forecast)) => (
            format!("[{},{},{}]", v % 5, f64::from(v) / 9.0, v % 3),
            "JSON",
        ),
        _ => (format!("{}", v % 2), "CSV"),
    };
    format!(
        r#"{{"groundTruthData":{{"data":"{label}","encoding":"{enc}"}},"eventMetadata":{{"eventId":"{}"}},"eventVersion":"0"}}"#,
        key(id)
    )
}

/// A capture line: 0..=5 = valid, 6 = unreadable prediction, 7 = outside the window, 8 = no id,
/// 9 = broken JSON.
fn cap_line(problem: Option<ProblemType>, id: u8, v: u8, kind: u8) -> String {
    let (out, enc) = match (kind, problem) {
        (9, _) => return "{\"captureData\":{".into(),
        (6, Some(ProblemType::Forecast)) => ("{\\\"predictions\\\":[{}]}".to_string(), "JSON"),
        (6, _) => ("NaN".to_string(), "CSV"),
        (_, Some(ProblemType::Regression)) => (format!("{}", f64::from(v) / 3.0), "CSV"),
        (_, Some(ProblemType::MulticlassClassification)) => (format!("c{}", v % 5), "CSV"),
        (_, Some(ProblemType::Forecast)) => (
            format!(
                "{{\\\"predictions\\\":[{{\\\"mean\\\":[{},{},{}],\\\"quantiles\\\":{{\\\"0.5\\\":[{},1,2]}}}}]}}",
                f64::from(v) / 11.0,
                v % 7,
                v % 2,
                v % 4
            ),
            "JSON",
        ),
        _ => (format!("{}", f64::from(v % 21) / 20.0), "CSV"),
    };
    let time = if kind == 7 {
        "2023-06-01T00:00:00Z"
    } else {
        "2024-01-01T00:00:00Z"
    };
    let meta = if kind == 8 {
        format!(r#"{{"inferenceTime":"{time}"}}"#)
    } else if v.is_multiple_of(3) {
        // The join key is the inference id when there is one.
        format!(
            r#"{{"eventId":"e-{v}","inferenceId":"{}","inferenceTime":"{time}"}}"#,
            key(id)
        )
    } else {
        format!(r#"{{"eventId":"{}","inferenceTime":"{time}"}}"#, key(id))
    };
    format!(
        r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{},{},x{}","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{out}","encoding":"{enc}"}}}},"eventMetadata":{meta},"eventVersion":"0"}}"#,
        v,
        f64::from(v) * 0.37,
        id % 3
    )
}

/// A source: its name and its bytes (lines joined by `\n`).
type Source = (String, Vec<u8>);

/// Records `(file, line)` grouped into sources named so that name order differs from creation
/// order; sources in name order.
fn sources(side: &str, recs: &[(usize, String)]) -> Vec<Source> {
    let mut files: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for (f, line) in recs {
        let v = files
            .entry(format!("{side}/{}.jsonl", ["m", "c", "x", "a", "b"][f % 5]))
            .or_default();
        v.extend_from_slice(line.as_bytes());
        v.push(b'\n');
    }
    files.into_iter().collect()
}

/// The name [`feed`] gives a source.
fn source_name(s: &Source) -> String {
    s.0.clone()
}

fn feed(e: &mut Engine, input: &Input<&Source>) -> Result<(), EngineError> {
    match input {
        Input::GroundTruth((name, bytes)) => e.feed_ground_truth(name, &bytes[..]).map(drop),
        Input::Capture((name, bytes)) => e.feed_capture(name, &bytes[..], |_| {}).map(drop),
    }
}

fn single(cfg: &MonitorConfig, gts: &[Source], caps: &[Source]) -> JobResult {
    let mut e = Engine::new(cfg.clone());
    for s in gts {
        feed(&mut e, &Input::GroundTruth(s)).unwrap();
    }
    for s in caps {
        feed(&mut e, &Input::Capture(s)).unwrap();
    }
    e.finish().unwrap()
}

/// The broadcast join on `threads` threads; with more than one, the inputs listed in rotated
/// order (the threads rank sources by name, not by listing; one thread is the single pass,
/// which reads them as listed).
fn broadcast(
    cfg: &MonitorConfig,
    gts: &[Source],
    caps: &[Source],
    threads: usize,
    rotate: usize,
) -> JobResult {
    let mut gts = gts.to_vec();
    let mut caps = caps.to_vec();
    let rotate = if threads > 1 { rotate } else { 0 };
    if !gts.is_empty() {
        let n = gts.len();
        gts.rotate_left(rotate % n);
    }
    if !caps.is_empty() {
        let n = caps.len();
        caps.rotate_left(rotate % n);
    }
    let mut e = Engine::new(cfg.clone());
    feed_broadcast(
        &mut e,
        threads,
        || Engine::new(cfg.clone()),
        &gts,
        &caps,
        source_name,
        feed,
        |e| e,
    )
    .unwrap();
    e.finish().unwrap()
}

fn problem(i: u8) -> Option<ProblemType> {
    match i % 5 {
        0 => Some(ProblemType::BinaryClassification),
        1 => Some(ProblemType::Regression),
        2 => Some(ProblemType::MulticlassClassification),
        3 => Some(ProblemType::Forecast),
        _ => None,
    }
}

fn config(problem: Option<ProblemType>, samples: usize) -> MonitorConfig {
    MonitorConfig {
        problem_type: problem,
        data_quality: true,
        window_start_ms: Some(1_700_000_000_000),
        max_error_samples: samples,
        max_curve_points: 10_000,
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn broadcast_on_any_threads_equals_the_single_pass(
        p in 0u8..5,
        labels in prop::collection::vec((0u8..30, any::<u8>(), prop::sample::select(vec![0u8, 0, 0, 0, 0, 1, 2, 3]), 0usize..5), 0..120),
        captures in prop::collection::vec((0u8..30, any::<u8>(), 0u8..10, 0usize..5), 0..160),
        threads in 1usize..5,
        rotate in 0usize..5,
        samples in 0usize..6,
    ) {
        let problem = problem(p);
        let cfg = config(problem, samples);
        let gts = sources("gt", &labels.iter().map(|&(id, v, k, f)| (f, gt_line(problem, id, v, k))).collect::<Vec<_>>());
        let caps = sources("cap", &captures.iter().map(|&(id, v, k, f)| (f, cap_line(problem, id, v, k))).collect::<Vec<_>>());
        let gts = if problem.is_some() { gts } else { Vec::new() };
        let s = single(&cfg, &gts, &caps);
        let b = broadcast(&cfg, &gts, &caps, threads, rotate);
        same(&s, &b)?;
    }
}

/// Many records (standard deviations and score compaction take part), ids repeated across
/// sources on both sides, on 2 and 3 threads.
#[test]
fn large_inputs_are_bit_for_bit() {
    for p in 0..5u8 {
        let problem = problem(p);
        let cfg = config(problem, 8);
        let n = 4000usize;
        let gts: Vec<(usize, String)> = (0..n)
            .map(|i| {
                let id = (i % 250) as u8;
                let kind = if i % 97 == 0 { 1 } else { 0 };
                (i % 4, gt_line(problem, id, (i * 31 % 251) as u8, kind))
            })
            .collect();
        let caps: Vec<(usize, String)> = (0..n)
            .map(|i| {
                let id = ((i * 13) % 256) as u8;
                (
                    i % 5,
                    // Ids that are multiples of 11 always have an unreadable prediction.
                    cap_line(
                        problem,
                        id,
                        (i * 17 % 253) as u8,
                        if id.is_multiple_of(11) {
                            6
                        } else {
                            (i % 10) as u8 % 6
                        },
                    ),
                )
            })
            .collect();
        let gts = if problem.is_some() {
            sources("gt", &gts)
        } else {
            Vec::new()
        };
        let caps = sources("cap", &caps);
        let s = single(&cfg, &gts, &caps);
        if problem.is_some() {
            assert!(s.counts.matched > 200, "{problem:?} {:?}", s.counts);
            assert!(s.counts.duplicate_capture_ids > 0 && s.counts.duplicate_ground_truth_ids > 0);
            let c = &s.counts;
            // (Any text is a class: multiclass has no unreadable prediction or label here.)
            let multiclass = problem == Some(ProblemType::MulticlassClassification);
            assert!(
                c.evaluated > 100
                    && (multiclass || (c.invalid_predictions > 0 && c.invalid_labels > 0)),
                "{problem:?} {c:?}"
            );
        }
        for threads in [2, 3] {
            same(&s, &broadcast(&cfg, &gts, &caps, threads, threads)).unwrap();
        }
    }
}

/// Enough labels that the job's engine stores them on several threads (more than the serial
/// cutoff of 65 536), ids repeated within and across ground-truth files (and a few that are not
/// UUIDs): bit for bit the single pass, without a limit, within one, and past one (which fails
/// as the single pass does).
#[test]
fn many_labels_stored_on_threads_are_bit_for_bit() {
    let p = Some(ProblemType::BinaryClassification);
    let cfg = config(p, 8);
    let uuid = |i: u32| {
        format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            i.wrapping_mul(2_654_435_761),
            i % 65_536,
            i
        )
    };
    let gt = |id: &str, v: u32| {
        format!(
            r#"{{"groundTruthData":{{"data":"{}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#,
            v % 2
        )
    };
    // Four files of 25 000 labels: file f holds ids f * 20 000 .. f * 20 000 + 25 000 (5 000
    // shared with the next file's), every 50th label repeats an id of its own file, every
    // 1000th id is not a UUID.
    let mut gts: Vec<Source> = Vec::new();
    let mut unique = std::collections::HashSet::new();
    for f in 0..4u32 {
        let mut b = Vec::new();
        for j in 0..25_000u32 {
            let i = if j % 50 == 49 {
                f * 20_000 + j / 3
            } else {
                f * 20_000 + j
            };
            let id = if i % 1000 == 7 {
                format!("id-{i}")
            } else {
                uuid(i)
            };
            unique.insert(id.clone());
            b.extend_from_slice(gt(&id, (i.wrapping_mul(2_654_435_761) >> 13) ^ j).as_bytes());
            b.push(b'\n');
        }
        gts.push((format!("gt/{}.jsonl", ["m", "c", "x", "a"][f as usize]), b));
    }
    gts.sort();
    let mut caps: Vec<Source> = Vec::new();
    for f in 0..2u32 {
        let mut b = Vec::new();
        for j in 0..15_000u32 {
            let i = (j * 13 + f * 7) % 95_000;
            let id = if i % 1000 == 7 {
                format!("id-{i}")
            } else {
                uuid(i)
            };
            b.extend_from_slice(
                cap_line(p, 0, (i % 256) as u8, 0)
                    .replacen(&key(0), &id, 1)
                    .as_bytes(),
            );
            b.push(b'\n');
        }
        caps.push((format!("cap/{f}.jsonl"), b));
    }
    let s = single(&cfg, &gts, &caps);
    assert!(s.counts.duplicate_ground_truth_ids >= 100_000 - unique.len() as u64);
    assert!(s.counts.matched > 20_000, "{:?}", s.counts);
    for threads in [2, 3] {
        same(&s, &broadcast(&cfg, &gts, &caps, threads, threads)).unwrap();
    }
    // With a limit: room enough for every label, and (UUIDs only) as in the single pass.
    let only_uuids: Vec<Source> = gts
        .iter()
        .map(|(n, b)| {
            let lines = b
                .split(|&c| c == b'\n')
                .filter(|l| !l.is_empty() && !l.windows(4).any(|w| w == b"\"id-"));
            (
                n.clone(),
                lines
                    .flat_map(|l| l.iter().copied().chain([b'\n']))
                    .collect(),
            )
        })
        .collect();
    // 64 MiB: the table is reserved for every label (stored on threads with UUID keys only);
    // 8 MiB: reserved smaller, it grows (serially); 3 MiB: the 2^17 slots the ids need do not fit.
    let mut failed = 0;
    for (gts, limit) in [
        (&gts, 64 << 20),
        (&only_uuids, 64 << 20),
        (&only_uuids, 8 << 20),
        (&only_uuids, 3 << 20),
    ] {
        let make = || Engine::new(cfg.clone()).with_ground_truth_limit(limit);
        let mut one = make();
        let one_result = gts
            .iter()
            .try_for_each(|g| feed(&mut one, &Input::GroundTruth(g)));
        let mut many = make();
        let mut rotated = gts.clone();
        rotated.rotate_left(1);
        let many_result = feed_broadcast(
            &mut many,
            2,
            make,
            &rotated,
            &caps,
            source_name,
            feed,
            |e| e,
        )
        .map(drop);
        match (one_result, many_result) {
            (Ok(()), Ok(())) => {
                for c in &caps {
                    feed(&mut one, &Input::Capture(c)).unwrap();
                }
                same(&one.finish().unwrap(), &many.finish().unwrap()).unwrap();
            }
            // (Where it fails differs: the broadcast's table is reserved, the single pass's grows.)
            (Err(a), Err(b)) => {
                failed += 1;
                assert!(
                    [&a, &b]
                        .iter()
                        .all(|e| matches!(e, EngineError::GroundTruthTooLarge { .. })),
                    "limit {limit}: {a} / {b}"
                )
            }
            (a, b) => panic!("limit {limit}: {a:?} vs {b:?}"),
        }
    }
    assert_eq!(failed, 1);
}

/// The first capture record of an id by (source, line) wins, whichever thread read it; the
/// last label by (source, line) too.
#[test]
fn first_capture_and_last_label_win_across_threads() {
    let p = Some(ProblemType::Regression);
    let cfg = MonitorConfig {
        problem_type: p,
        ..Default::default()
    };
    let line = |s: String| format!("{s}\n").into_bytes();
    let gts = vec![
        ("l2".to_string(), line(gt_line(p, 2, 7, 0))), // 1: wins
        ("l1".to_string(), line(gt_line(p, 2, 70, 0))), // 10
        ("l3".to_string(), line(gt_line(p, 4, 7, 0))),
    ];
    let caps = vec![
        ("b.jsonl".to_string(), line(cap_line(p, 2, 31, 0))), // prediction 31/3
        ("a.jsonl".to_string(), line(cap_line(p, 2, 7, 0))),  // prediction 7/3: wins
    ];
    let r = broadcast(&cfg, &gts, &caps, 2, 0);
    assert_eq!(r.counts.matched, 1);
    assert_eq!(r.counts.duplicate_capture_ids, 1);
    assert_eq!(r.counts.duplicate_ground_truth_ids, 1);
    assert_eq!(r.counts.unmatched_labels, 1);
    let mae = r.quality.unwrap().get("mae").unwrap().value;
    assert!((mae - (7.0 / 3.0 - 1.0)).abs() < 1e-12, "{mae}");
}

/// The table cannot be taken back while a probe holds it; ground truth fed to a probe, or after
/// the table was shared, is rejected.
#[test]
fn sharing_rules_are_enforced() {
    let cfg = config(Some(ProblemType::BinaryClassification), 4);
    let mut e = Engine::new(cfg.clone());
    e.push_ground_truth_line(&gt_line(cfg.problem_type, 2, 1, 0), "g", 1)
        .unwrap();
    let labels = e.share_labels().unwrap();
    assert!(matches!(
        e.push_ground_truth_line(&gt_line(cfg.problem_type, 4, 1, 0), "g", 2),
        Err(EngineError::GroundTruthAfterCapture)
    ));
    let mut probe = Engine::new(cfg.clone()).probing(labels.clone());
    assert!(probe.is_probe());
    assert!(matches!(
        probe.push_ground_truth_line(&gt_line(cfg.problem_type, 4, 1, 0), "g", 2),
        Err(EngineError::GroundTruthAfterCapture)
    ));
    probe.push_capture_line(&cap_line(cfg.problem_type, 2, 1, 0), "c", 1);
    let err = e.absorb_probes(labels.clone(), Vec::new()).unwrap_err();
    assert!(err.to_string().contains("still shared"), "{err}");
    let state = probe.into_probe();
    assert_eq!(state.contributions(), 1);
    e.absorb_probes(labels, vec![state]).unwrap();
    let r = e.finish().unwrap();
    assert_eq!((r.counts.matched, r.counts.evaluated), (1, 1));
    assert!(Engine::partial(cfg).share_labels().is_err());
}

/// The ground-truth limit holds for labels read by collectors as for the single pass.
#[test]
fn the_label_limit_applies_to_collected_labels() {
    let p = Some(ProblemType::MulticlassClassification);
    let cfg = config(p, 4);
    let gts: Vec<Source> = (0..4)
        .map(|f| {
            let mut b = Vec::new();
            for i in 0..2000u32 {
                let id = format!("id-{f}-{i}");
                b.extend_from_slice(
                    format!(
                        r#"{{"groundTruthData":{{"data":"c{}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}}}}"#,
                        i % 7
                    )
                    .as_bytes(),
                );
                b.push(b'\n');
            }
            (format!("gt/{f}.jsonl"), b)
        })
        .collect();
    let limit = 64 << 10;
    let make = || Engine::new(cfg.clone()).with_ground_truth_limit(limit);
    let mut e = make();
    let err = feed_broadcast(&mut e, 2, make, &gts, &[], source_name, feed, |e| e).unwrap_err();
    assert!(
        matches!(err, EngineError::GroundTruthTooLarge { limit_bytes, .. } if limit_bytes == limit),
        "{err}"
    );
    assert!(
        e.ground_truth_bytes() as u64 <= limit,
        "{}",
        e.ground_truth_bytes()
    );
    // Within a large enough limit, the labels are all there.
    let make = || Engine::new(cfg.clone()).with_ground_truth_limit(64 << 20);
    let mut e = make();
    feed_broadcast(&mut e, 2, make, &gts, &[], source_name, feed, |e| e).unwrap();
    let r = e.finish().unwrap();
    assert_eq!(r.counts.unmatched_labels, 8000);
}

/// The problem type `exercise_broadcast` reads from its first byte.
fn exercised_problem(head: u8) -> Option<ProblemType> {
    match head % 5 {
        0 => None,
        1 => Some(ProblemType::Regression),
        2 => Some(ProblemType::BinaryClassification),
        3 => Some(ProblemType::MulticlassClassification),
        _ => Some(ProblemType::Forecast),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The fuzz target `broadcast_join`'s function on raw bytes.
    #[test]
    fn broadcast_exercise_on_raw_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        driftloop::metrics::engine::broadcast::exercise_broadcast(&data);
    }

    /// ... and on records, so that the join takes part.
    #[test]
    fn broadcast_exercise_on_records(
        head in any::<u8>(),
        labels in prop::collection::vec((0u8..30, any::<u8>(), prop::sample::select(vec![0u8, 0, 0, 1, 2]), any::<bool>()), 0..80),
        captures in prop::collection::vec((0u8..30, any::<u8>(), 0u8..10, any::<bool>()), 0..120),
    ) {
        let problem = exercised_problem(head);
        let mut data = vec![head];
        for (id, v, k, cut) in &labels {
            data.extend_from_slice(gt_line(problem, *id, *v, *k).as_bytes());
            data.push(if *cut { 1 } else { b'\n' });
        }
        data.push(0);
        for (id, v, k, cut) in &captures {
            data.extend_from_slice(cap_line(problem, *id, *v, *k).as_bytes());
            data.push(if *cut { 1 } else { b'\n' });
        }
        let counts = driftloop::metrics::engine::broadcast::exercise_broadcast(&data);
        prop_assert_eq!(counts.capture_lines as usize >= captures.len(), true);
        if problem.is_some() && !labels.is_empty() && !captures.is_empty() {
            prop_assert!(counts.ground_truth_lines > 0);
        }
    }
}

/// How a test hands sources' contributions to an applier.
type Walk<'a> = &'a dyn Fn(&std::sync::Arc<SharedLabels>, &mut Applier, Vec<Contributions>);

/// However the sources' contributions reach the walk, it walks them in name order: a keeping
/// applier (the default) walks late sources again at the end; one told the sources come in name
/// order ranks them (`walk_ranked`: any arrival order, a rank handed over twice) or, handed a
/// late source, fails the job naming it instead of giving a result that differs from the
/// single pass.
#[test]
fn the_walk_is_in_name_order_whatever_the_arrival_order() {
    let p = Some(ProblemType::Regression);
    let cfg = config(p, 4);
    // Ids repeat across sources, so which source is walked first decides which record wins.
    let gt_recs: Vec<(usize, String)> = (0..40u8)
        .map(|i| (usize::from(i % 3), gt_line(p, i % 17, i, 0)))
        .collect();
    let cap_recs: Vec<(usize, String)> = (0..60u8)
        .map(|i| {
            (
                usize::from(i % 5),
                cap_line(p, ((u16::from(i) * 7) % 19) as u8, i, 0),
            )
        })
        .collect();
    let (gts, caps) = (sources("gt", &gt_recs), sources("cap", &cap_recs));
    assert_eq!(caps.len(), 5);
    let want = single(&cfg, &gts, &caps);
    assert!(want.counts.duplicate_capture_ids > 0, "{:?}", want.counts);
    // Per source: its contributions, from a probe of its own.
    let run = |walk: Walk, applier: fn(&Engine) -> Applier| {
        let mut e = Engine::new(cfg.clone());
        for s in &gts {
            feed(&mut e, &Input::GroundTruth(s)).unwrap();
        }
        let labels = e.share_labels().unwrap();
        let mut states = Vec::new();
        let mut contributions = Vec::new();
        for s in &caps {
            let mut probe = Engine::new(cfg.clone()).probing(labels.clone());
            feed(&mut probe, &Input::Capture(s)).unwrap();
            contributions.push(probe.take_contributions());
            states.push(probe.into_probe());
        }
        let mut a = applier(&e);
        walk(&labels, &mut a, contributions);
        e.absorb_applied(labels, states, a)
            .map(|()| e.finish().unwrap())
    };
    let keeping = |e: &Engine| e.applier();
    let ranked = |e: &Engine| e.applier().in_name_order();
    // Handed over in reverse: the keeping applier walks them again, in order.
    let reversed = run(
        &|l, a, mut c| {
            c.reverse();
            for c in c {
                a.push(l, c);
            }
        },
        keeping,
    );
    same(&want, &reversed.unwrap()).unwrap();
    // Ranked, arriving in the order 3 1 4 0 2, rank 1 handed over twice (its second part empty).
    let arrivals = run(
        &|l, a, c| {
            let mut c: Vec<_> = c.into_iter().map(Some).collect();
            let mut handed = Vec::new();
            for i in [3usize, 1, 4, 0, 2] {
                handed.push((i, c[i].take().unwrap()));
                if i == 1 {
                    handed.push((1, Contributions::default()));
                }
            }
            a.walk_ranked(l, handed);
        },
        ranked,
    );
    same(&want, &arrivals.unwrap()).unwrap();
    // In name order, pushed one by one: the same.
    let pushed = run(
        &|l, a, c| {
            for c in c {
                a.push(l, c);
            }
        },
        ranked,
    );
    same(&want, &pushed.unwrap()).unwrap();
    // Late for an applier that walks as they come: the job fails, naming the late source.
    let late = run(
        &|l, a, mut c| {
            c.swap(0, 1);
            for c in c {
                a.push(l, c);
            }
        },
        ranked,
    );
    let err = late.unwrap_err().to_string();
    assert!(
        err.contains(&caps[0].0) && err.contains("name order"),
        "{err}"
    );
}
