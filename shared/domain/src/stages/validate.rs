//! `validate`: every record accepted as a [`UserEvent`] or rejected with all its errors.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::canonical::digest_id;
use crate::event::{SourceKind, SourceRef, UserEvent};
use crate::schema::{FieldError, MAX_RECORD_BYTES, check_event};
use crate::sources::{Decoded, Payload, SkippedRecord};

/// How much of a rejected record's raw content is kept for the quarantine and for reports.
pub const RAW_EXCERPT_BYTES: usize = 1024;

/// An accepted event and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidEvent {
    pub source: SourceRef,
    pub event: UserEvent,
}

/// A record that did not pass, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRecord {
    pub source: SourceRef,
    pub errors: Vec<FieldError>,
    /// The start of the raw record (at most [`RAW_EXCERPT_BYTES`]), when it arrived as bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_excerpt: Option<String>,
}

/// The outcome of validating one decoded event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatedBatch {
    pub batch_id: String,
    pub source_kind: SourceKind,
    pub events: Vec<ValidEvent>,
    pub rejected: Vec<RejectedRecord>,
    pub skipped: Vec<SkippedRecord>,
    /// Events dropped because an earlier record in the same batch had the same event id.
    pub duplicates: usize,
}

/// A batch in which no record was valid.
#[derive(Debug, Clone, Error)]
#[error("{}", describe_failure(.0))]
pub struct NoValidRecord(pub ValidatedBatch);

fn describe_failure(batch: &ValidatedBatch) -> String {
    let mut text = format!(
        "batch {} from {} has no valid record ({} rejected, {} skipped)",
        batch.batch_id,
        batch.source_kind,
        batch.rejected.len(),
        batch.skipped.len()
    );
    if let Some(first) = batch.rejected.first() {
        let reasons: Vec<String> = first
            .errors
            .iter()
            .map(|error| format!("{}: {}", display_pointer(&error.pointer), error.message))
            .collect();
        text.push_str(&format!(
            "; record {} ({}) {}",
            first.source.index,
            first.source.id,
            reasons.join("; ")
        ));
    }
    text
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "(record)"
    } else {
        pointer
    }
}

impl ValidatedBatch {
    /// The batch, or [`NoValidRecord`] when nothing in it can go further.
    pub fn require_valid(self) -> Result<Self, NoValidRecord> {
        if self.events.is_empty() {
            Err(NoValidRecord(self))
        } else {
            Ok(self)
        }
    }
}

/// Validates every decoded record against the contract.
///
/// The batch id is kept from a pipeline batch; otherwise it is derived from the accepted
/// event ids, so the same events replayed through any source form the same batch.
pub fn validate(decoded: Decoded) -> ValidatedBatch {
    let mut events = Vec::with_capacity(decoded.records.len());
    let mut rejected = Vec::new();
    for record in decoded.records {
        match check_record(record.payload) {
            Ok(event) => events.push(ValidEvent {
                source: record.source,
                event,
            }),
            Err((errors, raw_excerpt)) => rejected.push(RejectedRecord {
                source: record.source,
                errors,
                raw_excerpt,
            }),
        }
    }
    let duplicates = drop_duplicates(&mut events);
    let batch_id = decoded.batch_id.unwrap_or_else(|| {
        if events.is_empty() {
            derive_rejected_batch_id(decoded.kind, &rejected)
        } else {
            derive_batch_id(&events)
        }
    });
    ValidatedBatch {
        batch_id,
        source_kind: decoded.kind,
        events,
        rejected,
        skipped: decoded.skipped,
        duplicates,
    }
}

/// Keeps the first event of each event id, in order; returns how many were dropped.
fn drop_duplicates(events: &mut Vec<ValidEvent>) -> usize {
    let mut seen = HashSet::with_capacity(events.len());
    let keep: Vec<bool> = events
        .iter()
        .map(|valid| seen.insert(valid.event.event_id.as_str()))
        .collect();
    let before = events.len();
    let mut flags = keep.into_iter();
    events.retain(|_| flags.next().unwrap_or(true));
    before - events.len()
}

/// The id of a batch: a digest of its accepted event ids, in order.
pub fn derive_batch_id(events: &[ValidEvent]) -> String {
    let mut buffer = Vec::with_capacity(events.len() * 37);
    for valid in events {
        buffer.extend_from_slice(valid.event.event_id.as_bytes());
        buffer.push(b'\n');
    }
    digest_id("bat_", &buffer)
}

