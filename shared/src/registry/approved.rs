//! The output of get-approved-model: stable, documented, and a drop-in for the AWS batch-monitoring
//! sample's Lambda step.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Baseline, BaselineSource, Container, ModelPackage};

/// Statistics and constraints URIs of one baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineUris {
    pub statistics: Option<String>,
    pub constraints: Option<String>,
}

impl From<&Baseline> for BaselineUris {
    fn from(b: &Baseline) -> Self {
        BaselineUris {
            statistics: b.statistics.clone(),
            constraints: b.constraints.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOut {
    pub image: Option<String>,
    pub model_data_url: Option<String>,
}

impl From<&Container> for ContainerOut {
    fn from(c: &Container) -> Self {
        ContainerOut {
            image: c.image.clone(),
            model_data_url: c.model_data_url.clone(),
        }
    }
}

/// The latest approved package of a group.
///
/// The first five keys are those of the AWS batch-monitoring sample's Lambda step (`statusCode`,
/// `modelArn` = the package ARN, `modelName` = `CustomerMetadataProperties.ModelName`,
/// `s3uriStatistics`/`s3uriConstraints` = the data-quality baseline), so a SageMaker Pipeline
/// `LambdaStep` can use this function unchanged. The step declares them as `String` outputs, and
/// a step output's value is a required string (`OutputParameter.Value`, 0–1,024 characters): an
/// absent name or baseline is therefore the empty string, never `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovedModel {
    pub status_code: u16,
    pub model_arn: String,
    pub model_name: String,
    pub s3uri_statistics: String,
    pub s3uri_constraints: String,

    pub model_package_group_name: String,
    pub model_package_version: Option<i64>,
    pub model_package_arn: String,
    pub model_approval_status: String,
    pub creation_time: DateTime<Utc>,
    pub containers: Vec<ContainerOut>,
    pub customer_metadata_properties: HashMap<String, String>,
    /// `DriftCheckBaselines.ModelDataQuality`, else `ModelMetrics.ModelDataQuality` (the other
    /// way round with [`BaselineSource::ModelMetrics`]).
    pub data_quality_baseline: Option<BaselineUris>,
    /// The same for model quality.
    pub model_quality_baseline: Option<BaselineUris>,
    /// Which baseline set was read first.
    pub baseline_source: BaselineSource,
}

impl From<&ModelPackage> for ApprovedModel {
    fn from(p: &ModelPackage) -> Self {
        ApprovedModel::new(p, BaselineSource::DriftCheck)
    }
}

impl ApprovedModel {
    /// The output for package `p`, reading the baselines of `source` first.
    pub fn new(p: &ModelPackage, source: BaselineSource) -> Self {
        let data_quality = p.data_quality_baseline_from(source).map(BaselineUris::from);
        let uri = |f: fn(&BaselineUris) -> &Option<String>| {
            data_quality
                .as_ref()
                .and_then(|b| f(b).clone())
                .unwrap_or_default()
        };
        ApprovedModel {
            status_code: 200,
            model_arn: p.summary.arn.clone(),
            model_name: p
                .customer_metadata
                .get("ModelName")
                .cloned()
                .unwrap_or_default(),
            s3uri_statistics: uri(|b| &b.statistics),
            s3uri_constraints: uri(|b| &b.constraints),
            model_package_group_name: p.summary.group.clone(),
            model_package_version: p.summary.version,
            model_package_arn: p.summary.arn.clone(),
            model_approval_status: p.summary.approval.to_string(),
            creation_time: p.summary.creation_time,
            containers: p.containers.iter().map(ContainerOut::from).collect(),
            customer_metadata_properties: p.customer_metadata.clone(),
            data_quality_baseline: data_quality,
            model_quality_baseline: p
                .model_quality_baseline_from(source)
                .map(BaselineUris::from),
            baseline_source: source,
        }
    }
}
