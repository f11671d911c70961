//! Parallel and inline Map: run branches or iterations concurrently and gather their
//! outputs in order; the first failure (in order) fails the state with its own error.

use futures_util::future::try_join_all;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;

use super::io::apply_filter;
use super::{Frame, Runner, StateInput};
use crate::context::{Environment, quote_value};
use crate::error::{Failure, StateError};
use crate::history::HistoryEvent;
use crate::limits::PayloadKind;
use crate::model::{Concurrency, MapState, ParallelState};

impl Runner<'_> {
    pub(crate) async fn parallel_attempt(
        &self,
        frame: &Frame<'_>,
        parallel: &ParallelState,
        input: &Value,
        retry_count: u32,
    ) -> Result<Value, Failure> {
        let state = frame.state;
        let in_state = |error: StateError| Failure::in_state(&state.path, error);
        let effective = self
            .effective_input(
                frame,
                &parallel.filters,
                parallel.parameters.as_ref(),
                input,
                retry_count,
            )
            .map_err(in_state)?;
        let effective_bytes = self
            .check_effective_size(
                frame,
                &parallel.filters,
                parallel.parameters.as_ref(),
                &effective,
            )
            .map_err(in_state)?;
        let beside_others = frame.beside_others || parallel.branches.len() > 1;
        let branches = parallel.branches.iter().map(|branch| {
            self.run_scope(
                branch,
                StateInput::Owned(Value::clone(&effective)),
                Some(effective_bytes),
                beside_others,
            )
        });
        let result = Value::Array(try_join_all(branches).await?);
        self.check_size(state, PayloadKind::Result, &result)
            .map_err(in_state)?;
        self.finish(
            frame,
            &parallel.results,
            &parallel.filters,
            input,
            result,
            retry_count,
        )
        .map_err(in_state)
    }

    pub(crate) async fn map_attempt(
        &self,
        frame: &Frame<'_>,
        map: &MapState,
        input: &Value,
        retry_count: u32,
    ) -> Result<Value, Failure> {
        let state = frame.state;
        let in_state = |error: StateError| Failure::in_state(&state.path, error);
        let effective = apply_filter(frame, &map.filters.input_path, input.clone(), "InputPath")
            .map_err(in_state)?;
        let items = match &map.items_path {
            None => effective.clone(),
            Some(path) => self
                .resolve_path(frame, path, &effective, "ItemsPath")
                .map_err(in_state)?,
        };
        let Value::Array(items) = items else {
            return Err(in_state(StateError::runtime(format!(
                "The Map state '{}' needs an array of items, but its ItemsPath gives {}",
                state.name,
                quote_value(&items)
            ))));
        };
        let maximum = match &map.concurrency {
            Concurrency::Fixed(maximum) => *maximum,
            Concurrency::FromPath(path) => self
                .resolve_count(frame, path, &effective, "MaxConcurrencyPath")
                .map_err(in_state)?,
        };
        let limit = match usize::try_from(maximum) {
            Ok(0) | Err(_) => items.len().max(1),
            Ok(limit) => limit,
        };
        let effective = &effective;
        let beside_others = frame.beside_others || (limit > 1 && items.len() > 1);
        let iterations =
            stream::iter(items.into_iter().enumerate()).map(|(index, item)| async move {
                let (iteration_input, input_bytes) = self
                    .iteration_input(frame, map, effective, index, &item, retry_count)
                    .map_err(|error| Failure::in_state(&state.path, error))?;
                self.record(HistoryEvent::MapIterationStarted {
                    state: state.path.clone(),
                    index,
                });
                self.run_scope(
                    &map.processor,
                    StateInput::Owned(iteration_input),
                    input_bytes,
                    beside_others,
                )
                .await
            });
        let outputs: Vec<Value> = iterations.buffered(limit).try_collect().await?;
        let result = Value::Array(outputs);
        self.check_size(state, PayloadKind::Result, &result)
            .map_err(in_state)?;
        self.finish(
            frame,
            &map.results,
            &map.filters,
            input,
            result,
            retry_count,
        )
        .map_err(in_state)
    }

    /// One iteration's input: the item, or the `ItemSelector` built with `$$.Map.Item`, and
    /// the size of what was built (an item is measured when its iteration starts).
    fn iteration_input(
        &self,
        frame: &Frame<'_>,
        map: &MapState,
        effective: &Value,
        index: usize,
        item: &Value,
        retry_count: u32,
    ) -> Result<(Value, Option<usize>), StateError> {
        let Some(template) = &map.item_selector else {
            return Ok((item.clone(), None));
        };
        let mut view = self.context_view(frame, retry_count);
        view.map_item = Some((index, item));
        let environment = Environment::new(effective, &view, &self.random, frame.entered_event);
        let built = template.evaluate(&environment)?;
        let bytes = self.check_size(frame.state, PayloadKind::EffectiveInput, &built)?;
        Ok((built, Some(bytes)))
    }
}
