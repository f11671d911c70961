//! Canonical JSON and content-derived ids.
//!
//! Ids must not depend on key order in the input or on how a JSON library orders its maps,
//! so the canonical form is written here: object keys sorted by their UTF-8 bytes, no
//! insignificant whitespace, numbers and strings as `serde_json` writes them.

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A JSON value in its canonical form: `serde_json` writes it with every object's keys
/// sorted by their UTF-8 bytes, whatever order the value's maps keep them in.
struct Canonical<'a>(&'a Value);

/// A JSON object in its canonical form (see [`Canonical`]).
struct CanonicalObject<'a>(&'a Map<String, Value>);

impl serde::Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self.0 {
            Value::Object(map) => CanonicalObject(map).serialize(serializer),
            Value::Array(items) => {
                let mut sequence = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    sequence.serialize_element(&Canonical(item))?;
                }
                sequence.end()
            }
            // Null, booleans, numbers and strings have exactly one encoding in serde_json.
            scalar => scalar.serialize(serializer),
        }
    }
}

impl serde::Serialize for CanonicalObject<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut entries: Vec<(&String, &Value)> = self.0.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (key, item) in entries {
            map.serialize_entry(key, &Canonical(item))?;
        }
        map.end()
    }
}

/// The canonical text of a JSON object, as a raw JSON value that is written out as it is.
pub fn canonical_object_text(map: &Map<String, Value>) -> Box<RawValue> {
    // A map with string keys always encodes.
    serde_json::value::to_raw_value(&CanonicalObject(map)).expect("encoding a JSON object")
}

/// Appends a JSON string literal to `out`.
pub fn write_string(text: &str, out: &mut Vec<u8>) {
    out.reserve(text.len() + 2);
    // Writing into memory cannot fail.
    let _ = write_string_to(out, text);
}

/// Writes a JSON string literal: the same bytes as serde_json, copied as they are when
/// nothing in the text needs an escape (without serde_json's per-byte table).
pub fn write_string_to<W: std::io::Write>(out: &mut W, text: &str) -> std::io::Result<()> {
    let plain = text
        .bytes()
        .all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\');
    if plain {
        out.write_all(b"\"")?;
        out.write_all(text.as_bytes())?;
        out.write_all(b"\"")
    } else {
        serde_json::to_writer(out, text).map_err(std::io::Error::other)
    }
}

/// A short, stable id: `prefix` followed by the first 128 bits of SHA-256 in hex.
pub fn digest_id(prefix: &str, bytes: &[u8]) -> String {
    let mut digest = IdDigest::default();
    digest.update(bytes);
    digest.finish(prefix)
}

/// The length of a value's compact JSON encoding, counted without building it.
pub fn encoded_size(value: &impl serde::Serialize) -> usize {
    let mut counter = ByteCounter(0);
    // Counting never fails; a value that cannot be encoded counts what was written.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// A writer that only counts the bytes written to it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0 += bytes.len();
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`digest_id`] over bytes that arrive in pieces: the same id as over their concatenation.
#[derive(Default, Clone)]
pub struct IdDigest(Sha256);

impl IdDigest {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The prefix followed by the first 128 bits of the SHA-256 digest, in lowercase hex.
    pub fn finish(self, prefix: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = self.0.finalize();
        let mut id = String::with_capacity(prefix.len() + 32);
        id.push_str(prefix);
        for byte in &digest[..16] {
            id.push(char::from(HEX[usize::from(byte >> 4)]));
            id.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_encoding() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,"x"],"x":null}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,"x"]},"b":1}"#).unwrap();
        let left = serde_json::to_string(&Canonical(&a)).unwrap();
        let right = canonical_object_text(b.as_object().unwrap());
        assert_eq!(left, right.get());
        assert_eq!(left, r#"{"a":{"x":null,"y":[1,"x"]},"b":1}"#);
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for text in [
            "plain",
            "",
            "quote \" and \\ back",
            "tab\tnew\nline \u{1}",
            "été ✓ 🎉",
            "\u{7f}",
        ] {
            let mut ours = Vec::new();
            write_string(text, &mut ours);
            assert_eq!(ours, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn digest_ids_have_a_fixed_shape() {
        let id = digest_id("evt_", b"hello");
        assert_eq!(id.len(), 36);
        assert!(id.starts_with("evt_2cf24dba5fb0a30e26e83b2ac5b9e29e"));
        assert_ne!(digest_id("evt_", &json!(1).to_string().into_bytes()), id);
    }
}
