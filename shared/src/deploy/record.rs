//! The outcome of a deployment, recorded on the package: `CustomerMetadataProperties`
//! `driftloop:deploy:<stage>` = `<state>|<endpoint config>|<RFC 3339 time>[|<detail>]` (the detail:
//! SageMaker's reason for `failed`/`rolledBack`, the config the endpoint moved from for
//! `updating`), where a person sees it in Studio or `DescribeModelPackage`, and where the next
//! convergence reads it.
//!
//! How a failed or rolled-back update is detected: when driftloop asks for an update to config
//! `C` it records `updating|C|t`. SageMaker then settles the endpoint back to `InService`:
//! - on `C` → the update succeeded (`deployed|C|t`, and only now the alarm follows the package);
//! - on the config it served when the update was asked for (recorded with `updating`), with the
//!   update no longer pending → the update did not land. (On a third config, something else moved
//!   the endpoint since: the record is stale and the update is asked for again.) DescribeEndpoint's `FailureReason` is SageMaker's reason. It was rolled back
//!   when the deployment carried rollback alarms and SageMaker does not report a plain failure (no
//!   reason, or a reason naming the alarm / the rollback), else it failed. Either way the package
//!   is recorded `failed|C|t|reason` or `rolledBack|C|t|reason` and not retried on that stage.
//!
//! A recorded failure of `C` holds the package on that stage until something changes: another
//! package becomes the stage's desired one (a new approval, a rejection), the settings change (a
//! new config name), an explicit `Model Promotion Requested` for the stage, or a person removes the
//! key.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::{EndpointState, Stage};
use crate::contract::{Detail, DetailType};

/// SageMaker's limit on a `CustomerMetadataProperties` value.
pub const MAX_VALUE: usize = 256;

