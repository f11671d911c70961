//! Loading a definition: substitutions, then every field parsed and checked, refusing what
//! the interpreter does not support with the state and field named.

mod choice;
mod common;
mod fields;
mod nested;
mod recovery;
mod scope;
mod states;

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

use crate::LoadOptions;
use crate::error::LoadError;
use crate::model::Scope;
use fields::Fields;

/// What loading keeps across scopes: state names must be unique in the whole machine.
pub(crate) struct Loader {
    state_names: HashSet<String>,
}

/// A checked definition.
pub(crate) struct Loaded {
    pub(crate) root: Scope,
    pub(crate) timeout_seconds: Option<u64>,
}

pub(crate) fn load(definition: Value, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let definition = substitute(definition, &options.substitutions);
    let fields = Fields::of(None, "", &definition)?;
    fields.allow_only(
        &[
            "StartAt",
            "States",
            "Comment",
            "Version",
            "TimeoutSeconds",
            "QueryLanguage",
        ],
        "a state machine definition",
    )?;
    fields.string("Comment")?;
    match fields.string("Version")? {
        None | Some("1.0") => {}
        Some(other) => {
            return Err(fields.error("Version", format!("must be \"1.0\", not '{other}'")));
        }
    }
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
    let timeout_seconds = fields.integer("TimeoutSeconds", 1, common::MAXIMUM_SECONDS)?;
    let mut loader = Loader {
        state_names: HashSet::new(),
    };
    let root = scope::scope(&mut loader, &fields, "")?;
    Ok(Loaded {
        root,
        timeout_seconds,
    })
}

/// Replaces each `${Name}` that has a substitution, in every string (keys included), as SAM's
/// `DefinitionSubstitutions` do. A `${...}` without a substitution stays as it is.
fn substitute(value: Value, substitutions: &BTreeMap<String, String>) -> Value {
    if substitutions.is_empty() {
        return value;
    }
    match value {
        Value::String(text) => Value::String(substitute_text(text, substitutions)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| substitute(item, substitutions))
                .collect(),
        ),
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(key, item)| {
                    (
                        substitute_text(key, substitutions),
                        substitute(item, substitutions),
                    )
                })
                .collect(),
        ),
        other => other,
    }
}

fn substitute_text(mut text: String, substitutions: &BTreeMap<String, String>) -> String {
    if !text.contains("${") {
        return text;
    }
    for (name, replacement) in substitutions {
        let placeholder = format!("${{{name}}}");
        if text.contains(&placeholder) {
            text = text.replace(&placeholder, replacement);
        }
    }
    text
}
