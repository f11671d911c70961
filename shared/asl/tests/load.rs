//! Load-time checks: every refusal names the state and the field, and substitutions apply.

mod common;

use pipeline_asl::{LoadOptions, StateMachine};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[test]
fn refusals_name_the_state_and_the_field() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("definitions/refusals.json"))
        .expect("refusals.json parses");
    assert!(cases.len() >= 40);
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let error = common::load_error(&case["definition"]);
        assert_eq!(
            error.state.as_deref(),
            case["state"].as_str(),
            "{name}: {error}"
        );
        assert_eq!(
            Some(error.field.as_str()),
            case["field"].as_str(),
            "{name}: {error}"
        );
        let contains = case["contains"].as_str().unwrap_or("");
        assert!(
            error.message.contains(contains),
            "{name}: '{}' lacks '{contains}'",
            error.message
        );
    }
}

#[test]
fn load_error_display_names_state_and_field() {
    let error = common::load_error(&json!({"StartAt": "Validate", "States": {"Validate": {
        "Type": "Task", "Resource": "r", "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": -1}], "End": true}}}));
    assert_eq!(
        error.to_string(),
        "state \"Validate\", field \"Retry[0].MaxAttempts\": must be a non-negative integer"
    );
}

#[test]
fn text_that_is_not_json_is_refused() {
    let error = StateMachine::load("{not json", &LoadOptions::default()).expect_err("refused");
    assert!(error.message.contains("not valid JSON"));
    assert_eq!(error.state, None);
}

#[test]
fn substitutions_replace_placeholders_in_every_string() {
    let text = r#"{"StartAt": "${First}", "States": {
        "${First}": {"Type": "Task", "Resource": "${ValidateArn}", "Next": "Other"},
        "Other": {"Type": "Task", "Resource": "arn:${Partition}:x:${Unknown}", "End": true}}}"#;
    let mut substitutions = BTreeMap::new();
    substitutions.insert("First".to_string(), "Validate".to_string());
    substitutions.insert(
        "ValidateArn".to_string(),
        "arn:aws:lambda:eu-west-1:1:function:validate".to_string(),
    );
    substitutions.insert("Partition".to_string(), "aws".to_string());
    let machine = StateMachine::load(text, &LoadOptions { substitutions }).expect("loads");
    assert_eq!(
        machine.tasks(),
        vec![
            (
                "Validate".to_string(),
                "arn:aws:lambda:eu-west-1:1:function:validate".to_string()
            ),
            ("Other".to_string(), "arn:aws:x:${Unknown}".to_string()),
        ]
    );
}

#[test]
fn tasks_lists_nested_states_with_their_paths() {
    let machine = common::machine(&json!({"StartAt": "Validate", "States": {
        "Validate": {"Type": "Task", "Resource": "validate", "Next": "Fan out"},
        "Fan out": {"Type": "Parallel", "Next": "Each", "Branches": [
            {"StartAt": "Aggregate", "States": {"Aggregate": {"Type": "Task", "Resource": "aggregate", "End": true}}},
            {"StartAt": "Inference", "States": {"Inference": {"Type": "Task", "Resource": "inference", "End": true}}}]},
        "Each": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "Store", "States": {
            "Store": {"Type": "Task", "Resource": "store", "End": true}}}}}}));
    assert_eq!(
        machine.tasks(),
        vec![
            ("Validate".to_string(), "validate".to_string()),
            (
                "Fan out/branch 0/Aggregate".to_string(),
                "aggregate".to_string()
            ),
            (
                "Fan out/branch 1/Inference".to_string(),
                "inference".to_string()
            ),
            ("Each/processor/Store".to_string(), "store".to_string()),
        ]
    );
}

#[test]
fn accepted_fields_load() {
    let machine = common::machine(&json!({
        "Comment": "all the optional fields", "Version": "1.0", "TimeoutSeconds": 60, "QueryLanguage": "JSONPath",
        "StartAt": "T", "States": {
            "T": {"Type": "Task", "Comment": "c", "QueryLanguage": "JSONPath", "Resource": "r", "TimeoutSecondsPath": "$.timeout",
                  "HeartbeatSeconds": 5, "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 2, "MaxAttempts": 0, "BackoffRate": 1.0,
                  "MaxDelaySeconds": 10, "JitterStrategy": "FULL", "Comment": "r"}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F", "ResultPath": null, "Comment": "c"}], "Next": "M"},
            "M": {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"v.$": "$$.Map.Item.Value"}, "MaxConcurrencyPath": "$.max",
                  "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "I", "States": {"I": {"Type": "Succeed"}}}, "Next": "W"},
            "W": {"Type": "Wait", "TimestampPath": "$.at", "Next": "S"},
            "S": {"Type": "Succeed"},
            "F": {"Type": "Fail", "ErrorPath": "$.Error", "CausePath": "States.Format('failed: {}', $.Cause)"}}}));
    assert_eq!(machine.name(), "local");
    assert_eq!(machine.with_name("pipeline").name(), "pipeline");
}

#[test]
fn machines_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<StateMachine>();
    assert_send_sync::<pipeline_asl::ExecutionOptions>();
}
