//! Replays change nothing: tables, aggregates, data lake and outbox stay identical.

use pipeline_handlers::{Stage, invoke};
use pipeline_tests::{Sandbox, events_dir, read_json, source_fixtures};

#[tokio::test]
async fn replaying_every_fixture_leaves_the_state_unchanged() {
    let sandbox = Sandbox::new();
    let fixtures: Vec<_> = source_fixtures()
        .into_iter()
        .filter(|(_, name, _)| name.starts_with("valid"))
        .collect();
    for (source, name, path) in &fixtures {
        let execution = sandbox.execute(read_json(path), "first").await;
        assert!(
            execution.result.is_ok(),
            "{source}/{name}: {:?}",
            execution.result
        );
    }
    let first = sandbox.state();
    assert!(!first["tables"]["events"].as_object().unwrap().is_empty());
    for (source, name, path) in &fixtures {
        let output = sandbox
            .execute(read_json(path), "replay")
            .await
            .result
            .unwrap_or_else(|failure| panic!("{source}/{name}: {failure:?}"));
        for part in output["parts"].as_array().expect("parts") {
            assert_eq!(
                part["aggregates"], "already-applied",
                "{source}/{name} applied its aggregates twice"
            );
            assert_eq!(
                part["notificationsSent"], 0,
                "{source}/{name} notified twice"
            );
        }
    }
    assert_eq!(sandbox.state(), first);
}

#[tokio::test]
async fn storing_the_same_batch_twice_is_idempotent_and_notifies_once() {
    let sandbox = Sandbox::new();
    let input = read_json(&events_dir().join("pipeline/store-input-scored.json"));
    let first = invoke(Stage::Store, &sandbox.deps, input.clone(), "first")
        .await
        .expect("store succeeds");
    assert_eq!(first["aggregates"], "applied");
    assert_eq!(first["highRiskEvents"], 1);
    assert_eq!(
        first["notificationsSent"], 2,
        "a rejected-records and a high-risk notification"
    );
    let after_first = sandbox.state();
    let second = invoke(Stage::Store, &sandbox.deps, input, "second")
        .await
        .expect("store succeeds again");
    assert_eq!(second["aggregates"], "already-applied");
    assert_eq!(second["notificationsSent"], 0);
    assert_eq!(sandbox.state(), after_first);

    let high_risk: Vec<_> = after_first["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|notification| notification["kind"] == "high-risk")
        .collect();
    assert_eq!(high_risk.len(), 1);
    assert_eq!(high_risk[0]["severity"], "critical");
    assert_eq!(high_risk[0]["body"]["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_score_for_an_unknown_event_is_refused_before_anything_is_written() {
    let sandbox = Sandbox::new();
    let before = sandbox.state();
    let input = read_json(&events_dir().join("pipeline/store-input-invalid.json"));
    let error = invoke(Stage::Store, &sandbox.deps, input, "bad")
        .await
        .unwrap_err();
    assert_eq!(error.name.as_str(), "InvalidStageInput");
    assert!(
        error.message.contains("evt_not_in_batch"),
        "{}",
        error.message
    );
    assert_eq!(sandbox.state(), before);
}

#[tokio::test]
async fn distinct_users_count_each_user_once_per_window_across_batches() {
    let sandbox = Sandbox::new();
    // Two different batches with the same user in the same minute.
    for (batch, id) in [("bat_a", "e1"), ("bat_b", "e2")] {
        let event = serde_json::json!({
            "batchId": batch,
            "events": [{"eventId": id, "userId": "user-1", "eventType": "click", "timestamp": 1_700_000_000_000_u64, "data": {}}]
        });
        let execution = sandbox.execute(event, batch).await;
        assert!(execution.result.is_ok(), "{:?}", execution.result);
    }
    let state = sandbox.state();
    let all = state["tables"]["aggregates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["scope"] == "all")
        .cloned()
        .unwrap();
    assert_eq!(all["count"], 2);
    assert_eq!(all["distinctUsers"], 1);
}
