//! Throughput of the domain stages over 100,000 synthetic events.
//!
//! Run with `cargo bench -p pipeline-domain --bench stages`. Each benchmark processes the
//! whole set per iteration on one thread, so criterion's "elements/s" is events per second
//! per core.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Read;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipeline_domain::StorageError;
use pipeline_domain::event::{SourceKind, SourceRef};
use pipeline_domain::ports::ObjectSource;
use pipeline_domain::sources::{Decoded, Payload, SourceRecord, decode};
use pipeline_domain::stages::aggregate::aggregate;
use pipeline_domain::stages::enrich::{UserProfile, enrich};
use pipeline_domain::stages::validate::validate;
use pipeline_domain::synth::{SynthConfig, generate};
use serde_json::json;

const EVENTS: usize = 100_000;
const NOW_MILLIS: i64 = 1_700_000_100_000;

/// An in-memory S3 object, so decoding reads a real JSON Lines stream without disk I/O.
struct MemoryObject(Vec<u8>);

impl ObjectSource for MemoryObject {
    fn open(&self, _bucket: &str, _key: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        Ok(Box::new(std::io::Cursor::new(self.0.clone())))
    }
}

fn lines() -> Vec<Vec<u8>> {
    let config = SynthConfig {
        invalid_ratio: 0.02,
        ..SynthConfig::default()
    };
    generate(&config, EVENTS)
        .iter()
        .map(|event| serde_json::to_vec(event).unwrap())
        .collect()
}

fn profiles(config: &SynthConfig) -> HashMap<String, UserProfile> {
    (0..config.users)
        .filter(|user| user % 5 != 0)
        .map(|user| {
            let user_id = format!("user-{user:05}");
            let profile = UserProfile {
                user_id: user_id.clone(),
                segment: "regular".into(),
                country: "DE".into(),
                signup_timestamp: 1_600_000_000_000,
                average_amount: 40.0,
                known_devices: vec!["Windows 10/Chrome".into()],
            };
            (user_id, profile)
        })
        .collect()
}

fn records(lines: &[Vec<u8>]) -> Decoded {
    let records = lines
        .iter()
        .enumerate()
        .map(|(index, line)| SourceRecord {
            source: SourceRef {
                kind: SourceKind::Sqs,
                id: format!("m{index}"),
                index,
            },
            payload: Payload::Bytes(line.clone()),
        })
        .collect();
    Decoded {
        kind: SourceKind::Sqs,
        records,
        skipped: Vec::new(),
        batch_id: None,
    }
}

fn s3_event() -> serde_json::Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": "2023-11-14T22:14:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "bench"}, "requestParameters": {"sourceIPAddress": "198.51.100.1"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "uploads", "arn": "arn:aws:s3:::uploads"},
               "object": {"key": "events.jsonl", "size": 1}}
    }]})
}

fn benches(c: &mut Criterion) {
    pipeline_domain::schema::warm_up();
    let lines = lines();
    let profiles = profiles(&SynthConfig::default());
    let mut object = Vec::new();
    for line in &lines {
        object.extend_from_slice(line);
        object.push(b'\n');
    }
    let object = MemoryObject(object);

    let mut group = c.benchmark_group("stages");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));

    group.bench_function("validate", |bench| {
        bench.iter_batched(
            || records(&lines),
            |decoded| black_box(validate(decoded)),
            criterion::BatchSize::LargeInput,
        )
    });

    group.bench_function("decode_validate_enrich_aggregate", |bench| {
        bench.iter(|| {
            let decoded = decode(s3_event(), &object).unwrap();
            let batch = validate(decoded);
            let deltas = aggregate(
                &batch.batch_id,
                batch.events.iter().map(|valid| &valid.event),
            );
            let enriched = enrich(batch.events, &profiles, NOW_MILLIS);
            black_box((enriched, deltas))
        })
    });
    group.finish();
}

criterion_group!(stages, benches);
criterion_main!(stages);
