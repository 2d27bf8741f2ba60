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
use crate::metrics::dq::baseline::{BaselineFeatureStats, MonitoringConfig};
use crate::metrics::quality::calibration::Calibration;
use crate::metrics::{BaselineConstraints, BaselineStatistics};

/// The model package's `CustomerMetadataProperties` key whose value is the S3 URI of its
/// reference calibration (`calibration.json` of `driftloop-metrics calibrate`). Metadata rather
/// than a `DriftCheckBaselines` slot: those slots are typed Model Monitor documents (statistics,
/// constraints) that SageMaker Studio and Model Monitor read; customer metadata is free-form,
/// travels with the package (and so with the served model), and can be added to an already
/// registered package with `UpdateModelPackage`.
pub const CALIBRATION_METADATA_KEY: &str = "driftloop:calibration";
/// The model package's `CustomerMetadataProperties` key whose value is the S3 URI of its
/// prediction baseline: a Model-Monitor-shaped `statistics.json` holding the model output's
/// distribution on a reference window (the `prediction_statistics.json` of `driftloop-metrics run
/// --prediction-drift`). Metadata for the same reasons as [`CALIBRATION_METADATA_KEY`]: it follows
/// the served model, and no `DriftCheckBaselines` slot holds an output distribution.
pub const PREDICTION_BASELINE_METADATA_KEY: &str = "driftloop:prediction-baseline";
use crate::registry::{ModelPackage, ModelRegistry, latest_approved};
use crate::storage::{ObjectStore, S3Uri};

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

/// Where a run's prediction baseline comes from ([`resolve_prediction_baseline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PredictionSource {
    /// `PREDICTION_BASELINE_S3_URI`: one file for every package.
    Environment,
    /// The package's [`PREDICTION_BASELINE_METADATA_KEY`].
    Package,
    /// The `PREDICTION_FEATURE` column of the package's data-quality `statistics.json`.
    DataQualityBaseline,
}

