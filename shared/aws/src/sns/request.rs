//! PublishBatch requests from notifications: one entry per notification, with the message
//! attributes that subscription filter policies match on, cut into batches SNS accepts.

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use pipeline_domain::StorageError;
use pipeline_domain::stages::store::Notification;
use serde_json::Value;

/// The most entries one PublishBatch request may carry.
pub(super) const MAX_ENTRIES: usize = 10;

/// The most bytes of messages and attributes one PublishBatch request may carry.
pub(super) const MAX_BATCH_BYTES: usize = 262_144;

/// SNS documents subjects as "less than 100 characters long".
pub(super) const MAX_SUBJECT_CHARS: usize = 99;

/// One notification made into a batch entry.
pub(super) struct Prepared {
    /// The notification's own id, which the ledger records once it is published.
    pub notification_id: String,
    /// The entry; its id (`n<index>`) only tells entries of one request apart.
    pub entry: PublishBatchRequestEntry,
    /// What the entry counts towards [`MAX_BATCH_BYTES`].
    pub bytes: usize,
}

/// Builds the entry for `notification`, the `index`-th of this call.
pub(super) fn prepare(index: usize, notification: &Notification) -> Result<Prepared, StorageError> {
    let operation = || format!("build the SNS message of notification {}", notification.id);
    let message = serde_json::to_string(notification)
        .map_err(|error| StorageError::permanent(operation(), error))?;
    let kind = serde_json::to_value(notification.kind)
        .map_err(|error| StorageError::permanent(operation(), error))?;
    let attributes = [
        ("severity", notification.severity.as_str()),
        ("kind", kind.as_str().unwrap_or_default()),
        ("batchId", notification.batch_id.as_str()),
    ];
    let mut bytes = message.len();
    let mut entry = PublishBatchRequestEntry::builder()
        .id(format!("n{index}"))
        .message(message)
        .set_subject(subject_line(&notification.subject));
    for (name, value) in attributes {
        // SNS refuses an attribute with an empty value; a filter cannot match one anyway.
        if value.is_empty() {
            continue;
        }
        bytes += name.len() + "String".len() + value.len();
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|error| StorageError::permanent(operation(), error))?;
        entry = entry.message_attributes(name, attribute);
    }
    // The event types a notification is about (the high-risk events'), as a String.Array
    // attribute: a filter policy on `eventType` matches when any of them matches.
    let event_types = event_types_of(notification);
    if !event_types.is_empty() {
        let value = serde_json::to_string(&event_types)
            .map_err(|error| StorageError::permanent(operation(), error))?;
        bytes += "eventType".len() + "String.Array".len() + value.len();
        let attribute = MessageAttributeValue::builder()
            .data_type("String.Array")
            .string_value(value)
            .build()
            .map_err(|error| StorageError::permanent(operation(), error))?;
        entry = entry.message_attributes("eventType", attribute);
    }
    let entry = entry
        .build()
        .map_err(|error| StorageError::permanent(operation(), error))?;
    Ok(Prepared {
        notification_id: notification.id.clone(),
        entry,
        bytes,
    })
}

/// The distinct `eventType`s a notification names, or of the events it lists; sorted.
fn event_types_of(notification: &Notification) -> Vec<&str> {
    // A high-risk notification names every event type in `eventTypes` and lists only the
    // highest scores; one written before it did (still in an outbox) listed every event.
    let body = &notification.body;
    let mut types: Vec<&str> = match body["eventTypes"].as_array() {
        Some(named) => named.iter().filter_map(Value::as_str).collect(),
        None => body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|event| event["eventType"].as_str())
            .collect(),
    };
    types.retain(|kind| !kind.is_empty());
    types.sort_unstable();
    types.dedup();
    types
}

/// A subject SNS accepts: printable ASCII (anything else becomes `?`, line breaks and tabs
/// spaces), no leading or trailing blanks, under the length limit. `None` when nothing is
/// left, since SNS refuses an empty subject.
pub(super) fn subject_line(subject: &str) -> Option<String> {
    let printable: String = subject
        .chars()
        .map(|character| match character {
            ' ' => ' ',
            visible if visible.is_ascii_graphic() => visible,
            blank if blank.is_whitespace() => ' ',
            _ => '?',
        })
        .collect();
    let trimmed = printable.trim_start();
    let cut = &trimmed[..trimmed.len().min(MAX_SUBJECT_CHARS)];
    let cut = cut.trim_end();
    (!cut.is_empty()).then(|| cut.to_owned())
}

