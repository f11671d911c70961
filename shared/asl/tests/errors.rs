//! Retry, Catch, timeouts and the payload limit.

mod common;

use common::{FnHandler, failure_of, options, single};
use pipeline_asl::{
    DEFAULT_PAYLOAD_LIMIT_BYTES, ExecutionOptions, HistoryEvent, TaskContext, TaskError,
    TaskHandler, TokioSleeper, error_names,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Fails with the given errors, one per call, then succeeds with `{"ok": true}`.
fn failing_with(errors: &[&str]) -> FnHandler {
    let errors: Vec<String> = errors.iter().map(|error| error.to_string()).collect();
    let calls = AtomicUsize::new(0);
    FnHandler::new(move |_, _, _| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        match errors.get(call) {
            Some(error) => Err(TaskError::new(error.clone(), "bad")),
            None => Ok(json!({"ok": true})),
        }
    })
}

fn always_failing(error: &'static str) -> FnHandler {
    FnHandler::new(move |_, _, _| Err(TaskError::new(error, "it failed")))
}

fn task_with(extra: Value) -> Value {
    let mut state = json!({"Type": "Task", "Resource": "work", "End": true});
    if let (Value::Object(state), Value::Object(extra)) = (&mut state, extra) {
        state.extend(extra);
    }
    state
}

async fn run_counting(
    definition: &Value,
    handler: &FnHandler,
) -> (Result<Value, String>, Vec<Duration>, usize) {
    let (options, sleeper) = options();
    let execution = common::machine(definition)
        .execute(json!({"in": 1}), handler, &options)
        .await;
    let result = execution.result.map_err(|failure| failure.error);
    (result, sleeper.slept(), handler.calls().len())
}

fn secs(values: &[u64]) -> Vec<Duration> {
    values
        .iter()
        .map(|value| Duration::from_secs(*value))
        .collect()
}

