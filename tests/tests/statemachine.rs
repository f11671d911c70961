//! The deployed state machine definition, run locally: large uploads in parts, AWS's payload
//! limit, the catch path, and a failing Task's retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pipeline_adapters::local::FolderObjects;
use pipeline_asl::HistoryEvent;
use pipeline_domain::StorageError;
use pipeline_domain::ports::DataLake;
use pipeline_domain::stages::store::StoredEvent;
use pipeline_domain::synth::{SynthConfig, generate};
use pipeline_handlers::kept::KeptValues;
use pipeline_tests::{Sandbox, events_dir, read_json};
use serde_json::{Value, json};

/// Writes `count` synthetic events (2 % invalid) as one JSON Lines object and returns the
/// objects folder and the S3 notification naming it.
fn upload(count: usize) -> (tempfile::TempDir, Value) {
    let objects = tempfile::tempdir().expect("a temporary directory");
    let synth = SynthConfig {
        invalid_ratio: 0.02,
        ..SynthConfig::default()
    };
    let mut body = String::new();
    for event in generate(&synth, count) {
        body.push_str(&event.to_string());
        body.push('\n');
    }
    let key = "uploads/large.jsonl";
    let path = objects.path().join("pipeline-uploads").join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, body).unwrap();
    let notification = json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": "2023-11-14T22:13:20.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": { "principalId": "EXAMPLE" },
        "requestParameters": { "sourceIPAddress": "192.0.2.1" },
        "responseElements": { "x-amz-request-id": "1", "x-amz-id-2": "2" },
        "s3": { "s3SchemaVersion": "1.0", "bucket": { "name": "pipeline-uploads" },
                "object": { "key": key, "size": 1 } }
    }] });
    (objects, notification)
}

#[tokio::test]
async fn a_large_upload_goes_through_in_parts_with_every_state_under_the_limit() {
    let (objects, notification) = upload(6_000);
    let folder = objects.path().to_path_buf();
    let sandbox = Sandbox::with(|deps| {
        deps.objects = Arc::new(FolderObjects::new(folder));
        deps.part_events = 1_000;
    });
    let execution = sandbox.execute(notification.clone(), "large").await;
    let output = execution.result.expect("the execution succeeds");
    let accepted = output["counts"]["accepted"].as_u64().unwrap();
    let rejected = output["counts"]["rejected"].as_u64().unwrap();
    assert_eq!(accepted + rejected, 6_000);
    assert!(rejected > 0, "the generator makes some events invalid");
    assert_eq!(output["counts"]["parts"], 6);
    let parts = output["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 6);
    let written: u64 = parts
        .iter()
        .map(|part| part["eventsWritten"].as_u64().unwrap())
        .sum();
    assert_eq!(written, accepted);
    let quarantined: Vec<&Value> = parts
        .iter()
        .filter(|part| !part["quarantineObject"].is_null())
        .collect();
    assert_eq!(
        quarantined.len(),
        1,
        "rejected records are quarantined once, with the last part"
    );
    assert!(
        execution.largest_payload_bytes < 64 * 1024,
        "a state carried {} bytes",
        execution.largest_payload_bytes
    );
    let state = sandbox.state();
    assert_eq!(
        state["tables"]["events"].as_object().unwrap().len() as u64,
        accepted
    );

    // The same upload again changes nothing.
    let replay = sandbox.execute(notification, "large-again").await;
    let replayed = replay.result.expect("the replay succeeds");
    for part in replayed["parts"].as_array().unwrap() {
        assert_eq!(part["aggregates"], "already-applied");
    }
    assert_eq!(sandbox.state()["tables"], state["tables"]);
}

/// The lake's keys under `staging/`.
fn staged_keys(sandbox: &Sandbox) -> Vec<String> {
    pipeline_tests::lake_listing(sandbox.backend.lake.root())
        .iter()
        .filter_map(|entry| entry["key"].as_str().map(str::to_owned))
        .filter(|key| key.starts_with("staging/"))
        .collect()
}

#[tokio::test]
async fn staged_values_kept_in_memory_leave_the_same_state_as_staged_objects() {
    let (objects, notification) = upload(3_000);
    let run = |budget: Option<usize>| {
        let folder = objects.path().to_path_buf();
        let notification = notification.clone();
        async move {
            let sandbox = Sandbox::with(|deps| {
                deps.objects = Arc::new(FolderObjects::new(folder));
                deps.part_events = 1_000;
                if let Some(budget) = budget {
                    deps.kept = Some(Arc::new(KeptValues::new(budget, budget)));
                }
            });
            let execution = sandbox.execute(notification, "kept").await;
            let output = execution.result.expect("the execution succeeds");
            (sandbox, output)
        }
    };
    let (in_store, stored_output) = run(None).await;
    let (in_memory, kept_output) = run(Some(64 << 20)).await;
    let (over_budget, spilled_output) = run(Some(600_000)).await;

    assert_eq!(
        kept_output, stored_output,
        "the same references and outputs"
    );
    assert_eq!(spilled_output, stored_output);
    let state = in_store.state();
    assert_eq!(in_memory.state()["tables"], state["tables"]);
    assert_eq!(over_budget.state()["tables"], state["tables"]);

    assert!(
        !staged_keys(&in_store).is_empty(),
        "the store-only run stages objects"
    );
    assert!(
        staged_keys(&in_memory).is_empty(),
        "nothing was staged in the lake: {:?}",
        staged_keys(&in_memory)
    );
    let spilled = staged_keys(&over_budget);
    assert!(
        !spilled.is_empty() && spilled.len() < staged_keys(&in_store).len(),
        "beyond the budget values go to the lake: {spilled:?}"
    );
    for sandbox in [&in_memory, &over_budget] {
        let kept = sandbox.deps.kept.as_ref().unwrap();
        assert_eq!(kept.held_bytes(), 0, "an ended execution keeps nothing");
    }
}

#[tokio::test]
async fn a_batch_kept_inline_over_256_kib_fails_as_it_would_when_deployed() {
    let (objects, notification) = upload(3_000);
    let folder = objects.path().to_path_buf();
    let sandbox = Sandbox::with(|deps| {
        deps.objects = Arc::new(FolderObjects::new(folder));
        // Never stage: the validated batch travels in the state's payload.
        deps.inline_limit_bytes = usize::MAX;
    });
    let execution = sandbox.execute(notification, "too-large").await;
    let failure = execution.result.expect_err("the execution fails");
    assert_eq!(failure.error, "States.DataLimitExceeded");
    assert!(failure.cause.contains("Validate"), "{}", failure.cause);
}

#[tokio::test]
async fn a_batch_with_no_valid_record_is_caught_quarantined_and_notified() {
    let sandbox = Sandbox::new();
    let execution = sandbox
        .execute(read_json(&events_dir().join("sns/invalid.json")), "caught")
        .await;
    let output = execution.result.expect("the catch path succeeds");
    assert_eq!(output["status"], "quarantined");
    assert_eq!(output["rejected"], 1);
    let key = output["quarantineObject"].as_str().unwrap();
    assert!(key.starts_with("rejected/dt="), "{key}");
    let quarantined =
        std::fs::read_to_string(sandbox.backend.lake.root().join(key)).expect("the object");
    assert!(quarantined.contains("/timestamp"), "{quarantined}");
    let state = sandbox.state();
    let outbox = state["outbox"].as_array().unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0]["kind"], "rejected-records");
    assert!(state["tables"]["events"].as_object().unwrap().is_empty());
}

