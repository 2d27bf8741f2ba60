//! The scale-out mode: one window computed by many workers of a Step Functions Distributed Map,
//! then merged once (docs/scale-out.md, "The Step Functions mode").
//!
//! 1. **Start** ([`start`]) — the scheduled (or any) custom-metrics run lists the window's inputs
//!    as usual. When their bytes (capture + ground truth + manifests) exceed `SCALE_OUT_BYTES`, or
//!    a direct request says `"scaleOut": true`, it does not compute: it cuts the listed objects
//!    (ground truth first, then capture, in key order) into *slices* of at most
//!    `SCALE_OUT_SLICE_BYTES` each (an object larger than that is a slice of its own), writes them
//!    and a plan under `{report folder}/scaleout/{runId}/`, and starts the state machine
//!    (`StartExecution`, named `{window id}-{runId}`: the same inputs give the same name, and
//!    `ExecutionAlreadyExists` is read as already started). Both sides are split: a slice holds
//!    capture objects, label objects or both; nothing is broadcast.
//! 2. **Workers** ([`work`]) — the Map lists `slices/` (ItemReader `s3:listObjectsV2`) and hands
//!    each slice key to custom-metrics in worker mode, which streams that slice's labels then
//!    capture through the window's engine (the same configuration and baselines as the plan's)
//!    and writes the engine's partial state ([`crate::metrics::EngineState`]) to
//!    `partials/{execution}/{slice}.json` — derived from execution + item, so a retried item
//!    overwrites its own partial. It returns the key only (a few hundred bytes per item).
//! 3. **Reduce** ([`reduce`]) — lists `partials/{execution}/`, checks there is one partial per
//!    slice, merges them into a fresh engine of the window ([`crate::metrics::Engine::merge_state`])
//!    and publishes exactly as a single run does ([`super::run::evaluate_window_from`] with
//!    [`Source::Merged`]): reports, CloudWatch metrics (one datum set per window and stream, the
//!    same ledger), the event — once. The inputs are the plan's listing (`inputs.json`), so the
//!    run id and fingerprint are those a single run over the same inputs has.
//!
//! Files (all JSON) under `{report}/{endpoint}/{variant}/{schedule}/yyyy/mm/dd/hh/{window}/scaleout/{runId}/`:
//! `plan.json` (window, trigger, overrides, baselines as texts, slice count), `inputs.json`
//! (the listing), `slices/NNNNNN.json` (`{"groundTruth": [uri…], "capture": [uri…], "bytes"}`),
//! `partials/{execution}/NNNNNN.json` (`{"runId", "slice", "vanished", "state"}`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::baselines::{BaselineTexts, Baselines};
use super::error::RunError;
use super::feed::{feed, partial_window_engine, window_engine};
use super::inputs::Inputs;
use super::layout;
use super::outcome::{OutcomeStatus, WindowOutcome};
use super::run::{Clock, RunContext, Source, evaluate_window_from};
use super::settings::Settings;
use super::trigger::{Overrides, TriggerKind};
use super::window::{Window, WindowRule, iso};
use crate::error::AwsError;
use crate::metrics::quality::calibration::Calibration;
use crate::metrics::{BaselineConstraints, BaselineStatistics, EngineState};
use crate::publish::{EventPublisher, MetricPublisher};
use crate::storage::{ObjectStore, S3Uri};

/// The version of the plan, slice and partial documents.
pub const FORMAT_VERSION: u32 = 1;
/// Default `SCALE_OUT_SLICE_BYTES`: the input of one worker, 128 MiB. A partial engine holds a
/// join row per id it reads: measured (release, 1M benchmark records) 2.6 bytes of peak memory
/// per capture byte and 6.7 per label byte, so 128 MiB of labels stay under ~900 MB — inside the
/// 1 GB function with its runtime (docs/scale-out.md, "Capacity plan").
pub const DEFAULT_SLICE_BYTES: u64 = 128 << 20;

/// The Step Functions port: starting the scale-out state machine.
#[async_trait]
pub trait Executions: Send + Sync {
    /// Starts an execution named `name`; an execution of that name that already exists is no
    /// error (`already_existed`), as the same name means the same inputs.
    async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<Started, AwsError>;
}

