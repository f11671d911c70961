//! Throughput of the domain stages over 100,000 synthetic events.
//!
//! Run with `cargo bench -p pipeline-domain --bench stages`. The events are processed as
//! 100 batches of 1,000, as Lambda invocations would receive them (SQS, Kinesis and S3
//! batches are of that order), on one thread; criterion's "elements/s" is therefore events
//! per second per core. 2 % of the events are invalid, as in real traffic.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Read;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pipeline_domain::StorageError;
use pipeline_domain::canonical::encoded_size;
use pipeline_domain::event::{SourceKind, SourceRef};
use pipeline_domain::ports::ObjectSource;
use pipeline_domain::sources::{Decoded, Payload, SourceRecord, decode};
use pipeline_domain::stages::aggregate::aggregate;
use pipeline_domain::stages::enrich::{EnrichedEvent, UserProfile, enrich};
use pipeline_domain::stages::enriched_batch::EnrichedBatch;
use pipeline_domain::stages::inference::{RiskLabel, RiskScore};
use pipeline_domain::stages::store::StoredEvent;
use pipeline_domain::stages::validate::{ValidatedBatch, validate};
use pipeline_domain::synth::{SynthConfig, generate};
use serde_json::json;

/// The allocator the function binaries and the `pipeline` command use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 100_000;
const BATCH: usize = 1_000;
const NOW_MILLIS: i64 = 1_700_000_100_000;

/// In-memory S3 objects, so decoding reads real JSON Lines streams without disk I/O.
struct MemoryObjects(HashMap<String, Vec<u8>>);

impl ObjectSource for MemoryObjects {
    fn open(&self, _bucket: &str, key: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        let body = self.0.get(key).cloned().unwrap_or_default();
        Ok(Box::new(std::io::Cursor::new(body)))
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

/// One batch's records as an SQS batch would carry them: raw bytes per record.
fn decoded_batch(lines: &[Vec<u8>]) -> Decoded {
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

fn s3_event(key: &str) -> serde_json::Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": "2023-11-14T22:14:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "bench"}, "requestParameters": {"sourceIPAddress": "198.51.100.1"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "uploads", "arn": "arn:aws:s3:::uploads"},
               "object": {"key": key, "size": 1}}
    }]})
}

