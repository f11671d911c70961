//! `Retry` and `Catch` around the states that have them (Task, Parallel, Map).

use serde_json::json;
use std::borrow::Cow;
use std::collections::HashMap;

use super::io::apply_result_path;
use super::{Frame, Outcome, Runner, StateInput};
use crate::error::{Failure, StateError};
use crate::history::HistoryEvent;
use crate::model::{ResultHandling, StateKind};
use crate::retry::error_matches;

/// What one retrier has done for the current state.
#[derive(Default)]
struct RetrierCount {
    /// Retries made by this retrier, whatever the error: the exponent of its backoff.
    total: u64,
    /// Retries made by this retrier for each error name, checked against `MaxAttempts`.
    per_error: HashMap<String, u64>,
}

impl Runner<'_> {
    /// Runs the state, retrying it while the first retrier that matches its error has
    /// attempts left, then handing the error to the first catcher that matches. Terminal
    /// errors skip both.
    ///
    /// As the AWS guide's "complex retry scenarios" example shows, a retrier's backoff grows
    /// with every retry it made for the state, while its `MaxAttempts` is counted per error
    /// name: errors A, B, C, B, B against `[A, B]` (2 attempts, 1 s, rate 2) and `[C]` (5 s)
    /// wait 1, 2, 5 and 4 seconds, and the fifth error is not retried.
    pub(crate) async fn run_recoverable(
        &self,
        frame: &Frame<'_>,
        results: &ResultHandling,
        input: StateInput,
    ) -> Result<Outcome, Failure> {
        let state = frame.state;
        let mut counts: Vec<RetrierCount> = results
            .retriers
            .iter()
            .map(|_| RetrierCount::default())
            .collect();
        let mut retry_count: u32 = 0;
        loop {
            let attempt = match &state.kind {
                StateKind::Task(task) => self.task_attempt(frame, task, &input, retry_count).await,
                StateKind::Parallel(parallel) => {
                    self.parallel_attempt(frame, parallel, &input, retry_count)
                        .await
                }
                StateKind::Map(map) => self.map_attempt(frame, map, &input, retry_count).await,
                _ => Err(Failure::in_state(
                    &state.path,
                    StateError::runtime("Only Task, Parallel and Map states can retry and catch."),
                )),
            };
            let failure = match attempt {
                Ok(output) => return Ok(Outcome::Done(output)),
                Err(failure) => failure,
            };
            if failure.error.is_terminal() {
                return Err(failure);
            }
            let error_name = failure.error.error.as_str();
            let matching_retrier = results
                .retriers
                .iter()
                .zip(counts.iter_mut())
                .find(|(retrier, _)| error_matches(&retrier.error_equals, error_name));
            if let Some((retrier, count)) = matching_retrier {
                let retries_of_error = count.per_error.entry(error_name.to_string()).or_insert(0);
                if *retries_of_error < retrier.max_attempts {
                    *retries_of_error += 1;
                    let delay = self.with_random(|generator| retrier.delay(count.total, generator));
                    count.total += 1;
                    retry_count = retry_count.saturating_add(1);
                    self.record(HistoryEvent::RetryScheduled {
                        state: state.path.clone(),
                        error: error_name.to_string(),
                        attempt: count.total,
                        delay,
                    });
                    self.options.sleeper.sleep(delay).await;
                    continue;
                }
            }
            let Some(catcher) = results
                .catchers
                .iter()
                .find(|catcher| error_matches(&catcher.error_equals, error_name))
            else {
                return Err(failure);
            };
            let error_output = json!({"Error": failure.error.error, "Cause": failure.error.cause});
            let output =
                apply_result_path(&catcher.result_path, Cow::Borrowed(&input), error_output)
                    .map_err(|error| Failure::in_state(&state.path, error))?;
            self.record(HistoryEvent::Caught {
                state: state.path.clone(),
                error: failure.error.error.clone(),
                next: catcher.next.clone(),
            });
            return Ok(Outcome::GoTo(catcher.next.clone(), output));
        }
    }
}
