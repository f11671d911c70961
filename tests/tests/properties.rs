//! Property tests: no input makes decoding or validation panic; attribute values round-trip.

use std::io::Read;

use base64::Engine;
use pipeline_domain::StorageError;
use pipeline_domain::ports::ObjectSource;
use pipeline_domain::sources::attribute_value::{from_json, to_json};
use pipeline_domain::sources::object::ObjectRecords;
use pipeline_domain::sources::{Payload, decode};
use pipeline_domain::stages::validate::{check_payload, validate};
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

/// Serves the same bytes for any key.
struct BytesObject(Vec<u8>);

impl ObjectSource for BytesObject {
    fn open(&self, _bucket: &str, _key: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        Ok(Box::new(std::io::Cursor::new(self.0.clone())))
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{0,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// JSON shaped like the contract's fields, often almost valid.
fn event_like() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop_oneof![
            ".{0,6}".prop_map(Value::String),
            arbitrary_json()
        ]),
        prop::option::of(prop_oneof![
            ".{0,6}".prop_map(Value::String),
            arbitrary_json()
        ]),
        prop::option::of(arbitrary_json()),
        prop::option::of(arbitrary_json()),
        prop::option::of(arbitrary_json()),
    )
        .prop_map(|(user, kind, timestamp, data, id)| {
            let mut object = Map::new();
            for (name, value) in [
                ("userId", user),
                ("eventType", kind),
                ("timestamp", timestamp),
                ("data", data),
                ("eventId", id),
            ] {
                if let Some(value) = value {
                    object.insert(name.to_owned(), value);
                }
            }
            Value::Object(object)
        })
}

fn s3_event() -> Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": "2023-11-14T22:14:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "198.51.100.1"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "b", "arn": "arn:aws:s3:::b"}, "object": {"key": "k", "size": 1}}
    }]})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_a_record_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = check_payload(Payload::Bytes(bytes));
    }

    #[test]
    fn arbitrary_json_as_an_event_never_panics(value in arbitrary_json()) {
        if let Ok(decoded) = decode(&value, &BytesObject(Vec::new())) {
            let _ = validate(decoded);
        }
    }

    #[test]
    fn event_like_records_are_accepted_or_rejected_with_errors(value in event_like()) {
        match check_payload(Payload::Json(value)) {
            Ok(event) => prop_assert!(!event.event_id.is_empty()),
            Err(errors) => prop_assert!(!errors.is_empty()),
        }
    }

    #[test]
    fn arbitrary_bytes_in_a_source_envelope_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let envelopes = [
            json!({"Records": [{"messageId": "m", "body": text, "eventSource": "aws:sqs"}]}),
            json!({"Records": [{"eventSource": "aws:kinesis", "kinesis": {"data": encoded, "partitionKey": "p",
                "sequenceNumber": "1", "approximateArrivalTimestamp": 1.0, "kinesisSchemaVersion": "1.0"}}]}),
            json!({"version": "2.0", "requestContext": {"requestId": "r"}, "body": text, "isBase64Encoded": false}),
            json!({"httpMethod": "POST", "requestContext": {"requestId": "r"}, "body": encoded, "isBase64Encoded": true}),
        ];
        for envelope in envelopes {
            if let Ok(decoded) = decode(&envelope, &BytesObject(Vec::new())) {
                let _ = validate(decoded);
            }
        }
    }

    #[test]
    fn arbitrary_s3_objects_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let decoded = decode(&s3_event(), &BytesObject(bytes)).expect("the S3 envelope is valid");
        let _ = validate(decoded);
    }

    #[test]
    fn gzip_objects_decode_like_plain_ones(lines in prop::collection::vec("[ -~]{0,40}", 0..20)) {
        let plain = lines.join("\n").into_bytes();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &plain).unwrap();
        let compressed = encoder.finish().unwrap();
        let from_plain: Vec<_> = ObjectRecords::new(Box::new(std::io::Cursor::new(plain))).collect();
        let from_gzip: Vec<_> = ObjectRecords::new(Box::new(std::io::Cursor::new(compressed))).collect();
        prop_assert_eq!(from_plain, from_gzip);
    }

    #[test]
    fn attribute_values_round_trip(value in arbitrary_json()) {
        prop_assert_eq!(to_json(from_json(&value)).unwrap(), value);
    }
}
