//! Staged batches in the lake bucket (the claim-check pattern): written and read whole,
//! removed by prefix when the execution that made them is over.

use async_trait::async_trait;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use pipeline_domain::StorageError;
use pipeline_domain::ports::BatchStaging;

use super::{S3Lake, object_url};
use crate::error::{classify, is_transient_code};

/// The most keys one DeleteObjects request may name.
const DELETE_CHUNK: usize = 1000;

/// The content type of staged objects: the carried batches are JSON.
const STAGED_CONTENT_TYPE: &str = "application/json";

#[async_trait]
impl BatchStaging for S3Lake {
    async fn put_staged(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
        self.put("put staged object", key, body, STAGED_CONTENT_TYPE)
            .await
    }

    /// Reads a staged object whole (a staged part is bounded by `PIPELINE_PART_EVENTS`). A
    /// missing key is permanent: the stage that wrote it is over, so waiting cannot help.
    async fn get_staged(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let operation = || format!("get staged object {}", object_url(&self.bucket, key));
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| classify(operation(), error))?;
        let body = output
            .body
            .collect()
            .await
            .map_err(|error| StorageError::transient(operation(), error))?;
        Ok(body.to_vec())
    }

    /// Removes `prefix` and every key below it as a folder (`prefix/...`), as the local lake
    /// removes a folder: `staging/bat_1` does not take `staging/bat_10/` with it. The listing
    /// is paged and the keys are deleted a thousand at a time while it goes on.
    async fn delete_staged(&self, prefix: &str) -> Result<usize, StorageError> {
        let operation = || {
            format!(
                "delete staged objects under {}",
                object_url(&self.bucket, prefix)
            )
        };
        if prefix.is_empty() {
            return Err(StorageError::permanent(
                operation(),
                "an empty prefix would name the whole bucket",
            ));
        }
        let folder = if prefix.ends_with('/') {
            prefix.to_owned()
        } else {
            format!("{prefix}/")
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut pending = Vec::with_capacity(DELETE_CHUNK);
        let mut deleted = 0;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| classify(operation(), error))?;
            for key in page.contents().iter().filter_map(|object| object.key()) {
                if key != prefix && !key.starts_with(&folder) {
                    continue;
                }
                let identifier = ObjectIdentifier::builder()
                    .key(key)
                    .build()
                    .map_err(|error| StorageError::permanent(operation(), error))?;
                pending.push(identifier);
                if pending.len() == DELETE_CHUNK {
                    deleted += self.delete_keys(std::mem::take(&mut pending)).await?;
                }
            }
        }
        if !pending.is_empty() {
            deleted += self.delete_keys(pending).await?;
        }
        Ok(deleted)
    }
}

impl S3Lake {
    /// Deletes up to a thousand keys in one DeleteObjects request, in quiet mode (the answer
    /// lists only the keys that failed). Any failed key fails the call, transient when its
    /// error code is a throttling or temporary one.
    async fn delete_keys(&self, keys: Vec<ObjectIdentifier>) -> Result<usize, StorageError> {
        let operation = format!("delete staged objects in s3://{}", self.bucket);
        let count = keys.len();
        let delete = Delete::builder()
            .set_objects(Some(keys))
            .quiet(true)
            .build()
            .map_err(|error| StorageError::permanent(&operation, error))?;
        let output = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|error| classify(&operation, error))?;
        let errors = output.errors();
        let Some(first) = errors.first() else {
            return Ok(count);
        };
        let code = first.code().unwrap_or("an unnamed error");
        let message = format!(
            "{} of {count} key(s) were not deleted; the first, {}, failed with {code}: {}",
            errors.len(),
            first.key().unwrap_or("?"),
            first.message().unwrap_or("no message"),
        );
        if errors
            .iter()
            .any(|error| error.code().is_some_and(is_transient_code))
        {
            Err(StorageError::transient(operation, message))
        } else {
            Err(StorageError::permanent(operation, message))
        }
    }
}
