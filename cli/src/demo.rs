//! `pipeline demo`: synthetic events from every source through the state machine.

use pipeline_adapters::Config;
use pipeline_domain::event::SourceKind;
use pipeline_domain::stages::enrich::UserProfile;
use pipeline_domain::synth::{self, Arrival, SplitMix64, SynthConfig, wrap_as};
use pipeline_handlers::deps::Backend;
use serde_json::Value;

use pipeline_asl::serialized_size;

use crate::generate::source_event;
use crate::runner::{Input, run_and_report};
use crate::serve::EXECUTION_INPUT_LIMIT;

/// The sources the demo rotates through, one per batch.
pub const DEMO_SOURCES: [SourceKind; 9] = [
    SourceKind::ApiGatewayHttp,
    SourceKind::ApiGatewayRest,
    SourceKind::Sqs,
    SourceKind::Sns,
    SourceKind::Kinesis,
    SourceKind::S3,
    SourceKind::DynamodbStream,
    SourceKind::Direct,
    SourceKind::Eventbridge,
];

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How many synthetic events to generate.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Events per source event (EventBridge delivers one at a time, whatever this says).
    #[arg(long, default_value_t = 1_000)]
    batch_size: usize,
    /// Share of events made invalid on purpose.
    #[arg(long, default_value_t = 0.03)]
    invalid_ratio: f64,
    /// Seed of the generator: the same seed gives the same events.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Executions run at once (default: four per core).
    #[arg(long)]
    concurrency: Option<usize>,
}

pub async fn run(config: &Config, args: DemoArgs) -> Result<(), String> {
    if args.batch_size == 0 {
        return Err("--batch-size must be at least 1".to_owned());
    }
    // The demo's S3 uploads are its own data: they go under the data directory, never into a
    // folder of source objects the user keeps (such as the fixtures').
    let mut config = config.clone();
    config.objects_dir = config.data_dir.join("objects");
    let config = &config;
    let backend = Backend::open(config)
        .await
        .map_err(|error| format!("ConfigError: {error}"))?;
    let synth = demo_synth(args.seed, args.invalid_ratio);
    backend
        .put_profiles(&synthetic_profiles(&synth))
        .await
        .map_err(|error| error.to_string())?;

    let mut inputs = source_events(
        synth::events(&synth, args.events),
        args.batch_size,
        &config.objects_dir,
    )?;
    if let Backend::Aws(aws) = &backend {
        upload_sources(aws, &mut inputs, &config.objects_dir).await?;
    }

    let concurrency = args.concurrency.unwrap_or_else(default_concurrency);
    println!(
        "Running {} synthetic events ({} source events from {} kinds of source) through the state machine \
         statemachine/pipeline.asl.json: validate -> enrich -> aggregate + inference -> store, {concurrency} executions at a time.",
        args.events,
        inputs.len(),
        DEMO_SOURCES.len()
    );
    run_and_report(
        config,
        &backend,
        inputs,
        concurrency,
        args.events as u64,
        "events",
    )
    .await
}

/// The demo's events. Many users over six hours, so a batch holds about one event per user,
/// as a real stream of sessions does (the risk model reads a user's burst within a batch).
/// The events arrive in time order, a few seconds late at most, so each source event holds
/// about a minute of them, as a stream's delivery or a periodic upload would.
fn demo_synth(seed: u64, invalid_ratio: f64) -> SynthConfig {
    SynthConfig {
        seed,
        invalid_ratio,
        users: 20_000,
        span_millis: 6 * 3_600_000,
        arrival: Arrival::Stream {
            jitter_millis: 5_000,
        },
        ..SynthConfig::default()
    }
}

