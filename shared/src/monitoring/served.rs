//! Which model package an endpoint serves: `DescribeEndpoint` → its current `EndpointConfigName`
//! (not a pending one: during an update the old config still serves the captured traffic) →
//! `DescribeEndpointConfig` → the monitored variant's `ModelName` → `DescribeModel` → the
//! container's `ModelPackageName`.
//!
//! [`served_package`] walks that chain over the [`ServingReads`] port. Whatever breaks the chain
//! for good (no such endpoint, variant, config or model; a model that names no package, as one
//! deployed from an image and artifact outside the Model Registry) is an [`Unserved`] reason the
//! caller reports while falling back; only a retryable AWS error fails the run.

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{AwsError, Classify, ErrorClass};

/// One production variant of an endpoint config (`ProductionVariants[]`, reduced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariantModel {
    pub variant_name: String,
    pub model_name: String,
}

/// The reads of SageMaker hosting the resolution needs (implemented by the SageMaker adapter and
/// the in-memory hosting double).
#[async_trait]
pub trait ServingReads: Send + Sync {
    /// `DescribeEndpoint`'s `EndpointConfigName` (the config serving now); `None` when the
    /// endpoint does not exist.
    async fn current_endpoint_config(&self, endpoint: &str) -> Result<Option<String>, AwsError>;
    /// `DescribeEndpointConfig`'s production variants; `None` when the config does not exist.
    async fn endpoint_config_variants(
        &self,
        config: &str,
    ) -> Result<Option<Vec<VariantModel>>, AwsError>;
    /// `DescribeModel`: the `ModelPackageName` of its containers, `PrimaryContainer` first, then
    /// `Containers` in order (containers without one are left out); `None` when the model does
    /// not exist.
    async fn model_package_names(&self, model: &str) -> Result<Option<Vec<String>>, AwsError>;
}

/// The package behind an endpoint's variant, and the resources that lead to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Served {
    pub endpoint_name: String,
    pub variant_name: String,
    pub endpoint_config_name: String,
    pub model_name: String,
    /// The container's `ModelPackageName`: a package ARN (versioned for a registered package) or
    /// name, as `DescribeModelPackage` accepts it.
    pub model_package: String,
    /// Other packages named by further containers of the model (an inference pipeline): the
    /// first one is monitored, these are reported.
    pub other_packages: Vec<String>,
}

/// Why the served package is not known (the run falls back to the group's latest approved one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unserved {
    NotEndpointMode,
    EndpointNotFound {
        endpoint: String,
    },
    ConfigNotFound {
        endpoint: String,
        config: String,
    },
    VariantNotFound {
        config: String,
        variant: String,
        variants: Vec<String>,
    },
    ModelNotFound {
        config: String,
        model: String,
    },
    NoModelPackage {
        model: String,
    },
    /// A permanent error of one of the reads (e.g. access denied).
    ReadFailed(String),
}

impl std::fmt::Display for Unserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unserved::NotEndpointMode => {
                f.write_str("batch transform mode: there is no endpoint to follow")
            }
            Unserved::EndpointNotFound { endpoint } => {
                write!(f, "endpoint {endpoint:?} does not exist")
            }
            Unserved::ConfigNotFound { endpoint, config } => write!(
                f,
                "endpoint config {config:?} of endpoint {endpoint:?} does not exist"
            ),
            Unserved::VariantNotFound {
                config,
                variant,
                variants,
            } => write!(
                f,
                "endpoint config {config:?} has no production variant {variant:?} (it has {variants:?})"
            ),
            Unserved::ModelNotFound { config, model } => write!(
                f,
                "model {model:?} of endpoint config {config:?} does not exist"
            ),
            Unserved::NoModelPackage { model } => write!(
                f,
                "model {model:?} names no ModelPackageName (deployed from an image and artifact, not from the Model Registry)"
            ),
            Unserved::ReadFailed(e) => write!(f, "the served package cannot be read: {e}"),
        }
    }
}

/// A permanent error breaks the chain (reported); a retryable one fails the run.
fn permanent<T>(r: Result<T, AwsError>) -> Result<Result<T, Unserved>, AwsError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.class() == ErrorClass::Permanent => {
            Ok(Err(Unserved::ReadFailed(e.to_string())))
        }
        Err(e) => Err(e),
    }
}

/// The package `endpoint`'s `variant` serves now.
pub async fn served_package(
    reads: &dyn ServingReads,
    endpoint: &str,
    variant: &str,
) -> Result<Result<Served, Unserved>, AwsError> {
    let config = match permanent(reads.current_endpoint_config(endpoint).await)? {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Ok(Err(Unserved::EndpointNotFound {
                endpoint: endpoint.to_owned(),
            }));
        }
        Err(u) => return Ok(Err(u)),
    };
    let variants = match permanent(reads.endpoint_config_variants(&config).await)? {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Ok(Err(Unserved::ConfigNotFound {
                endpoint: endpoint.to_owned(),
                config,
            }));
        }
        Err(u) => return Ok(Err(u)),
    };
    let Some(model) = variants
        .iter()
        .find(|v| v.variant_name == variant)
        .map(|v| v.model_name.clone())
    else {
        return Ok(Err(Unserved::VariantNotFound {
            config,
            variant: variant.to_owned(),
            variants: variants.into_iter().map(|v| v.variant_name).collect(),
        }));
    };
    let mut packages = match permanent(reads.model_package_names(&model).await)? {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(Err(Unserved::ModelNotFound { config, model })),
        Err(u) => return Ok(Err(u)),
    };
    packages.retain(|p| !p.trim().is_empty());
    if packages.is_empty() {
        return Ok(Err(Unserved::NoModelPackage { model }));
    }
    let model_package = packages.remove(0);
    let mut others: Vec<String> = Vec::new();
    for p in packages {
        if p != model_package && !others.contains(&p) {
            others.push(p);
        }
    }
    Ok(Ok(Served {
        endpoint_name: endpoint.to_owned(),
        variant_name: variant.to_owned(),
        endpoint_config_name: config,
        model_name: model,
        model_package,
        other_packages: others,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inference pipeline: three containers, two naming packages (one twice), one not.
    struct Pipeline;

    #[async_trait]
    impl ServingReads for Pipeline {
        async fn current_endpoint_config(&self, _: &str) -> Result<Option<String>, AwsError> {
            Ok(Some("cfg".into()))
        }
        async fn endpoint_config_variants(
            &self,
            _: &str,
        ) -> Result<Option<Vec<VariantModel>>, AwsError> {
            Ok(Some(vec![
                VariantModel {
                    variant_name: "Blue".into(),
                    model_name: "blue".into(),
                },
                VariantModel {
                    variant_name: "AllTraffic".into(),
                    model_name: "pipeline".into(),
                },
            ]))
        }
        async fn model_package_names(&self, model: &str) -> Result<Option<Vec<String>>, AwsError> {
            assert_eq!(model, "pipeline", "the monitored variant's model is read");
            Ok(Some(vec![
                "pkg/pre/1".into(),
                " ".into(),
                "pkg/model/2".into(),
                "pkg/pre/1".into(),
            ]))
        }
    }

    #[tokio::test]
    async fn the_first_package_of_the_monitored_variant_is_served_and_others_are_listed() {
        let s = served_package(&Pipeline, "ep", "AllTraffic")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint_config_name, "cfg");
        assert_eq!(s.model_name, "pipeline");
        assert_eq!(s.model_package, "pkg/pre/1");
        assert_eq!(s.other_packages, ["pkg/model/2"]);
    }
}
