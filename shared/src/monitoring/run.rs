//! Evaluating one window end to end ([`evaluate_window`]): the burst rule for S3-triggered runs,
//! the engine over the window's inputs, the three reports, the CloudWatch metrics (one datum set
//! per window and stream: [`super::publication`]) and the event, each publication retried on its
//! own.

use std::sync::Arc;

use chrono::Duration;
use serde_json::{Value, json};

use super::baselines::Baselines;
use super::dedup::{self, Decision};
use super::error::RunError;
use super::feed::{compute, compute_with, engine_threads, ground_truth_limit};
use super::inputs::{Inputs, list_ground_truth, list_inputs};
use super::layout::{self, ReportUris};
use super::outcome::{OutcomeStatus, WindowOutcome, WindowStatus, no_data};
use super::publication::{self, Entry, Ledger, Plan, Publication, Stream};
use super::report::{self, MetricTarget};
use super::settings::Settings;
use super::trigger::TriggerKind;
use super::window::{Window, WindowRule, iso};
use crate::config::ProcessEnv;
use crate::error::{AwsError, Classify};
use crate::metrics::MetricKind;
use crate::publish::{EventPublisher, MetricDatum, MetricPublisher, OutgoingEvent, PublishError};
use crate::retry::{Backoff, retry};
use crate::storage::{ObjectStore, S3Uri};

/// The source of the events a run publishes.
pub use crate::contract::SOURCE;
/// CloudWatch accepts datums up to two weeks old; older windows (backfills) get reports and an
/// event, but no metrics.
pub const METRICS_MAX_AGE: Duration = Duration::days(14);
/// Attempts of one `PutMetricData` call / one `PutEvents` call (on top of the SDK's own retries).
pub const PUBLISH_ATTEMPTS: u32 = 5;

pub use crate::clock::{Clock, system_clock};

/// The backoff of one publishing call: 0.2 s, doubled per failure, at most 12.8 s.
const PUBLISH_BACKOFF: Backoff = Backoff::new(
    PUBLISH_ATTEMPTS,
    std::time::Duration::from_millis(200),
    std::time::Duration::from_millis(12_800),
);

/// What every window of an invocation shares.
pub struct RunContext<'a> {
    pub trigger: TriggerKind,
    pub settings: &'a Settings,
    pub baselines: &'a Baselines,
    /// [`Baselines::describe`], when a model package group is configured.
    pub baseline_info: Option<&'a Value>,
    /// The window rule (ground truth is read over [`WindowRule::ground_truth_range`]).
    pub window_rule: &'a WindowRule,
    /// Real-time capture files started this long before a window are read too.
    pub capture_lookback: Duration,
    /// Objects downloaded ahead of the engine.
    pub read_concurrency: usize,
    /// Windows this process evaluates at the same time (1, or a fan-out's concurrency:
    /// [`super::fanout`]): each window's ground truth may take this share of the limit
    /// ([`super::feed::ground_truth_limit`] divided by it), so the windows together stay in it.
    pub concurrent_windows: usize,
}

/// The fingerprint of everything a window's report is computed from (burst rule 3).
pub fn fingerprint(s: &Settings, w: &Window, baselines: &Baselines, inputs: &Inputs) -> String {
    let mut parts = vec![
        w.id(),
        serde_json::to_string(s).unwrap_or_default(),
        baselines.package_arn.clone().unwrap_or_default(),
        baselines.uris.join(" "),
    ];
    parts.extend(dedup::object_parts(&inputs.capture));
    parts.extend(dedup::object_parts(&inputs.manifests));
    parts.push("ground-truth".into());
    parts.extend(dedup::object_parts(&inputs.ground_truth));
    dedup::fingerprint(parts)
}

/// The fingerprint stored in the window's `summary.json` by a run that completed (None on a first
/// run: see [`ObjectStore::get_optional`]).
pub async fn previous_fingerprint(
    store: &dyn ObjectStore,
    uris: &ReportUris,
) -> Result<Option<String>, AwsError> {
    // Absent on a first run: 404, or 403 where s3:ListBucket is scoped by prefix (the reports
    // written next fail loudly on a real permission problem).
    Ok(store
        .get_optional(&uris.summary)
        .await?
        .and_then(|body| serde_json::from_slice::<Value>(&body).ok())
        .and_then(|v| v["fingerprint"].as_str().map(str::to_owned)))
}

/// The `PutMetricData` calls of a run, in a deterministic order (the same inputs give the same
/// calls, so a retry can resume after the calls already sent).
pub fn metric_calls(groups: Vec<(String, Vec<MetricDatum>)>) -> Vec<(String, Vec<MetricDatum>)> {
    let mut calls = Vec::new();
    for (ns, datums) in groups {
        for chunk in report::chunk_datums(datums) {
            calls.push((ns.clone(), chunk));
        }
    }
    calls
}

