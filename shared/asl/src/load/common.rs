//! Fields that several state types share: `InputPath`, `OutputPath`, `ResultPath`, payload
//! templates, `Next`/`End`, and the paths that must be reference paths.

use serde_json::Value;

use super::fields::Fields;
use crate::error::LoadError;
use crate::model::{Filter, Filters, ResultPath, Seconds, Transition};
use crate::path::{DataPath, QueryPath};
use crate::template::Template;

pub(crate) use crate::model::MAXIMUM_SECONDS;

/// `InputPath` and `OutputPath`; absent means `$`.
pub(crate) fn filters(fields: &Fields<'_>) -> Result<Filters, LoadError> {
    Ok(Filters {
        input_path: filter(fields, "InputPath")?,
        output_path: filter(fields, "OutputPath")?,
    })
}

fn filter(fields: &Fields<'_>, field: &str) -> Result<Filter, LoadError> {
    match fields.get(field) {
        None => Ok(Filter::Path(QueryPath::root())),
        Some(Value::Null) => Ok(Filter::Null),
        Some(Value::String(text)) => QueryPath::parse(text)
            .map(Filter::Path)
            .map_err(|message| fields.error(field, message)),
        Some(_) => Err(fields.error(field, "must be a path or null")),
    }
}

/// `ResultPath` (or a catcher's): a reference path, or `null`; absent means `$`.
pub(crate) fn result_path(fields: &Fields<'_>, field: &str) -> Result<ResultPath, LoadError> {
    match fields.get(field) {
        None => Ok(ResultPath::At(Vec::new(), "$".to_string())),
        Some(Value::Null) => Ok(ResultPath::Discard),
        Some(Value::String(text)) => {
            let path = QueryPath::parse(text).map_err(|message| fields.error(field, message))?;
            let steps = path.reference_steps().ok_or_else(|| {
                fields.error(
                    field,
                    format!(
                        "'{text}' is not a reference path: only names and non-negative indexes \
                         are allowed (no wildcards, filters, slices, unions or '..')"
                    ),
                )
            })?;
            Ok(ResultPath::At(steps.to_vec(), text.clone()))
        }
        Some(_) => Err(fields.error(field, "must be a reference path or null")),
    }
}

/// A payload template (`Parameters`, `ItemSelector`, `ResultSelector`), if present.
pub(crate) fn template(fields: &Fields<'_>, field: &str) -> Result<Option<Template>, LoadError> {
    let Some(value) = fields.get(field) else {
        return Ok(None);
    };
    Template::compile(value, &fields.name(field))
        .map(Some)
        .map_err(|(inner_field, message)| LoadError::new(fields.state(), inner_field, message))
}

/// `Next` or `End: true`, exactly one.
pub(crate) fn transition(fields: &Fields<'_>) -> Result<Transition, LoadError> {
    let next = fields.string("Next")?;
    let end = fields.boolean("End")?.unwrap_or(false);
    match (next, end) {
        (Some(_), true) => Err(fields.error("End", "cannot be given together with Next")),
        (Some(next), false) => Ok(Transition::Next(next.to_string())),
        (None, true) => Ok(Transition::End),
        (None, false) => {
            Err(fields.error("Next", "is required (or End: true for a terminal state)"))
        }
    }
}

/// A path field that must be a reference path (to a single value), such as `SecondsPath`.
pub(crate) fn reference_path(
    fields: &Fields<'_>,
    field: &str,
) -> Result<Option<DataPath>, LoadError> {
    let Some(text) = fields.string(field)? else {
        return Ok(None);
    };
    let path = DataPath::parse(text).map_err(|message| fields.error(field, message))?;
    if path.query.reference_steps().is_none() {
        return Err(fields.error(field, format!("'{text}' is not a reference path")));
    }
    Ok(Some(path))
}

/// A number of seconds: a fixed positive integer, or a reference path (`...Path`).
pub(crate) fn seconds(
    fields: &Fields<'_>,
    field: &str,
    minimum: u64,
) -> Result<Option<Seconds>, LoadError> {
    let path_field = format!("{field}Path");
    fields.exclusive(field, &path_field)?;
    if let Some(fixed) = fields.integer(field, minimum, MAXIMUM_SECONDS)? {
        return Ok(Some(Seconds::Fixed(fixed)));
    }
    Ok(reference_path(fields, &path_field)?.map(Seconds::FromPath))
}
