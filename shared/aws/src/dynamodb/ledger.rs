//! Sent notifications in the idempotency table: one item per notification id, key
//! `id` = `notification#<id>`, expiring through the table's `expiresAt` TTL.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use pipeline_domain::StorageError;

use super::batch::{get_all, write_all};
use super::idempotency::IdempotencyTable;
use crate::ledger::NotificationLedger;

fn key_of(id: &str) -> String {
    format!("notification#{id}")
}

#[async_trait]
impl NotificationLedger for IdempotencyTable {
    async fn unsent(&self, ids: &[&str]) -> Result<HashSet<String>, StorageError> {
        let keys = ids
            .iter()
            .map(|id| HashMap::from([("id".to_owned(), AttributeValue::S(key_of(id)))]))
            .collect();
        let items = get_all(&self.client, &self.table, keys, self.backoff).await?;
        let sent: HashSet<&str> = items
            .iter()
            .filter_map(|item| item.get("id").and_then(|id| id.as_s().ok()))
            .filter_map(|key| key.strip_prefix("notification#"))
            .collect();
        Ok(ids
            .iter()
            .filter(|id| !sent.contains(**id))
            .map(|id| (*id).to_owned())
            .collect())
    }

    async fn record_sent(&self, ids: &[String]) -> Result<(), StorageError> {
        let now = crate::dynamodb::now_millis();
        let requests = ids
            .iter()
            .map(|id| {
                let put = PutRequest::builder()
                    .set_item(Some(self.claim_item(&key_of(id), now)))
                    .build()
                    .map_err(|error| StorageError::permanent("build a ledger write", error))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        write_all(&self.client, &self.table, requests, self.backoff).await
    }
}
