//! S3 adapter, conditional-write part: the [`ConditionalStore`] port (`PutObject` with
//! `If-None-Match: *` / `If-Match`), which the retraining lease is built on.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use super::s3::S3;
use crate::error::AwsError;
use crate::retrain::lease::{ConditionalStore, Versioned};
use crate::storage::S3Uri;

const SERVICE: &str = "s3";

/// The answers S3 gives a conditional write that lost: `412 PreconditionFailed`, and
/// `409 ConditionalRequestConflict` for a concurrent conditional write to the same key.
fn lost_the_race(e: &AwsError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    )
}

#[async_trait]
impl ConditionalStore for S3 {
    async fn read(&self, uri: &S3Uri) -> Result<Option<Versioned>, AwsError> {
        const OP: &str = "GetObject";
        let out = match self
            .client()
            .get_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, OP, e);
                return if e.code.as_deref() == Some("NoSuchKey") {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| AwsError::transport(SERVICE, OP, format!("reading {uri}: {e}")))?
            .into_bytes()
            .to_vec();
        Ok(Some(Versioned { body, etag }))
    }

    async fn write_if(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        expected: Option<&str>,
    ) -> Result<Option<String>, AwsError> {
        let put = self
            .client()
            .put_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        let put = match expected {
            None => put.if_none_match("*"),
            Some(etag) => put.if_match(etag),
        };
        match put.send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_owned())),
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, "PutObject", e);
                if lost_the_race(&e) { Ok(None) } else { Err(e) }
            }
        }
    }
}