#[tokio::test]
async fn retry_exhausted_with_backoff() {
    let definition = single(task_with(
        json!({"Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3}]}),
    ));
    let handler = always_failing("Boom");
    let (options, sleeper) = options();
    let execution = common::machine(&definition)
        .execute(json!({}), &handler, &options)
        .await;
    let failure = execution.result.expect_err("fails");
    assert_eq!(
        (failure.error.as_str(), failure.cause.as_str()),
        ("Boom", "it failed")
    );
    assert_eq!(sleeper.slept(), secs(&[2, 6, 18]));
    assert_eq!(
        handler
            .calls()
            .iter()
            .map(|call| call.2)
            .collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    let retries: Vec<u64> = execution
        .history
        .iter()
        .filter_map(|event| match event {
            HistoryEvent::RetryScheduled { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(retries, vec![1, 2, 3]);
}

#[tokio::test]
async fn retry_defaults_and_max_delay() {
    let defaults = single(task_with(json!({"Retry": [{"ErrorEquals": ["Boom"]}]})));
    let (_, slept, calls) = run_counting(&defaults, &always_failing("Boom")).await;
    assert_eq!((slept, calls), (secs(&[1, 2, 4]), 4));
    let capped = single(task_with(
        json!({"Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 5, "MaxDelaySeconds": 5, "JitterStrategy": "NONE"}]}),
    ));
    let (_, slept, _) = run_counting(&capped, &always_failing("Boom")).await;
    assert_eq!(slept, secs(&[1, 2, 4, 5, 5]));
    let fractional = single(task_with(
        json!({"Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 3, "BackoffRate": 1.5, "MaxAttempts": 2}]}),
    ));
    let (_, slept, _) = run_counting(&fractional, &always_failing("Boom")).await;
    assert_eq!(
        slept,
        vec![Duration::from_secs(3), Duration::from_millis(4500)]
    );
}

#[tokio::test]
async fn full_jitter_stays_within_the_backoff() {
    let definition = single(task_with(
        json!({"Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 10, "MaxAttempts": 4, "JitterStrategy": "FULL"}]}),
    ));
    let (_, slept, _) = run_counting(&definition, &always_failing("Boom")).await;
    assert_eq!(slept.len(), 4);
    for (retry, delay) in slept.iter().enumerate() {
        assert!(*delay <= Duration::from_secs(10 << retry), "{delay:?}");
    }
    assert_ne!(slept, secs(&[10, 20, 40, 80]), "jitter changes the delays");
}

#[tokio::test]
async fn retry_then_success_counts_retries() {
    let definition = single(task_with(json!({
        "Parameters": {"retry.$": "$$.State.RetryCount"},
        "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 3}]})));
    let calls = AtomicUsize::new(0);
    let handler = FnHandler::new(move |_, input, context: &TaskContext| {
        if calls.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err(TaskError::new("Flaky", "try again"));
        }
        Ok(
            json!({"input": input, "retry_count": context.retry_count, "state": context.state_name, "execution": context.execution_name}),
        )
    });
    let (result, slept, count) = run_counting(&definition, &handler).await;
    assert_eq!(
        result,
        Ok(json!({"input": {"retry": 2}, "retry_count": 2, "state": "Only", "execution": "test"}))
    );
    assert_eq!((slept, count), (secs(&[1, 2]), 3));
}

#[tokio::test]
async fn first_matching_retrier_applies_even_when_exhausted() {
    let definition = single(task_with(json!({"Retry": [
        {"ErrorEquals": ["Boom"], "MaxAttempts": 0},
        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]})));
    let (result, slept, calls) = run_counting(&definition, &always_failing("Boom")).await;
    assert_eq!((result, slept, calls), (Err("Boom".to_string()), vec![], 1));
}

#[tokio::test]
async fn each_retrier_counts_its_own_attempts() {
    // The scenario of the AWS guide ("Complex retry scenarios"): ErrorA, ErrorB, ErrorC,
    // ErrorB, ErrorB wait 1, 2, 5 and 4 seconds, then the catcher takes over.
    let definition = json!({"StartAt": "X", "States": {
        "X": {"Type": "Task", "Resource": "x", "Next": "Y",
              "Retry": [{"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
                        {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}]},
        "Y": {"Type": "Pass", "Result": "y", "End": true},
        "Z": {"Type": "Pass", "Result": "z", "End": true}}});
    let handler = failing_with(&["ErrorA", "ErrorB", "ErrorC", "ErrorB", "ErrorB"]);
    let (result, slept, calls) = run_counting(&definition, &handler).await;
    assert_eq!(
        (result, slept, calls),
        (Ok(json!("z")), secs(&[1, 2, 5, 4]), 5)
    );
}

#[tokio::test]
async fn catch_places_the_error_over_the_raw_input() {
    let definition = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "work", "InputPath": "$.in", "End": true,
              "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.error", "Next": "Recover"}]},
        "Recover": {"Type": "Pass", "End": true}}});
    let (options, _) = options();
    let execution = common::machine(&definition)
        .execute(
            json!({"in": 1, "keep": true}),
            &always_failing("Boom"),
            &options,
        )
        .await;
    assert_eq!(
        execution.result.expect("caught"),
        json!({"in": 1, "keep": true, "error": {"Error": "Boom", "Cause": "it failed"}})
    );
    assert!(execution.history.contains(&HistoryEvent::Caught {
        state: "T".to_string(),
        error: "Boom".to_string(),
        next: "Recover".to_string()
    }));
    let replace = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "work", "End": true, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}]},
        "Recover": {"Type": "Pass", "End": true}}});
    let (result, _, _) = run_counting(&replace, &always_failing("Boom")).await;
    assert_eq!(result, Ok(json!({"Error": "Boom", "Cause": "it failed"})));
}

#[tokio::test]
async fn catchers_are_tried_in_order() {
    let definition = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "work", "End": true, "Catch": [
            {"ErrorEquals": ["Specific", "Other"], "Next": "Specific"},
            {"ErrorEquals": ["States.TaskFailed"], "Next": "TaskFailed"},
            {"ErrorEquals": ["States.ALL"], "Next": "All"}]},
        "Specific": {"Type": "Pass", "Result": "specific", "End": true},
        "TaskFailed": {"Type": "Pass", "Result": "task failed", "End": true},
        "All": {"Type": "Pass", "Result": "all", "End": true}}});
    for (error, expected) in [
        ("Specific", "specific"),
        ("Other", "specific"),
        ("Unknown", "task failed"),
        ("States.Timeout", "all"),
    ] {
        let (result, _, _) = run_counting(&definition, &always_failing(error)).await;
        assert_eq!(result, Ok(json!(expected)), "{error}");
    }
}

