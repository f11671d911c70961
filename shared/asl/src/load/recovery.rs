//! `Retry` and `Catch` arrays.

use super::common;
use super::fields::Fields;
use crate::error::{LoadError, names};
use crate::retry::{Catcher, Jitter, Retrier};

/// The longest `MaxDelaySeconds` Step Functions accepts (a year and a day).
const MAXIMUM_DELAY_SECONDS: u64 = 31_622_400;

pub(crate) fn retriers(fields: &Fields<'_>) -> Result<Vec<Retrier>, LoadError> {
    let Some(items) = fields.array("Retry")? else {
        return Ok(Vec::new());
    };
    let mut retriers = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        let retrier = Fields::of(
            fields.state(),
            &fields.name(&format!("Retry[{position}]")),
            item,
        )?;
        retrier.allow_only(
            &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ],
            "a retrier",
        )?;
        let error_equals = error_equals(&retrier, position + 1 == items.len(), "retrier")?;
        let backoff_rate = retrier.number("BackoffRate")?.unwrap_or(2.0);
        if !(backoff_rate >= 1.0 && backoff_rate.is_finite()) {
            return Err(retrier.error(
                "BackoffRate",
                "must be a number greater than or equal to 1.0",
            ));
        }
        let jitter = match retrier.string("JitterStrategy")? {
            None | Some("NONE") => Jitter::None,
            Some("FULL") => Jitter::Full,
            Some(other) => {
                return Err(retrier.error(
                    "JitterStrategy",
                    format!("must be FULL or NONE, not '{other}'"),
                ));
            }
        };
        retriers.push(Retrier {
            error_equals,
            interval_seconds: retrier
                .integer("IntervalSeconds", 1, common::MAXIMUM_SECONDS)?
                .unwrap_or(1),
            max_attempts: retrier
                .integer("MaxAttempts", 0, common::MAXIMUM_SECONDS)?
                .unwrap_or(3),
            backoff_rate,
            max_delay_seconds: retrier.integer("MaxDelaySeconds", 1, MAXIMUM_DELAY_SECONDS)?,
            jitter,
        });
    }
    Ok(retriers)
}

pub(crate) fn catchers(fields: &Fields<'_>) -> Result<Vec<Catcher>, LoadError> {
    let Some(items) = fields.array("Catch")? else {
        return Ok(Vec::new());
    };
    let mut catchers = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        let catcher = Fields::of(
            fields.state(),
            &fields.name(&format!("Catch[{position}]")),
            item,
        )?;
        catcher.allow_only(
            &["ErrorEquals", "Next", "ResultPath", "Comment"],
            "a catcher",
        )?;
        catchers.push(Catcher {
            error_equals: error_equals(&catcher, position + 1 == items.len(), "catcher")?,
            next: catcher.required_string("Next")?.to_string(),
            result_path: common::result_path(&catcher, "ResultPath")?,
        });
    }
    Ok(catchers)
}

/// `ErrorEquals`: non-empty; `States.ALL` alone in its list and only in the last entry.
fn error_equals(fields: &Fields<'_>, is_last: bool, owner: &str) -> Result<Vec<String>, LoadError> {
    let names = fields.string_list("ErrorEquals")?;
    if names.iter().any(|name| name == names::ALL) {
        if names.len() > 1 {
            return Err(fields.error(
                "ErrorEquals",
                "States.ALL must appear alone in its ErrorEquals list",
            ));
        }
        if !is_last {
            return Err(fields.error(
                "ErrorEquals",
                format!("States.ALL must appear only in the last {owner}"),
            ));
        }
    }
    Ok(names)
}
