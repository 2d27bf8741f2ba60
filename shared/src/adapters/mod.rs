//! One adapter per AWS service, each implementing the ports the domain defines.

pub mod application_autoscaling;
pub mod cloudwatch;
pub mod cloudwatch_alarms;
pub mod eventbridge;
pub mod s3;
pub mod s3_conditional;
pub mod sagemaker;
pub mod sagemaker_hosting;
pub mod sagemaker_pipelines;
pub mod stepfunctions;

use chrono::{DateTime, Utc};

/// Smithy timestamps to chrono (millisecond precision, which is all AWS returns).
pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