#[tokio::test]
async fn an_event_of_no_known_shape_is_quarantined_whole() {
    let sandbox = Sandbox::new();
    let execution = sandbox
        .execute(json!({ "hello": "world" }), "unknown-shape")
        .await;
    let output = execution.result.expect("the catch path succeeds");
    assert_eq!(output["status"], "quarantined");
    let key = output["quarantineObject"].as_str().unwrap();
    let quarantined = std::fs::read_to_string(sandbox.backend.lake.root().join(key)).unwrap();
    assert!(
        quarantined.contains("hello"),
        "the raw event is kept: {quarantined}"
    );
    assert!(
        quarantined.contains("not a recognised source"),
        "{quarantined}"
    );
}

/// The lake, failing its first `failures` Parquet writes with a transient error.
struct FlakyLake {
    inner: Arc<dyn DataLake>,
    failures: AtomicUsize,
}

#[async_trait::async_trait]
impl DataLake for FlakyLake {
    async fn put_events(&self, key: &str, events: &[StoredEvent]) -> Result<(), StorageError> {
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(StorageError::transient(format!("write {key}"), "slow down"));
        }
        self.inner.put_events(key, events).await
    }

    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.inner.put_object(key, body, content_type).await
    }
}

fn with_flaky_lake(failures: usize) -> Sandbox {
    Sandbox::with(|deps| {
        deps.lake = Arc::new(FlakyLake {
            inner: deps.lake.clone(),
            failures: AtomicUsize::new(failures),
        });
    })
}

#[tokio::test]
async fn a_transient_storage_error_is_retried_by_the_definition() {
    let sandbox = with_flaky_lake(2);
    let execution = sandbox
        .execute(read_json(&events_dir().join("sqs/valid.json")), "flaky")
        .await;
    assert!(execution.result.is_ok(), "{:?}", execution.result);
    let retries: Vec<(String, Duration)> = execution
        .history
        .iter()
        .filter_map(|event| match event {
            HistoryEvent::RetryScheduled {
                state,
                error,
                delay,
                ..
            } => {
                assert_eq!(error, "TransientError");
                Some((state.clone(), *delay))
            }
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert!(
        retries.iter().all(|(state, _)| state.ends_with("Store")),
        "{retries:?}"
    );
    // FULL jitter: each delay is at most the backoff (1 s, then 2 s).
    assert!(retries[0].1 <= Duration::from_secs(1) && retries[1].1 <= Duration::from_secs(2));
    assert_eq!(
        sandbox.state()["tables"]["events"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn retries_run_out_and_the_execution_fails_with_the_tasks_error() {
    let sandbox = with_flaky_lake(10);
    let execution = sandbox
        .execute(read_json(&events_dir().join("sqs/valid.json")), "too-flaky")
        .await;
    let failure = execution.result.expect_err("three retries are not enough");
    assert_eq!(failure.error, "TransientError");
    assert!(failure.cause.contains("slow down"), "{}", failure.cause);
    assert!(
        failure
            .state
            .as_deref()
            .is_some_and(|state| state.ends_with("Store"))
    );
}