/// Puts one call's datums, retried when the failure is retryable.
pub async fn put_call(
    metrics: &dyn MetricPublisher,
    ns: &str,
    datums: &[MetricDatum],
) -> Result<usize, PublishError> {
    let r = retry(
        &PUBLISH_BACKOFF,
        || metrics.put_metrics(ns, datums.to_vec()),
        |e| e.is_retryable(),
        |attempt, e, _| tracing::warn!(namespace = ns, attempt, error = %e, "PutMetricData failed; retrying this call"),
    )
    .await?;
    Ok(r.sent)
}

/// Puts every datum; each call is retried on its own when the failure is retryable, so datums of
/// calls that went through are never sent twice.
pub async fn publish_metrics(
    metrics: &dyn MetricPublisher,
    groups: Vec<(String, Vec<MetricDatum>)>,
) -> Result<usize, PublishError> {
    let mut sent = 0;
    for (ns, datums) in metric_calls(groups) {
        sent += put_call(metrics, &ns, &datums).await?;
    }
    Ok(sent)
}

/// What the window's CloudWatch streams hold (their records; a missing record is an empty stream).
pub async fn read_ledger(store: &dyn ObjectStore, uris: &ReportUris) -> Result<Ledger, AwsError> {
    let mut ledger = Ledger::default();
    for stream in [Stream::Provisional, Stream::Final] {
        // Absent before the stream's first publication: 404, or 403 where `s3:ListBucket` is
        // scoped by prefix (see [`ObjectStore::get_optional`]).
        let record = store
            .get_optional(&layout::cloudwatch_record(uris, stream.as_str()))
            .await?;
        if let Some(e) = record.and_then(|body| serde_json::from_slice::<Entry>(&body).ok()) {
            ledger.set(stream, e);
        }
    }
    Ok(ledger)
}

/// Puts the event, retried when the failure is retryable.
pub async fn publish_event(
    events: &dyn EventPublisher,
    event: &OutgoingEvent,
) -> Result<String, PublishError> {
    retry(
        &PUBLISH_BACKOFF,
        || events.publish(event),
        |e| e.is_retryable(),
        |attempt, e, _| tracing::warn!(attempt, error = %e, "PutEvents failed; retrying"),
    )
    .await
}

