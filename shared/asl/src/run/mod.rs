//! The executor: runs a scope state after state, keeps the history, checks payload sizes.

mod fan_out;
mod io;
mod recovery;
mod simple;
mod task;

use futures_util::future::BoxFuture;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::context::{ContextView, ExecutionContext, format_timestamp};
use crate::error::{Failure, StateError, names};
use crate::history::HistoryEvent;
use crate::limits::{PayloadKind, data_limit_error, serialized_size};
use crate::model::{Filters, Scope, State, StateKind, Transition};
use crate::random::SplitMix64;
use crate::template::Template;
use crate::{Execution, ExecutionOptions, StateMachine, TaskHandler};

/// Step Functions fails an execution whose history reaches 25,000 events. This interpreter
/// records fewer events per state than AWS, so it stops later; the limit mostly guards
/// against endless loops (with a recording sleeper, a Wait loop would never end).
const MAXIMUM_HISTORY_EVENTS: usize = 25_000;

/// A state's input: the execution input, shared with the context object (for
/// `$$.Execution.Input`) so that an execution does not start with a copy of it, or a value
/// of the state's own. States that only read their input (Task, Parallel and Map, which copy
/// what their `InputPath` and `Parameters` select) never copy a shared one.
pub(crate) enum StateInput {
    Shared(Arc<Value>),
    Owned(Value),
}

impl StateInput {
    /// The input as a value of its own, copied only when it is shared.
    pub(crate) fn into_owned(self) -> Value {
        match self {
            StateInput::Shared(shared) => Arc::unwrap_or_clone(shared),
            StateInput::Owned(value) => value,
        }
    }
}

impl std::ops::Deref for StateInput {
    type Target = Value;

    fn deref(&self) -> &Value {
        match self {
            StateInput::Shared(shared) => shared,
            StateInput::Owned(value) => value,
        }
    }
}

/// Where a state sends the execution next.
pub(crate) enum Step {
    Next(String, Value),
    End(Value),
}

/// What one state's run knows about itself, for the context object and error causes.
pub(crate) struct Frame<'s> {
    pub(crate) state: &'s State,
    pub(crate) entered_time: String,
    /// The number of the history event that recorded the state's entry (1-based).
    pub(crate) entered_event: usize,
    /// The size of the state's input as JSON, for an effective input that is all of it.
    pub(crate) input_bytes: usize,
    /// Whether other scopes of the execution run at once with this state's
    /// ([`crate::TaskContext::beside_others`]).
    pub(crate) beside_others: bool,
}

#[derive(Default)]
struct Journal {
    history: Vec<HistoryEvent>,
    largest_payload_bytes: usize,
}

/// One execution in progress.
pub(crate) struct Runner<'a> {
    handler: &'a dyn TaskHandler,
    options: &'a ExecutionOptions,
    execution: ExecutionContext,
    journal: Mutex<Journal>,
    random: Mutex<SplitMix64>,
}

pub(crate) async fn execute(
    machine: &StateMachine,
    input: Value,
    handler: &dyn TaskHandler,
    options: &ExecutionOptions,
) -> Execution {
    let start = (options.now)();
    let input = Arc::new(input);
    let runner = Runner {
        handler,
        options,
        execution: ExecutionContext::new(&machine.name, &options.name, start, input.clone()),
        journal: Mutex::new(Journal::default()),
        random: Mutex::new(SplitMix64::new(options.seed)),
    };
    let input_bytes = options
        .input_bytes
        .unwrap_or_else(|| serialized_size(&input));
    runner.record(HistoryEvent::ExecutionStarted { input_bytes });
    let result = if input_bytes > options.payload_limit_bytes {
        runner.note_size(input_bytes);
        Err(Failure {
            error: StateError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The execution input has a size exceeding the maximum number of bytes service limit. \
                     ({input_bytes} bytes, the limit is {} bytes)",
                    options.payload_limit_bytes
                ),
            ),
            state: None,
        })
    } else {
        let run = runner.run_scope(
            &machine.root,
            StateInput::Shared(input),
            Some(input_bytes),
            false,
        );
        match machine.timeout_seconds {
            None => run.await,
            Some(seconds) => match tokio::time::timeout(Duration::from_secs(seconds), run).await {
                Ok(result) => result,
                Err(_) => Err(Failure {
                    error: StateError::new(
                        names::TIMEOUT,
                        format!(
                            "The execution ran longer than its TimeoutSeconds ({seconds} seconds)."
                        ),
                    ),
                    state: None,
                }),
            },
        }
    };
    let result = result.map_err(Failure::into_execution_failure);
    match &result {
        Ok(output) => runner.record(HistoryEvent::ExecutionSucceeded {
            output_bytes: serialized_size(output),
        }),
        Err(failure) => runner.record(HistoryEvent::ExecutionFailed {
            error: failure.error.clone(),
            cause: failure.cause.clone(),
            state: failure.state.clone(),
        }),
    };
    let journal = runner
        .journal
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Execution {
        result,
        history: journal.history,
        largest_payload_bytes: journal.largest_payload_bytes,
    }
}

