//! The baselines a run checks against, fetched once per invocation:
//!
//! * real-time mode ([`resolve_served_baselines`]): those of the model package the monitored
//!   endpoint's variant serves now ([`super::served`]: endpoint → current endpoint config → the
//!   variant's model → its `ModelPackageName`), so production is checked against production's
//!   package even when staging already serves a newer one — `source: "endpoint"`;
//! * otherwise, and as the reported fallback when the endpoint does not exist, its model names no
//!   package (deployed outside the Model Registry) or the served package cannot be described: those
//!   of the group's latest approved package (as get-approved-model picks it) —
//!   `source: "latestApproved"` with the `fallbackReason`.
//!
//! A baseline that cannot be used is reported and left out; only a retryable AWS error fails the
//! run.

use serde::Serialize;
use serde_json::{Value, json};

use super::layout::Target;
use super::served::{Served, ServingReads, Unserved, served_package};
use crate::error::{AwsError, Classify, ErrorClass};
use crate::metrics::quality::calibration::Calibration;
use crate::metrics::{BaselineConstraints, BaselineStatistics};

/// The model package's `CustomerMetadataProperties` key whose value is the S3 URI of its
/// reference calibration (`calibration.json` of `driftloop-metrics calibrate`). Metadata rather
/// than a `DriftCheckBaselines` slot: those slots are typed Model Monitor documents (statistics,
/// constraints) that SageMaker Studio and Model Monitor read; customer metadata is free-form,
/// travels with the package (and so with the served model), and can be added to an already
/// registered package with `UpdateModelPackage`.
pub const CALIBRATION_METADATA_KEY: &str = "driftloop:calibration";
use crate::registry::{ModelPackage, ModelRegistry, latest_approved};
use crate::storage::{ObjectStore, S3Uri};

mod prediction;
pub use prediction::{
    PREDICTION_BASELINE_METADATA_KEY, PredictionBaseline, PredictionSource,
    resolve_prediction_baseline,
};

/// Where the package of a run's baselines comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BaselineSource {
    /// The package the monitored endpoint's variant serves.
    Endpoint,
    /// The group's latest approved package.
    #[default]
    LatestApproved,
}

impl BaselineSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            BaselineSource::Endpoint => "endpoint",
            BaselineSource::LatestApproved => "latestApproved",
        }
    }
}

/// Baselines of the package a run checks against.
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    pub package_arn: Option<String>,
    pub source: BaselineSource,
    /// The endpoint → config → model → package chain, when it was followed to the end.
    pub served: Option<Served>,
    /// Why the served package is not used (`source` is then `LatestApproved`).
    pub fallback_reason: Option<String>,
    pub dq_statistics: Option<BaselineStatistics>,
    /// Where `dq_statistics` was read from.
    pub dq_statistics_uri: Option<String>,
    pub dq_constraints: Option<BaselineConstraints>,
    pub mq_constraints: Option<Value>,
    /// The reference calibration for label-free estimation: the package's
    /// `CustomerMetadataProperties` key [`CALIBRATION_METADATA_KEY`] names its S3 URI.
    pub calibration: Option<Calibration>,
    /// The package's [`PREDICTION_BASELINE_METADATA_KEY`] (read by [`resolve_prediction_baseline`]).
    pub prediction_uri: Option<String>,
    /// Prediction drift's baseline ([`resolve_prediction_baseline`]).
    pub prediction: Option<PredictionBaseline>,
    /// Every baseline file named by the package, in the order read.
    pub uris: Vec<String>,
    /// Why a baseline is not used.
    pub problems: Vec<String>,
    /// The texts the parsed baselines above were read from (the scale-out mode hands them to its
    /// workers: [`super::scaleout`]).
    pub texts: BaselineTexts,
}

/// The texts of a package's usable baseline files, by slot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineTexts {
    pub dq_statistics: Option<String>,
    pub dq_constraints: Option<String>,
    pub mq_constraints: Option<String>,
    pub calibration: Option<String>,
}