/// A started (or already existing) execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub execution_arn: String,
    pub already_existed: bool,
}

/// The execution ARN of `name` on `state_machine_arn` (`…:stateMachine:M` → `…:execution:M:name`).
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// Peak memory of the reduce step per listed input byte when the window joins labels (model
/// quality): the merged partial states hold a join row per id. Measured 1.7 (release,
/// `driftloop-metrics merge` of the states of 1M benchmark records, 500 MB of capture and labels:
/// 849 MB peak RSS); with headroom.
pub const REDUCE_MEMORY_PER_INPUT_BYTE: f64 = 2.0;

/// When and how a window is handed to the state machine.
pub struct ScaleOut<'a> {
    pub executions: &'a dyn Executions,
    pub state_machine_arn: &'a str,
    /// Scale out when the window's input bytes exceed this (None: only when forced).
    pub threshold_bytes: Option<u64>,
    pub slice_bytes: u64,
    /// A direct request's `"scaleOut": true`.
    pub force: bool,
    /// A direct request's overrides (the workers and the reduce apply them too).
    pub overrides: &'a Overrides,
    /// The memory of the function the reduce runs in (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`; None
    /// outside Lambda: not checked).
    pub reduce_memory_bytes: Option<u64>,
}

impl ScaleOut<'_> {
    /// The rule: forced, or the listed input bytes exceed the threshold — and, for a window
    /// that joins labels (`joins`), its merged join rows fit in the reduce's memory
    /// ([`REDUCE_MEMORY_PER_INPUT_BYTE`]); otherwise the window is computed in one invocation,
    /// whose bounded join needs far less (and fails with `GroundTruthTooLarge` and its remedies
    /// when even that does not fit).
    pub fn wants(&self, inputs: &Inputs, joins: bool) -> bool {
        if self.force {
            return true;
        }
        let bytes = input_bytes(inputs);
        let past = self.threshold_bytes.is_some_and(|t| bytes > t);
        let fits = !joins
            || self
                .reduce_memory_bytes
                .is_none_or(|m| bytes as f64 * REDUCE_MEMORY_PER_INPUT_BYTE <= m as f64);
        if past && !fits {
            tracing::warn!(
                bytes,
                reduce_memory = self.reduce_memory_bytes,
                "past SCALE_OUT_BYTES, but the join rows would not fit in the reduce: computed in one invocation"
            );
        }
        past && fits
    }
}

/// The bytes a window reads: capture, ground truth and batch manifests, as listed.
pub fn input_bytes(inputs: &Inputs) -> u64 {
    inputs
        .capture
        .iter()
        .chain(&inputs.ground_truth)
        .chain(&inputs.manifests)
        .map(|o| o.size)
        .sum()
}

/// One worker's share of a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slice {
    pub version: u32,
    pub ground_truth: Vec<String>,
    pub capture: Vec<String>,
    pub bytes: u64,
}

/// Cuts the window's objects — ground truth first, then capture, in listing order — into
/// consecutive slices of at most `slice_bytes` (an object larger than that is a slice of its
/// own). Batch-transform data files have no listed size: each counts as `slice_bytes` / 8.
pub fn cut(inputs: &Inputs, slice_bytes: u64) -> Vec<Slice> {
    let slice_bytes = slice_bytes.max(1);
    let mut out: Vec<Slice> = Vec::new();
    let mut current = Slice {
        version: FORMAT_VERSION,
        ..Slice::default()
    };
    let sides = [(true, &inputs.ground_truth), (false, &inputs.capture)];
    for (is_gt, objects) in sides {
        for o in objects.iter() {
            let size = if o.size == 0 && !is_gt && !inputs.manifests.is_empty() {
                slice_bytes / 8
            } else {
                o.size
            };
            let empty = current.ground_truth.is_empty() && current.capture.is_empty();
            if !empty && current.bytes.saturating_add(size) > slice_bytes {
                out.push(std::mem::replace(
                    &mut current,
                    Slice {
                        version: FORMAT_VERSION,
                        ..Slice::default()
                    },
                ));
            }
            if is_gt {
                current.ground_truth.push(o.uri.to_string());
            } else {
                current.capture.push(o.uri.to_string());
            }
            current.bytes = current.bytes.saturating_add(size);
        }
    }
    if !current.ground_truth.is_empty() || !current.capture.is_empty() {
        out.push(current);
    }
    out
}

