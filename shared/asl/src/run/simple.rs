//! The states that call nothing: Pass, Choice, Wait, Succeed and Fail.

use chrono::Utc;
use serde_json::Value;
use std::borrow::Cow;
use std::time::Duration;

use super::io::{apply_filter, apply_result_path};
use super::{Frame, Outcome, Runner};
use crate::choice::{self, parse_timestamp};
use crate::context::{Environment, quote_value};
use crate::error::{StateError, names};
use crate::history::HistoryEvent;
use crate::limits::PayloadKind;
use crate::model::MAXIMUM_SECONDS;
use crate::model::{
    ChoiceState, FailState, FailText, Filters, PassState, Seconds, WaitFor, WaitState,
};
use crate::path::DataPath;

impl Runner<'_> {
    pub(crate) fn run_pass(
        &self,
        frame: &Frame<'_>,
        pass: &PassState,
        input: Value,
    ) -> Result<Outcome, StateError> {
        let effective =
            self.effective_input(frame, &pass.filters, pass.parameters.as_ref(), &input, 0)?;
        if pass.parameters.is_some() {
            self.check_size(frame.state, PayloadKind::EffectiveInput, &effective)?;
        }
        let result = match &pass.result {
            Some(result) => result.clone(),
            None => effective.into_owned(),
        };
        self.check_size(frame.state, PayloadKind::Result, &result)?;
        let combined = apply_result_path(&pass.result_path, Cow::Owned(input), result)?;
        apply_filter(frame, &pass.filters.output_path, combined, "OutputPath").map(Outcome::Done)
    }

    pub(crate) fn run_choice(
        &self,
        frame: &Frame<'_>,
        state: &ChoiceState,
        input: Value,
    ) -> Result<Outcome, StateError> {
        let effective = apply_filter(frame, &state.filters.input_path, input, "InputPath")?;
        let matched = {
            let view = self.context_view(frame, 0);
            let environment =
                Environment::new(&effective, &view, &self.random, frame.entered_event);
            choice::choose(&state.rules, &environment)?.map(str::to_string)
        };
        let Some(next) = matched.or_else(|| state.default.clone()) else {
            return Err(StateError::new(
                names::NO_CHOICE_MATCHED,
                format!(
                    "No Choice rule of the state '{}' matched the input '{}', and the state has no Default.",
                    frame.state.name,
                    quote_value(&effective)
                ),
            ));
        };
        let output = apply_filter(frame, &state.filters.output_path, effective, "OutputPath")?;
        Ok(Outcome::GoTo(next, output))
    }

    pub(crate) async fn run_wait(
        &self,
        frame: &Frame<'_>,
        state: &WaitState,
        input: Value,
    ) -> Result<Outcome, StateError> {
        let effective = apply_filter(frame, &state.filters.input_path, input, "InputPath")?;
        let duration = self.wait_duration(frame, &state.wait, &effective)?;
        self.record(HistoryEvent::WaitStarted {
            state: frame.state.path.clone(),
            duration,
        });
        self.options.sleeper.sleep(duration).await;
        apply_filter(frame, &state.filters.output_path, effective, "OutputPath").map(Outcome::Done)
    }

    fn wait_duration(
        &self,
        frame: &Frame<'_>,
        wait: &WaitFor,
        input: &Value,
    ) -> Result<Duration, StateError> {
        let timestamp = match wait {
            WaitFor::Seconds(seconds) => {
                return self
                    .resolve_seconds(frame, seconds, input, "SecondsPath")
                    .map(Duration::from_secs);
            }
            WaitFor::Timestamp(timestamp) => *timestamp,
            WaitFor::TimestampPath(path) => {
                let value = self.resolve_path(frame, path, input, "TimestampPath")?;
                value.as_str().and_then(parse_timestamp).ok_or_else(|| {
                    StateError::runtime(format!(
                        "The TimestampPath '{}' of the state '{}' must point to a timestamp such as \
                         2024-01-31T12:00:00Z, but it points to {}",
                        path.text(),
                        frame.state.name,
                        quote_value(&value)
                    ))
                })?
            }
        };
        let remaining = timestamp.with_timezone(&Utc) - (self.options.now)();
        Ok(remaining.to_std().unwrap_or(Duration::ZERO))
    }

    /// A number of seconds, fixed or read through a reference path from `input`.
    pub(crate) fn resolve_seconds(
        &self,
        frame: &Frame<'_>,
        seconds: &Seconds,
        input: &Value,
        field: &str,
    ) -> Result<u64, StateError> {
        match seconds {
            Seconds::Fixed(fixed) => Ok(*fixed),
            Seconds::FromPath(path) => {
                let seconds = self.resolve_count(frame, path, input, field)?;
                if seconds > MAXIMUM_SECONDS {
                    return Err(StateError::runtime(format!(
                        "The {field} '{}' of the state '{}' gives {seconds} seconds, more than the \
                         {MAXIMUM_SECONDS} Step Functions allows",
                        path.text(),
                        frame.state.name
                    )));
                }
                Ok(seconds)
            }
        }
    }

    /// A non-negative integer read through a reference path from `input`.
    pub(crate) fn resolve_count(
        &self,
        frame: &Frame<'_>,
        path: &DataPath,
        input: &Value,
        field: &str,
    ) -> Result<u64, StateError> {
        let value = self.resolve_path(frame, path, input, field)?;
        value.as_u64().ok_or_else(|| {
            StateError::runtime(format!(
                "The {field} '{}' of the state '{}' must point to a non-negative integer, but it points to {}",
                path.text(),
                frame.state.name,
                quote_value(&value)
            ))
        })
    }

    pub(crate) fn resolve_path(
        &self,
        frame: &Frame<'_>,
        path: &DataPath,
        input: &Value,
        field: &str,
    ) -> Result<Value, StateError> {
        let view = self.context_view(frame, 0);
        let environment = Environment::new(input, &view, &self.random, frame.entered_event);
        environment.resolve_required(path, field)
    }

    pub(crate) fn run_succeed(
        &self,
        frame: &Frame<'_>,
        filters: &Filters,
        input: Value,
    ) -> Result<Outcome, StateError> {
        let effective = apply_filter(frame, &filters.input_path, input, "InputPath")?;
        apply_filter(frame, &filters.output_path, effective, "OutputPath").map(Outcome::Done)
    }

    /// The error a Fail state raises (a missing `Error` or `Cause` is an empty string).
    pub(crate) fn run_fail(
        &self,
        frame: &Frame<'_>,
        state: &FailState,
        input: &Value,
    ) -> StateError {
        let view = self.context_view(frame, 0);
        let environment = Environment::new(input, &view, &self.random, frame.entered_event);
        let text = |part: &Option<FailText>| -> Result<String, StateError> {
            match part {
                None => Ok(String::new()),
                Some(FailText::Literal(text)) => Ok(text.clone()),
                Some(FailText::Dynamic { field, source }) => {
                    match source.evaluate(&environment, field)? {
                        Value::String(text) => Ok(text),
                        other => Err(StateError::runtime(format!(
                            "{} The {field} of the Fail state must give a string, but it gave {}",
                            environment.error_prefix(),
                            quote_value(&other)
                        ))),
                    }
                }
            }
        };
        let error = match text(&state.error) {
            Ok(error) => error,
            Err(failure) => return failure,
        };
        match text(&state.cause) {
            Ok(cause) => StateError { error, cause },
            Err(failure) => failure,
        }
    }
}
