//! What a state's paths can read: its data, and the context object `$$` (execution, state,
//! state machine and, inside a Map's `ItemSelector`, the current item).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::cell::OnceCell;
use std::sync::{Arc, Mutex};

use crate::error::StateError;
use crate::path::{DataPath, PathSource};
use crate::random::SplitMix64;

/// The role every local execution pretends to run as.
pub(crate) const LOCAL_ROLE_ARN: &str = "arn:aws:iam::000000000000:role/local";

/// The longest piece of a state's input quoted in an error's cause.
const QUOTED_INPUT_LIMIT: usize = 1_024;

/// The parts of the context object that stay the same for a whole execution.
#[derive(Debug)]
pub(crate) struct ExecutionContext {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) start_time: String,
    pub(crate) input: Arc<Value>,
    pub(crate) machine_id: String,
    pub(crate) machine_name: String,
}

impl ExecutionContext {
    pub(crate) fn new(
        machine_name: &str,
        execution_name: &str,
        start: DateTime<Utc>,
        input: Arc<Value>,
    ) -> Self {
        ExecutionContext {
            id: format!(
                "arn:aws:states:local:000000000000:execution:{machine_name}:{execution_name}"
            ),
            name: execution_name.to_string(),
            start_time: format_timestamp(start),
            input,
            machine_id: format!("arn:aws:states:local:000000000000:stateMachine:{machine_name}"),
            machine_name: machine_name.to_string(),
        }
    }
}

/// Formats a time as Step Functions does in the context object: ISO 8601, milliseconds, `Z`.
pub(crate) fn format_timestamp(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The context object as one state sees it.
pub(crate) struct ContextView<'a> {
    pub(crate) execution: &'a ExecutionContext,
    pub(crate) state_name: &'a str,
    pub(crate) entered_time: &'a str,
    pub(crate) retry_count: u32,
    /// The index and value of the current item, inside a Map's `ItemSelector` only.
    pub(crate) map_item: Option<(usize, &'a Value)>,
}

impl ContextView<'_> {
    /// Builds the context object as JSON, only when a `$$` path is evaluated. The execution
    /// input (up to the payload limit) is copied in only when `with_input` is set.
    pub(crate) fn to_value(&self, with_input: bool) -> Value {
        let execution = self.execution;
        let input = if with_input {
            Value::clone(&execution.input)
        } else {
            Value::Null
        };
        let mut context = json!({
            "Execution": {
                "Id": execution.id,
                "Input": input,
                "Name": execution.name,
                "RoleArn": LOCAL_ROLE_ARN,
                "StartTime": execution.start_time,
                "RedriveCount": 0,
            },
            "State": {
                "EnteredTime": self.entered_time,
                "Name": self.state_name,
                "RetryCount": self.retry_count,
            },
            "StateMachine": {
                "Id": execution.machine_id,
                "Name": execution.machine_name,
            },
        });
        if let (Some((index, value)), Value::Object(members)) = (self.map_item, &mut context) {
            members.insert(
                "Map".to_string(),
                json!({"Item": {"Index": index, "Value": value}}),
            );
        }
        context
    }
}

/// Whether a `$$` path may select the execution input: the whole object, `$$.Execution`,
/// anything under `$$.Execution.Input`, or any path with wildcards, recursion, filters or
/// bracket steps (checked conservatively).
fn may_reach_execution_input(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("$$") else {
        return true;
    };
    if rest.contains(['*', '[', '?']) || rest.contains("..") {
        return true;
    }
    rest.is_empty()
        || rest == ".Execution"
        || rest == ".Execution.Input"
        || rest.starts_with(".Execution.Input.")
}

/// Everything a payload template, a Choice rule or an intrinsic function evaluates against.
pub(crate) struct Environment<'a> {
    pub(crate) input: &'a Value,
    pub(crate) context: &'a ContextView<'a>,
    random: &'a Mutex<SplitMix64>,
    entered_event: usize,
    /// The context object without the execution input, which most `$$` paths do not need.
    context_value: OnceCell<Value>,
    /// The whole context object, for paths that may reach `$$.Execution.Input`.
    full_context_value: OnceCell<Value>,
}

impl<'a> Environment<'a> {
    pub(crate) fn new(
        input: &'a Value,
        context: &'a ContextView<'a>,
        random: &'a Mutex<SplitMix64>,
        entered_event: usize,
    ) -> Self {
        Environment {
            input,
            context,
            random,
            entered_event,
            context_value: OnceCell::new(),
            full_context_value: OnceCell::new(),
        }
    }

    pub(crate) fn state_name(&self) -> &str {
        self.context.state_name
    }

    /// Evaluates a path; `None` when a definite path matches nothing.
    pub(crate) fn resolve(&self, path: &DataPath) -> Option<Value> {
        match path.source {
            PathSource::Data => path.query.select(self.input),
            PathSource::Context => {
                let context = if may_reach_execution_input(path.text()) {
                    self.full_context_value
                        .get_or_init(|| self.context.to_value(true))
                } else {
                    self.context_value
                        .get_or_init(|| self.context.to_value(false))
                };
                path.query.select(context)
            }
        }
    }

    /// Evaluates a path, failing with `States.Runtime` (as Step Functions does) when a
    /// definite path matches nothing. `field` names the field that holds the path.
    pub(crate) fn resolve_required(
        &self,
        path: &DataPath,
        field: &str,
    ) -> Result<Value, StateError> {
        self.resolve(path)
            .ok_or_else(|| self.missing_path_error(path, field))
    }

    pub(crate) fn missing_path_error(&self, path: &DataPath, field: &str) -> StateError {
        let document = match path.source {
            PathSource::Data => format!("the input '{}'", quote_value(self.input)),
            PathSource::Context => "the context object".to_string(),
        };
        StateError::runtime(format!(
            "{} The JSONPath '{}' specified for the field '{field}' could not be found in {document}",
            self.error_prefix(),
            path.text(),
        ))
    }

    /// The opening of a runtime error's cause, as Step Functions words it.
    pub(crate) fn error_prefix(&self) -> String {
        state_error_prefix(self.state_name(), self.entered_event)
    }

    /// Draws from the execution's seeded generator.
    pub(crate) fn with_random<T>(&self, draw: impl FnOnce(&mut SplitMix64) -> T) -> T {
        match self.random.lock() {
            Ok(mut generator) => draw(&mut generator),
            Err(poisoned) => draw(&mut poisoned.into_inner()),
        }
    }
}

pub(crate) fn state_error_prefix(state: &str, entered_event: usize) -> String {
    format!(
        "An error occurred while executing the state '{state}' (entered at the event id #{entered_event})."
    )
}

/// A value as JSON text for an error's cause, cut after about a kibibyte.
pub(crate) fn quote_value(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > QUOTED_INPUT_LIMIT {
        let mut cut = QUOTED_INPUT_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}
