//! `BatchWriteItem` and `BatchGetItem` until every item is done.
//!
//! DynamoDB may answer a batch with some of it left over (`UnprocessedItems`,
//! `UnprocessedKeys`) when a partition is throttled. The leftovers are sent again with
//! backoff and jitter until none remain or the [`Backoff`] deadline passes, which fails the
//! call as transient so the state machine's `Retry` takes over. Throttling answers to the
//! whole request are retried the same way.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, WriteRequest};
use pipeline_domain::StorageError;

use crate::backoff::Backoff;
use crate::error::classify;

/// Most write requests in one `BatchWriteItem`.
pub const WRITES_PER_BATCH: usize = 25;
/// Most keys in one `BatchGetItem`.
pub const KEYS_PER_BATCH: usize = 100;

/// Writes every request to `table`, 25 at a time.
pub async fn write_all(
    client: &Client,
    table: &str,
    requests: Vec<WriteRequest>,
    backoff: Backoff,
) -> Result<(), StorageError> {
    let operation = || format!("write items to table {table}");
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        let mut pending: Vec<WriteRequest> = requests.by_ref().take(WRITES_PER_BATCH).collect();
        let mut attempts = backoff.start();
        loop {
            let sent = client
                .batch_write_item()
                .request_items(table, pending.clone())
                .send()
                .await;
            match sent {
                Ok(output) => {
                    pending = output
                        .unprocessed_items
                        .and_then(|mut left| left.remove(table))
                        .unwrap_or_default();
                    if pending.is_empty() {
                        break;
                    }
                }
                Err(error) => {
                    let error = classify(operation(), error);
                    if !error.is_transient() {
                        return Err(error);
                    }
                }
            }
            if !attempts.wait().await {
                return Err(StorageError::transient(
                    operation(),
                    format!(
                        "{} items were still unprocessed after {} retries",
                        pending.len(),
                        attempts.retries() - 1
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Reads the items with `keys` from `table` (strongly consistent), 100 keys at a time.
/// Missing items are simply absent from the result.
pub async fn get_all(
    client: &Client,
    table: &str,
    keys: Vec<HashMap<String, AttributeValue>>,
    backoff: Backoff,
) -> Result<Vec<HashMap<String, AttributeValue>>, StorageError> {
    let operation = || format!("read items from table {table}");
    let mut found = Vec::new();
    for chunk in keys.chunks(KEYS_PER_BATCH) {
        let mut pending = chunk.to_vec();
        let mut attempts = backoff.start();
        loop {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending.clone()))
                .consistent_read(true)
                .build()
                .map_err(|error| StorageError::permanent(operation(), error))?;
            match client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
            {
                Ok(output) => {
                    if let Some(mut responses) = output.responses {
                        found.extend(responses.remove(table).unwrap_or_default());
                    }
                    pending = output
                        .unprocessed_keys
                        .and_then(|mut left| left.remove(table))
                        .map(|left| left.keys)
                        .unwrap_or_default();
                    if pending.is_empty() {
                        break;
                    }
                }
                Err(error) => {
                    let error = classify(operation(), error);
                    if !error.is_transient() {
                        return Err(error);
                    }
                }
            }
            if !attempts.wait().await {
                return Err(StorageError::transient(
                    operation(),
                    format!("{} keys were still unprocessed", pending.len()),
                ));
            }
        }
    }
    Ok(found)
}
