//! Source decoding: any incoming Lambda event becomes records with their source position.
//!
//! This is the only module that knows the AWS event shapes (`aws_lambda_events`); the stages
//! see [`SourceRecord`]s. Decoding never fails because of one record: a record that cannot be
//! decoded becomes [`Payload::Undecodable`] and is rejected by `validate` with its reason.
//! Only an event whose shape is not recognised at all is an error.

mod apigw;
pub mod attribute_value;
pub mod object;
pub use object::Streamed;
mod streams;

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::error::StorageError;
use crate::event::{SourceKind, SourceRef};
use crate::ports::ObjectSource;

/// A record's content as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Raw bytes that should hold one JSON event.
    Bytes(Vec<u8>),
    /// An event that arrived already structured (EventBridge `detail`, a DynamoDB image).
    Json(Value),
    /// A record larger than the size limit, which was skipped over without being kept.
    Oversized { bytes: usize },
    /// A record whose envelope could not be decoded (bad base64, a bad attribute value...).
    /// `pointer` names the field in the event when the failure is inside one, else `""`.
    Undecodable { pointer: String, reason: String },
}

/// One record and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub source: SourceRef,
    pub payload: Payload,
}

/// A record deliberately not processed, with the reason (a DynamoDB `REMOVE`, for example).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SkippedRecord {
    pub source: SourceRef,
    pub reason: String,
}

/// Everything one Lambda event decoded to.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub kind: SourceKind,
    pub records: Vec<SourceRecord>,
    pub skipped: Vec<SkippedRecord>,
    /// The batch id carried by a pipeline batch, kept so that a replay keeps its id.
    pub batch_id: Option<String>,
}

/// Why a whole event could not be decoded.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("the event is not a recognised source: {0}")]
    UnrecognisedShape(String),
    #[error("the {kind} event is malformed: {message}")]
    Malformed { kind: SourceKind, message: String },
    #[error(transparent)]
    Object(#[from] StorageError),
}

/// Builds the records of one event, numbering them as they come.
pub(crate) struct RecordSink {
    kind: SourceKind,
    records: Vec<SourceRecord>,
    skipped: Vec<SkippedRecord>,
    next_index: usize,
}

impl RecordSink {
    pub(crate) fn new(kind: SourceKind) -> Self {
        Self {
            kind,
            records: Vec::new(),
            skipped: Vec::new(),
            next_index: 0,
        }
    }

    fn next_ref(&mut self, id: String) -> SourceRef {
        let source = SourceRef {
            kind: self.kind,
            id,
            index: self.next_index,
        };
        self.next_index += 1;
        source
    }

    pub(crate) fn push(&mut self, id: String, payload: Payload) {
        let source = self.next_ref(id);
        self.records.push(SourceRecord { source, payload });
    }

    pub(crate) fn skip(&mut self, id: String, reason: impl Into<String>) {
        let source = self.next_ref(id);
        self.skipped.push(SkippedRecord {
            source,
            reason: reason.into(),
        });
    }

    pub(crate) fn finish(self, batch_id: Option<String>) -> Decoded {
        Decoded {
            kind: self.kind,
            records: self.records,
            skipped: self.skipped,
            batch_id,
        }
    }
}

