//! Conditional writes in memory (the port of `adapters::s3_conditional`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::error::AwsError;
use crate::retrain::lease::{ConditionalStore, Versioned};
use crate::storage::S3Uri;

/// Objects in memory with S3's conditional-write semantics: a write whose precondition does not
/// hold is refused (`Ok(None)`), atomically. ETags are a per-store counter.
#[derive(Default)]
pub struct InMemoryConditionalStore {
    objects: Mutex<HashMap<S3Uri, Versioned>>,
    next: AtomicUsize,
    /// Writes refused for a failed precondition.
    pub refused: AtomicUsize,
}

impl InMemoryConditionalStore {
    pub fn body(&self, uri: &S3Uri) -> Option<Vec<u8>> {
        self.objects
            .lock()
            .unwrap()
            .get(uri)
            .map(|v| v.body.clone())
    }

    /// Puts an object unconditionally (a test's setup).
    pub fn put(&self, uri: &S3Uri, body: Vec<u8>) {
        let etag = format!("\"{}\"", self.next.fetch_add(1, Ordering::SeqCst));
        self.objects
            .lock()
            .unwrap()
            .insert(uri.clone(), Versioned { body, etag });
    }
}

#[async_trait]
impl ConditionalStore for InMemoryConditionalStore {
    async fn read(&self, uri: &S3Uri) -> Result<Option<Versioned>, AwsError> {
        let read = self.objects.lock().unwrap().get(uri).cloned();
        // A round trip: other tasks may write between this read and the caller's write.
        tokio::task::yield_now().await;
        Ok(read)
    }

    async fn write_if(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        expected: Option<&str>,
    ) -> Result<Option<String>, AwsError> {
        let mut objects = self.objects.lock().unwrap();
        let holds = match (objects.get(uri), expected) {
            (None, None) => true,
            (Some(v), Some(etag)) => v.etag == etag,
            _ => false,
        };
        if !holds {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Ok(None);
        }
        let etag = format!("\"{}\"", self.next.fetch_add(1, Ordering::SeqCst));
        objects.insert(
            uri.clone(),
            Versioned {
                body,
                etag: etag.clone(),
            },
        );
        Ok(Some(etag))
    }
}
