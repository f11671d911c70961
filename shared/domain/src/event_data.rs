//! The `data` object of an event, held as its canonical JSON text.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

use crate::canonical::{canonical_object_text, write_string};

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

/// Read as any JSON object and put in canonical form as it is read: a stage's input may
/// have been written by hand, with its keys in any order. Each member is written out as it
/// is read, its key and its value in canonical form; when the keys came in canonical order
/// (in every staged part, which this type wrote) that is already the text, and otherwise
/// the members are written again in key order. No tree of values is built: reading staged
/// parts back, building one was most of the time. When a key comes twice the last value
/// counts, as in a `serde_json::Map`.
impl<'de> Deserialize<'de> for EventData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut out = Vec::with_capacity(256);
        let read = deserializer.deserialize_map(Object {
            out: &mut out,
            top_level: true,
        })?;
        // Every piece was written from a string or as ASCII.
        let text = String::from_utf8(out).map_err(de::Error::custom)?;
        let text = RawValue::from_string(text).map_err(de::Error::custom)?;
        Ok(Self {
            text,
            amount: read.amount,
            user_agent: read.user_agent.map(|agent| Box::from(agent.as_ref())),
        })
    }
}

/// Writes an object in canonical form at the end of `out` as it reads it.
struct Object<'o> {
    out: &'o mut Vec<u8>,
    /// Whether this is `data` itself, whose `amount` and `userAgent` are read.
    top_level: bool,
}

/// What [`EventData`] reads of its object besides the text.
struct ReadObject<'de> {
    amount: Option<f64>,
    user_agent: Option<Cow<'de, str>>,
}

/// One member as read: its key, where it was written (key, colon and value), and, for the
/// members [`EventData`] reads, what the value was.
struct Member<'de> {
    key: Cow<'de, str>,
    written: std::ops::Range<usize>,
    scalar: Scalar<'de>,
}

/// What a value was, as far as [`EventData`] reads it.
enum Scalar<'de> {
    Number(f64),
    String(Cow<'de, str>),
    Other,
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = ReadObject<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let start = self.out.len();
        self.out.push(b'{');
        let mut members: Vec<Member<'de>> = Vec::new();
        let mut in_order = true;
        // A key is read as a string value is, borrowed when it needs no unescaping.
        while let Some(StringOrOther(key)) = map.next_key()? {
            let key = key.ok_or_else(|| de::Error::custom("an object key that is not a string"))?;
            if let Some(last) = members.last() {
                in_order &= last.key.as_bytes() < key.as_bytes();
                self.out.push(b',');
            }
            let begin = self.out.len();
            write_string(&key, self.out);
            self.out.push(b':');
            let keep = self.top_level && (key == "amount" || key == USER_AGENT);
            let scalar = map.next_value_seed(CanonicalValue {
                out: &mut *self.out,
                keep,
            })?;
            members.push(Member {
                key,
                written: begin..self.out.len(),
                scalar,
            });
        }
        self.out.push(b'}');
        if !in_order {
            let written = self.out.split_off(start);
            let mut order: Vec<usize> = (0..members.len()).collect();
            // Stable, so that of equal keys the one read last stays last.
            order.sort_by(|&a, &b| members[a].key.as_bytes().cmp(members[b].key.as_bytes()));
            self.out.push(b'{');
            let mut first = true;
            for (position, &index) in order.iter().enumerate() {
                let shadowed = order
                    .get(position + 1)
                    .is_some_and(|&next| members[next].key == members[index].key);
                if shadowed {
                    continue;
                }
                if !first {
                    self.out.push(b',');
                }
                first = false;
                let range = &members[index].written;
                self.out
                    .extend_from_slice(&written[range.start - start..range.end - start]);
            }
            self.out.push(b'}');
        }
        let mut read = ReadObject {
            amount: None,
            user_agent: None,
        };
        // In the order read, so that the last of equal keys counts.
        for member in members {
            match (member.key.as_ref(), member.scalar) {
                ("amount", Scalar::Number(number)) => read.amount = Some(number),
                ("amount", _) => read.amount = None,
                (USER_AGENT, Scalar::String(agent)) => read.user_agent = Some(agent),
                (USER_AGENT, _) => read.user_agent = None,
                _ => {}
            }
        }
        Ok(read)
    }
}

/// Writes any JSON value in canonical form at the end of `out`; `keep` gives back the
/// number or string it was.
struct CanonicalValue<'o> {
    out: &'o mut Vec<u8>,
    keep: bool,
}

impl<'de> DeserializeSeed<'de> for CanonicalValue<'_> {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl CanonicalValue<'_> {
    fn number<'de>(&self, value: f64) -> Scalar<'de> {
        if self.keep {
            Scalar::Number(value)
        } else {
            Scalar::Other
        }
    }
}