impl<'a> Runner<'a> {
    /// Records an event and returns its number (1-based), as Step Functions numbers events.
    fn record(&self, event: HistoryEvent) -> usize {
        let mut journal = self
            .journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        journal.history.push(event);
        journal.history.len()
    }

    fn history_length(&self) -> usize {
        self.journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .history
            .len()
    }

    fn note_size(&self, bytes: usize) {
        let mut journal = self
            .journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        journal.largest_payload_bytes = journal.largest_payload_bytes.max(bytes);
    }

    /// Measures a payload, remembers the largest, and refuses one over the limit with the
    /// terminal `States.DataLimitExceeded`.
    fn check_size(
        &self,
        state: &State,
        kind: PayloadKind,
        value: &Value,
    ) -> Result<usize, StateError> {
        self.check_bytes(state, kind, serialized_size(value))
    }

    /// Checks the input a Task or Parallel state built (`effective`), measuring it only when
    /// it is not the state's whole input (an `InputPath` other than `$`, or `Parameters`).
    fn check_effective_size(
        &self,
        frame: &Frame<'_>,
        filters: &Filters,
        parameters: Option<&Template>,
        effective: &Value,
    ) -> Result<usize, StateError> {
        let bytes = if parameters.is_none() && filters.input_path.is_whole_input() {
            frame.input_bytes
        } else {
            serialized_size(effective)
        };
        self.check_bytes(frame.state, PayloadKind::EffectiveInput, bytes)
    }

    /// Like `check_size`, for a payload already measured.
    fn check_bytes(
        &self,
        state: &State,
        kind: PayloadKind,
        bytes: usize,
    ) -> Result<usize, StateError> {
        self.note_size(bytes);
        let limit = self.options.payload_limit_bytes;
        if bytes > limit {
            return Err(data_limit_error(&state.name, kind, bytes, limit));
        }
        Ok(bytes)
    }

    fn now_text(&self) -> String {
        format_timestamp((self.options.now)())
    }

