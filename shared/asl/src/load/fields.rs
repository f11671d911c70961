//! Reading the fields of one JSON object of a definition, each read naming the state and the
//! field (with its prefix, such as `Retry[0].`) in the error it may give.

use serde_json::{Map, Value};

use crate::error::LoadError;

const JSONATA: &str = "is a JSONata field; only the JSONPath query language is supported";
const DISTRIBUTED: &str =
    "belongs to distributed Map, which is not supported locally (only inline Map runs)";

/// Fields of the States Language that this interpreter knows but refuses, and why.
const REFUSED_FIELDS: [(&str, &str); 14] = [
    (
        "Credentials",
        "cross-account task credentials are not supported locally",
    ),
    (
        "Assign",
        "workflow variables (Assign) are not supported locally",
    ),
    ("Arguments", JSONATA),
    ("Output", JSONATA),
    ("Items", JSONATA),
    ("Condition", JSONATA),
    ("ItemReader", DISTRIBUTED),
    ("ItemBatcher", DISTRIBUTED),
    ("ResultWriter", DISTRIBUTED),
    ("ToleratedFailurePercentage", DISTRIBUTED),
    ("ToleratedFailurePercentagePath", DISTRIBUTED),
    ("ToleratedFailureCount", DISTRIBUTED),
    ("ToleratedFailureCountPath", DISTRIBUTED),
    ("Label", DISTRIBUTED),
];

/// Why a known but unsupported field is refused, if `field` is one.
pub(crate) fn refusal_reason(field: &str) -> Option<&'static str> {
    REFUSED_FIELDS
        .iter()
        .find(|(refused, _)| *refused == field)
        .map(|(_, why)| *why)
}

/// The fields of one object, read with errors that name where they are.
pub(crate) struct Fields<'a> {
    state: Option<&'a str>,
    prefix: String,
    members: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Reads `value`, which must be an object, as the fields under `prefix` (such as
    /// `"Retry[0]"`; empty for the state itself).
    pub(crate) fn of(
        state: Option<&'a str>,
        prefix: &str,
        value: &'a Value,
    ) -> Result<Fields<'a>, LoadError> {
        match value {
            Value::Object(members) => Ok(Fields {
                state,
                prefix: if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}.")
                },
                members,
            }),
            _ => Err(LoadError::new(state, prefix, "must be a JSON object")),
        }
    }

    pub(crate) fn state(&self) -> Option<&'a str> {
        self.state
    }

    /// The full name of a field, with the prefix; an empty field names the object itself.
    pub(crate) fn name(&self, field: &str) -> String {
        if field.is_empty() {
            return self.prefix.trim_end_matches('.').to_string();
        }
        format!("{}{field}", self.prefix)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &'a String> + 'a {
        self.members.keys()
    }

    pub(crate) fn error(&self, field: &str, message: impl Into<String>) -> LoadError {
        LoadError::new(self.state, self.name(field), message)
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.members.contains_key(field)
    }

    pub(crate) fn get(&self, field: &str) -> Option<&'a Value> {
        self.members.get(field)
    }

    /// Refuses every field not in `allowed`; `owner` says what the object is, for the message.
    pub(crate) fn allow_only(&self, allowed: &[&str], owner: &str) -> Result<(), LoadError> {
        for key in self.members.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let message = refusal_reason(key)
                .map_or_else(|| format!("is not a field of {owner}"), str::to_string);
            return Err(self.error(key, message));
        }
        Ok(())
    }

    /// Refuses having both fields of a pair that exclude each other.
    pub(crate) fn exclusive(&self, first: &str, second: &str) -> Result<(), LoadError> {
        if self.has(first) && self.has(second) {
            return Err(self.error(
                second,
                format!("cannot be given together with {}", self.name(first)),
            ));
        }
        Ok(())
    }

    pub(crate) fn string(&self, field: &str) -> Result<Option<&'a str>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(self.error(field, "must be a string")),
        }
    }

    pub(crate) fn required_string(&self, field: &str) -> Result<&'a str, LoadError> {
        self.string(field)?
            .ok_or_else(|| self.error(field, "is required"))
    }

    pub(crate) fn boolean(&self, field: &str) -> Result<Option<bool>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(self.error(field, "must be true or false")),
        }
    }

    /// An integer in `minimum..=maximum`, written without a fraction.
    pub(crate) fn integer(
        &self,
        field: &str,
        minimum: u64,
        maximum: u64,
    ) -> Result<Option<u64>, LoadError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let kind = if minimum == 0 {
            "a non-negative integer"
        } else {
            "a positive integer"
        };
        match value.as_u64() {
            Some(integer) if (minimum..=maximum).contains(&integer) => Ok(Some(integer)),
            Some(_) => {
                Err(self.error(field, format!("must be {kind} from {minimum} to {maximum}")))
            }
            None => Err(self.error(field, format!("must be {kind}"))),
        }
    }

    pub(crate) fn number(&self, field: &str) -> Result<Option<f64>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.error(field, "must be a number")),
        }
    }

    pub(crate) fn array(&self, field: &str) -> Result<Option<&'a Vec<Value>>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(self.error(field, "must be an array")),
        }
    }

    /// A non-empty array of strings, such as `ErrorEquals`.
    pub(crate) fn string_list(&self, field: &str) -> Result<Vec<String>, LoadError> {
        let items = self
            .array(field)?
            .ok_or_else(|| self.error(field, "is required"))?;
        if items.is_empty() {
            return Err(self.error(field, "must not be empty"));
        }
        items
            .iter()
            .enumerate()
            .map(|(position, item)| match item {
                Value::String(text) => Ok(text.clone()),
                _ => Err(self.error(&format!("{field}[{position}]"), "must be a string")),
            })
            .collect()
    }
}
