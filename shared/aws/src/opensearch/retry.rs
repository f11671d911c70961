//! The retry loop of one `index` call: every pending document is sent, packed by size; the
//! documents whose request could not be answered, or whose item was answered 429 or 5xx, are
//! resent alone after an exponential backoff with full jitter, up to the attempt limit.
//! Resending is safe: a document is indexed under its event id, so a second write of it
//! replaces the first.

use pipeline_domain::StorageError;
use pipeline_domain::ports::IndexFailure;

use super::request::{EncodedDocument, pack};
use super::response::{ItemOutcome, OPERATION, Reply, parse_bulk_response};
use crate::backoff::Backoff;

/// Delays between bulk attempts: full jitter under a ceiling of 100 ms that doubles up to
/// 5 s. The attempt limit, not a deadline, ends the retries.
const SEARCH_BACKOFF: Backoff = Backoff {
    base: std::time::Duration::from_millis(100),
    cap: std::time::Duration::from_secs(5),
    deadline: std::time::Duration::MAX,
};

/// Sends every document through `send` (one call per packed body) until each is indexed or
/// refused, and returns the refusals; fails with a transient error when documents are still
/// failing retryably after `max_attempts`, or with the error of a request refused whole.
pub async fn index_with_retries<F, Fut>(
    encoded: &[EncodedDocument],
    max_request_bytes: usize,
    max_attempts: u32,
    mut send: F,
) -> Result<Vec<IndexFailure>, StorageError>
where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: Future<Output = Reply>,
{
    let attempts = max_attempts.max(1);
    let mut failures = Vec::new();
    let mut pending: Vec<usize> = (0..encoded.len()).collect();
    let mut last_reason = String::new();
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(SEARCH_BACKOFF.delay(attempt - 1)).await;
        }
        let mut retry = Vec::new();
        for request in pack(encoded, &pending, max_request_bytes) {
            let positions = request.positions;
            match send(request.body).await {
                Reply::Answered(body) => {
                    let ids: Vec<&str> = positions
                        .iter()
                        .map(|&p| encoded[p].event_id.as_str())
                        .collect();
                    let outcomes = parse_bulk_response(&body, &ids)
                        .map_err(|message| StorageError::permanent(OPERATION, message))?;
                    for (position, outcome) in positions.into_iter().zip(outcomes) {
                        match outcome {
                            ItemOutcome::Indexed => {}
                            ItemOutcome::Retryable(reason) => {
                                retry.push(position);
                                last_reason = reason;
                            }
                            ItemOutcome::Refused(reason) => failures.push(IndexFailure {
                                event_id: encoded[position].event_id.clone(),
                                reason,
                            }),
                        }
                    }
                }
                Reply::Retryable(reason) => {
                    retry.extend(positions);
                    last_reason = reason;
                }
                Reply::Refused(error) => return Err(error),
            }
        }
        if retry.is_empty() {
            return Ok(failures);
        }
        tracing::warn!(
            attempt,
            max_attempts = attempts,
            failing = retry.len(),
            reason = %last_reason,
            "Some search documents failed retryably; they will be sent again."
        );
        pending = retry;
    }
    Err(StorageError::transient(
        OPERATION,
        format!(
            "{} of {} documents were still failing after {attempts} attempts (last: {last_reason})",
            pending.len(),
            encoded.len()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Bytes;
    use serde_json::json;

    /// Documents whose lines are only their ids: the loop does not read what it sends.
    fn encoded(ids: &[&str]) -> Vec<EncodedDocument> {
        let encoded = |id: &&str| EncodedDocument {
            event_id: (*id).to_owned(),
            lines: format!("{id}\n").into_bytes(),
        };
        ids.iter().map(encoded).collect()
    }

    fn ids_in(body: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(body)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn answer(items: &[(&str, u16)]) -> Reply {
        let items: Vec<_> = items
            .iter()
            .map(|(id, status)| json!({"index": {"_id": id, "status": status, "error": {"type": "t", "reason": "r"}}}))
            .collect();
        Reply::Answered(Bytes::from(
            serde_json::to_vec(&json!({"items": items})).unwrap(),
        ))
    }

    #[tokio::test]
    async fn only_the_retryable_items_are_resent_and_refusals_are_returned() {
        let documents = encoded(&["a", "b", "c", "d"]);
        let mut sent = Vec::new();
        let failures = index_with_retries(&documents, usize::MAX, 3, |body| {
            let ids = ids_in(&body);
            sent.push(ids.clone());
            let reply = if sent.len() == 1 {
                answer(&[("a", 201), ("b", 429), ("c", 400), ("d", 500)])
            } else {
                answer(&ids.iter().map(|id| (id.as_str(), 200)).collect::<Vec<_>>())
            };
            async move { reply }
        })
        .await
        .unwrap();
        assert_eq!(sent, [vec!["a", "b", "c", "d"], vec!["b", "d"]]);
        assert_eq!(
            failures,
            [IndexFailure {
                event_id: "c".to_owned(),
                reason: "t: r".to_owned()
            }]
        );
    }

    #[tokio::test]
    async fn failures_that_never_pass_end_in_a_transient_error_after_the_last_attempt() {
        let documents = encoded(&["a", "b"]);
        let mut calls = 0;
        let error = index_with_retries(&documents, usize::MAX, 3, |_| {
            calls += 1;
            async { Reply::Retryable("the bulk request was answered 503".to_owned()) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls, 3);
        assert!(error.is_transient());
        assert!(
            error
                .message
                .starts_with("2 of 2 documents were still failing after 3 attempts"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_request_refused_whole_fails_at_once() {
        let documents = encoded(&["a"]);
        let mut calls = 0;
        let error = index_with_retries(&documents, usize::MAX, 5, |_| {
            calls += 1;
            async { Reply::Refused(StorageError::permanent(OPERATION, "answered 403")) }
        })
        .await
        .unwrap_err();
        assert_eq!((calls, error.is_transient()), (1, false));
    }
}
