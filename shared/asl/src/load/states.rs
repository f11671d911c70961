//! One state of a definition: its type, then the fields that type allows, checked.

use serde_json::Value;

use super::fields::Fields;
use super::{Loader, choice, common, nested, recovery};
use crate::error::LoadError;
use crate::model::{
    FailState, FailText, PassState, ResultHandling, Seconds, State, StateKind, TaskState, WaitFor,
    WaitState,
};
use crate::template::ValueSource;

const STATE_TYPES: &str = "Pass, Task, Choice, Wait, Succeed, Fail, Parallel or Map";

/// Reads the state `name` (whose full path is `path`) from `value`.
pub(crate) fn state(
    loader: &mut Loader,
    name: &str,
    path: &str,
    value: &Value,
) -> Result<State, LoadError> {
    let fields = Fields::of(Some(path), "", value)?;
    let type_name = fields.required_string("Type")?;
    fields.string("Comment")?;
    match fields.string("QueryLanguage")? {
        None | Some("JSONPath") => {}
        Some("JSONata") => {
            return Err(fields.error(
                "QueryLanguage",
                "JSONata is not supported locally: only the JSONPath query language runs",
            ));
        }
        Some(other) => {
            return Err(fields.error("QueryLanguage", format!("must be JSONPath, not '{other}'")));
        }
    }
    let kind = match type_name {
        "Pass" => StateKind::Pass(pass(&fields)?),
        "Task" => StateKind::Task(task(&fields)?),
        "Choice" => StateKind::Choice(choice::choice_state(&fields)?),
        "Wait" => StateKind::Wait(wait(&fields)?),
        "Succeed" => {
            fields.allow_only(
                &[
                    "Type",
                    "Comment",
                    "QueryLanguage",
                    "InputPath",
                    "OutputPath",
                ],
                "a Succeed state",
            )?;
            StateKind::Succeed(common::filters(&fields)?)
        }
        "Fail" => StateKind::Fail(fail(&fields)?),
        "Parallel" => StateKind::Parallel(nested::parallel(loader, &fields, path)?),
        "Map" => StateKind::Map(nested::map(loader, &fields, path)?),
        other => {
            return Err(fields.error(
                "Type",
                format!("'{other}' is not a state type: expected {STATE_TYPES}"),
            ));
        }
    };
    Ok(State {
        name: name.to_string(),
        path: path.to_string(),
        kind,
    })
}

fn pass(fields: &Fields<'_>) -> Result<PassState, LoadError> {
    fields.allow_only(
        &[
            "Type",
            "Comment",
            "QueryLanguage",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Parameters",
            "Result",
            "ResultPath",
        ],
        "a Pass state",
    )?;
    Ok(PassState {
        filters: common::filters(fields)?,
        parameters: common::template(fields, "Parameters")?,
        result: fields.get("Result").cloned(),
        result_path: common::result_path(fields, "ResultPath")?,
        transition: common::transition(fields)?,
    })
}

/// `ResultSelector`, `ResultPath`, `Retry` and `Catch`, shared by Task, Parallel and Map.
pub(crate) fn result_handling(fields: &Fields<'_>) -> Result<ResultHandling, LoadError> {
    Ok(ResultHandling {
        result_selector: common::template(fields, "ResultSelector")?,
        result_path: common::result_path(fields, "ResultPath")?,
        retriers: recovery::retriers(fields)?,
        catchers: recovery::catchers(fields)?,
    })
}

/// Reads a Task state. `HeartbeatSeconds` and `HeartbeatSecondsPath` are checked and then
/// ignored: a task handler runs in-process and sends no heartbeats.
fn task(fields: &Fields<'_>) -> Result<TaskState, LoadError> {
    fields.allow_only(
        &[
            "Type",
            "Comment",
            "QueryLanguage",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
        ],
        "a Task state",
    )?;
    let resource = fields.required_string("Resource")?;
    if resource.is_empty() {
        return Err(fields.error("Resource", "must not be empty"));
    }
    let timeout = common::seconds(fields, "TimeoutSeconds", 1)?;
    let heartbeat = common::seconds(fields, "HeartbeatSeconds", 1)?;
    if let (Some(Seconds::Fixed(timeout)), Some(Seconds::Fixed(heartbeat))) = (&timeout, &heartbeat)
        && heartbeat >= timeout
    {
        return Err(fields.error("HeartbeatSeconds", "must be smaller than TimeoutSeconds"));
    }
    Ok(TaskState {
        filters: common::filters(fields)?,
        resource: resource.to_string(),
        parameters: common::template(fields, "Parameters")?,
        results: result_handling(fields)?,
        timeout,
        transition: common::transition(fields)?,
    })
}

fn wait(fields: &Fields<'_>) -> Result<WaitState, LoadError> {
    fields.allow_only(
        &[
            "Type",
            "Comment",
            "QueryLanguage",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
        ],
        "a Wait state",
    )?;
    let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
        .into_iter()
        .filter(|field| fields.has(field))
        .collect();
    let wait = match given.as_slice() {
        ["Seconds" | "SecondsPath"] => match common::seconds(fields, "Seconds", 0)? {
            Some(seconds) => WaitFor::Seconds(seconds),
            None => return Err(fields.error("Seconds", "is required")),
        },
        ["Timestamp"] => {
            let text = fields.required_string("Timestamp")?;
            let timestamp = crate::choice::parse_timestamp(text).ok_or_else(|| {
                fields.error(
                    "Timestamp",
                    format!("'{text}' is not a timestamp such as 2024-01-31T12:00:00Z"),
                )
            })?;
            WaitFor::Timestamp(timestamp)
        }
        ["TimestampPath"] => match common::reference_path(fields, "TimestampPath")? {
            Some(path) => WaitFor::TimestampPath(path),
            None => return Err(fields.error("TimestampPath", "is required")),
        },
        [] => {
            return Err(fields.error(
                "Seconds",
                "one of Seconds, SecondsPath, Timestamp or TimestampPath is required",
            ));
        }
        [first, second, ..] => {
            return Err(fields.error(second, format!("cannot be given together with {first}")));
        }
        [other] => return Err(fields.error(other, "is not a wait field")),
    };
    Ok(WaitState {
        filters: common::filters(fields)?,
        wait,
        transition: common::transition(fields)?,
    })
}

fn fail(fields: &Fields<'_>) -> Result<FailState, LoadError> {
    fields.allow_only(
        &[
            "Type",
            "Comment",
            "QueryLanguage",
            "Error",
            "ErrorPath",
            "Cause",
            "CausePath",
        ],
        "a Fail state",
    )?;
    Ok(FailState {
        error: fail_text(fields, "Error", "ErrorPath")?,
        cause: fail_text(fields, "Cause", "CausePath")?,
    })
}

fn fail_text(
    fields: &Fields<'_>,
    field: &str,
    path_field: &'static str,
) -> Result<Option<FailText>, LoadError> {
    fields.exclusive(field, path_field)?;
    if let Some(text) = fields.string(field)? {
        return Ok(Some(FailText::Literal(text.to_string())));
    }
    let Some(text) = fields.string(path_field)? else {
        return Ok(None);
    };
    let source = ValueSource::parse(text).map_err(|message| fields.error(path_field, message))?;
    Ok(Some(FailText::Dynamic {
        field: path_field,
        source,
    }))
}
