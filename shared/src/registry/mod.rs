//! The SageMaker Model Registry, as the loop sees it: a port, the domain types, and the rule that
//! picks the latest approved package.
//!
//! "Latest approved" is the approved, `Completed` package with the greatest `CreationTime`, ties
//! broken by the greater `ModelPackageVersion`. Every page of `ListModelPackages` is read: the
//! selection does not trust the service's ordering, so a group with hundreds of packages, or an
//! emulator that ignores `SortOrder`, still yields the right one. (AWS's samples omit `SortOrder`,
//! whose default is `Ascending`, and take the first item: the *oldest* approved package.)

mod approved;

pub use approved::{ApprovedModel, BaselineUris};

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::AwsError;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApprovalStatus {
    Approved,
    Rejected,
    PendingManualApproval,
    /// A value this version of driftloop does not know, kept verbatim.
    #[serde(untagged)]
    Other(String),
}

impl ApprovalStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "Approved" => ApprovalStatus::Approved,
            "Rejected" => ApprovalStatus::Rejected,
            "PendingManualApproval" => ApprovalStatus::PendingManualApproval,
            other => ApprovalStatus::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ApprovalStatus::Approved => "Approved",
            ApprovalStatus::Rejected => "Rejected",
            ApprovalStatus::PendingManualApproval => "PendingManualApproval",
            ApprovalStatus::Other(s) => s,
        }
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `ListModelPackages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageSummary {
    pub arn: String,
    pub group: String,
    pub version: Option<i64>,
    pub creation_time: DateTime<Utc>,
    /// `ModelPackageStatus`: Pending, InProgress, Completed, Failed, Deleting.
    pub status: String,
    pub approval: ApprovalStatus,
}

impl PackageSummary {
    pub fn is_completed(&self) -> bool {
        self.status == "Completed"
    }

    /// The ordering "newer than": creation time, then version.
    pub fn recency_key(&self) -> (DateTime<Utc>, i64) {
        (self.creation_time, self.version.unwrap_or(i64::MIN))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub image: Option<String>,
    pub model_data_url: Option<String>,
    #[serde(default)]
    pub environment: HashMap<String, String>,
}

/// The S3 URIs of a Model Monitor baseline pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub statistics: Option<String>,
    pub constraints: Option<String>,
}

impl Baseline {
    pub fn is_empty(&self) -> bool {
        self.statistics.is_none() && self.constraints.is_none()
    }
}

/// `DescribeModelPackage`, reduced to what the loop uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPackage {
    pub summary: PackageSummary,
    pub containers: Vec<Container>,
    pub customer_metadata: HashMap<String, String>,
    /// `DriftCheckBaselines.ModelDataQuality`.
    pub drift_check_data_quality: Baseline,
    /// `ModelMetrics.ModelDataQuality`.
    pub metrics_data_quality: Baseline,
    /// `DriftCheckBaselines.ModelQuality`.
    pub drift_check_model_quality: Baseline,
    /// `ModelMetrics.ModelQuality`.
    pub metrics_model_quality: Baseline,
    pub approval_description: Option<String>,
    /// `LastModifiedTime`: when the package last changed (approval, metadata); `None` when the
    /// service did not say. Tells a registry read that lags an event from one that follows it.
    #[serde(default)]
    pub last_modified: Option<DateTime<Utc>>,
}

/// Which of a package's two baseline sets is read first; the other is the fallback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BaselineSource {
    /// `DriftCheckBaselines` first (what a `QualityCheckStep` registers for drift checks).
    #[default]
    #[serde(rename = "DriftCheckBaselines")]
    DriftCheck,
    /// `ModelMetrics` first (AWS's batch-monitoring sample reads only these).
    #[serde(rename = "ModelMetrics")]
    ModelMetrics,
}

impl BaselineSource {
    pub const ALL: [BaselineSource; 2] = [BaselineSource::DriftCheck, BaselineSource::ModelMetrics];

    pub const fn as_str(self) -> &'static str {
        match self {
            BaselineSource::DriftCheck => "DriftCheckBaselines",
            BaselineSource::ModelMetrics => "ModelMetrics",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl ModelPackage {
    /// The data-quality baseline: the drift-check baseline when registered, else the model metrics'.
    pub fn data_quality_baseline(&self) -> Option<&Baseline> {
        self.data_quality_baseline_from(BaselineSource::DriftCheck)
    }

    pub fn model_quality_baseline(&self) -> Option<&Baseline> {
        self.model_quality_baseline_from(BaselineSource::DriftCheck)
    }

    /// The data-quality baseline, `source` first.
    pub fn data_quality_baseline_from(&self, source: BaselineSource) -> Option<&Baseline> {
        prefer(
            source,
            &self.drift_check_data_quality,
            &self.metrics_data_quality,
        )
    }

    /// The model-quality baseline, `source` first.
    pub fn model_quality_baseline_from(&self, source: BaselineSource) -> Option<&Baseline> {
        prefer(
            source,
            &self.drift_check_model_quality,
            &self.metrics_model_quality,
        )
    }
}

fn prefer<'a>(
    source: BaselineSource,
    drift_check: &'a Baseline,
    metrics: &'a Baseline,
) -> Option<&'a Baseline> {
    let order = match source {
        BaselineSource::DriftCheck => [drift_check, metrics],
        BaselineSource::ModelMetrics => [metrics, drift_check],
    };
    order.into_iter().find(|b| !b.is_empty())
}

/// One page of `ListModelPackages`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackagePage {
    pub packages: Vec<PackageSummary>,
    pub next_token: Option<String>,
}

/// The Model Registry port. The SageMaker adapter lists with `SortBy=CreationTime`,
/// `SortOrder=Descending` and the largest page size.
#[async_trait]
pub trait ModelRegistry: Send + Sync {
    async fn list_packages(
        &self,
        group: &str,
        approval: Option<&ApprovalStatus>,
        next_token: Option<String>,
    ) -> Result<PackagePage, AwsError>;

    /// `name_or_arn`: a package ARN (or `group/version` name).
    async fn describe_package(&self, name_or_arn: &str) -> Result<ModelPackage, AwsError>;

    /// Adds or replaces one `CustomerMetadataProperties` entry, keeping the others.
    async fn put_customer_metadata(
        &self,
        arn: &str,
        key: &str,
        value: &str,
    ) -> Result<(), AwsError>;
}

/// Safety bound on pagination: 1,000 pages of 100 is far beyond any real group; a service that
/// keeps returning a token forever must not keep a Lambda busy until its timeout.
pub const MAX_PAGES: usize = 1000;

/// All packages of a group with the given approval status, every page followed.
pub async fn list_all(
    registry: &dyn ModelRegistry,
    group: &str,
    approval: Option<&ApprovalStatus>,
) -> Result<Vec<PackageSummary>, AwsError> {
    let mut all = Vec::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = registry.list_packages(group, approval, token).await?;
        all.extend(page.packages);
        match page.next_token.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(all),
        }
    }
    Err(AwsError::classify(
        "sagemaker",
        "ListModelPackages",
        None,
        None,
        format!(
            "more than {MAX_PAGES} pages of model packages in group {group}; refusing to page further"
        ),
    ))
}

/// The newest `Completed` package among `packages` (creation time, then version).
pub fn newest_completed<'a>(
    packages: impl IntoIterator<Item = &'a PackageSummary>,
) -> Option<&'a PackageSummary> {
    packages
        .into_iter()
        .filter(|p| p.is_completed())
        .max_by_key(|p| p.recency_key())
}

/// The latest approved package of `group`, described; `None` when the group has none.
pub async fn latest_approved(
    registry: &dyn ModelRegistry,
    group: &str,
) -> Result<Option<ModelPackage>, AwsError> {
    let approved = list_all(registry, group, Some(&ApprovalStatus::Approved)).await?;
    // The listing is filtered server-side; filter again so a stale or lax listing cannot slip a
    // package through that is not approved.
    let approved: Vec<_> = approved
        .into_iter()
        .filter(|p| p.approval == ApprovalStatus::Approved)
        .collect();
    match newest_completed(&approved) {
        None => Ok(None),
        Some(best) => registry.describe_package(&best.arn).await.map(Some),
    }
}

#[cfg(test)]
mod tests;