impl<'de> Visitor<'de> for CanonicalValue<'_> {
    type Value = Scalar<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        Ok(Scalar::Other)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        write_number(self.out, &Number::from(value));
        Ok(self.number(value as f64))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        write_number(self.out, &Number::from(value));
        Ok(self.number(value as f64))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        // JSON numbers are finite; anything else is written as `serde_json` writes it.
        match Number::from_f64(value) {
            Some(number) => write_number(self.out, &number),
            None => self.out.extend_from_slice(b"null"),
        }
        Ok(self.number(value))
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        write_string(value, self.out);
        Ok(if self.keep {
            Scalar::String(Cow::Borrowed(value))
        } else {
            Scalar::Other
        })
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        write_string(value, self.out);
        Ok(if self.keep {
            Scalar::String(Cow::Owned(value.to_owned()))
        } else {
            Scalar::Other
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.out.extend_from_slice(b"null");
        Ok(Scalar::Other)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
        self.out.push(b'[');
        let mut first = true;
        loop {
            let start = self.out.len();
            if !first {
                self.out.push(b',');
            }
            let seed = CanonicalValue {
                out: &mut *self.out,
                keep: false,
            };
            if items.next_element_seed(seed)?.is_none() {
                self.out.truncate(start);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Object {
            out: &mut *self.out,
            top_level: false,
        }
        .visit_map(map)?;
        Ok(Scalar::Other)
    }
}

fn write_number(out: &mut Vec<u8>, number: &Number) {
    // Writing a number into memory cannot fail.
    let _ = serde_json::to_writer(&mut *out, number);
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

/// A member's value, or its key: its text when it is a string, borrowed when it needs no
/// unescaping, nothing (and skipped) when it is not.
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
    use proptest::prelude::*;
    use serde_json::json;

    /// A JSON value as a text to be written: objects keep their members in the order
    /// given, duplicates included, and strings may be written with every ASCII letter
    /// escaped, so that the reader has to unescape them.
    #[derive(Debug, Clone)]
    enum Text {
        Literal(&'static str),
        Number(f64),
        Integer(i64),
        String(String, bool),
        Array(Vec<Text>),
        Object(Vec<(String, bool, Text)>),
    }

    fn string_text(text: &str, escaped: bool, out: &mut String) {
        if !escaped {
            out.push_str(&serde_json::to_string(text).unwrap());
            return;
        }
        out.push('"');
        for character in text.chars() {
            if character.is_ascii_alphabetic() {
                out.push_str(&format!("\\u{:04x}", character as u32));
            } else {
                let quoted = serde_json::to_string(&character.to_string()).unwrap();
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
        }
        out.push('"');
    }

    impl Text {
        fn write(&self, spaced: bool, out: &mut String) {
            let space = if spaced { " " } else { "" };
            match self {
                Text::Literal(text) => out.push_str(text),
                Text::Number(number) => out.push_str(&serde_json::to_string(number).unwrap()),
                Text::Integer(number) => out.push_str(&number.to_string()),
                Text::String(text, escaped) => string_text(text, *escaped, out),
                Text::Array(items) => {
                    out.push('[');
                    for (index, item) in items.iter().enumerate() {
                        if index > 0 {
                            out.push(',');
                            out.push_str(space);
                        }
                        item.write(spaced, out);
                    }
                    out.push(']');
                }
                Text::Object(members) => {
                    out.push('{');
                    out.push_str(space);
                    for (index, (key, escaped, value)) in members.iter().enumerate() {
                        if index > 0 {
                            out.push(',');
                        }
                        string_text(key, *escaped, out);
                        out.push_str(space);
                        out.push(':');
                        value.write(spaced, out);
                    }
                    out.push_str(space);
                    out.push('}');
                }
            }
        }
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec!["amount", "userAgent", "a", "b", "B", "é", "a\"\n", ""])
                .prop_map(str::to_owned),
            any::<String>(),
        ]
    }

    fn text() -> impl Strategy<Value = Text> {
        let leaf = prop_oneof![
            prop::sample::select(vec![
                "null",
                "true",
                "false",
                "0",
                "-0",
                "1e2",
                "1E-2",
                "0.10",
                "-0.0",
                "1.0",
                "12345678901234567890",
                "18446744073709551616",
                "-9223372036854775809",
                "3.141592653589793238",
                "5e-324",
                "1.7976931348623157e308",
            ])
            .prop_map(Text::Literal),
            any::<f64>()
                .prop_filter("finite", |number| number.is_finite())
                .prop_map(Text::Number),
            any::<i64>().prop_map(Text::Integer),
            (any::<String>(), any::<bool>())
                .prop_map(|(text, escaped)| Text::String(text, escaped)),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Text::Array),
                prop::collection::vec((key(), any::<bool>(), inner), 0..5).prop_map(Text::Object),
            ]
        })
    }

    fn same(read: &EventData, expected: &EventData) {
        assert_eq!(read.json(), expected.json());
        assert_eq!(
            read.amount().map(f64::to_bits),
            expected.amount().map(f64::to_bits)
        );
        assert_eq!(read.user_agent(), expected.user_agent());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Read from text or from a value, an object gives what the map it parses to
        /// gives: the same canonical text, `amount` and `userAgent`, whatever the order of
        /// its keys, its spacing, its escapes, its duplicate keys (the last counts) and its
        /// numbers' forms.
        #[test]
        fn reading_gives_what_the_parsed_map_gives(
            members in prop::collection::vec((key(), any::<bool>(), text()), 0..8),
            spaced in any::<bool>(),
        ) {
            let mut written = String::new();
            Text::Object(members).write(spaced, &mut written);
            let value: Value = serde_json::from_str(&written).unwrap();
            let expected = data(value.clone());
            same(&serde_json::from_str::<EventData>(&written).unwrap(), &expected);
            same(&serde_json::from_slice::<EventData>(written.as_bytes()).unwrap(), &expected);
            same(&serde_json::from_value::<EventData>(value).unwrap(), &expected);
        }
    }

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
