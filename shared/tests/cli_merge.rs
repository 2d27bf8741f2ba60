//! `driftloop-metrics merge`: partial states of `run --state-out` over disjoint subsets of the
//! files (labels and capture split independently; one run over labels only, one over capture
//! only) write the same files as one `run` over all of them; and `run --threads 2` the same as
//! `run --threads 1`.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("driftloop-merge-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cli(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_driftloop-metrics"))
        .args(args)
        .output()
        .unwrap()
}

fn key(i: usize) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        i * 2654435761 % 4294967291,
        i
    )
}

/// 9 capture files and 4 label files over 600 ids: some ids captured twice (in other files),
/// some labelled twice (the later file re-labels), some never labelled, some labels unmatched.
fn write_inputs(d: &Path) {
    let cap_dir = d.join("capture");
    let gt_dir = d.join("labels");
    std::fs::create_dir_all(&cap_dir).unwrap();
    std::fs::create_dir_all(&gt_dir).unwrap();
    let mut caps = vec![String::new(); 9];
    for i in 0..700usize {
        let id = if i >= 600 { i - 300 } else { i }; // 100 duplicates
        let score = ((i * 37) % 101) as f64 / 100.0;
        let (a, b) = (i % 17, (i * 7) % 5);
        caps[(i * 5) % 9].push_str(&format!(
            r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{a},{b}","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{score}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{}","inferenceTime":"2024-01-01T00:{:02}:00Z"}},"eventVersion":"0"}}"#,
            key(id),
            i % 60
        ));
        caps[(i * 5) % 9].push('\n');
    }
    caps[3].push_str("{\"broken\n");
    for (j, c) in caps.iter().enumerate() {
        std::fs::write(cap_dir.join(format!("part-{j}.jsonl")), c).unwrap();
    }
    let mut gts = vec![String::new(); 4];
    for i in 0..650usize {
        // ids 0..550 labelled; 600..650 labelled but never captured; 100..150 labelled again.
        let id = if i >= 550 { i + 50 } else { i };
        let y = (i * 11) % 3 == 0;
        gts[i % 4].push_str(&format!(
            r#"{{"groundTruthData":{{"data":"{}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{}"}},"eventVersion":"0"}}"#,
            u8::from(y),
            key(id)
        ));
        gts[i % 4].push('\n');
        if (100..150).contains(&i) {
            gts[3].push_str(&format!(
                r#"{{"groundTruthData":{{"data":"{}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{}"}},"eventVersion":"0"}}"#,
                u8::from(!y),
                key(id)
            ));
            gts[3].push('\n');
        }
    }
    for (j, g) in gts.iter().enumerate() {
        std::fs::write(gt_dir.join(format!("labels-{j}.jsonl")), g).unwrap();
    }
}

const OPTIONS: [&str; 5] = [
    "--problem-type",
    "binary-classification",
    "--data-quality",
    "--prediction-drift",
    "--window-start=2024-01-01T00:00:00Z",
];

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// The written files, with the evaluation time (a clock reading) taken out.
fn files(out: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            let text = text
                .lines()
                .filter(|l| !l.contains("\"evaluation_time\""))
                .collect::<Vec<_>>()
                .join("\n");
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    v.sort();
    v
}