/// Sleeps (in Tokio time) before answering: for timeouts under paused time.
struct SlowHandler {
    seconds: u64,
}

#[async_trait::async_trait]
impl TaskHandler for SlowHandler {
    async fn invoke(&self, _: &str, input: &Value, _: &TaskContext) -> Result<Value, TaskError> {
        tokio::time::sleep(Duration::from_secs(self.seconds)).await;
        Ok(input.clone())
    }
}

#[tokio::test(start_paused = true)]
async fn task_timeout_raises_states_timeout() {
    let definition = single(task_with(json!({"TimeoutSeconds": 5})));
    let failure = failure_of(&definition, json!({}), &SlowHandler { seconds: 60 }).await;
    assert_eq!(
        (failure.error.as_str(), failure.state.as_deref()),
        (error_names::TIMEOUT, Some("Only"))
    );
    let from_input = single(task_with(json!({"TimeoutSecondsPath": "$.timeout"})));
    let failure = failure_of(
        &from_input,
        json!({"timeout": 2}),
        &SlowHandler { seconds: 3 },
    )
    .await;
    assert_eq!(failure.error, error_names::TIMEOUT);
    let in_time = common::run_with(
        &from_input,
        json!({"timeout": 4}),
        &SlowHandler { seconds: 3 },
    )
    .await;
    assert!(in_time.result.is_ok());
}

#[tokio::test(start_paused = true)]
async fn task_failed_does_not_match_timeouts() {
    let definition = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "work", "TimeoutSeconds": 1, "End": true,
              "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2}],
              "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Failed"}, {"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}]},
        "Failed": {"Type": "Pass", "Result": "failed", "End": true},
        "TimedOut": {"Type": "Pass", "Result": "timed out", "End": true}}});
    let slow = SlowHandler { seconds: 10 };
    let execution = common::run_with(&definition, json!({}), &slow).await;
    assert_eq!(execution.result, Ok(json!("timed out")));
    assert!(
        !execution
            .history
            .iter()
            .any(|event| matches!(event, HistoryEvent::RetryScheduled { .. }))
    );
    let (result, slept, calls) = run_counting(&definition, &always_failing("Custom")).await;
    assert_eq!(
        (result, slept, calls),
        (Ok(json!("failed")), secs(&[1, 2]), 3)
    );
}

#[tokio::test(start_paused = true)]
async fn execution_timeout() {
    let definition = json!({"TimeoutSeconds": 10, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 20, "End": true}}});
    let options = ExecutionOptions {
        sleeper: Arc::new(TokioSleeper),
        ..ExecutionOptions::default()
    };
    let execution = common::machine(&definition)
        .execute(json!({}), &FnHandler::echo(), &options)
        .await;
    let failure = execution.result.expect_err("times out");
    assert_eq!(
        (failure.error.as_str(), failure.state),
        (error_names::TIMEOUT, None)
    );
    let quick = json!({"TimeoutSeconds": 10, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 5, "End": true}}});
    let execution = common::machine(&quick)
        .execute(json!({}), &FnHandler::echo(), &options)
        .await;
    assert!(execution.result.is_ok());
}

const OVER_LIMIT: usize = 300 * 1024;

#[tokio::test]
async fn oversized_pass_result_is_not_caught() {
    let definition = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "Big", "States": {
            "Big": {"Type": "Pass", "Result": "x".repeat(OVER_LIMIT), "End": true}}}],
            "Retry": [{"ErrorEquals": ["States.ALL"]}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Caught": {"Type": "Succeed"}}});
    let (options, sleeper) = options();
    let execution = common::machine(&definition)
        .execute(json!({}), &FnHandler::echo(), &options)
        .await;
    let failure = execution.result.expect_err("fails");
    assert_eq!(failure.error, error_names::DATA_LIMIT_EXCEEDED);
    assert_eq!(failure.state.as_deref(), Some("P/branch 0/Big"));
    assert!(
        failure.cause.starts_with("The state/task 'Big' returned a result with a size exceeding the maximum number of bytes service limit."),
        "{}",
        failure.cause
    );
    assert!(sleeper.slept().is_empty());
    assert!(execution.largest_payload_bytes > OVER_LIMIT);
}

