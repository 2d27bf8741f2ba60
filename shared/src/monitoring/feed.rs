//! The engine feed: the metrics engine's configuration for one window, and its inputs streamed
//! through it — ground truth first (the buffered side of the join), then capture — with bounded
//! memory ([`crate::storage::stream`]).
//!
//! # Memory
//! Capture is streamed; ground truth is held (the buffered side of the join), growing as labels
//! arrive. Its limit ([`ground_truth_limit`]):
//! * `GROUND_TRUTH_MEMORY_MB` when set (an explicit number of MiB, at least 1);
//! * else half ([`GROUND_TRUTH_MEMORY_FRACTION`]) of the Lambda function's memory
//!   (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, set by Lambda): the other half is left to the runtime, the
//!   download buffers (a few MiB), a capture line being read (up to
//!   [`crate::metrics::engine::MAX_LINE_BYTES`]) and the data-quality state;
//! * else (outside Lambda) no limit.
//!
//! A window whose labels would go past it fails with `Permanent.GroundTruthTooLarge`
//! ([`RunError::GroundTruthTooLarge`]) naming the limit and the remedies, before the process
//! could be killed for running out of memory.

use std::sync::Arc;

use super::baselines::Baselines;
use super::error::RunError;
use super::inputs::Inputs;
use super::settings::{CaptureMode, Settings};
use super::window::Window;
use crate::config::{Lookup, ProcessEnv};
use crate::metrics::{CaptureFormat, Engine, EngineError, JobResult, MonitorConfig, ProblemType};
use crate::storage::stream::stream_objects;
use crate::storage::{ObjectInfo, ObjectStore, S3Uri};

/// The engine's configuration for the window: the settings, the window's bounds (records outside
/// are counted and skipped), data quality on as configured or, on `auto`, with a data-quality
/// baseline or without a problem type.
pub fn monitor_config(s: &Settings, w: &Window, baselines: &Baselines) -> MonitorConfig {
    let (start, end) = w.millis();
    let dq = s
        .data_quality
        .unwrap_or(baselines.dq_constraints.is_some() || s.problem_type.is_none());
    MonitorConfig {
        problem_type: s.problem_type,
        inference_attribute: s.inference_attribute.clone(),
        probability_attribute: s.probability_attribute.clone(),
        probability_threshold: s.probability_threshold,
        ground_truth_attribute: s.ground_truth_attribute.clone(),
        positive_label: s.positive_label.clone(),
        negative_label: s.negative_label.clone(),
        capture_format: match s.capture_mode {
            CaptureMode::Realtime => CaptureFormat::Realtime,
            CaptureMode::BatchTransform => s.batch_format,
        },
        window_start_ms: Some(start),
        window_end_ms: Some(end),
        data_quality: dq,
        feature_names: s.feature_names.clone(),
        forecast_quantiles: s.forecast_quantiles.clone(),
        seasonality: s.forecast_seasonality,
        ..MonitorConfig::default()
    }
}

/// The share of the function's memory the buffered ground truth may take.
pub const GROUND_TRUTH_MEMORY_FRACTION: f64 = 0.5;

/// The ground-truth limit in bytes (see the module's *Memory*): None without one; an error
/// naming the variable for a `GROUND_TRUTH_MEMORY_MB` that is not a whole number of MiB >= 1.
pub fn ground_truth_limit(env: &dyn Lookup) -> Result<Option<u64>, RunError> {
    let var = |name: &str| env.get(name).filter(|v| !v.trim().is_empty());
    if let Some(v) = var("GROUND_TRUTH_MEMORY_MB") {
        return match v.trim().parse::<u64>() {
            Ok(mb) if (1..=1 << 20).contains(&mb) => Ok(Some(mb << 20)),
            _ => Err(RunError::InvalidSetting(format!(
                "GROUND_TRUTH_MEMORY_MB={v:?}: expected a whole number of MiB from 1 to 1048576"
            ))),
        };
    }
    Ok(var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|mb| *mb > 0)
        .map(|mb| ((mb << 20) as f64 * GROUND_TRUTH_MEMORY_FRACTION) as u64))
}

