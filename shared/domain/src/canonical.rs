//! Canonical JSON and content-derived ids.
//!
//! Ids must not depend on key order in the input or on how a JSON library orders its maps,
//! so the canonical form is written here: object keys sorted by their UTF-8 bytes, no
//! insignificant whitespace, numbers and strings as `serde_json` writes them.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Appends the canonical encoding of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => write_canonical_object(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::String(text) => write_string(text, out),
        scalar => {
            // Null, booleans and numbers have exactly one encoding in serde_json; writing
            // into memory cannot fail.
            serde_json::to_writer(&mut *out, scalar).expect("writing a JSON scalar into memory");
        }
    }
}

/// Appends the canonical encoding of a JSON object to `out`.
pub fn write_canonical_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (index, (key, item)) in entries.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_canonical(item, out);
    }
    out.push(b'}');
}

/// Appends a JSON string literal to `out`.
pub fn write_string(text: &str, out: &mut Vec<u8>) {
    let plain = text
        .bytes()
        .all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\');
    if plain {
        // Nothing to escape: the same bytes serde_json would write, without its per-byte table.
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Serialising a &str into a Vec cannot fail.
        serde_json::to_writer(&mut *out, text).expect("writing a JSON string into memory");
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
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Counting never fails; a value that cannot be encoded counts what was written.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
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
        let (mut left, mut right) = (Vec::new(), Vec::new());
        write_canonical(&a, &mut left);
        write_canonical(&b, &mut right);
        assert_eq!(left, right);
        assert_eq!(
            String::from_utf8(left).unwrap(),
            r#"{"a":{"x":null,"y":[1,"x"]},"b":1}"#
        );
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
