//! Data generator and benchmark of the metrics engine (not a timed test).
//!
//! ```text
//! driftloop-metrics-bench generate --records 1000000 --out /tmp/bench [--drift]
//! driftloop-metrics-bench all --dir /tmp/bench [--python .venv/bin/python] [--peer tests/python/bench_peer.py] [--runs 3]
//! ```
//! `all` runs, each in its own process (so peak RSS is per contender): (a) the engine (join +
//! binary metrics), (b) a bare serde_json `IgnoredAny` parse of the same bytes, (c) the
//! pandas + scikit-learn peer, and prints records/s, MB/s, user+system CPU seconds, peak RSS and
//! the ratios. The machine may be shared: compare CPU seconds, and use `--runs 3` (or more) for
//! medians over interleaved rounds.

use clap::{Parser, Subcommand};
use driftloop::metrics::util::SplitMix64;
use driftloop::metrics::{Engine, MonitorConfig, ProblemType};
use serde::de::IgnoredAny;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command as Proc;
use std::time::Instant;

/// The generated payload layout (one score, or data quality on 5 numeric features).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Case {
    /// CSV payloads, the score is the output (`0.731`).
    Csv,
    /// `application/json` payloads, the score nested: `{"prediction":{"score":0.731}}`.
    Json,
    /// 4 CSV rows per payload; the record's score is the output's first row.
    Multirow,
    /// 5 numeric input features, data quality only (no ground truth).
    Dq,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Csv => "csv",
            Case::Json => "json",
            Case::Multirow => "multirow",
            Case::Dq => "dq",
        }
    }
}

#[derive(Parser)]
#[command(
    name = "driftloop-metrics-bench",
    about = "Generate SageMaker-layout capture + ground truth and benchmark the metrics engine"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write capture/ and groundtruth/ in SageMaker's S3 layout.
    Generate {
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        #[arg(long)]
        out: PathBuf,
        /// Shift the input features and degrade the model.
        #[arg(long)]
        drift: bool,
        /// Share of predictions that get a label.
        #[arg(long, default_value_t = 0.95)]
        label_fraction: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Payload layout (see `Case`).
        #[arg(long, value_enum, default_value_t = Case::Csv)]
        case: Case,
    },
    /// (a) The engine: join + binary classification metrics (data quality for `--case dq`).
    Engine {
        #[arg(long)]
        dir: PathBuf,
        /// Also compute data-quality statistics.
        #[arg(long)]
        data_quality: bool,
        #[arg(long, value_enum, default_value_t = Case::Csv)]
        case: Case,
        /// Threads (the broadcast join); 0 = every available core.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// (b) Bare serde_json IgnoredAny parse of the same bytes.
    Bare {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Per case: the engine, the bare parse and the Python contenders (DuckDB, polars,
    /// pandas + scikit-learn), each run as its own process, compared; every contender's metrics
    /// are checked against the engine's. Cases missing under `DIR/<case>` are generated first.
    All {
        #[arg(long)]
        dir: PathBuf,
        /// Capture records per generated case.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Cases to run, comma separated.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "csv,json,multirow,dq"
        )]
        cases: Vec<Case>,
        /// Python contenders, comma separated (empty: none); `duckdb-1t` / `polars-1t`: on one
        /// thread, for their own speed-up from threads on this machine.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "duckdb,duckdb-1t,polars,pandas"
        )]
        tools: Vec<String>,
        /// The contenders' Python; default: the venv at `--venv`, created with `python3 -m venv`
        /// and `--requirements` when missing.
        #[arg(long)]
        python: Option<String>,
        #[arg(long, default_value = "tests/python/bench-requirements.txt")]
        requirements: PathBuf,
        /// Default: ~/.cache/driftloop/bench-venv.
        #[arg(long)]
        venv: Option<PathBuf>,
        #[arg(long, default_value = "tests/python/bench_peer.py")]
        peer: PathBuf,
        /// Skip the Python contenders.
        #[arg(long)]
        no_peer: bool,
        /// Rounds (each runs every contender); the table shows per-contender medians.
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Runs of the engine and of the bare parse per round (seconds each, against the peer's
        /// minute: more samples of the fast contenders across the machine's slow and fast
        /// phases, the same statistic).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
}

