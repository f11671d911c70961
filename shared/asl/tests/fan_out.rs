//! Parallel and inline Map states, concurrency limits, and concurrent executions.

mod common;

use common::{FnHandler, failure_of, options};
use pipeline_asl::{StateMachine, TaskContext, TaskError, TaskHandler, error_names};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Sleeps `input.sleep` milliseconds (Tokio time), fails when `input.fail` is true, and
/// tracks how many calls run at once.
#[derive(Default)]
struct TrackingHandler {
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl TaskHandler for TrackingHandler {
    async fn invoke(
        &self,
        resource: &str,
        input: &Value,
        _: &TaskContext,
    ) -> Result<Value, TaskError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        let sleep = input["sleep"].as_u64().unwrap_or(10);
        tokio::time::sleep(Duration::from_millis(sleep)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if input["fail"] == json!(true) {
            return Err(TaskError::new(
                "ItemFailed",
                format!("{resource} failed on {input}"),
            ));
        }
        Ok(json!({"done": input}))
    }
}

fn parallel(branch_tasks: &[Value], extra: Value) -> Value {
    let branches: Vec<Value> = branch_tasks
        .iter()
        .enumerate()
        .map(|(index, parameters)| {
            let name = format!("Work{index}");
            json!({"StartAt": name, "States": {name.clone(): {"Type": "Task", "Resource": format!("work{index}"), "Parameters": parameters, "End": true}}})
        })
        .collect();
    let mut state = json!({"Type": "Parallel", "Branches": branches, "End": true});
    if let (Value::Object(state), Value::Object(extra)) = (&mut state, extra) {
        state.extend(extra);
    }
    json!({"StartAt": "P", "States": {"P": state, "Recover": {"Type": "Pass", "End": true}}})
}

#[tokio::test(start_paused = true)]
async fn parallel_outputs_come_in_branch_order() {
    let definition = without_recover(parallel(
        &[json!({"sleep": 30, "n": 0}), json!({"sleep": 10, "n": 1})],
        json!({}),
    ));
    let handler = TrackingHandler::default();
    let execution = common::run_with(&definition, json!({}), &handler).await;
    assert_eq!(
        execution.result,
        Ok(json!([{"done": {"sleep": 30, "n": 0}}, {"done": {"sleep": 10, "n": 1}}]))
    );
    assert_eq!(
        handler.most_in_flight.load(Ordering::SeqCst),
        2,
        "branches run concurrently"
    );
}

#[tokio::test(start_paused = true)]
async fn failing_branch_fails_the_parallel_with_its_error() {
    let branches = [json!({"sleep": 5}), json!({"fail": true})];
    let caught = parallel(
        &branches,
        json!({"Catch": [{"ErrorEquals": ["ItemFailed"], "ResultPath": "$.error", "Next": "Recover"}]}),
    );
    let execution =
        common::run_with(&caught, json!({"keep": 1}), &TrackingHandler::default()).await;
    let output = execution.result.expect("caught");
    assert_eq!(output["keep"], json!(1));
    assert_eq!(output["error"]["Error"], json!("ItemFailed"));
    assert!(
        output["error"]["Cause"]
            .as_str()
            .unwrap_or_default()
            .contains("work1 failed")
    );

    let uncaught = without_recover(parallel(&branches, json!({})));
    let failure = failure_of(&uncaught, json!({}), &TrackingHandler::default()).await;
    assert_eq!(
        (failure.error.as_str(), failure.state.as_deref()),
        ("ItemFailed", Some("P/branch 1/Work1"))
    );
}

#[tokio::test(start_paused = true)]
async fn parallel_retry_runs_every_branch_again() {
    let calls = AtomicUsize::new(0);
    let handler = FnHandler::new(move |resource, input, _| {
        if resource == "work1" && calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(TaskError::new("Flaky", "first time"));
        }
        Ok(input)
    });
    let definition = without_recover(parallel(
        &[json!({"a": 0}), json!({"b": 1})],
        json!({"Retry": [{"ErrorEquals": ["Flaky"]}]}),
    ));
    let execution = common::run_with(&definition, json!({}), &handler).await;
    assert_eq!(execution.result, Ok(json!([{"a": 0}, {"b": 1}])));
    let resources: Vec<String> = handler.calls().into_iter().map(|call| call.0).collect();
    assert_eq!(
        resources
            .iter()
            .filter(|resource| *resource == "work0")
            .count(),
        2
    );
    assert_eq!(
        resources
            .iter()
            .filter(|resource| *resource == "work1")
            .count(),
        2
    );
}

