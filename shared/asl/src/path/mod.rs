//! JSONPath handling: parsing the paths of a definition once at load, selecting values with
//! them, and writing a value at a reference path (for `ResultPath`).
//!
//! Step Functions evaluates paths with Jayway JsonPath. This module splits a path into its
//! segments itself, so that it knows whether the path is definite (only plain name and index
//! steps, which Jayway answers with a single value) or not (wildcards, descendants, slices,
//! unions and filters, which Jayway answers with the list of matches). Definite paths are
//! walked directly; every path is also compiled with `serde_json_path` (RFC 9535), which both
//! checks its syntax at load and answers the indefinite ones.

use serde_json::Value;
use serde_json_path::JsonPath;

mod syntax;

use syntax::{Segment, bracket_name, split_segments};

/// One step of a definite path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PathStep {
    /// An object member, written `.name` or `['name']`.
    Name(String),
    /// An array element, written `[3]`; a negative index counts from the end.
    Index(i64),
}

/// A parsed JSONPath that starts at `$`.
#[derive(Debug, Clone)]
pub(crate) struct QueryPath {
    text: String,
    definite_steps: Option<Vec<PathStep>>,
    compiled: JsonPath,
}

/// The document a path reads: the state's data (`$`) or the context object (`$$`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathSource {
    Data,
    Context,
}

/// A path that may read either the state's data or the context object.
#[derive(Debug, Clone)]
pub(crate) struct DataPath {
    pub(crate) source: PathSource,
    pub(crate) query: QueryPath,
    text: String,
}

impl QueryPath {
    /// Parses a path such as `$.detail.items[0]`, refusing what JSONPath cannot parse.
    pub(crate) fn parse(text: &str) -> Result<QueryPath, String> {
        let segments = split_segments(text)?;
        let mut normalized = String::from("$");
        let mut steps = Vec::new();
        let mut definite = true;
        for segment in segments {
            match segment {
                Segment::Name(name) => {
                    normalized.push_str(&bracket_name(&name));
                    steps.push(PathStep::Name(name));
                }
                Segment::Index(index) => {
                    normalized.push_str(&format!("[{index}]"));
                    steps.push(PathStep::Index(index));
                }
                Segment::Other(raw) => {
                    normalized.push_str(&raw);
                    definite = false;
                }
            }
        }
        let compiled = JsonPath::parse(&normalized)
            .map_err(|error| format!("'{text}' is not a valid JSONPath: {error}"))?;
        Ok(QueryPath {
            text: text.to_string(),
            definite_steps: definite.then_some(steps),
            compiled,
        })
    }

    /// The path `$`, the whole document.
    pub(crate) fn root() -> QueryPath {
        QueryPath {
            text: "$".to_string(),
            definite_steps: Some(Vec::new()),
            compiled: JsonPath::default(),
        }
    }

    /// The path as written in the definition.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// True when the path is just `$`.
    pub(crate) fn is_root(&self) -> bool {
        self.definite_steps.as_ref().is_some_and(Vec::is_empty)
    }

    /// The steps of a reference path: definite, with no negative index. `None` otherwise.
    pub(crate) fn reference_steps(&self) -> Option<&[PathStep]> {
        let steps = self.definite_steps.as_deref()?;
        let has_negative_index = steps
            .iter()
            .any(|step| matches!(step, PathStep::Index(index) if *index < 0));
        (!has_negative_index).then_some(steps)
    }

    /// Selects from `document`. A definite path gives its single value, or `None` when it
    /// matches nothing; an indefinite path gives the array of its matches (maybe empty).
    pub(crate) fn select(&self, document: &Value) -> Option<Value> {
        match &self.definite_steps {
            Some(steps) => select_steps(document, steps).cloned(),
            None => {
                let matches = self.compiled.query(document).all();
                Some(Value::Array(matches.into_iter().cloned().collect()))
            }
        }
    }

    /// Like `select`, but takes the value out of an owned document instead of cloning it.
    pub(crate) fn select_owned(&self, document: Value) -> Option<Value> {
        match &self.definite_steps {
            Some(steps) if steps.is_empty() => Some(document),
            _ => self.select(&document),
        }
    }
}

impl DataPath {
    /// Parses `$...` as a data path and `$$...` as a context object path.
    pub(crate) fn parse(text: &str) -> Result<DataPath, String> {
        let (source, query) = match text.strip_prefix("$$") {
            Some(rest) => (PathSource::Context, QueryPath::parse(&format!("${rest}"))?),
            None => (PathSource::Data, QueryPath::parse(text)?),
        };
        Ok(DataPath {
            source,
            query,
            text: text.to_string(),
        })
    }

    /// The path as written in the definition.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

fn select_steps<'v>(document: &'v Value, steps: &[PathStep]) -> Option<&'v Value> {
    let mut current = document;
    for step in steps {
        current = match step {
            PathStep::Name(name) => current.as_object()?.get(name)?,
            PathStep::Index(index) => {
                let items = current.as_array()?;
                let position = if *index < 0 {
                    items
                        .len()
                        .checked_sub(usize::try_from(index.unsigned_abs()).ok()?)?
                } else {
                    usize::try_from(*index).ok()?
                };
                items.get(position)?
            }
        };
    }
    Some(current)
}