/// The baselines as the plan carries them (texts: the workers parse them as the run did).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedBaselines {
    pub package_arn: Option<String>,
    pub uris: Vec<String>,
    /// [`Baselines::describe`], when a model package group is configured.
    pub info: Option<Value>,
    pub texts: BaselineTexts,
    /// Where the prediction baseline may come from (re-read by workers and the reduce:
    /// [`super::baselines::resolve_prediction_baseline`]).
    #[serde(default)]
    pub dq_statistics_uri: Option<String>,
    #[serde(default)]
    pub prediction_uri: Option<String>,
}

impl PlannedBaselines {
    pub fn of(b: &Baselines, info: Option<&Value>) -> Self {
        PlannedBaselines {
            package_arn: b.package_arn.clone(),
            uris: b.uris.clone(),
            info: info.cloned(),
            texts: b.texts.clone(),
            dq_statistics_uri: b.dq_statistics_uri.clone(),
            prediction_uri: b.prediction_uri.clone(),
        }
    }

    /// The baselines again (what the engine and the fingerprint use).
    pub fn restore(&self) -> Result<Baselines, RunError> {
        let bad = |what: &str, e: String| RunError::ScaleOut(format!("plan's {what}: {e}"));
        let t = &self.texts;
        Ok(Baselines {
            package_arn: self.package_arn.clone(),
            uris: self.uris.clone(),
            dq_statistics: t
                .dq_statistics
                .as_deref()
                .map(BaselineStatistics::parse)
                .transpose()
                .map_err(|e| bad("data-quality statistics", e))?,
            dq_constraints: t
                .dq_constraints
                .as_deref()
                .map(BaselineConstraints::parse)
                .transpose()
                .map_err(|e| bad("data-quality constraints", e))?,
            mq_constraints: t
                .mq_constraints
                .as_deref()
                .map(|s| serde_json::from_str::<Value>(s).map_err(|e| e.to_string()))
                .transpose()
                .map_err(|e| bad("model-quality constraints", e))?,
            calibration: t
                .calibration
                .as_deref()
                .map(Calibration::parse)
                .transpose()
                .map_err(|e| bad("calibration", e))?,
            texts: t.clone(),
            dq_statistics_uri: self.dq_statistics_uri.clone(),
            prediction_uri: self.prediction_uri.clone(),
            ..Baselines::default()
        })
    }

    /// [`PlannedBaselines::restore`], with the prediction baseline read again as the run did.
    pub async fn restore_with_prediction(
        &self,
        store: &dyn ObjectStore,
        s: &Settings,
    ) -> Result<Baselines, RunError> {
        let mut b = self.restore()?;
        super::baselines::resolve_prediction_baseline(
            store,
            &mut b,
            s.prediction_baseline
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            s.prediction_feature.as_deref(),
        )
        .await?;
        // The plan's URIs already name the prediction baseline (the fingerprint reads them).
        b.uris = self.uris.clone();
        Ok(b)
    }
}

/// `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub version: u32,
    pub run_id: String,
    pub fingerprint: String,
    pub window: Window,
    pub trigger: TriggerKind,
    pub overrides: Overrides,
    pub baselines: PlannedBaselines,
    pub slices: usize,
    pub input_bytes: u64,
}

/// `partials/{execution}/{slice}.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Partial {
    pub version: u32,
    pub run_id: String,
    pub slice: String,
    /// Listed objects that had vanished before the worker read them.
    pub vanished: usize,
    pub state: EngineState,
}

/// The window's scale-out folder: `{report folder}/scaleout/{runId}/`.
pub fn folder(s: &Settings, w: &Window, run_id: &str) -> S3Uri {
    layout::report_folder(&s.report, &s.target(), &s.schedule_name, w)
        .join(&format!("scaleout/{run_id}/"))
}