fn map(extra: Value) -> Value {
    let mut state = json!({"Type": "Map", "ItemsPath": "$.items", "End": true,
        "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "work", "End": true}}}});
    if let (Value::Object(state), Value::Object(extra)) = (&mut state, extra) {
        state.extend(extra);
    }
    json!({"StartAt": "M", "States": {"M": state, "Recover": {"Type": "Pass", "End": true}}})
}

fn without_recover(mut definition: Value) -> Value {
    if let Some(states) = definition["States"].as_object_mut() {
        states.remove("Recover");
    }
    definition
}

#[tokio::test(start_paused = true)]
async fn map_item_selector_sees_the_item_in_the_context() {
    let definition = without_recover(map(json!({
        "ItemSelector": {"index.$": "$$.Map.Item.Index", "sleep.$": "$$.Map.Item.Value.ms", "shared.$": "$.shared"},
        "ResultSelector": {"results.$": "$[*].done"},
        "ResultPath": "$.mapped"})));
    let input = json!({"items": [{"ms": 30}, {"ms": 1}, {"ms": 10}], "shared": "s"});
    let execution = common::run_with(&definition, input.clone(), &TrackingHandler::default()).await;
    let mut expected = input;
    expected["mapped"] = json!({"results": [
        {"index": 0, "sleep": 30, "shared": "s"},
        {"index": 1, "sleep": 1, "shared": "s"},
        {"index": 2, "sleep": 10, "shared": "s"}]});
    assert_eq!(execution.result, Ok(expected));
}

#[tokio::test(start_paused = true)]
async fn map_failing_item_fails_the_map() {
    let items = json!({"items": [{"n": 0}, {"n": 1, "fail": true}, {"n": 2}]});
    let caught = map(
        json!({"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recover"}]}),
    );
    let output = common::run_with(&caught, items.clone(), &TrackingHandler::default())
        .await
        .result
        .expect("caught");
    assert_eq!(output["error"]["Error"], json!("ItemFailed"));
    assert_eq!(output["items"], items["items"]);

    let failure = failure_of(
        &without_recover(map(json!({}))),
        items,
        &TrackingHandler::default(),
    )
    .await;
    assert_eq!(
        (failure.error.as_str(), failure.state.as_deref()),
        ("ItemFailed", Some("M/processor/Work"))
    );
}

#[tokio::test(start_paused = true)]
async fn map_max_concurrency_is_honoured() {
    let items: Vec<Value> = (0..6).map(|n| json!({"n": n})).collect();
    let cases = [
        (json!({"MaxConcurrency": 2}), json!({"items": items}), 2),
        (json!({"MaxConcurrency": 1}), json!({"items": items}), 1),
        (json!({"MaxConcurrency": 0}), json!({"items": items}), 6),
        (json!({}), json!({"items": items}), 6),
        (
            json!({"MaxConcurrencyPath": "$.max"}),
            json!({"items": items, "max": 3}),
            3,
        ),
    ];
    for (extra, input, expected) in cases {
        let handler = TrackingHandler::default();
        let execution =
            common::run_with(&without_recover(map(extra.clone())), input, &handler).await;
        let output = execution.result.expect("succeeds");
        let expected_output: Vec<Value> = (0..6).map(|n| json!({"done": {"n": n}})).collect();
        assert_eq!(output, json!(expected_output), "{extra}");
        assert_eq!(
            handler.most_in_flight.load(Ordering::SeqCst),
            expected,
            "{extra}"
        );
        assert_eq!(handler.calls.load(Ordering::SeqCst), 6);
    }
}