/// The model output's baseline for prediction drift, and the config its drift is checked with.
#[derive(Debug, Clone)]
pub struct PredictionBaseline {
    pub source: PredictionSource,
    /// The file it was read from.
    pub uri: String,
    pub feature: BaselineFeatureStats,
    /// The data-quality constraints' `monitoring_config` (with the overrides of a feature named
    /// like this one), else the defaults.
    pub config: MonitoringConfig,
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

/// Prediction drift's baseline, the first of:
/// 1. `env_uri` (`PREDICTION_BASELINE_S3_URI`): one file whatever the package;
/// 2. the file the package names in [`PREDICTION_BASELINE_METADATA_KEY`] (it follows the served
///    model, as the calibration does);
/// 3. with `feature` set (`PREDICTION_FEATURE`), that column of the package's data-quality
///    `statistics.json` (a Model Monitor baseline whose dataset started with the model output).
///
/// In a file, the model output is the feature `feature`, else `prediction`, else the file's only
/// feature ([`BaselineStatistics::prediction_feature`]). A baseline that cannot be used is
/// reported in `problems` and left out; only a retryable AWS error fails the run.
pub async fn resolve_prediction_baseline(
    store: &dyn ObjectStore,
    b: &mut Baselines,
    env_uri: Option<&str>,
    feature: Option<&str>,
) -> Result<(), AwsError> {
    let (source, uri) = match (env_uri, b.prediction_uri.clone()) {
        (Some(u), _) => (PredictionSource::Environment, Some(u.to_owned())),
        (None, Some(u)) => (PredictionSource::Package, Some(u)),
        (None, None) if feature.is_some() => (PredictionSource::DataQualityBaseline, None),
        (None, None) => return Ok(()),
    };
    let problem = |b: &mut Baselines, p: String| {
        tracing::warn!(problem = p, "prediction baseline not used");
        b.problems.push(p);
    };
    let (stats, uri) = match uri {
        Some(uri) => {
            if source == PredictionSource::Package {
                b.uris.push(uri.clone());
            }
            match get_text(store, &uri)
                .await?
                .and_then(|t| BaselineStatistics::parse(&t))
            {
                Ok(s) => (s, uri),
                Err(e) => {
                    let whose = match source {
                        PredictionSource::Environment => "PREDICTION_BASELINE_S3_URI",
                        _ => PREDICTION_BASELINE_METADATA_KEY,
                    };
                    problem(b, format!("prediction baseline {uri} ({whose}): {e}"));
                    return Ok(());
                }
            }
        }
        None => match (b.dq_statistics.clone(), b.dq_statistics_uri.clone()) {
            (Some(s), Some(uri)) => (s, uri),
            _ => {
                problem(
                    b,
                    format!(
                        "PREDICTION_FEATURE={:?}: the package has no data-quality statistics to take the prediction baseline from",
                        feature.unwrap_or_default()
                    ),
                );
                return Ok(());
            }
        },
    };
    let f = match stats.prediction_feature(feature) {
        Ok(f) => f.clone(),
        Err(e) => {
            let hint = if feature.is_some() {
                ""
            } else {
                " (set PREDICTION_FEATURE)"
            };
            problem(b, format!("prediction baseline {uri}: {e}{hint}"));
            return Ok(());
        }
    };
    let config = b
        .dq_constraints
        .as_ref()
        .map_or_else(MonitoringConfig::default, |c| c.config_of(&f.name));
    b.prediction = Some(PredictionBaseline {
        source,
        uri,
        feature: f,
        config,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::{DeploymentSpec, EndpointConfigSpec, Hosting, ModelSpec};
    use crate::doubles::{InMemoryHosting, InMemoryRegistry, InMemoryStore, package};
    use crate::registry::ApprovalStatus;

    const V1: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1";
    const V2: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/2";

    fn endpoint(name: &str) -> Target {
        Target::Endpoint {
            endpoint_name: name.to_owned(),
            variant_name: "AllTraffic".to_owned(),
        }
    }

    /// Group `churn` with v1 and v2 approved (v2 the latest), each with its own model-quality
    /// constraints file (accuracy threshold 0.1 × version), so a test sees whose were read.
    fn world() -> (InMemoryRegistry, InMemoryHosting, InMemoryStore) {
        let registry = InMemoryRegistry::default();
        let store = InMemoryStore::default();
        for v in [1, 2] {
            let mut p = package("churn", v, v * 10, ApprovalStatus::Approved);
            p.drift_check_data_quality = Default::default();
            p.drift_check_model_quality.constraints =
                Some(format!("s3://baselines/churn/{v}/mq.json"));
            registry.add(p);
            store.insert(
                &format!("s3://baselines/churn/{v}/mq.json"),
                format!(
                    r#"{{"binary_classification_constraints":{{"accuracy":{{"threshold":{},"comparison_operator":"LessThanThreshold"}}}}}}"#,
                    v as f64 / 10.0
                ),
            );
        }
        (registry, InMemoryHosting::default(), store)
    }

    fn threshold(b: &Baselines) -> f64 {
        b.mq_constraints.as_ref().unwrap()["binary_classification_constraints"]["accuracy"]
            ["threshold"]
            .as_f64()
            .unwrap()
    }

    async fn resolve(
        r: &InMemoryRegistry,
        h: &InMemoryHosting,
        s: &InMemoryStore,
        target: &Target,
    ) -> Result<Baselines, AwsError> {
        resolve_served_baselines(r, h, s, "churn", target).await
    }

    #[tokio::test]
    async fn the_served_package_wins_over_the_latest_approved() {
        let (r, h, s) = world();
        h.serve("churn-prod", "churn-v1", V1);
        h.serve("churn-staging", "churn-v2", V2);
        let prod = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(prod.package_arn.as_deref(), Some(V1));
        assert_eq!(prod.source, BaselineSource::Endpoint);
        assert_eq!(threshold(&prod), 0.1);
        assert_eq!(prod.uris, ["s3://baselines/churn/1/mq.json"]);
        assert!(prod.problems.is_empty(), "{:?}", prod.problems);
        assert_eq!(prod.fallback_reason, None);
        let served = prod.served.as_ref().unwrap();
        assert_eq!(
            (
                served.endpoint_config_name.as_str(),
                served.model_name.as_str()
            ),
            ("churn-prod-churn-v1", "churn-v1")
        );
        let d = prod.describe(Some("churn"));
        assert_eq!(d["source"], "endpoint");
        assert_eq!(d["modelPackageArn"], V1);
        assert_eq!(d["served"]["modelName"], "churn-v1");
        assert_eq!(d["fallbackReason"], Value::Null);
        // Staging, each with its own package.
        let staging = resolve(&r, &h, &s, &endpoint("churn-staging"))
            .await
            .unwrap();
        assert_eq!(staging.package_arn.as_deref(), Some(V2));
        assert_eq!(threshold(&staging), 0.2);
    }

    #[tokio::test]
    async fn a_pending_config_is_not_the_served_one() {
        let (r, h, s) = world();
        h.serve("churn-prod", "churn-v1", V1);
        h.ensure_model(&ModelSpec {
            name: "churn-v2".into(),
            package_arn: V2.into(),
            execution_role_arn: "role".into(),
        })
        .await
        .unwrap();
        h.ensure_endpoint_config(&EndpointConfigSpec {
            name: "churn-prod-v2".into(),
            model_name: "churn-v2".into(),
            variant_name: "AllTraffic".into(),
            instance_type: "ml.m5.large".into(),
            instance_count: 1,
            capture: None,
        })
        .await
        .unwrap();
        h.hold_updates(true);
        h.update_endpoint(
            "churn-prod",
            "churn-prod-v2",
            &DeploymentSpec {
                blue_green: None,
                rollback_alarms: vec![],
            },
        )
        .await
        .unwrap();
        let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(
            b.package_arn.as_deref(),
            Some(V1),
            "the update is still in flight"
        );
        h.finish("churn-prod");
        let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(b.package_arn.as_deref(), Some(V2));
        assert_eq!(b.source, BaselineSource::Endpoint);
    }

    #[tokio::test]
    async fn a_missing_endpoint_falls_back_to_the_latest_approved_and_says_why() {
        let (r, h, s) = world();
        let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(b.package_arn.as_deref(), Some(V2));
        assert_eq!(b.source, BaselineSource::LatestApproved);
        assert_eq!(threshold(&b), 0.2);
        let reason = b.fallback_reason.clone().unwrap();
        assert!(reason.contains("\"churn-prod\" does not exist"), "{reason}");
        let d = b.describe(Some("churn"));
        assert_eq!(d["source"], "latestApproved");
        assert_eq!(d["fallbackReason"], reason.as_str());
        assert_eq!(d["served"], Value::Null);
        assert!(b.problems.is_empty(), "{:?}", b.problems);
    }

    #[tokio::test]
    async fn a_model_without_a_package_falls_back() {
        let (r, h, s) = world();
        h.serve("churn-prod", "churn-v1", V1);
        {
            let mut st = h.state.lock().unwrap();
            st.models.remove("churn-v1");
        }
        h.add_unregistered_model("churn-v1");
        let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(b.source, BaselineSource::LatestApproved);
        assert_eq!(b.package_arn.as_deref(), Some(V2));
        assert!(
            b.fallback_reason
                .as_deref()
                .unwrap()
                .contains("\"churn-v1\" names no ModelPackageName"),
            "{:?}",
            b.fallback_reason
        );
        // A model deleted under a running endpoint.
        h.state.lock().unwrap().unregistered_models.clear();
        let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert!(
            b.fallback_reason.as_deref().unwrap().contains(
                "model \"churn-v1\" of endpoint config \"churn-prod-churn-v1\" does not exist"
            ),
            "{:?}",
            b.fallback_reason
        );
    }

    #[tokio::test]
    async fn other_broken_chains_fall_back_with_their_reason() {
        let (r, h, s) = world();
        h.serve("churn-prod", "churn-v1", V1);
        // Another variant name.
        let b = resolve(
            &r,
            &h,
            &s,
            &Target::Endpoint {
                endpoint_name: "churn-prod".into(),
                variant_name: "Blue".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            b.fallback_reason.as_deref(),
            Some(
                "endpoint config \"churn-prod-churn-v1\" has no production variant \"Blue\" (it has [\"AllTraffic\"])"
            )
        );
        // Batch transform has no endpoint.
        let b = resolve(&r, &h, &s, &Target::BatchTransform).await.unwrap();
        assert_eq!(b.package_arn.as_deref(), Some(V2));
        assert!(b.fallback_reason.unwrap().starts_with("batch transform"));
        // The served package was deleted from the registry.
        let h2 = InMemoryHosting::default();
        h2.serve(
            "churn-prod",
            "churn-v9",
            "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/9",
        );
        let b = resolve(&r, &h2, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(b.package_arn.as_deref(), Some(V2));
        assert!(b.fallback_reason.unwrap().contains("cannot be described"));
        // A permanent read error (access denied) is reported, not fatal.
        h.fail_next_read(AwsError::classify(
            "sagemaker",
            "DescribeEndpointConfig",
            Some("AccessDeniedException"),
            Some(400),
            "not authorized to perform sagemaker:DescribeEndpointConfig",
        ));
        let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(b.source, BaselineSource::LatestApproved);
        assert!(b.fallback_reason.unwrap().contains("not authorized"));
    }

    #[tokio::test]
    async fn a_throttled_read_fails_the_run_retryably() {
        let (r, h, s) = world();
        h.serve("churn-prod", "churn-v1", V1);
        h.fail_next_read(AwsError::classify(
            "sagemaker",
            "DescribeEndpoint",
            Some("ThrottlingException"),
            Some(400),
            "Rate exceeded",
        ));
        let e = resolve(&r, &h, &s, &endpoint("churn-prod"))
            .await
            .unwrap_err();
        assert_eq!(e.class(), ErrorClass::Retryable);
        // The next call goes through.
        let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(b.package_arn.as_deref(), Some(V1));
    }

    #[tokio::test]
    async fn a_served_package_without_baselines_is_used_and_reported() {
        let (r, h, s) = world();
        let mut bare = package("churn", 5, 50, ApprovalStatus::Approved);
        bare.drift_check_data_quality = Default::default();
        let arn = bare.summary.arn.clone();
        r.add(bare);
        h.serve("churn-prod", "churn-v5", &arn);
        let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(b.package_arn.as_deref(), Some(arn.as_str()));
        assert_eq!(b.source, BaselineSource::Endpoint);
        assert!(b.mq_constraints.is_none() && b.dq_constraints.is_none());
        assert_eq!(
            b.problems,
            [format!(
                "the served package {arn} names no data-quality or model-quality baseline"
            )]
        );
    }

    #[tokio::test]
    async fn a_package_of_another_group_is_used_and_reported() {
        let (r, h, s) = world();
        let other = package("fraud", 4, 0, ApprovalStatus::Approved);
        let arn = other.summary.arn.clone();
        r.add(other);
        h.serve("churn-prod", "fraud-v4", &arn);
        let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(b.package_arn.as_deref(), Some(arn.as_str()));
        assert_eq!(b.source, BaselineSource::Endpoint);
        assert!(
            b.problems.iter().any(|p| p.contains("group \"fraud\"")),
            "{:?}",
            b.problems
        );
    }

    /// A `prediction_statistics.json` of scores `0.00 .. 0.99` (the engine's own output), and a
    /// data-quality `statistics.json` whose first column `_c0` is the same score.
    fn prediction_files(store: &InMemoryStore) {
        use crate::metrics::{Engine, MonitorConfig};
        let mut e = Engine::new(MonitorConfig {
            data_quality: true,
            prediction_drift: true,
            ..MonitorConfig::default()
        });
        for i in 0..100u64 {
            let line = format!(
                r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{i}","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"e{i}","inferenceTime":"2024-01-01T00:00:00Z"}},"eventVersion":"0"}}"#,
                i as f64 / 100.0
            );
            e.push_capture_line(&line, "ref", i);
        }
        let r = e.finish().unwrap();
        store.insert(
            "s3://baselines/churn/1/prediction.json",
            r.prediction_statistics_json().unwrap().to_string(),
        );
        store.insert(
            "s3://baselines/churn/1/statistics.json",
            r.data_quality_statistics_json().unwrap().to_string(),
        );
        // The score `_c0` gets its own threshold; the others the global one.
        store.insert(
            "s3://baselines/churn/1/constraints.json",
            json!({"version": 0.0, "features": [
                {"name": "_c0", "inferred_type": "Fractional", "completeness": 1.0,
                 "monitoringConfigOverrides": {"comparison_threshold": 0.3}},
                {"name": "prediction", "inferred_type": "Fractional", "completeness": 1.0,
                 "monitoringConfigOverrides": {"comparison_threshold": 0.4}}],
             "monitoring_config": {"evaluate_constraints": "Enabled", "emit_metrics": "Enabled",
                "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.2,
                                             "comparison_method": "Simple"}}})
            .to_string(),
        );
    }