/// Recognises the event's source from its shape.
pub fn detect(event: &Value) -> Result<SourceKind, DecodeError> {
    let object = match event {
        Value::Array(_) => return Ok(SourceKind::Direct),
        Value::Object(object) => object,
        other => {
            return Err(DecodeError::UnrecognisedShape(format!(
                "expected a JSON object or array, found {}",
                json_type(other)
            )));
        }
    };
    if let Some(records) = object.get("Records").and_then(Value::as_array) {
        let first = records.first().ok_or_else(|| {
            DecodeError::UnrecognisedShape("the Records array is empty".to_owned())
        })?;
        let source = first
            .get("eventSource")
            .or_else(|| first.get("EventSource"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        return match source {
            "aws:sqs" => Ok(SourceKind::Sqs),
            "aws:sns" => Ok(SourceKind::Sns),
            "aws:s3" => Ok(SourceKind::S3),
            "aws:dynamodb" => Ok(SourceKind::DynamodbStream),
            "aws:kinesis" => Ok(SourceKind::Kinesis),
            other => Err(DecodeError::UnrecognisedShape(format!(
                "Records[0].eventSource is {other:?}; expected aws:sqs, aws:sns, aws:s3, aws:dynamodb or aws:kinesis"
            ))),
        };
    }
    if object.contains_key("detail-type") && object.contains_key("detail") {
        return Ok(SourceKind::Eventbridge);
    }
    if object.contains_key("requestContext") {
        if object.get("version").and_then(Value::as_str) == Some("2.0") {
            return Ok(SourceKind::ApiGatewayHttp);
        }
        if object.contains_key("httpMethod") {
            return Ok(SourceKind::ApiGatewayRest);
        }
    }
    if object.contains_key("batchId") && object.contains_key("events") {
        return Ok(SourceKind::PipelineBatch);
    }
    Err(DecodeError::UnrecognisedShape(
        "expected an API Gateway, SQS, SNS, S3, DynamoDB Streams, Kinesis or EventBridge event, \
         a pipeline batch ({\"batchId\", \"events\"}), or a JSON array of events"
            .to_owned(),
    ))
}

/// Decodes any supported Lambda event into records. S3 objects are read through `objects`.
pub fn decode(event: &Value, objects: &dyn ObjectSource) -> Result<Decoded, DecodeError> {
    let kind = detect(event)?;
    match kind {
        SourceKind::Direct => Ok(decode_direct(event)),
        SourceKind::PipelineBatch => decode_pipeline_batch(event),
        SourceKind::ApiGatewayRest => apigw::decode_rest(event),
        SourceKind::ApiGatewayHttp => apigw::decode_http(event),
        SourceKind::Sqs => streams::decode_sqs(event),
        SourceKind::Sns => streams::decode_sns(event),
        SourceKind::Kinesis => streams::decode_kinesis(event),
        SourceKind::DynamodbStream => streams::decode_dynamodb(event),
        SourceKind::Eventbridge => streams::decode_eventbridge(event),
        SourceKind::S3 => object::decode_s3(event, objects),
    }
}

/// Records of a source event as a stream: an S3 notification's objects are opened and read
/// one record at a time, so an object of any size is never held in memory; other sources,
/// whose records all arrive in the event, are decoded first and then streamed.
pub enum RecordStream<'a> {
    Decoded {
        records: std::vec::IntoIter<SourceRecord>,
        skipped: std::vec::IntoIter<SkippedRecord>,
    },
    Objects(object::S3Records<'a>),
}

/// A source event opened for streaming: its kind, the batch id it carries (a pipeline
/// batch), and its records.
pub struct OpenedSource<'a> {
    pub kind: SourceKind,
    pub batch_id: Option<String>,
    pub records: RecordStream<'a>,
}

/// Like [`decode`], but hands out records one by one.
pub fn open_stream<'a>(
    event: &Value,
    objects: &'a dyn ObjectSource,
) -> Result<OpenedSource<'a>, DecodeError> {
    if detect(event)? == SourceKind::S3 {
        return Ok(OpenedSource {
            kind: SourceKind::S3,
            batch_id: None,
            records: RecordStream::Objects(object::S3Records::new(event, objects)?),
        });
    }
    let decoded = decode(event, objects)?;
    Ok(OpenedSource {
        kind: decoded.kind,
        batch_id: decoded.batch_id,
        records: RecordStream::Decoded {
            records: decoded.records.into_iter(),
            skipped: decoded.skipped.into_iter(),
        },
    })
}

impl Iterator for RecordStream<'_> {
    type Item = Result<Streamed, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            RecordStream::Decoded { records, skipped } => records
                .next()
                .map(Streamed::Record)
                .or_else(|| skipped.next().map(Streamed::Skipped))
                .map(Ok),
            RecordStream::Objects(objects) => objects.next(),
        }
    }
}

fn decode_direct(event: &Value) -> Decoded {
    let mut sink = RecordSink::new(SourceKind::Direct);
    if let Value::Array(items) = event {
        for (position, item) in items.iter().enumerate() {
            sink.push(format!("item-{position}"), Payload::Json(item.clone()));
        }
    }
    sink.finish(None)
}

fn decode_pipeline_batch(event: &Value) -> Result<Decoded, DecodeError> {
    let malformed = |message: &str| DecodeError::Malformed {
        kind: SourceKind::PipelineBatch,
        message: message.to_owned(),
    };
    let Value::Object(object) = event else {
        return Err(malformed("expected an object"));
    };
    let batch_id = match object.get("batchId") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(malformed("batchId must be a non-empty string")),
    };
    let Some(Value::Array(events)) = object.get("events") else {
        return Err(malformed("events must be an array"));
    };
    let mut sink = RecordSink::new(SourceKind::PipelineBatch);
    for (position, item) in events.iter().enumerate() {
        sink.push(
            format!("{batch_id}#{position}"),
            Payload::Json(item.clone()),
        );
    }
    Ok(sink.finish(Some(batch_id)))
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses `event` as the given AWS shape, reporting a malformed event by its kind. The
/// event is borrowed: a state machine keeps its input (for a retry, or `$$.Execution.Input`)
/// while the Task runs, so decoding copies only the fields the shape reads rather than the
/// whole event.
pub(crate) fn parse_shape<T: serde::de::DeserializeOwned>(
    kind: SourceKind,
    event: &Value,
) -> Result<T, DecodeError> {
    T::deserialize(event).map_err(|error| DecodeError::Malformed {
        kind,
        message: error.to_string(),
    })
}
