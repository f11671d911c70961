//! The risk model: load time and batched scoring throughput, on one core.
//!
//! Run with `cargo bench -p pipeline-adapters --bench model`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipeline_adapters::model::OnnxRiskModel;
use pipeline_domain::ports::RiskModel;
use pipeline_domain::training::{TrainingConfig, training_rows};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROWS: usize = 100_000;

fn benches(c: &mut Criterion) {
    let config = TrainingConfig {
        sessions: ROWS,
        ..TrainingConfig::default()
    };
    let rows: Vec<Vec<f32>> = training_rows(&config)
        .into_iter()
        .take(ROWS)
        .map(|row| row.features.to_vec())
        .collect();
    let model = OnnxRiskModel::embedded().unwrap();

    let mut group = c.benchmark_group("model");
    group.sample_size(20);
    group.bench_function("load_embedded", |bench| {
        bench.iter(|| black_box(OnnxRiskModel::embedded().unwrap()))
    });

    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("score_batches_of_1000", |bench| {
        bench.iter(|| {
            for batch in rows.chunks(1_000) {
                black_box(model.score(batch).unwrap());
            }
        })
    });
    group.bench_function("score_one_batch", |bench| {
        bench.iter(|| black_box(model.score(&rows).unwrap()))
    });
    group.finish();
}

criterion_group!(model, benches);
criterion_main!(model);
