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

    /// The whole object, or None where its absence is legitimate (a first run has no previous
    /// summary). Missing means `404 NoSuchKey` **or `403 AccessDenied`**: on AWS, a caller
    /// without `s3:ListBucket` on the key's prefix gets 403 for a key that does not exist, so the
    /// two cannot be told apart. Use it only for optional objects under a prefix the run also
    /// writes (a real permission problem then fails that write loudly); never for inputs.
    async fn get_optional(&self, uri: &S3Uri) -> Result<Option<Vec<u8>>, AwsError> {
        match self.get(uri).await {
            Ok(body) => Ok(Some(body)),
            Err(e) if e.is_not_found() || is_access_denied(&e) => {
                if is_access_denied(&e) {
                    tracing::info!(object = %uri, "403 AccessDenied on an optional object: read as absent (S3 answers 403 for a missing key without s3:ListBucket)");
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The object as a stream, for reading large objects (data capture) without holding them in
    /// memory. A missing object is a `NotFound` error; errors while reading surface as
    /// `std::io::Error`s of the reader. The default buffers through [`ObjectStore::get`]; the S3
    /// adapter streams the response body.
    async fn open(&self, uri: &S3Uri) -> Result<ObjectReader, AwsError> {
        Ok(Box::new(std::io::Cursor::new(self.get(uri).await?)))
    }
}

/// Whether S3 refused the request (`403 AccessDenied`), which it also answers for a missing key
/// when the caller may not list the key's prefix.
pub fn is_access_denied(e: &AwsError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("AccessDenied" | "Forbidden" | "403")
    )
}

/// After a `403 AccessDenied` on reading a *listed* object: whether it is really gone (a fresh
/// listing of its key no longer shows it), so it can be skipped as vanished. False when the
/// listing still shows it or cannot be made: then the 403 is a real permission problem.
pub async fn vanished_after_denial(store: &dyn ObjectStore, uri: &S3Uri) -> bool {
    match store.list(uri).await {
        Ok(objects) => !objects.iter().any(|o| o.uri == *uri),
        Err(_) => false,
    }
}

/// A streaming object body ([`ObjectStore::open`]).
pub type ObjectReader = Box<dyn tokio::io::AsyncBufRead + Send + Unpin>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn optional_reads_treat_403_as_absent_but_listed_objects_need_a_fresh_listing() {
        use crate::doubles::InMemoryStore;
        let store = InMemoryStore::default();
        store.insert("s3://bkt/reports/a.json", "{}");
        let missing = S3Uri::parse("s3://bkt/reports/none.json").unwrap();
        let present = S3Uri::parse("s3://bkt/reports/a.json").unwrap();
        // 404 (ListBucket granted) and 403 (ListBucket scoped away) both read as absent.
        assert_eq!(store.get_optional(&missing).await.unwrap(), None);
        store.deny_missing(true);
        let e = store.get(&missing).await.unwrap_err();
        assert!(is_access_denied(&e) && !e.is_not_found(), "{e}");
        assert_eq!(store.get_optional(&missing).await.unwrap(), None);
        assert_eq!(
            store.get_optional(&present).await.unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        // A throttled or otherwise failed read is not absence.
        let other = AwsError::classify("s3", "GetObject", Some("SlowDown"), Some(503), "slow");
        assert!(!is_access_denied(&other));
        assert!(vanished_after_denial(&store, &missing).await);
        assert!(!vanished_after_denial(&store, &present).await);
    }

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
