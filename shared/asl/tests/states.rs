//! Each state type's own behaviour: context object, Choice operators, Wait durations, Fail
//! errors, and the runtime errors of paths that match nothing.

mod common;

use common::{FnHandler, check, failure_of, options, run, single};
use pipeline_asl::{HistoryEvent, error_names};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn context_paths_reach_the_execution_input_only_when_they_name_it() {
    let definition = single(json!({"Type": "Pass", "Parameters": {
        "name.$": "$$.State.Name",
        "input.$": "$$.Execution.Input",
        "deep.$": "$$.Execution.Input.in",
        "execution.$": "$$.Execution.Name",
        "every.$": "$$.Execution.Input.*"
    }, "End": true}));
    let machine = common::machine(&definition);
    let (options, _) = options();
    let execution = machine
        .execute(json!({"in": 1}), &FnHandler::echo(), &options)
        .await;
    assert_eq!(
        execution.result.expect("succeeds"),
        json!({"name": "Only", "input": {"in": 1}, "deep": 1, "execution": "test", "every": [1]})
    );
}

#[tokio::test]
async fn the_execution_input_stays_as_it_arrived_while_states_change_theirs() {
    let definition = json!({
        "StartAt": "Add",
        "States": {
            "Add": {"Type": "Pass", "Result": "x", "ResultPath": "$.added", "Next": "Task"},
            "Task": {"Type": "Task", "Resource": "echo", "ResultPath": "$", "Next": "Read"},
            "Read": {"Type": "Pass", "Parameters": {
                "original.$": "$$.Execution.Input",
                "current.$": "$"
            }, "End": true}
        }
    });
    check(
        &definition,
        json!({"in": 1}),
        json!({"original": {"in": 1}, "current": {"in": 1, "added": "x"}}),
    )
    .await;
}

#[tokio::test]
async fn context_object_fields() {
    let definition = single(
        json!({"Type": "Pass", "Parameters": {"context.$": "$$", "name.$": "$$.State.Name"}, "End": true}),
    );
    let machine = common::machine(&definition).with_name("pipeline");
    let (options, _) = options();
    let execution = machine
        .execute(json!({"in": 1}), &FnHandler::echo(), &options)
        .await;
    let output = execution.result.expect("succeeds");
    assert_eq!(
        output,
        json!({
            "name": "Only",
            "context": {
                "Execution": {
                    "Id": "arn:aws:states:local:000000000000:execution:pipeline:test",
                    "Input": {"in": 1},
                    "Name": "test",
                    "RoleArn": "arn:aws:iam::000000000000:role/local",
                    "StartTime": "2024-01-02T03:04:05.000Z",
                    "RedriveCount": 0
                },
                "State": {"EnteredTime": "2024-01-02T03:04:05.000Z", "Name": "Only", "RetryCount": 0},
                "StateMachine": {"Id": "arn:aws:states:local:000000000000:stateMachine:pipeline", "Name": "pipeline"}
            }
        })
    );
}

/// Runs a Choice state whose only rule is `rule`; true when the rule matched.
async fn chooses(rule: Value, input: &Value) -> bool {
    let mut rule = rule;
    rule["Next"] = json!("Yes");
    let definition = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [rule], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": true, "End": true},
        "No": {"Type": "Pass", "Result": false, "End": true}}});
    match run(&definition, input.clone()).await.result {
        Ok(Value::Bool(matched)) => matched,
        other => panic!("unexpected outcome {other:?} for {definition}"),
    }
}

