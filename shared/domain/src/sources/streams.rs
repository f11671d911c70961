//! Queue, topic, stream and bus sources: SQS, SNS, Kinesis, DynamoDB Streams, EventBridge.

use aws_lambda_events::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::kinesis::KinesisEventRecord;
use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::SqsEvent;
use serde::Deserialize;
use serde_json::Value;

use super::attribute_value::item_to_json;
use super::{DecodeError, Decoded, Payload, RecordSink, parse_shape};
use crate::event::SourceKind;

pub(super) fn decode_sqs(event: &Value) -> Result<Decoded, DecodeError> {
    let event: SqsEvent = parse_shape(SourceKind::Sqs, event)?;
    let mut sink = RecordSink::new(SourceKind::Sqs);
    for (position, message) in event.records.into_iter().enumerate() {
        let id = message
            .message_id
            .unwrap_or_else(|| format!("message-{position}"));
        let payload = match message.body {
            Some(body) => Payload::Bytes(body.into_bytes()),
            None => Payload::Undecodable {
                pointer: String::new(),
                reason: "the SQS message has no body".to_owned(),
            },
        };
        sink.push(id, payload);
    }
    Ok(sink.finish(None))
}

pub(super) fn decode_sns(event: &Value) -> Result<Decoded, DecodeError> {
    let event: SnsEvent = parse_shape(SourceKind::Sns, event)?;
    let mut sink = RecordSink::new(SourceKind::Sns);
    for record in event.records {
        sink.push(
            record.sns.message_id,
            Payload::Bytes(record.sns.message.into_bytes()),
        );
    }
    Ok(sink.finish(None))
}

pub(super) fn decode_kinesis(event: &Value) -> Result<Decoded, DecodeError> {
    // The data field is base64; the record type decodes it while parsing. One record with
    // bad data would make the whole event fail to parse, so records are parsed one by one.
    let records = records_array(SourceKind::Kinesis, event)?;
    let mut sink = RecordSink::new(SourceKind::Kinesis);
    for (position, record) in records.iter().enumerate() {
        let sequence = record
            .pointer("/kinesis/sequenceNumber")
            .and_then(Value::as_str)
            .map_or_else(|| format!("record-{position}"), str::to_owned);
        match KinesisEventRecord::deserialize(record) {
            Ok(record) => sink.push(sequence, Payload::Bytes(record.kinesis.data.0)),
            Err(error) => sink.push(
                sequence,
                Payload::Undecodable {
                    pointer: String::new(),
                    reason: format!("the Kinesis record does not decode: {error}"),
                },
            ),
        }
    }
    Ok(sink.finish(None))
}

pub(super) fn decode_dynamodb(event: &Value) -> Result<Decoded, DecodeError> {
    let event: DynamoDbEvent = parse_shape(SourceKind::DynamodbStream, event)?;
    let mut sink = RecordSink::new(SourceKind::DynamodbStream);
    for record in event.records {
        let id = record
            .change
            .sequence_number
            .clone()
            .unwrap_or(record.event_id);
        match record.event_name.as_str() {
            "INSERT" | "MODIFY" => {
                let image = record.change.new_image.into_inner();
                if image.is_empty() {
                    sink.push(
                        id,
                        Payload::Undecodable {
                            pointer: String::new(),
                            reason:
                                "the stream record has no NewImage; the stream view type must be \
                                     NEW_IMAGE or NEW_AND_OLD_IMAGES"
                                    .to_owned(),
                        },
                    );
                    continue;
                }
                match item_to_json(image) {
                    Ok(value) => sink.push(id, Payload::Json(value)),
                    Err(error) => sink.push(
                        id,
                        Payload::Undecodable {
                            pointer: error.pointer,
                            reason: error.reason,
                        },
                    ),
                }
            }
            "REMOVE" => sink.skip(id, "REMOVE records delete an item and carry no new event"),
            other => sink.push(
                id,
                Payload::Undecodable {
                    pointer: String::new(),
                    reason: format!("unknown eventName {other:?}"),
                },
            ),
        }
    }
    Ok(sink.finish(None))
}

pub(super) fn decode_eventbridge(event: &Value) -> Result<Decoded, DecodeError> {
    let event: EventBridgeEvent<Value> = parse_shape(SourceKind::Eventbridge, event)?;
    let mut sink = RecordSink::new(SourceKind::Eventbridge);
    let id = event.id.unwrap_or_else(|| "event".to_owned());
    sink.push(id, Payload::Json(event.detail));
    Ok(sink.finish(None))
}

fn records_array(kind: SourceKind, event: &Value) -> Result<&Vec<Value>, DecodeError> {
    match event {
        Value::Object(object) => match object.get("Records") {
            Some(Value::Array(records)) => Ok(records),
            _ => Err(DecodeError::Malformed {
                kind,
                message: "Records must be an array".to_owned(),
            }),
        },
        _ => Err(DecodeError::Malformed {
            kind,
            message: "expected an object".to_owned(),
        }),
    }
}
