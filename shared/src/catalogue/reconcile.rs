//! deploy-on-approval's reconcile: what the catalogue says the loop's CloudWatch side should be,
//! made so — on a catalogue upload (the object's S3 `Object Created` event) and daily, so adding a
//! model takes effect without a stack update and without waiting for its next deployment.
//!
//! - every `servedPackage` alarm of every model: created if missing, updated when it differs,
//!   untouched otherwise ([`crate::deploy::alarm::ensure_alarm`]), with the threshold of the
//!   package its stage's endpoint serves now (the package the stage should serve, once the
//!   endpoint is in service on it; before that the alarm waits for the deployment, which puts it);
//! - alarms the loop made (description [`super::alarms::MANAGED_MARKER`]) under the stack's alarm
//!   prefix whose model, or alarm, left the catalogue are **left in place and reported**
//!   (`orphaned`, and a warning in the log): deleting a retraining trigger because of a mistaken
//!   upload is worse than a stale alarm, and its `driftloop:model` tag says whose it was
//!   (delete it with `aws cloudwatch delete-alarms`);
//! - the loop-managed dashboard ([`super::dashboard`]), written only when its body changes.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::alarms::templates;
use super::dashboard::{DashboardSettings, body};
use super::source::Loaded;
use crate::deploy::alarm::AlarmThresholds;
use crate::deploy::converge::{AlarmUpdate, follow_alarm};
use crate::deploy::{Hosting, Plan, desired_package, plan};
use crate::error::AwsError;
use crate::registry::ModelRegistry;
use crate::storage::ObjectStore;

/// The CloudWatch dashboard port (`adapters::cloudwatch_alarms`).
#[async_trait]
pub trait Dashboards: Send + Sync {
    /// The body, `None` when there is no such dashboard.
    async fn get_dashboard(&self, name: &str) -> Result<Option<String>, AwsError>;
    /// Creates or replaces the dashboard; returns CloudWatch's validation messages.
    async fn put_dashboard(&self, name: &str, body: &str) -> Result<Vec<String>, AwsError>;
}

/// What reconcile reads and writes.
pub struct ReconcileDeps<'a> {
    pub registry: &'a dyn ModelRegistry,
    pub hosting: &'a dyn Hosting,
    pub store: &'a dyn ObjectStore,
    pub alarms: &'a dyn AlarmThresholds,
    pub dashboards: &'a dyn Dashboards,
}

/// The stack's side of it.
#[derive(Debug, Clone, Default)]
pub struct ReconcileSettings {
    /// The stack's alarm prefix (`CATALOGUE_ALARM_PREFIX`): where orphaned alarms are looked for.
    pub alarm_prefix: Option<String>,
    /// The dashboard; none written without it.
    pub dashboard: Option<DashboardSettings>,
}

/// One loop-managed alarm, as reconciled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconciledAlarm {
    pub group: String,
    pub stage: String,
    pub alarm_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<AlarmUpdate>,
    /// Why the alarm was not put this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrphanedAlarm {
    pub alarm_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardOutcome {
    pub name: String,
    pub written: bool,
    pub widgets: usize,
    pub models_shown: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_off: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// `s3://...@"etag"`.
    pub catalogue: String,
    pub alarms: Vec<ReconciledAlarm>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphaned: Vec<OrphanedAlarm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<DashboardOutcome>,
}