/// The demo's source events: `events` in batches of `batch_size`, rotating through
/// [`DEMO_SOURCES`], each with its size measured. A source event is an execution's input,
/// which Step Functions limits to 256 KiB, so a batch is halved until it fits (S3 uploads
/// stay whole; only their notification is the input), and the events left out start the
/// next batch. The halvings a sample shows cannot fit are skipped without building the
/// batch: that was most of the time spent before the run started. The size measured last
/// is the input's, so the execution does not measure it again. Events are taken from the
/// iterator as batches need them, so only a batch of them is held at a time.
fn source_events(
    events: impl Iterator<Item = Value>,
    batch_size: usize,
    objects_dir: &std::path::Path,
) -> Result<Vec<Input>, String> {
    let mut events = events.fuse();
    let mut pending: Vec<Value> = Vec::new();
    let mut inputs = Vec::new();
    let mut number = 0;
    loop {
        let kind = DEMO_SOURCES[number % DEMO_SOURCES.len()];
        let size = if kind == SourceKind::Eventbridge {
            1
        } else {
            batch_size
        };
        if pending.len() < size {
            pending.extend(events.by_ref().take(size - pending.len()));
        }
        if pending.is_empty() {
            break;
        }
        let mut chunk = &pending[..size.min(pending.len())];
        if let Some(estimate) = SizeEstimate::sample(kind, chunk, number) {
            while chunk.len() > 1
                && estimate.bytes(chunk.len()) > EXECUTION_INPUT_LIMIT + EXECUTION_INPUT_LIMIT / 20
            {
                chunk = &chunk[..chunk.len() / 2];
            }
        }
        let mut event = source_event(kind, chunk, number, objects_dir)?;
        let mut bytes = serialized_size(&event);
        while chunk.len() > 1 && bytes > EXECUTION_INPUT_LIMIT {
            chunk = &chunk[..chunk.len() / 2];
            event = source_event(kind, chunk, number, objects_dir)?;
            bytes = serialized_size(&event);
        }
        let wrapped = chunk.len();
        inputs.push(Input {
            label: format!("demo batch {number} ({kind})"),
            event,
            events: wrapped as u64,
            input_bytes: Some(bytes),
        });
        pending.drain(..wrapped);
        number += 1;
    }
    Ok(inputs)
}

/// Events in each of the two samples a [`SizeEstimate`] wraps.
const SAMPLE_EVENTS: usize = 32;

/// The size of a source event of one kind as a function of how many events it wraps,
/// measured on two samples of a batch's first events: their difference is the size of an
/// event, the rest is the envelope. Within a few percent for synthetic events, whose sizes
/// vary little; the halved batches are prefixes of the same events, so one estimate serves
/// every halving.
struct SizeEstimate {
    envelope: f64,
    per_event: f64,
}

impl SizeEstimate {
    /// `None` for a batch too small to sample, and for S3, whose source event is a
    /// notification of a fixed size.
    fn sample(kind: SourceKind, events: &[Value], number: usize) -> Option<Self> {
        if kind == SourceKind::S3 || events.len() <= 2 * SAMPLE_EVENTS {
            return None;
        }
        let size = |count: usize| {
            wrap_as(kind, &events[..count], number).map(|event| serialized_size(&event))
        };
        let (small, large) = (size(SAMPLE_EVENTS)?, size(2 * SAMPLE_EVENTS)?);
        let per_event = large.saturating_sub(small) as f64 / SAMPLE_EVENTS as f64;
        Some(Self {
            envelope: small as f64 - per_event * SAMPLE_EVENTS as f64,
            per_event,
        })
    }

    /// The estimated size of a source event of `events` events.
    fn bytes(&self, events: usize) -> usize {
        (self.envelope + self.per_event * events as f64) as usize
    }
}

/// Four executions per core: while some wait for the storage writer's commit, the others
/// run their stages, so the cores are not left idle during the wait. With two per core,
/// both stage workers of a 2-core machine slept while the writer worked for about a
/// quarter of the demo's run (docs/benchmarks.md).
pub fn default_concurrency() -> usize {
    4 * std::thread::available_parallelism().map_or(2, usize::from)
}

/// Profiles for most synthetic users, so enrichment finds some and misses others.
fn synthetic_profiles(synth: &SynthConfig) -> Vec<UserProfile> {
    let mut random = SplitMix64::new(synth.seed ^ 0x5EED);
    let segments = ["new", "regular", "vip"];
    let countries = ["DE", "FR", "US", "GB", "ES", "NL"];
    let mut profiles = Vec::new();
    for user in 0..synth.users {
        if random.below(10) >= 8 {
            continue;
        }
        profiles.push(UserProfile {
            user_id: format!("user-{user:05}"),
            segment: segments[random.below(3) as usize].to_owned(),
            country: countries[random.below(6) as usize].to_owned(),
            signup_timestamp: synth.start_millis as i64 - random.below(1_000) as i64 * 86_400_000,
            average_amount: 20.0 + random.below(8_000) as f64 / 100.0,
            known_devices: vec!["Windows 10/Chrome".to_owned(), "iPhone/Safari".to_owned()],
        });
    }
    profiles
}