/// The id of a batch without accepted events: a digest of where its records came from.
fn derive_rejected_batch_id(kind: SourceKind, rejected: &[RejectedRecord]) -> String {
    let mut buffer = kind.as_str().as_bytes().to_vec();
    for record in rejected {
        buffer.push(b'\n');
        buffer.extend_from_slice(record.source.id.as_bytes());
    }
    digest_id("bat_", &buffer)
}

/// Checks one record: size, JSON syntax, then the contract.
pub fn check_payload(payload: Payload) -> Result<UserEvent, Vec<FieldError>> {
    check_record(payload).map_err(|(errors, _)| errors)
}

/// [`check_payload`], also returning the start of the raw record when it is rejected.
fn check_record(payload: Payload) -> Result<UserEvent, (Vec<FieldError>, Option<String>)> {
    match payload {
        Payload::Bytes(bytes) => {
            let checked = if bytes.len() > MAX_RECORD_BYTES {
                Err(vec![oversized(bytes.len())])
            } else {
                match serde_json::from_slice(&bytes) {
                    Ok(value) => check_event(value),
                    Err(error) => Err(vec![FieldError::new(
                        "",
                        format!("the record is not valid JSON: {error}"),
                    )]),
                }
            };
            checked.map_err(|errors| (errors, Some(raw_excerpt(&bytes))))
        }
        Payload::Json(value) => {
            let size = encoded_size(&value);
            if size > MAX_RECORD_BYTES {
                return Err((vec![oversized(size)], None));
            }
            check_event(value).map_err(|errors| (errors, None))
        }
        Payload::Oversized { bytes } => Err((vec![oversized(bytes)], None)),
        Payload::Undecodable { pointer, reason } => {
            Err((vec![FieldError::new(pointer, reason)], None))
        }
    }
}

/// The length of a value's compact JSON encoding, counted without building it.
fn encoded_size(value: &serde_json::Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Counting never fails, and a serde_json::Value always serialises.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

fn oversized(bytes: usize) -> FieldError {
    FieldError::new(
        "",
        format!(
            "the record is {bytes} bytes, over the {MAX_RECORD_BYTES}-byte limit; it was not parsed"
        ),
    )
}

fn raw_excerpt(bytes: &[u8]) -> String {
    let end = bytes.len().min(RAW_EXCERPT_BYTES);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourceRecord;

    fn decoded(payloads: Vec<Payload>) -> Decoded {
        let records = payloads
            .into_iter()
            .enumerate()
            .map(|(index, payload)| SourceRecord {
                source: SourceRef {
                    kind: SourceKind::Direct,
                    id: format!("item-{index}"),
                    index,
                },
                payload,
            })
            .collect();
        Decoded {
            kind: SourceKind::Direct,
            records,
            skipped: Vec::new(),
            batch_id: None,
        }
    }

    #[test]
    fn records_are_split_into_accepted_and_rejected() {
        let batch = validate(decoded(vec![
            Payload::Bytes(
                br#"{"userId":"u1","eventType":"click","timestamp":1,"data":{}}"#.to_vec(),
            ),
            Payload::Bytes(b"{not json".to_vec()),
            Payload::Oversized {
                bytes: MAX_RECORD_BYTES + 1,
            },
            Payload::Bytes(
                br#"{"userId":"u1","eventType":"click","timestamp":1,"data":{}}"#.to_vec(),
            ),
        ]));
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.duplicates, 1);
        assert_eq!(batch.rejected.len(), 2);
        assert!(
            batch.rejected[0].errors[0]
                .message
                .contains("not valid JSON")
        );
        assert!(batch.rejected[1].errors[0].message.contains("limit"));
        assert!(batch.batch_id.starts_with("bat_"));
    }

    #[test]
    fn structured_records_over_the_limit_are_rejected_too() {
        let big = serde_json::json!({
            "userId": "u1", "eventType": "click", "timestamp": 1,
            "data": {"blob": "x".repeat(MAX_RECORD_BYTES)}
        });
        let batch = validate(decoded(vec![Payload::Json(big)]));
        assert_eq!(batch.rejected.len(), 1);
        assert!(batch.rejected[0].errors[0].message.contains("limit"));
    }

    #[test]
    fn a_batch_without_valid_records_fails_naming_the_first_error() {
        let failure = validate(decoded(vec![Payload::Bytes(
            br#"{"userId":"u1"}"#.to_vec(),
        )]))
        .require_valid()
        .unwrap_err();
        let message = failure.to_string();
        assert!(message.contains("no valid record"), "{message}");
        assert!(message.contains("/eventType"), "{message}");
    }
}