/// Reconciles the catalogue's alarms and dashboard; the errors are those the invocation should
/// fail with (after everything else was done).
pub async fn reconcile(
    loaded: &Loaded,
    deps: &ReconcileDeps<'_>,
    settings: &ReconcileSettings,
) -> (ReconcileReport, Vec<AwsError>) {
    let mut errors = Vec::new();
    let mut report = ReconcileReport {
        catalogue: loaded.describe(),
        alarms: Vec::new(),
        orphaned: Vec::new(),
        dashboard: None,
    };
    let mut names = std::collections::BTreeSet::new();
    for m in &loaded.catalogue.models {
        let stages = super::deploy::stage_configs(m);
        for t in templates(m) {
            names.insert(t.name.clone());
            let mut item = ReconciledAlarm {
                group: m.group.clone(),
                stage: t.stage.clone(),
                alarm_name: t.name.clone(),
                update: None,
                waiting: None,
            };
            let Some(stage) = stages.iter().find(|s| {
                s.follow_alarm
                    .as_ref()
                    .is_some_and(|f| f.alarm_name == t.name)
            }) else {
                continue;
            };
            let follow = stage.follow_alarm.as_ref().expect("found by its alarm");
            let desired = match desired_package(deps.registry, &m.group, stage.stage, None).await {
                Ok(d) => d,
                Err(e) => {
                    item.waiting = Some(format!("the registry cannot be read: {e}"));
                    errors.push(e);
                    report.alarms.push(item);
                    continue;
                }
            };
            let Some(package) = desired else {
                item.waiting = Some(format!(
                    "no package for {} yet; the alarm is created by its first deployment",
                    stage.stage.as_str()
                ));
                report.alarms.push(item);
                continue;
            };
            let current = match deps.hosting.describe_endpoint(&stage.endpoint_name).await {
                Ok(c) => c,
                Err(e) => {
                    item.waiting = Some(format!("endpoint {}: {e}", stage.endpoint_name));
                    errors.push(e);
                    report.alarms.push(item);
                    continue;
                }
            };
            let serving = match (
                plan(stage, "", Some(&package.summary), current.as_ref()),
                &current,
            ) {
                (Plan::UpToDate { config_name }, Some(c)) => {
                    c.status == "InService"
                        && c.pending_config_name.is_none()
                        && c.config_name.as_deref() == Some(config_name.as_str())
                }
                _ => false,
            };
            if !serving {
                item.waiting = Some(format!(
                    "endpoint {} does not serve {} yet; the alarm follows once it does",
                    stage.endpoint_name, package.summary.arn
                ));
                report.alarms.push(item);
                continue;
            }
            item.update = Some(follow_alarm(deps.store, deps.alarms, follow, &package).await);
            report.alarms.push(item);
        }
    }
    // Alarms the loop made whose model or alarm is gone from the catalogue: left, and reported.
    if let Some(prefix) = &settings.alarm_prefix {
        match deps.alarms.metric_alarms(prefix).await {
            Ok(existing) => {
                for a in existing
                    .iter()
                    .filter(|a| a.is_managed() && !names.contains(&a.name))
                {
                    tracing::warn!(
                        alarm = a.name,
                        "a loop-managed alarm is no longer in the catalogue; left in place"
                    );
                    report.orphaned.push(OrphanedAlarm {
                        alarm_name: a.name.clone(),
                        reason: format!(
                            "no servedPackage alarm of this name in the catalogue {}; left in place (tag driftloop:model names its model) - delete it with aws cloudwatch delete-alarms --alarm-names {}",
                            loaded.describe(),
                            a.name
                        ),
                    });
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(s) = &settings.dashboard {
        let b = body(&loaded.catalogue, &loaded.location, s);
        let mut outcome = DashboardOutcome {
            name: s.name.clone(),
            written: false,
            widgets: b.widgets,
            models_shown: b.models_shown,
            left_off: b.left_off.clone(),
            validation: Vec::new(),
            error: None,
        };
        if !b.left_off.is_empty() {
            tracing::warn!(left_off = ?b.left_off, "models left off the dashboard (CloudWatch's limits)");
        }
        let text = b.body.to_string();
        match deps.dashboards.get_dashboard(&s.name).await {
            Ok(existing) => {
                let same = existing
                    .as_deref()
                    .and_then(|e| serde_json::from_str::<Value>(e).ok())
                    .is_some_and(|e| e == b.body);
                if !same {
                    match deps.dashboards.put_dashboard(&s.name, &text).await {
                        Ok(messages) => {
                            outcome.written = true;
                            outcome.validation = messages;
                        }
                        Err(e) => {
                            outcome.error = Some(e.to_string());
                            errors.push(e);
                        }
                    }
                }
            }
            Err(e) => {
                outcome.error = Some(e.to_string());
                errors.push(e);
            }
        }
        report.dashboard = Some(outcome);
    }
    (report, errors)
}
