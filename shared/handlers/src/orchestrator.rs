//! The state machine, run in-process: the deployed ASL definition, interpreted by
//! `pipeline-asl`, with every Task resolved to the Rust handler of its function.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use pipeline_asl::{
    Execution, ExecutionOptions, LoadError, LoadOptions, StateMachine, TaskContext, TaskError,
    TaskHandler,
};
use serde_json::{Value, json};

use crate::deps::Dependencies;
use crate::invoke::invoke_in_execution;
use crate::stage::Stage;

/// The definition that is deployed, embedded in the binary.
pub const PIPELINE_DEFINITION: &str = include_str!("../../../statemachine/pipeline.asl.json");

/// The templates' substitution variable of each function's ARN.
const FUNCTION_VARIABLES: [(&str, Stage); 5] = [
    ("ValidateFunctionArn", Stage::Validate),
    ("EnrichFunctionArn", Stage::Enrich),
    ("AggregateFunctionArn", Stage::Aggregate),
    ("InferenceFunctionArn", Stage::Inference),
    ("StoreFunctionArn", Stage::Store),
];

/// The Step Functions integration that invokes a Lambda function by name with a payload.
const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// The local ARN standing in for a function's: the name is the one the templates give it.
pub fn local_function_arn(stage: Stage) -> String {
    format!("arn:aws:lambda:local:000000000000:function:pipeline-{stage}")
}

/// Fills `${ValidateFunctionArn}` and the others with local ARNs.
pub fn local_substitutions() -> LoadOptions {
    let substitutions: BTreeMap<String, String> = FUNCTION_VARIABLES
        .iter()
        .map(|(variable, stage)| ((*variable).to_owned(), local_function_arn(*stage)))
        .collect();
    LoadOptions { substitutions }
}

/// The stage a Task resource names: a function ARN or name ending in the stage's name
/// (`...:function:pipeline-validate`, `validate`), optionally with a version or alias.
pub fn stage_of_function(function: &str) -> Option<Stage> {
    let name = function
        .strip_prefix("arn:aws:lambda:")
        .map_or(function, |rest| {
            rest.split(":function:").nth(1).unwrap_or(rest)
        });
    let name = name.split(':').next().unwrap_or(name);
    Stage::ALL.into_iter().find(|stage| {
        let stage = stage.as_str();
        name == stage
            || name
                .strip_suffix(stage)
                .is_some_and(|prefix| prefix.ends_with('-') || prefix.ends_with('_'))
    })
}

/// Loads a definition and checks that every Task resolves to a local handler, naming the
/// state whose resource does not.
pub fn load_definition(text: &str, options: &LoadOptions) -> Result<StateMachine, LoadError> {
    let machine = StateMachine::load(text, options)?;
    for (state, resource) in machine.tasks() {
        if resource == LAMBDA_INVOKE || stage_of_function(&resource).is_some() {
            continue;
        }
        return Err(LoadError {
            state: Some(state),
            field: "Resource".to_owned(),
            message: format!(
                "{resource:?} is no local function: use a Lambda function ARN or name ending in \
                 validate, enrich, aggregate, inference or store, or {LAMBDA_INVOKE} with such a FunctionName"
            ),
        });
    }
    Ok(machine)
}

/// Resolves Tasks to the in-process handlers. A handler's error reaches the state machine as
/// Lambda reports it: the error name, and a cause holding `{"errorType", "errorMessage"}`.
pub struct LocalTasks {
    deps: Arc<Dependencies>,
}

impl LocalTasks {
    pub fn new(deps: Arc<Dependencies>) -> Self {
        Self { deps }
    }

    /// Runs one invocation. One that runs beside other work of its execution (a branch of
    /// a `Parallel`, an iteration of a `Map` running several at once) runs as a task of its
    /// own ([`run_apart`]), as Lambda runs each invocation apart from the state machine:
    /// the interpreter awaits an execution's branches together, in one task, which would
    /// otherwise keep them all on one thread, so that a single execution (a large upload's
    /// parts) could use only one core. A Task alone in its execution runs in the
    /// execution's own task, which costs a copy of its input and a hand-off less.
    async fn call(
        &self,
        stage: Stage,
        input: &Value,
        request_id: &str,
        context: &TaskContext,
    ) -> Result<Value, TaskError> {
        let execution = context.execution_name.as_str();
        let result = if context.beside_others {
            let deps = self.deps.clone();
            let input = input.clone();
            let request_id = request_id.to_owned();
            let execution = execution.to_owned();
            run_apart(async move {
                invoke_in_execution(stage, &deps, &input, &request_id, Some(&execution)).await
            })
            .await
            .ok_or_else(|| TaskError {
                error: "States.Runtime".to_owned(),
                cause: format!(
                    "the invocation of {stage} was cancelled: the runtime is shutting down"
                ),
            })?
        } else {
            invoke_in_execution(stage, &self.deps, input, request_id, Some(execution)).await
        };
        result.map_err(|error| {
            let cause = json!({
                "errorType": error.name.as_str(),
                "errorMessage": error.message,
            });
            TaskError {
                error: error.name.as_str().to_owned(),
                cause: cause.to_string(),
            }
        })
    }
}