/// With the AWS backend, the demo's S3 uploads must be real objects: each one written
/// under the objects directory is put in the lake bucket under `uploads/`, and its
/// notification is pointed there, as if the upload had landed in that bucket.
async fn upload_sources(
    aws: &pipeline_aws::AwsBackend,
    inputs: &mut [Input],
    objects_dir: &std::path::Path,
) -> Result<(), String> {
    let bucket = &aws.resources.lake_bucket;
    for input in inputs.iter_mut() {
        let Some(records) = input
            .event
            .get_mut("Records")
            .and_then(serde_json::Value::as_array_mut)
        else {
            continue;
        };
        for record in records {
            let Some(s3) = record.get_mut("s3").filter(|s3| s3.is_object()) else {
                continue;
            };
            let (Some(source_bucket), Some(key)) =
                (s3["bucket"]["name"].as_str(), s3["object"]["key"].as_str())
            else {
                continue;
            };
            let path = objects_dir.join(source_bucket).join(key);
            let body = aws_sdk_s3::primitives::ByteStream::from_path(&path)
                .await
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            let uploaded = format!("uploads/{key}");
            aws.clients
                .s3
                .put_object()
                .bucket(bucket)
                .key(&uploaded)
                .body(body)
                .send()
                .await
                .map_err(|error| {
                    pipeline_aws::error::classify(format!("upload s3://{bucket}/{uploaded}"), error)
                        .to_string()
                })?;
            s3["bucket"]["name"] = serde_json::Value::String(bucket.clone());
            s3["bucket"]["arn"] = serde_json::Value::String(format!("arn:aws:s3:::{bucket}"));
            s3["object"]["key"] = serde_json::Value::String(uploaded);
            // The input changed: the execution measures it again.
            input.input_bytes = None;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::run_all;

    /// Runs `events` demo events, `concurrency` executions at once, over a state machine
    /// whose in-memory budget is the one for `budget_for` executions; returns how many staged
    /// values did not fit it.
    async fn values_refused(events: usize, concurrency: usize, budget_for: usize) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::from_lookup(|_| None).unwrap();
        config.data_dir = dir.path().join("data");
        config.objects_dir = dir.path().join("objects");
        let backend = Backend::open(&config).await.unwrap();
        let synth = demo_synth(7, 0.03);
        backend
            .put_profiles(&synthetic_profiles(&synth))
            .await
            .unwrap();
        let inputs =
            source_events(synth::events(&synth, events), 1_000, &config.objects_dir).unwrap();
        let (deps, orchestrator) = crate::orchestrator_over(&config, &backend, budget_for).unwrap();
        let mut failures = Vec::new();
        run_all(
            orchestrator,
            deps.clone(),
            inputs.into_iter(),
            concurrency,
            &indicatif::ProgressBar::hidden(),
            |finished| {
                if let Err(failure) = finished.execution.result {
                    failures.push((finished.label, failure));
                }
            },
        )
        .await;
        assert!(failures.is_empty(), "{failures:?}");
        let kept = deps
            .kept
            .as_ref()
            .expect("the embedded backend keeps staged values");
        assert_eq!(kept.held_bytes(), 0, "ended executions keep nothing");
        kept.refused_for_room()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_in_memory_budget_holds_every_execution_running_at_once() {
        // Sixteen demo executions at once: with the budget of eight, some of their values
        // go to the lake; with theirs, none does.
        assert!(values_refused(12_000, 16, 8).await > 0);
        assert_eq!(values_refused(12_000, 16, 16).await, 0);
    }

    #[test]
    fn every_source_event_fits_the_input_limit_and_carries_its_own_size() {
        let objects = tempfile::tempdir().unwrap();
        let config = SynthConfig::default();
        let events = synth::generate(&config, 6_000);
        // Batches of 1,000 events are over 256 KiB in most sources, so they are halved.
        let inputs = source_events(synth::events(&config, 6_000), 1_000, objects.path()).unwrap();
        let mut kinds = std::collections::BTreeSet::new();
        let mut position = 0;
        for input in &inputs {
            let bytes = serialized_size(&input.event);
            assert_eq!(input.input_bytes, Some(bytes), "{}", input.label);
            assert!(bytes <= EXECUTION_INPUT_LIMIT, "{}: {bytes}", input.label);
            kinds.insert(input.label.rsplit('(').next().unwrap().to_owned());
            // A direct invocation's input is its events: the batches take the events in
            // order, the ones a halving left out first.
            let wrapped = input.events as usize;
            if input.label.ends_with("(direct)") {
                assert_eq!(
                    input.event,
                    Value::from(&events[position..position + wrapped])
                );
            }
            position += wrapped;
        }
        assert_eq!(kinds.len(), DEMO_SOURCES.len());
        assert_eq!(position, 6_000);
        assert!(
            inputs.iter().any(|input| input.events == 250),
            "some batches are halved twice"
        );
    }
}
