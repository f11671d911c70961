//! The data lake in one S3 bucket: events as Parquet objects, quarantined records as given.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use pipeline_adapters::parquet::encode_events;
use pipeline_domain::StorageError;
use pipeline_domain::ports::DataLake;
use pipeline_domain::stages::store::StoredEvent;

use super::object_url;
use crate::error::classify;

/// The media type of Parquet files, registered with IANA.
pub const PARQUET_CONTENT_TYPE: &str = "application/vnd.apache.parquet";

/// The lake bucket. It is also where staged batches wait between stages, under `staging/`
/// (see the [`BatchStaging`](pipeline_domain::ports::BatchStaging) implementation).
#[derive(Clone, Debug)]
pub struct S3Lake {
    pub(super) client: aws_sdk_s3::Client,
    pub(super) bucket: String,
}

impl S3Lake {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Writes `body` at `key` with one PutObject; a key written again is replaced whole.
    pub(super) async fn put(
        &self,
        operation: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|error| {
                classify(
                    format!("{operation} {}", object_url(&self.bucket, key)),
                    error,
                )
            })?;
        Ok(())
    }
}

#[async_trait]
impl DataLake for S3Lake {
    async fn put_events(&self, key: &str, events: &[StoredEvent]) -> Result<(), StorageError> {
        let body = encode_events(events).map_err(|error| {
            StorageError::permanent(
                format!("encode Parquet for {}", object_url(&self.bucket, key)),
                error,
            )
        })?;
        self.put("put events", key, body, PARQUET_CONTENT_TYPE)
            .await
    }

    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.put("put lake object", key, body, content_type).await
    }
}
