//! What can fail a window's evaluation, classified for the handler's `Retryable.<Code>` /
//! `Permanent.<Code>` error types.

use crate::error::{AwsError, Classify, ErrorClass};
use crate::publish::PublishError;
use crate::storage::stream::ReadError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid batch capture manifest {uri}: {reason}")]
    BadManifest { uri: String, reason: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("the metrics engine failed: {0}")]
    Engine(String),
}

impl From<ReadError> for RunError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Aws(a) => RunError::Aws(a),
            ReadError::Consumer(m) => RunError::Engine(m),
        }
    }
}

impl Classify for RunError {
    fn class(&self) -> ErrorClass {
        match self {
            RunError::Aws(e) => e.class(),
            RunError::Publish(e) => e.class(),
            RunError::BadManifest { .. } | RunError::Engine(_) => ErrorClass::Permanent,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            RunError::BadManifest { .. } => "BadManifest",
            RunError::Aws(e) => e.code(),
            RunError::Publish(e) => e.code(),
            RunError::Engine(_) => "Engine",
        }
    }
}
