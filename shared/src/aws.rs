//! The one place AWS clients are built.
//!
//! `aws-config` already honours `AWS_ENDPOINT_URL` and the per-service variants
//! (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SAGEMAKER`, ...), credentials and region from the
//! environment, and `AWS_MAX_ATTEMPTS`/`AWS_RETRY_MODE`. On top of that this factory turns on S3
//! path-style addressing whenever an endpoint override is set: a local emulator on
//! `127.0.0.1:PORT` has no `bucket.host` virtual hosts.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::config::{Lookup, ProcessEnv};

/// Shared SDK configuration; clients are cheap to build from it and share its HTTP client.
#[derive(Clone, Debug)]
pub struct Aws {
    sdk: SdkConfig,
    s3_path_style: bool,
}

impl Aws {
    /// Loads region, credentials, endpoints and retry settings from the environment.
    pub async fn from_env() -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Aws {
            sdk,
            s3_path_style: s3_needs_path_style(&ProcessEnv),
        }
    }

    pub fn from_config(sdk: SdkConfig, s3_path_style: bool) -> Self {
        Aws { sdk, s3_path_style }
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    pub fn sagemaker(&self) -> aws_sdk_sagemaker::Client {
        aws_sdk_sagemaker::Client::new(&self.sdk)
    }

    pub fn application_autoscaling(&self) -> aws_sdk_applicationautoscaling::Client {
        aws_sdk_applicationautoscaling::Client::new(&self.sdk)
    }

    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.sdk)
    }

    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk)
    }

    pub fn stepfunctions(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.sdk)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.s3_path_style)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

/// Path-style S3 when an endpoint override applies to S3, or when asked for explicitly with
/// `AWS_S3_FORCE_PATH_STYLE=true`.
pub fn s3_needs_path_style(lookup: &dyn Lookup) -> bool {
    let set = |k: &str| lookup.get(k).is_some_and(|v| !v.trim().is_empty());
    let explicit = lookup
        .get("AWS_S3_FORCE_PATH_STYLE")
        .map(|v| v.trim().eq_ignore_ascii_case("true"));
    explicit.unwrap_or_else(|| set("AWS_ENDPOINT_URL") || set("AWS_ENDPOINT_URL_S3"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_follows_endpoint_overrides() {
        assert!(s3_needs_path_style(&[(
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1:5000"
        )]));
        assert!(s3_needs_path_style(&[(
            "AWS_ENDPOINT_URL_S3",
            "http://127.0.0.1:5000"
        )]));
        assert!(!s3_needs_path_style(&[(
            "AWS_ENDPOINT_URL_SAGEMAKER",
            "http://127.0.0.1:5000"
        )]));
        assert!(!s3_needs_path_style(&[("AWS_REGION", "eu-west-1")]));
        assert!(!s3_needs_path_style(&[
            ("AWS_ENDPOINT_URL", "http://x"),
            ("AWS_S3_FORCE_PATH_STYLE", "false")
        ]));
        assert!(s3_needs_path_style(&[("AWS_S3_FORCE_PATH_STYLE", "true")]));
    }
}