/// Model quality, violations, counts and samples byte for byte; the data-quality statistics
/// (and the data-quality means in summary.json) to 1e-12 relative — their running means merge
/// to within rounding — and their KLL sketches (`sketch`, above capacity here) left out: merged
/// sketches hold other items, within the sketch's rank error (`shared/tests/metrics_partial.rs`).
fn same_files(a: &[(String, String)], b: &[(String, String)]) {
    assert_eq!(
        a.iter().map(|x| &x.0).collect::<Vec<_>>(),
        b.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in a.iter().zip(b) {
        if name.ends_with(".json")
            && (name.contains("quality_statistics")
                || name.contains("prediction_statistics")
                || name == "summary.json")
        {
            let (x, y): (serde_json::Value, serde_json::Value) = (
                serde_json::from_str(x).unwrap(),
                serde_json::from_str(y).unwrap(),
            );
            close_json(&x, &y, name);
        } else {
            assert_eq!(x, y, "{name}");
        }
    }
}

fn close_json(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value::*;
    match (a, b) {
        (Object(x), Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{at}"
            );
            for (k, v) in x {
                if k != "sketch" {
                    close_json(v, &y[k], &format!("{at}.{k}"));
                }
            }
        }
        (Array(x), Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                close_json(v, w, &format!("{at}[{i}]"));
            }
        }
        (Number(x), Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0),
                "{at}: {x} vs {y}"
            );
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn merge_of_partial_runs_writes_what_one_run_writes() {
    let d = tmp("split");
    write_inputs(&d);
    let cap = |j: usize| s(&d.join(format!("capture/part-{j}.jsonl")));
    let gt = |j: usize| s(&d.join(format!("labels/labels-{j}.jsonl")));

    let mut full = args(&["run", "--threads", "1", "--capture"]);
    full.push(s(&d.join("capture")));
    full.push("--ground-truth".into());
    full.push(s(&d.join("labels")));
    full.extend(args(&OPTIONS));
    full.extend(["--output".into(), s(&d.join("full"))]);
    let o = cli(&full);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Worker splits: capture and labels independently; a labels-only and a capture-only worker.
    let workers: [(&[usize], &[usize]); 4] = [
        (&[0, 4, 8], &[3]),
        (&[1, 2], &[0, 2]),
        (&[], &[1]),
        (&[3, 5, 6, 7], &[]),
    ];
    let mut states = Vec::new();
    for (w, (cs, gs)) in workers.iter().enumerate() {
        let mut a = args(&["run"]);
        if !cs.is_empty() {
            a.push("--capture".into());
            a.extend(cs.iter().map(|j| cap(*j)));
        }
        if !gs.is_empty() {
            a.push("--ground-truth".into());
            a.extend(gs.iter().map(|j| gt(*j)));
        }
        a.extend(args(&OPTIONS));
        let st = d.join(format!("state-{w}.json"));
        a.extend([
            "--state-out".into(),
            s(&st),
            "--output".into(),
            s(&d.join(format!("w{w}"))),
        ]);
        let o = cli(&a);
        assert!(
            o.status.success(),
            "worker {w}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        states.push(s(&st));
    }
    let mut m = args(&["merge"]);
    m.extend(states.iter().rev().cloned());
    m.extend(args(&OPTIONS));
    m.extend(["--output".into(), s(&d.join("merged"))]);
    let o = cli(&m);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let (a, b) = (files(&d.join("full")), files(&d.join("merged")));
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    for f in [
        "statistics.json",
        "data_quality_statistics.json",
        "constraint_violations.json",
        "prediction_statistics.json",
        "summary.json",
        "summary.txt",
    ] {
        assert!(names.contains(&f), "{f} missing: {names:?}");
    }
    same_files(&a, &b);
    // The data has what makes the merge non-trivial.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("full/summary.json")).unwrap())
            .unwrap();
    let c = &summary["counts"];
    for k in [
        "duplicate_capture_ids",
        "duplicate_ground_truth_ids",
        "unmatched_labels",
        "unmatched_predictions",
        "matched",
    ] {
        assert!(c[k].as_u64().unwrap() > 0, "{k}: {c}");
    }

    // A single-pass state is refused (its join is done; it would not add up).
    let mut one = full.clone();
    one.truncate(one.len() - 2);
    one.extend(["--output".into(), s(&d.join("again"))]);
    let st = d.join("whole.json");
    let o = cli(&[one.clone(), vec!["--state-out".into(), s(&st)]].concat());
    assert!(o.status.success());
    let o = cli(&[
        args(&["merge"]),
        vec![s(&st)],
        args(&OPTIONS),
        vec!["--output".into(), s(&d.join("m2"))],
    ]
    .concat());
    assert!(
        o.status.success(),
        "a --state-out state is partial: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    same_files(&files(&d.join("m2")), &a);
}

#[test]
fn threads_write_what_one_thread_writes() {
    let d = tmp("threads");
    write_inputs(&d);
    let run = |threads: &str, out: &str| {
        let mut a = args(&["run", "--threads", threads, "--capture"]);
        a.push(s(&d.join("capture")));
        a.push("--ground-truth".into());
        a.push(s(&d.join("labels")));
        a.extend(args(&OPTIONS));
        a.extend(["--output".into(), s(&d.join(out))]);
        let o = cli(&a);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        files(&d.join(out))
    };
    let one = run("1", "t1");
    same_files(&run("2", "t2"), &one);
    same_files(&run("3", "t3"), &one);
}
