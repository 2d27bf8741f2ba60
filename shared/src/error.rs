//! Error classification shared by every boundary.
//!
//! Each boundary (a function's handler, an adapter) has its own `thiserror` enum. Every enum says,
//! through [`Classify`], whether a failure is worth retrying and gives a stable code. The Lambda
//! `Diagnostic` carries both in `errorType` as `Retryable.<Code>` or `Permanent.<Code>`, so an
//! EventBridge retry policy, a Step Functions `Retry` on `Retryable.*`, a dead-letter queue consumer
//! or a person reading the logs can tell "try again later" (throttling, a 5xx, a busy endpoint) from
//! "this will never work" (a bad event, a missing package) without parsing messages.

use std::fmt;

use serde::Serialize;

/// Whether repeating the same request later can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorClass {
    /// Throttling, 5xx, timeouts, a resource that is busy right now.
    Retryable,
    /// Bad input, a missing resource, a validation failure: retrying cannot help.
    Permanent,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::Retryable => "Retryable",
            ErrorClass::Permanent => "Permanent",
        })
    }
}

/// Implemented by every boundary error enum.
pub trait Classify: std::error::Error {
    fn class(&self) -> ErrorClass;
    /// A stable, CamelCase code for the failure (e.g. `NoApprovedPackage`, `Throttled`).
    fn code(&self) -> &'static str;

    /// `Retryable.<Code>` / `Permanent.<Code>`: the Lambda `errorType`.
    fn error_type(&self) -> String {
        format!("{}.{}", self.class(), self.code())
    }

    fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }
}

/// Of several failures (of independent steps that all ran), the one to return: the first
/// retryable one, else the first; `None` when there are none.
///
/// A retryable failure wins because returning it makes the invocation fail in a way a
/// redelivery can fix, and the steps are idempotent, so the ones that succeeded do nothing again.
pub fn worst<E: Classify>(errors: impl IntoIterator<Item = E>) -> Option<E> {
    let mut chosen: Option<E> = None;
    for e in errors {
        if chosen
            .as_ref()
            .is_none_or(|c| c.class() == ErrorClass::Permanent && e.is_retryable())
        {
            chosen = Some(e);
        }
    }
    chosen
}

/// Builds the Lambda `Diagnostic` of a classified error.
#[cfg(feature = "aws")]
pub fn diagnostic<E: Classify + ?Sized>(error: &E) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: error.error_type(),
        error_message: error.to_string(),
    }
}

/// Implements `From<$ty> for lambda_runtime::Diagnostic` through [`diagnostic`], so a handler can
/// return `Result<_, $ty>` to `lambda_runtime::run` directly.
#[macro_export]
macro_rules! impl_diagnostic {
    ($ty:ty) => {
        impl ::std::convert::From<$ty> for ::lambda_runtime::Diagnostic {
            fn from(error: $ty) -> Self {
                $crate::error::diagnostic(&error)
            }
        }
    };
}

/// What went wrong in a call to an AWS service, reduced to what callers decide on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}.{operation} failed ({}): {message}", code.as_deref().unwrap_or(kind.as_str()))]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    pub kind: AwsErrorKind,
    /// The service's error code (`ThrottlingException`, `ValidationException`, ...), when it sent one.
    pub code: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The service throttled the caller (after the SDK's own retries).
    Throttled,
    /// HTTP 5xx or an explicit service-unavailable error.
    ServerError,
    /// The request timed out or could not be sent (connection refused, DNS, TLS).
    Transport,
    /// The resource does not exist.
    NotFound,
    /// The resource exists but is busy (e.g. `ResourceInUse`, a conflicting operation in flight).
    Busy,
    /// Any other client-side error (validation, access denied, ...).
    Client,
}

impl AwsErrorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AwsErrorKind::Throttled => "Throttled",
            AwsErrorKind::ServerError => "ServerError",
            AwsErrorKind::Transport => "Transport",
            AwsErrorKind::NotFound => "NotFound",
            AwsErrorKind::Busy => "Busy",
            AwsErrorKind::Client => "Client",
        }
    }
}

/// Error codes AWS services use for throttling (the SDK's own retry classifier list, plus the
/// service-specific spellings SageMaker, CloudWatch and S3 use).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

const SERVER_CODES: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "InternalServiceError",
];

const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFound",
    "ResourceNotFoundException",
    "NoSuchKey",
    "NoSuchBucket",
    "NotFound",
    "NoSuchEntity",
];

const BUSY_CODES: &[&str] = &[
    "ResourceInUse",
    "ResourceInUseException",
    "ConflictException",
    "ConcurrentModificationException",
];

impl AwsError {
    /// Classifies a failure from its service error code and HTTP status.
    pub fn classify(
        service: &'static str,
        operation: &'static str,
        code: Option<&str>,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        let kind = match (code, status) {
            (Some(c), _) if THROTTLING_CODES.contains(&c) => AwsErrorKind::Throttled,
            (_, Some(429)) => AwsErrorKind::Throttled,
            (Some(c), _) if SERVER_CODES.contains(&c) => AwsErrorKind::ServerError,
            (_, Some(s)) if s >= 500 => AwsErrorKind::ServerError,
            (Some(c), _) if NOT_FOUND_CODES.contains(&c) => AwsErrorKind::NotFound,
            (_, Some(404)) => AwsErrorKind::NotFound,
            (Some(c), _) if BUSY_CODES.contains(&c) => AwsErrorKind::Busy,
            _ => AwsErrorKind::Client,
        };
        AwsError {
            service,
            operation,
            kind,
            code: code.map(str::to_owned),
            message: message.into(),
        }
    }

