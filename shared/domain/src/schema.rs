//! The event contract: `schemas/user-event.schema.json`, compiled once per process.

use std::sync::LazyLock;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use crate::event::{EventData, UserEvent, derive_event_id};

/// The contract, embedded so that every binary validates against the file in the repository.
pub const USER_EVENT_SCHEMA: &str = include_str!("../../../schemas/user-event.schema.json");

/// Records larger than this are rejected without being parsed.
///
/// 64 KiB is far above any real user event and keeps one bad client from making a stage
/// parse megabytes; it also keeps a batch well inside Step Functions' 256 KiB state limit
/// once records are summarised.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Longest message kept for one field error; longer ones are cut at a character boundary.
const MAX_MESSAGE_CHARS: usize = 240;

static VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    let schema: Value =
        serde_json::from_str(USER_EVENT_SCHEMA).expect("the embedded event schema is valid JSON");
    jsonschema::draft202012::new(&schema).expect("the embedded event schema compiles")
});

/// Compiles the contract now rather than on the first event, so a cold start pays for it once.
pub fn warm_up() {
    LazyLock::force(&VALIDATOR);
}

/// One reason a record was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON pointer of the offending field in the record (`""` for the record itself).
    pub pointer: String,
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if message.chars().count() > MAX_MESSAGE_CHARS {
            let cut = message
                .char_indices()
                .nth(MAX_MESSAGE_CHARS)
                .map_or(message.len(), |(at, _)| at);
            message.truncate(cut);
            message.push_str("...");
        }
        Self {
            pointer: pointer.into(),
            message,
        }
    }
}

/// Checks a parsed record against the contract and builds the event, or lists every error.
pub fn check_event(value: Value) -> Result<UserEvent, Vec<FieldError>> {
    if !VALIDATOR.is_valid(&value) {
        return Err(contract_errors(&value));
    }
    let Value::Object(object) = value else {
        // The schema requires an object; this arm only keeps the function total.
        return Err(vec![FieldError::new("", "the record is not a JSON object")]);
    };
    // One pass over the members, each moved out as it comes: removing them one by one
    // searched and rebalanced the map each time (about a third of this function's time).
    // The schema has checked every type already; the defaults only keep this total.
    let mut user_id = String::new();
    let mut event_type = String::new();
    let mut timestamp = Number::from(0);
    let mut data = None;
    let mut event_id = None;
    for (key, value) in object {
        match (key.as_str(), value) {
            ("userId", Value::String(text)) => user_id = text,
            ("eventType", Value::String(text)) => event_type = text,
            ("timestamp", Value::Number(number)) => timestamp = number,
            ("data", Value::Object(map)) => data = Some(EventData::from_map(&map)),
            ("eventId", Value::String(id)) => event_id = Some(id),
            _ => {}
        }
    }
    let data = data.unwrap_or_default();
    let event_id =
        event_id.unwrap_or_else(|| derive_event_id(&user_id, &event_type, &timestamp, &data));
    Ok(UserEvent {
        event_id,
        user_id,
        event_type,
        timestamp,
        data,
    })
}

fn contract_errors(value: &Value) -> Vec<FieldError> {
    VALIDATOR
        .iter_errors(value)
        .map(|error| {
            let mut pointer = error.instance_path().as_str().to_owned();
            if let ValidationErrorKind::Required { property } = error.kind() {
                // Name the missing field itself rather than the object that lacks it.
                if let Some(name) = property.as_str() {
                    pointer.push('/');
                    pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                }
            }
            FieldError::new(pointer, error.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_valid_event_is_built_with_a_derived_id() {
        let event = check_event(json!({
            "userId": "u1", "eventType": "click", "timestamp": 1_700_000_000_000_u64, "data": {}
        }))
        .unwrap();
        assert_eq!(event.user_id, "u1");
        assert!(event.event_id.starts_with("evt_"));
    }

    #[test]
    fn every_error_is_reported_with_its_field() {
        let errors =
            check_event(json!({"userId": "", "timestamp": "soon", "data": []})).unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/userId"), "{errors:?}");
        assert!(pointers.contains(&"/eventType"), "{errors:?}");
        assert!(pointers.contains(&"/timestamp"), "{errors:?}");
        assert!(pointers.contains(&"/data"), "{errors:?}");
    }

    #[test]
    fn long_messages_are_cut() {
        let error = FieldError::new("", "é".repeat(1000));
        assert!(error.message.chars().count() <= MAX_MESSAGE_CHARS + 3);
    }
}