/// The execution name of a window's scale-out: `{window id}-{runId}` (at most 80 characters of
/// `[A-Za-z0-9-_]`).
pub fn execution_name(w: &Window, run_id: &str) -> String {
    let mut name = safe_name(&format!("{}-{run_id}", w.id()));
    name.truncate(80);
    name
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_` (an S3 key segment).
pub fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "_".into() } else { s }
}

fn slice_name(i: usize) -> String {
    format!("{i:06}.json")
}

fn put_json<'a>(
    store: &'a dyn ObjectStore,
    uri: &'a S3Uri,
    v: &'a impl Serialize,
) -> impl std::future::Future<Output = Result<(), AwsError>> + 'a {
    let body = serde_json::to_vec(v).unwrap_or_default();
    store.put(uri, body, "application/json")
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    store: &dyn ObjectStore,
    uri: &S3Uri,
    what: &str,
) -> Result<T, RunError> {
    let body = store.get(uri).await?;
    serde_json::from_slice(&body).map_err(|e| RunError::ScaleOut(format!("{what} {uri}: {e}")))
}

fn parse_uri(uri: &str) -> Result<S3Uri, RunError> {
    S3Uri::parse(uri).map_err(RunError::ScaleOut)
}

/// Hands the window to the state machine: writes its slices and plan, starts the execution.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    store: &dyn ObjectStore,
    scale: &ScaleOut<'_>,
    ctx: &RunContext<'_>,
    w: Window,
    inputs: &Inputs,
    fingerprint: &str,
    run_id: &str,
) -> Result<WindowOutcome, RunError> {
    let s = ctx.settings;
    let dir = folder(s, &w, run_id);
    let slices = cut(inputs, scale.slice_bytes);
    // Written before the plan (a plan names only complete slices); same inputs, same bytes.
    put_json(store, &dir.join("inputs.json"), inputs).await?;
    for (i, slice) in slices.iter().enumerate() {
        put_json(
            store,
            &dir.join(&format!("slices/{}", slice_name(i))),
            slice,
        )
        .await?;
    }
    let plan = Plan {
        version: FORMAT_VERSION,
        run_id: run_id.to_owned(),
        fingerprint: fingerprint.to_owned(),
        window: w,
        trigger: ctx.trigger,
        overrides: scale.overrides.clone(),
        baselines: PlannedBaselines::of(ctx.baselines, ctx.baseline_info),
        slices: slices.len(),
        input_bytes: input_bytes(inputs),
    };
    let plan_uri = dir.join("plan.json");
    put_json(store, &plan_uri, &plan).await?;
    let slices_prefix = dir.join("slices/");
    let name = execution_name(&w, run_id);
    let input = json!({
        "plan": plan_uri.to_string(),
        "slices": {"bucket": slices_prefix.bucket, "prefix": slices_prefix.key, "count": slices.len()},
        "window": {"start": iso(w.start), "end": iso(w.end)},
        "runId": run_id,
    });
    let started = scale
        .executions
        .start_execution(scale.state_machine_arn, &name, &input.to_string())
        .await?;
    tracing::info!(window = %w, execution = started.execution_arn, slices = slices.len(), bytes = plan.input_bytes, already = started.already_existed, "window scaled out");
    let mut o = WindowOutcome::skipped(
        w,
        &super::dedup::Decision::Run,
        format!(
            "{} input bytes in {} slices: computed by the state machine{}",
            plan.input_bytes,
            slices.len(),
            if started.already_existed {
                " (this execution already exists: same inputs)"
            } else {
                ""
            }
        ),
    );
    o.status = OutcomeStatus::ScaledOut;
    o.decision = None;
    o.run_id = Some(run_id.to_owned());
    o.execution_arn = Some(started.execution_arn);
    Ok(o)
}

/// A Step Functions step of the scale-out mode, as custom-metrics receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum Step {
    /// `{"mode": "worker", "plan": "s3://…/plan.json", "execution": "…", "item": {"Key": "…"}}`,
    /// or `"items": [{"Key": …}, …]` (a batch).
    #[serde(rename_all = "camelCase")]
    Worker {
        plan: String,
        execution: String,
        #[serde(default)]
        item: Option<Item>,
        #[serde(default)]
        items: Vec<Item>,
    },
    /// `{"mode": "reduce", "plan": "s3://…/plan.json", "execution": "…"}`.
    #[serde(rename_all = "camelCase")]
    Reduce { plan: String, execution: String },
}

/// An item of the Map: a `ListObjectsV2` entry (only its key is used).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Size", default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// What a worker needs besides its request.
pub struct WorkerContext<'a> {
    /// The function's settings (the plan's overrides are applied on top).
    pub settings: &'a Settings,
    pub read_concurrency: usize,
}

fn settings_of(base: &Settings, plan: &Plan) -> Result<Settings, RunError> {
    base.with_overrides(&plan.overrides).map_err(|e| {
        RunError::ScaleOut(format!(
            "the plan's override {:?}: {}",
            e.setting.field(),
            e.reason
        ))
    })
}

fn check_plan(plan: &Plan) -> Result<(), RunError> {
    if plan.version != FORMAT_VERSION {
        return Err(RunError::ScaleOut(format!(
            "plan version {} (this function reads {FORMAT_VERSION})",
            plan.version
        )));
    }
    Ok(())
}

/// The plan's folder (the plan's own URI without `plan.json`).
fn plan_dir(plan_uri: &S3Uri) -> S3Uri {
    let key = plan_uri
        .key
        .rsplit_once('/')
        .map_or("", |(dir, _)| dir)
        .to_owned();
    S3Uri {
        bucket: plan_uri.bucket.clone(),
        key: format!("{key}/"),
    }
}

/// Worker mode: computes the partial state of each slice, writes it, returns
/// `{"partials": ["s3://…"], "runId": …}`.
pub async fn work(
    store: &Arc<dyn ObjectStore>,
    wc: &WorkerContext<'_>,
    plan_uri: &str,
    execution: &str,
    items: &[Item],
) -> Result<Value, RunError> {
    let plan_uri = parse_uri(plan_uri)?;
    let plan: Plan = get_json(store.as_ref(), &plan_uri, "plan").await?;
    check_plan(&plan)?;
    let s = settings_of(wc.settings, &plan)?;
    let baselines = plan
        .baselines
        .restore_with_prediction(store.as_ref(), &s)
        .await?;
    let dir = plan_dir(&plan_uri);
    if items.is_empty() {
        return Err(RunError::ScaleOut("a worker request with no item".into()));
    }
    let mut partials = Vec::new();
    for item in items {
        let slice_uri = S3Uri {
            bucket: dir.bucket.clone(),
            key: item.key.clone(),
        };
        let Some(name) = item
            .key
            .strip_prefix(&format!("{}slices/", dir.key))
            .filter(|n| !n.is_empty() && !n.contains('/'))
        else {
            return Err(RunError::ScaleOut(format!(
                "item {slice_uri} is not a slice of plan {plan_uri}"
            )));
        };
        let slice: Slice = get_json(store.as_ref(), &slice_uri, "slice").await?;
        let uris = |v: &[String]| {
            v.iter()
                .map(|u| parse_uri(u))
                .collect::<Result<Vec<_>, _>>()
        };
        let engine = partial_window_engine(&s, &plan.window, &baselines);
        let (engine, vanished) = feed(
            store,
            wc.read_concurrency,
            &s,
            engine,
            uris(&slice.ground_truth)?,
            uris(&slice.capture)?,
        )
        .await?;
        let partial = Partial {
            version: FORMAT_VERSION,
            run_id: plan.run_id.clone(),
            slice: name.to_owned(),
            vanished,
            state: engine.into_state(),
        };
        let out = dir.join(&format!("partials/{}/{name}", safe_name(execution)));
        put_json(store.as_ref(), &out, &partial).await?;
        tracing::info!(slice = %slice_uri, partial = %out, bytes = slice.bytes, "partial state written");
        partials.push(out.to_string());
    }
    Ok(json!({"runId": plan.run_id, "partials": partials}))
}

/// What the reduce step needs besides its request (the function's own configuration).
pub struct ReduceContext<'a> {
    pub settings: &'a Settings,
    pub window_rule: &'a WindowRule,
    pub capture_lookback: Duration,
    pub read_concurrency: usize,
}

/// Reduce mode: merges the partial states of every slice and publishes the window once (as a
/// single run over the plan's inputs would).
#[allow(clippy::too_many_arguments)]
pub async fn reduce(
    store: &Arc<dyn ObjectStore>,
    metrics: &dyn MetricPublisher,
    events: &dyn EventPublisher,
    clock: &Clock,
    rc: &ReduceContext<'_>,
    plan_uri: &str,
    execution: &str,
) -> Result<WindowOutcome, RunError> {
    let plan_uri = parse_uri(plan_uri)?;
    let plan: Plan = get_json(store.as_ref(), &plan_uri, "plan").await?;
    check_plan(&plan)?;
    let s = settings_of(rc.settings, &plan)?;
    let baselines = plan
        .baselines
        .restore_with_prediction(store.as_ref(), &s)
        .await?;
    let dir = plan_dir(&plan_uri);
    let inputs: Inputs = get_json(store.as_ref(), &dir.join("inputs.json"), "inputs").await?;
    let slices: Vec<String> = store
        .list(&dir.join("slices/"))
        .await?
        .into_iter()
        .filter_map(|o| o.uri.key.rsplit('/').next().map(str::to_owned))
        .collect();
    if slices.len() != plan.slices {
        return Err(RunError::ScaleOut(format!(
            "{} lists {} slices, the plan has {}",
            dir.join("slices/"),
            slices.len(),
            plan.slices
        )));
    }
    let partial_dir = dir.join(&format!("partials/{}/", safe_name(execution)));
    let written: std::collections::BTreeSet<String> = store
        .list(&partial_dir)
        .await?
        .into_iter()
        .filter_map(|o| o.uri.key.rsplit('/').next().map(str::to_owned))
        .collect();
    if let Some(missing) = slices.iter().find(|n| !written.contains(*n)) {
        return Err(RunError::ScaleOut(format!(
            "slice {missing} has no partial state under {partial_dir} ({} of {} written)",
            written.len(),
            slices.len()
        )));
    }
    let mut engine = window_engine(&s, &plan.window, &baselines, None);
    for (uri, reason) in &inputs.skipped_manifests {
        engine.count_malformed_capture(uri, &format!("not a batch capture manifest: {reason}"));
    }
    let mut vanished = 0;
    // Read a few partials at a time, merged in slice order (deterministic error samples).
    for chunk in slices.chunks(rc.read_concurrency.max(1)) {
        let mut reads = tokio::task::JoinSet::new();
        for (i, name) in chunk.iter().enumerate() {
            let (store, uri) = (store.clone(), partial_dir.join(name));
            reads.spawn(async move { (i, uri.clone(), store.get(&uri).await) });
        }
        let mut bodies = Vec::new();
        while let Some(r) = reads.join_next().await {
            bodies.push(r.map_err(|e| RunError::Engine(e.to_string()))?);
        }
        bodies.sort_by_key(|(i, _, _)| *i);
        for (_, uri, body) in bodies {
            let p: Partial = serde_json::from_slice(&body?)
                .map_err(|e| RunError::ScaleOut(format!("partial {uri}: {e}")))?;
            if p.run_id != plan.run_id {
                return Err(RunError::ScaleOut(format!(
                    "partial {uri} is of run {}, the plan's is {}",
                    p.run_id, plan.run_id
                )));
            }
            engine
                .merge_state_owned(p.state)
                .map_err(|e| RunError::Engine(format!("merging {uri}: {e}")))?;
            vanished += p.vanished;
        }
    }
    let result = engine
        .finish()
        .map_err(|e| RunError::Engine(e.to_string()))?;
    let ctx = RunContext {
        trigger: plan.trigger,
        settings: &s,
        baselines: &baselines,
        baseline_info: plan.baselines.info.as_ref(),
        window_rule: rc.window_rule,
        capture_lookback: rc.capture_lookback,
        read_concurrency: rc.read_concurrency,
        concurrent_windows: 1,
    };
    let source = Source::Merged {
        inputs,
        result: Box::new(result),
        vanished,
        fingerprint: plan.fingerprint.clone(),
    };
    evaluate_window_from(
        store,
        metrics,
        events,
        clock,
        &ctx,
        plan.window,
        None,
        source,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::ObjectInfo;

    fn obj(key: &str, size: u64) -> ObjectInfo {
        ObjectInfo {
            uri: S3Uri::parse(&format!("s3://bkt/{key}")).unwrap(),
            size,
            last_modified: None,
        }
    }

    fn inputs(gt: &[u64], capture: &[u64]) -> Inputs {
        Inputs {
            capture: capture
                .iter()
                .enumerate()
                .map(|(i, s)| obj(&format!("c/{i}"), *s))
                .collect(),
            manifests: Vec::new(),
            input_manifests: 0,
            ground_truth: gt
                .iter()
                .enumerate()
                .map(|(i, s)| obj(&format!("g/{i}"), *s))
                .collect(),
            skipped_manifests: Vec::new(),
        }
    }

    #[test]
    fn slices_hold_every_object_once_within_the_byte_budget() {
        let i = inputs(&[30, 30, 50], &[10, 70, 200, 5, 5]);
        let slices = cut(&i, 100);
        let mut seen: Vec<String> = slices
            .iter()
            .flat_map(|s| s.ground_truth.iter().chain(&s.capture).cloned())
            .collect();
        assert_eq!(seen.len(), 8);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 8, "an object in two slices");
        for s in &slices {
            let n = s.ground_truth.len() + s.capture.len();
            assert!(s.bytes <= 100 || n == 1, "{s:?}");
        }
        // Labels are split too: [30, 30] | [50, 10] | [70] | [200] | [5, 5].
        assert_eq!(slices.len(), 5);
        assert_eq!(slices[1].ground_truth, vec!["s3://bkt/g/2"]);
        assert_eq!(slices[1].capture, vec!["s3://bkt/c/0"]);
        assert!(cut(&inputs(&[], &[]), 100).is_empty());
    }

    #[test]
    fn the_rule_is_forced_or_more_bytes_than_the_threshold() {
        struct Never;
        #[async_trait]
        impl Executions for Never {
            async fn start_execution(
                &self,
                _: &str,
                _: &str,
                _: &str,
            ) -> Result<Started, AwsError> {
                unreachable!()
            }
        }
        let o = Overrides::default();
        let i = inputs(&[40], &[60]);
        let mut so = ScaleOut {
            executions: &Never,
            state_machine_arn: "arn",
            threshold_bytes: Some(100),
            slice_bytes: 10,
            force: false,
            overrides: &o,
            reduce_memory_bytes: None,
        };
        assert!(!so.wants(&i, true), "100 bytes is not more than 100");
        so.threshold_bytes = Some(99);
        assert!(so.wants(&i, true));
        // The join rows of 100 bytes need ~200 bytes in the reduce.
        so.reduce_memory_bytes = Some(150);
        assert!(!so.wants(&i, true), "the reduce cannot hold the join rows");
        assert!(so.wants(&i, false), "no labels, no join rows");
        so.reduce_memory_bytes = Some(250);
        assert!(so.wants(&i, true));
        so.threshold_bytes = None;
        assert!(!so.wants(&i, false));
        so.force = true;
        assert!(so.wants(&i, true));
    }

    #[test]
    fn names_and_arns() {
        let w = Window::new(
            "2024-05-01T10:00:00Z".parse().unwrap(),
            "2024-05-01T11:00:00Z".parse().unwrap(),
        )
        .unwrap();
        let n = execution_name(&w, "0123456789abcdef01234567");
        assert_eq!(n, "20240501T1000Z-20240501T1100Z-0123456789abcdef01234567");
        assert_eq!(
            execution_arn("arn:aws:states:us-east-1:1:stateMachine:m", &n),
            format!("arn:aws:states:us-east-1:1:execution:m:{n}")
        );
        assert_eq!(safe_name("a b/c"), "a_b_c");
        let step: Step =
            serde_json::from_value(json!({"mode": "worker", "plan": "s3://b/p/plan.json",
            "execution": "e", "item": {"Key": "p/slices/000000.json", "Size": 3, "ETag": "x"}}))
            .unwrap();
        assert!(matches!(step, Step::Worker { item: Some(_), .. }));
    }
}
