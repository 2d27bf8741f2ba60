//! The engine feed: the metrics engine's configuration for one window, and its inputs streamed
//! through it — ground truth first (the buffered side of the join), then capture — with bounded
//! memory ([`crate::storage::stream`]).

use std::sync::Arc;

use super::baselines::Baselines;
use super::error::RunError;
use super::inputs::Inputs;
use super::settings::{CaptureMode, Settings};
use super::window::Window;
use crate::metrics::{CaptureFormat, Engine, EngineError, JobResult, MonitorConfig};
use crate::storage::ObjectStore;
use crate::storage::stream::stream_objects;

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

/// An engine error as the reader's I/O error (a read failure keeps its S3 error inside).
pub fn io_of(e: EngineError) -> std::io::Error {
    match e {
        EngineError::Io { error, .. } => error,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Streams ground truth, then capture, through the engine; returns its result and how many
/// listed objects had vanished before they were read.
pub async fn compute(
    store: &Arc<dyn ObjectStore>,
    read_concurrency: usize,
    s: &Settings,
    w: &Window,
    baselines: &Baselines,
    inputs: &Inputs,
) -> Result<(JobResult, usize), RunError> {
    let mut engine = Engine::new(monitor_config(s, w, baselines));
    if s.problem_type.is_some() || engine.config().data_quality {
        engine = engine.with_data_quality_baseline(
            baselines.dq_statistics.clone(),
            baselines.dq_constraints.clone(),
        );
    }
    if let (Some(c), Some(_)) = (&baselines.mq_constraints, s.problem_type) {
        engine = engine.with_model_quality_constraints(c.clone());
    }
    let gt_bytes: u64 = inputs.ground_truth.iter().map(|o| o.size).sum();
    engine.reserve_ground_truth((gt_bytes / 120) as usize);
    let mut vanished = 0;
    if s.problem_type.is_some() {
        let uris = inputs.ground_truth.iter().map(|o| o.uri.clone()).collect();
        let (e, stats) = stream_objects(
            store.clone(),
            uris,
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
    let uris = inputs.capture.iter().map(|o| o.uri.clone()).collect();
    let (engine, stats) = stream_objects(
        store.clone(),
        uris,
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
    let result = engine
        .finish()
        .map_err(|e| RunError::Engine(e.to_string()))?;
    Ok((result, vanished))
}