/// Writes `value` at the reference path `steps` inside `target`, creating the missing
/// objects on the way. Fails when a step meets a value of the wrong kind or an array index
/// out of range, which Step Functions reports as `States.ResultPathMatchFailure`.
pub(crate) fn set_at_reference(
    target: &mut Value,
    steps: &[PathStep],
    value: Value,
) -> Result<(), String> {
    let mut current = target;
    for (position, step) in steps.iter().enumerate() {
        let is_last = position + 1 == steps.len();
        current = match step {
            PathStep::Name(name) => {
                let Value::Object(members) = current else {
                    return Err(format!(
                        "cannot add the member '{name}' to a value that is not an object"
                    ));
                };
                if is_last {
                    members.insert(name.clone(), value);
                    return Ok(());
                }
                members
                    .entry(name.clone())
                    .or_insert_with(|| Value::Object(serde_json::Map::new()))
            }
            PathStep::Index(index) => {
                let Value::Array(items) = current else {
                    return Err(format!(
                        "cannot set the element [{index}] of a value that is not an array"
                    ));
                };
                let length = items.len();
                let Some(slot) = usize::try_from(*index)
                    .ok()
                    .and_then(|position| items.get_mut(position))
                else {
                    return Err(format!(
                        "the index [{index}] is outside an array of {length} elements"
                    ));
                };
                if is_last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
        };
    }
    *current = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definite_paths_select_single_values() {
        let document = json!({"a": {"b-c": [1, 2, {"d": true}]}, "x y": 5});
        let path = QueryPath::parse("$.a.b-c[2].d").unwrap();
        assert_eq!(path.select(&document), Some(json!(true)));
        assert_eq!(
            QueryPath::parse("$.a['b-c'][-1]")
                .unwrap()
                .select(&document),
            Some(json!({"d": true}))
        );
        assert_eq!(
            QueryPath::parse("$['x y']").unwrap().select(&document),
            Some(json!(5))
        );
        assert_eq!(
            QueryPath::parse("$.missing").unwrap().select(&document),
            None
        );
        assert!(QueryPath::parse("$").unwrap().is_root());
    }

    #[test]
    fn indefinite_paths_select_arrays_of_matches() {
        let document = json!({"items": [{"n": 1}, {"n": 2}, {"n": 3}]});
        let wildcard = QueryPath::parse("$.items[*].n").unwrap();
        assert!(wildcard.reference_steps().is_none());
        assert_eq!(wildcard.select(&document), Some(json!([1, 2, 3])));
        let filter = QueryPath::parse("$.items[?(@.n > 1)].n").unwrap();
        assert_eq!(filter.select(&document), Some(json!([2, 3])));
        assert_eq!(
            QueryPath::parse("$..n").unwrap().select(&document),
            Some(json!([1, 2, 3]))
        );
        assert_eq!(
            QueryPath::parse("$.items[0:1]").unwrap().select(&document),
            Some(json!([{"n": 1}]))
        );
    }

    #[test]
    fn bad_paths_are_refused() {
        for text in ["foo", "$.", "$.a[", "$.a.length()", "$[?(@.a ==)]"] {
            assert!(QueryPath::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn context_paths_are_recognised() {
        let path = DataPath::parse("$$.Execution.Id").unwrap();
        assert_eq!(path.source, PathSource::Context);
        assert_eq!(
            path.query.select(&json!({"Execution": {"Id": "x"}})),
            Some(json!("x"))
        );
    }

    #[test]
    fn reference_paths_create_objects_and_refuse_mismatches() {
        let steps = QueryPath::parse("$.a.b")
            .unwrap()
            .reference_steps()
            .unwrap()
            .to_vec();
        let mut target = json!({"keep": 1});
        set_at_reference(&mut target, &steps, json!(2)).unwrap();
        assert_eq!(target, json!({"keep": 1, "a": {"b": 2}}));
        let mut text = json!("plain");
        assert!(set_at_reference(&mut text, &steps, json!(2)).is_err());
        let index_steps = QueryPath::parse("$.list[1]")
            .unwrap()
            .reference_steps()
            .unwrap()
            .to_vec();
        let mut short = json!({"list": [0]});
        assert!(set_at_reference(&mut short, &index_steps, json!(2)).is_err());
        assert!(
            QueryPath::parse("$.list[-1]")
                .unwrap()
                .reference_steps()
                .is_none()
        );
    }

    #[test]
    fn random_text_never_panics() {
        let alphabet: Vec<char> = "$.[]'\"*?@()=<>!,:-_ab01 \\é".chars().collect();
        let mut generator = crate::random::SplitMix64::new(3);
        for _ in 0..20_000 {
            let length = generator.below(14) as usize;
            let mut text = String::from("$");
            for _ in 0..length {
                text.push(alphabet[generator.below(alphabet.len() as u64) as usize]);
            }
            if let Ok(path) = DataPath::parse(&text) {
                let _ = path.query.select(&json!({"a": [1, {"b": 2}], "é": null}));
            }
        }
    }
}
