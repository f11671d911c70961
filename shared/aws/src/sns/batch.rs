//! One PublishBatch request and its retries: entries SNS failed on its own side are sent
//! again; what is still refused after that is summed up as one error.

use std::collections::HashMap;

use pipeline_domain::StorageError;

use super::SnsNotifier;
use super::request::Prepared;
use crate::error::classify;

/// How many times entries that failed through no fault of the request are sent again.
const MAX_RETRIES: u32 = 3;

/// How many refused notifications an error message names.
const NAMED_FAILURES: usize = 5;

/// A notification SNS refused for good, or kept refusing after the retries.
pub(super) struct Unpublished {
    notification_id: String,
    code: String,
    message: String,
    sender_fault: bool,
}

impl SnsNotifier {
    /// Publishes one batch. Entries SNS failed through no fault of the request (their
    /// `SenderFault` is false) are sent again, up to [`MAX_RETRIES`] times with backoff and
    /// within the backoff's deadline; the others are not. Published ids go to `sent`, what
    /// is left to `unpublished`. A request that fails as a whole (after the SDK's own
    /// retries) is the error.
    pub(super) async fn publish_batch(
        &self,
        batch: Vec<Prepared>,
        sent: &mut Vec<String>,
        unpublished: &mut Vec<Unpublished>,
    ) -> Result<(), StorageError> {
        let mut pending = batch;
        let mut attempts = self.backoff.start();
        loop {
            let entries = pending
                .iter()
                .map(|prepared| prepared.entry.clone())
                .collect();
            let output = self
                .client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|error| classify(self.operation(), error))?;
            let failures: HashMap<&str, _> = output
                .failed()
                .iter()
                .map(|failure| (failure.id(), failure))
                .collect();
            let mut retry = Vec::new();
            for prepared in pending {
                // SNS lists every entry as successful or failed: one not failed went out.
                let Some(failure) = failures.get(prepared.entry.id()) else {
                    sent.push(prepared.notification_id);
                    continue;
                };
                let refused = Unpublished {
                    notification_id: prepared.notification_id.clone(),
                    code: failure.code().to_owned(),
                    message: failure.message().unwrap_or_default().to_owned(),
                    sender_fault: failure.sender_fault(),
                };
                if refused.sender_fault {
                    unpublished.push(refused);
                } else {
                    retry.push((prepared, refused));
                }
            }
            if retry.is_empty() {
                return Ok(());
            }
            if attempts.retries() >= MAX_RETRIES || !attempts.wait().await {
                unpublished.extend(retry.into_iter().map(|(_, refused)| refused));
                return Ok(());
            }
            tracing::warn!(
                topic = %self.topic_arn,
                entries = retry.len(),
                retry = attempts.retries(),
                "SNS failed some notifications on its side; sending them again."
            );
            pending = retry.into_iter().map(|(prepared, _)| prepared).collect();
        }
    }
}

/// The error for the notifications SNS refused, if any.
pub(super) fn refused(operation: String, unpublished: &[Unpublished]) -> Option<StorageError> {
    if unpublished.is_empty() {
        return None;
    }
    let named: Vec<String> = unpublished
        .iter()
        .take(NAMED_FAILURES)
        .map(|failure| {
            format!(
                "{} ({}: {})",
                failure.notification_id, failure.code, failure.message
            )
        })
        .collect();
    let message = format!(
        "{} notification(s) were not published: {}",
        unpublished.len(),
        named.join("; ")
    );
    if unpublished.iter().any(|failure| !failure.sender_fault) {
        Some(StorageError::transient(operation, message))
    } else {
        Some(StorageError::permanent(operation, message))
    }
}
