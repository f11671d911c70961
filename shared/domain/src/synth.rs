//! Synthetic user events, deterministic for a seed: for benchmarks, tests and demos.

use base64::Engine;
use serde_json::{Value, json};

use crate::event::SourceKind;

/// A small, fast, deterministic generator (SplitMix64); not for cryptography.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// User agents of common devices, so enrichment sees realistic values.
pub const USER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
];

const EVENT_TYPES: [&str; 5] = ["page_view", "click", "add_to_cart", "purchase", "login"];

/// Settings for [`generate`].
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub seed: u64,
    pub users: u64,
    /// Start of the time range, milliseconds since the Unix epoch.
    pub start_millis: u64,
    /// Length of the time range.
    pub span_millis: u64,
    /// Share of events made invalid on purpose, from 0 to 1.
    pub invalid_ratio: f64,
    /// How timestamps fall in the time range.
    pub arrival: Arrival,
}

/// How the timestamps of generated events fall in the time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Anywhere in the range, in any order: a file exported from a store, say.
    Scattered,
    /// In order, as a stream delivers them: the `i`-th of `n` events happens about
    /// `i / n` of the way through the range, up to `jitter_millis` late, so a run of
    /// consecutive events (one delivery) covers a short stretch of time.
    Stream { jitter_millis: u64 },
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            users: 1_000,
            start_millis: 1_700_000_000_000,
            span_millis: 3_600_000,
            invalid_ratio: 0.0,
            arrival: Arrival::Scattered,
        }
    }
}

/// `count` events as JSON values; some invalid when `invalid_ratio` is above zero.
pub fn generate(config: &SynthConfig, count: usize) -> Vec<Value> {
    events(config, count).collect()
}

/// The events of [`generate`], in the same order, made one at a time as they are asked
/// for: a caller that wraps them batch by batch holds one batch of them at a time.
pub fn events(config: &SynthConfig, count: usize) -> impl Iterator<Item = Value> + '_ {
    let mut random = SplitMix64::new(config.seed);
    (0..count).map(move |index| one_event(config, &mut random, index as u64, count as u64))
}

fn one_event(config: &SynthConfig, random: &mut SplitMix64, index: u64, count: u64) -> Value {
    let user = format!("user-{:05}", random.below(config.users));
    let event_type = EVENT_TYPES[random.below(EVENT_TYPES.len() as u64) as usize];
    let offset = match config.arrival {
        Arrival::Scattered => random.below(config.span_millis),
        Arrival::Stream { jitter_millis } => {
            let on_time = (u128::from(config.span_millis) * u128::from(index)
                / u128::from(count.max(1))) as u64;
            (on_time + random.below(jitter_millis + 1)).min(config.span_millis.saturating_sub(1))
        }
    };
    let timestamp = config.start_millis + offset;
    let agent = USER_AGENTS[random.below(USER_AGENTS.len() as u64) as usize];
    let mut data = json!({ "userAgent": agent, "page": format!("/p/{}", random.below(200)) });
    if event_type == "purchase" || event_type == "add_to_cart" {
        let cents = 100 + random.below(20_000);
        data["amount"] = json!(cents as f64 / 100.0);
        data["currency"] = json!("EUR");
    }
    let mut event =
        json!({ "userId": user, "eventType": event_type, "timestamp": timestamp, "data": data });
    if random.unit() < config.invalid_ratio {
        match random.below(4) {
            0 => drop(event.as_object_mut().map(|object| object.remove("userId"))),
            1 => event["timestamp"] = json!("yesterday"),
            2 => event["eventType"] = json!(""),
            _ => event["data"] = json!("not an object"),
        }
    }
    event
}