/// An engine error as the reader's I/O error (a read failure keeps its S3 error inside, any
/// other error is kept whole for [`RunError`]'s conversion).
pub fn io_of(e: EngineError) -> std::io::Error {
    match e {
        EngineError::Io { error, .. } => error,
        other => std::io::Error::other(other),
    }
}

/// Streams ground truth, then capture, through the engine; returns its result and how many
/// listed objects had vanished before they were read.
/// The ground-truth limit is [`ground_truth_limit`] of the process environment, the threads
/// [`engine_threads`] of it.
pub async fn compute(
    store: &Arc<dyn ObjectStore>,
    read_concurrency: usize,
    s: &Settings,
    w: &Window,
    baselines: &Baselines,
    inputs: &Inputs,
) -> Result<(JobResult, usize), RunError> {
    let limit = ground_truth_limit(&ProcessEnv)?;
    let threads = engine_threads(&ProcessEnv)?;
    compute_with(
        store,
        read_concurrency,
        s,
        w,
        baselines,
        inputs,
        limit,
        threads,
    )
    .await
}

/// Bytes the threads hold besides the label table, per byte of listed input, at most: labels
/// read but not yet stored (24 bytes per UUID-keyed label, one label per ~130 bytes on the
/// benchmark: 0.18) and per matched capture record one 24-byte contribution (one record per ~500
/// bytes: 0.05); with headroom. What decides whether the threads fit in the ground-truth limit
/// next to the table itself (see [`compute_with`]).
pub const THREAD_BYTES_PER_INPUT_BYTE: f64 = 0.25;

/// The engine's threads: `ENGINE_THREADS` (a whole number >= 1; `0` or `all`: every available
/// core, `std::thread::available_parallelism` — a 10 GB Lambda has 6 vCPUs), else 1.
pub fn engine_threads(env: &dyn Lookup) -> Result<usize, RunError> {
    let v = env.get("ENGINE_THREADS");
    crate::metrics::engine::parallel::threads_setting(v.as_deref()).ok_or_else(|| {
        RunError::InvalidSetting(format!(
            "ENGINE_THREADS={:?}: expected a whole number of threads >= 1",
            v.unwrap_or_default()
        ))
    })
}

/// [`compute`] with an explicit ground-truth limit in bytes (None: unlimited), on one thread.
pub async fn compute_with_limit(
    store: &Arc<dyn ObjectStore>,
    read_concurrency: usize,
    s: &Settings,
    w: &Window,
    baselines: &Baselines,
    inputs: &Inputs,
    ground_truth_limit: Option<u64>,
) -> Result<(JobResult, usize), RunError> {
    compute_with(
        store,
        read_concurrency,
        s,
        w,
        baselines,
        inputs,
        ground_truth_limit,
        1,
    )
    .await
}

/// The engine for the window with its baselines attached (single-pass or partial).
fn configured(engine: Engine, s: &Settings, baselines: &Baselines) -> Engine {
    let mut engine = engine;
    if s.problem_type.is_some() || engine.config().data_quality {
        engine = engine.with_data_quality_baseline(
            baselines.dq_statistics.clone(),
            baselines.dq_constraints.clone(),
        );
    }
    if let (Some(c), Some(_)) = (&baselines.mq_constraints, s.problem_type) {
        engine = engine.with_model_quality_constraints(c.clone());
    }
    // Prediction drift: the model output against its baseline, labels or not.
    if let Some(p) = &baselines.prediction {
        engine = engine.with_prediction_baseline(p.feature.clone(), p.config.clone());
    }
    // Label-free estimates of binary classification, labels or not (see metrics::quality::estimate).
    if let Some(c) = &baselines.calibration
        && matches!(
            s.problem_type,
            None | Some(ProblemType::BinaryClassification)
        )
    {
        engine = engine.with_calibration(c.clone());
    }
    engine
}