#[tokio::test]
async fn choice_operators() {
    let input = json!({
        "s": "banana", "other_s": "cherry", "n": 5, "other_n": 5, "f": 2.5, "b": true, "nul": null,
        "t": "2024-01-02T03:04:05Z", "later": "2024-06-01T00:00:00+02:00",
        "star": "a*b", "bmp": "\u{FF5E}", "astral": "\u{1F600}", "list": [1]
    });
    let cases = [
        (json!({"Variable": "$.s", "StringEquals": "banana"}), true),
        (json!({"Variable": "$.s", "StringEquals": "Banana"}), false),
        (
            json!({"Variable": "$.s", "StringEqualsPath": "$.other_s"}),
            false,
        ),
        (json!({"Variable": "$.s", "StringLessThan": "cherry"}), true),
        (
            json!({"Variable": "$.s", "StringLessThanPath": "$.other_s"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThan": "apple"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanPath": "$.other_s"}),
            false,
        ),
        (
            json!({"Variable": "$.s", "StringLessThanEquals": "banana"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringLessThanEqualsPath": "$.s"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanEquals": "bananas"}),
            false,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanEqualsPath": "$.s"}),
            true,
        ),
        (
            json!({"Variable": "$.bmp", "StringGreaterThanPath": "$.astral"}),
            true,
        ),
        (json!({"Variable": "$.s", "StringMatches": "b*n*a"}), true),
        (json!({"Variable": "$.s", "StringMatches": "*x*"}), false),
        (
            json!({"Variable": "$.star", "StringMatches": "a\\*b"}),
            true,
        ),
        (json!({"Variable": "$.s", "StringMatches": "b\\*"}), false),
        (json!({"Variable": "$.n", "StringEquals": "5"}), false),
        (json!({"Variable": "$.n", "NumericEquals": 5}), true),
        (json!({"Variable": "$.n", "NumericEquals": 5.0}), true),
        (
            json!({"Variable": "$.n", "NumericEqualsPath": "$.other_n"}),
            true,
        ),
        (json!({"Variable": "$.n", "NumericLessThan": 5}), false),
        (
            json!({"Variable": "$.f", "NumericLessThanPath": "$.n"}),
            true,
        ),
        (json!({"Variable": "$.n", "NumericGreaterThan": 4.5}), true),
        (
            json!({"Variable": "$.n", "NumericGreaterThanPath": "$.f"}),
            true,
        ),
        (json!({"Variable": "$.n", "NumericLessThanEquals": 5}), true),
        (
            json!({"Variable": "$.n", "NumericLessThanEqualsPath": "$.f"}),
            false,
        ),
        (
            json!({"Variable": "$.n", "NumericGreaterThanEquals": 6}),
            false,
        ),
        (
            json!({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.other_n"}),
            true,
        ),
        (json!({"Variable": "$.s", "NumericEquals": 5}), false),
        (json!({"Variable": "$.b", "BooleanEquals": true}), true),
        (json!({"Variable": "$.b", "BooleanEquals": false}), false),
        (json!({"Variable": "$.b", "BooleanEqualsPath": "$.b"}), true),
        (json!({"Variable": "$.s", "BooleanEquals": true}), false),
        (
            json!({"Variable": "$.t", "TimestampEquals": "2024-01-02T03:04:05Z"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampEquals": "2024-01-02T04:04:05+01:00"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampEqualsPath": "$.later"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampLessThan": "2024-06-01T00:00:00Z"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampLessThanPath": "$.later"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampGreaterThan": "2024-06-01T00:00:00Z"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampGreaterThanPath": "$.later"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampLessThanEquals": "2024-01-02T03:04:05Z"}),
            true,
        ),
        (
            json!({"Variable": "$.later", "TimestampLessThanEqualsPath": "$.t"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampGreaterThanEquals": "2024-01-02T03:04:05Z"}),
            true,
        ),
        (
            json!({"Variable": "$.later", "TimestampGreaterThanEqualsPath": "$.t"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "TimestampEquals": "2024-01-02T03:04:05Z"}),
            false,
        ),
        (json!({"Variable": "$.nul", "IsNull": true}), true),
        (json!({"Variable": "$.s", "IsNull": true}), false),
        (json!({"Variable": "$.s", "IsNull": false}), true),
        (json!({"Variable": "$.s", "IsPresent": true}), true),
        (json!({"Variable": "$.missing", "IsPresent": true}), false),
        (json!({"Variable": "$.missing", "IsPresent": false}), true),
        (json!({"Variable": "$.nul", "IsPresent": true}), true),
        (json!({"Variable": "$.n", "IsNumeric": true}), true),
        (json!({"Variable": "$.s", "IsNumeric": true}), false),
        (json!({"Variable": "$.s", "IsString": true}), true),
        (json!({"Variable": "$.list", "IsString": false}), true),
        (json!({"Variable": "$.b", "IsBoolean": true}), true),
        (json!({"Variable": "$.t", "IsTimestamp": true}), true),
        (json!({"Variable": "$.s", "IsTimestamp": true}), false),
        (
            json!({"Variable": "$$.Execution.Name", "StringEquals": "test"}),
            true,
        ),
        (
            json!({"And": [{"Variable": "$.n", "NumericEquals": 5}, {"Variable": "$.b", "BooleanEquals": true}]}),
            true,
        ),
        (
            json!({"And": [{"Variable": "$.n", "NumericEquals": 5}, {"Variable": "$.b", "BooleanEquals": false}]}),
            false,
        ),
        (
            json!({"Or": [{"Variable": "$.n", "NumericEquals": 4}, {"Variable": "$.b", "BooleanEquals": true}]}),
            true,
        ),
        (
            json!({"Or": [{"Variable": "$.n", "NumericEquals": 4}, {"Variable": "$.b", "BooleanEquals": false}]}),
            false,
        ),
        (
            json!({"Not": {"Variable": "$.s", "StringEquals": "banana"}}),
            false,
        ),
        (
            json!({"Not": {"Or": [{"Variable": "$.missing", "IsPresent": true}, {"Not": {"Variable": "$.n", "IsNumeric": true}}]}}),
            true,
        ),
    ];
    for (rule, expected) in cases {
        assert_eq!(chooses(rule.clone(), &input).await, expected, "{rule}");
    }
}

#[tokio::test]
async fn choice_rules_are_tried_in_order_and_default_applies() {
    let definition = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"},
            {"Variable": "$.n", "NumericGreaterThan": 0, "Next": "Small"}], "Default": "Zero"},
        "Big": {"Type": "Pass", "Result": "big", "End": true},
        "Small": {"Type": "Pass", "Result": "small", "End": true},
        "Zero": {"Type": "Pass", "Result": "zero", "End": true}}});
    common::check(&definition, json!({"n": 5}), json!("big")).await;
    common::check(&definition, json!({"n": 1}), json!("small")).await;
    common::check(&definition, json!({"n": 0}), json!("zero")).await;
}

#[tokio::test]
async fn choice_without_match_or_default_fails() {
    let definition = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "D"}]},
        "D": {"Type": "Succeed"}}});
    let failure = failure_of(&definition, json!({"n": 2}), &FnHandler::echo()).await;
    assert_eq!(failure.error, error_names::NO_CHOICE_MATCHED);
    assert_eq!(failure.state.as_deref(), Some("C"));
}

