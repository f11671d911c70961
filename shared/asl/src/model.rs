//! The checked, typed form of a definition, with every path and template compiled.

use serde_json::Value;
use std::collections::HashMap;

use crate::choice::ChoiceRule;
use crate::path::{DataPath, PathStep, QueryPath};
use crate::retry::{Catcher, Retrier};
use crate::template::{Template, ValueSource};

/// The largest number of seconds Step Functions accepts in a timeout or a wait.
pub(crate) const MAXIMUM_SECONDS: u64 = 99_999_999;

/// A set of states with a start: the top level, one Parallel branch or a Map's processor.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) start_at: String,
    /// The states in the order a walk from `start_at` meets them.
    pub(crate) states: Vec<State>,
    pub(crate) index: HashMap<String, usize>,
}

impl Scope {
    pub(crate) fn state(&self, name: &str) -> Option<&State> {
        self.index
            .get(name)
            .and_then(|position| self.states.get(*position))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) name: String,
    /// The name prefixed by the enclosing states, such as `Fan out/branch 0/Aggregate`.
    pub(crate) path: String,
    pub(crate) kind: StateKind,
}

#[derive(Debug, Clone)]
pub(crate) enum StateKind {
    Pass(PassState),
    Task(TaskState),
    Choice(ChoiceState),
    Wait(WaitState),
    Succeed(Filters),
    Fail(FailState),
    Parallel(ParallelState),
    Map(MapState),
}

/// `InputPath` or `OutputPath`: a path, or `null` (which gives `{}`).
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    Path(QueryPath),
    Null,
}

impl Filter {
    /// `$`: the filter selects the whole value.
    pub(crate) fn is_whole_input(&self) -> bool {
        matches!(self, Filter::Path(path) if path.is_root())
    }
}

/// The `InputPath` and `OutputPath` of a state (`$` when absent).
#[derive(Debug, Clone)]
pub(crate) struct Filters {
    pub(crate) input_path: Filter,
    pub(crate) output_path: Filter,
}

/// `ResultPath`: where the result goes over the state's input.
#[derive(Debug, Clone)]
pub(crate) enum ResultPath {
    /// `null`: the result is dropped and the input goes on.
    Discard,
    /// A reference path; no steps means `$` (the result replaces the input).
    At(Vec<PathStep>, String),
}

#[derive(Debug, Clone)]
pub(crate) enum Transition {
    Next(String),
    End,
}

/// What Task, Parallel and Map states do with a result, and with an error.
#[derive(Debug, Clone)]
pub(crate) struct ResultHandling {
    pub(crate) result_selector: Option<Template>,
    pub(crate) result_path: ResultPath,
    pub(crate) retriers: Vec<Retrier>,
    pub(crate) catchers: Vec<Catcher>,
}

#[derive(Debug, Clone)]
pub(crate) struct PassState {
    pub(crate) filters: Filters,
    pub(crate) parameters: Option<Template>,
    pub(crate) result: Option<Value>,
    pub(crate) result_path: ResultPath,
    pub(crate) transition: Transition,
}

/// A number of seconds given in the definition or read from the input by a reference path.
#[derive(Debug, Clone)]
pub(crate) enum Seconds {
    Fixed(u64),
    FromPath(DataPath),
}

#[derive(Debug, Clone)]
pub(crate) struct TaskState {
    pub(crate) filters: Filters,
    pub(crate) resource: String,
    pub(crate) parameters: Option<Template>,
    pub(crate) results: ResultHandling,
    /// `TimeoutSeconds` or `TimeoutSecondsPath`; `None` leaves the task unbounded.
    pub(crate) timeout: Option<Seconds>,
    pub(crate) transition: Transition,
}

#[derive(Debug, Clone)]
pub(crate) struct ChoiceState {
    pub(crate) filters: Filters,
    pub(crate) rules: Vec<ChoiceRule>,
    pub(crate) default: Option<String>,
}

/// How long a Wait state waits.
#[derive(Debug, Clone)]
pub(crate) enum WaitFor {
    Seconds(Seconds),
    Timestamp(chrono::DateTime<chrono::FixedOffset>),
    TimestampPath(DataPath),
}

#[derive(Debug, Clone)]
pub(crate) struct WaitState {
    pub(crate) filters: Filters,
    pub(crate) wait: WaitFor,
    pub(crate) transition: Transition,
}

/// A Fail state's `Error` or `Cause`: a literal, or a path or intrinsic call.
#[derive(Debug, Clone)]
pub(crate) enum FailText {
    Literal(String),
    Dynamic {
        field: &'static str,
        source: ValueSource,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct FailState {
    pub(crate) error: Option<FailText>,
    pub(crate) cause: Option<FailText>,
}

#[derive(Debug, Clone)]
pub(crate) struct ParallelState {
    pub(crate) filters: Filters,
    pub(crate) parameters: Option<Template>,
    pub(crate) branches: Vec<Scope>,
    pub(crate) results: ResultHandling,
    pub(crate) transition: Transition,
}

/// `MaxConcurrency` (0 = no limit) or `MaxConcurrencyPath`.
#[derive(Debug, Clone)]
pub(crate) enum Concurrency {
    Fixed(u64),
    FromPath(DataPath),
}

#[derive(Debug, Clone)]
pub(crate) struct MapState {
    pub(crate) filters: Filters,
    /// `ItemsPath`; `None` means `$`.
    pub(crate) items_path: Option<DataPath>,
    /// `ItemSelector`, or the legacy `Parameters`.
    pub(crate) item_selector: Option<Template>,
    pub(crate) processor: Scope,
    pub(crate) concurrency: Concurrency,
    pub(crate) results: ResultHandling,
    pub(crate) transition: Transition,
}

impl State {
    /// The states this one can go to: `Next`, Choice rules and `Default`, and catchers,
    /// each with the field that names it.
    pub(crate) fn successors(&self) -> Vec<(String, &str)> {
        let mut targets = Vec::new();
        let (transition, catchers) = match &self.kind {
            StateKind::Pass(pass) => (Some(&pass.transition), None),
            StateKind::Wait(wait) => (Some(&wait.transition), None),
            StateKind::Task(task) => (Some(&task.transition), Some(&task.results.catchers)),
            StateKind::Parallel(parallel) => {
                (Some(&parallel.transition), Some(&parallel.results.catchers))
            }
            StateKind::Map(map) => (Some(&map.transition), Some(&map.results.catchers)),
            StateKind::Choice(choice) => {
                for (position, rule) in choice.rules.iter().enumerate() {
                    targets.push((format!("Choices[{position}].Next"), rule.next.as_str()));
                }
                if let Some(default) = &choice.default {
                    targets.push(("Default".to_string(), default.as_str()));
                }
                (None, None)
            }
            StateKind::Succeed(_) | StateKind::Fail(_) => (None, None),
        };
        if let Some(Transition::Next(next)) = transition {
            targets.push(("Next".to_string(), next.as_str()));
        }
        for (position, catcher) in catchers.into_iter().flatten().enumerate() {
            targets.push((format!("Catch[{position}].Next"), catcher.next.as_str()));
        }
        targets
    }
}
