//! DynamoDB attribute values to plain JSON and back.
//!
//! Numbers (`N`) become JSON numbers (integers when they fit, otherwise floats); binary values
//! (`B`, `BS`) become base64 strings; sets become arrays; `NULL` becomes `null`.

use std::collections::HashMap;

use base64::Engine;
use serde_dynamo::AttributeValue;
use serde_json::{Map, Number, Value};

/// An attribute that cannot become JSON, with the JSON pointer of where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeError {
    pub pointer: String,
    pub reason: String,
}

/// Converts a whole item (a DynamoDB image) into a JSON object.
pub fn item_to_json(item: HashMap<String, AttributeValue>) -> Result<Value, AttributeError> {
    let mut object = Map::new();
    for (name, value) in item {
        let converted = to_json(value).map_err(|error| error.inside(&escape_pointer(&name)))?;
        object.insert(name, converted);
    }
    Ok(Value::Object(object))
}

impl AttributeError {
    fn inside(mut self, segment: &str) -> Self {
        self.pointer = format!("/{segment}{}", self.pointer);
        self
    }
}

fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Converts one attribute value into JSON.
pub fn to_json(value: AttributeValue) -> Result<Value, AttributeError> {
    Ok(match value {
        AttributeValue::S(text) => Value::String(text),
        AttributeValue::N(text) => Value::Number(parse_number(&text)?),
        AttributeValue::Bool(flag) => Value::Bool(flag),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::B(bytes) => Value::String(encode_binary(&bytes)),
        AttributeValue::M(map) => item_to_json(map)?,
        AttributeValue::L(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(position, item)| {
                    to_json(item).map_err(|error| error.inside(&position.to_string()))
                })
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::Ss(items) => Value::Array(items.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(position, text)| {
                    parse_number(text)
                        .map(Value::Number)
                        .map_err(|error| error.inside(&position.to_string()))
                })
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::Bs(items) => Value::Array(
            items
                .iter()
                .map(|bytes| Value::String(encode_binary(bytes)))
                .collect(),
        ),
    })
}

/// Converts JSON into an attribute value: the inverse of [`to_json`] for JSON without sets or binaries.
pub fn from_json(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(flag) => AttributeValue::Bool(*flag),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(from_json).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(name, item)| (name.clone(), from_json(item)))
                .collect(),
        ),
    }
}

fn parse_number(text: &str) -> Result<Number, AttributeError> {
    if let Ok(integer) = text.parse::<i64>() {
        return Ok(Number::from(integer));
    }
    if let Ok(integer) = text.parse::<u64>() {
        return Ok(Number::from(integer));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| AttributeError {
            pointer: String::new(),
            reason: format!("N value {text:?} is not a finite number"),
        })
}

fn encode_binary(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(to_json(AttributeValue::N("42".into())).unwrap(), json!(42));
        assert_eq!(
            to_json(AttributeValue::N("-1.5".into())).unwrap(),
            json!(-1.5)
        );
        assert_eq!(
            to_json(AttributeValue::N("18446744073709551615".into())).unwrap(),
            json!(u64::MAX)
        );
        assert!(
            to_json(AttributeValue::N("abc".into()))
                .unwrap_err()
                .reason
                .contains("abc")
        );
        let nested = HashMap::from([(
            "data".to_owned(),
            AttributeValue::M(HashMap::from([(
                "a/b".to_owned(),
                AttributeValue::L(vec![AttributeValue::N("x".into())]),
            )])),
        )]);
        assert_eq!(item_to_json(nested).unwrap_err().pointer, "/data/a~1b/0");
    }

    #[test]
    fn sets_and_binaries_become_arrays_and_base64() {
        assert_eq!(
            to_json(AttributeValue::Ss(vec!["a".into()])).unwrap(),
            json!(["a"])
        );
        assert_eq!(
            to_json(AttributeValue::Ns(vec!["1".into(), "2.5".into()])).unwrap(),
            json!([1, 2.5])
        );
        assert_eq!(
            to_json(AttributeValue::B(b"hi".to_vec())).unwrap(),
            json!("aGk=")
        );
    }
}