#[tokio::test]
async fn oversized_task_result_is_not_retried_or_caught() {
    let definition = json!({"StartAt": "Validate", "States": {
        "Validate": {"Type": "Task", "Resource": "validate", "End": true,
                     "Retry": [{"ErrorEquals": ["States.ALL"]}],
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Caught": {"Type": "Succeed"}}});
    let handler = FnHandler::new(|_, _, _| Ok(json!({"blob": "y".repeat(OVER_LIMIT)})));
    let (options, sleeper) = options();
    let execution = common::machine(&definition)
        .execute(json!({}), &handler, &options)
        .await;
    let failure = execution.result.expect_err("fails");
    assert_eq!(failure.error, error_names::DATA_LIMIT_EXCEEDED);
    assert!(
        failure.cause.contains("The state/task 'Validate' returned a result with a size exceeding the maximum number of bytes service limit."),
        "{}",
        failure.cause
    );
    assert_eq!((handler.calls().len(), sleeper.slept().len()), (1, 0));
    assert!(execution.largest_payload_bytes > OVER_LIMIT);
}

#[tokio::test]
async fn payload_limit_is_configurable_and_covers_inputs() {
    let definition = single(
        json!({"Type": "Pass", "Parameters": {"copy.$": "$.text", "again.$": "$.text"}, "End": true}),
    );
    let (mut options, _) = options();
    options.payload_limit_bytes = 100;
    let machine = common::machine(&definition);
    let execution = machine
        .execute(
            json!({"text": "z".repeat(40)}),
            &FnHandler::echo(),
            &options,
        )
        .await;
    let failure = execution
        .result
        .expect_err("the Parameters output is over 100 bytes");
    assert_eq!(failure.error, error_names::DATA_LIMIT_EXCEEDED);
    let execution = machine
        .execute(
            json!({"text": "z".repeat(200)}),
            &FnHandler::echo(),
            &options,
        )
        .await;
    let failure = execution
        .result
        .expect_err("the execution input is over 100 bytes");
    assert_eq!(
        (failure.error.as_str(), failure.state),
        (error_names::DATA_LIMIT_EXCEEDED, None)
    );
}

#[tokio::test]
async fn an_input_size_the_caller_measured_is_the_one_checked_and_recorded() {
    let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let machine = common::machine(&definition);
    let input = json!({"text": "small"});
    let measured = input.to_string().len();
    let given = |input_bytes| ExecutionOptions {
        input_bytes: Some(input_bytes),
        ..ExecutionOptions::default()
    };
    let execution = machine
        .execute(input.clone(), &FnHandler::echo(), &given(measured))
        .await;
    assert_eq!(execution.result, Ok(input.clone()));
    assert_eq!(
        execution.history.first(),
        Some(&HistoryEvent::ExecutionStarted {
            input_bytes: measured
        })
    );
    // The interpreter does not measure again: a figure over the limit fails the execution.
    let execution = machine
        .execute(
            input,
            &FnHandler::echo(),
            &given(DEFAULT_PAYLOAD_LIMIT_BYTES + 1),
        )
        .await;
    let failure = execution
        .result
        .expect_err("the given size is over the limit");
    assert_eq!(
        (failure.error.as_str(), failure.state),
        (error_names::DATA_LIMIT_EXCEEDED, None)
    );
}

#[tokio::test]
async fn runtime_errors_are_not_caught_but_result_path_failures_are() {
    let runtime = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "work", "InputPath": "$.missing", "End": true,
              "Retry": [{"ErrorEquals": ["States.ALL"]}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Caught": {"Type": "Succeed"}}});
    let (result, slept, calls) = run_counting(&runtime, &FnHandler::echo()).await;
    assert_eq!(
        (result, slept, calls),
        (Err(error_names::RUNTIME.to_string()), vec![], 0)
    );
    let result_path = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "work", "InputPath": "$.in", "ResultPath": "$.in.x", "End": true,
              "Catch": [{"ErrorEquals": ["States.ResultPathMatchFailure"], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": true}}});
    let (result, _, _) = run_counting(&result_path, &FnHandler::echo()).await;
    let caught = result.expect("caught");
    assert_eq!(
        caught["Error"],
        json!(error_names::RESULT_PATH_MATCH_FAILURE)
    );
}

#[tokio::test]
async fn intrinsic_failures_can_be_caught() {
    let definition = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "work", "Parameters": {"x.$": "States.ArrayGetItem($.list, 5)"}, "End": true,
              "Catch": [{"ErrorEquals": ["States.IntrinsicFailure"], "ResultPath": "$.error", "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "OutputPath": "$.error.Error", "End": true}}});
    let execution = common::run_with(&definition, json!({"list": [1]}), &FnHandler::echo()).await;
    assert_eq!(execution.result, Ok(json!(error_names::INTRINSIC_FAILURE)));
}

/// Sizes passed along from one state to the next are the sizes each input really has: every
/// `StateEntered` records the compact JSON size of what the state received, which is what
/// the previous state (or the execution, or the Parallel around a branch) sent.
#[tokio::test]
async fn each_state_input_is_recorded_with_its_own_size() {
    let definition = json!({"StartAt": "Shape", "States": {
        "Shape": {"Type": "Pass", "Parameters": {"text.$": "$.text", "n": 1}, "Next": "Work"},
        "Work": {"Type": "Task", "Resource": "work", "Next": "Both"},
        "Both": {"Type": "Parallel", "Parameters": {"twice.$": "States.Array($.text, $.text)"},
                 "End": true, "Branches": [
            {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": true}}},
            {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "Result": "r", "End": true}}}]}}});
    let input = json!({"text": "été", "ignored": [1, 2, 3]});
    let handler =
        FnHandler::new(|_, input: Value, _| Ok(json!({"text": input["text"], "worked": true})));
    let (options, _) = options();
    let execution = common::machine(&definition)
        .execute(input.clone(), &handler, &options)
        .await;
    execution.result.as_ref().expect("succeeds");
    let entered: Vec<(String, usize)> = execution
        .history
        .iter()
        .filter_map(|event| match event {
            HistoryEvent::StateEntered { state, input_bytes } => {
                Some((state.clone(), *input_bytes))
            }
            _ => None,
        })
        .collect();
    let size = |value: Value| value.to_string().len();
    let shaped = json!({"text": "été", "n": 1});
    let worked = json!({"text": "été", "worked": true});
    let twice = json!({"twice": ["été", "été"]});
    assert_eq!(
        entered,
        vec![
            ("Shape".to_owned(), size(input)),
            ("Work".to_owned(), size(shaped)),
            ("Both".to_owned(), size(worked)),
            ("Both/branch 0/Left".to_owned(), size(twice.clone())),
            ("Both/branch 1/Right".to_owned(), size(twice)),
        ]
    );
}

/// An input built by `Parameters` is measured on its own, however small the state's input.
#[tokio::test]
async fn a_built_task_input_over_the_limit_fails_before_the_task_runs() {
    let definition = single(json!({"Type": "Task", "Resource": "work", "End": true,
        "Parameters": {"a.$": "$.text", "b.$": "$.text", "c.$": "$.text"}}));
    let (mut options, _) = options();
    options.payload_limit_bytes = 300;
    let handler = FnHandler::echo();
    let execution = common::machine(&definition)
        .execute(json!({"text": "z".repeat(120)}), &handler, &options)
        .await;
    let failure = execution
        .result
        .expect_err("the built input is over 300 bytes");
    assert_eq!(failure.error, error_names::DATA_LIMIT_EXCEEDED);
    assert!(
        failure.cause.contains("built an input"),
        "{}",
        failure.cause
    );
    assert!(handler.calls().is_empty());
}
