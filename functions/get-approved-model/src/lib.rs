//! get-approved-model: the latest approved model package of a SageMaker Model Registry group.
//!
//! Input: `{"model_package_group_name": "..."}` (or `ModelPackageGroupName`); without either,
//! the `MODEL_PACKAGE_GROUP_NAME` environment variable. Optional `"baseline_source"`
//! (`DriftCheckBaselines` | `ModelMetrics`, default `BASELINE_SOURCE`, else
//! `DriftCheckBaselines`): which of the package's baseline sets is read first. Other keys (a
//! SageMaker Pipelines `LambdaStep` passes its inputs, e.g. `lambda_execution_role`) are ignored.
//! Output: [`ApprovedModel`] — every key the batch-monitoring sample's `LambdaStep` declares as a
//! `String` output is a string (empty when absent), never `null`.

use std::sync::Arc;

use driftloop::config::{ConfigError, Env, Lookup};
use driftloop::error::{AwsError, Classify, ErrorClass};
use driftloop::events::describe_shape;
use driftloop::registry::{ApprovedModel, BaselineSource, ModelRegistry, latest_approved};
use serde_json::Value;

/// Environment: `MODEL_PACKAGE_GROUP_NAME` (optional) — the group used when the event names none;
/// `BASELINE_SOURCE` (optional, `DriftCheckBaselines` | `ModelMetrics`, default
/// `DriftCheckBaselines`) — which baseline set is read first when the event does not say.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub default_group: Option<String>,
    pub baseline_source: BaselineSource,
}

pub const GROUP_VAR: &str = "MODEL_PACKAGE_GROUP_NAME";
pub const BASELINE_SOURCE_VAR: &str = "BASELINE_SOURCE";

fn parse_baseline_source(v: &str) -> Result<BaselineSource, String> {
    BaselineSource::parse(v).ok_or_else(|| "expected DriftCheckBaselines or ModelMetrics".into())
}

impl Config {
    pub fn from_env(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        Ok(Config {
            default_group: env.validated(GROUP_VAR, |v| validate_group(v).map(str::to_owned))?,
            baseline_source: env
                .validated(BASELINE_SOURCE_VAR, parse_baseline_source)?
                .unwrap_or_default(),
        })
    }
}

pub struct Deps {
    pub registry: Arc<dyn ModelRegistry>,
    pub config: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no model package group: pass \"model_package_group_name\" (or \"ModelPackageGroupName\") in the event, or set {GROUP_VAR}"
    )]
    MissingGroup,
    #[error("invalid event: {0}")]
    InvalidInput(String),
    #[error("model package group {group:?} has no approved, completed model package")]
    NoApprovedPackage { group: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Aws(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Error::MissingGroup => "MissingGroup",
            Error::InvalidInput(_) => "InvalidInput",
            Error::NoApprovedPackage { .. } => "NoApprovedPackage",
            Error::Aws(e) => e.code(),
        }
    }
}

driftloop::impl_diagnostic!(Error);

/// A group name (1–63 of `[a-zA-Z0-9-]`, not starting or ending with `-`) or a group ARN.
fn validate_group(group: &str) -> Result<&str, String> {
    let name = group
        .rsplit_once(":model-package-group/")
        .map_or(group, |(_, n)| n);
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(group)
    } else {
        Err("expected a model package group name (1-63 letters, digits and hyphens) or ARN".into())
    }
}

/// The group the event asks for, else the configured default.
pub fn requested_group(event: &Value, config: &Config) -> Result<String, Error> {
    let named = match event {
        Value::Null => None,
        Value::Object(map) => ["model_package_group_name", "ModelPackageGroupName"]
            .iter()
            .find_map(|k| map.get(*k).map(|v| (*k, v))),
        other => {
            return Err(Error::InvalidInput(format!(
                "expected an object like {{\"model_package_group_name\": \"...\"}}, got {}",
                describe_shape(other)
            )));
        }
    };
    match named {
        Some((_, Value::String(s))) if !s.trim().is_empty() => validate_group(s.trim())
            .map(str::to_owned)
            .map_err(|reason| Error::InvalidInput(format!("{s:?}: {reason}"))),
        Some((_, Value::Null)) | None => config.default_group.clone().ok_or(Error::MissingGroup),
        Some((_, Value::String(_))) => config.default_group.clone().ok_or(Error::MissingGroup),
        Some((key, other)) => Err(Error::InvalidInput(format!(
            "\"{key}\" must be a string, got {}",
            describe_shape(other)
        ))),
    }
}

/// The baseline source the event asks for, else the configured one.
pub fn requested_baseline_source(event: &Value, config: &Config) -> Result<BaselineSource, Error> {
    let named = ["baseline_source", "BaselineSource"]
        .iter()
        .find_map(|k| event.get(*k).map(|v| (*k, v)));
    match named {
        None | Some((_, Value::Null)) => Ok(config.baseline_source),
        Some((_, Value::String(s))) => parse_baseline_source(s)
            .map_err(|reason| Error::InvalidInput(format!("baseline source {s:?}: {reason}"))),
        Some((key, other)) => Err(Error::InvalidInput(format!(
            "\"{key}\" must be a string, got {}",
            describe_shape(other)
        ))),
    }
}

pub async fn handle(event: Value, deps: &Deps) -> Result<ApprovedModel, Error> {
    let group = requested_group(&event, &deps.config)?;
    let source = requested_baseline_source(&event, &deps.config)?;
    let package = latest_approved(deps.registry.as_ref(), &group).await?;
    let package = package.ok_or_else(|| Error::NoApprovedPackage {
        group: group.clone(),
    })?;
    tracing::info!(
        group,
        version = package.summary.version,
        arn = package.summary.arn,
        "latest approved package"
    );
    Ok(ApprovedModel::new(&package, source))
}

#[cfg(test)]
mod tests;
