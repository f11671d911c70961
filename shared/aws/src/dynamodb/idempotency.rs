//! The idempotency table: claims of batch ids, event ids and notification ids.
//!
//! One item per claim, key `id` (`batch#<batchId>`, `event#<eventId>`,
//! `notification#<id>`), with `appliedAt` (milliseconds) and `expiresAt` (seconds since the
//! epoch, the table's TTL attribute). A claim is taken with a conditional write that
//! succeeds only when the id was never claimed or its claim is older than the idempotency
//! window, so of two concurrent claims exactly one wins. DynamoDB's TTL deletes expired
//! claims some time after `expiresAt`; the condition does not rely on that deletion.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put};
use pipeline_domain::StorageError;

use crate::backoff::Backoff;
use crate::error::classify;

/// The condition of every claim: `:expired` is the oldest `appliedAt` still in the window.
pub const CLAIM_CONDITION: &str = "attribute_not_exists(id) OR appliedAt < :expired";

#[derive(Clone)]
pub struct IdempotencyTable {
    pub(crate) client: Client,
    pub(crate) table: String,
    pub(crate) window_millis: i64,
    pub(crate) backoff: Backoff,
}

impl IdempotencyTable {
    pub fn new(client: Client, table: impl Into<String>, window: std::time::Duration) -> Self {
        Self {
            client,
            table: table.into(),
            window_millis: window.as_millis() as i64,
            backoff: Backoff::default(),
        }
    }

    /// The item recording a claim of `key` made at `now`.
    pub fn claim_item(&self, key: &str, now: i64) -> HashMap<String, AttributeValue> {
        let expires_at = (now + self.window_millis) / 1000;
        HashMap::from([
            ("id".to_owned(), AttributeValue::S(key.to_owned())),
            ("appliedAt".to_owned(), AttributeValue::N(now.to_string())),
            (
                "expiresAt".to_owned(),
                AttributeValue::N(expires_at.to_string()),
            ),
        ])
    }

    /// A conditional put claiming `key`, for a transaction or a single write.
    pub fn claim_put(&self, key: &str, now: i64) -> Result<Put, StorageError> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.claim_item(key, now)))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_values(":expired", self.expired_before(now))
            .build()
            .map_err(|error| StorageError::permanent("build a claim", error))
    }

    fn expired_before(&self, now: i64) -> AttributeValue {
        AttributeValue::N((now - self.window_millis).to_string())
    }

    /// Whether `key` holds a claim made within the window (a strongly consistent read).
    pub async fn is_claimed(&self, key: &str, now: i64) -> Result<bool, StorageError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| classify(format!("read claim {key}"), error))?;
        let applied_at = output
            .item
            .as_ref()
            .and_then(|item| super::item::number_of(item, "appliedAt"));
        Ok(applied_at.is_some_and(|at| at as i64 >= now - self.window_millis))
    }

    /// Claims `key` on its own: true when this call took the claim, false when a claim
    /// within the window was already there.
    pub async fn claim(&self, key: &str, now: i64) -> Result<bool, StorageError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.claim_item(key, now)))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_values(":expired", self.expired_before(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(classify(format!("claim {key}"), error)),
        }
    }
}
