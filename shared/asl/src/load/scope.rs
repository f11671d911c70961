//! A scope of states (the top level, a Parallel branch or a Map processor): its states, and
//! the structure checks: `StartAt` exists, every transition stays inside the scope, and every
//! state can be reached from `StartAt`.

use std::collections::{HashMap, HashSet, VecDeque};

use super::fields::Fields;
use super::{Loader, states};
use crate::error::LoadError;
use crate::model::{Scope, State};

/// Step Functions refuses state names longer than this many characters.
const MAXIMUM_NAME_CHARACTERS: usize = 80;

/// Reads `StartAt` and `States` from `fields`; `prefix` is put before each state's name to
/// make its path (empty at the top level, `"Fan out/branch 0/"` in a branch).
pub(crate) fn scope(
    loader: &mut Loader,
    fields: &Fields<'_>,
    prefix: &str,
) -> Result<Scope, LoadError> {
    let start_at = fields.required_string("StartAt")?;
    let Some(serde_json::Value::Object(members)) = fields.get("States") else {
        return Err(fields.error("States", "is required and must be an object of states"));
    };
    if members.is_empty() {
        return Err(fields.error("States", "must hold at least one state"));
    }
    let mut parsed = HashMap::with_capacity(members.len());
    for (name, value) in members {
        let path = format!("{prefix}{name}");
        let length = name.chars().count();
        if length == 0 || length > MAXIMUM_NAME_CHARACTERS {
            return Err(LoadError::new(
                Some(&path),
                "",
                format!("a state name must have 1 to {MAXIMUM_NAME_CHARACTERS} characters"),
            ));
        }
        if !loader.state_names.insert(name.clone()) {
            return Err(LoadError::new(
                Some(&path),
                "",
                "state names must be unique across the whole state machine, branches and Map processors included",
            ));
        }
        parsed.insert(name.clone(), states::state(loader, name, &path, value)?);
    }
    if !parsed.contains_key(start_at) {
        return Err(fields.error(
            "StartAt",
            format!("'{start_at}' is not a state of this scope"),
        ));
    }
    for state in parsed.values() {
        for (field, target) in state.successors() {
            if !parsed.contains_key(target) {
                return Err(LoadError::new(
                    Some(&state.path),
                    field,
                    format!(
                        "'{target}' is not a state of the same scope (a transition cannot leave its branch or processor)"
                    ),
                ));
            }
        }
    }
    let order = walk_order(start_at, &parsed);
    let mut unreachable: Vec<&State> = parsed
        .values()
        .filter(|state| !order.contains(&state.name))
        .collect();
    unreachable.sort_by(|first, second| first.name.cmp(&second.name));
    if let Some(state) = unreachable.first() {
        return Err(LoadError::new(
            Some(&state.path),
            "States",
            format!(
                "the state is not reachable from StartAt '{start_at}': no Next, Default, Choice rule or Catch leads to it"
            ),
        ));
    }
    let mut ordered = Vec::with_capacity(order.len());
    for name in &order {
        if let Some(state) = parsed.remove(name) {
            ordered.push(state);
        }
    }
    let index = ordered
        .iter()
        .enumerate()
        .map(|(position, state)| (state.name.clone(), position))
        .collect();
    Ok(Scope {
        start_at: start_at.to_string(),
        states: ordered,
        index,
    })
}

/// The states reachable from `start_at`, in the order a breadth-first walk meets them.
fn walk_order(start_at: &str, states: &HashMap<String, State>) -> Vec<String> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([start_at.to_string()]);
    seen.insert(start_at.to_string());
    while let Some(name) = queue.pop_front() {
        if let Some(state) = states.get(&name) {
            for (_, target) in state.successors() {
                if seen.insert(target.to_string()) {
                    queue.push_back(target.to_string());
                }
            }
        }
        order.push(name);
    }
    order
}