/// The engine of a window: its configuration ([`monitor_config`]), the ground-truth limit in
/// bytes (None: unlimited) and the baselines. The scale-out mode's reduce step builds the same
/// one ([`super::scaleout`]); its workers build [`partial_window_engine`]s.
pub fn window_engine(
    s: &Settings,
    w: &Window,
    baselines: &Baselines,
    ground_truth_limit: Option<u64>,
) -> Engine {
    let mut engine = configured(Engine::new(monitor_config(s, w, baselines)), s, baselines);
    if let Some(limit) = ground_truth_limit {
        engine = engine.with_ground_truth_limit(limit);
    }
    engine
}

/// A scale-out worker's engine ([`Engine::partial`]): the window's configuration and baselines
/// over any slice of its capture and ground truth; merged partial states finish as one pass.
pub fn partial_window_engine(s: &Settings, w: &Window, baselines: &Baselines) -> Engine {
    configured(
        Engine::partial(monitor_config(s, w, baselines)),
        s,
        baselines,
    )
}

/// Streams `ground_truth` (when the settings have a problem type), then `capture`, through
/// `engine`; returns it and how many of the objects had vanished before they were read.
pub async fn feed(
    store: &Arc<dyn ObjectStore>,
    read_concurrency: usize,
    s: &Settings,
    mut engine: Engine,
    ground_truth: Vec<S3Uri>,
    capture: Vec<S3Uri>,
) -> Result<(Engine, usize), RunError> {
    let mut vanished = 0;
    if s.problem_type.is_some() {
        let (e, stats) = stream_objects(
            store.clone(),
            ground_truth,
            read_concurrency,
            engine,
            |engine, uri, r| {
                engine
                    .feed_ground_truth(&uri.to_string(), r)
                    .map(drop)
                    .map_err(io_of)
            },
        )
        .await?;
        engine = e;
        vanished += stats.vanished;
    }
    let (engine, stats) = stream_objects(
        store.clone(),
        capture,
        read_concurrency,
        engine,
        |engine, uri, r| {
            engine
                .feed_capture(&uri.to_string(), r, |_| {})
                .map(drop)
                .map_err(io_of)
        },
    )
    .await?;
    vanished += stats.vanished;
    Ok((engine, vanished))
}

fn uris_of(objects: &[ObjectInfo]) -> Vec<S3Uri> {
    objects.iter().map(|o| o.uri.clone()).collect()
}

/// [`compute`] with an explicit ground-truth limit and number of threads.
///
/// With `threads` > 1 the objects are dealt round-robin to the threads (`read_concurrency`
/// downloads split between them, at least one each) and joined by the broadcast join
/// ([`crate::metrics::engine::broadcast`]): ground-truth objects read on every thread into the
/// window engine's one label table (with its limit), capture objects read on every thread
/// against it; the same result as one thread. Besides the table, the threads hold the labels
/// read but not yet stored and one contribution per matched record, so they are used only
/// while [`THREAD_BYTES_PER_INPUT_BYTE`] × listed bytes fit in half the ground-truth limit;
/// beyond it, one thread.
#[allow(clippy::too_many_arguments)]
pub async fn compute_with(
    store: &Arc<dyn ObjectStore>,
    read_concurrency: usize,
    s: &Settings,
    w: &Window,
    baselines: &Baselines,
    inputs: &Inputs,
    ground_truth_limit: Option<u64>,
    threads: usize,
) -> Result<(JobResult, usize), RunError> {
    let cfg = monitor_config(s, w, baselines);
    let listed: u64 = inputs
        .capture
        .iter()
        .chain(&inputs.ground_truth)
        .map(|o| o.size)
        .sum();
    let rows_fit = ground_truth_limit
        .is_none_or(|l| (listed as f64) * THREAD_BYTES_PER_INPUT_BYTE <= l as f64 / 2.0);
    let objects = inputs.capture.len() + inputs.ground_truth.len();
    let threads = if rows_fit { threads.min(objects) } else { 1 };
    if threads > 1 {
        return compute_threads(
            store,
            read_concurrency,
            s,
            baselines,
            inputs,
            cfg,
            ground_truth_limit,
            threads,
        )
        .await;
    }
    let mut engine = configured(Engine::new(cfg), s, baselines);
    if let Some(limit) = ground_truth_limit {
        engine = engine.with_ground_truth_limit(limit);
    }
    // Malformed batch manifests were skipped: one malformed capture line each, with its sample.
    for (uri, reason) in &inputs.skipped_manifests {
        engine.count_malformed_capture(uri, &format!("not a batch capture manifest: {reason}"));
    }
    // The ground-truth table grows as labels arrive (listed bytes say little about the labels
    // and may be far more than the function's memory).
    let (engine, vanished) = feed(
        store,
        read_concurrency,
        s,
        engine,
        uris_of(&inputs.ground_truth),
        uris_of(&inputs.capture),
    )
    .await?;
    let result = engine
        .finish()
        .map_err(|e| RunError::Engine(e.to_string()))?;
    Ok((result, vanished))
}

