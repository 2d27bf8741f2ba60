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
    pub dq_constraints: Option<BaselineConstraints>,
    pub mq_constraints: Option<Value>,
    /// The reference calibration for label-free estimation: the package's
    /// `CustomerMetadataProperties` key [`CALIBRATION_METADATA_KEY`] names its S3 URI.
    pub calibration: Option<Calibration>,
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
    pub fn describe(&self, group: &str) -> Value {
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
        let d = prod.describe("churn");
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
        let d = b.describe("churn");
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
}