#[tokio::test]
async fn map_items_must_be_an_array() {
    let failure = failure_of(
        &without_recover(map(json!({}))),
        json!({"items": {"not": "a list"}}),
        &FnHandler::echo(),
    )
    .await;
    assert_eq!(
        (failure.error.as_str(), failure.state.as_deref()),
        (error_names::RUNTIME, Some("M"))
    );
    let empty = common::run_with(
        &without_recover(map(json!({}))),
        json!({"items": []}),
        &FnHandler::echo(),
    )
    .await;
    assert_eq!(empty.result, Ok(json!([])));
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_executions_run_concurrently_on_spawned_tasks() {
    let machine = Arc::new(common::machine(&json!({"StartAt": "Fan", "States": {
        "Fan": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 3, "Next": "Sum",
                "ItemProcessor": {"StartAt": "Double", "States": {"Double": {"Type": "Task", "Resource": "double", "End": true}}}},
        "Sum": {"Type": "Task", "Resource": "sum", "End": true}}})));
    let handler: Arc<dyn TaskHandler> =
        Arc::new(FnHandler::new(|resource, input, _| match resource {
            "double" => Ok(json!(input.as_i64().unwrap_or_default() * 2)),
            _ => Ok(json!(input.as_array().map(|items| {
                items.iter().filter_map(Value::as_i64).sum::<i64>()
            }))),
        }));
    let mut handles = Vec::new();
    for run in 0..32i64 {
        let machine: Arc<StateMachine> = machine.clone();
        let handler = handler.clone();
        handles.push(tokio::spawn(assert_send(async move {
            let (mut options, _) = options();
            options.name = format!("run-{run}");
            let items: Vec<i64> = (0..=run).collect();
            machine
                .execute(json!({"items": items}), handler.as_ref(), &options)
                .await
        })));
    }
    for (run, handle) in handles.into_iter().enumerate() {
        let execution = handle.await.expect("the task completes");
        let run = run as i64;
        assert_eq!(execution.result, Ok(json!(run * (run + 1))));
    }
}

/// A Task hears that other work of its execution runs beside it only inside a `Parallel` of
/// several branches or a `Map` that runs several iterations at once, and in whatever those
/// enclose.
#[tokio::test]
async fn a_task_hears_whether_other_work_of_its_execution_runs_beside_it() {
    // State names are unique across a machine: each Task is named after its resource.
    let task = |resource: &str| json!({"StartAt": resource, "States": {resource: {"Type": "Task", "Resource": resource, "End": true}}});
    let definition = json!({
        "StartAt": "Alone",
        "States": {
            "Alone": {"Type": "Task", "Resource": "alone", "ResultPath": null, "Next": "Two"},
            "Two": {"Type": "Parallel", "Branches": [task("left"), task("right")],
                    "ResultPath": null, "Next": "One"},
            "One": {"Type": "Parallel", "Branches": [task("single-branch")],
                    "ResultPath": null, "Next": "Serial"},
            "Serial": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1,
                       "ItemProcessor": task("serial-item"), "ResultPath": null, "Next": "Lone"},
            "Lone": {"Type": "Map", "ItemsPath": "$.one",
                     "ItemProcessor": task("lone-item"), "ResultPath": null, "Next": "Wide"},
            "Wide": {"Type": "Map", "ItemsPath": "$.items",
                     "ItemProcessor": task("wide-item"), "ResultPath": null, "Next": "Nested"},
            "Nested": {"Type": "Parallel", "ResultPath": null, "End": true, "Branches": [
                {"StartAt": "Inner", "States": {"Inner": {"Type": "Parallel", "End": true,
                    "Branches": [task("nested")]}}},
                {"StartAt": "Idle", "States": {"Idle": {"Type": "Pass", "End": true}}}
            ]}
        }
    });
    let heard = std::sync::Mutex::new(Vec::new());
    let heard = Arc::new(heard);
    let handler = {
        let heard = heard.clone();
        FnHandler::new(move |resource, input, context| {
            heard
                .lock()
                .unwrap()
                .push((resource.to_owned(), context.beside_others));
            Ok(input)
        })
    };
    let execution =
        common::run_with(&definition, json!({"items": [1, 2], "one": [1]}), &handler).await;
    assert!(execution.result.is_ok(), "{:?}", execution.result);
    let mut heard = heard.lock().unwrap().clone();
    heard.sort();
    heard.dedup();
    let expected: Vec<(String, bool)> = [
        ("alone", false),
        ("left", true),
        ("lone-item", false),
        ("nested", true),
        ("right", true),
        ("serial-item", false),
        ("single-branch", false),
        ("wide-item", true),
    ]
    .into_iter()
    .map(|(resource, beside)| (resource.to_owned(), beside))
    .collect();
    assert_eq!(heard, expected);
}