fn uuid(rng: &mut SplitMix64) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFF,
        0x8000 | ((b >> 48) & 0x3FFF),
        b & 0xFFFF_FFFF_FFFF
    )
}

fn generate(
    records: u64,
    out: &Path,
    drift: bool,
    label_fraction: f64,
    seed: u64,
    case: Case,
) -> std::io::Result<()> {
    let mut rng = SplitMix64(seed);
    let hours = (records / 50_000).clamp(1, 24);
    let files_per_hour = 4u64;
    let per_file = records.div_ceil(hours * files_per_hour);
    let mut written = 0u64;
    for h in 0..hours {
        let cap_dir = out.join(format!(
            "capture/bench-endpoint/AllTraffic/2024/01/01/{h:02}"
        ));
        let gt_dir = out.join(format!("groundtruth/2024/01/01/{h:02}"));
        std::fs::create_dir_all(&cap_dir)?;
        let with_gt = case != Case::Dq;
        let mut gt: Box<dyn Write> = if with_gt {
            std::fs::create_dir_all(&gt_dir)?;
            Box::new(BufWriter::new(std::fs::File::create(
                gt_dir.join("labels.jsonl"),
            )?))
        } else {
            Box::new(std::io::sink())
        };
        for f in 0..files_per_hour {
            let name = format!("{:02}-00-000-{}.jsonl", f * 15, uuid(&mut rng));
            let mut cap = BufWriter::new(std::fs::File::create(cap_dir.join(name))?);
            for i in 0..per_file {
                if written >= records {
                    break;
                }
                written += 1;
                let event_id = uuid(&mut rng);
                let inference_id = if rng.next_u64().is_multiple_of(2) {
                    Some(uuid(&mut rng))
                } else {
                    None
                };
                let y = rng.next_f64() < 0.3;
                let signal = if drift { 0.6 } else { 1.6 };
                let z = if y { signal } else { -signal }
                    + 1.2 * (rng.next_f64() + rng.next_f64() + rng.next_f64() - 1.5) * 2.0;
                let score = 1.0 / (1.0 + (-z).exp());
                let age = 18 + (rng.next_u64() % 60) as i64 + if drift { 10 } else { 0 };
                let income = 20_000.0 + rng.next_f64() * 80_000.0 * if drift { 1.3 } else { 1.0 };
                let cat = rng.next_u64() % 4;
                let sec = (f * 15 * 60 + i * 900 / per_file.max(1)) % 3600;
                let t = format!("2024-01-01T{h:02}:{:02}:{:02}Z", sec / 60, sec % 60);
                let meta = match &inference_id {
                    Some(inf) => format!(
                        r#""eventId":"{event_id}","inferenceId":"{inf}","inferenceTime":"{t}""#
                    ),
                    None => format!(r#""eventId":"{event_id}","inferenceTime":"{t}""#),
                };
                let (input, output) = match case {
                    Case::Csv => (
                        csv_payload("INPUT", &format!("{age},{income:.2},{cat}")),
                        csv_payload("OUTPUT", &format!("{score:.6}")),
                    ),
                    Case::Json => (
                        format!(
                            r#"{{"observedContentType":"application/json","mode":"INPUT","data":"{{\"features\":[{age},{income:.2},{cat}]}}","encoding":"JSON"}}"#
                        ),
                        format!(
                            r#"{{"observedContentType":"application/json","mode":"OUTPUT","data":"{{\"prediction\":{{\"score\":{score:.6}}}}}","encoding":"JSON"}}"#
                        ),
                    ),
                    Case::Multirow => {
                        let mut inp = format!("{age},{income:.2},{cat}");
                        let mut out = format!("{score:.6}");
                        for _ in 1..4 {
                            let a = 18 + rng.next_u64() % 60;
                            let inc = 20_000.0 + rng.next_f64() * 80_000.0;
                            inp.push_str(&format!("\\n{a},{inc:.2},{}", rng.next_u64() % 4));
                            out.push_str(&format!("\\n{:.6}", rng.next_f64()));
                        }
                        (csv_payload("INPUT", &inp), csv_payload("OUTPUT", &out))
                    }
                    Case::Dq => {
                        let f3 = (rng.next_f64() - 0.5) * 10.0;
                        let f4 = (rng.next_u64() % 1000) as f64 / 8.0;
                        (
                            csv_payload("INPUT", &format!("{age},{income:.2},{cat},{f3:.4},{f4}")),
                            csv_payload("OUTPUT", &format!("{score:.6}")),
                        )
                    }
                };
                writeln!(
                    cap,
                    r#"{{"captureData":{{"endpointInput":{input},"endpointOutput":{output}}},"eventMetadata":{{{meta}}},"eventVersion":"0"}}"#
                )?;
                if with_gt && rng.next_f64() < label_fraction {
                    let key = inference_id.as_deref().unwrap_or(&event_id);
                    writeln!(
                        gt,
                        r#"{{"groundTruthData":{{"data":"{}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{key}"}},"eventVersion":"0"}}"#,
                        u8::from(y)
                    )?;
                }
            }
            cap.flush()?;
        }
        // A few labels without a prediction.
        for _ in 0..(per_file / 100).max(1) {
            writeln!(
                gt,
                r#"{{"groundTruthData":{{"data":"1","encoding":"CSV"}},"eventMetadata":{{"eventId":"{}"}},"eventVersion":"0"}}"#,
                uuid(&mut rng)
            )?;
        }
        gt.flush()?;
    }
    eprintln!("wrote {written} capture records under {}", out.display());
    Ok(())
}

fn csv_payload(mode: &str, data: &str) -> String {
    let ct = if mode == "INPUT" {
        "text/csv"
    } else {
        "text/csv; charset=utf-8"
    };
    format!(r#"{{"observedContentType":"{ct}","mode":"{mode}","data":"{data}","encoding":"CSV"}}"#)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), out);
                }
            }
        } else if p.is_file() {
            out.push(p.to_path_buf());
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of this process (/proc/self/stat, clock ticks assumed 100 Hz).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn bytes_of(fs: &[PathBuf]) -> u64 {
    fs.iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn run_engine(dir: &Path, dq: bool, case: Case, threads: usize) -> serde_json::Value {
    let threads = match threads {
        0 => driftloop::metrics::engine::parallel::available_threads(),
        n => n,
    };
    let gt = if case == Case::Dq {
        Vec::new()
    } else {
        files(&dir.join("groundtruth"))
    };
    let cap = files(&dir.join("capture"));
    let bytes = bytes_of(&gt) + bytes_of(&cap);
    let start = Instant::now();
    let cfg = MonitorConfig {
        problem_type: (case != Case::Dq).then_some(ProblemType::BinaryClassification),
        probability_attribute: (case == Case::Json).then(|| "prediction.score".to_string()),
        data_quality: dq || case == Case::Dq,
        dq_include_output: case != Case::Dq,
        ..Default::default()
    };
    let mut e = Engine::new(cfg.clone());
    let (t_gt, t_cap);
    if threads > 1 {
        use driftloop::metrics::engine::parallel::{Input, feed_broadcast};
        let phases = feed_broadcast(
            &mut e,
            threads,
            || Engine::new(cfg.clone()),
            &gt,
            &cap,
            |f| f.display().to_string(),
            |e, input| {
                let (f, is_gt) = match input {
                    Input::GroundTruth(f) => (*f, true),
                    Input::Capture(f) => (*f, false),
                };
                let r = BufReader::with_capacity(1 << 20, std::fs::File::open(f).unwrap());
                let name = f.display().to_string();
                if is_gt {
                    e.feed_ground_truth(&name, r).map(drop)
                } else {
                    e.feed_capture(&name, r, |_| {}).map(drop)
                }
            },
            |e| e,
        )
        .unwrap();
        t_gt = phases.labels.as_secs_f64();
        t_cap = start.elapsed().as_secs_f64();
    } else {
        e.reserve_ground_truth((bytes_of(&gt) / 120) as usize);
        for f in &gt {
            e.feed_ground_truth(
                &f.display().to_string(),
                BufReader::with_capacity(1 << 20, std::fs::File::open(f).unwrap()),
            )
            .unwrap();
        }
        t_gt = start.elapsed().as_secs_f64();
        for f in &cap {
            e.feed_capture(
                &f.display().to_string(),
                BufReader::with_capacity(1 << 20, std::fs::File::open(f).unwrap()),
                |_| {},
            )
            .unwrap();
        }
        t_cap = start.elapsed().as_secs_f64();
    }
    let r = e.finish().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let metrics = match (&r.quality, &r.data_quality) {
        (Some(q), _) => {
            let m = |n: &str| q.get(n).map(|m| m.value);
            let cm = &q.metrics_json["confusion_matrix"];
            serde_json::json!({
                "matched": r.counts.matched, "tp": cm["1"]["1"], "fn": cm["1"]["0"],
                "fp": cm["0"]["1"], "tn": cm["0"]["0"],
                "accuracy": m("accuracy"), "precision": m("precision"), "recall": m("recall"),
                "f0_5": m("f0_5"), "f1": m("f1"), "f2": m("f2"), "auc": m("auc"),
            })
        }
        (None, Some(dq)) => {
            let columns: Vec<serde_json::Value> = (0..5)
                .map(|i| {
                    let c = dq.column(&format!("_c{i}")).expect("feature column").to_json();
                    let n = &c["numerical_statistics"];
                    let buckets: Vec<serde_json::Value> = n["distribution"]["kll"]["buckets"]
                        .as_array()
                        .map(|b| b.iter().map(|b| b["count"].clone()).collect())
                        .unwrap_or_default();
                    serde_json::json!({
                        "count": n["common"]["num_present"], "sum": n["sum"], "mean": n["mean"],
                        "std_dev": n["std_dev"], "min": n["min"], "max": n["max"], "buckets": buckets,
                    })
                })
                .collect();
            serde_json::json!({ "columns": columns })
        }
        _ => serde_json::Value::Null,
    };
    serde_json::json!({
        "name": if threads > 1 { "engine" } else { "engine-1t" }, "case": case.name(),
        "threads": threads,
        "records": r.counts.capture_lines, "bytes": bytes, "seconds": secs,
        "peak_rss_kb": peak_rss_kb(), "cpu_seconds": cpu_seconds(),
        "duplicates": r.counts.duplicate_capture_ids + r.counts.duplicate_ground_truth_ids,
        "phases": { "ground_truth": t_gt, "capture": t_cap - t_gt, "finish": secs - t_cap },
        "metrics": metrics,
    })
}

fn run_bare(dir: &Path) -> serde_json::Value {
    let gt = files(&dir.join("groundtruth"));
    let cap = files(&dir.join("capture"));
    let bytes = bytes_of(&gt) + bytes_of(&cap);
    let start = Instant::now();
    let mut records = 0u64;
    let mut buf = Vec::new();
    for f in gt.iter().chain(cap.iter()) {
        let mut r = BufReader::with_capacity(1 << 20, std::fs::File::open(f).unwrap());
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf).unwrap() == 0 {
                break;
            }
            let s = std::str::from_utf8(&buf).unwrap();
            let _: IgnoredAny = serde_json::from_str(s).unwrap();
            records += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds();
    let _ = records;
    // Capture records (the unit of records/s), counted outside the timed part.
    let cap_records: u64 = cap
        .iter()
        .map(|f| {
            BufReader::new(std::fs::File::open(f).unwrap())
                .lines()
                .count() as u64
        })
        .sum();
    serde_json::json!({ "name": "bare-parse", "records": cap_records, "bytes": bytes, "seconds": secs, "cpu_seconds": cpu, "peak_rss_kb": peak_rss_kb() })
}

/// One row per contender (in first-seen order) with the medians of `seconds`, `cpu_seconds`,
/// `peak_rss_kb` and the engine's `phases` over its runs; `cpu_runs` and `wall_runs` list every
/// run's CPU and wall seconds.
fn median_rows(all: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut names: Vec<&str> = Vec::new();
    for r in all {
        let n = r["name"].as_str().unwrap_or("?");
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    names
        .iter()
        .map(|n| {
            let runs: Vec<&serde_json::Value> = all.iter().filter(|r| r["name"] == *n).collect();
            let mut row = runs[0].clone();
            for k in ["seconds", "cpu_seconds", "peak_rss_kb"] {
                let vals = runs.iter().filter_map(|r| r[k].as_f64()).collect();
                row[k] = serde_json::json!(median(vals));
            }
            row["cpu_runs"] = runs.iter().map(|r| r["cpu_seconds"].clone()).collect();
            row["wall_runs"] = runs.iter().map(|r| r["seconds"].clone()).collect();
            // The engine's phases (labels, capture, finish): medians too.
            for k in ["ground_truth", "capture", "finish"] {
                let vals: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r["phases"][k].as_f64())
                    .collect();
                if !vals.is_empty() {
                    row["phases"][k] = serde_json::json!(median(vals));
                }
            }
            row
        })
        .collect()
}

fn child(cmd: &mut Proc) -> Option<serde_json::Value> {
    let out = cmd.output().ok()?;
    if !out.status.success() {
        eprintln!("child failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    s.lines().rev().find_map(|l| serde_json::from_str(l).ok())
}

/// The contenders' Python: `python`, else the venv's (created with `requirements` if missing or
/// if the requirements changed since).
fn contender_python(python: Option<String>, venv: Option<PathBuf>, requirements: &Path) -> String {
    if let Some(p) = python {
        return p;
    }
    let venv = venv.unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into()))
            .join(".cache/driftloop/bench-venv")
    });
    let py = venv.join("bin/python");
    let stamp = venv.join("driftloop-requirements.txt");
    let want = std::fs::read_to_string(requirements)
        .unwrap_or_else(|e| panic!("{}: {e}", requirements.display()));
    if !py.exists() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(&*want) {
        eprintln!(
            "creating {} from {}",
            venv.display(),
            requirements.display()
        );
        let ok = Proc::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "python3 -m venv failed");
        let ok = Proc::new(&py)
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(requirements)
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "pip install failed");
        std::fs::write(&stamp, want).expect("venv stamp");
    }
    py.display().to_string()
}

