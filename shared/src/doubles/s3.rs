//! An object store in memory (the port of `adapters::s3`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use crate::error::AwsError;

/// An object store in memory, keyed by `s3://bucket/key`.
#[derive(Default)]
pub struct InMemoryStore {
    pub objects: Mutex<std::collections::BTreeMap<String, (Vec<u8>, String)>>,
    /// Answer `403 AccessDenied` instead of `404 NoSuchKey` for a missing key, as S3 does for a
    /// caller without `s3:ListBucket` on the key's prefix ([`InMemoryStore::deny_missing`]).
    missing_denied: AtomicBool,
    /// Reads and listings under these prefixes fail with `(code, status)`
    /// ([`InMemoryStore::fail_under`]).
    faults: Mutex<Vec<(String, String, u16)>>,
}

impl InMemoryStore {
    pub fn insert(&self, uri: &str, body: impl Into<Vec<u8>>) {
        self.objects.lock().unwrap().insert(
            uri.to_owned(),
            (body.into(), "application/octet-stream".to_owned()),
        );
    }

    /// Missing keys answer `403 AccessDenied` (AWS with `s3:ListBucket` scoped by prefix).
    pub fn deny_missing(&self, on: bool) {
        self.missing_denied.store(on, Ordering::SeqCst);
    }

    /// Every `GetObject` and `ListObjectsV2` under `prefix` (an `s3://` URI prefix) fails with S3's
    /// `code` and HTTP `status` from now on (`SlowDown`/503 is retryable, `AccessDenied`/403
    /// permanent), as a store fault on one model's data.
    pub fn fail_under(&self, prefix: &str, code: &str, status: u16) {
        self.faults
            .lock()
            .unwrap()
            .push((prefix.to_owned(), code.to_owned(), status));
    }

    fn fault(&self, operation: &'static str, uri: &str) -> Result<(), AwsError> {
        match self
            .faults
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _, _)| uri.starts_with(p.as_str()))
        {
            Some((_, code, status)) => Err(AwsError::classify(
                "s3",
                operation,
                Some(code),
                Some(*status),
                format!("injected fault on {uri}"),
            )),
            None => Ok(()),
        }
    }

    pub fn text(&self, uri: &str) -> Option<String> {
        self.objects
            .lock()
            .unwrap()
            .get(uri)
            .map(|(b, _)| String::from_utf8_lossy(b).into_owned())
    }
}

#[async_trait]
impl crate::storage::ObjectStore for InMemoryStore {
    async fn get(&self, uri: &crate::storage::S3Uri) -> Result<Vec<u8>, AwsError> {
        self.fault("GetObject", &uri.to_string())?;
        self.objects
            .lock()
            .unwrap()
            .get(&uri.to_string())
            .map(|(b, _)| b.clone())
            .ok_or_else(|| {
                if self.missing_denied.load(Ordering::SeqCst) {
                    AwsError::classify(
                        "s3",
                        "GetObject",
                        Some("AccessDenied"),
                        Some(403),
                        "Access Denied",
                    )
                } else {
                    AwsError::classify(
                        "s3",
                        "GetObject",
                        Some("NoSuchKey"),
                        Some(404),
                        format!("{uri} does not exist"),
                    )
                }
            })
    }

    /// Streams a copy of the object in small reads (64 bytes per `fill_buf`), so readers are
    /// exercised across chunk boundaries.
    async fn open(
        &self,
        uri: &crate::storage::S3Uri,
    ) -> Result<crate::storage::ObjectReader, AwsError> {
        let body = self.get(uri).await?;
        Ok(Box::new(SmallReads {
            body,
            pos: 0,
            chunk: 64,
        }))
    }

    async fn put(
        &self,
        uri: &crate::storage::S3Uri,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), AwsError> {
        self.objects
            .lock()
            .unwrap()
            .insert(uri.to_string(), (body, content_type.to_owned()));
        Ok(())
    }

    async fn list(
        &self,
        prefix: &crate::storage::S3Uri,
    ) -> Result<Vec<crate::storage::ObjectInfo>, AwsError> {
        let p = prefix.to_string();
        self.fault("ListObjectsV2", &p)?;
        Ok(self
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(&p))
            .map(|(k, (b, _))| crate::storage::ObjectInfo {
                uri: crate::storage::S3Uri::parse(k).expect("stored keys are URIs"),
                size: b.len() as u64,
                last_modified: None,
            })
            .collect())
    }
}

/// An in-memory body that hands out at most `chunk` bytes per read, like a network stream.
struct SmallReads {
    body: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl tokio::io::AsyncRead for SmallReads {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (self.body.len() - self.pos)
            .min(self.chunk)
            .min(buf.remaining());
        let start = self.pos;
        buf.put_slice(&self.body[start..start + n]);
        self.pos += n;
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncBufRead for SmallReads {
    fn poll_fill_buf(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<&[u8]>> {
        let this = self.get_mut();
        let end = (this.pos + this.chunk).min(this.body.len());
        std::task::Poll::Ready(Ok(&this.body[this.pos..end]))
    }

    fn consume(mut self: std::pin::Pin<&mut Self>, amt: usize) {
        self.pos = (self.pos + amt).min(self.body.len());
    }
}