impl Baselines {
    /// The `baseline` of the output, the event and the summary.
    pub fn describe(&self, group: Option<&str>) -> Value {
        json!({
            "modelPackageGroupName": group,
            "modelPackageArn": self.package_arn,
            "source": self.source,
            "fallbackReason": self.fallback_reason,
            "served": self.served,
            "uris": self.uris,
            "dataQuality": self.dq_constraints.is_some(),
            "modelQuality": self.mq_constraints.is_some(),
            "calibration": self.calibration.is_some(),
            "prediction": self.prediction.as_ref().map(|p| json!({
                "source": p.source,
                "uri": p.uri,
                "feature": p.feature.name,
            })),
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
    read_package_baselines(&package, store, &mut b).await?;
    for p in &b.problems {
        tracing::warn!(group, problem = p, "baseline not used");
    }
    Ok(b)
}

/// The baselines of the package `target` serves; falls back (reported in `fallback_reason`) to
/// [`resolve_baselines`] when that package is not known.
pub async fn resolve_served_baselines(
    registry: &dyn ModelRegistry,
    serving: &dyn ServingReads,
    store: &dyn ObjectStore,
    group: &str,
    target: &Target,
) -> Result<Baselines, AwsError> {
    let served = match target {
        Target::Endpoint {
            endpoint_name,
            variant_name,
        } => served_package(serving, endpoint_name, variant_name).await?,
        Target::BatchTransform => Err(Unserved::NotEndpointMode),
    };
    let reason = match served {
        Ok(served) => match registry.describe_package(&served.model_package).await {
            Ok(package) => {
                let mut b = Baselines {
                    source: BaselineSource::Endpoint,
                    ..Baselines::default()
                };
                if package.summary.group != group {
                    b.problems.push(format!(
                        "the endpoint serves a package of group {:?}, not of the configured group {group:?}; its baselines are used",
                        package.summary.group
                    ));
                }
                if !served.other_packages.is_empty() {
                    b.problems.push(format!(
                        "model {:?} names more packages ({:?}); the first container's {:?} is monitored",
                        served.model_name, served.other_packages, served.model_package
                    ));
                }
                read_package_baselines(&package, store, &mut b).await?;
                if b.uris.is_empty() {
                    b.problems.push(format!(
                        "the served package {} names no data-quality or model-quality baseline",
                        package.summary.arn
                    ));
                }
                tracing::info!(
                    endpoint = served.endpoint_name,
                    model = served.model_name,
                    package = b.package_arn,
                    "baselines of the served package"
                );
                b.served = Some(served);
                for p in &b.problems {
                    tracing::warn!(group, problem = p, "baseline not used");
                }
                return Ok(b);
            }
            Err(e) if e.class() == ErrorClass::Permanent => format!(
                "the served package {:?} (model {:?}) cannot be described: {e}",
                served.model_package, served.model_name
            ),
            Err(e) => return Err(e),
        },
        Err(u) => u.to_string(),
    };
    tracing::warn!(
        group,
        reason,
        "served package unknown; using the group's latest approved package"
    );
    let mut b = resolve_baselines(registry, store, group).await?;
    b.fallback_reason = Some(reason);
    Ok(b)
}

/// Reads the baseline files `package` names into `b`.
async fn read_package_baselines(
    package: &ModelPackage,
    store: &dyn ObjectStore,
    b: &mut Baselines,
) -> Result<(), AwsError> {
    b.package_arn = Some(package.summary.arn.clone());
    if let Some(dq) = package.data_quality_baseline() {
        if let Some(uri) = &dq.statistics {
            b.uris.push(uri.clone());
            let text = get_text(store, uri).await?;
            match text
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|t| BaselineStatistics::parse(t))
            {
                Ok(s) => {
                    b.dq_statistics = Some(s);
                    b.dq_statistics_uri = Some(uri.clone());
                    b.texts.dq_statistics = text.ok();
                }
                Err(e) => b
                    .problems
                    .push(format!("data-quality statistics {uri}: {e}")),
            }
        }
        if let Some(uri) = &dq.constraints {
            b.uris.push(uri.clone());
            let text = get_text(store, uri).await?;
            match text
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|t| BaselineConstraints::parse(t))
            {
                Ok(c) => {
                    b.dq_constraints = Some(c);
                    b.texts.dq_constraints = text.ok();
                }
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
        let text = get_text(store, &uri).await?;
        match text
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|t| serde_json::from_str::<Value>(t).map_err(|e| e.to_string()))
        {
            Ok(v) => {
                b.mq_constraints = Some(v);
                b.texts.mq_constraints = text.ok();
            }
            Err(e) => b
                .problems
                .push(format!("model-quality constraints {uri}: {e}")),
        }
    }
    if let Some(uri) = package.customer_metadata.get(CALIBRATION_METADATA_KEY) {
        b.uris.push(uri.clone());
        let text = get_text(store, uri).await?;
        match text
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|t| Calibration::parse(t))
        {
            Ok(c) => {
                b.calibration = Some(c);
                b.texts.calibration = text.ok();
            }
            Err(e) => b.problems.push(format!(
                "calibration {uri} ({CALIBRATION_METADATA_KEY}): {e}"
            )),
        }
    }
    if let Some(uri) = package
        .customer_metadata
        .get(PREDICTION_BASELINE_METADATA_KEY)
    {
        b.prediction_uri = Some(uri.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
