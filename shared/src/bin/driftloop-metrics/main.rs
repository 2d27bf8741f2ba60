//! `driftloop-metrics`: SageMaker Model Monitor's metrics on local files, in seconds.
//!
//! Not a Lambda: built only with `--features cli`, which `cargo lambda build` does not enable.

use clap::Parser;
use driftloop::metrics::dq::baseline::{BaselineFeatureStats, MonitoringConfig};
use driftloop::metrics::dq::naming::parse_feature_names;
use driftloop::metrics::dq::stats::DataQualityState;
use driftloop::metrics::dq::suggest::{suggest_constraints, suggest_model_quality_constraints};
use driftloop::metrics::quality::QualityState;
use driftloop::metrics::quality::calibration::{Calibration, fit_binary};
use driftloop::metrics::util::parse_time_millis;
use driftloop::metrics::{
    BaselineConstraints, BaselineStatistics, CaptureFormat, Engine, MonitorConfig,
    OutputColumnsPosition, ProblemType,
};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

mod args;
use args::*;

fn list_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        if p.is_dir() {
            for e in std::fs::read_dir(p)? {
                let e = e?;
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                walk(&e.path(), out)?;
            }
        } else {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} does not exist", p.display()),
            ));
        }
        walk(p, &mut out)?;
    }
    // By the path's text: the order the engine ranks sources in (first capture, last label).
    out.sort_by(|a, b| a.to_string_lossy().cmp(&b.to_string_lossy()));
    out.dedup();
    Ok(out)
}

