//! Promotion: only an approved, completed package of the group can be promoted to a stage; the
//! promotion is recorded on the package ([`super::promotion_key`]), which production's desired
//! package then follows.

use chrono::Utc;

use super::{Stage, promotion_key};
use crate::control::Requester;
use crate::error::{AwsError, Classify, ErrorClass};
use crate::registry::{ApprovalStatus, ModelPackage, ModelRegistry, latest_approved};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromoteError {
    #[error("cannot promote {arn}: {reason}")]
    NotPromotable { arn: String, reason: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Classify for PromoteError {
    fn class(&self) -> ErrorClass {
        match self {
            PromoteError::NotPromotable { .. } => ErrorClass::Permanent,
            PromoteError::Aws(e) => e.class(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            PromoteError::NotPromotable { .. } => "NotPromotable",
            PromoteError::Aws(e) => e.code(),
        }
    }
}

/// The promotion rule: the package belongs to `group` and is approved and completed.
pub fn check_promotable(package: &ModelPackage, group: &str) -> Result<(), String> {
    if package.summary.group != group {
        return Err(format!("it belongs to group {:?}", package.summary.group));
    }
    if package.summary.approval != ApprovalStatus::Approved || !package.summary.is_completed() {
        return Err(format!(
            "it is {} / {}; only approved, completed packages are promoted",
            package.summary.approval, package.summary.status
        ));
    }
    Ok(())
}

/// Promotes the package `arn` (default: the group's latest approved one) to `stage`; returns its
/// ARN.
pub async fn promote(
    registry: &dyn ModelRegistry,
    group: &str,
    arn: Option<&str>,
    stage: Stage,
) -> Result<String, PromoteError> {
    let package: ModelPackage =
        match arn {
            Some(arn) => registry.describe_package(arn).await?,
            None => latest_approved(registry, group).await?.ok_or_else(|| {
                PromoteError::NotPromotable {
                    arn: format!("(latest of {group})"),
                    reason: "the group has no approved, completed package".into(),
                }
            })?,
        };
    let arn = package.summary.arn.clone();
    check_promotable(&package, group).map_err(|reason| PromoteError::NotPromotable {
        arn: arn.clone(),
        reason,
    })?;
    registry
        .put_customer_metadata(&arn, &promotion_key(stage), &Utc::now().to_rfc3339())
        .await?;
    tracing::info!(arn, stage = stage.as_str(), "package promoted");
    Ok(arn)
}

/// The package's metadata key that records who asked for its promotion to `stage`.
pub fn requester_key(stage: Stage) -> String {
    format!("driftloop:promoted-by:{}", stage.as_str())
}

/// Records on the promoted package who asked for the promotion (the requester the control gate
/// verified: [`Requester::record`]), beside the promotion itself.
pub async fn record_requester(
    registry: &dyn ModelRegistry,
    arn: &str,
    stage: Stage,
    requester: &Requester,
) -> Result<(), PromoteError> {
    let record = requester.record();
    registry
        .put_customer_metadata(arn, &requester_key(stage), &record)
        .await?;
    tracing::info!(
        arn,
        stage = stage.as_str(),
        requester = record,
        "promotion requester recorded"
    );
    Ok(())
}
