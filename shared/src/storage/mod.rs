//! The object-store port (S3) and S3 URIs.
//!
//! * [`stream`]: many objects streamed in order into a synchronous reader (the metrics engine)
//!   with bounded memory.

pub mod stream;

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::AwsError;

/// `s3://bucket/key`. The key may be empty (a bucket) or end with `/` (a prefix).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct S3Uri {
    pub bucket: String,
    pub key: String,
}

impl S3Uri {
    pub fn parse(uri: &str) -> Result<S3Uri, String> {
        let rest = uri
            .trim()
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{uri:?} is not an s3:// URI"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!("{uri:?}: {bucket:?} is not a valid S3 bucket name"));
        }
        Ok(S3Uri {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    /// This URI as a prefix (`key/`) joined with `path`.
    pub fn join(&self, path: &str) -> S3Uri {
        let base = self.key.trim_end_matches('/');
        let path = path.trim_start_matches('/');
        let key = if base.is_empty() {
            path.to_owned()
        } else {
            format!("{base}/{path}")
        };
        S3Uri {
            bucket: self.bucket.clone(),
            key,
        }
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub uri: S3Uri,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The whole object. A missing object is a `NotFound` error.
    async fn get(&self, uri: &S3Uri) -> Result<Vec<u8>, AwsError>;
    async fn put(&self, uri: &S3Uri, body: Vec<u8>, content_type: &str) -> Result<(), AwsError>;
    /// Every object under the prefix (all pages), in key order.
    async fn list(&self, prefix: &S3Uri) -> Result<Vec<ObjectInfo>, AwsError>;

    /// The object as a stream, for reading large objects (data capture) without holding them in
    /// memory. A missing object is a `NotFound` error; errors while reading surface as
    /// `std::io::Error`s of the reader. The default buffers through [`ObjectStore::get`]; the S3
    /// adapter streams the response body.
    async fn open(&self, uri: &S3Uri) -> Result<ObjectReader, AwsError> {
        Ok(Box::new(std::io::Cursor::new(self.get(uri).await?)))
    }
}

/// A streaming object body ([`ObjectStore::open`]).
pub type ObjectReader = Box<dyn tokio::io::AsyncBufRead + Send + Unpin>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_join() {
        let u = S3Uri::parse("s3://my-bucket/capture/ep/").unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.key.as_str()),
            ("my-bucket", "capture/ep/")
        );
        assert_eq!(
            u.join("2024/01/01").to_string(),
            "s3://my-bucket/capture/ep/2024/01/01"
        );
        assert_eq!(
            S3Uri::parse("s3://bkt").unwrap().join("a").to_string(),
            "s3://bkt/a"
        );
        assert!(
            S3Uri::parse("https://x/y")
                .unwrap_err()
                .contains("not an s3://")
        );
        assert!(
            S3Uri::parse("s3://Bad_Bucket/x")
                .unwrap_err()
                .contains("bucket name")
        );
    }
}
