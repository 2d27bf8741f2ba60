//! The model catalogue: one versioned JSON document (in S3, `CATALOGUE_S3_URI`) that says, per
//! model package group, what the loop manages — stages and endpoints, instances, capture,
//! blue/green and autoscaling, problem type, monitoring windows, baselines, alarms and the
//! retraining pipeline. Adding or changing a model is an S3 upload: the functions read the
//! document once per invocation (with its ETag) and never cache it across invocations.
//!
//! Rooms, by mechanism:
//! - [`model`]: the document's types (serde, unknown fields rejected; closed sets are enums);
//! - [`validate`]: reading a document with every error naming the model and the field path, and
//!   the rules across models (a group, endpoint, alarm, schedule rule or pipeline named twice);
//! - [`report`]: what the loop will manage per model (`driftloop-metrics catalogue validate`);
//! - [`source`]: the port a function reads the document through, its S3 implementation over the
//!   existing conditional-read adapter, and an in-memory double;
//! - [`convention`]: the naming convention the stack's IAM grants (name prefixes), checked on
//!   every read;
//! - [`alarms`]: the CloudWatch alarm the loop creates and updates per model (`servedPackage`);
//! - [`dashboard`]: the one loop-managed dashboard of every model;
//! - [`deploy`]: which group's stages a deploy-on-approval event is for;
//! - [`monitoring`]: a model's monitored stage as custom-metrics' settings and window rule, and
//!   which model a label upload is for;
//! - [`retrain`]: which model's pipeline and parameters a retrain-on-alarm trigger starts.
//!
//! [`model`], [`validate`] and [`report`] use no AWS SDK crate (the CLI builds them without the
//! `aws` feature); the rest is behind it.

pub mod alarms;
pub mod convention;
pub mod dashboard;
pub mod model;
pub mod report;
pub mod validate;

#[cfg(feature = "aws")]
pub mod deploy;
#[cfg(feature = "aws")]
pub mod monitoring;
#[cfg(feature = "aws")]
pub mod reconcile;
#[cfg(feature = "aws")]
pub mod retrain;
#[cfg(feature = "aws")]
pub mod source;

pub use convention::Convention;
pub use model::{Catalogue, Model};
pub use validate::{FieldError, Invalid, parse, parse_with};

#[cfg(test)]
mod tests;
