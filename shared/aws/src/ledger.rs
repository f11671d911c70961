//! The record of notifications already sent, so that a notification id is published once
//! (the `Notifier` port's promise). The DynamoDB idempotency table keeps it when deployed.

use std::collections::HashSet;

use async_trait::async_trait;
use pipeline_domain::StorageError;

#[async_trait]
pub trait NotificationLedger: Send + Sync {
    /// Which of `ids` were never recorded as sent.
    async fn unsent(&self, ids: &[&str]) -> Result<HashSet<String>, StorageError>;
    /// Records `ids` as sent.
    async fn record_sent(&self, ids: &[String]) -> Result<(), StorageError>;
}
