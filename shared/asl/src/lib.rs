//! An interpreter for the Amazon States Language (AWS Step Functions, JSONPath query
//! language). It loads a definition, refuses at load what it does not support (naming the
//! state and the field), and runs executions in-process, resolving each Task state through a
//! caller-supplied [`TaskHandler`]. It follows the semantics that AWS documents, and enforces
//! AWS's limits (payload size, timeouts) locally.
//!
//! ```no_run
//! # async fn demo(handler: &dyn pipeline_asl::TaskHandler) -> Result<(), pipeline_asl::LoadError> {
//! use pipeline_asl::{ExecutionOptions, LoadOptions, StateMachine};
//! let machine = StateMachine::load(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#, &LoadOptions::default())?;
//! let execution = machine.execute(serde_json::json!({}), handler, &ExecutionOptions::default()).await;
//! assert!(execution.result.is_ok());
//! # Ok(()) }
//! ```

mod choice;
mod context;
mod error;
mod history;
mod intrinsics;
mod limits;
mod load;
mod model;
mod path;
mod random;
mod retry;
mod run;
mod sleep;
mod template;

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use error::{ExecutionFailure, LoadError, TaskError, names as error_names};
pub use history::HistoryEvent;
pub use limits::{DEFAULT_PAYLOAD_LIMIT_BYTES, serialized_size};
pub use sleep::{RecordingSleeper, Sleeper, TokioSleeper};

/// The name a machine gets unless [`StateMachine::with_name`] gives another.
const DEFAULT_MACHINE_NAME: &str = "local";

/// How to load a definition.
#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// Replaces `${Name}` inside every JSON string of the definition before it is checked
    /// (like SAM's `DefinitionSubstitutions`); a `${...}` with no substitution stays as is.
    pub substitutions: BTreeMap<String, String>,
}

/// A loaded and checked definition, ready to run any number of executions, concurrently.
#[derive(Debug, Clone)]
pub struct StateMachine {
    name: String,
    root: model::Scope,
    timeout_seconds: Option<u64>,
}

impl StateMachine {
    /// Parses and checks a definition written as JSON text.
    pub fn load(text: &str, options: &LoadOptions) -> Result<StateMachine, LoadError> {
        let definition: Value = serde_json::from_str(text).map_err(|error| {
            LoadError::new(
                None,
                "",
                format!("the definition is not valid JSON: {error}"),
            )
        })?;
        StateMachine::from_value(definition, options)
    }

    /// Checks a definition given as a JSON value.
    pub fn from_value(definition: Value, options: &LoadOptions) -> Result<StateMachine, LoadError> {
        let loaded = load::load(definition, options)?;
        Ok(StateMachine {
            name: DEFAULT_MACHINE_NAME.to_string(),
            root: loaded.root,
            timeout_seconds: loaded.timeout_seconds,
        })
    }

    /// Names the machine (for `$$.StateMachine.Name` and the ARNs in the context object);
    /// the default is `"local"`.
    pub fn with_name(mut self, name: impl Into<String>) -> StateMachine {
        self.name = name.into();
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every Task state with its resource, as (state path, resource): a nested state's path
    /// names its enclosing states, as in `"Parallel/branch 0/Aggregate"` or
    /// `"Map/processor/Score"`. States come in the order a walk from `StartAt` meets them.
    pub fn tasks(&self) -> Vec<(String, String)> {
        let mut tasks = Vec::new();
        collect_tasks(&self.root, &mut tasks);
        tasks
    }

    /// Runs one execution. The returned future is `Send`, so executions can run on
    /// `tokio::spawn` (with the machine and the handler in `Arc`s). A Task or the machine
    /// with `TimeoutSeconds` needs a Tokio runtime with its timer enabled.
    pub async fn execute(
        &self,
        input: Value,
        tasks: &dyn TaskHandler,
        options: &ExecutionOptions,
    ) -> Execution {
        run::execute(self, input, tasks, options).await
    }
}

fn collect_tasks(scope: &model::Scope, tasks: &mut Vec<(String, String)>) {
    for state in &scope.states {
        match &state.kind {
            model::StateKind::Task(task) => tasks.push((state.path.clone(), task.resource.clone())),
            model::StateKind::Parallel(parallel) => {
                for branch in &parallel.branches {
                    collect_tasks(branch, tasks);
                }
            }
            model::StateKind::Map(map) => collect_tasks(&map.processor, tasks),
            _ => {}
        }
    }
}

/// Runs the work of Task states: the caller maps each `Resource` to code.
#[async_trait::async_trait]
pub trait TaskHandler: Send + Sync {
    /// Runs `resource` on `input` (the state's effective input, after `InputPath` and
    /// `Parameters`). An error's name is what `Retry` and `Catch` match. The input is
    /// borrowed: the state keeps it, for a retry or a catcher's `ResultPath`.
    async fn invoke(
        &self,
        resource: &str,
        input: &Value,
        context: &TaskContext,
    ) -> Result<Value, TaskError>;
}

/// What a task handler learns about the call.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub execution_name: String,
    /// The state's own name (not its path).
    pub state_name: String,
    /// How many times the state was retried before this attempt.
    pub retry_count: u32,
    /// Whether other work of the execution may run while this Task does: it is in a branch
    /// of a `Parallel` with several branches, or in an iteration of a `Map` that runs
    /// several at once. A handler can run such a Task on a thread of its own; the
    /// interpreter awaits the branches of one execution together, in one task.
    pub beside_others: bool,
}

/// How to run one execution.
#[derive(Clone)]
pub struct ExecutionOptions {
    /// `$$.Execution.Name`; the execution's Id is
    /// `arn:aws:states:local:000000000000:execution:<machine name>:<name>`.
    pub name: String,
    /// The largest state input, output or task result allowed, in bytes of compact JSON.
    pub payload_limit_bytes: usize,
    /// How Wait states and retry delays wait.
    pub sleeper: Arc<dyn Sleeper>,
    /// The clock, for the context object's times and Wait states' `Timestamp`.
    pub now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Seeds retry jitter, `States.UUID` and `States.MathRandom`.
    pub seed: u64,
    /// The execution input's size in bytes of compact JSON, when the caller has measured it
    /// already (`pipeline demo` does, to fit its batches under the limit); `None` has it
    /// measured. It is what the input's limit is checked against, so pass only a measure
    /// of this very input.
    pub input_bytes: Option<usize>,
}

impl Default for ExecutionOptions {
    fn default() -> Self {
        ExecutionOptions {
            name: "local".to_string(),
            payload_limit_bytes: DEFAULT_PAYLOAD_LIMIT_BYTES,
            sleeper: Arc::new(TokioSleeper),
            now: Arc::new(Utc::now),
            seed: 0,
            input_bytes: None,
        }
    }
}

impl std::fmt::Debug for ExecutionOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ExecutionOptions")
            .field("name", &self.name)
            .field("payload_limit_bytes", &self.payload_limit_bytes)
            .field("seed", &self.seed)
            .field("input_bytes", &self.input_bytes)
            .finish_non_exhaustive()
    }
}

/// The outcome of one execution.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The output of the execution, or why it failed.
    pub result: Result<Value, ExecutionFailure>,
    /// Everything that happened, in order.
    pub history: Vec<HistoryEvent>,
    /// The largest state input, output or task result seen, in bytes of compact JSON.
    pub largest_payload_bytes: usize,
}