/// The threaded path of [`compute_with`]: the broadcast join
/// ([`crate::metrics::engine::broadcast`]). Label collectors read the ground-truth objects on
/// `threads` blocking threads into one table (the window's engine, with its ground-truth limit),
/// then probes read the capture objects on `threads` blocking threads against that shared table,
/// and a walk applies their contributions in `(object, line)` order on a thread of its own as
/// the objects are read; the report sorts and walks the AUC's score list on `threads` threads.
#[allow(clippy::too_many_arguments)]
async fn compute_threads(
    store: &Arc<dyn ObjectStore>,
    read_concurrency: usize,
    s: &Settings,
    baselines: &Baselines,
    inputs: &Inputs,
    cfg: MonitorConfig,
    ground_truth_limit: Option<u64>,
    threads: usize,
) -> Result<(JobResult, usize), RunError> {
    let per_thread = (read_concurrency / threads).max(1);
    let share = |objects: &[ObjectInfo], t: usize| -> Vec<_> {
        objects
            .iter()
            .skip(t)
            .step_by(threads)
            .map(|o| o.uri.clone())
            .collect()
    };
    let mut engine = configured(Engine::new(cfg.clone()), s, baselines);
    if let Some(limit) = ground_truth_limit {
        engine = engine.with_ground_truth_limit(limit);
    }
    for (uri, reason) in &inputs.skipped_manifests {
        engine.count_malformed_capture(uri, &format!("not a batch capture manifest: {reason}"));
    }
    let mut vanished = 0;
    if s.problem_type.is_some() {
        let mut tasks = Vec::with_capacity(threads);
        for t in 0..threads {
            let collector = configured(Engine::new(cfg.clone()), s, baselines).collecting();
            let uris = share(&inputs.ground_truth, t);
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let (c, stats) =
                    stream_objects(store, uris, per_thread, collector, |engine, uri, r| {
                        engine
                            .feed_ground_truth(&uri.to_string(), r)
                            .map(drop)
                            .map_err(io_of)
                    })
                    .await?;
                Ok::<_, crate::storage::stream::ReadError>((c.into_labels(), stats.vanished))
            }));
        }
        let mut collected = Vec::with_capacity(threads);
        for t in tasks {
            let (labels, v) = t
                .await
                .map_err(|e| RunError::Engine(format!("engine thread: {e}")))??;
            collected.push(labels);
            vanished += v;
        }
        engine
            .absorb_labels(collected, threads)
            .map_err(engine_error)?;
    }
    let labels = engine.share_labels().map_err(engine_error)?;
    // Each object's contributions go to the walk as soon as the object is read: the walk runs
    // on a thread of its own while the probes read on (as in
    // `metrics::engine::parallel::feed_broadcast`); objects out of order wait for their turn.
    // They are walked by rank in name order (the listing's, for S3), so each object's
    // contributions are dropped once walked.
    let mut names: Vec<String> = inputs.capture.iter().map(|o| o.uri.to_string()).collect();
    names.sort();
    names.dedup();
    let order: Arc<std::collections::HashMap<String, usize>> =
        Arc::new(names.into_iter().enumerate().map(|(i, n)| (n, i)).collect());
    let (contributed, walk_rx) =
        std::sync::mpsc::channel::<(usize, crate::metrics::engine::broadcast::Contributions)>();
    let walker = {
        let labels = labels.clone();
        let mut applier = engine.applier().in_name_order();
        tokio::task::spawn_blocking(move || {
            applier.walk_ranked(&labels, walk_rx);
            applier
        })
    };
    let mut tasks = Vec::with_capacity(threads);
    for t in 0..threads {
        let probe = configured(Engine::new(cfg.clone()), s, baselines).probing(labels.clone());
        let uris = share(&inputs.capture, t);
        let store = store.clone();
        let (order, contributed) = (order.clone(), contributed.clone());
        tasks.push(tokio::spawn(async move {
            let (p, stats) =
                stream_objects(store, uris, per_thread, probe, move |engine, uri, r| {
                    let name = uri.to_string();
                    let read = engine.feed_capture(&name, r, |_| {});
                    // Whatever was read of it (a vanished object's lines too) goes to the walk.
                    let i = order.get(&name).copied().unwrap_or(usize::MAX);
                    // The walk lives until every probe's sender is gone.
                    let _ = contributed.send((i, engine.take_contributions()));
                    read.map(drop).map_err(io_of)
                })
                .await?;
            Ok::<_, crate::storage::stream::ReadError>((p.into_probe(), stats.vanished))
        }));
    }
    drop(contributed);
    let mut probes = Vec::with_capacity(threads);
    let mut failure = None;
    for t in tasks {
        match t.await {
            Ok(Ok((p, v))) => {
                probes.push(p);
                vanished += v;
            }
            Ok(Err(e)) => failure = failure.or(Some(RunError::from(e))),
            Err(e) => failure = failure.or(Some(RunError::Engine(format!("engine thread: {e}")))),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let applier = walker
        .await
        .map_err(|e| RunError::Engine(format!("engine thread: {e}")))?;
    engine
        .absorb_applied(labels, probes, applier)
        .map_err(engine_error)?;
    // The report's sort and curve walk on the same threads.
    engine.set_finish_threads(threads);
    let result = engine
        .finish()
        .map_err(|e| RunError::Engine(e.to_string()))?;
    Ok((result, vanished))
}

/// An engine error of the threaded path as the single pass reports it (the label limit as
/// `GroundTruthTooLarge`).
fn engine_error(e: EngineError) -> RunError {
    match &e {
        EngineError::GroundTruthTooLarge { limit_bytes, .. } => RunError::GroundTruthTooLarge {
            limit_bytes: *limit_bytes,
            detail: e.to_string(),
        },
        _ => RunError::Engine(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Classify;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_limit_is_explicit_or_half_the_functions_memory_or_none() {
        assert_eq!(ground_truth_limit(&env(&[])).unwrap(), None);
        assert_eq!(
            ground_truth_limit(&env(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")])).unwrap(),
            Some(512 << 20)
        );
        assert_eq!(
            ground_truth_limit(&env(&[
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
                ("GROUND_TRUTH_MEMORY_MB", "800")
            ]))
            .unwrap(),
            Some(800 << 20)
        );
        for bad in ["0", "-1", "lots", "1.5"] {
            let e = ground_truth_limit(&env(&[("GROUND_TRUTH_MEMORY_MB", bad)])).unwrap_err();
            assert_eq!(e.error_type(), "Permanent.InvalidSetting");
            assert!(e.to_string().contains("GROUND_TRUTH_MEMORY_MB"), "{e}");
        }
    }

    #[test]
    fn an_engine_limit_error_becomes_ground_truth_too_large_with_the_remedies() {
        let engine = EngineError::GroundTruthTooLarge {
            limit_bytes: 512 << 20,
            labels: 7,
            source_name: "s3://bkt/gt/a.jsonl".into(),
        };
        let read = crate::storage::stream::ReadError::Consumer {
            uri: "s3://bkt/gt/a.jsonl".into(),
            error: io_of(engine),
        };
        let e = RunError::from(read);
        assert_eq!(e.error_type(), "Permanent.GroundTruthTooLarge");
        let m = e.to_string();
        for part in [
            "512 MiB",
            "smaller windows",
            "MemorySize",
            "GROUND_TRUTH_MEMORY_MB",
            "driftloop-metrics",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
    }
}
