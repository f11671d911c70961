//! JSON values as DynamoDB attribute values and back.
//!
//! Numbers travel as DynamoDB's decimal strings, objects as maps, arrays as lists, null as
//! `NULL`. The conversion is lossless for what the pipeline stores: every JSON number has a
//! decimal form DynamoDB accepts (up to 38 significant digits), and reading an item back
//! gives the JSON it was written from.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

/// One JSON value as an attribute value.
pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(flag) => AttributeValue::Bool(*flag),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attribute).collect()),
        Value::Object(fields) => AttributeValue::M(to_item(fields)),
    }
}

/// A JSON object as an item (or a map attribute).
pub fn to_item(fields: &Map<String, Value>) -> HashMap<String, AttributeValue> {
    fields
        .iter()
        .map(|(name, value)| (name.clone(), to_attribute(value)))
        .collect()
}

/// An attribute value as JSON; `None` for the set and binary types, which the pipeline
/// never writes.
pub fn from_attribute(value: &AttributeValue) -> Option<Value> {
    Some(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::N(text) => Value::Number(parse_number(text)?),
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::L(items) => {
            Value::Array(items.iter().map(from_attribute).collect::<Option<_>>()?)
        }
        AttributeValue::M(fields) => Value::Object(from_item(fields)?),
        _ => return None,
    })
}

/// An item as a JSON object.
pub fn from_item(item: &HashMap<String, AttributeValue>) -> Option<Map<String, Value>> {
    item.iter()
        .map(|(name, value)| Some((name.clone(), from_attribute(value)?)))
        .collect()
}

/// A DynamoDB number as JSON: integers stay integers, the rest become floats.
fn parse_number(text: &str) -> Option<Number> {
    if let Ok(integer) = text.parse::<i64>() {
        return Some(Number::from(integer));
    }
    if let Ok(integer) = text.parse::<u64>() {
        return Some(Number::from(integer));
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

/// A string attribute of an item.
pub fn string_of<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
}

/// A number attribute of an item.
pub fn number_of(item: &HashMap<String, AttributeValue>, name: &str) -> Option<f64> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|text| text.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_the_round_trip_through_attribute_values() {
        for value in [
            json!({"eventId": "e1", "timestamp": 1700000000000u64, "data": {"amount": 12.5, "tags": ["a", "b"], "nested": {"ok": true, "none": null}}}),
            json!({"negative": -3, "big": 18446744073709551615u64, "small": 0.000001, "empty": {}, "list": []}),
        ] {
            let item = to_item(value.as_object().unwrap());
            assert_eq!(Value::Object(from_item(&item).unwrap()), value);
        }
    }

    #[test]
    fn numbers_are_written_as_decimal_strings() {
        assert_eq!(to_attribute(&json!(12.5)), AttributeValue::N("12.5".into()));
        assert_eq!(to_attribute(&json!(7)), AttributeValue::N("7".into()));
        assert_eq!(
            from_attribute(&AttributeValue::N("1e3".into())),
            Some(json!(1000.0))
        );
        assert_eq!(from_attribute(&AttributeValue::Ns(vec!["1".into()])), None);
    }
}
