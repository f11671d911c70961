//! One attempt of a Task state: build the input, invoke the handler (within the timeout),
//! then shape the result into the state's output.

use serde_json::Value;
use std::time::Duration;

use super::{Frame, Runner};
use crate::TaskContext;
use crate::error::{Failure, StateError, TaskError, names};
use crate::history::HistoryEvent;
use crate::limits::PayloadKind;
use crate::model::TaskState;

impl Runner<'_> {
    pub(crate) async fn task_attempt(
        &self,
        frame: &Frame<'_>,
        task: &TaskState,
        input: &Value,
        retry_count: u32,
    ) -> Result<Value, Failure> {
        let state = frame.state;
        let in_state = |error: StateError| Failure::in_state(&state.path, error);
        let timeout = match &task.timeout {
            None => None,
            Some(seconds) => {
                match self.resolve_seconds(frame, seconds, input, "TimeoutSecondsPath") {
                    Ok(0) => {
                        return Err(in_state(StateError::runtime(format!(
                            "The TimeoutSecondsPath of the state '{}' gives 0 seconds; a timeout must be positive",
                            state.name
                        ))));
                    }
                    Ok(seconds) => Some(seconds),
                    Err(error) => return Err(in_state(error)),
                }
            }
        };
        let effective = self
            .effective_input(
                frame,
                &task.filters,
                task.parameters.as_ref(),
                input,
                retry_count,
            )
            .map_err(in_state)?;
        self.check_effective_size(frame, &task.filters, task.parameters.as_ref(), &effective)
            .map_err(in_state)?;
        self.record(HistoryEvent::TaskScheduled {
            state: state.path.clone(),
            resource: task.resource.clone(),
            retry_count,
        });
        let context = TaskContext {
            execution_name: self.execution.name.clone(),
            state_name: state.name.clone(),
            retry_count,
            beside_others: frame.beside_others,
        };
        let call = self.handler.invoke(&task.resource, &effective, &context);
        let outcome = match timeout {
            None => call.await,
            Some(seconds) => match tokio::time::timeout(Duration::from_secs(seconds), call).await {
                Ok(outcome) => outcome,
                Err(_) => Err(TaskError::new(
                    names::TIMEOUT,
                    format!(
                        "The task did not finish within its TimeoutSeconds ({seconds} seconds)."
                    ),
                )),
            },
        };
        let result = match outcome {
            Ok(result) => result,
            Err(error) => {
                self.record(HistoryEvent::TaskFailed {
                    state: state.path.clone(),
                    error: error.error.clone(),
                    cause: error.cause.clone(),
                });
                return Err(in_state(StateError {
                    error: error.error,
                    cause: error.cause,
                }));
            }
        };
        let result_bytes = self
            .check_size(state, PayloadKind::Result, &result)
            .map_err(in_state)?;
        self.record(HistoryEvent::TaskSucceeded {
            state: state.path.clone(),
            result_bytes,
        });
        self.finish(
            frame,
            &task.results,
            &task.filters,
            input,
            result,
            retry_count,
        )
        .map_err(in_state)
    }
}
