//! Notifications published to the alerts topic, each id once: the ledger says which ids
//! are still unsent, and records those that went out.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use pipeline_domain::StorageError;
use pipeline_domain::ports::Notifier;
use pipeline_domain::stages::store::Notification;

use super::batch::refused;
use super::request::{batches, prepare};
use crate::backoff::Backoff;
use crate::ledger::NotificationLedger;

/// The alerts topic, with the ledger of the notification ids already published to it.
pub struct SnsNotifier {
    pub(super) client: aws_sdk_sns::Client,
    pub(super) topic_arn: String,
    ledger: Arc<dyn NotificationLedger>,
    pub(super) backoff: Backoff,
}

impl SnsNotifier {
    pub fn new(
        client: aws_sdk_sns::Client,
        topic_arn: impl Into<String>,
        ledger: Arc<dyn NotificationLedger>,
    ) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
            ledger,
            backoff: Backoff::default(),
        }
    }

    /// Waits between the retries of failed entries by `backoff` instead of the default.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    pub(super) fn operation(&self) -> String {
        format!("publish notifications to {}", self.topic_arn)
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    /// Publishes the notifications the ledger does not know as sent, ten to a PublishBatch
    /// request, and records those that went out. Entries SNS refuses do not stop the other
    /// batches; they fail the call once every batch was tried and the published ids are
    /// recorded: transiently if any failure was SNS's own, else permanently. A request that
    /// fails as a whole stops the call there, after the same recording.
    async fn publish(&self, notifications: &[Notification]) -> Result<usize, StorageError> {
        if notifications.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = notifications.iter().map(|n| n.id.as_str()).collect();
        let unsent = self.ledger.unsent(&ids).await?;
        let mut seen = HashSet::new();
        let prepared = notifications
            .iter()
            .filter(|n| unsent.contains(&n.id) && seen.insert(n.id.as_str()))
            .enumerate()
            .map(|(index, notification)| prepare(index, notification))
            .collect::<Result<Vec<_>, _>>()?;
        if prepared.is_empty() {
            return Ok(0);
        }
        let mut sent = Vec::with_capacity(prepared.len());
        let mut unpublished = Vec::new();
        let mut stopped = None;
        for batch in batches(prepared) {
            if let Err(error) = self.publish_batch(batch, &mut sent, &mut unpublished).await {
                stopped = Some(error);
                break;
            }
        }
        let recorded = if sent.is_empty() {
            Ok(())
        } else {
            self.ledger.record_sent(&sent).await
        };
        let failure = stopped.or_else(|| refused(self.operation(), &unpublished));
        match (failure, recorded) {
            (None, Ok(())) => Ok(sent.len()),
            (None, Err(error)) => Err(error),
            (Some(failure), recorded) => {
                if let Err(error) = recorded {
                    // The publishing failure decides whether the call is retried; the
                    // published ids that went unrecorded will be sent again if it is.
                    tracing::warn!(
                        topic = %self.topic_arn,
                        published = sent.len(),
                        error = %error,
                        "Published notifications could not be recorded as sent."
                    );
                }
                Err(failure)
            }
        }
    }
}