/// Whether `got` equals the engine's `want`: counts exactly, ratios to 1e-9 (relative), data
/// quality buckets within 1% of the count (the engine's come from its KLL sketch). Returns the
/// first difference.
fn check_metrics(want: &serde_json::Value, got: &serde_json::Value) -> Result<(), String> {
    let close = |k: &str, a: &serde_json::Value, b: &serde_json::Value, rel: f64| {
        let (x, y) = (
            a.as_f64().unwrap_or(f64::NAN),
            b.as_f64().unwrap_or(f64::NAN),
        );
        if (x - y).abs() <= rel * x.abs().max(y.abs()).max(1e-300) || x == y {
            Ok(())
        } else {
            Err(format!("{k}: engine {x} vs {y}"))
        }
    };
    if let Some(cols) = want["columns"].as_array() {
        for (i, w) in cols.iter().enumerate() {
            let g = &got["columns"][i];
            let n = w["count"].as_f64().unwrap_or(0.0);
            for (k, rel) in [
                ("count", 0.0),
                ("min", 0.0),
                ("max", 0.0),
                ("sum", 1e-9),
                ("mean", 1e-9),
                ("std_dev", 1e-6),
            ] {
                close(&format!("_c{i}.{k}"), &w[k], &g[k], rel)?;
            }
            let (wb, gb) = (
                w["buckets"].as_array().cloned().unwrap_or_default(),
                g["buckets"].as_array().cloned().unwrap_or_default(),
            );
            if wb.len() != gb.len() {
                return Err(format!("_c{i}: {} buckets vs {}", wb.len(), gb.len()));
            }
            for (j, (a, b)) in wb.iter().zip(&gb).enumerate() {
                let d = (a.as_f64().unwrap_or(0.0) - b.as_f64().unwrap_or(0.0)).abs();
                if d > 0.01 * n {
                    return Err(format!("_c{i} bucket {j}: engine {a} vs {b}"));
                }
            }
        }
        return Ok(());
    }
    for k in ["matched", "tp", "fp", "tn", "fn"] {
        close(k, &want[k], &got[k], 0.0)?;
    }
    for k in ["accuracy", "precision", "recall", "f0_5", "f1", "f2", "auc"] {
        close(k, &want[k], &got[k], 1e-9)?;
    }
    Ok(())
}