fn benches(c: &mut Criterion) {
    pipeline_domain::schema::warm_up();
    let lines = lines();
    let profiles = profiles(&SynthConfig::default());
    let keys: Vec<String> = (0..EVENTS / BATCH)
        .map(|number| format!("batch-{number}.jsonl"))
        .collect();
    let objects = MemoryObjects(
        keys.iter()
            .zip(lines.chunks(BATCH))
            .map(|(key, chunk)| {
                let mut body = Vec::new();
                for line in chunk {
                    body.extend_from_slice(line);
                    body.push(b'\n');
                }
                (key.clone(), body)
            })
            .collect(),
    );
    let validated: Vec<ValidatedBatch> = lines
        .chunks(BATCH)
        .map(|chunk| validate(decoded_batch(chunk)))
        .collect();

    let mut group = c.benchmark_group("stages");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));

    group.bench_function("validate", |bench| {
        bench.iter_batched(
            || lines.chunks(BATCH).map(decoded_batch).collect::<Vec<_>>(),
            |batches| {
                for batch in batches {
                    black_box(validate(batch));
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });

    group.bench_function("decode_s3_jsonl", |bench| {
        bench.iter(|| {
            for key in &keys {
                black_box(decode(&s3_event(key), &objects).unwrap());
            }
        })
    });

    group.bench_function("enrich", |bench| {
        bench.iter_batched(
            || {
                validated
                    .iter()
                    .map(|batch| batch.events.clone())
                    .collect::<Vec<_>>()
            },
            |batches| {
                for events in batches {
                    black_box(enrich(events, &profiles, NOW_MILLIS));
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });

    group.bench_function("aggregate", |bench| {
        bench.iter(|| {
            for batch in &validated {
                black_box(aggregate(
                    &batch.batch_id,
                    batch.events.iter().map(|valid| &valid.event),
                ));
            }
        })
    });

    group.bench_function("decode_validate_enrich_aggregate", |bench| {
        bench.iter(|| {
            for key in &keys {
                let batch = validate(decode(&s3_event(key), &objects).unwrap());
                let deltas = aggregate(
                    &batch.batch_id,
                    batch.events.iter().map(|valid| &valid.event),
                );
                let enriched = enrich(batch.events, &profiles, NOW_MILLIS);
                black_box((enriched, deltas));
            }
        })
    });
    group.finish();

    // An event row's JSON and a staged batch's size, with the derived `Serialize`, with the
    // hand-written writer that replaced it (the same bytes), and from the batch's text that
    // `enrich`'s output has written once (`EnrichedBatch`).
    let enriched: Vec<Vec<EnrichedEvent>> = validated
        .iter()
        .map(|batch| enrich(batch.events.clone(), &profiles, NOW_MILLIS))
        .collect();
    let batches: Vec<EnrichedBatch> = enriched
        .iter()
        .map(|events| EnrichedBatch::new(events.clone()))
        .collect();
    let risk = RiskScore {
        event_id: "evt_0123456789abcdef0123456789abcdef".to_owned(),
        score: 0.25,
        label: RiskLabel::Low,
        model_version: "risk-lr-ee1043bf653f".to_owned(),
    };
    let mut group = c.benchmark_group("event_json");
    group.sample_size(20);
    group.throughput(Throughput::Elements(EVENTS as u64));
    let rows = |from_text: bool, write: fn(&StoredEvent<'_>, &mut Vec<u8>)| {
        let mut bytes = 0;
        for batch in &batches {
            for (index, event) in batch.iter().enumerate() {
                let stored = StoredEvent {
                    enriched: event,
                    risk: Some(&risk),
                    enriched_json: batch.written_event_json(index).filter(|_| from_text),
                };
                let mut row = Vec::with_capacity(2048);
                write(&stored, &mut row);
                bytes += black_box(row).len();
            }
        }
        bytes
    };
    group.bench_function("rows_derived", |bench| {
        bench.iter(|| {
            rows(false, |stored, row| {
                serde_json::to_writer(row, stored).unwrap()
            })
        })
    });
    group.bench_function("rows_written", |bench| {
        bench.iter(|| rows(false, |stored, row| stored.write_json(row).unwrap()))
    });
    group.bench_function("rows_from_batch_text", |bench| {
        bench.iter(|| rows(true, |stored, row| stored.write_json(row).unwrap()))
    });
    group.bench_function("batch_size_derived", |bench| {
        bench.iter(|| {
            let sizes = enriched.iter().map(encoded_size);
            black_box(sizes.sum::<usize>())
        })
    });
    // What `enrich`'s output now pays for its text, once (the events are moved in, not
    // copied: the copies are made outside the clock).
    group.bench_function("batch_text_written", |bench| {
        bench.iter_batched(
            || enriched.clone(),
            |enriched| {
                let batches = enriched.into_iter().map(EnrichedBatch::new);
                black_box(batches.collect::<Vec<_>>())
            },
            BatchSize::LargeInput,
        )
    });
    // Reading a staged part back, as `aggregate`, `inference` and `store` do when it was
    // staged as JSON (every part of a deployed run, and of a local one over the in-memory
    // budget): most of it is each event's `data`, put in canonical form again.
    group.bench_function("staged_batch_read", |bench| {
        bench.iter(|| {
            let read = batches
                .iter()
                .map(|batch| serde_json::from_str::<EnrichedBatch>(batch.json()).unwrap());
            black_box(read.map(|batch| batch.len()).sum::<usize>())
        })
    });
    group.finish();
}

criterion_group!(stages, benches);
criterion_main!(stages);
