//! What a trigger came to, as retrain-on-alarm returns and announces it: the [`Report`] (the
//! detail of its `Retraining Started` / `Retraining Skipped` event), its count metric, and
//! [`publish`], which sends both without failing the invocation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Outcome, SkipReason, Trigger};
use crate::contract::{self, Detail, DetailType};
use crate::error::Classify;
use crate::pipelines::ExecutionSummary;
use crate::publish::{EventPublisher, MetricDatum, MetricPublisher, OutgoingEvent};

pub const STARTED_DETAIL_TYPE: &str = DetailType::RetrainingStarted.as_str();
pub const SKIPPED_DETAIL_TYPE: &str = DetailType::RetrainingSkipped.as_str();
pub const STARTED_METRIC: &str = "RetrainingStarted";
pub const SKIPPED_METRIC: &str = "RetrainingSkipped";
/// The count metrics' dimensions: the pipeline, and (skips only) the [`SkipReason`].
pub const PIPELINE_DIMENSION: &str = "Pipeline";
pub const REASON_DIMENSION: &str = "Reason";

/// Started or skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OutcomeKind {
    Started,
    Skipped,
}

impl OutcomeKind {
    pub const fn detail_type(self) -> DetailType {
        match self {
            OutcomeKind::Started => DetailType::RetrainingStarted,
            OutcomeKind::Skipped => DetailType::RetrainingSkipped,
        }
    }

    pub const fn metric_name(self) -> &'static str {
        match self {
            OutcomeKind::Started => STARTED_METRIC,
            OutcomeKind::Skipped => SKIPPED_METRIC,
        }
    }
}

/// Why nothing was started.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkipOut {
    /// `NotAlarm`, `AlreadyInAlarm`, `ActionsSuppressed`, `AlreadyStarted`, `Stale`,
    /// `PipelineBusy`, `Cooldown`, `RecentDriftRetrain`.
    pub code: SkipReason,
    pub message: String,
    /// The execution that caused the skip (the running one, the recent one, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionSummary>,
}

/// What happened, as returned and as published in the event's `detail`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub outcome: OutcomeKind,
    pub pipeline_name: Option<String>,
    /// The started execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_execution_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<SkipOut>,
    pub trigger: Trigger,
}

impl Detail for Report {
    fn detail_type(&self) -> DetailType {
        self.outcome.detail_type()
    }
}

impl Report {
    pub fn new(trigger: Trigger, outcome: Outcome) -> Self {
        match outcome {
            Outcome::Started {
                request,
                execution_arn,
            } => Report {
                outcome: OutcomeKind::Started,
                pipeline_name: Some(request.pipeline),
                pipeline_execution_arn: Some(execution_arn),
                client_request_token: Some(request.client_request_token),
                display_name: Some(request.display_name),
                parameters: Some(request.parameters),
                skip: None,
                trigger,
            },
            Outcome::Skipped { pipeline, skip } => Report {
                outcome: OutcomeKind::Skipped,
                pipeline_name: pipeline,
                pipeline_execution_arn: None,
                client_request_token: None,
                display_name: None,
                parameters: None,
                skip: Some(SkipOut {
                    code: skip.reason,
                    message: skip.message,
                    execution: skip.execution,
                }),
                trigger,
            },
        }
    }

    /// The event published on the bus.
    pub fn event(&self, bus: Option<&str>, now: DateTime<Utc>) -> OutgoingEvent {
        let resources = self
            .pipeline_execution_arn
            .iter()
            .chain(self.trigger.resources.iter())
            .cloned();
        contract::event(self)
            .with_resources(resources)
            .at(now)
            .on_bus(bus)
    }

    /// The count datum.
    pub fn metric(&self, now: DateTime<Utc>) -> MetricDatum {
        let mut d = MetricDatum::count(self.outcome.metric_name(), 1.0);
        if let Some(p) = &self.pipeline_name {
            d = d.dimension(PIPELINE_DIMENSION, p);
        }
        if let Some(skip) = &self.skip {
            d = d.dimension(REASON_DIMENSION, skip.code.as_str());
        }
        d.at(now)
    }
}

/// How publishing went.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Publication {
    /// The EventBridge event id, when the event was accepted.
    pub event_id: Option<String>,
    pub metric_sent: bool,
    /// Errors, as `<errorType>: <message>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Where [`publish`] sends the report.
#[derive(Debug, Clone, Copy)]
pub struct Destinations<'a> {
    /// The event bus; the account's default bus when `None`.
    pub bus: Option<&'a str>,
    /// The metric namespace.
    pub namespace: &'a str,
}

/// Publishes the report's event and its count metric. A failure is logged and recorded in the
/// [`Publication`], never returned: the execution is what matters, and a retried invocation
/// would find it started and could only report a skip.
pub async fn publish(
    report: &Report,
    events: &dyn EventPublisher,
    metrics: &dyn MetricPublisher,
    to: Destinations<'_>,
    now: DateTime<Utc>,
) -> Publication {
    let mut publication = Publication::default();
    match events.publish(&report.event(to.bus, now)).await {
        Ok(id) => publication.event_id = Some(id),
        Err(e) => {
            tracing::error!(error = %e, error_type = e.error_type(), "could not publish the retraining event");
            publication.errors.push(format!("{}: {e}", e.error_type()));
        }
    }
    match metrics
        .put_metrics(to.namespace, vec![report.metric(now)])
        .await
    {
        Ok(r) => publication.metric_sent = r.sent == 1,
        Err(e) => {
            tracing::error!(error = %e, error_type = e.error_type(), "could not put the retraining metric");
            publication.errors.push(format!("{}: {e}", e.error_type()));
        }
    }
    publication
}