fn metrics_object(pairs: &[(String, f64)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// Where a window's result comes from ([`evaluate_window_from`]).
pub enum Source<'a> {
    /// The window's inputs, listed and streamed through the engine here.
    Stream,
    /// As `Stream`, unless the scale-out rule hands the window to the state machine
    /// ([`super::scaleout::ScaleOut::wants`]).
    ScaleOut(&'a super::scaleout::ScaleOut<'a>),
    /// The scale-out reduce step: the plan's inputs and the merge of its partial states
    /// ([`super::scaleout::reduce`]); `fingerprint` is the plan's (checked).
    Merged {
        inputs: Inputs,
        result: Box<crate::metrics::JobResult>,
        vanished: usize,
        fingerprint: String,
    },
}

/// Evaluates one window end to end. `s3_trigger`: the uploaded object (applies the burst rule).
pub async fn evaluate_window(
    store: &Arc<dyn ObjectStore>,
    metrics: &dyn MetricPublisher,
    events: &dyn EventPublisher,
    clock: &Clock,
    ctx: &RunContext<'_>,
    w: Window,
    s3_trigger: Option<&S3Uri>,
) -> Result<WindowOutcome, RunError> {
    evaluate_window_from(
        store,
        metrics,
        events,
        clock,
        ctx,
        w,
        s3_trigger,
        Source::Stream,
    )
    .await
}

/// [`evaluate_window`] with the result from `source`: computed here, handed to the scale-out
/// state machine, or merged by its reduce step (then published here exactly as a single run).
#[allow(clippy::too_many_arguments)]
pub async fn evaluate_window_from(
    store: &Arc<dyn ObjectStore>,
    metrics: &dyn MetricPublisher,
    events: &dyn EventPublisher,
    clock: &Clock,
    ctx: &RunContext<'_>,
    w: Window,
    s3_trigger: Option<&S3Uri>,
    source: Source<'_>,
) -> Result<WindowOutcome, RunError> {
    let s = ctx.settings;
    let target = s.target();
    let uris = layout::report_uris(&s.report, &target, &s.schedule_name, &w);
    let scale = match &source {
        Source::ScaleOut(scale) => Some(*scale),
        _ => None,
    };
    let (inputs, merged) = match source {
        Source::Merged {
            inputs,
            result,
            vanished,
            fingerprint: planned,
        } => {
            let fp = fingerprint(s, &w, ctx.baselines, &inputs);
            if fp != planned {
                return Err(RunError::ScaleOut(format!(
                    "the plan's fingerprint {planned} is not that of its inputs and settings ({fp}): the function's configuration changed since the window was planned"
                )));
            }
            (inputs, Some((*result, vanished)))
        }
        Source::Stream | Source::ScaleOut(_) => {
            let ground_truth = list_ground_truth(store.as_ref(), s, ctx.window_rule, &w).await?;
            if let Some(object) = s3_trigger {
                let d = dedup::newest_wins(object, &ground_truth);
                if d != Decision::Run {
                    let reason = match &d {
                        Decision::Superseded { newer } => {
                            format!("a newer upload ({newer}) recomputes this window")
                        }
                        _ => format!("{object} no longer exists"),
                    };
                    return Ok(WindowOutcome::skipped(w, &d, reason));
                }
            }
            let inputs =
                list_inputs(store.as_ref(), s, ctx.capture_lookback, &w, ground_truth).await?;
            (inputs, None)
        }
    };
    let fp = fingerprint(s, &w, ctx.baselines, &inputs);
    let run_id = dedup::fingerprint([w.id(), fp.clone()])[..24].to_owned();
    if s3_trigger.is_some() {
        let previous = previous_fingerprint(store.as_ref(), &uris).await?;
        if dedup::inputs_changed(previous.as_deref(), &fp) == Decision::UpToDate {
            let mut o = WindowOutcome::skipped(
                w,
                &Decision::UpToDate,
                "the report was computed from exactly these inputs".into(),
            );
            o.run_id = Some(run_id);
            return Ok(o);
        }
    }
    if let Some(scale) = scale
        && scale.wants(&inputs, s.problem_type.is_some())
    {
        return super::scaleout::start(store.as_ref(), scale, ctx, w, &inputs, &fp, &run_id).await;
    }
    let (result, vanished) = match merged {
        Some(m) => m,
        None if ctx.concurrent_windows > 1 => {
            let limit =
                ground_truth_limit(&ProcessEnv)?.map(|bytes| bytes / ctx.concurrent_windows as u64);
            let threads = engine_threads(&ProcessEnv)?;
            compute_with(
                store,
                ctx.read_concurrency,
                s,
                &w,
                ctx.baselines,
                &inputs,
                limit,
                threads,
            )
            .await?
        }
        None => compute(store, ctx.read_concurrency, s, &w, ctx.baselines, &inputs).await?,
    };
    let mut ledger = read_ledger(store.as_ref(), &uris).await?;
    let requested = Publication::requested(ctx.trigger, ctx.window_rule, &w, clock());
    let (publication, plan) = publication::decide(requested, &ledger, &run_id);
    let empty = no_data(s, &inputs, &result);
    let violations = result.violations.len();
    let status = WindowStatus::of(empty.is_some(), violations);
    let now = clock();
    let cw = result.cloudwatch_metrics();
    let pairs_of = |kind: MetricKind| -> Vec<(String, f64)> {
        cw.iter()
            .filter(|m| m.kind == kind)
            .map(|m| (m.name.clone(), m.value))
            .collect()
    };
    let model_metrics = pairs_of(MetricKind::ModelQuality);
    let drift = pairs_of(MetricKind::FeatureDrift);
    let mut summary_metrics = model_metrics.clone();
    summary_metrics.extend(drift);
    summary_metrics.extend(pairs_of(MetricKind::Estimate));
    // Every drift statistic (`feature_psi_<f>`, ..., `prediction_<statistic>`) too.
    summary_metrics.extend(pairs_of(MetricKind::FeatureDriftStatistic));
    summary_metrics.extend(pairs_of(MetricKind::PredictionDrift));
    let record_counts: Value = report::count_metrics(&result.counts, violations, empty.is_some())
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!(v as u64)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let inputs_info = json!({
        "captureObjects": inputs.capture.len(),
        "captureBytes": inputs.capture.iter().map(|o| o.size).sum::<u64>(),
        "groundTruthObjects": inputs.ground_truth.len(),
        "groundTruthBytes": inputs.ground_truth.iter().map(|o| o.size).sum::<u64>(),
        "outputManifests": inputs.manifests.len(),
        "inputManifests": inputs.input_manifests,
        "vanishedObjects": vanished,
    });
    let target_json = serde_json::to_value(&target).unwrap_or(Value::Null);
    let window_json = json!({"start": iso(w.start), "end": iso(w.end)});
    let error_samples: Vec<String> = result
        .error_samples
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut detail = json!({
        "runId": run_id,
        "status": status,
        "reason": empty,
        "window": window_json,
        "trigger": ctx.trigger,
        "publication": publication,
        "target": target_json,
        "monitoringScheduleName": s.schedule_name,
        "problemType": s.problem_type,
        "counts": record_counts,
        "metrics": metrics_object(&summary_metrics),
        "violationCount": violations,
        "violations": result.violations_json()["violations"].clone(),
        "reports": uris.as_strings(),
        "errorSamples": error_samples,
        "inputs": inputs_info,
        "baseline": ctx.baseline_info.cloned(),
    });
    // Reports: statistics, violations and the summary before the metrics and the event (which
    // point at them). The summary is written a second time with the input fingerprint only once
    // metrics and event went out: a run that failed half-way is not "up to date" for the burst
    // rule, and its retry publishes what is missing.
    let store = store.as_ref();
    let pretty = |v: &Value| serde_json::to_vec_pretty(v).unwrap_or_default();
    store
        .put(
            &uris.statistics,
            pretty(&result.statistics_json()),
            "application/json",
        )
        .await?;
    store
        .put(
            &uris.constraint_violations,
            pretty(&result.violations_json()),
            "application/json",
        )
        .await?;
    let mut summary = detail.clone();
    summary["fingerprint"] = Value::Null;
    summary["evaluatedAt"] = json!(iso(now));
    summary["engineCounts"] = serde_json::to_value(&result.counts).unwrap_or(Value::Null);
    summary["jobMessage"] = json!(result.job_message());
    summary["settings"] = serde_json::to_value(s).unwrap_or(Value::Null);
    summary["text"] = json!(result.summary());
    summary["cloudwatch"] = ledger.to_json();
    store
        .put(&uris.summary, pretty(&summary), "application/json")
        .await?;

    let mut outcome = WindowOutcome {
        window: w,
        status: OutcomeStatus::Evaluated(status),
        reason: empty.clone(),
        decision: s3_trigger.map(|_| Decision::Run.as_str().to_owned()),
        run_id: Some(run_id.clone()),
        counts: Some(detail["counts"].clone()),
        metrics: Some(metrics_object(&model_metrics)),
        violation_count: violations,
        reports: Some(uris.as_strings()),
        publication: Some(publication),
        metrics_published: 0,
        metrics_skipped: None,
        event_id: None,
        execution_arn: None,
    };
    if w.start < now - METRICS_MAX_AGE + Duration::minutes(5) {
        outcome.metrics_skipped =
            Some("the window is older than CloudWatch accepts (14 days)".into());
    } else if w.start > now + Duration::hours(2) {
        outcome.metrics_skipped = Some("the window starts more than 2 hours in the future".into());
    } else {
        match plan {
            Plan::Skip(reason) => outcome.metrics_skipped = Some(reason),
            Plan::Publish {
                stream,
                resume_after,
            } => {
                let mut mt = MetricTarget::new(
                    &target,
                    &s.schedule_name,
                    s.metrics_namespace.as_deref(),
                    &s.metrics_dimensions,
                );
                if let Some((k, v)) = stream.dimension() {
                    mt.dimensions.retain(|(n, _)| *n != k);
                    mt.dimensions.push((k, v));
                }
                let calls = metric_calls(report::build_datums(
                    &cw,
                    &result.counts,
                    violations,
                    empty.is_some(),
                    s.problem_type.is_some(),
                    &mt,
                    w.start,
                ));
                let mut entry = Entry {
                    run_id: run_id.clone(),
                    published_at: iso(now),
                    datums: calls.iter().map(|(_, d)| d.len()).sum(),
                    calls: calls.len(),
                    calls_sent: resume_after,
                };
                let record = layout::cloudwatch_record(&uris, stream.as_str());
                for (ns, datums) in calls.iter().skip(resume_after) {
                    outcome.metrics_published += put_call(metrics, ns, datums).await?;
                    entry.calls_sent += 1;
                    store
                        .put(&record, pretty(&json!(entry)), "application/json")
                        .await?;
                }
                if resume_after > 0 {
                    tracing::info!(window = %w, stream = stream.as_str(), resume_after, "resumed a publication stopped half-way");
                }
                ledger.set(stream, entry);
            }
        }
    }
    detail["metricsPublished"] = json!(outcome.metrics_published);
    detail["metricsSkipped"] = json!(outcome.metrics_skipped);
    let resources: Vec<String> = ctx.baselines.package_arn.iter().cloned().collect();
    let event = report::fit_event(SOURCE, detail, s.event_bus.as_deref(), resources)?;
    outcome.event_id = Some(publish_event(events, &event).await?);
    summary["fingerprint"] = json!(fp);
    summary["metricsPublished"] = json!(outcome.metrics_published);
    summary["metricsSkipped"] = json!(outcome.metrics_skipped);
    summary["cloudwatch"] = ledger.to_json();
    summary["eventId"] = json!(outcome.event_id);
    store
        .put(&uris.summary, pretty(&summary), "application/json")
        .await?;
    tracing::info!(window = %w, status = status.as_str(), publication = publication.as_str(), violations, metrics = outcome.metrics_published, "window evaluated");
    Ok(outcome)
}
