//! Support for the fixture-driven tests: fixture discovery, golden files, a sandboxed backend.
//!
//! Golden files live in `tests/golden/`. When behaviour changes on purpose, regenerate them
//! with `UPDATE_GOLDEN=1 cargo test -p pipeline-tests` and review the diff.

pub mod fault_proxy;
pub mod moto;
pub mod runtime_api;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use pipeline_adapters::local::{LocalBackend, TableSnapshot};
use pipeline_asl::{Execution, ExecutionOptions, RecordingSleeper};
use pipeline_domain::ports::RiskModel;
use pipeline_domain::stages::enrich::{EnrichedEvent, UserProfile};
use pipeline_domain::stages::store::{StoredEvent, join_scores};
use pipeline_handlers::Dependencies;
use pipeline_handlers::deps::load_model;
use pipeline_handlers::orchestrator::Orchestrator;
use serde_json::{Value, json};

/// The time every sandbox's clock reads: 2023-11-14T22:15:00Z.
pub const FIXED_NOW_MILLIS: i64 = 1_700_000_100_000;

/// The source folders under `events/`, one per supported kind of Lambda event.
pub const SOURCE_FOLDERS: [&str; 10] = [
    "apigateway-rest",
    "apigateway-http",
    "sqs",
    "sns",
    "s3",
    "dynamodb-stream",
    "kinesis",
    "eventbridge",
    "pipeline-batch",
    "direct",
];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository")
        .to_path_buf()
}

pub fn events_dir() -> PathBuf {
    repo_root().join("events")
}

/// Where S3 fixtures' objects live, as `<dir>/<bucket>/<key>`.
pub fn objects_dir() -> PathBuf {
    events_dir().join("s3").join("objects")
}

/// Every source event fixture, as (folder, file stem, path), sorted.
pub fn source_fixtures() -> Vec<(String, String, PathBuf)> {
    let mut fixtures = Vec::new();
    for folder in SOURCE_FOLDERS {
        let dir = events_dir().join(folder);
        for entry in
            std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        {
            let path = entry.expect("a directory entry").path();
            if path
                .extension()
                .is_some_and(|extension| extension == "json")
            {
                let stem = path
                    .file_stem()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned();
                fixtures.push((folder.to_owned(), stem, path));
            }
        }
    }
    fixtures.sort();
    fixtures
}

pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Compares `actual` with `tests/golden/<relative>`, or rewrites the file when
/// `UPDATE_GOLDEN=1`. Returns a description of the difference, so a test can report every
/// mismatching fixture at once.
pub fn compare_golden(relative: &str, actual: &Value) -> Option<String> {
    let path = repo_root().join("tests").join("golden").join(relative);
    let rendered = serde_json::to_string_pretty(actual).expect("JSON renders") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1") {
        std::fs::create_dir_all(path.parent().expect("a parent"))
            .expect("create the golden folder");
        std::fs::write(&path, rendered).expect("write the golden file");
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == rendered => None,
        Ok(expected)
            if serde_json::from_str::<Value>(&expected)
                .is_ok_and(|expected| same_but_for_float_kernels(&expected, actual, "")) =>
        {
            None
        }
        Ok(expected) => Some(format!(
            "{relative} differs from the golden file.\n--- expected\n{expected}\n--- actual\n{rendered}"
        )),
        Err(_) => Some(format!(
            "{relative} has no golden file; run UPDATE_GOLDEN=1 cargo test -p pipeline-tests"
        )),
    }
}

/// Whether two outputs are the same but for what the machine's floating-point kernels
/// change: the risk model's scores are computed by tract with the instructions the CPU
/// offers (FMA or not), so they may differ in the seventh significant digit from one machine
/// to another, and with them the length of the payloads that carry them. Fractions compare
/// within a relative 1e-5 (1e-8 absolute below 0.001), and `largestPayloadBytes` within 64
/// bytes; everything else exactly.
pub fn same_but_for_float_kernels(expected: &Value, actual: &Value, key: &str) -> bool {
    match (expected, actual) {
        (Value::Number(left), Value::Number(right)) if key == "largestPayloadBytes" => {
            match (left.as_u64(), right.as_u64()) {
                (Some(left), Some(right)) => left.abs_diff(right) <= 64,
                _ => left == right,
            }
        }
        (Value::Number(left), Value::Number(right)) => {
            if left.is_f64() || right.is_f64() {
                let (left, right) = (
                    left.as_f64().unwrap_or(f64::NAN),
                    right.as_f64().unwrap_or(f64::NAN),
                );
                (left - right).abs() <= 1e-5 * left.abs().max(right.abs()).max(1e-3)
            } else {
                left == right
            }
        }
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .zip(right)
                    .all(|(left, right)| same_but_for_float_kernels(left, right, key))
        }
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left.iter().all(|(name, value)| {
                    right
                        .get(name)
                        .is_some_and(|other| same_but_for_float_kernels(value, other, name))
                })
        }
        _ => expected == actual,
    }
}

