//! Reading the answer to a bulk request: the whole request's status first, then, for a
//! 2xx, the documented per-item results, matched to the documents sent by position.

use http::StatusCode;
use hyper::body::Bytes;
use pipeline_domain::StorageError;
use serde::Deserialize;
use serde_json::Value;

use crate::error::is_transient_status;

/// The operation named in this adapter's errors.
pub const OPERATION: &str = "index search documents";

/// How much of a refused request's answer its error quotes.
const QUOTED_BYTES: usize = 300;

/// What one bulk request came to.
#[derive(Debug)]
pub enum Reply {
    /// The cluster answered 2xx with this body.
    Answered(Bytes),
    /// The whole request may pass later: no answer, a broken one, 429 or 5xx.
    Retryable(String),
    /// The whole request failed in a way the same request cannot pass.
    Refused(StorageError),
}

/// The outcome of one document in an answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Indexed,
    /// 429 or 5xx for this document alone: resend it.
    Retryable(String),
    /// Any other status: the document is refused, as `"<type>: <reason>"`.
    Refused(String),
}

/// Classifies a whole answer by its status: 2xx is read item by item, 429 and 5xx may pass,
/// other statuses (400, 401, 403, 413) fail for good with the start of the body.
pub fn classify_reply(status: StatusCode, body: Bytes) -> Reply {
    if status.is_success() {
        return Reply::Answered(body);
    }
    let quoted = String::from_utf8_lossy(&body[..body.len().min(QUOTED_BYTES)]).into_owned();
    let message = format!("the bulk request was answered {status}: {quoted}");
    if is_transient_status(status.as_u16()) {
        Reply::Retryable(message)
    } else {
        Reply::Refused(StorageError::permanent(OPERATION, message))
    }
}

/// The per-item outcomes of a 2xx answer, one per id sent and in the same order; an answer
/// that is not the documented shape, or whose items do not match the ids sent, is an error.
///
/// The top-level `errors` flag is not trusted alone: the item statuses decide.
pub fn parse_bulk_response(body: &[u8], sent_ids: &[&str]) -> Result<Vec<ItemOutcome>, String> {
    let response: BulkResponse = serde_json::from_slice(body)
        .map_err(|error| format!("the bulk answer is not the documented shape: {error}"))?;
    if response.items.len() != sent_ids.len() {
        return Err(format!(
            "the bulk answer has {} items for {} documents sent",
            response.items.len(),
            sent_ids.len()
        ));
    }
    let mut outcomes = Vec::with_capacity(sent_ids.len());
    for (position, (item, sent)) in response.items.iter().zip(sent_ids).enumerate() {
        let result = &item.index;
        if let Some(id) = &result.id
            && id != sent
        {
            return Err(format!(
                "the bulk answer's item {position} is for {id:?}, not {sent:?}"
            ));
        }
        outcomes.push(outcome(result));
    }
    Ok(outcomes)
}

fn outcome(result: &ItemResult) -> ItemOutcome {
    if (200..300).contains(&result.status) {
        return ItemOutcome::Indexed;
    }
    let reason = describe(result.status, result.error.as_ref());
    if is_transient_status(result.status) {
        ItemOutcome::Retryable(reason)
    } else {
        ItemOutcome::Refused(reason)
    }
}

/// `"<type>: <reason>"` from an item's error object, or what there is of it.
fn describe(status: u16, error: Option<&Value>) -> String {
    let text = |field: &str| {
        error
            .and_then(|error| error.get(field))
            .and_then(Value::as_str)
    };
    match (text("type"), text("reason"), error) {
        (Some(kind), Some(reason), _) => format!("{kind}: {reason}"),
        (Some(kind), None, _) => kind.to_owned(),
        (None, _, Some(Value::String(message))) => message.clone(),
        _ => format!("status {status}"),
    }
}

#[derive(Deserialize)]
struct BulkResponse {
    items: Vec<BulkItem>,
}

/// One item, keyed by its action: this adapter sends only `index`.
#[derive(Deserialize)]
struct BulkItem {
    index: ItemResult,
}

#[derive(Deserialize)]
struct ItemResult {
    #[serde(rename = "_id")]
    id: Option<String>,
    status: u16,
    error: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(answer: Value, sent: &[&str], expected: &[ItemOutcome]) {
        let body = serde_json::to_vec(&answer).unwrap();
        assert_eq!(parse_bulk_response(&body, sent).unwrap(), expected);
    }

    #[test]
    fn items_are_read_by_position_and_classified_by_status() {
        let answer = json!({"took": 3, "errors": true, "items": [
            {"index": {"_index": "events", "_id": "a", "status": 201, "result": "created"}},
            {"index": {"_index": "events", "_id": "b", "status": 200, "result": "updated"}},
            {"index": {"_index": "events", "_id": "c", "status": 400,
                "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [amount]"}}},
            {"index": {"_index": "events", "_id": "d", "status": 429,
                "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
            {"index": {"_index": "events", "_id": "e", "status": 503, "error": "unavailable"}},
            {"index": {"_index": "events", "_id": "f", "status": 409}},
        ]});
        check(
            answer,
            &["a", "b", "c", "d", "e", "f"],
            &[
                ItemOutcome::Indexed,
                ItemOutcome::Indexed,
                ItemOutcome::Refused(
                    "mapper_parsing_exception: failed to parse field [amount]".to_owned(),
                ),
                ItemOutcome::Retryable("es_rejected_execution_exception: queue full".to_owned()),
                ItemOutcome::Retryable("unavailable".to_owned()),
                ItemOutcome::Refused("status 409".to_owned()),
            ],
        );
    }

    #[test]
    fn an_answer_that_does_not_match_what_was_sent_is_an_error() {
        let one = json!({"errors": false, "items": [{"index": {"_id": "a", "status": 201}}]});
        let body = serde_json::to_vec(&one).unwrap();
        let error = |sent: &[&str]| parse_bulk_response(&body, sent).unwrap_err();
        assert!(error(&["a", "b"]).contains("1 items for 2"));
        assert!(error(&["b"]).contains("is for \"a\""));
        assert!(parse_bulk_response(b"<html>", &["a"]).is_err());
        assert!(parse_bulk_response(br#"{"items":[{"delete":{"status":200}}]}"#, &["a"]).is_err());
    }

    #[test]
    fn a_whole_answer_is_retried_on_429_and_5xx_and_refused_on_other_client_errors() {
        let body = Bytes::from("x".repeat(1000));
        let answered = classify_reply(StatusCode::OK, body.clone());
        assert!(matches!(answered, Reply::Answered(_)));
        for status in [429, 502, 503, 400, 401, 403, 413] {
            let status = StatusCode::from_u16(status).unwrap();
            match classify_reply(status, body.clone()) {
                Reply::Retryable(_) => assert!(is_transient_status(status.as_u16()), "{status}"),
                Reply::Refused(error) => {
                    assert!(
                        !error.is_transient() && status.is_client_error(),
                        "{status}"
                    );
                    assert!(error.message.contains(status.as_str()), "{error}");
                    assert_eq!(error.message.matches('x').count(), QUOTED_BYTES);
                }
                Reply::Answered(_) => panic!("{status} is not an answer"),
            }
        }
    }
}
