//! Direct triggers (SQS, Kinesis, DynamoDB Streams without the state machine in front):
//! partial batch responses over the `poisoned.json` fixtures, each with one bad record in the
//! middle of good ones.

use std::sync::Arc;

use base64::Engine;
use pipeline_asl::{ExecutionOptions, RecordingSleeper};
use pipeline_domain::StorageError;
use pipeline_domain::ports::EventTable;
use pipeline_domain::stages::store::StoredEvent;
use pipeline_handlers::direct::{BatchResponse, process_direct};
use pipeline_tests::{FIXED_NOW_MILLIS, Sandbox, events_dir, read_json};
use serde_json::Value;

/// The events table, failing every write that holds an event of `user`: with a transient
/// error (it may pass) or a permanent one.
struct FailingFor {
    inner: Arc<dyn EventTable>,
    user: &'static str,
    transient: bool,
}

#[async_trait::async_trait]
impl EventTable for FailingFor {
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), StorageError> {
        if events
            .iter()
            .any(|stored| stored.enriched.event.user_id == self.user)
        {
            let operation = format!("put events of {}", self.user);
            return Err(if self.transient {
                StorageError::transient(operation, "throttled")
            } else {
                StorageError::permanent(operation, "access denied")
            });
        }
        self.inner.put_events(events).await
    }
}

fn failing_for(user: &'static str, transient: bool) -> Sandbox {
    Sandbox::with(|deps| {
        deps.events = Arc::new(FailingFor {
            inner: deps.events.clone(),
            user,
            transient,
        });
    })
}

async fn trigger(sandbox: &Sandbox, event: Value) -> BatchResponse {
    let options = ExecutionOptions {
        name: "direct".to_owned(),
        sleeper: Arc::new(RecordingSleeper::default()),
        now: Arc::new(|| {
            chrono::DateTime::from_timestamp_millis(FIXED_NOW_MILLIS).unwrap_or_default()
        }),
        ..ExecutionOptions::default()
    };
    process_direct(&sandbox.orchestrator, &sandbox.deps, event, &options)
        .await
        .expect("a trigger event is handled")
}

fn poisoned(folder: &str) -> Value {
    read_json(&events_dir().join(folder).join("poisoned.json"))
}

fn failures(response: &BatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect()
}

/// User ids of the events in the table.
fn stored_users(sandbox: &Sandbox) -> Vec<String> {
    let state = sandbox.state();
    let mut users: Vec<String> = state["tables"]["events"]
        .as_object()
        .expect("events by id")
        .values()
        .map(|stored| stored["event"]["userId"].as_str().unwrap().to_owned())
        .collect();
    users.sort();
    users
}

/// Keys of the quarantine objects and the record ids they hold.
fn quarantined(sandbox: &Sandbox) -> Vec<String> {
    let root = sandbox.backend.lake.root().join("rejected");
    let mut ids = Vec::new();
    let Ok(days) = std::fs::read_dir(&root) else {
        return ids;
    };
    for day in days {
        for object in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let text = std::fs::read_to_string(object.unwrap().path()).unwrap();
            for line in text.lines() {
                let record: Value = serde_json::from_str(line).unwrap();
                ids.push(record["source"]["id"].as_str().unwrap().to_owned());
            }
        }
    }
    ids.sort();
    ids
}

/// Record `index` of `event`, carrying an event of `user` instead of what it held.
fn with_user_at(folder: &str, index: usize, user: &str) -> Value {
    let mut event = poisoned(folder);
    let body = format!(
        r#"{{"userId":"{user}","eventType":"click","timestamp":1700000008300,"data":{{"button":"retry"}}}}"#
    );
    let record = &mut event["Records"][index];
    match folder {
        "sqs" => record["body"] = Value::from(body),
        "kinesis" => {
            record["kinesis"]["data"] =
                Value::from(base64::engine::general_purpose::STANDARD.encode(body))
        }
        "dynamodb-stream" => {
            record["dynamodb"]["NewImage"] = serde_json::json!({
                "userId": {"S": user},
                "eventType": {"S": "click"},
                "timestamp": {"N": "1700000008300"},
                "data": {"M": {"button": {"S": "retry"}}}
            })
        }
        other => panic!("no direct trigger from {other}"),
    }
    event
}

#[tokio::test]
async fn a_poisoned_record_is_quarantined_not_retried_and_the_others_are_stored() {
    for (folder, poisoned_id, good_records) in [
        ("sqs", "7c1d2e3f-0000-4000-8000-000000000001", 2),
        (
            "kinesis",
            "495903361724533631478542418632901173485600655387600101",
            3,
        ),
        ("dynamodb-stream", "22200000000000000000000001", 2),
    ] {
        let sandbox = Sandbox::new();
        let response = trigger(&sandbox, poisoned(folder)).await;
        assert!(failures(&response).is_empty(), "{folder}: {response:?}");
        assert_eq!(stored_users(&sandbox).len(), good_records, "{folder}");
        assert_eq!(quarantined(&sandbox), vec![poisoned_id], "{folder}");
        // The response has the shape Lambda reads.
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures": []})
        );
    }
}