/// Panics listing every mismatch.
pub fn assert_no_mismatch(mismatches: Vec<String>) {
    assert!(
        mismatches.is_empty(),
        "{} golden mismatch(es); if the change is intended, run UPDATE_GOLDEN=1 cargo test -p pipeline-tests\n\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
}

/// A local backend in a temporary directory, with the fixture profiles loaded and a fixed clock.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub backend: LocalBackend,
    pub deps: Arc<Dependencies>,
    pub orchestrator: Orchestrator,
}

impl Sandbox {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// A sandbox whose dependencies `adjust` changes first (smaller parts, say).
    pub fn with(adjust: impl FnOnce(&mut Dependencies)) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let backend =
            LocalBackend::open(dir.path(), &objects_dir()).expect("the local backend opens");
        backend
            .database
            .put_profiles(&fixture_profiles())
            .expect("profiles load");
        let mut deps = Dependencies::local(
            &backend,
            embedded_model(),
            300,
            Arc::new(|| FIXED_NOW_MILLIS),
        );
        adjust(&mut deps);
        let deps = Arc::new(deps);
        let orchestrator =
            Orchestrator::pipeline(deps.clone()).expect("the pipeline's definition loads");
        Self {
            dir,
            backend,
            deps,
            orchestrator,
        }
    }

    /// Runs `event` through the state machine, with the fixed clock and without waiting out
    /// retry delays.
    pub async fn execute(&self, event: Value, name: &str) -> Execution {
        let options = ExecutionOptions {
            name: name.to_owned(),
            sleeper: Arc::new(RecordingSleeper::default()),
            now: Arc::new(|| {
                chrono::DateTime::from_timestamp_millis(FIXED_NOW_MILLIS).unwrap_or_default()
            }),
            ..ExecutionOptions::default()
        };
        self.orchestrator.execute(event, &options).await
    }

    /// Tables, lake objects (key and size) and outbox, as one comparable value.
    pub fn state(&self) -> Value {
        let snapshot: TableSnapshot = self.backend.database.snapshot().expect("a snapshot");
        json!({
            "tables": snapshot,
            "lake": lake_listing(self.backend.lake.root()),
            "outbox": outbox_lines(self.backend.outbox.path()),
        })
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// The embedded risk model, loaded once per test process.
pub fn embedded_model() -> Arc<dyn RiskModel> {
    static MODEL: OnceLock<Arc<dyn RiskModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| load_model(None).expect("the embedded model loads"))
        .clone()
}

/// The enriched events of the store stage's fixture (`events/pipeline/store-input.json`),
/// as the production stages made them.
pub fn store_fixture_events() -> Vec<EnrichedEvent> {
    let input = read_json(&events_dir().join("pipeline").join("store-input.json"));
    serde_json::from_value(input["events"].clone()).expect("enriched events")
}

/// `events` as `store` writes them, without scores.
pub fn unscored(events: &[EnrichedEvent]) -> Vec<StoredEvent<'_>> {
    join_scores(events, &[]).expect("events without scores")
}

pub fn fixture_profiles() -> Vec<UserProfile> {
    let path = events_dir().join("profiles.jsonl");
    let text = std::fs::read_to_string(&path).expect("profiles fixture");
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("a profile"))
        .collect()
}

/// Every object under the lake folder: its key and its content's length.
pub fn lake_listing(root: &Path) -> Vec<Value> {
    let mut listing = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let key = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                let bytes = std::fs::read(&path).expect("a lake object");
                listing.push(json!({ "key": key, "bytes": bytes.len() }));
            }
        }
    }
    listing.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    listing
}

pub fn outbox_lines(path: &Path) -> Vec<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(|line| serde_json::from_str(line).expect("an outbox line"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_compare_equal_across_float_kernels_and_nothing_else() {
        let golden =
            json!({"largestPayloadBytes": 2926, "score": 0.034822494, "count": 3, "id": "a"});
        let other_cpu =
            json!({"largestPayloadBytes": 2928, "score": 0.034822434, "count": 3, "id": "a"});
        assert!(same_but_for_float_kernels(&golden, &other_cpu, ""));
        for changed in [
            json!({"largestPayloadBytes": 3100, "score": 0.034822494, "count": 3, "id": "a"}),
            json!({"largestPayloadBytes": 2926, "score": 0.0349, "count": 3, "id": "a"}),
            json!({"largestPayloadBytes": 2926, "score": 0.034822494, "count": 4, "id": "a"}),
            json!({"largestPayloadBytes": 2926, "score": 0.034822494, "count": 3, "id": "b"}),
            json!({"largestPayloadBytes": 2926, "score": 0.034822494, "count": 3}),
        ] {
            assert!(
                !same_but_for_float_kernels(&golden, &changed, ""),
                "{changed}"
            );
        }
    }
}