    pub fn transport(
        service: &'static str,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            service,
            operation,
            kind: AwsErrorKind::Transport,
            code: None,
            message: message.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == AwsErrorKind::NotFound
    }
}

impl Classify for AwsError {
    fn class(&self) -> ErrorClass {
        match self.kind {
            AwsErrorKind::Throttled
            | AwsErrorKind::ServerError
            | AwsErrorKind::Transport
            | AwsErrorKind::Busy => ErrorClass::Retryable,
            AwsErrorKind::NotFound | AwsErrorKind::Client => ErrorClass::Permanent,
        }
    }

    fn code(&self) -> &'static str {
        self.kind.as_str()
    }
}

#[cfg(feature = "aws")]
mod sdk {
    use super::AwsError;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_runtime_api::http::Response;
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;

    impl AwsError {
        /// Reduces an SDK error (after the SDK's own retries) to an [`AwsError`].
        pub fn from_sdk<E>(
            service: &'static str,
            operation: &'static str,
            err: SdkError<E, Response>,
        ) -> Self
        where
            E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        {
            match &err {
                SdkError::ServiceError(ctx) => {
                    let status = ctx.raw().status().as_u16();
                    let e = ctx.err();
                    let message = e
                        .message()
                        .map(str::to_owned)
                        .unwrap_or_else(|| e.to_string());
                    AwsError::classify(service, operation, e.code(), Some(status), message)
                }
                SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                    AwsError::transport(service, operation, detailed(&err))
                }
                SdkError::ResponseError(ctx) => {
                    let status = ctx.raw().status().as_u16();
                    AwsError::classify(service, operation, None, Some(status), detailed(&err))
                }
                _ => AwsError::classify(service, operation, None, None, detailed(&err)),
            }
        }
    }

    /// The error with its sources: the SDK's top-level messages ("dispatch failure") say little.
    fn detailed(err: &dyn std::error::Error) -> String {
        let mut out = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_and_429_are_retryable() {
        for code in ["ThrottlingException", "Throttling", "SlowDown"] {
            let e = AwsError::classify(
                "sagemaker",
                "ListModelPackages",
                Some(code),
                Some(400),
                "slow down",
            );
            assert_eq!(e.kind, AwsErrorKind::Throttled);
            assert_eq!(e.error_type(), "Retryable.Throttled");
        }
        let e = AwsError::classify("s3", "GetObject", None, Some(429), "");
        assert_eq!(e.class(), ErrorClass::Retryable);
    }

    #[test]
    fn server_errors_are_retryable_client_errors_permanent() {
        assert_eq!(
            AwsError::classify("x", "y", None, Some(503), "").error_type(),
            "Retryable.ServerError"
        );
        assert_eq!(
            AwsError::classify("x", "y", Some("InternalFailure"), Some(400), "").error_type(),
            "Retryable.ServerError"
        );
        assert_eq!(
            AwsError::classify("x", "y", Some("ValidationException"), Some(400), "bad")
                .error_type(),
            "Permanent.Client"
        );
        let nf = AwsError::classify("x", "y", Some("ResourceNotFound"), Some(400), "gone");
        assert!(nf.is_not_found());
        assert_eq!(nf.class(), ErrorClass::Permanent);
        assert_eq!(
            AwsError::classify("x", "y", Some("ResourceInUse"), Some(400), "").class(),
            ErrorClass::Retryable
        );
    }

    #[test]
    fn message_names_service_operation_and_code() {
        let e = AwsError::classify(
            "sagemaker",
            "ListModelPackages",
            Some("ThrottlingException"),
            Some(400),
            "Rate exceeded",
        );
        assert_eq!(
            e.to_string(),
            "sagemaker.ListModelPackages failed (ThrottlingException): Rate exceeded"
        );
        let t = AwsError::transport("s3", "GetObject", "connection refused");
        assert_eq!(
            t.to_string(),
            "s3.GetObject failed (Transport): connection refused"
        );
        assert_eq!(t.error_type(), "Retryable.Transport");
    }

    #[test]
    fn worst_is_the_first_retryable_failure_else_the_first() {
        let permanent =
            |m: &str| AwsError::classify("x", "y", Some("ValidationException"), None, m);
        let retryable = |m: &str| AwsError::classify("x", "y", Some("Throttling"), None, m);
        assert_eq!(worst(Vec::<AwsError>::new()), None);
        assert_eq!(worst([permanent("a")]), Some(permanent("a")));
        assert_eq!(
            worst([permanent("a"), permanent("b")]),
            Some(permanent("a"))
        );
        assert_eq!(
            worst([permanent("a"), retryable("b"), retryable("c")]),
            Some(retryable("b"))
        );
        assert_eq!(
            worst([retryable("a"), permanent("b"), retryable("c")]),
            Some(retryable("a"))
        );
        assert!(retryable("r").is_retryable() && !permanent("p").is_retryable());
    }

    #[cfg(feature = "aws")]
    #[test]
    fn diagnostic_carries_class_and_code() {
        let e = AwsError::classify(
            "sagemaker",
            "DescribeModelPackage",
            Some("ValidationException"),
            Some(400),
            "no such package",
        );
        let d = diagnostic(&e);
        assert_eq!(d.error_type, "Permanent.Client");
        assert!(d.error_message.contains("no such package"));
    }
}
