//! SageMaker adapter.

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{ModelApprovalStatus, ModelPackageSortBy, SortOrder};

use super::to_chrono;
use crate::error::AwsError;
use crate::registry::{
    ApprovalStatus, Baseline, Container, ModelPackage, ModelRegistry, PackagePage, PackageSummary,
};

pub(super) const SERVICE: &str = "sagemaker";

#[derive(Clone, Debug)]
pub struct SageMaker {
    client: Client,
}

impl SageMaker {
    pub fn new(client: Client) -> Self {
        SageMaker { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// A response without a member the API documents as always present.
pub(super) fn missing(operation: &'static str, field: &str) -> AwsError {
    AwsError::classify(
        SERVICE,
        operation,
        None,
        None,
        format!("response has no {field}"),
    )
}

#[async_trait]
impl ModelRegistry for SageMaker {
    async fn list_packages(
        &self,
        group: &str,
        approval: Option<&ApprovalStatus>,
        next_token: Option<String>,
    ) -> Result<PackagePage, AwsError> {
        const OP: &str = "ListModelPackages";
        let out = self
            .client
            .list_model_packages()
            .model_package_group_name(group)
            .set_model_approval_status(approval.map(|a| ModelApprovalStatus::from(a.as_str())))
            .sort_by(ModelPackageSortBy::CreationTime)
            .sort_order(SortOrder::Descending)
            .max_results(100)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, OP, e))?;
        let packages = out
            .model_package_summary_list()
            .iter()
            .map(|s| {
                Ok(PackageSummary {
                    arn: s
                        .model_package_arn()
                        .ok_or_else(|| missing(OP, "ModelPackageArn"))?
                        .to_owned(),
                    group: s.model_package_group_name().unwrap_or(group).to_owned(),
                    version: s.model_package_version().map(i64::from),
                    creation_time: s
                        .creation_time()
                        .and_then(to_chrono)
                        .ok_or_else(|| missing(OP, "CreationTime"))?,
                    status: s
                        .model_package_status()
                        .map(|x| x.as_str().to_owned())
                        .unwrap_or_default(),
                    approval: ApprovalStatus::parse(
                        s.model_approval_status()
                            .map(|x| x.as_str())
                            .unwrap_or_default(),
                    ),
                })
            })
            .collect::<Result<Vec<_>, AwsError>>()?;
        Ok(PackagePage {
            packages,
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn describe_package(&self, name_or_arn: &str) -> Result<ModelPackage, AwsError> {
        const OP: &str = "DescribeModelPackage";
        let out = self
            .client
            .describe_model_package()
            .model_package_name(name_or_arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, OP, e))?;
        let summary = PackageSummary {
            arn: out
                .model_package_arn()
                .ok_or_else(|| missing(OP, "ModelPackageArn"))?
                .to_owned(),
            group: out
                .model_package_group_name()
                .unwrap_or_default()
                .to_owned(),
            version: out.model_package_version().map(i64::from),
            creation_time: out
                .creation_time()
                .and_then(to_chrono)
                .ok_or_else(|| missing(OP, "CreationTime"))?,
            status: out
                .model_package_status()
                .map(|x| x.as_str().to_owned())
                .unwrap_or_default(),
            approval: ApprovalStatus::parse(
                out.model_approval_status()
                    .map(|x| x.as_str())
                    .unwrap_or_default(),
            ),
        };
        let containers = out
            .inference_specification()
            .map(|spec| {
                spec.containers()
                    .iter()
                    .map(|c| Container {
                        image: c.image().map(str::to_owned),
                        model_data_url: c.model_data_url().map(str::to_owned),
                        environment: c.environment().cloned().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let metrics = out.model_metrics();
        let drift = out.drift_check_baselines();
        let uri = |m: Option<&aws_sdk_sagemaker::types::MetricsSource>| {
            m.and_then(|m| m.s3_uri()).map(str::to_owned)
        };
        Ok(ModelPackage {
            summary,
            containers,
            customer_metadata: out
                .customer_metadata_properties()
                .cloned()
                .unwrap_or_default(),
            drift_check_data_quality: drift
                .and_then(|d| d.model_data_quality())
                .map(|q| Baseline {
                    statistics: uri(q.statistics()),
                    constraints: uri(q.constraints()),
                })
                .unwrap_or_default(),
            metrics_data_quality: metrics
                .and_then(|m| m.model_data_quality())
                .map(|q| Baseline {
                    statistics: uri(q.statistics()),
                    constraints: uri(q.constraints()),
                })
                .unwrap_or_default(),
            drift_check_model_quality: drift
                .and_then(|d| d.model_quality())
                .map(|q| Baseline {
                    statistics: uri(q.statistics()),
                    constraints: uri(q.constraints()),
                })
                .unwrap_or_default(),
            metrics_model_quality: metrics
                .and_then(|m| m.model_quality())
                .map(|q| Baseline {
                    statistics: uri(q.statistics()),
                    constraints: uri(q.constraints()),
                })
                .unwrap_or_default(),
            approval_description: out.approval_description().map(str::to_owned),
            last_modified: out.last_modified_time().and_then(to_chrono),
        })
    }

    async fn put_customer_metadata(
        &self,
        arn: &str,
        key: &str,
        value: &str,
    ) -> Result<(), AwsError> {
        self.client
            .update_model_package()
            .model_package_arn(arn)
            .customer_metadata_properties(key, value)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "UpdateModelPackage", e))?;
        Ok(())
    }
}