#[tokio::test]
async fn an_unordered_source_reports_only_the_record_that_may_pass_later() {
    let sandbox = failing_for("user-stuck", true);
    let response = trigger(&sandbox, with_user_at("sqs", 1, "user-stuck")).await;
    assert_eq!(
        failures(&response),
        vec!["7c1d2e3f-0000-4000-8000-000000000001"]
    );
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [
            {"itemIdentifier": "7c1d2e3f-0000-4000-8000-000000000001"}
        ]})
    );
    // Both other messages were stored; nothing was quarantined.
    assert_eq!(stored_users(&sandbox), vec!["user-00042", "user-00042"]);
    assert!(quarantined(&sandbox).is_empty());
}

#[tokio::test]
async fn ordered_sources_report_the_first_failed_sequence_number_and_stop_there() {
    for (folder, stuck_id, stored_before) in [
        (
            "kinesis",
            "495903361724533631478542418632901173485600655387600101",
            vec!["user-00500"],
        ),
        (
            "dynamodb-stream",
            "22200000000000000000000001",
            vec!["user-00777"],
        ),
    ] {
        let sandbox = failing_for("user-stuck", true);
        let response = trigger(&sandbox, with_user_at(folder, 1, "user-stuck")).await;
        assert_eq!(failures(&response), vec![stuck_id], "{folder}");
        // The records before it are stored; those after wait for Lambda's retry from it.
        assert_eq!(stored_users(&sandbox), stored_before, "{folder}");
    }
}

#[tokio::test]
async fn a_record_that_fails_for_good_is_quarantined_with_its_error_and_not_retried() {
    let sandbox = failing_for("user-doomed", false);
    let response = trigger(&sandbox, with_user_at("kinesis", 2, "user-doomed")).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    // Records 0 and 3 are stored, 1 is invalid and 2 cannot be written: both quarantined.
    assert_eq!(stored_users(&sandbox), vec!["user-00500", "user-00501"]);
    assert_eq!(
        quarantined(&sandbox),
        vec![
            "495903361724533631478542418632901173485600655387600101",
            "495903361724533631478542418632901173485600655387600102",
        ]
    );
    let state = sandbox.state();
    let reasons = state["outbox"].to_string();
    assert!(reasons.contains("access denied"), "{reasons}");
}

#[tokio::test]
async fn other_events_are_refused_with_what_a_direct_trigger_takes() {
    let sandbox = Sandbox::new();
    let options = ExecutionOptions::default();
    let event = read_json(&events_dir().join("sns/valid.json"));
    let error = process_direct(&sandbox.orchestrator, &sandbox.deps, event, &options)
        .await
        .expect_err("SNS is not a direct trigger with partial responses");
    assert!(
        error.message.contains("SQS, Kinesis or DynamoDB Streams"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn a_fifo_queue_reports_the_first_failed_message_and_every_one_after_it() {
    let sandbox = failing_for("user-stuck", true);
    let mut event = with_user_at("sqs", 1, "user-stuck");
    for record in event["Records"].as_array_mut().unwrap() {
        record["eventSourceARN"] =
            Value::from("arn:aws:sqs:eu-west-1:123456789012:pipeline-events.fifo");
    }
    let response = trigger(&sandbox, event).await;
    assert_eq!(
        failures(&response),
        vec![
            "7c1d2e3f-0000-4000-8000-000000000001",
            "7c1d2e3f-0000-4000-8000-000000000002",
        ]
    );
    // Only the message before the failure was processed.
    assert_eq!(stored_users(&sandbox), vec!["user-00042"]);
}

#[tokio::test]
async fn a_message_redelivered_beside_a_new_one_is_counted_once() {
    let sandbox = Sandbox::new();
    let first = trigger(&sandbox, poisoned("sqs")).await;
    assert!(failures(&first).is_empty());
    // The queue delivers the first message again, in a batch with a new message: the batch
    // id differs, but the redelivered event must not be counted twice.
    let mut event = poisoned("sqs");
    let records = event["Records"].as_array_mut().unwrap();
    records.truncate(2);
    records[1]["messageId"] = Value::from("7c1d2e3f-0000-4000-8000-000000000009");
    records[1]["body"] = Value::from(
        r#"{"userId":"user-00042","eventType":"click","timestamp":1700000004500,"data":{}}"#,
    );
    let second = trigger(&sandbox, event).await;
    assert!(failures(&second).is_empty());
    let state = sandbox.state();
    let total: i64 = state["tables"]["aggregates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["scope"] == "all")
        .map(|row| row["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 3, "two events, then one new one");
    assert_eq!(state["tables"]["appliedEvents"], 3);
    assert_eq!(stored_users(&sandbox).len(), 3);
}
