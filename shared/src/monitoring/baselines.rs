//! The baselines a run checks against: those of the model package group's latest approved package
//! (as get-approved-model picks it), fetched once per invocation. A baseline that cannot be used
//! is reported and left out; only a retryable AWS error fails the run.

use serde_json::{Value, json};

use crate::error::{AwsError, Classify, ErrorClass};
use crate::metrics::{BaselineConstraints, BaselineStatistics};
use crate::registry::{ModelRegistry, latest_approved};
use crate::storage::{ObjectStore, S3Uri};

/// Baselines of the approved package.
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    pub package_arn: Option<String>,
    pub dq_statistics: Option<BaselineStatistics>,
    pub dq_constraints: Option<BaselineConstraints>,
    pub mq_constraints: Option<Value>,
    /// Every baseline file named by the package, in the order read.
    pub uris: Vec<String>,
    /// Why a baseline is not used.
    pub problems: Vec<String>,
}

impl Baselines {
    /// The `baseline` of the output, the event and the summary.
    pub fn describe(&self, group: &str) -> Value {
        json!({
            "modelPackageGroupName": group,
            "modelPackageArn": self.package_arn,
            "uris": self.uris,
            "dataQuality": self.dq_constraints.is_some(),
            "modelQuality": self.mq_constraints.is_some(),
            "problems": self.problems,
        })
    }
}

/// The text of a baseline file; `Ok(Err(problem))` when it cannot be used (a bad URI, a missing
/// or non-UTF-8 object, any permanent error).
pub async fn get_text(
    store: &dyn ObjectStore,
    uri: &str,
) -> Result<Result<String, String>, AwsError> {
    let parsed = match S3Uri::parse(uri) {
        Ok(u) => u,
        Err(e) => return Ok(Err(e)),
    };
    match store.get(&parsed).await {
        Ok(b) => Ok(String::from_utf8(b).map_err(|_| format!("{uri} is not UTF-8"))),
        Err(e) if e.class() == ErrorClass::Permanent => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Problems with the baselines (no approved package, a missing or unreadable file) are reported
/// and the run goes on without that baseline; retryable AWS errors fail the run.
pub async fn resolve_baselines(
    registry: &dyn ModelRegistry,
    store: &dyn ObjectStore,
    group: &str,
) -> Result<Baselines, AwsError> {
    let mut b = Baselines::default();
    let package = match latest_approved(registry, group).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            b.problems.push(format!(
                "model package group {group:?} has no approved, completed package"
            ));
            return Ok(b);
        }
        Err(e) if e.class() == ErrorClass::Permanent => {
            b.problems.push(e.to_string());
            return Ok(b);
        }
        Err(e) => return Err(e),
    };
    b.package_arn = Some(package.summary.arn.clone());
    if let Some(dq) = package.data_quality_baseline() {
        if let Some(uri) = &dq.statistics {
            b.uris.push(uri.clone());
            match get_text(store, uri)
                .await?
                .and_then(|t| BaselineStatistics::parse(&t))
            {
                Ok(s) => b.dq_statistics = Some(s),
                Err(e) => b
                    .problems
                    .push(format!("data-quality statistics {uri}: {e}")),
            }
        }
        if let Some(uri) = &dq.constraints {
            b.uris.push(uri.clone());
            match get_text(store, uri)
                .await?
                .and_then(|t| BaselineConstraints::parse(&t))
            {
                Ok(c) => b.dq_constraints = Some(c),
                Err(e) => b
                    .problems
                    .push(format!("data-quality constraints {uri}: {e}")),
            }
        }
    }
    if let Some(uri) = package
        .model_quality_baseline()
        .and_then(|m| m.constraints.clone())
    {
        b.uris.push(uri.clone());
        match get_text(store, &uri)
            .await?
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => b.mq_constraints = Some(v),
            Err(e) => b
                .problems
                .push(format!("model-quality constraints {uri}: {e}")),
        }
    }
    for p in &b.problems {
        tracing::warn!(group, problem = p, "baseline not used");
    }
    Ok(b)
}
