//! The `data` object of an event, held as its canonical JSON text.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::canonical::canonical_object_text;

/// The member of `data` that names the client's user agent.
pub const USER_AGENT: &str = "userAgent";

/// An event's `data` object, held as its canonical JSON text (keys sorted by their bytes, no
/// insignificant whitespace: [`crate::canonical`]) together with the two members the stages
/// read, `amount` and `userAgent`, taken out when it is built.
///
/// After `validate`, the pipeline only reads those two members and writes the object out
/// again: into a staged part, the events table, a Parquet column, a search document. As a
/// tree of values it cost an allocation per key and per value to build, to clone and to drop,
/// and a walk of the tree to write; as text it is one allocation, copied as it is. The
/// canonical text is exactly what `serde_json` writes for the same object, so every output
/// is byte for byte what it was, and it is what the content-derived event id digests.
#[derive(Clone)]
pub struct EventData {
    text: Box<RawValue>,
    amount: Option<f64>,
    user_agent: Option<Box<str>>,
}

impl EventData {
    /// The canonical form of `map`.
    pub fn from_map(map: &Map<String, Value>) -> Self {
        Self {
            text: canonical_object_text(map),
            amount: map.get("amount").and_then(Value::as_f64),
            user_agent: map.get(USER_AGENT).and_then(Value::as_str).map(Box::from),
        }
    }

    /// The canonical JSON text of the object.
    pub fn json(&self) -> &str {
        self.text.get()
    }

    /// `amount` when it is a number.
    pub fn amount(&self) -> Option<f64> {
        self.amount
    }

    /// `userAgent` when it is a string.
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// The members' values that are strings, in key order, but the value of the member named
    /// `left_out` if any (the text is read again: only the search index asks, once per event).
    pub fn string_values_except(&self, left_out: Option<&str>) -> Vec<Cow<'_, str>> {
        let mut reader = serde_json::Deserializer::from_str(self.json());
        // The text is a JSON object this type wrote, so reading it back cannot fail.
        StringValues { left_out }
            .deserialize(&mut reader)
            .unwrap_or_default()
    }
}

impl Default for EventData {
    fn default() -> Self {
        Self::from_map(&Map::new())
    }
}

impl From<Map<String, Value>> for EventData {
    fn from(map: Map<String, Value>) -> Self {
        Self::from_map(&map)
    }
}

/// Two objects are equal when their canonical texts are, which is when their values are.
impl PartialEq for EventData {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl fmt::Debug for EventData {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.json())
    }
}

impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(serializer)
    }
}

/// Read as any JSON object and put in canonical form: a stage's input may have been written
/// by hand, with its keys in any order.
impl<'de> Deserialize<'de> for EventData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::<String, Value>::deserialize(deserializer).map(|map| Self::from_map(&map))
    }
}

/// Reads the string values of a JSON object's members, borrowed when they need no
/// unescaping, but the value of the member named `left_out`.
struct StringValues<'k> {
    left_out: Option<&'k str>,
}

impl<'de> DeserializeSeed<'de> for StringValues<'_> {
    type Value = Vec<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        struct Members<'k>(Option<&'k str>);
        impl<'de> Visitor<'de> for Members<'_> {
            type Value = Vec<Cow<'de, str>>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut values = Vec::new();
                while let Some(left_out) = map.next_key_seed(KeyIs(self.0))? {
                    if left_out {
                        map.next_value::<IgnoredAny>()?;
                    } else if let Some(text) = map.next_value::<StringOrOther>()?.0 {
                        values.push(text);
                    }
                }
                Ok(values)
            }
        }
        deserializer.deserialize_map(Members(self.left_out))
    }
}

/// Reads a member's key as whether it is the given one, without copying it.
struct KeyIs<'k>(Option<&'k str>);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a member's key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(self.0 == Some(key))
    }
}

/// A member's value: its text when it is a string, nothing (and skipped) when it is not.
struct StringOrOther<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for StringOrOther<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Member;
        impl<'de> Visitor<'de> for Member {
            type Value = StringOrOther<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(StringOrOther(Some(Cow::Borrowed(text))))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(StringOrOther(Some(Cow::Owned(text.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(StringOrOther(Some(Cow::Owned(text))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StringOrOther(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StringOrOther(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StringOrOther(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StringOrOther(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StringOrOther(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
                while items.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StringOrOther(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StringOrOther(None))
            }
        }
        deserializer.deserialize_any(Member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(value: Value) -> EventData {
        EventData::from_map(value.as_object().expect("an object"))
    }

    #[test]
    fn the_text_is_what_serde_json_writes_for_the_same_object() {
        for value in [
            json!({}),
            json!({"b": 1, "a": {"y": [1, "x", {"d": null, "c": true}], "x": null}}),
            json!({"amount": 12.5, "currency": "EUR", "userAgent": "Mozilla/5.0 \"quoted\"\n"}),
            json!({"été": "✓", "Z": -0.0, "a": 1e300, "n": 18446744073709551615_u64, "m": -3}),
        ] {
            let expected = serde_json::to_string(&value).unwrap();
            let data = data(value.clone());
            assert_eq!(data.json(), expected);
            assert_eq!(serde_json::to_string(&data).unwrap(), expected);
            assert_eq!(serde_json::to_value(&data).unwrap(), value);
        }
    }

    #[test]
    fn keys_in_any_order_give_one_text_and_read_back_equal() {
        let text = r#"{ "sku" : "A1", "amount": 12.5, "nested": {"z": 1, "a": 2} }"#;
        let read: EventData = serde_json::from_str(text).unwrap();
        assert_eq!(
            read.json(),
            r#"{"amount":12.5,"nested":{"a":2,"z":1},"sku":"A1"}"#
        );
        let from_value: EventData = serde_json::from_value(
            json!({"sku": "A1", "amount": 12.5, "nested": {"a": 2, "z": 1}}),
        )
        .unwrap();
        assert_eq!(read, from_value);
        assert_ne!(read, data(json!({"sku": "A1"})));
        assert!(serde_json::from_str::<EventData>("[1]").is_err());
    }

    #[test]
    fn amount_and_user_agent_are_read_only_with_their_types() {
        let full = data(json!({"amount": 3, "userAgent": "curl/8"}));
        assert_eq!(full.amount(), Some(3.0));
        assert_eq!(full.user_agent(), Some("curl/8"));
        let wrong = data(json!({"amount": "3", "userAgent": 8}));
        assert_eq!(wrong.amount(), None);
        assert_eq!(wrong.user_agent(), None);
        assert_eq!(EventData::default().json(), "{}");
    }

    #[test]
    fn string_values_are_the_string_members_in_key_order_but_the_one_left_out() {
        let data = data(json!({
            "z": "last", "a": "first \"quoted\"", "n": 1, "o": {"s": "nested"},
            "l": ["listed"], "b": true, "u": null, "m\"é": "left out", "x": "kept",
        }));
        assert_eq!(
            data.string_values_except(Some("m\"é")),
            vec!["first \"quoted\"", "kept", "last"]
        );
        assert_eq!(data.string_values_except(None).len(), 4);
    }
}