/// The metadata key of a stage's deployment outcome.
pub fn deploy_key(stage: Stage) -> String {
    format!("driftloop:deploy:{}", stage.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RecordState {
    /// driftloop asked SageMaker to move the endpoint to the config.
    Updating,
    /// The endpoint serves the config.
    Deployed,
    /// The update ended with the endpoint on its previous config.
    Failed,
    /// A blue/green deployment rolled back on its alarms.
    RolledBack,
}

impl RecordState {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordState::Updating => "updating",
            RecordState::Deployed => "deployed",
            RecordState::Failed => "failed",
            RecordState::RolledBack => "rolledBack",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            RecordState::Updating,
            RecordState::Deployed,
            RecordState::Failed,
            RecordState::RolledBack,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// A failure that holds the package on the stage.
    pub fn holds(&self) -> bool {
        matches!(self, RecordState::Failed | RecordState::RolledBack)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    pub state: RecordState,
    pub config: String,
    pub at: DateTime<Utc>,
    /// The 4th field: SageMaker's reason (failed, rolled back) or the previous config (updating).
    pub reason: Option<String>,
}

impl DeployRecord {
    pub fn new(state: RecordState, config: &str, at: DateTime<Utc>) -> Self {
        DeployRecord {
            state,
            config: config.to_owned(),
            at,
            reason: None,
        }
    }

    /// `updating|C|t|previous`: the request to move from `previous` to `config`.
    pub fn updating(config: &str, previous: Option<&str>, at: DateTime<Utc>) -> Self {
        DeployRecord {
            reason: previous.map(str::to_owned),
            ..DeployRecord::new(RecordState::Updating, config, at)
        }
    }

    /// The config the endpoint served when the update was asked for (`updating` records).
    pub fn previous_config(&self) -> Option<&str> {
        match self.state {
            RecordState::Updating => self.reason.as_deref(),
            _ => None,
        }
    }

    /// The metadata value, within [`MAX_VALUE`] characters (the reason is cut first).
    pub fn to_value(&self) -> String {
        let head = format!(
            "{}|{}|{}",
            self.state.as_str(),
            self.config,
            self.at.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        let mut value = match &self.reason {
            None => head,
            Some(r) => format!("{head}|{}", r.replace(['\n', '\r'], " ")),
        };
        if value.chars().count() > MAX_VALUE {
            value = value.chars().take(MAX_VALUE - 1).collect::<String>() + "…";
        }
        value
    }

    /// `None` for a value that is not a record (a person's edit, an older format).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.splitn(4, '|');
        let state = RecordState::parse(parts.next()?)?;
        let config = parts.next()?.to_owned();
        let at = DateTime::parse_from_rfc3339(parts.next()?)
            .ok()?
            .with_timezone(&Utc);
        let reason = parts.next().map(str::to_owned);
        (!config.is_empty()).then_some(DeployRecord {
            state,
            config,
            at,
            reason,
        })
    }
}

/// What became of an update to `asked` that the endpoint is no longer busy with; `None` while it
/// is still in flight or when it landed.
pub fn failed_update(
    asked: &DeployRecord,
    current: &EndpointState,
    had_rollback_alarms: bool,
) -> Option<(RecordState, String)> {
    let settled = current.status == "InService" && current.pending_config_name.is_none();
    let back_on_previous = match asked.previous_config() {
        Some(previous) => current.config_name.as_deref() == Some(previous),
        None => current.config_name.as_deref() != Some(asked.config.as_str()),
    };
    if asked.state != RecordState::Updating || !settled || !back_on_previous {
        return None;
    }
    let reason = current
        .failure_reason
        .clone()
        .filter(|r| !r.trim().is_empty());
    let names_rollback = reason.as_deref().is_some_and(|r| {
        let r = r.to_ascii_lowercase();
        r.contains("alarm") || r.contains("roll")
    });
    let state = if had_rollback_alarms && (reason.is_none() || names_rollback) {
        RecordState::RolledBack
    } else {
        RecordState::Failed
    };
    let serving = current.config_name.as_deref().unwrap_or("(none)");
    let reason = reason.unwrap_or_else(|| match state {
        RecordState::RolledBack => {
            format!("the deployment rolled back on its alarms; the endpoint serves {serving} again")
        }
        _ => format!("the update did not land; the endpoint serves {serving} again"),
    });
    Some((state, reason))
}

/// The `detail` of `Deployment Failed` / `Deployment Rolled Back`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentFailure {
    #[serde(skip)]
    pub rolled_back: bool,
    pub stage: Stage,
    pub endpoint: String,
    pub model_package_group_name: String,
    pub package_arn: String,
    pub package_version: Option<i64>,
    /// The endpoint config the update was asked to move to.
    pub endpoint_config: String,
    /// The config the endpoint serves (the previous one).
    pub serving_config: Option<String>,
    /// SageMaker's `FailureReason` (or what driftloop could tell).
    pub reason: String,
    /// When driftloop asked for the update.
    pub requested_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    /// The metadata key the outcome is recorded under, and how to retry.
    pub recorded_as: String,
    pub retry: String,
}

impl Detail for DeploymentFailure {
    fn detail_type(&self) -> DetailType {
        if self.rolled_back {
            DetailType::DeploymentRolledBack
        } else {
            DetailType::DeploymentFailed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(
        status: &str,
        config: &str,
        pending: Option<&str>,
        reason: Option<&str>,
    ) -> EndpointState {
        EndpointState {
            name: "e".into(),
            status: status.into(),
            config_name: Some(config.into()),
            pending_config_name: pending.map(Into::into),
            failure_reason: reason.map(Into::into),
        }
    }

    #[test]
    fn records_round_trip_and_stay_within_the_metadata_limit() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut r = DeployRecord::new(RecordState::Failed, "ep-v2-abc", at);
        r.reason = Some("Failed to pull | image".into());
        let v = r.to_value();
        assert_eq!(
            v,
            "failed|ep-v2-abc|2026-01-02T03:04:05Z|Failed to pull | image"
        );
        assert_eq!(DeployRecord::parse(&v), Some(r.clone()));
        r.reason = Some("x".repeat(1000));
        let long = r.to_value();
        assert_eq!(long.chars().count(), MAX_VALUE);
        assert_eq!(
            DeployRecord::parse(&long).unwrap().state,
            RecordState::Failed
        );
        assert_eq!(DeployRecord::parse("2026-01-01T00:00:00Z"), None);
        assert_eq!(DeployRecord::parse("weird|c|2026-01-01T00:00:00Z"), None);
        assert_eq!(deploy_key(Stage::Production), "driftloop:deploy:production");
    }

    #[test]
    fn a_settled_endpoint_on_another_config_is_a_failure_or_a_rollback() {
        let at = Utc::now();
        let asked = DeployRecord::updating("new", Some("old"), at);
        let failed_update =
            |_: &str, e: &EndpointState, alarms: bool| super::failed_update(&asked, e, alarms);
        assert_eq!(
            super::failed_update(&asked, &ep("InService", "third", None, Some("x")), false),
            None,
            "moved elsewhere since: a stale record, not a failure"
        );
        assert_eq!(
            DeployRecord::parse(&asked.to_value())
                .unwrap()
                .previous_config(),
            Some("old")
        );
        let busy = ep("Updating", "old", Some("new"), None);
        assert_eq!(failed_update("new", &busy, true), None, "still in flight");
        assert_eq!(
            failed_update("new", &ep("InService", "new", None, None), false),
            None
        );
        let (s, r) = failed_update(
            "new",
            &ep(
                "InService",
                "old",
                None,
                Some("Failed to download model data"),
            ),
            true,
        )
        .unwrap();
        assert_eq!(
            (s, r.as_str()),
            (RecordState::Failed, "Failed to download model data")
        );
        let (s, r) = failed_update("new", &ep("InService", "old", None, None), true).unwrap();
        assert_eq!(s, RecordState::RolledBack);
        assert!(r.contains("serves old"), "{r}");
        let (s, _) = failed_update(
            "new",
            &ep(
                "InService",
                "old",
                None,
                Some("Alarm demo-5xx in ALARM; rolled back"),
            ),
            true,
        )
        .unwrap();
        assert_eq!(s, RecordState::RolledBack);
        let (s, _) = failed_update("new", &ep("InService", "old", None, None), false).unwrap();
        assert_eq!(
            s,
            RecordState::Failed,
            "no rollback alarms: a plain failure"
        );
    }
}
