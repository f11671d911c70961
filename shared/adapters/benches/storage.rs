//! The embedded storage under `store`: batches of 500 processed events written to a data
//! directory, as the `pipeline demo` writes them.
//!
//! Run with `cargo bench -p pipeline-adapters --bench storage`. Every iteration writes a
//! batch of events never seen before (a replay is much cheaper and would flatter the
//! figures), into one database that grows over the run, as a long local run's does; the
//! events are generated, validated, enriched, aggregated and scored before the clock starts.
//!
//! - `store_batch`: the whole stage on the embedded adapters: the events table, the search
//!   index and the aggregate deltas (committed together by the writer thread), one Parquet
//!   object per partition, the quarantine object and the notifications.
//! - `store_batch_without_files`: the same with a lake and a notifier that drop what they
//!   get, so what is left is the database (and the stage's own work of joining the scores
//!   and building the search documents); the difference is the lake's files.
//! - `encode_parquet`: only the encoding of a batch's lake objects (one Parquet file per
//!   partition, about 80 events each), in memory.
//! - `apply_deltas`: only a batch's aggregate deltas, applied to the aggregate table (the
//!   batch id and event ids claimed, the deltas left pending, and folded whenever enough
//!   are, as in the demo), in one database that grows over the run.
//! - `fold_pending`: folding the aggregate deltas of 20,000 events (about 40,000 pending
//!   window memberships) into aggregate tables that hold as many, which `store` does once
//!   50,000 memberships are pending and `pipeline run` and `demo` do before they stop
//!   their clock.
//!
//! criterion's "elements/s" is events per second.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipeline_adapters::local::{Database, FolderObjects, LocalBackend};
use pipeline_adapters::model::OnnxRiskModel;
use pipeline_adapters::parquet::encode_events;
use pipeline_domain::StorageError;
use pipeline_domain::event::SourceKind;
use pipeline_domain::ports::{AggregateTable, DataLake, Notifier};
use pipeline_domain::sources::decode;
use pipeline_domain::stages::aggregate::aggregate;
use pipeline_domain::stages::enrich::{UserProfile, enrich};
use pipeline_domain::stages::enriched_batch::EnrichedBatch;
use pipeline_domain::stages::inference::score_batch;
use pipeline_domain::stages::store::{
    Notification, StoreInput, StorePorts, StoredEvent, store_batch,
};
use pipeline_domain::stages::validate::validate;
use pipeline_domain::synth::{SynthConfig, generate, wrap_as};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 500;
const NOW_MILLIS: i64 = 1_700_000_100_000;

/// Makes a new batch at each call: the seed changes, so do the event ids.
struct Batches {
    seed: AtomicU64,
    objects: FolderObjects,
    model: OnnxRiskModel,
}

impl Batches {
    fn new(objects_dir: &Path) -> Self {
        Self {
            seed: AtomicU64::new(1),
            objects: FolderObjects::new(objects_dir.to_path_buf()),
            model: OnnxRiskModel::embedded().expect("the embedded model loads"),
        }
    }

    /// The input `store` gets for one batch of the demo's kind of traffic: many users over
    /// six hours, 3 % invalid, no profiles.
    fn next(&self) -> StoreInput {
        let seed = self.seed.fetch_add(1, Ordering::Relaxed);
        let config = SynthConfig {
            seed,
            invalid_ratio: 0.03,
            users: 20_000,
            span_millis: 6 * 3_600_000,
            ..SynthConfig::default()
        };
        let events = generate(&config, BATCH);
        let event = wrap_as(SourceKind::Direct, &events, seed as usize).expect("a direct batch");
        let decoded = decode(&event, &self.objects).expect("the batch decodes");
        let batch = validate(decoded);
        let deltas = aggregate(
            &batch.batch_id,
            batch.events.iter().map(|valid| &valid.event),
        );
        let enriched = enrich(
            batch.events,
            &HashMap::<String, UserProfile>::new(),
            NOW_MILLIS,
        );
        let scores = score_batch(&enriched, &self.model).expect("the model scores");
        StoreInput {
            batch_id: batch.batch_id,
            // Its JSON written now, as `enrich` writes it in a run.
            events: Arc::new(EnrichedBatch::new(enriched)),
            aggregates: Some(Arc::new(deltas)),
            scores: Arc::new(scores),
            rejected: batch.rejected,
        }
    }
}

/// A lake and a notifier that keep nothing.
struct Discard;

#[async_trait]
impl DataLake for Discard {
    async fn put_events(&self, _key: &str, _events: &[StoredEvent]) -> Result<(), StorageError> {
        Ok(())
    }