    /// v1 served, with data-quality baselines and (`metadata`) a `driftloop:prediction-baseline`.
    async fn served_v1(metadata: bool) -> (InMemoryStore, Baselines) {
        let (r, h, s) = (
            InMemoryRegistry::default(),
            InMemoryHosting::default(),
            InMemoryStore::default(),
        );
        let mut p = package("churn", 1, 10, ApprovalStatus::Approved);
        if metadata {
            p.customer_metadata.insert(
                PREDICTION_BASELINE_METADATA_KEY.into(),
                "s3://baselines/churn/1/prediction.json".into(),
            );
        }
        r.add(p);
        prediction_files(&s);
        h.serve("churn-prod", "churn-v1", V1);
        let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
        assert_eq!(b.package_arn.as_deref(), Some(V1));
        (s, b)
    }

    fn threshold_of(p: &PredictionBaseline) -> f64 {
        p.config.comparison_threshold
    }

    #[tokio::test]
    async fn the_served_packages_prediction_baseline_is_used_with_its_features_config() {
        let (s, mut b) = served_v1(true).await;
        assert!(b.prediction.is_none(), "read only when asked");
        resolve_prediction_baseline(&s, &mut b, None, None)
            .await
            .unwrap();
        assert!(b.problems.is_empty(), "{:?}", b.problems);
        let p = b.prediction.as_ref().unwrap();
        assert_eq!(p.source, PredictionSource::Package);
        assert_eq!(p.uri, "s3://baselines/churn/1/prediction.json");
        assert_eq!(p.feature.name, "prediction");
        assert_eq!(p.feature.num_present, 100.0);
        assert_eq!(
            threshold_of(p),
            0.4,
            "the override of the feature `prediction`"
        );
        assert!(b.uris.contains(&p.uri), "{:?}", b.uris);
        let d = b.describe(Some("churn"));
        assert_eq!(d["prediction"]["source"], "package");
        assert_eq!(d["prediction"]["feature"], "prediction");
    }

