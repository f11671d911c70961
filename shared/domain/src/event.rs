//! The canonical user event and where each record came from.

use serde::{Deserialize, Serialize};
use serde_json::Number;

use crate::canonical::{digest_id, write_string};
pub use crate::event_data::EventData;

/// A user event that passed the contract in `schemas/user-event.schema.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEvent {
    /// The caller's `eventId`, or one derived from the canonical content (see [`derive_event_id`]).
    pub event_id: String,
    pub user_id: String,
    pub event_type: String,
    /// Milliseconds since the Unix epoch, kept as the number the client sent.
    pub timestamp: Number,
    pub data: EventData,
}

impl UserEvent {
    /// The timestamp in milliseconds; the contract guarantees it is a finite, non-negative number.
    pub fn timestamp_millis(&self) -> f64 {
        self.timestamp.as_f64().unwrap_or(0.0)
    }

    /// `data.amount` when it is a number.
    pub fn amount(&self) -> Option<f64> {
        self.data.amount()
    }

    /// `data.userAgent` when it is a string.
    pub fn user_agent(&self) -> Option<&str> {
        self.data.user_agent()
    }
}

/// The id of an event without an `eventId`: a digest of its canonical content.
///
/// Only the contract's fields take part (`userId`, `eventType`, `timestamp`, `data`), so the
/// same event sent twice, through any source and with keys in any order, has the same id.
pub fn derive_event_id(
    user_id: &str,
    event_type: &str,
    timestamp: &Number,
    data: &EventData,
) -> String {
    let mut buffer = Vec::with_capacity(data.json().len() + 128);
    buffer.extend_from_slice(b"{\"data\":");
    buffer.extend_from_slice(data.json().as_bytes());
    buffer.extend_from_slice(b",\"eventType\":");
    write_string(event_type, &mut buffer);
    buffer.extend_from_slice(b",\"timestamp\":");
    serde_json::to_writer(&mut buffer, timestamp).expect("writing a JSON number into memory");
    buffer.extend_from_slice(b",\"userId\":");
    write_string(user_id, &mut buffer);
    buffer.push(b'}');
    digest_id("evt_", &buffer)
}

/// The kind of Lambda event a record arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// API Gateway REST API proxy integration (payload format 1.0).
    #[serde(rename = "apigateway-rest")]
    ApiGatewayRest,
    /// API Gateway HTTP API (payload format 2.0).
    #[serde(rename = "apigateway-http")]
    ApiGatewayHttp,
    Sqs,
    Sns,
    S3,
    DynamodbStream,
    Kinesis,
    Eventbridge,
    /// The pipeline's own batch, passed from one stage to the next or replayed.
    PipelineBatch,
    /// A bare JSON array of events, as from a direct `Invoke`.
    Direct,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::ApiGatewayRest => "apigateway-rest",
            SourceKind::ApiGatewayHttp => "apigateway-http",
            SourceKind::Sqs => "sqs",
            SourceKind::Sns => "sns",
            SourceKind::S3 => "s3",
            SourceKind::DynamodbStream => "dynamodb-stream",
            SourceKind::Kinesis => "kinesis",
            SourceKind::Eventbridge => "eventbridge",
            SourceKind::PipelineBatch => "pipeline-batch",
            SourceKind::Direct => "direct",
        }
    }
}

impl SourceKind {
    pub const ALL: [SourceKind; 10] = [
        SourceKind::ApiGatewayRest,
        SourceKind::ApiGatewayHttp,
        SourceKind::Sqs,
        SourceKind::Sns,
        SourceKind::S3,
        SourceKind::DynamodbStream,
        SourceKind::Kinesis,
        SourceKind::Eventbridge,
        SourceKind::PipelineBatch,
        SourceKind::Direct,
    ];
}

/// The names on the wire are the names of [`SourceKind::as_str`] and of the fixture folders.
impl std::str::FromStr for SourceKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        SourceKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = SourceKind::ALL.iter().map(|kind| kind.as_str()).collect();
                format!(
                    "{name:?} is not a source; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one record sits in its source: enough to find it again and to report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    pub kind: SourceKind,
    /// The source's own id for the record: an SQS message id, a Kinesis or DynamoDB sequence
    /// number, `bucket/key#line` for S3, `requestId#index` for API Gateway.
    pub id: String,
    /// The record's position among all records of the invocation, from 0.
    pub index: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_kinds_have_one_name_on_the_wire_and_in_text() {
        for kind in SourceKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(kind.as_str().parse::<SourceKind>(), Ok(kind));
        }
        assert!("api-gateway".parse::<SourceKind>().is_err());
    }
    use serde_json::json;

    #[test]
    fn derived_ids_ignore_key_order_and_follow_content() {
        let data_a: EventData =
            serde_json::from_value(json!({"amount": 12.5, "sku": "A1"})).unwrap();
        let data_b: EventData = serde_json::from_str(r#"{"sku":"A1","amount":12.5}"#).unwrap();
        let ts = Number::from(1_700_000_000_000_u64);
        let a = derive_event_id("u1", "purchase", &ts, &data_a);
        let b = derive_event_id("u1", "purchase", &ts, &data_b);
        assert_eq!(a, b);
        let c = derive_event_id("u2", "purchase", &ts, &data_a);
        assert_ne!(a, c);
        // The digest of `{"data":{"amount":12.5,"sku":"A1"},"eventType":"purchase",
        // "timestamp":1700000000000,"userId":"u1"}`: ids must not change between versions.
        assert_eq!(a, "evt_d4bb9c63a3370a97405a6700e90ef0f5");
    }
}