    async fn put_object(
        &self,
        _key: &str,
        _body: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), StorageError> {
        Ok(())
    }
}

#[async_trait]
impl Notifier for Discard {
    async fn publish(&self, notifications: &[Notification]) -> Result<usize, StorageError> {
        Ok(notifications.len())
    }
}

/// Runs `iterations` times: `prepare` off the clock, then `run` on what it made, timed; what
/// `run` returns is dropped off the clock too.
fn time_each<T, R>(
    iterations: u64,
    mut prepare: impl FnMut() -> T,
    mut run: impl FnMut(T) -> R,
) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..iterations {
        let prepared = prepare();
        let start = Instant::now();
        let ran = run(prepared);
        spent += start.elapsed();
        drop(ran);
    }
    spent
}

/// Stores a new batch per iteration; only the store is timed.
fn time_stores(
    runtime: &tokio::runtime::Runtime,
    batches: &Batches,
    ports: &StorePorts<'_>,
    iterations: u64,
) -> Duration {
    time_each(
        iterations,
        || batches.next(),
        |input| {
            runtime
                .block_on(store_batch(input, ports, NOW_MILLIS))
                .expect("the batch is stored");
        },
    )
}

fn benches(c: &mut Criterion) {
    pipeline_domain::schema::warm_up();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let backend = LocalBackend::open(&dir.path().join("data"), &dir.path().join("objects"))
        .expect("the data directory opens");
    let ports = StorePorts {
        events: backend.database.as_ref(),
        aggregates: backend.database.as_ref(),
        lake: backend.lake.as_ref(),
        notifier: backend.outbox.as_ref(),
        search: backend.database.as_ref(),
    };
    let without_files = StorePorts {
        lake: &Discard,
        notifier: &Discard,
        ..ports
    };
    let batches = Batches::new(&dir.path().join("objects"));

    let mut group = c.benchmark_group("storage");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(BATCH as u64));

    group.bench_function("store_batch", |bench| {
        bench.iter_custom(|iterations| time_stores(&runtime, &batches, &ports, iterations))
    });
    group.bench_function("store_batch_without_files", |bench| {
        bench.iter_custom(|iterations| time_stores(&runtime, &batches, &without_files, iterations))
    });

    group.bench_function("encode_parquet", |bench| {
        bench.iter_custom(|iterations| {
            time_each(
                iterations,
                || batches.next(),
                |input| {
                    // Grouping borrowed rows by partition costs next to nothing beside the
                    // encoding; `score_batch` scores the events in their order.
                    let mut partitions: BTreeMap<_, Vec<StoredEvent>> = BTreeMap::new();
                    for (enriched, score) in input.events.iter().zip(input.scores.iter()) {
                        partitions
                            .entry(&enriched.partition)
                            .or_default()
                            .push(StoredEvent {
                                enriched,
                                risk: Some(score),
                                enriched_json: None,
                            });
                    }
                    for rows in partitions.values() {
                        black_box(encode_events(rows).expect("the rows encode"));
                    }
                    drop(partitions);
                    input
                },
            )
        })
    });

    group.bench_function("apply_deltas", |bench| {
        bench.iter_custom(|iterations| {
            time_each(
                iterations,
                || batches.next().aggregates.expect("deltas"),
                |deltas| {
                    runtime
                        .block_on(backend.database.apply_once(deltas))
                        .expect("the deltas are applied");
                },
            )
        })
    });

    // Each iteration folds into a database of its own that already holds as many folded
    // events, as the demo's second fold does, so the figure does not depend on how many
    // iterations ran before it.
    const FOLDED_BATCHES: usize = 40;
    group.throughput(Throughput::Elements((FOLDED_BATCHES * BATCH) as u64));
    group.bench_function("fold_pending", |bench| {
        bench.iter_custom(|iterations| {
            time_each(
                iterations,
                || {
                    let dir = tempfile::tempdir().expect("a temporary directory");
                    let database = Database::open(&dir.path().join("pipeline.db"))
                        .expect("the database opens");
                    let pend = || {
                        for _ in 0..FOLDED_BATCHES {
                            let deltas = batches.next().aggregates.expect("deltas");
                            runtime
                                .block_on(database.apply_once(deltas))
                                .expect("the deltas are pending");
                        }
                    };
                    pend();
                    database.fold_pending().expect("the first deltas fold");
                    pend();
                    // Dropped in this order: the database is closed before its directory goes.
                    (database, dir)
                },
                |(database, dir)| {
                    database.fold_pending().expect("the deltas fold");
                    (database, dir)
                },
            )
        })
    });
    group.finish();
}

criterion_group!(storage, benches);
criterion_main!(storage);