    /// The context object for a state's run.
    fn context_view<'v>(&'v self, frame: &'v Frame<'_>, retry_count: u32) -> ContextView<'v> {
        ContextView {
            execution: &self.execution,
            state_name: &frame.state.name,
            entered_time: &frame.entered_time,
            retry_count,
            map_item: None,
        }
    }

    fn with_random<T>(&self, draw: impl FnOnce(&mut SplitMix64) -> T) -> T {
        let mut generator = self
            .random
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        draw(&mut generator)
    }

    /// Runs a scope from its `StartAt` to a terminal state, giving that state's output.
    /// `input_bytes` is the input's size as JSON when the caller has measured it already;
    /// `beside_others` says whether other scopes of the execution run at once with it (it
    /// stays true for the scopes nested in it).
    pub(crate) fn run_scope<'s>(
        &'s self,
        scope: &'s Scope,
        input: StateInput,
        input_bytes: Option<usize>,
        beside_others: bool,
    ) -> BoxFuture<'s, Result<Value, Failure>> {
        Box::pin(async move {
            let mut current = scope.start_at.clone();
            let mut input = input;
            let mut input_bytes = input_bytes;
            loop {
                let Some(state) = scope.state(&current) else {
                    return Err(Failure {
                        error: StateError::runtime(format!(
                            "The state '{current}' does not exist."
                        )),
                        state: None,
                    });
                };
                if self.history_length() >= MAXIMUM_HISTORY_EVENTS {
                    return Err(Failure::in_state(
                        &state.path,
                        StateError::runtime(format!(
                            "The execution reached the limit of {MAXIMUM_HISTORY_EVENTS} history events."
                        )),
                    ));
                }
                match self
                    .run_state(state, input, input_bytes, beside_others)
                    .await
                {
                    Ok((Step::Next(next, output), output_bytes)) => {
                        // A state's output is the next state's input: measured once.
                        current = next;
                        input = StateInput::Owned(output);
                        input_bytes = Some(output_bytes);
                    }
                    Ok((Step::End(output), _)) => return Ok(output),
                    Err(failure) => {
                        self.record(HistoryEvent::StateFailed {
                            state: state.path.clone(),
                            error: failure.error.error.clone(),
                            cause: failure.error.cause.clone(),
                        });
                        return Err(failure);
                    }
                }
            }
        })
    }

    /// Runs one state: records its entry, checks its input and output sizes, and leaves
    /// with where to go next and the size of its output. `known_bytes` is the input's size
    /// when it was measured already (as the previous state's output, or the execution's
    /// input).
    async fn run_state(
        &self,
        state: &State,
        input: StateInput,
        known_bytes: Option<usize>,
        beside_others: bool,
    ) -> Result<(Step, usize), Failure> {
        let entered_time = self.now_text();
        let input_bytes = known_bytes.unwrap_or_else(|| serialized_size(&input));
        let entered_event = self.record(HistoryEvent::StateEntered {
            state: state.path.clone(),
            input_bytes,
        });
        let in_state = |error: StateError| Failure::in_state(&state.path, error);
        self.check_bytes(state, PayloadKind::Input, input_bytes)
            .map_err(in_state)?;
        let frame = Frame {
            state,
            entered_time,
            entered_event,
            input_bytes,
            beside_others,
        };
        let (step, transition) = match &state.kind {
            StateKind::Pass(pass) => (
                self.run_pass(&frame, pass, input.into_owned())
                    .map_err(in_state)?,
                Some(&pass.transition),
            ),
            StateKind::Choice(choice) => (
                self.run_choice(&frame, choice, input.into_owned())
                    .map_err(in_state)?,
                None,
            ),
            StateKind::Wait(wait) => (
                self.run_wait(&frame, wait, input.into_owned())
                    .await
                    .map_err(in_state)?,
                Some(&wait.transition),
            ),
            StateKind::Succeed(filters) => (
                self.run_succeed(&frame, filters, input.into_owned())
                    .map_err(in_state)?,
                None,
            ),
            StateKind::Fail(fail) => return Err(in_state(self.run_fail(&frame, fail, &input))),
            StateKind::Task(task) => (
                self.run_recoverable(&frame, &task.results, input).await?,
                Some(&task.transition),
            ),
            StateKind::Parallel(parallel) => (
                self.run_recoverable(&frame, &parallel.results, input)
                    .await?,
                Some(&parallel.transition),
            ),
            StateKind::Map(map) => (
                self.run_recoverable(&frame, &map.results, input).await?,
                Some(&map.transition),
            ),
        };
        let step = match (step, transition) {
            (Outcome::Done(output), Some(Transition::Next(next))) => {
                Step::Next(next.clone(), output)
            }
            (Outcome::Done(output), _) => Step::End(output),
            (Outcome::GoTo(next, output), _) => Step::Next(next, output),
        };
        let output = match &step {
            Step::Next(_, output) | Step::End(output) => output,
        };
        let output_bytes = self
            .check_size(state, PayloadKind::Output, output)
            .map_err(in_state)?;
        self.record(HistoryEvent::StateExited {
            state: state.path.clone(),
            output_bytes,
        });
        Ok((step, output_bytes))
    }
}

/// What a state's own logic decided: follow its transition, or go to a named state (a
/// Choice rule or a catcher).
pub(crate) enum Outcome {
    Done(Value),
    GoTo(String, Value),
}
