//! Building bulk bodies: each document's two NDJSON lines (encoded once, so a retry resends
//! the same bytes), and the packing of documents into bodies no larger than the configured
//! limit. Everything here is pure.

use pipeline_domain::ports::IndexFailure;
use pipeline_domain::stages::store::SearchDocument;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

/// The field added to every stored document for full-text search.
pub const SEARCH_TEXT_FIELD: &str = "searchText";

/// One document's action line and source line, each ending in `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedDocument {
    pub event_id: String,
    pub lines: Vec<u8>,
}

/// One bulk request body and the positions, in order, of the encoded documents it carries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BulkBody {
    pub body: Vec<u8>,
    pub positions: Vec<usize>,
}

/// Encodes every document, and refuses (as failures, keeping the rest) a document whose body
/// is neither an object nor null, or whose lines alone exceed `max_request_bytes`.
pub fn encode_documents(
    documents: &[SearchDocument],
    index: &str,
    max_request_bytes: usize,
) -> (Vec<EncodedDocument>, Vec<IndexFailure>) {
    let mut encoded = Vec::with_capacity(documents.len());
    let mut failures = Vec::new();
    for document in documents {
        let refuse = |reason: String| IndexFailure {
            event_id: document.event_id.clone(),
            reason,
        };
        match encode_document(document, index) {
            Ok(lines) if lines.len() > max_request_bytes => failures.push(refuse(format!(
                "the document is {} bytes in a bulk request, over the limit of {max_request_bytes}",
                lines.len()
            ))),
            Ok(lines) => encoded.push(EncodedDocument {
                event_id: document.event_id.clone(),
                lines,
            }),
            Err(reason) => failures.push(refuse(reason)),
        }
    }
    (encoded, failures)
}

/// The action line and the source line of one document.
pub fn encode_document(document: &SearchDocument, index: &str) -> Result<Vec<u8>, String> {
    let action = json!({"index": {"_index": index, "_id": document.event_id}});
    let mut lines = serde_json::to_vec(&action).map_err(|error| error.to_string())?;
    lines.push(b'\n');
    let empty = Map::new();
    let body = match &document.body {
        Value::Object(fields) => fields,
        Value::Null => &empty,
        _ => return Err("the document body is not a JSON object".to_owned()),
    };
    let source = Source {
        body,
        text: &document.text,
    };
    serde_json::to_writer(&mut lines, &source).map_err(|error| error.to_string())?;
    lines.push(b'\n');
    Ok(lines)
}

/// Packs the documents at `pending` into bodies, in order, each at most `max_request_bytes`
/// (every encoded document fits alone: [`encode_documents`] refused the others).
pub fn pack(
    encoded: &[EncodedDocument],
    pending: &[usize],
    max_request_bytes: usize,
) -> Vec<BulkBody> {
    let mut bodies = Vec::new();
    let mut current = BulkBody::default();
    for &position in pending {
        let lines = &encoded[position].lines;
        if !current.positions.is_empty() && current.body.len() + lines.len() > max_request_bytes {
            bodies.push(std::mem::take(&mut current));
        }
        current.body.extend_from_slice(lines);
        current.positions.push(position);
    }
    if !current.positions.is_empty() {
        bodies.push(current);
    }
    bodies
}

/// The stored document: the body's fields, then `searchText` (which replaces a body field
/// of that name), written without copying the body.
struct Source<'a> {
    body: &'a Map<String, Value>,
    text: &'a str,
}

impl Serialize for Source<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self
            .body
            .iter()
            .filter(|(key, _)| *key != SEARCH_TEXT_FIELD)
        {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry(SEARCH_TEXT_FIELD, self.text)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(event_id: &str, body: Value) -> SearchDocument {
        SearchDocument {
            event_id: event_id.to_owned(),
            text: format!("words of {event_id}"),
            body,
        }
    }

    fn lines(bytes: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn a_document_is_an_index_action_and_its_body_with_the_search_text() {
        let body = json!({"eventId": "e1", "amount": 3, "searchText": "stale"});
        let encoded = encode_document(&document("e1", body), "events").unwrap();
        assert_eq!(
            lines(&encoded),
            [
                json!({"index": {"_index": "events", "_id": "e1"}}),
                json!({"eventId": "e1", "amount": 3, "searchText": "words of e1"}),
            ]
        );
        let encoded = encode_document(&document("e\"2", Value::Null), "events").unwrap();
        assert_eq!(lines(&encoded)[0]["index"]["_id"], "e\"2");
        assert_eq!(lines(&encoded)[1], json!({"searchText": "words of e\"2"}));
    }

    #[test]
    fn documents_that_cannot_be_sent_are_refused_and_the_rest_kept() {
        let documents = [
            document("list", json!([1, 2])),
            document("small", Value::Null),
            document("large", json!({"data": "x".repeat(500)})),
        ];
        let (encoded, failures) = encode_documents(&documents, "events", 200);
        assert_eq!(
            encoded
                .iter()
                .map(|d| d.event_id.as_str())
                .collect::<Vec<_>>(),
            ["small"]
        );
        let refused: Vec<_> = failures.iter().map(|f| f.event_id.as_str()).collect();
        assert_eq!(refused, ["list", "large"]);
        assert!(
            failures[1].reason.contains("over the limit of 200"),
            "{failures:?}"
        );
    }

    #[test]
    fn packing_keeps_order_and_every_body_under_the_limit() {
        let documents: Vec<_> = (0..7)
            .map(|i| document(&format!("e{i}"), Value::Null))
            .collect();
        let (encoded, _) = encode_documents(&documents, "events", usize::MAX);
        let one = encoded[0].lines.len();
        let pending: Vec<usize> = (0..7).collect();
        let bodies = pack(&encoded, &pending, one * 3);
        let positions: Vec<_> = bodies.iter().map(|b| b.positions.clone()).collect();
        assert_eq!(positions, [vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        for body in &bodies {
            assert!(body.body.len() <= one * 3);
            assert_eq!(lines(&body.body).len(), body.positions.len() * 2);
        }
        let retried = pack(&encoded, &[4, 1], usize::MAX);
        assert_eq!(retried.len(), 1);
        assert_eq!(retried[0].positions, [4, 1]);
        assert!(pack(&encoded, &[], 10).is_empty());
    }
}