/// Cuts the entries, in order, into batches of at most [`MAX_ENTRIES`] and
/// [`MAX_BATCH_BYTES`]. An entry too large on its own gets a batch of its own, and SNS's
/// answer for it says why it was refused.
pub(super) fn batches(prepared: Vec<Prepared>) -> Vec<Vec<Prepared>> {
    let mut batches: Vec<Vec<Prepared>> = Vec::new();
    let mut bytes = 0;
    for entry in prepared {
        let fits = batches.last().is_some_and(|batch| {
            batch.len() < MAX_ENTRIES && bytes + entry.bytes <= MAX_BATCH_BYTES
        });
        if !fits {
            batches.push(Vec::with_capacity(MAX_ENTRIES));
            bytes = 0;
        }
        bytes += entry.bytes;
        if let Some(batch) = batches.last_mut() {
            batch.push(entry);
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use pipeline_domain::stages::store::NotificationKind;
    use serde_json::json;

    use super::*;

    fn notification(index: usize, body_bytes: usize) -> Notification {
        Notification {
            id: format!("bat_{index}:high-risk"),
            kind: NotificationKind::HighRisk,
            severity: "critical".to_owned(),
            batch_id: format!("bat_{index}"),
            subject: format!("1 high-risk event(s) in batch bat_{index}"),
            body: json!({ "padding": "x".repeat(body_bytes) }),
        }
    }

    #[test]
    fn an_entry_carries_the_notification_as_json_and_its_filter_attributes() {
        let source = notification(7, 10);
        let prepared = prepare(3, &source).unwrap();
        assert_eq!(prepared.notification_id, "bat_7:high-risk");
        assert_eq!(prepared.entry.id(), "n3");
        let message: Notification = serde_json::from_str(prepared.entry.message()).unwrap();
        assert_eq!(message, source);
        assert_eq!(
            prepared.entry.subject(),
            Some("1 high-risk event(s) in batch bat_7")
        );
        let attributes = prepared.entry.message_attributes().unwrap();
        let value = |name: &str| attributes[name].string_value().unwrap().to_owned();
        assert_eq!(value("severity"), "critical");
        assert_eq!(value("kind"), "high-risk");
        assert_eq!(value("batchId"), "bat_7");
        assert!(!attributes.contains_key("eventType"), "it lists no events");

        let mut listing = source.clone();
        listing.body = json!({"events": [
            {"eventType": "purchase"}, {"eventType": "login"}, {"eventType": "purchase"}
        ]});
        let prepared = prepare(0, &listing).unwrap();
        let attributes = prepared.entry.message_attributes().unwrap();
        assert_eq!(attributes["eventType"].data_type(), "String.Array");
        assert_eq!(
            attributes["eventType"].string_value(),
            Some(r#"["login","purchase"]"#)
        );

        // The types it names win over those of the events it lists (only the highest scores).
        listing.body["eventTypes"] = json!(["click", "login", "purchase"]);
        let prepared = prepare(0, &listing).unwrap();
        let attributes = prepared.entry.message_attributes().unwrap();
        assert_eq!(
            attributes["eventType"].string_value(),
            Some(r#"["click","login","purchase"]"#)
        );
    }

    #[test]
    fn subjects_are_printable_ascii_under_the_limit_and_never_empty() {
        assert_eq!(subject_line("  two\nlines\t"), Some("two lines".to_owned()));
        assert_eq!(subject_line("caf\u{e9} \u{1}"), Some("caf? ?".to_owned()));
        assert_eq!(subject_line(" \n "), None);
        let long = subject_line(&"a".repeat(300)).unwrap();
        assert_eq!(long.len(), MAX_SUBJECT_CHARS);
    }

    #[test]
    fn batches_hold_ten_entries_and_stay_under_the_size_limit() {
        let small: Vec<Prepared> = (0..23)
            .map(|i| prepare(i, &notification(i, 10)).unwrap())
            .collect();
        let sizes: Vec<usize> = batches(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3]);

        let large: Vec<Prepared> = (0..5)
            .map(|i| prepare(i, &notification(i, 100_000)).unwrap())
            .collect();
        let cut = batches(large);
        let sizes: Vec<usize> = cut.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1]);
        for batch in &cut {
            assert!(batch.iter().map(|entry| entry.bytes).sum::<usize>() <= MAX_BATCH_BYTES);
        }
    }
}