fn read_json(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write_json(dir: &Path, name: &str, v: &serde_json::Value) -> Result<(), String> {
    let p = dir.join(name);
    let s = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    std::fs::write(&p, s + "\n").map_err(|e| format!("{}: {e}", p.display()))
}

/// The engine's configuration from the shared options.
fn monitor_config(a: &ConfigArgs, k: &CheckArgs) -> Result<MonitorConfig, String> {
    let parse_t = |s: &Option<String>, what: &str| -> Result<Option<i64>, String> {
        s.as_deref()
            .map(|t| parse_time_millis(t).ok_or_else(|| format!("{what}: cannot parse time {t:?}")))
            .transpose()
    };
    Ok(MonitorConfig {
        problem_type: a.problem_type.map(|p| match p {
            Problem::Regression => ProblemType::Regression,
            Problem::BinaryClassification => ProblemType::BinaryClassification,
            Problem::MulticlassClassification => ProblemType::MulticlassClassification,
            Problem::Forecast => ProblemType::Forecast,
        }),
        inference_attribute: a.inference_attribute.clone(),
        probability_attribute: a.probability_attribute.clone(),
        probability_threshold: a.probability_threshold,
        ground_truth_attribute: a.ground_truth_attribute.clone(),
        positive_label: a.positive_label.clone(),
        negative_label: a.negative_label.clone(),
        capture_format: match a.capture_format {
            Format::Realtime => CaptureFormat::Realtime,
            Format::BatchCsv => CaptureFormat::BatchCsv,
            Format::BatchJson => CaptureFormat::BatchJson,
        },
        window_start_ms: parse_t(&a.window_start, "--window-start")?,
        window_end_ms: parse_t(&a.window_end, "--window-end")?,
        data_quality: a.data_quality
            || k.baseline_constraints.is_some()
            || k.baseline_statistics.is_some(),
        dq_include_output: !a.no_output_columns,
        output_columns_position: match a.output_columns_position {
            Position::Start => OutputColumnsPosition::Start,
            Position::End => OutputColumnsPosition::End,
        },
        feature_names: a
            .feature_names
            .as_deref()
            .map(parse_feature_names)
            .transpose()
            .map_err(|e| format!("--feature-names: {e}"))?,
        seed: a.seed,
        max_curve_points: a.max_curve_points,
        forecast_quantiles: a.quantiles.clone(),
        seasonality: a.seasonality,
        prediction_drift: a.prediction_drift || k.prediction_baseline.is_some(),
        ..Default::default()
    })
}

/// An engine (partial or single-pass) with the baselines, constraints and calibration attached.
fn configured_engine(
    cfg: MonitorConfig,
    k: &CheckArgs,
    partial: bool,
) -> Result<(Engine, Option<Calibration>), String> {
    let calibration = k
        .calibration
        .as_deref()
        .map(|p| Calibration::parse(&read_json(p)?).map_err(|e| format!("{}: {e}", p.display())))
        .transpose()?;
    if calibration.is_some()
        && !matches!(
            cfg.problem_type,
            None | Some(ProblemType::BinaryClassification)
        )
    {
        return Err("--calibration estimates binary classification; drop --problem-type or make it binary-classification".into());
    }
    if cfg.problem_type.is_none()
        && !cfg.data_quality
        && calibration.is_none()
        && !cfg.prediction_drift
    {
        return Err(
            "nothing to compute: give --problem-type, --data-quality, --calibration and/or --prediction-drift"
                .into(),
        );
    }
    let stats = k
        .baseline_statistics
        .as_deref()
        .map(|p| BaselineStatistics::parse(&read_json(p)?))
        .transpose()?;
    let cons = k
        .baseline_constraints
        .as_deref()
        .map(|p| BaselineConstraints::parse(&read_json(p)?))
        .transpose()?;
    let mq = k
        .model_quality_constraints
        .as_deref()
        .map(|p| {
            serde_json::from_str::<serde_json::Value>(&read_json(p)?)
                .map_err(|e| format!("{}: {e}", p.display()))
        })
        .transpose()?;
    let prediction = prediction_baseline(
        k.prediction_baseline.as_deref(),
        k.prediction_feature.as_deref(),
        cons.as_ref(),
    )?;
    let mut engine = if partial {
        Engine::partial(cfg)
    } else {
        Engine::new(cfg)
    }
    .with_data_quality_baseline(stats, cons);
    if let Some((base, c)) = prediction {
        engine = engine.with_prediction_baseline(base, c);
    }
    if let Some(c) = mq {
        engine = engine.with_model_quality_constraints(c);
    }
    if let Some(c) = &calibration {
        engine = engine.with_calibration(c.clone());
    }
    Ok((engine, calibration))
}

fn run(a: RunArgs) -> Result<bool, String> {
    let cfg = monitor_config(&a.config, &a.checks)?;
    if cfg.problem_type.is_some() && a.ground_truth.is_empty() && a.state_out.is_none() {
        return Err(
            "--problem-type needs --ground-truth (Model Monitor fails without ground truth)".into(),
        );
    }
    let problem = cfg.problem_type;
    let threads = match a.threads {
        None if a.state_out.is_some() => 1,
        None | Some(0) => driftloop::metrics::engine::parallel::available_threads(),
        Some(n) => n,
    };
    // With --state-out the engine is partial: its state adds up with other runs' (`merge`).
    let partial = a.state_out.is_some();
    let (mut engine, calibration) = configured_engine(cfg.clone(), &a.checks, partial)?;
    let show = a.progress || std::io::stderr().is_terminal();
    let start = Instant::now();
    let gt_files = if problem.is_some() {
        list_files(&a.ground_truth).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let cap_files = list_files(&a.capture).map_err(|e| e.to_string())?;
    if threads > 1 && !partial {
        feed_broadcast(&mut engine, &cfg, &a.checks, &gt_files, &cap_files, threads)?;
        if show {
            eprintln!(
                "{} ground-truth and {} capture files on {threads} threads in {:.1}s",
                gt_files.len(),
                cap_files.len(),
                start.elapsed().as_secs_f64()
            );
        }
    } else if threads > 1 {
        let state = feed_threads(&cfg, &a.checks, &gt_files, &cap_files, threads)?;
        engine.merge_state_owned(state).map_err(|e| e.to_string())?;
        if show {
            eprintln!(
                "{} ground-truth and {} capture files on {threads} threads in {:.1}s",
                gt_files.len(),
                cap_files.len(),
                start.elapsed().as_secs_f64()
            );
        }
    } else {
        feed_files(&mut engine, &gt_files, &cap_files, show, start)?;
    }
    let summary = write_outputs(
        &engine,
        problem,
        &calibration,
        a.checks.suggest_constraints,
        &a.output,
        a.state_out.as_deref(),
    )?;
    let ok = summary.1;
    let _ = std::io::stdout().write_all(summary.0.as_bytes());
    Ok(ok)
}

/// The broadcast join on `threads` threads (see `driftloop::metrics::engine::broadcast`): the
/// ground-truth files into `engine`'s one label table, the capture files joined against it.
fn feed_broadcast(
    engine: &mut Engine,
    cfg: &MonitorConfig,
    checks: &CheckArgs,
    gt_files: &[PathBuf],
    cap_files: &[PathBuf],
    threads: usize,
) -> Result<(), String> {
    use driftloop::metrics::engine::parallel::feed_broadcast;
    feed_broadcast(
        engine,
        threads,
        // Every worker with the baselines too (they name the data-quality columns).
        || {
            configured_engine(cfg.clone(), checks, false)
                .map(|(e, _)| e)
                .unwrap_or_else(|_| Engine::new(cfg.clone()))
        },
        gt_files,
        cap_files,
        |f| f.display().to_string(),
        feed_input,
        |e| e.to_string(),
    )
    .map(drop)
}

/// One input file of the threaded paths into `engine` (ground truth or capture).
fn feed_input(
    engine: &mut Engine,
    input: &driftloop::metrics::engine::parallel::Input<&PathBuf>,
) -> Result<(), String> {
    use driftloop::metrics::engine::parallel::Input;
    let (f, gt) = match input {
        Input::GroundTruth(f) => (*f, true),
        Input::Capture(f) => (*f, false),
    };
    let file = std::fs::File::open(f).map_err(|e| format!("{}: {e}", f.display()))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let name = f.display().to_string();
    if gt {
        engine.feed_ground_truth(&name, reader)
    } else {
        engine.feed_capture(&name, reader, |_| {})
    }
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// `threads` partial engines over the files (each takes the next file until none is left),
/// their states merged.
fn feed_threads(
    cfg: &MonitorConfig,
    checks: &CheckArgs,
    gt_files: &[PathBuf],
    cap_files: &[PathBuf],
    threads: usize,
) -> Result<driftloop::metrics::EngineState, String> {
    use driftloop::metrics::engine::parallel::{Input, feed_parallel};
    let inputs: Vec<Input<&PathBuf>> = gt_files
        .iter()
        .map(Input::GroundTruth)
        .chain(cap_files.iter().map(Input::Capture))
        .collect();
    feed_parallel(
        threads,
        // Every worker with the baselines too (they name the data-quality columns).
        || {
            configured_engine(cfg.clone(), checks, true)
                .map(|(e, _)| e)
                .unwrap_or_else(|_| Engine::partial(cfg.clone()))
        },
        &inputs,
        feed_input,
    )
}

/// One engine over the files: ground truth first, then capture.
fn feed_files(
    engine: &mut Engine,
    gt_files: &[PathBuf],
    cap_files: &[PathBuf],
    show: bool,
    start: Instant,
) -> Result<(), String> {
    engine.reserve_ground_truth(
        (gt_files
            .iter()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>()
            / 120) as usize,
    );
    for f in gt_files {
        let file = std::fs::File::open(f).map_err(|e| format!("{}: {e}", f.display()))?;
        engine
            .feed_ground_truth(
                &f.display().to_string(),
                BufReader::with_capacity(1 << 20, file),
            )
            .map_err(|e| e.to_string())?;
    }
    if show {
        eprintln!(
            "ground truth: {} ids from {} files in {:.1}s",
            engine.ground_truth_len(),
            gt_files.len(),
            start.elapsed().as_secs_f64()
        );
    }
    let total: u64 = cap_files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let mut done = 0u64;
    for (i, f) in cap_files.iter().enumerate() {
        let file = std::fs::File::open(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let base = done;
        engine
            .feed_capture(
                &f.display().to_string(),
                BufReader::with_capacity(1 << 20, file),
                |b| {
                    if show {
                        let el = start.elapsed().as_secs_f64();
                        eprint!(
                            "\rcapture: file {}/{}, {:.0}/{:.0} MB ({:.0} MB/s)   ",
                            i + 1,
                            cap_files.len(),
                            (base + b) as f64 / 1e6,
                            total as f64 / 1e6,
                            (base + b) as f64 / 1e6 / el.max(1e-9)
                        );
                    }
                },
            )
            .map_err(|e| e.to_string())?;
        done += f.metadata().map(|m| m.len()).unwrap_or(0);
    }
    if show {
        eprintln!(
            "\rcapture: {} files, {:.0} MB in {:.1}s                    ",
            cap_files.len(),
            total as f64 / 1e6,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// `merge`: partial states merged and finished, the same files as `run` written.
fn merge(a: MergeArgs) -> Result<bool, String> {
    let cfg = monitor_config(&a.config, &a.checks)?;
    let problem = cfg.problem_type;
    let (mut engine, calibration) = configured_engine(cfg, &a.checks, true)?;
    for p in &a.states {
        let state: driftloop::metrics::EngineState = serde_json::from_str(&read_json(p)?)
            .map_err(|e| format!("{}: not an engine state: {e}", p.display()))?;
        if state.join.is_none() {
            return Err(format!(
                "{}: not a partial state (write it with `run --state-out`)",
                p.display()
            ));
        }
        engine
            .merge_state_owned(state)
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let (summary, ok) = write_outputs(
        &engine,
        problem,
        &calibration,
        a.checks.suggest_constraints,
        &a.output,
        a.state_out.as_deref(),
    )?;
    let _ = std::io::stdout().write_all(summary.as_bytes());
    Ok(ok)
}

/// Finishes the engine and writes `run`'s files; the summary text and whether no violation
/// was found.
fn write_outputs(
    engine: &Engine,
    problem: Option<ProblemType>,
    calibration: &Option<Calibration>,
    suggest_constraints_too: bool,
    output: &Path,
    state_out: Option<&Path>,
) -> Result<(String, bool), String> {
    let result = engine.finish().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(output).map_err(|e| format!("{}: {e}", output.display()))?;
    write_json(output, "statistics.json", &result.statistics_json())?;
    if problem.is_some()
        && let Some(dq) = result.data_quality_statistics_json()
    {
        write_json(output, "data_quality_statistics.json", &dq)?;
    }
    write_json(
        output,
        "constraint_violations.json",
        &result.violations_json(),
    )?;
    if let Some(p) = result.prediction_statistics_json() {
        write_json(output, "prediction_statistics.json", &p)?;
    }
    let summary_json = serde_json::json!({
        "job_message": result.job_message(),
        "counts": result.counts,
        "error_samples": result.error_samples.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        "metrics": result.cloudwatch_metrics().into_iter().map(|m| serde_json::json!({"name": m.name, "value": m.value})).collect::<Vec<_>>(),
    });
    write_json(output, "summary.json", &summary_json)?;
    if let (Some(c), Some(e)) = (calibration, &result.estimation) {
        write_json(output, "estimation.json", &e.to_json(c))?;
    }
    let summary = result.summary();
    std::fs::write(output.join("summary.txt"), &summary).map_err(|e| e.to_string())?;
    if suggest_constraints_too && let (Some(p), Some(q)) = (problem, &result.quality) {
        let vals: Vec<(String, f64)> = q
            .scalars
            .iter()
            .map(|(n, m)| (n.clone(), m.value))
            .collect();
        write_json(
            output,
            "suggested_constraints.json",
            &suggest_model_quality_constraints(p.constraints_key(), &vals),
        )?;
    }
    if suggest_constraints_too && let Some(dq) = &result.data_quality {
        write_json(
            output,
            "suggested_data_quality_constraints.json",
            &suggest_constraints(dq),
        )?;
    }
    if let Some(p) = state_out {
        let s = serde_json::to_string(&engine.snapshot()).map_err(|e| e.to_string())?;
        std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok((summary, result.violations.is_empty()))
}

fn calibrate(a: CalibrateArgs) -> Result<(), String> {
    let parse_t = |s: &Option<String>, what: &str| -> Result<Option<i64>, String> {
        s.as_deref()
            .map(|t| parse_time_millis(t).ok_or_else(|| format!("{what}: cannot parse time {t:?}")))
            .transpose()
    };
    if !(a.max_out_of_reference >= 0.0) {
        return Err("--max-out-of-reference must be >= 0".into());
    }
    let cfg = MonitorConfig {
        problem_type: Some(ProblemType::BinaryClassification),
        probability_attribute: a.probability_attribute.clone(),
        probability_threshold: a.probability_threshold,
        ground_truth_attribute: a.ground_truth_attribute,
        positive_label: a.positive_label,
        negative_label: a.negative_label,
        capture_format: match a.capture_format {
            Format::Realtime => CaptureFormat::Realtime,
            Format::BatchCsv => CaptureFormat::BatchCsv,
            Format::BatchJson => CaptureFormat::BatchJson,
        },
        window_start_ms: parse_t(&a.window_start, "--window-start")?,
        window_end_ms: parse_t(&a.window_end, "--window-end")?,
        ..Default::default()
    };
    let mut engine = Engine::new(cfg);
    for f in list_files(&a.ground_truth).map_err(|e| e.to_string())? {
        let file = std::fs::File::open(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        engine
            .feed_ground_truth(&f.display().to_string(), BufReader::new(file))
            .map_err(|e| e.to_string())?;
    }
    for f in list_files(&a.capture).map_err(|e| e.to_string())? {
        let file = std::fs::File::open(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        engine
            .feed_capture(&f.display().to_string(), BufReader::new(file), |_| {})
            .map_err(|e| e.to_string())?;
    }
    let result = engine.finish().map_err(|e| e.to_string())?;
    let state = engine.snapshot();
    let (Some(QualityState::Binary(b)), Some(report)) = (&state.quality, &result.quality) else {
        return Err("calibration: no binary-classification state".into());
    };
    let c = &result.counts;
    let cal = fit_binary(
        b,
        report,
        a.probability_threshold,
        a.probability_attribute,
        a.bins,
        a.max_out_of_reference,
    )
    .map_err(|e| {
        format!(
            "{e} ({} capture lines, {} matched, {} invalid predictions, {} invalid labels)",
            c.capture_lines, c.matched, c.invalid_predictions, c.invalid_labels
        )
    })?;
    std::fs::create_dir_all(&a.output).map_err(|e| format!("{}: {e}", a.output.display()))?;
    write_json(&a.output, "calibration.json", &cal.to_json())?;
    println!(
        "calibration (binned isotonic, {} bins) from {} labelled records ({} positive; accuracy {}, auc {}) written to {}",
        cal.bins(),
        cal.reference.records,
        cal.reference.positives,
        cal.reference
            .accuracy
            .map_or("n/a".into(), |v| format!("{v:.4}")),
        cal.reference
            .auc
            .map_or("n/a".into(), |v| format!("{v:.4}")),
        a.output.join("calibration.json").display()
    );
    Ok(())
}

fn suggest(a: SuggestArgs) -> Result<(), String> {
    let mut dq = DataQualityState::default();
    let mut malformed = 0u64;
    for f in list_files(&a.dataset).map_err(|e| e.to_string())? {
        let file = std::fs::File::open(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let mut header: Option<Vec<String>> = None;
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let Ok(line) = line else {
                malformed += 1;
                continue;
            };
            if line.trim().is_empty() {
                continue;
            }
            if a.json_lines {
                match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(serde_json::Value::Object(m)) => dq.push_named(m.iter().map(|(k, v)| {
                        (k.as_str(), driftloop::metrics::dq::stats::DqValue::Json(v))
                    })),
                    _ => malformed += 1,
                }
            } else {
                let fields: Vec<std::borrow::Cow<'_, str>> =
                    driftloop::metrics::util::split_csv(&line).collect();
                if a.header && i == 0 {
                    header = Some(fields.iter().map(|f| f.to_string()).collect());
                    continue;
                }
                dq.push_csv_row(&fields, header.as_deref());
            }
        }
    }
    std::fs::create_dir_all(&a.output).map_err(|e| e.to_string())?;
    write_json(&a.output, "statistics.json", &dq.statistics_json())?;
    write_json(&a.output, "constraints.json", &suggest_constraints(&dq))?;
    println!(
        "baseline from {} rows, {} columns ({} malformed lines skipped) written to {}",
        dq.item_count,
        dq.columns.len(),
        malformed,
        a.output.display()
    );
    Ok(())
}

/// The prediction baseline feature and its monitoring config (see `--prediction-baseline`).
fn prediction_baseline(
    path: Option<&Path>,
    feature: Option<&str>,
    cons: Option<&BaselineConstraints>,
) -> Result<Option<(BaselineFeatureStats, MonitoringConfig)>, String> {
    let Some(p) = path else {
        return Ok(None);
    };
    let stats = BaselineStatistics::parse(&read_json(p)?)?;
    let feature = stats
        .prediction_feature(feature)
        .map_err(|e| format!("{}: {e} (give --prediction-feature)", p.display()))?
        .clone();
    let config = cons.map_or_else(MonitoringConfig::default, |c| c.config_of(&feature.name));
    Ok(Some((feature, config)))
}

/// `catalogue validate FILE`: the report on stdout, or every error on stderr.
fn validate_catalogue(
    file: &Path,
    convention: &driftloop::catalogue::Convention,
) -> Result<ExitCode, String> {
    if let Some(p) = &convention.name_prefix {
        driftloop::catalogue::Convention::check_name_prefix(p)
            .map_err(|e| format!("--name-prefix: {e}"))?;
    }
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    match driftloop::catalogue::parse_with(&bytes, convention) {
        Ok(catalogue) => {
            print!("{}", driftloop::catalogue::report::render(&catalogue));
            Ok(ExitCode::SUCCESS)
        }
        Err(invalid) => {
            let n = invalid.errors.len();
            eprintln!(
                "{}: invalid catalogue, {n} error{}:",
                file.display(),
                if n == 1 { "" } else { "s" }
            );
            for e in &invalid.errors {
                eprintln!("  {e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Run(a) => run(a).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }),
        Command::Merge(a) => merge(a).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }),
        Command::SuggestBaseline(a) => suggest(a).map(|_| ExitCode::SUCCESS),
        Command::Calibrate(a) => calibrate(a).map(|_| ExitCode::SUCCESS),
        Command::Catalogue(CatalogueCommand::Validate {
            file,
            name_prefix,
            alarm_prefix,
            data_s3_uri,
        }) => validate_catalogue(
            &file,
            &driftloop::catalogue::Convention {
                name_prefix,
                alarm_prefix,
                data_s3_uri,
            },
        ),
    };
    match res {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
