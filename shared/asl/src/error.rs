//! The errors of the crate: refusals at load, errors raised by tasks, and the errors that a
//! state raises while it runs, named as Step Functions names them.

/// The error names that Step Functions defines and this interpreter raises or matches.
pub mod names {
    /// Matches every error except the terminal ones (`States.DataLimitExceeded`, `States.Runtime`).
    pub const ALL: &str = "States.ALL";
    /// An error that the interpreter could not process, such as a path that matches nothing.
    /// It is terminal: no retrier or catcher handles it.
    pub const RUNTIME: &str = "States.Runtime";
    /// Matches every error except `States.Timeout` (and the terminal ones).
    pub const TASK_FAILED: &str = "States.TaskFailed";
    /// A task ran longer than its `TimeoutSeconds`, or the execution ran longer than its own.
    pub const TIMEOUT: &str = "States.Timeout";
    /// A Choice state found no matching rule and has no `Default`.
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    /// A `ResultPath` could not be applied to the state's input.
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    /// An intrinsic function was called with arguments it cannot take.
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    /// A payload went over the size limit. It is terminal: no retrier or catcher handles it.
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
}

/// Why a definition was refused at load: the state (its path, such as
/// `"Parallel/branch 0/Aggregate"`, or `None` at the top level), the field inside it (such as
/// `"Retry[0].MaxAttempts"`) and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", describe_load_error(.state.as_deref(), .field, .message))]
pub struct LoadError {
    pub state: Option<String>,
    pub field: String,
    pub message: String,
}

fn describe_load_error(state: Option<&str>, field: &str, message: &str) -> String {
    match (state, field.is_empty()) {
        (Some(state), false) => format!("state \"{state}\", field \"{field}\": {message}"),
        (Some(state), true) => format!("state \"{state}\": {message}"),
        (None, false) => format!("field \"{field}\": {message}"),
        (None, true) => message.to_string(),
    }
}

impl LoadError {
    pub(crate) fn new(
        state: Option<&str>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        LoadError {
            state: state.map(str::to_string),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error raised by a task handler: its name (matched by `Retry` and `Catch`) and cause.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Why an execution failed: the error name, its cause and the state that raised it (its
/// path, innermost first: a failing branch names the state inside the branch). `state` is
/// `None` for failures of the execution as a whole, such as its own timeout.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionFailure {
    pub error: String,
    pub cause: String,
    pub state: Option<String>,
}

impl std::fmt::Display for ExecutionFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            Some(state) => write!(
                formatter,
                "{} in state '{state}': {}",
                self.error, self.cause
            ),
            None => write!(formatter, "{}: {}", self.error, self.cause),
        }
    }
}

impl std::error::Error for ExecutionFailure {}

/// An error raised while a state runs, before retriers and catchers have seen it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StateError {
    pub(crate) error: String,
    pub(crate) cause: String,
}

impl StateError {
    pub(crate) fn new(error: &str, cause: impl Into<String>) -> Self {
        StateError {
            error: error.to_string(),
            cause: cause.into(),
        }
    }

    pub(crate) fn runtime(cause: impl Into<String>) -> Self {
        StateError::new(names::RUNTIME, cause)
    }

    pub(crate) fn intrinsic(cause: impl Into<String>) -> Self {
        StateError::new(names::INTRINSIC_FAILURE, cause)
    }

    /// Terminal errors end the execution: no retrier or catcher handles them.
    pub(crate) fn is_terminal(&self) -> bool {
        is_terminal_error(&self.error)
    }
}

pub(crate) fn is_terminal_error(error: &str) -> bool {
    error == names::RUNTIME || error == names::DATA_LIMIT_EXCEEDED
}

/// A state's error together with the path of the state that raised it, as it travels up
/// from a branch or an iteration to the state that may retry or catch it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub(crate) error: StateError,
    pub(crate) state: Option<String>,
}

impl Failure {
    pub(crate) fn in_state(state: &str, error: StateError) -> Self {
        Failure {
            error,
            state: Some(state.to_string()),
        }
    }

    pub(crate) fn into_execution_failure(self) -> ExecutionFailure {
        ExecutionFailure {
            error: self.error.error,
            cause: self.error.cause,
            state: self.state,
        }
    }
}