    #[tokio::test]
    async fn the_environments_file_overrides_the_package_and_a_feature_can_be_named() {
        let (s, mut b) = served_v1(true).await;
        let env = "s3://baselines/churn/1/statistics.json";
        resolve_prediction_baseline(&s, &mut b, Some(env), Some("_c0"))
            .await
            .unwrap();
        let p = b.prediction.as_ref().unwrap();
        assert_eq!(
            (p.source, p.uri.as_str(), p.feature.name.as_str()),
            (PredictionSource::Environment, env, "_c0")
        );
        assert_eq!(threshold_of(p), 0.3);
        assert!(!b.uris.iter().any(|u| u.ends_with("prediction.json")));
        // Without a package group at all.
        let mut none = Baselines::default();
        resolve_prediction_baseline(&s, &mut none, Some(env), Some("_c1"))
            .await
            .unwrap();
        let p = none.prediction.as_ref().unwrap();
        assert_eq!(p.feature.name, "_c1");
        assert_eq!(
            threshold_of(p),
            MonitoringConfig::default().comparison_threshold
        );
        assert_eq!(none.describe(None)["modelPackageGroupName"], Value::Null);
    }

    #[tokio::test]
    async fn prediction_feature_alone_takes_the_data_quality_baselines_column() {
        let (s, mut b) = served_v1(false).await;
        resolve_prediction_baseline(&s, &mut b, None, None)
            .await
            .unwrap();
        assert!(b.prediction.is_none() && b.problems.is_empty());
        resolve_prediction_baseline(&s, &mut b, None, Some("_c0"))
            .await
            .unwrap();
        let p = b.prediction.as_ref().unwrap();
        assert_eq!(p.source, PredictionSource::DataQualityBaseline);
        assert_eq!(p.uri, "s3://baselines/churn/1/statistics.json");
        assert_eq!((p.feature.name.as_str(), threshold_of(p)), ("_c0", 0.3));
        assert_eq!(
            b.describe(Some("churn"))["prediction"]["source"],
            "dataQualityBaseline"
        );
    }

