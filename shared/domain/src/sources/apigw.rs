//! API Gateway proxy events: REST APIs (payload 1.0) and HTTP APIs (payload 2.0).
//!
//! The body holds one event or a JSON array of events, possibly base64-encoded.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use base64::Engine;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{DecodeError, Decoded, Payload, RecordSink, parse_shape};
use crate::event::SourceKind;

pub(super) fn decode_rest(event: &Value) -> Result<Decoded, DecodeError> {
    let request: ApiGatewayProxyRequest = parse_shape(SourceKind::ApiGatewayRest, event)?;
    let request_id = request
        .request_context
        .request_id
        .unwrap_or_else(|| "request".to_owned());
    Ok(decode_body(
        SourceKind::ApiGatewayRest,
        &request_id,
        request.body,
        request.is_base64_encoded,
    ))
}

pub(super) fn decode_http(event: &Value) -> Result<Decoded, DecodeError> {
    let request: ApiGatewayV2httpRequest = parse_shape(SourceKind::ApiGatewayHttp, event)?;
    let request_id = request
        .request_context
        .request_id
        .unwrap_or_else(|| "request".to_owned());
    Ok(decode_body(
        SourceKind::ApiGatewayHttp,
        &request_id,
        request.body,
        request.is_base64_encoded,
    ))
}

fn decode_body(
    kind: SourceKind,
    request_id: &str,
    body: Option<String>,
    base64_encoded: bool,
) -> Decoded {
    let mut sink = RecordSink::new(kind);
    let Some(body) = body else {
        sink.push(
            format!("{request_id}#body"),
            Payload::Undecodable {
                pointer: String::new(),
                reason: "the request has no body".to_owned(),
            },
        );
        return sink.finish(None);
    };
    let bytes = if base64_encoded {
        match base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
            Ok(bytes) => bytes,
            Err(error) => {
                sink.push(
                    format!("{request_id}#body"),
                    Payload::Undecodable {
                        pointer: String::new(),
                        reason: format!("the body is marked base64 but does not decode: {error}"),
                    },
                );
                return sink.finish(None);
            }
        }
    } else {
        body.into_bytes()
    };
    match split_array(&bytes) {
        Some(items) => {
            for (position, item) in items.into_iter().enumerate() {
                sink.push(format!("{request_id}#{position}"), Payload::Bytes(item));
            }
        }
        None => sink.push(format!("{request_id}#body"), Payload::Bytes(bytes)),
    }
    sink.finish(None)
}

/// The raw bytes of each element when `bytes` is a JSON array, without parsing the elements.
pub(crate) fn split_array(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace())?;
    if *first != b'[' {
        return None;
    }
    let items: Vec<&RawValue> = serde_json::from_slice(bytes).ok()?;
    Some(
        items
            .into_iter()
            .map(|item| item.get().as_bytes().to_vec())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_split_into_raw_elements() {
        let items = split_array(br#" [ {"a": 1}, 2, "x" ] "#).unwrap();
        assert_eq!(
            items,
            vec![br#"{"a": 1}"#.to_vec(), b"2".to_vec(), br#""x""#.to_vec()]
        );
        assert_eq!(split_array(br#"{"a": 1}"#), None);
        assert_eq!(split_array(b"[1, "), None);
    }
}