/// Wraps events in the Lambda event shape of `kind`, as that source would deliver them.
///
/// Supported: SQS, SNS, Kinesis, DynamoDB Streams (one INSERT per event), EventBridge (first event only: one event per delivery),
/// API Gateway HTTP and REST (the events as one JSON array body), and the direct array.
/// Other kinds return `None`.
pub fn wrap_as(kind: SourceKind, events: &[Value], batch_number: usize) -> Option<Value> {
    let text = |event: &Value| event.to_string();
    let region = "eu-west-1";
    Some(match kind {
        SourceKind::Direct => Value::Array(events.to_vec()),
        SourceKind::Sqs => {
            json!({ "Records": events.iter().enumerate().map(|(index, event)| json!({
            "messageId": format!("msg-{batch_number}-{index}"),
            "receiptHandle": format!("handle-{batch_number}-{index}"),
            "body": text(event),
            "attributes": { "ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000" },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": format!("arn:aws:sqs:{region}:123456789012:pipeline-events"),
            "awsRegion": region,
        })).collect::<Vec<_>>() })
        }
        SourceKind::Sns => {
            json!({ "Records": events.iter().enumerate().map(|(index, event)| json!({
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": format!("arn:aws:sns:{region}:123456789012:pipeline-events:sub"),
            "Sns": {
                "Type": "Notification",
                "MessageId": format!("sns-{batch_number}-{index}"),
                "TopicArn": format!("arn:aws:sns:{region}:123456789012:pipeline-events"),
                "Subject": null,
                "Message": text(event),
                "Timestamp": "2023-11-14T22:13:20.000Z",
                "SignatureVersion": "1",
                "Signature": "EXAMPLE",
                "SigningCertUrl": "https://sns.example.invalid/cert.pem",
                "UnsubscribeUrl": "https://sns.example.invalid/unsubscribe",
                "MessageAttributes": {},
            },
        })).collect::<Vec<_>>() })
        }
        SourceKind::Kinesis => {
            json!({ "Records": events.iter().enumerate().map(|(index, event)| json!({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": event.get("userId").and_then(Value::as_str).unwrap_or("none"),
                "sequenceNumber": format!("4959{batch_number:010}{index:010}"),
                "data": base64::engine::general_purpose::STANDARD.encode(text(event)),
                "approximateArrivalTimestamp": 1_700_000_000.0,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": format!("shardId-000000000000:4959{batch_number:010}{index:010}"),
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": format!("arn:aws:iam::123456789012:role/pipeline"),
            "awsRegion": region,
            "eventSourceARN": format!("arn:aws:kinesis:{region}:123456789012:stream/pipeline-events"),
        })).collect::<Vec<_>>() })
        }
        SourceKind::DynamodbStream => {
            json!({ "Records": events.iter().enumerate().map(|(index, event)| json!({
            "eventID": format!("ddb-{batch_number}-{index}"),
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": region,
            "dynamodb": {
                "ApproximateCreationDateTime": 1_700_000_000.0,
                "Keys": { "eventId": { "S": format!("ddb-{batch_number}-{index}") } },
                "NewImage": attribute_map(event),
                "SequenceNumber": format!("{batch_number:010}{index:010}"),
                "SizeBytes": 256,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": format!("arn:aws:dynamodb:{region}:123456789012:table/pipeline-events/stream/2023-11-14T22:13:20.000"),
        })).collect::<Vec<_>>() })
        }
        SourceKind::Eventbridge => json!({
            "version": "0",
            "id": format!("eb-{batch_number}"),
            "detail-type": "UserEvent",
            "source": "com.example.shop",
            "account": "123456789012",
            "time": "2023-11-14T22:13:20Z",
            "region": region,
            "resources": [],
            "detail": events.first().cloned().unwrap_or(Value::Null),
        }),
        SourceKind::ApiGatewayHttp => json!({
            "version": "2.0",
            "routeKey": "POST /events",
            "rawPath": "/events",
            "rawQueryString": "",
            "headers": { "content-type": "application/json" },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": "api.example.invalid",
                "domainPrefix": "api",
                "http": { "method": "POST", "path": "/events", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "client" },
                "requestId": format!("req-{batch_number}"),
                "routeKey": "POST /events",
                "stage": "$default",
                "time": "14/Nov/2023:22:13:20 +0000",
                "timeEpoch": 1_700_000_000_000_u64,
            },
            "body": Value::Array(events.to_vec()).to_string(),
            "isBase64Encoded": false,
        }),
        SourceKind::ApiGatewayRest => json!({
            "resource": "/events",
            "path": "/events",
            "httpMethod": "POST",
            "headers": { "Content-Type": "application/json" },
            "multiValueHeaders": { "Content-Type": ["application/json"] },
            "queryStringParameters": null,
            "multiValueQueryStringParameters": null,
            "pathParameters": null,
            "stageVariables": null,
            "requestContext": {
                "accountId": "123456789012",
                "resourceId": "abc123",
                "stage": "prod",
                "requestId": format!("req-{batch_number}"),
                "identity": { "sourceIp": "192.0.2.1" },
                "resourcePath": "/events",
                "httpMethod": "POST",
                "apiId": "api",
            },
            "body": Value::Array(events.to_vec()).to_string(),
            "isBase64Encoded": false,
        }),
        SourceKind::S3 | SourceKind::PipelineBatch => return None,
    })
}