    #[tokio::test]
    async fn unusable_prediction_baselines_are_reported_and_left_out() {
        let (s, b0) = served_v1(true).await;
        // A data-quality statistics file with several features and no `prediction`.
        let mut b = b0.clone();
        resolve_prediction_baseline(
            &s,
            &mut b,
            Some("s3://baselines/churn/1/statistics.json"),
            None,
        )
        .await
        .unwrap();
        assert!(b.prediction.is_none());
        let p = b.problems.last().unwrap();
        assert!(
            p.contains("no feature \"prediction\"") && p.contains("set PREDICTION_FEATURE"),
            "{p}"
        );
        // A missing file.
        let mut b = b0.clone();
        resolve_prediction_baseline(&s, &mut b, Some("s3://baselines/churn/9/none.json"), None)
            .await
            .unwrap();
        assert!(b.prediction.is_none());
        assert!(
            b.problems
                .last()
                .unwrap()
                .contains("PREDICTION_BASELINE_S3_URI"),
            "{:?}",
            b.problems
        );
        // A named feature the file lacks.
        let mut b = b0.clone();
        resolve_prediction_baseline(&s, &mut b, None, Some("score"))
            .await
            .unwrap();
        assert!(
            b.problems.last().unwrap().contains("no feature \"score\""),
            "{:?}",
            b.problems
        );
        // PREDICTION_FEATURE without a data-quality baseline.
        let mut none = Baselines::default();
        resolve_prediction_baseline(&s, &mut none, None, Some("_c0"))
            .await
            .unwrap();
        assert!(none.prediction.is_none());
        assert!(
            none.problems[0].contains("no data-quality statistics"),
            "{:?}",
            none.problems
        );
    }
}
