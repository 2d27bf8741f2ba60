//! What can fail a window's evaluation, classified for the handler's `Retryable.<Code>` /
//! `Permanent.<Code>` error types.

use crate::error::{AwsError, Classify, ErrorClass};
use crate::metrics::EngineError;
use crate::publish::PublishError;
use crate::storage::stream::ReadError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The window's labels need more memory than the function may give them
    /// ([`super::feed::ground_truth_limit`]).
    #[error(
        "{detail}. Remedies: evaluate smaller windows (WINDOW_MINUTES, or a direct invocation with \"splitMinutes\"), give the function more memory (its MemorySize; GROUND_TRUTH_MEMORY_MB sets the labels' share explicitly), or scale out: compute the window outside Lambda with the driftloop-metrics CLI"
    )]
    GroundTruthTooLarge { limit_bytes: u64, detail: String },
    /// A run-time setting (environment) is invalid.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("the metrics engine failed: {0}")]
    Engine(String),
    /// A scale-out plan, slice or partial state that cannot be used ([`super::scaleout`]).
    #[error("scale-out: {0}")]
    ScaleOut(String),
}

impl From<ReadError> for RunError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Aws(a) => RunError::Aws(a),
            ReadError::Consumer { uri, error } => {
                match error
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<EngineError>())
                {
                    Some(e @ EngineError::GroundTruthTooLarge { limit_bytes, .. }) => {
                        RunError::GroundTruthTooLarge {
                            limit_bytes: *limit_bytes,
                            detail: e.to_string(),
                        }
                    }
                    _ => RunError::Engine(format!("{uri}: {error}")),
                }
            }
            ReadError::Thread(m) => RunError::Engine(m),
        }
    }
}

impl Classify for RunError {
    fn class(&self) -> ErrorClass {
        match self {
            RunError::Aws(e) => e.class(),
            RunError::Publish(e) => e.class(),
            RunError::GroundTruthTooLarge { .. }
            | RunError::InvalidSetting(_)
            | RunError::Engine(_)
            | RunError::ScaleOut(_) => ErrorClass::Permanent,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            RunError::GroundTruthTooLarge { .. } => "GroundTruthTooLarge",
            RunError::InvalidSetting(_) => "InvalidSetting",
            RunError::Aws(e) => e.code(),
            RunError::Publish(e) => e.code(),
            RunError::Engine(_) => "Engine",
            RunError::ScaleOut(_) => "ScaleOut",
        }
    }
}
