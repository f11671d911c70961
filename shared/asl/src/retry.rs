//! Retriers and catchers: which errors they match and how long a retrier waits.

use std::time::Duration;

use crate::error::{is_terminal_error, names};
use crate::model::ResultPath;
use crate::random::SplitMix64;

/// `JitterStrategy`: `FULL` waits a random time between 0 and the computed delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Jitter {
    None,
    Full,
}

/// One entry of a `Retry` array.
#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub(crate) error_equals: Vec<String>,
    pub(crate) interval_seconds: u64,
    pub(crate) max_attempts: u64,
    pub(crate) backoff_rate: f64,
    pub(crate) max_delay_seconds: Option<u64>,
    pub(crate) jitter: Jitter,
}

/// One entry of a `Catch` array.
#[derive(Debug, Clone)]
pub(crate) struct Catcher {
    pub(crate) error_equals: Vec<String>,
    pub(crate) next: String,
    /// Where the error output goes over the state's input (`$` when absent).
    pub(crate) result_path: ResultPath,
}

/// True when `error` matches one of `patterns`. `States.ALL` matches every error and
/// `States.TaskFailed` every error but `States.Timeout`; neither, and no exact name either,
/// matches the terminal errors `States.Runtime` and `States.DataLimitExceeded`.
pub(crate) fn error_matches(patterns: &[String], error: &str) -> bool {
    if is_terminal_error(error) {
        return false;
    }
    patterns.iter().any(|pattern| {
        pattern == error
            || pattern == names::ALL
            || (pattern == names::TASK_FAILED && error != names::TIMEOUT)
    })
}

impl Retrier {
    /// The wait before retry number `retries_done + 1` of this retrier:
    /// `IntervalSeconds × BackoffRate^retries_done`, capped at `MaxDelaySeconds`, and with
    /// `FULL` jitter a uniform draw between 0 and that.
    pub(crate) fn delay(&self, retries_done: u64, generator: &mut SplitMix64) -> Duration {
        let exponent = i32::try_from(retries_done).unwrap_or(i32::MAX);
        let mut seconds = self.interval_seconds as f64 * self.backoff_rate.powi(exponent);
        if let Some(maximum) = self.max_delay_seconds {
            seconds = seconds.min(maximum as f64);
        }
        // Nothing in Step Functions waits longer than a year; this also keeps the value finite.
        seconds = seconds.clamp(0.0, 31_622_400.0);
        if self.jitter == Jitter::Full {
            seconds *= generator.next_unit();
        }
        Duration::from_millis((seconds * 1000.0).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrier(interval: u64, rate: f64, max_delay: Option<u64>, jitter: Jitter) -> Retrier {
        Retrier {
            error_equals: vec![names::ALL.to_string()],
            interval_seconds: interval,
            max_attempts: 5,
            backoff_rate: rate,
            max_delay_seconds: max_delay,
            jitter,
        }
    }

    #[test]
    fn backoff_and_cap() {
        let mut generator = SplitMix64::new(0);
        let plain = retrier(3, 1.5, None, Jitter::None);
        assert_eq!(plain.delay(0, &mut generator), Duration::from_secs(3));
        assert_eq!(plain.delay(1, &mut generator), Duration::from_millis(4500));
        let capped = retrier(2, 2.0, Some(5), Jitter::None);
        assert_eq!(capped.delay(3, &mut generator), Duration::from_secs(5));
        let jittered = retrier(10, 2.0, None, Jitter::Full);
        for retries in 0..4 {
            assert!(jittered.delay(retries, &mut generator) <= Duration::from_secs(10 << retries));
        }
    }

    #[test]
    fn matching_rules() {
        let all = vec![names::ALL.to_string()];
        let task_failed = vec![names::TASK_FAILED.to_string()];
        assert!(error_matches(&all, "Custom"));
        assert!(error_matches(&all, names::TIMEOUT));
        assert!(!error_matches(&all, names::RUNTIME));
        assert!(!error_matches(&all, names::DATA_LIMIT_EXCEEDED));
        assert!(!error_matches(
            &[names::DATA_LIMIT_EXCEEDED.to_string()],
            names::DATA_LIMIT_EXCEEDED
        ));
        assert!(error_matches(&task_failed, "Custom"));
        assert!(!error_matches(&task_failed, names::TIMEOUT));
        assert!(error_matches(&["A".to_string(), "B".to_string()], "B"));
        assert!(!error_matches(&["A".to_string()], "B"));
    }
}