#[tokio::test]
async fn choice_variable_that_matches_nothing_is_a_runtime_error() {
    let definition = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.missing", "NumericEquals": 1, "Next": "D"}], "Default": "D"},
        "D": {"Type": "Succeed"}}});
    let failure = failure_of(&definition, json!({}), &FnHandler::echo()).await;
    assert_eq!(failure.error, error_names::RUNTIME);
    assert!(
        failure.cause.contains("Invalid path '$.missing'"),
        "{}",
        failure.cause
    );
}

async fn waited(state: Value, input: Value) -> Result<Vec<Duration>, String> {
    let (options, sleeper) = options();
    let execution = common::machine(&single(state))
        .execute(input, &FnHandler::echo(), &options)
        .await;
    execution
        .result
        .map(|_| sleeper.slept())
        .map_err(|failure| format!("{}: {}", failure.error, failure.cause))
}

#[tokio::test]
async fn wait_durations() {
    let seconds = |value: u64| Ok(vec![Duration::from_secs(value)]);
    assert_eq!(
        waited(
            json!({"Type": "Wait", "Seconds": 10, "End": true}),
            json!({})
        )
        .await,
        seconds(10)
    );
    assert_eq!(
        waited(
            json!({"Type": "Wait", "SecondsPath": "$.delay", "End": true}),
            json!({"delay": 3})
        )
        .await,
        seconds(3)
    );
    // The fixed clock reads 2024-01-02T03:04:05Z.
    let timestamp = json!({"Type": "Wait", "Timestamp": "2024-01-02T03:05:05Z", "End": true});
    assert_eq!(waited(timestamp, json!({})).await, seconds(60));
    let past = json!({"Type": "Wait", "Timestamp": "2020-01-01T00:00:00Z", "End": true});
    assert_eq!(waited(past, json!({})).await, seconds(0));
    let from_input = json!({"Type": "Wait", "TimestampPath": "$.at", "End": true});
    assert_eq!(
        waited(
            from_input.clone(),
            json!({"at": "2024-01-02T04:04:05+01:00"})
        )
        .await,
        seconds(0)
    );
    assert_eq!(
        waited(from_input.clone(), json!({"at": "2024-01-02T03:04:15Z"})).await,
        seconds(10)
    );
    let bad_timestamp = waited(from_input, json!({"at": "tomorrow"}))
        .await
        .expect_err("fails");
    assert!(
        bad_timestamp.starts_with(error_names::RUNTIME),
        "{bad_timestamp}"
    );
    let bad_seconds = waited(
        json!({"Type": "Wait", "SecondsPath": "$.delay", "End": true}),
        json!({"delay": -1}),
    )
    .await
    .expect_err("fails");
    assert!(
        bad_seconds.contains("non-negative integer"),
        "{bad_seconds}"
    );
}

