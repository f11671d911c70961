//! Helpers shared by the integration tests: task handlers, options with a recording sleeper
//! and a fixed clock, and `check` to run a definition and compare its output.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use pipeline_asl::{
    Execution, ExecutionFailure, ExecutionOptions, LoadError, LoadOptions, RecordingSleeper,
    StateMachine, TaskContext, TaskError, TaskHandler,
};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// The fixed clock of the tests: 2024-01-02T03:04:05Z.
pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default()
}

type Behaviour = dyn Fn(&str, Value, &TaskContext) -> Result<Value, TaskError> + Send + Sync;

/// A task handler made of a closure; it records every call as (resource, input, retry count).
pub struct FnHandler {
    behaviour: Box<Behaviour>,
    pub calls: Mutex<Vec<(String, Value, u32)>>,
}

impl FnHandler {
    pub fn new(
        behaviour: impl Fn(&str, Value, &TaskContext) -> Result<Value, TaskError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        FnHandler {
            behaviour: Box::new(behaviour),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Returns every task's input as its result.
    pub fn echo() -> Self {
        FnHandler::new(|_, input, _| Ok(input))
    }

    pub fn calls(&self) -> Vec<(String, Value, u32)> {
        self.calls
            .lock()
            .map(|calls| calls.clone())
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl TaskHandler for FnHandler {
    async fn invoke(
        &self,
        resource: &str,
        input: &Value,
        context: &TaskContext,
    ) -> Result<Value, TaskError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((resource.to_string(), input.clone(), context.retry_count));
        }
        (self.behaviour)(resource, input.clone(), context)
    }
}

/// Options for tests: a recording sleeper, the fixed clock, execution name "test".
pub fn options() -> (ExecutionOptions, Arc<RecordingSleeper>) {
    let sleeper = Arc::new(RecordingSleeper::new());
    let options = ExecutionOptions {
        name: "test".to_string(),
        sleeper: sleeper.clone(),
        now: Arc::new(fixed_now),
        seed: 42,
        ..ExecutionOptions::default()
    };
    (options, sleeper)
}

pub fn machine(definition: &Value) -> StateMachine {
    match StateMachine::from_value(definition.clone(), &LoadOptions::default()) {
        Ok(machine) => machine,
        Err(error) => panic!("the definition should load: {error}"),
    }
}

pub fn load_error(definition: &Value) -> LoadError {
    match StateMachine::from_value(definition.clone(), &LoadOptions::default()) {
        Ok(_) => panic!("the definition should be refused: {definition}"),
        Err(error) => error,
    }
}

pub async fn run_with(definition: &Value, input: Value, handler: &dyn TaskHandler) -> Execution {
    let (options, _) = options();
    machine(definition).execute(input, handler, &options).await
}

pub async fn run(definition: &Value, input: Value) -> Execution {
    run_with(definition, input, &FnHandler::echo()).await
}

/// Runs `definition` on `input` with echoing tasks and checks the output.
pub async fn check(definition: &Value, input: Value, expected: Value) {
    let execution = run(definition, input).await;
    match execution.result {
        Ok(output) => assert_eq!(output, expected, "definition: {definition}"),
        Err(failure) => {
            panic!("expected {expected}, the execution failed: {failure}\n{definition}")
        }
    }
}

/// Runs `definition` and returns its failure, failing the test if it succeeded.
pub async fn failure_of(
    definition: &Value,
    input: Value,
    handler: &dyn TaskHandler,
) -> ExecutionFailure {
    let execution = run_with(definition, input, handler).await;
    match execution.result {
        Ok(output) => panic!("expected a failure, the execution gave {output}"),
        Err(failure) => failure,
    }
}

/// A one-state machine around `state` (named "Only"), which must be terminal.
pub fn single(state: Value) -> Value {
    serde_json::json!({"StartAt": "Only", "States": {"Only": state}})
}