/// A JSON value in DynamoDB's attribute-value JSON, as a stream record's image holds it.
/// A non-object event becomes an image with no attributes.
fn attribute_map(event: &Value) -> Value {
    match event {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), attribute_value(value)))
                .collect(),
        ),
        _ => json!({}),
    }
}

fn attribute_value(value: &Value) -> Value {
    match value {
        Value::Null => json!({ "NULL": true }),
        Value::Bool(flag) => json!({ "BOOL": flag }),
        Value::Number(number) => json!({ "N": number.to_string() }),
        Value::String(text) => json!({ "S": text }),
        Value::Array(items) => {
            json!({ "L": items.iter().map(attribute_value).collect::<Vec<_>>() })
        }
        Value::Object(_) => json!({ "M": attribute_map(value) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let config = SynthConfig {
            invalid_ratio: 0.1,
            ..SynthConfig::default()
        };
        assert_eq!(generate(&config, 50), generate(&config, 50));
        let other = SynthConfig {
            seed: 7,
            ..config.clone()
        };
        assert_ne!(generate(&config, 50), generate(&other, 50));
    }

    #[test]
    fn stream_arrival_keeps_events_in_order_within_the_jitter_and_the_range() {
        let config = SynthConfig {
            span_millis: 60_000,
            arrival: Arrival::Stream { jitter_millis: 500 },
            ..SynthConfig::default()
        };
        let stamps: Vec<u64> = generate(&config, 1_000)
            .iter()
            .map(|event| event["timestamp"].as_u64().unwrap() - config.start_millis)
            .collect();
        assert!(stamps.iter().all(|&offset| offset < 60_000));
        for (index, &offset) in stamps.iter().enumerate() {
            let on_time = index as u64 * 60;
            assert!(
                (on_time..=on_time + 500).contains(&offset),
                "event {index} at {offset}"
            );
        }
        assert!(
            stamps[999] >= 59_000,
            "the events reach the end of the range"
        );
    }

    #[test]
    fn wrapped_events_decode_back_to_the_same_records() {
        use crate::sources::{Payload, decode};
        struct NoObjects;
        impl crate::ports::ObjectSource for NoObjects {
            fn open(
                &self,
                bucket: &str,
                key: &str,
            ) -> Result<Box<dyn std::io::Read + Send>, crate::StorageError> {
                Err(crate::StorageError::permanent(
                    format!("open {bucket}/{key}"),
                    "no objects in this test",
                ))
            }
        }
        let events = generate(&SynthConfig::default(), 3);
        for kind in [
            SourceKind::Direct,
            SourceKind::Sqs,
            SourceKind::Sns,
            SourceKind::Kinesis,
            SourceKind::ApiGatewayHttp,
            SourceKind::ApiGatewayRest,
            SourceKind::DynamodbStream,
        ] {
            let decoded = decode(&wrap_as(kind, &events, 0).unwrap(), &NoObjects).unwrap();
            assert_eq!(decoded.kind, kind);
            let values: Vec<Value> = decoded
                .records
                .into_iter()
                .map(|record| match record.payload {
                    Payload::Bytes(bytes) => serde_json::from_slice(&bytes).unwrap(),
                    Payload::Json(value) => value,
                    other => panic!("{kind}: unexpected {other:?}"),
                })
                .collect();
            assert_eq!(values, events, "{kind}");
        }
    }
}
