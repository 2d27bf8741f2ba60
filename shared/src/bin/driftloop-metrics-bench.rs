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
use driftloop::metrics::{
    BaselineConstraints, BaselineStatistics, Engine, MonitorConfig, ProblemType,
};
use serde::de::IgnoredAny;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command as Proc;
use std::time::Instant;

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
    },
    /// (a) The engine: join + binary classification metrics.
    Engine {
        #[arg(long)]
        dir: PathBuf,
        /// Also compute data-quality statistics.
        #[arg(long)]
        data_quality: bool,
        /// With --data-quality: check against the baseline in DIR/baseline (statistics.json,
        /// constraints.json and, for prediction drift, prediction_statistics.json), so every
        /// drift statistic is computed.
        #[arg(long)]
        baseline: bool,
    },
    /// (b) Bare serde_json IgnoredAny parse of the same bytes.
    Bare {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run (a), (b) and the Python peer (c) as separate processes and compare.
    All {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "python3")]
        python: String,
        #[arg(long, default_value = "tests/python/bench_peer.py")]
        peer: PathBuf,
        /// Skip the Python peer.
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
        std::fs::create_dir_all(&gt_dir)?;
        let mut gt = BufWriter::new(std::fs::File::create(gt_dir.join("labels.jsonl"))?);
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
                writeln!(
                    cap,
                    r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{age},{income:.2},{cat}","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT","data":"{score:.6}","encoding":"CSV"}}}},"eventMetadata":{{{meta}}},"eventVersion":"0"}}"#
                )?;
                if rng.next_f64() < label_fraction {
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

fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), out);
                }
            }
        } else {
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

fn run_engine(dir: &Path, dq: bool, baseline: bool) -> serde_json::Value {
    let gt = files(&dir.join("groundtruth"));
    let cap = files(&dir.join("capture"));
    let bytes = bytes_of(&gt) + bytes_of(&cap);
    let start = Instant::now();
    let cfg = MonitorConfig {
        problem_type: Some(ProblemType::BinaryClassification),
        data_quality: dq,
        ..Default::default()
    };
    let mut e = Engine::new(cfg);
    if dq && baseline {
        let read = |f: &str| std::fs::read_to_string(dir.join("baseline").join(f));
        let stats = BaselineStatistics::parse(&read("statistics.json").expect("baseline"))
            .expect("baseline statistics");
        let cons = BaselineConstraints::parse(&read("constraints.json").expect("baseline"))
            .expect("baseline constraints");
        let config = cons.monitoring_config.clone();
        e = e.with_data_quality_baseline(Some(stats), Some(cons));
        if let Ok(p) = read("prediction_statistics.json") {
            let p = BaselineStatistics::parse(&p).expect("prediction baseline");
            e = e.with_prediction_baseline(p.features[0].clone(), config);
        }
    }
    e.reserve_ground_truth((bytes_of(&gt) / 120) as usize);
    for f in &gt {
        e.feed_ground_truth(
            &f.display().to_string(),
            BufReader::with_capacity(1 << 20, std::fs::File::open(f).unwrap()),
        )
        .unwrap();
    }
    let t_gt = start.elapsed().as_secs_f64();
    for f in &cap {
        e.feed_capture(
            &f.display().to_string(),
            BufReader::with_capacity(1 << 20, std::fs::File::open(f).unwrap()),
            |_| {},
        )
        .unwrap();
    }
    let t_cap = start.elapsed().as_secs_f64();
    let r = e.finish().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let q = r.quality.as_ref().unwrap();
    serde_json::json!({
        "name": match (dq, baseline) { (true, true) => "engine+drift", (true, false) => "engine+dq", _ => "engine" },
        "drift_metrics": r.cloudwatch_metrics().iter().filter(|m| m.name.starts_with("feature_") || m.name.starts_with("prediction_")).count(), "records": r.counts.capture_lines, "bytes": bytes, "seconds": secs,
        "peak_rss_kb": peak_rss_kb(), "cpu_seconds": cpu_seconds(), "matched": r.counts.matched,
        "phases": { "ground_truth": t_gt, "capture": t_cap - t_gt, "finish": secs - t_cap }, "auc": q.get("auc").unwrap().value, "f1": q.get("f1").unwrap().value,
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

/// One row per contender (in first-seen order) with the medians of `seconds`, `cpu_seconds` and
/// `peak_rss_kb` over its runs; `cpu_runs` lists every run's CPU seconds.
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

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Generate {
            records,
            out,
            drift,
            label_fraction,
            seed,
        } => generate(records, &out, drift, label_fraction, seed).expect("generate"),
        Cmd::Engine {
            dir,
            data_quality,
            baseline,
        } => println!("{}", run_engine(&dir, data_quality, baseline)),
        Cmd::Bare { dir } => println!("{}", run_bare(&dir)),
        Cmd::All {
            dir,
            python,
            peer,
            no_peer,
            runs,
            repeat,
        } => {
            let me = std::env::current_exe().expect("current exe");
            // Rounds interleave the contenders, so machine load hits them alike.
            let mut all_rows: Vec<serde_json::Value> = Vec::new();
            for round in 0..runs.max(1) {
                if runs > 1 {
                    eprintln!("round {}/{runs}", round + 1);
                }
                for _ in 0..repeat.max(1) {
                    all_rows.extend(child(Proc::new(&me).args(["engine", "--dir"]).arg(&dir)));
                    all_rows.extend(child(Proc::new(&me).args(["bare", "--dir"]).arg(&dir)));
                }
                all_rows.extend(child(
                    Proc::new(&me)
                        .args(["engine", "--data-quality", "--dir"])
                        .arg(&dir),
                ));
                if dir.join("baseline").join("statistics.json").exists() {
                    all_rows.extend(child(
                        Proc::new(&me)
                            .args(["engine", "--data-quality", "--baseline", "--dir"])
                            .arg(&dir),
                    ));
                }
                if !no_peer {
                    all_rows.extend(child(Proc::new(&python).arg(&peer).arg(&dir)));
                }
            }
            let rows = median_rows(&all_rows);
            if runs > 1 || repeat > 1 {
                println!(
                    "medians over {runs} round(s): engine and bare parse {} runs each, the others {runs} (cpu s of every run in brackets)",
                    runs * repeat.max(1)
                );
            }
            println!(
                "{:<12} {:>10} {:>9} {:>9} {:>12} {:>9} {:>12}",
                "contender", "records", "wall s", "cpu s", "records/s", "MB/s", "peak RSS MB"
            );
            for r in &rows {
                let secs = r["seconds"].as_f64().unwrap_or(f64::NAN);
                println!(
                    "{:<12} {:>10} {:>9.2} {:>9.2} {:>12.0} {:>9.1} {:>12.1}  {}",
                    r["name"].as_str().unwrap_or("?"),
                    r["records"],
                    secs,
                    r["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
                    r["records"].as_f64().unwrap_or(0.0) / secs,
                    r["bytes"].as_f64().unwrap_or(0.0) / 1e6 / secs,
                    r["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0,
                    if runs > 1 {
                        r["cpu_runs"].to_string()
                    } else {
                        String::new()
                    }
                );
            }
            let ratio = |a: &serde_json::Value, b: &serde_json::Value, k: &str| {
                b[k].as_f64().unwrap_or(f64::NAN) / a[k].as_f64().unwrap_or(f64::NAN)
            };
            let get = |n: &str| rows.iter().find(|r| r["name"] == n);
            if let (Some(e), Some(b)) = (get("engine"), get("bare-parse")) {
                println!(
                    "engine / bare-parse throughput: {:.2} wall, {:.2} cpu (target >= 0.50)",
                    ratio(e, b, "seconds"),
                    ratio(e, b, "cpu_seconds")
                );
            }
            if let (Some(e), Some(p)) = (get("engine"), get("peer")) {
                println!(
                    "engine / peer throughput: {:.1}x wall, {:.1}x cpu (target >= 30x)",
                    ratio(e, p, "seconds"),
                    ratio(e, p, "cpu_seconds")
                );
                println!(
                    "engine / peer peak RSS: {:.3} (target <= 0.25)",
                    e["peak_rss_kb"].as_f64().unwrap() / p["peak_rss_kb"].as_f64().unwrap()
                );
                println!("AUC engine {} vs peer {}", e["auc"], p["auc"]);
            }
        }
    }
}
