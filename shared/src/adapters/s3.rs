//! S3 adapter.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use super::to_chrono;
use crate::error::AwsError;
use crate::storage::{ObjectInfo, ObjectReader, ObjectStore, S3Uri};

const SERVICE: &str = "s3";
const GET_OBJECT: &str = "GetObject";

#[derive(Clone, Debug)]
pub struct S3 {
    client: Client,
}

impl S3 {
    pub fn new(client: Client) -> Self {
        S3 { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn get_object(
        &self,
        uri: &S3Uri,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, AwsError> {
        self.client
            .get_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, GET_OBJECT, e))
    }
}

#[async_trait]
impl ObjectStore for S3 {
    async fn get(&self, uri: &S3Uri) -> Result<Vec<u8>, AwsError> {
        let bytes = self
            .get_object(uri)
            .await?
            .body
            .collect()
            .await
            .map_err(|e| AwsError::transport(SERVICE, GET_OBJECT, format!("reading {uri}: {e}")))?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn open(&self, uri: &S3Uri) -> Result<ObjectReader, AwsError> {
        Ok(Box::new(self.get_object(uri).await?.body.into_async_read()))
    }

    async fn put(&self, uri: &S3Uri, body: Vec<u8>, content_type: &str) -> Result<(), AwsError> {
        self.client
            .put_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "PutObject", e))?;
        Ok(())
    }

    async fn list(&self, prefix: &S3Uri) -> Result<Vec<ObjectInfo>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&prefix.bucket)
            .prefix(&prefix.key)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk(SERVICE, "ListObjectsV2", e))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                out.push(ObjectInfo {
                    uri: S3Uri {
                        bucket: prefix.bucket.clone(),
                        key: key.to_owned(),
                    },
                    size: o.size().unwrap_or(0).max(0) as u64,
                    last_modified: o.last_modified().and_then(to_chrono),
                });
            }
        }
        out.sort_by(|a, b| a.uri.key.cmp(&b.uri.key));
        Ok(out)
    }
}
