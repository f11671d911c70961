//! The events of an execution, in the order they happened: enough to debug a run and to
//! print it. Paths name nested states as `Parallel/branch 0/Aggregate`.

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum HistoryEvent {
    ExecutionStarted {
        input_bytes: usize,
    },
    StateEntered {
        state: String,
        input_bytes: usize,
    },
    StateExited {
        state: String,
        output_bytes: usize,
    },
    /// A task handler is invoked; `retry_count` is 0 for the first attempt.
    TaskScheduled {
        state: String,
        resource: String,
        retry_count: u32,
    },
    TaskSucceeded {
        state: String,
        result_bytes: usize,
    },
    TaskFailed {
        state: String,
        error: String,
        cause: String,
    },
    /// A retrier matched: retry number `attempt` of that retrier comes after `delay`.
    RetryScheduled {
        state: String,
        error: String,
        attempt: u64,
        delay: Duration,
    },
    /// A catcher matched and the execution goes on at `next`.
    Caught {
        state: String,
        error: String,
        next: String,
    },
    WaitStarted {
        state: String,
        duration: Duration,
    },
    MapIterationStarted {
        state: String,
        index: usize,
    },
    /// The state raised an error that none of its retriers or catchers handled.
    StateFailed {
        state: String,
        error: String,
        cause: String,
    },
    ExecutionSucceeded {
        output_bytes: usize,
    },
    ExecutionFailed {
        error: String,
        cause: String,
        state: Option<String>,
    },
}

impl fmt::Display for HistoryEvent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryEvent::ExecutionStarted { input_bytes } => write!(
                formatter,
                "execution started ({input_bytes} bytes of input)"
            ),
            HistoryEvent::StateEntered { state, input_bytes } => {
                write!(formatter, "entered {state} ({input_bytes} bytes)")
            }
            HistoryEvent::StateExited {
                state,
                output_bytes,
            } => write!(formatter, "exited {state} ({output_bytes} bytes)"),
            HistoryEvent::TaskScheduled {
                state,
                resource,
                retry_count,
            } => write!(
                formatter,
                "{state}: invoking {resource} (retry {retry_count})"
            ),
            HistoryEvent::TaskSucceeded {
                state,
                result_bytes,
            } => write!(formatter, "{state}: task returned {result_bytes} bytes"),
            HistoryEvent::TaskFailed {
                state,
                error,
                cause,
            } => write!(formatter, "{state}: task failed with {error}: {cause}"),
            HistoryEvent::RetryScheduled {
                state,
                error,
                attempt,
                delay,
            } => write!(
                formatter,
                "{state}: {error}, retry {attempt} in {:.3} s",
                delay.as_secs_f64()
            ),
            HistoryEvent::Caught { state, error, next } => {
                write!(formatter, "{state}: caught {error}, going to {next}")
            }
            HistoryEvent::WaitStarted { state, duration } => write!(
                formatter,
                "{state}: waiting {:.3} s",
                duration.as_secs_f64()
            ),
            HistoryEvent::MapIterationStarted { state, index } => {
                write!(formatter, "{state}: iteration {index} started")
            }
            HistoryEvent::StateFailed {
                state,
                error,
                cause,
            } => write!(formatter, "{state} failed with {error}: {cause}"),
            HistoryEvent::ExecutionSucceeded { output_bytes } => write!(
                formatter,
                "execution succeeded ({output_bytes} bytes of output)"
            ),
            HistoryEvent::ExecutionFailed {
                error,
                cause,
                state,
            } => match state {
                Some(state) => write!(
                    formatter,
                    "execution failed in {state} with {error}: {cause}"
                ),
                None => write!(formatter, "execution failed with {error}: {cause}"),
            },
        }
    }
}
