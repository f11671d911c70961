//! Payload templates: `Parameters`, `ItemSelector` and `ResultSelector`. A member whose name
//! ends in `.$` takes its value from a path (`$...`), the context object (`$$...`) or an
//! intrinsic function call, at any depth (inside arrays too); the rest is copied as is.

use serde_json::{Map, Value};

use crate::context::Environment;
use crate::error::StateError;
use crate::intrinsics::{self, IntrinsicCall};
use crate::path::DataPath;

/// A compiled payload template.
#[derive(Debug, Clone)]
pub(crate) enum Template {
    /// A part with no `.$` member anywhere inside, copied as is.
    Literal(Value),
    Object(Vec<(String, TemplateMember)>),
    Array(Vec<Template>),
}

#[derive(Debug, Clone)]
pub(crate) enum TemplateMember {
    Nested(Template),
    /// A `.$` member: the key as written (with `.$`, for error causes) and its source.
    Dynamic {
        key: String,
        source: ValueSource,
    },
}

/// Where a dynamic value comes from: a path or an intrinsic function call. `Fail` states'
/// `ErrorPath` and `CausePath` use it too.
#[derive(Debug, Clone)]
pub(crate) enum ValueSource {
    Path(DataPath),
    Call(IntrinsicCall),
}

impl ValueSource {
    pub(crate) fn parse(text: &str) -> Result<ValueSource, String> {
        if intrinsics::looks_like_call(text) {
            intrinsics::parse_call(text).map(ValueSource::Call)
        } else if text.starts_with('$') {
            DataPath::parse(text).map(ValueSource::Path)
        } else {
            Err(format!(
                "'{text}' is neither a path (starting with '$') nor an intrinsic function call"
            ))
        }
    }

    /// Evaluates the source; `field` names the field that holds it, for error causes.
    pub(crate) fn evaluate(
        &self,
        environment: &Environment<'_>,
        field: &str,
    ) -> Result<Value, StateError> {
        match self {
            ValueSource::Path(path) => environment.resolve_required(path, field),
            ValueSource::Call(call) => intrinsics::evaluate_call(call, environment, field),
        }
    }
}

impl Template {
    /// Compiles a template; an error is `(field path, message)`, the path under `field`.
    pub(crate) fn compile(value: &Value, field: &str) -> Result<Template, (String, String)> {
        match value {
            Value::Object(members) => compile_object(members, field),
            Value::Array(items) => {
                let mut compiled = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    compiled.push(Template::compile(item, &format!("{field}[{index}]"))?);
                }
                if compiled
                    .iter()
                    .all(|item| matches!(item, Template::Literal(_)))
                {
                    return Ok(Template::Literal(value.clone()));
                }
                Ok(Template::Array(compiled))
            }
            other => Ok(Template::Literal(other.clone())),
        }
    }

    /// Builds the payload against `environment`.
    pub(crate) fn evaluate(&self, environment: &Environment<'_>) -> Result<Value, StateError> {
        match self {
            Template::Literal(value) => Ok(value.clone()),
            Template::Array(items) => items
                .iter()
                .map(|item| item.evaluate(environment))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Template::Object(members) => {
                let mut built = Map::new();
                for (name, member) in members {
                    let value = match member {
                        TemplateMember::Nested(template) => template.evaluate(environment)?,
                        TemplateMember::Dynamic { key, source } => {
                            source.evaluate(environment, key)?
                        }
                    };
                    built.insert(name.clone(), value);
                }
                Ok(Value::Object(built))
            }
        }
    }
}

fn compile_object(members: &Map<String, Value>, field: &str) -> Result<Template, (String, String)> {
    let mut compiled = Vec::with_capacity(members.len());
    let mut any_dynamic = false;
    for (key, value) in members {
        let member_field = if field.is_empty() {
            key.clone()
        } else {
            format!("{field}.{key}")
        };
        match key.strip_suffix(".$") {
            Some(name) => {
                if members.contains_key(name) {
                    return Err((member_field, format!("both '{name}' and '{key}' are given")));
                }
                let Value::String(text) = value else {
                    return Err((member_field, "a member ending in '.$' must hold a path or an intrinsic function call as a string".to_string()));
                };
                let source =
                    ValueSource::parse(text).map_err(|message| (member_field.clone(), message))?;
                any_dynamic = true;
                compiled.push((
                    name.to_string(),
                    TemplateMember::Dynamic {
                        key: key.clone(),
                        source,
                    },
                ));
            }
            None => {
                let nested = Template::compile(value, &member_field)?;
                any_dynamic |= !matches!(nested, Template::Literal(_));
                compiled.push((key.clone(), TemplateMember::Nested(nested)));
            }
        }
    }
    if !any_dynamic {
        return Ok(Template::Literal(Value::Object(members.clone())));
    }
    Ok(Template::Object(compiled))
}