fn print_case(case: Case, rows: &[serde_json::Value], runs: usize) {
    let get = |n: &str| rows.iter().find(|r| r["name"] == n);
    let Some(engine) = get("engine").or_else(|| get("engine-1t")) else {
        println!("case {}: no engine result", case.name());
        return;
    };
    let records = engine["records"].as_f64().unwrap_or(0.0);
    println!(
        "\ncase {} ({} capture records, {:.0} MB)",
        case.name(),
        records,
        engine["bytes"].as_f64().unwrap_or(0.0) / 1e6
    );
    println!(
        "{:<11} {:>8} {:>8} {:>10} {:>12} {:>12}  metrics",
        "contender", "wall s", "cpu s", "cpu ns/rec", "records/s", "peak RSS MB"
    );
    for r in rows {
        let secs = r["seconds"].as_f64().unwrap_or(f64::NAN);
        let cpu = r["cpu_seconds"].as_f64().unwrap_or(f64::NAN);
        let check = match r["name"].as_str() {
            Some("engine") => "reference".to_string(),
            Some("engine-1t") => match check_metrics(&engine["metrics"], &r["metrics"]) {
                Ok(()) if engine["metrics"] == r["metrics"] => "identical".to_string(),
                Ok(()) => "equal".to_string(),
                Err(e) => format!("DIFFER {e}"),
            },
            Some("bare-parse") => "-".to_string(),
            _ => match check_metrics(&engine["metrics"], &r["metrics"]) {
                Ok(()) => "equal".to_string(),
                Err(e) => format!("DIFFER {e}"),
            },
        };
        println!(
            "{:<11} {:>8.2} {:>8.2} {:>10.0} {:>12.0} {:>12.1}  {check}{}",
            r["name"].as_str().unwrap_or("?"),
            secs,
            cpu,
            cpu * 1e9 / records,
            records / secs,
            r["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0,
            if runs > 1 {
                format!("  cpu {}", r["cpu_runs"])
            } else {
                String::new()
            }
        );
    }
    if let Some(one) = get("engine-1t").filter(|_| get("engine").is_some()) {
        let r =
            |k: &str| one[k].as_f64().unwrap_or(f64::NAN) / engine[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "  engine on {} threads: {:.2}x faster (wall) than one thread, cpu {:.2}x, peak RSS {:.2}x",
            engine["threads"],
            r("seconds"),
            1.0 / r("cpu_seconds"),
            1.0 / r("peak_rss_kb")
        );
    }
    for r in rows.iter().filter(|r| r["phases"].is_object()) {
        let p = |k: &str| r["phases"][k].as_f64().unwrap_or(f64::NAN);
        println!(
            "  {} phases (wall s, medians): labels {:.3}, capture {:.3}, finish {:.3}; wall runs {}",
            r["name"].as_str().unwrap_or("?"),
            p("ground_truth"),
            p("capture"),
            p("finish"),
            r["wall_runs"]
        );
    }
    for other in ["duckdb", "polars", "pandas"] {
        if let Some(o) = get(other) {
            let ratio = |k: &str| {
                o[k].as_f64().unwrap_or(f64::NAN) / engine[k].as_f64().unwrap_or(f64::NAN)
            };
            println!(
                "  {other} / engine: wall {:.2}x, cpu {:.2}x, peak RSS {:.2}x",
                ratio("seconds"),
                ratio("cpu_seconds"),
                ratio("peak_rss_kb")
            );
        }
    }
    for tool in ["duckdb", "polars"] {
        if let (Some(all), Some(one)) = (get(tool), get(&format!("{tool}-1t"))) {
            let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "  {tool} on every core: {:.2}x faster (wall) than on one thread, cpu {:.2}x",
                f(one, "seconds") / f(all, "seconds"),
                f(all, "cpu_seconds") / f(one, "cpu_seconds")
            );
        }
    }
    if engine["duplicates"].as_u64().unwrap_or(0) != 0 {
        println!("  note: the data has duplicate ids; the contenders do not de-duplicate");
    }
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Generate {
            records,
            out,
            drift,
            label_fraction,
            seed,
            case,
        } => generate(records, &out, drift, label_fraction, seed, case).expect("generate"),
        Cmd::Engine {
            dir,
            data_quality,
            case,
            threads,
        } => println!("{}", run_engine(&dir, data_quality, case, threads)),
        Cmd::Bare { dir } => println!("{}", run_bare(&dir)),
        Cmd::All {
            dir,
            records,
            cases,
            tools,
            python,
            requirements,
            venv,
            peer,
            no_peer,
            runs,
            repeat,
        } => {
            let me = std::env::current_exe().expect("current exe");
            let tools: Vec<String> = if no_peer {
                Vec::new()
            } else {
                tools.into_iter().filter(|t| !t.is_empty()).collect()
            };
            let python = (!tools.is_empty()).then(|| contender_python(python, venv, &requirements));
            for &case in &cases {
                let d = dir.join(case.name());
                if !d.join("capture").exists() {
                    eprintln!("generating {records} records under {}", d.display());
                    generate(records, &d, false, 0.95, 42, case).expect("generate");
                }
            }
            let case_args = |c: Case| ["--case".to_string(), c.name().to_string()];
            let mut all_rows: Vec<(Case, serde_json::Value)> = Vec::new();
            // Rounds interleave the contenders, so machine load hits them alike.
            for round in 0..runs.max(1) {
                eprintln!("round {}/{}", round + 1, runs.max(1));
                for &case in &cases {
                    let d = dir.join(case.name());
                    let engine = |threads: &str| {
                        child(
                            Proc::new(&me)
                                .args(["engine", "--threads", threads, "--dir"])
                                .arg(&d)
                                .args(case_args(case)),
                        )
                    };
                    // One untimed run first: the process after a large contender (pandas frees
                    // GBs) gets memory the VM has just handed back to its host, whose first
                    // touch is several times slower (README, "The metrics engine on local
                    // files"); whichever engine ran first paid it.
                    let _ = engine("0");
                    for rep in 0..repeat.max(1) {
                        // Every core and one thread (the single pass), taking turns at going
                        // first.
                        let order = if rep % 2 == 0 { ["0", "1"] } else { ["1", "0"] };
                        for threads in order {
                            all_rows.extend(engine(threads).map(|r| (case, r)));
                        }
                        all_rows.extend(
                            child(Proc::new(&me).args(["bare", "--dir"]).arg(&d))
                                .map(|r| (case, r)),
                        );
                    }
                    for t in &tools {
                        let py = python.as_deref().unwrap_or("python3");
                        let r = child(
                            Proc::new(py)
                                .arg(&peer)
                                .arg(&d)
                                .args(["--tool", t])
                                .args(case_args(case)),
                        );
                        all_rows.extend(r.map(|r| (case, r)));
                    }
                }
            }
            println!(
                "medians over {runs} round(s): engine and bare parse {} runs each (after one untimed engine run per case and round; \
                 engine and engine-1t taking turns at going first), the others {runs}; \
                 engine on every core (engine-1t: one thread), all cores for DuckDB and polars (duckdb-1t: one thread); cpu ns/rec = CPU per capture record",
                runs.max(1) * repeat.max(1)
            );
            for &case in &cases {
                let rows: Vec<serde_json::Value> = all_rows
                    .iter()
                    .filter(|(c, _)| *c == case)
                    .map(|(_, r)| r.clone())
                    .collect();
                print_case(case, &median_rows(&rows), runs);
            }
        }
    }
}
