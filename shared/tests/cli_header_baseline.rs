//! The CLI (`driftloop-metrics`, the `cli` feature) on header-named baselines and headerless
//! capture: a real Model Monitor baseline (`run`), and one it suggests itself from a CSV with a
//! header (`suggest-baseline --header`).
#![cfg(feature = "cli")]

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("driftloop-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_driftloop-metrics"))
        .args(args)
        .output()
        .unwrap()
}

fn write_lines(p: &Path, lines: &[String]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, lines.join("\n") + "\n").unwrap();
}

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn run_kinds(out: &Path) -> BTreeSet<(String, String)> {
    kinds(&violations(&read(&out.join("constraint_violations.json"))))
}

#[test]
fn a_real_header_named_baseline_and_headerless_capture() {
    let d = tmp("nyc");
    write_lines(&d.join("capture/c.jsonl"), &nyc_capture(&NYC_SHIFTED));
    let out = d.join("out");
    let o = cli(&[
        "run",
        "--capture",
        d.join("capture").to_str().unwrap(),
        "--baseline-statistics",
        path(NYC_DQ_RUN_STATS).to_str().unwrap(),
        "--baseline-constraints",
        path(NYC_DQ_BASELINE).to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut expected = kinds(&nyc_expected_non_drift());
    for f in NYC_SHIFTED {
        expected.insert((f.to_string(), "baseline_drift_check".to_string()));
    }
    assert_eq!(run_kinds(&out), expected);
    let summary = read(&out.join("summary.json"));
    assert_eq!(summary["counts"]["data_quality_column_mismatch"], 0);
    let drift: Vec<(String, f64)> = summary["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let n = m["name"].as_str()?;
            n.starts_with("feature_baseline_drift_")
                .then(|| (n.to_owned(), m["value"].as_f64().unwrap()))
        })
        .collect();
    assert_eq!(drift.len(), 143);
    for (n, v) in &drift {
        let shifted = NYC_SHIFTED
            .iter()
            .any(|f| *n == format!("feature_baseline_drift_{f}"));
        assert_eq!(*v > 0.1, shifted, "{n} {v}");
    }
    let stats = read(&out.join("statistics.json"));
    assert_eq!(stats["features"][0]["name"], "pickup_count");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_suggested_header_baseline_and_the_cli_options() {
    let d = tmp("suggest");
    // Training data with a header, the label (the model's output) first.
    let mut csv = String::from("churn,plan,minutes,calls\n");
    let plans = ["basic", "pro", "basic", "max"];
    let row =
        |i: usize, plan: &str, minutes: f64| format!("{},{plan},{minutes:.1},{}", i % 2, i % 7);
    for i in 0..600 {
        csv.push_str(&row(i, plans[i % 4], 100.0 + (i % 50) as f64));
        csv.push('\n');
    }
    std::fs::write(d.join("train.csv"), csv).unwrap();
    let base = d.join("baseline");
    let o = cli(&[
        "suggest-baseline",
        "--dataset",
        d.join("train.csv").to_str().unwrap(),
        "--header",
        "--output",
        base.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let capture = |name: &str, minutes_shift: f64, extra: &str| -> PathBuf {
        let lines: Vec<String> = (0..600)
            .map(|i| {
                let r = row(i, plans[i % 4], 100.0 + (i % 50) as f64 + minutes_shift);
                let (out, input) = r.split_once(',').unwrap();
                capture_line(i, &format!("{input}{extra}"), Some(out))
            })
            .collect();
        let p = d.join(name);
        write_lines(&p.join("c.jsonl"), &lines);
        p
    };
    let run = |cap: &Path, out: &str, more: &[&str]| -> (Option<i32>, PathBuf, String) {
        let out = d.join(out);
        let stats = base.join("statistics.json");
        let cons = base.join("constraints.json");
        let mut args = vec![
            "run",
            "--capture",
            cap.to_str().unwrap(),
            "--baseline-statistics",
            stats.to_str().unwrap(),
            "--baseline-constraints",
            cons.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(more);
        let o = cli(&args);
        (
            o.status.code(),
            out,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // Consistent capture: no violation.
    let (code, out, err) = run(&capture("same", 0.0, ""), "o1", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(run_kinds(&out).is_empty());
    // Drifted minutes: that check only.
    let (code, out, err) = run(&capture("drift", 500.0, ""), "o2", &[]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(
        run_kinds(&out),
        BTreeSet::from([("minutes".to_string(), "baseline_drift_check".to_string())])
    );
    // Two request columns too many: extra columns, counted.
    let (code, out, err) = run(&capture("long", 0.0, ",1,2"), "o3", &[]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(
        run_kinds(&out),
        BTreeSet::from([
            ("_c4".to_string(), "extra_column_check".to_string()),
            ("_c5".to_string(), "extra_column_check".to_string())
        ])
    );
    assert_eq!(
        read(&out.join("summary.json"))["counts"]["data_quality_column_mismatch"],
        600
    );
    // --feature-names overrides the baseline's names; a bad list is an error.
    let (code, out, err) = run(
        &capture("same", 0.0, ""),
        "o4",
        &["--feature-names", "churn,plan,minutes,n_calls"],
    );
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(
        run_kinds(&out),
        BTreeSet::from([
            ("calls".to_string(), "missing_column_check".to_string()),
            ("n_calls".to_string(), "extra_column_check".to_string())
        ])
    );
    let (code, _, err) = run(
        &capture("same", 0.0, ""),
        "o5",
        &["--feature-names", "a,b,a"],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--feature-names") && err.contains("\"a\""),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn output_columns_position_end_serves_a_baseline_with_the_output_last() {
    let dir = "nb-packt-learn-sagemaker-2e-boston/RECONSTRUCTED_from_notebook_log";
    let st = stats(&format!("{dir}/statistics.json"));
    let lines: Vec<String> = driftloop::metrics::dq::sample::rows_from_statistics(&st)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (input, output) = r.split_at(r.len() - 1);
            capture_line(i, &input.join(","), Some(&output[0]))
        })
        .collect();
    let d = tmp("end");
    write_lines(&d.join("capture/c.jsonl"), &lines);
    let go = |out: &str, more: &[&str]| {
        let out = d.join(out);
        let stats = path(&format!("{dir}/statistics.json"));
        let cons = path(&format!("{dir}/constraints.json"));
        let mut args: Vec<String> = vec![
            "run".into(),
            "--capture".into(),
            d.join("capture").to_str().unwrap().to_owned(),
            "--baseline-statistics".into(),
            stats.to_str().unwrap().to_owned(),
            "--baseline-constraints".into(),
            cons.to_str().unwrap().to_owned(),
            "--output".into(),
            out.to_str().unwrap().to_owned(),
        ];
        args.extend(more.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        (cli(&args).status.code(), out)
    };
    let (code, out) = go("end", &["--output-columns-position", "end"]);
    assert_eq!(code, Some(0), "{:?}", run_kinds(&out));
    // The default layout puts the output on the first feature.
    let (code, out) = go("start", &[]);
    assert_eq!(code, Some(3));
    assert!(run_kinds(&out).contains(&("crim".to_string(), "baseline_drift_check".to_string())));
    let _ = std::fs::remove_dir_all(&d);
}
