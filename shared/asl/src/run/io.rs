//! Input and output processing: `InputPath`, `Parameters`, `ResultSelector`, `ResultPath`
//! and `OutputPath`, in the order Step Functions applies them.

use serde_json::{Map, Value};
use std::borrow::Cow;

use super::{Frame, Runner};
use crate::context::{Environment, quote_value, state_error_prefix};
use crate::error::{StateError, names};
use crate::model::{Filter, Filters, ResultHandling, ResultPath};
use crate::path::{QueryPath, set_at_reference};
use crate::template::Template;

impl Runner<'_> {
    /// The state's effective input: `InputPath`, then `Parameters` (or `ItemSelector`).
    /// Borrowed from the raw input when it is the whole of it (`$` and no `Parameters`): the
    /// state keeps its input for a retry or a catcher, so a copy would be made for nothing.
    pub(crate) fn effective_input<'v>(
        &self,
        frame: &Frame<'_>,
        filters: &Filters,
        parameters: Option<&Template>,
        raw_input: &'v Value,
        retry_count: u32,
    ) -> Result<Cow<'v, Value>, StateError> {
        let selected = select_filter(frame, &filters.input_path, raw_input, "InputPath")?;
        match parameters {
            None => Ok(selected),
            Some(template) => {
                let view = self.context_view(frame, retry_count);
                let environment =
                    Environment::new(&selected, &view, &self.random, frame.entered_event);
                template.evaluate(&environment).map(Cow::Owned)
            }
        }
    }

    /// The state's output from its result: `ResultSelector`, `ResultPath` over the raw
    /// input, then `OutputPath`.
    pub(crate) fn finish(
        &self,
        frame: &Frame<'_>,
        results: &ResultHandling,
        filters: &Filters,
        raw_input: &Value,
        result: Value,
        retry_count: u32,
    ) -> Result<Value, StateError> {
        let selected = match &results.result_selector {
            None => result,
            Some(template) => {
                let view = self.context_view(frame, retry_count);
                let environment =
                    Environment::new(&result, &view, &self.random, frame.entered_event);
                template.evaluate(&environment)?
            }
        };
        let combined = apply_result_path(&results.result_path, Cow::Borrowed(raw_input), selected)?;
        apply_filter(frame, &filters.output_path, combined, "OutputPath")
    }
}

/// Applies `InputPath` or `OutputPath`: `null` gives `{}`; a path that matches nothing is a
/// `States.Runtime` error.
pub(crate) fn apply_filter(
    frame: &Frame<'_>,
    filter: &Filter,
    value: Value,
    field: &str,
) -> Result<Value, StateError> {
    match filter {
        Filter::Null => Ok(Value::Object(Map::new())),
        Filter::Path(path) if path.is_root() => Ok(value),
        Filter::Path(path) => path
            .select_owned(value)
            .ok_or_else(|| no_results(frame, path, field)),
    }
}

/// [`apply_filter`] on a borrowed value: the value itself for `$`, else what is selected.
fn select_filter<'v>(
    frame: &Frame<'_>,
    filter: &Filter,
    value: &'v Value,
    field: &str,
) -> Result<Cow<'v, Value>, StateError> {
    match filter {
        Filter::Null => Ok(Cow::Owned(Value::Object(Map::new()))),
        Filter::Path(path) if path.is_root() => Ok(Cow::Borrowed(value)),
        Filter::Path(path) => path
            .select(value)
            .map(Cow::Owned)
            .ok_or_else(|| no_results(frame, path, field)),
    }
}

fn no_results(frame: &Frame<'_>, path: &QueryPath, field: &str) -> StateError {
    StateError::runtime(format!(
        "{} Invalid path '{}' : No results for path: {} (the path of the field '{field}')",
        state_error_prefix(&frame.state.name, frame.entered_event),
        path.text(),
        path.text()
    ))
}

/// Applies a `ResultPath` (of a state or of a catcher): `null` keeps the input, `$` takes
/// the result, any other reference path sets the result inside the input. A borrowed input
/// is copied only when the output keeps it: `$` throws it away.
pub(crate) fn apply_result_path(
    result_path: &ResultPath,
    input: Cow<'_, Value>,
    result: Value,
) -> Result<Value, StateError> {
    match result_path {
        ResultPath::Discard => Ok(input.into_owned()),
        ResultPath::At(steps, _) if steps.is_empty() => Ok(result),
        ResultPath::At(steps, text) => {
            let mut input = input.into_owned();
            match set_at_reference(&mut input, steps, result) {
                Ok(()) => Ok(input),
                Err(reason) => Err(StateError::new(
                    names::RESULT_PATH_MATCH_FAILURE,
                    format!(
                        "Unable to apply ResultPath \"{text}\" to input \"{}\": {reason}",
                        quote_value(&input)
                    ),
                )),
            }
        }
    }
}