#[tokio::test]
async fn fail_state_errors() {
    let literal = single(json!({"Type": "Fail", "Error": "Broken", "Cause": "it broke"}));
    let failure = failure_of(&literal, json!({}), &FnHandler::echo()).await;
    assert_eq!(
        (
            failure.error.as_str(),
            failure.cause.as_str(),
            failure.state.as_deref()
        ),
        ("Broken", "it broke", Some("Only"))
    );
    let dynamic = single(
        json!({"Type": "Fail", "ErrorPath": "$.error", "CausePath": "States.Format('code {}', $.code)"}),
    );
    let failure = failure_of(
        &dynamic,
        json!({"error": "Custom", "code": 7}),
        &FnHandler::echo(),
    )
    .await;
    assert_eq!(
        (failure.error.as_str(), failure.cause.as_str()),
        ("Custom", "code 7")
    );
    let not_text = failure_of(&dynamic, json!({"error": 1, "code": 7}), &FnHandler::echo()).await;
    assert_eq!(not_text.error, error_names::RUNTIME);
}

#[tokio::test]
async fn paths_that_match_nothing_are_runtime_errors() {
    let input_path = single(json!({"Type": "Pass", "InputPath": "$.missing", "End": true}));
    let failure = failure_of(&input_path, json!({"a": 1}), &FnHandler::echo()).await;
    assert_eq!(failure.error, error_names::RUNTIME);
    assert!(
        failure.cause.contains("'Only'") && failure.cause.contains("Invalid path '$.missing'"),
        "{}",
        failure.cause
    );

    let parameters =
        single(json!({"Type": "Pass", "Parameters": {"x.$": "$.missing"}, "End": true}));
    let failure = failure_of(&parameters, json!({"a": 1}), &FnHandler::echo()).await;
    assert_eq!(failure.error, error_names::RUNTIME);
    assert!(
        failure.cause.contains("The JSONPath '$.missing' specified for the field 'x.$' could not be found in the input '{\"a\":1}'"),
        "{}",
        failure.cause
    );

    let output_path =
        single(json!({"Type": "Task", "Resource": "r", "OutputPath": "$.nothing", "End": true}));
    let failure = failure_of(&output_path, json!({"a": 1}), &FnHandler::echo()).await;
    assert_eq!(failure.error, error_names::RUNTIME);

    let result_path =
        single(json!({"Type": "Pass", "Result": 1, "ResultPath": "$.x", "End": true}));
    let failure = failure_of(&result_path, json!("a string"), &FnHandler::echo()).await;
    assert_eq!(failure.error, error_names::RESULT_PATH_MATCH_FAILURE);
}

#[tokio::test]
async fn history_records_states_and_sizes() {
    let definition = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": {"big": "xxxxxxxxxx"}, "Next": "B"},
        "B": {"Type": "Succeed"}}});
    let execution = run(&definition, json!({"a": 1})).await;
    assert!(execution.result.is_ok());
    assert_eq!(
        execution.history.first(),
        Some(&HistoryEvent::ExecutionStarted { input_bytes: 7 })
    );
    assert!(execution.history.contains(&HistoryEvent::StateEntered {
        state: "A".to_string(),
        input_bytes: 7
    }));
    assert!(execution.history.contains(&HistoryEvent::StateExited {
        state: "A".to_string(),
        output_bytes: 20
    }));
    assert_eq!(execution.largest_payload_bytes, 20);
    let printed: Vec<String> = execution.history.iter().map(ToString::to_string).collect();
    assert_eq!(
        printed.last().map(String::as_str),
        Some("execution succeeded (20 bytes of output)")
    );
}