/// Runs `work` as a Tokio task of its own and waits for its output: `None` when the runtime
/// cancelled it (it is shutting down). The task is aborted if this future is dropped first
/// (a Task's `TimeoutSeconds` passed, or the execution was dropped), so the work stops at
/// its next await as it would have in the caller's task, and a panic in it goes on in the
/// caller.
async fn run_apart<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    /// Aborts the task when dropped; aborting a finished task does nothing.
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(tokio::spawn(work));
    match (&mut task.0).await {
        Ok(output) => Some(output),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => None,
    }
}

#[async_trait]
impl TaskHandler for LocalTasks {
    async fn invoke(
        &self,
        resource: &str,
        input: &Value,
        context: &TaskContext,
    ) -> Result<Value, TaskError> {
        let request_id = format!(
            "{}/{}/{}",
            context.execution_name, context.state_name, context.retry_count
        );
        if resource == LAMBDA_INVOKE {
            let function = input
                .get("FunctionName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Some(stage) = stage_of_function(function) else {
                return Err(TaskError {
                    error: "Lambda.ResourceNotFoundException".to_owned(),
                    cause: format!("Function not found: {function:?}"),
                });
            };
            let payload = input.get("Payload").unwrap_or(&Value::Null);
            let output = self.call(stage, payload, &request_id, context).await?;
            return Ok(json!({
                "ExecutedVersion": "$LATEST",
                "Payload": output,
                "StatusCode": 200,
            }));
        }
        match stage_of_function(resource) {
            Some(stage) => self.call(stage, input, &request_id, context).await,
            None => Err(TaskError {
                error: "States.Runtime".to_owned(),
                cause: format!("no local handler for {resource:?}"),
            }),
        }
    }
}

/// The pipeline's state machine with its handlers: what `pipeline run`, `demo` and `serve`
/// execute.
pub struct Orchestrator {
    machine: StateMachine,
    tasks: LocalTasks,
}

impl Orchestrator {
    /// The deployed definition with local functions.
    pub fn pipeline(deps: Arc<Dependencies>) -> Result<Self, LoadError> {
        Self::with_definition(PIPELINE_DEFINITION, deps)
    }

    /// Any definition whose Tasks name the pipeline's functions.
    pub fn with_definition(text: &str, deps: Arc<Dependencies>) -> Result<Self, LoadError> {
        Ok(Self {
            machine: load_definition(text, &local_substitutions())?,
            tasks: LocalTasks::new(deps),
        })
    }

    /// Runs one execution. The values it kept in memory are dropped when it ends; what it
    /// staged in the store stays until the caller removes it.
    pub async fn execute(&self, input: Value, options: &ExecutionOptions) -> Execution {
        let execution = self.machine.execute(input, &self.tasks, options).await;
        if let Some(kept) = &self.tasks.deps.kept {
            kept.forget(&options.name);
        }
        execution
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    /// Two pieces of work awaited together by one task each block their thread until the
    /// other has started: that can only finish if they run on two threads at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_run_apart_uses_more_than_one_thread() {
        let (to_first, first_hears) = mpsc::channel::<()>();
        let (to_second, second_hears) = mpsc::channel::<()>();
        let meet = |tell: mpsc::Sender<()>, hear: mpsc::Receiver<()>| async move {
            tell.send(()).unwrap();
            hear.recv_timeout(Duration::from_secs(10)).is_ok()
        };
        let (first, second) = tokio::join!(
            run_apart(meet(to_second, first_hears)),
            run_apart(meet(to_first, second_hears)),
        );
        assert_eq!(
            (first, second),
            (Some(true), Some(true)),
            "each met the other"
        );
    }

    #[tokio::test]
    async fn dropping_the_wait_stops_the_work() {
        let finished = Arc::new(AtomicBool::new(false));
        let work = {
            let finished = finished.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                finished.store(true, Ordering::SeqCst);
            }
        };
        let waited = tokio::time::timeout(Duration::from_millis(20), run_apart(work)).await;
        assert!(waited.is_err(), "the wait timed out");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            !finished.load(Ordering::SeqCst),
            "the work was aborted with its wait"
        );
    }

    #[tokio::test]
    #[should_panic(expected = "a stage panicked")]
    async fn a_panic_in_the_work_goes_on_in_the_caller() {
        run_apart(async { panic!("a stage panicked") }).await;
    }

    #[test]
    fn function_names_and_arns_resolve_to_stages() {
        for stage in Stage::ALL {
            assert_eq!(stage_of_function(&local_function_arn(stage)), Some(stage));
            assert_eq!(stage_of_function(stage.as_str()), Some(stage));
        }
        assert_eq!(
            stage_of_function("arn:aws:lambda:eu-west-1:123456789012:function:prod-store:live"),
            Some(Stage::Store)
        );
        assert_eq!(stage_of_function("restore"), None);
        assert_eq!(stage_of_function("arn:aws:states:::sns:publish"), None);
    }
}
