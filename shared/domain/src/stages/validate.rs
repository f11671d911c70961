//! `validate`: every record accepted as a [`UserEvent`] or rejected with all its errors.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::canonical::{IdDigest, digest_id, encoded_size};
use crate::event::{SourceKind, SourceRef, UserEvent};
use crate::schema::{FieldError, MAX_RECORD_BYTES, check_event};
use crate::sources::{Decoded, Payload, SkippedRecord, SourceRecord};

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
    describe_no_valid_record(
        &batch.batch_id,
        batch.source_kind,
        &batch.rejected,
        batch.skipped.len(),
    )
}

/// A sentence on a batch without a valid record, naming its first rejected record and why.
pub fn describe_no_valid_record(
    batch_id: &str,
    kind: SourceKind,
    rejected: &[RejectedRecord],
    skipped: usize,
) -> String {
    let mut text = format!(
        "batch {batch_id} from {kind} has no valid record ({} rejected, {skipped} skipped)",
        rejected.len(),
    );
    if let Some(first) = rejected.first() {
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

/// Checks every record of a decoded event: the batch as one part.
pub fn validate(decoded: Decoded) -> ValidatedBatch {
    let mut validator = Validator::new(decoded.kind, usize::MAX);
    for record in decoded.records {
        // With parts of unbounded size, no part is ever handed out before the end.
        let _ = validator.check(record);
    }
    let (events, summary) = validator.finish(decoded.batch_id);
    ValidatedBatch {
        batch_id: summary.batch_id,
        source_kind: summary.source_kind,
        events,
        rejected: summary.rejected,
        skipped: decoded.skipped,
        duplicates: summary.duplicates,
    }
}

/// Validates records one at a time and cuts the accepted events into parts of at most
/// `part_events`, so a source of any size (a large S3 upload) is processed in bounded memory.
///
/// A part is handed out only when it is full and another accepted event arrives, so a batch
/// that fits in one part is never split. The batch id is the digest of every accepted id in
/// order, whatever the parts; a part's id is the batch id when there is one part, and the
/// digest of the part's own ids otherwise. Both are stable under replay.
pub struct Validator {
    kind: SourceKind,
    part_events: usize,
    part: Vec<ValidEvent>,
    rejected: Vec<RejectedRecord>,
    seen: foldhash::HashSet<String>,
    duplicates: usize,
    accepted: usize,
    parts: usize,
    batch_digest: IdDigest,
}

/// What a whole validation found, apart from the accepted events (handed out in parts).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationSummary {
    pub batch_id: String,
    pub source_kind: SourceKind,
    pub accepted: usize,
    pub rejected: Vec<RejectedRecord>,
    pub duplicates: usize,
    /// How many parts were handed out, counting the last one returned by `finish`.
    pub parts: usize,
}

impl Validator {
    pub fn new(kind: SourceKind, part_events: usize) -> Self {
        Self {
            kind,
            part_events: part_events.max(1),
            part: Vec::new(),
            rejected: Vec::new(),
            seen: Default::default(),
            duplicates: 0,
            accepted: 0,
            parts: 0,
            batch_digest: IdDigest::default(),
        }
    }

    /// Checks one record. Returns a full part when this record starts the next one.
    pub fn check(&mut self, record: SourceRecord) -> Option<Vec<ValidEvent>> {
        match check_record(record.payload) {
            Ok(event) => {
                if !self.seen.insert(event.event_id.clone()) {
                    self.duplicates += 1;
                    return None;
                }
                self.accepted += 1;
                self.batch_digest.update(event.event_id.as_bytes());
                self.batch_digest.update(b"\n");
                let full = if self.part.len() >= self.part_events {
                    self.parts += 1;
                    Some(std::mem::take(&mut self.part))
                } else {
                    None
                };
                self.part.push(ValidEvent {
                    source: record.source,
                    event,
                });
                full
            }
            Err((errors, raw_excerpt)) => {
                self.rejected.push(RejectedRecord {
                    source: record.source,
                    errors,
                    raw_excerpt,
                });
                None
            }
        }
    }

    /// Whether a part was already handed out, so the batch has several.
    pub fn is_split(&self) -> bool {
        self.parts > 0
    }

    /// The last part (possibly empty) and the summary. `batch_id` is the id the source
    /// carried, if any (a pipeline batch keeps its own).
    pub fn finish(self, batch_id: Option<String>) -> (Vec<ValidEvent>, ValidationSummary) {
        let batch_id = batch_id.unwrap_or_else(|| {
            if self.accepted == 0 {
                derive_rejected_batch_id(self.kind, &self.rejected)
            } else {
                self.batch_digest.finish("bat_")
            }
        });
        let parts = self.parts + usize::from(!self.part.is_empty());
        let summary = ValidationSummary {
            batch_id,
            source_kind: self.kind,
            accepted: self.accepted,
            rejected: self.rejected,
            duplicates: self.duplicates,
            parts,
        };
        (self.part, summary)
    }
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

    fn record(index: usize, body: &str) -> SourceRecord {
        SourceRecord {
            source: SourceRef {
                kind: SourceKind::Direct,
                id: format!("item-{index}"),
                index,
            },
            payload: Payload::Bytes(body.as_bytes().to_vec()),
        }
    }

    fn event_body(id: usize) -> String {
        format!(
            r#"{{"eventId":"e{id}","userId":"u1","eventType":"click","timestamp":1,"data":{{}}}}"#
        )
    }

    #[test]
    fn large_batches_are_cut_into_full_parts_with_the_same_batch_id() {
        let bodies: Vec<String> = (0..7).map(event_body).collect();
        let mut validator = Validator::new(SourceKind::Direct, 3);
        let mut parts = Vec::new();
        for (index, body) in bodies.iter().enumerate() {
            parts.extend(validator.check(record(index, body)));
            if index == 3 {
                // A duplicate and a bad record in the middle change no part's boundaries.
                assert!(validator.check(record(100, &event_body(0))).is_none());
                assert!(validator.check(record(101, "{")).is_none());
            }
        }
        assert!(validator.is_split());
        let (last, summary) = validator.finish(None);
        parts.push(last);
        let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        assert_eq!(summary.parts, 3);
        assert_eq!(summary.accepted, 7);
        assert_eq!(summary.duplicates, 1);
        assert_eq!(summary.rejected.len(), 1);

        let whole = validate(Decoded {
            kind: SourceKind::Direct,
            records: bodies
                .iter()
                .enumerate()
                .map(|(index, body)| record(index, body))
                .collect(),
            skipped: Vec::new(),
            batch_id: None,
        });
        assert_eq!(
            summary.batch_id, whole.batch_id,
            "parts do not change the batch id"
        );
        assert_eq!(whole.batch_id, derive_batch_id(&whole.events));
    }

    #[test]
    fn a_batch_that_exactly_fills_a_part_is_not_split() {
        let mut validator = Validator::new(SourceKind::Direct, 2);
        assert!(validator.check(record(0, &event_body(0))).is_none());
        assert!(validator.check(record(1, &event_body(1))).is_none());
        assert!(!validator.is_split());
        let (last, summary) = validator.finish(None);
        assert_eq!(last.len(), 2);
        assert_eq!(summary.parts, 1);
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
