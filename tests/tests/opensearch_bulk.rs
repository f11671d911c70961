//! The OpenSearch bulk adapter against a local server that plays the documented bulk API
//! strictly: a request that is not `POST /_bulk` with `Content-Type: application/x-ndjson`
//! and a body of alternating action and document lines, each valid JSON and ending in a
//! newline, is answered 400 as OpenSearch answers it, so a format bug fails these tests.
//! The server keeps documents by index and id, answers each item with its own status, and
//! can be told to refuse ids for good, throttle ids for a number of tries, or answer a whole
//! request 503.
//!
//! Where OpenSearch's documentation asks more than its server enforces, the fake enforces the
//! documentation: POST only (the server also takes PUT) and `application/x-ndjson` only.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pipeline_adapters::model::hex_digest;
use pipeline_aws::opensearch::{OpenSearchIndex, OpenSearchSettings, Signing};
use pipeline_domain::ports::SearchIndex;
use pipeline_domain::stages::store::SearchDocument;
use serde_json::{Value, json};
use tokio::task::{JoinHandle, JoinSet};

const INDEX: &str = "pipeline-events";

/// What the server holds and has seen, and the failures it was told to play.
#[derive(Default)]
struct Cluster {
    /// Documents by index and id.
    documents: HashMap<(String, String), Value>,
    /// Every well-formed bulk request, in arrival order.
    requests: Vec<Received>,
    /// Why each malformed request was refused.
    malformed: Vec<String>,
    /// Ids answered 400 `mapper_parsing_exception` on every try.
    refuse: HashSet<String>,
    /// Ids answered 429 `es_rejected_execution_exception` for this many more tries.
    throttle: HashMap<String, u32>,
    /// How many more whole requests are answered 503.
    unavailable: u32,
}

struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    ids: Vec<String>,
}

/// The local server; it stops when dropped, and with it every open connection.
struct FakeOpenSearch {
    url: String,
    cluster: Arc<Mutex<Cluster>>,
    server: JoinHandle<()>,
}

impl FakeOpenSearch {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let cluster = Arc::new(Mutex::new(Cluster::default()));
        let shared = Arc::clone(&cluster);
        let server = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                let cluster = Arc::clone(&shared);
                let service = service_fn(move |request| {
                    let cluster = Arc::clone(&cluster);
                    async move { Ok::<_, Infallible>(answer(&cluster, request).await) }
                });
                connections.spawn(async move {
                    let _closed = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            cluster,
            server,
        }
    }

    fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap()
    }

    fn index(&self, max_attempts: u32, max_request_bytes: usize) -> OpenSearchIndex {
        let mut settings = OpenSearchSettings::new(&self.url, INDEX);
        settings.max_attempts = max_attempts;
        settings.max_request_bytes = max_request_bytes;
        OpenSearchIndex::new(settings).unwrap()
    }

    fn stored(&self, id: &str) -> Option<Value> {
        self.cluster()
            .documents
            .get(&(INDEX.to_owned(), id.to_owned()))
            .cloned()
    }

    /// The ids of every request received, in order.
    fn requests(&self) -> Vec<Vec<String>> {
        self.cluster()
            .requests
            .iter()
            .map(|request| request.ids.clone())
            .collect()
    }

    fn assert_only_well_formed_requests(&self) {
        let cluster = self.cluster();
        assert!(
            cluster.malformed.is_empty(),
            "malformed bulk requests: {:?}",
            cluster.malformed
        );
    }
}

impl Drop for FakeOpenSearch {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// OpenSearch's error body for a whole request.
fn error_response(status: StatusCode, kind: &str, reason: &str) -> Response<Full<Bytes>> {
    let cause = json!({"type": kind, "reason": reason});
    let body = json!({"error": {"root_cause": [cause], "type": kind, "reason": reason}, "status": status.as_u16()});
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn answer(cluster: &Mutex<Cluster>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "parse_exception",
                &error.to_string(),
            );
        }
    };
    let mut guard = cluster.lock().unwrap();
    let cluster = &mut *guard;
    let actions = match check_bulk(&parts, &body) {
        Ok(actions) => actions,
        Err(reason) => {
            cluster.malformed.push(reason.clone());
            return error_response(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &reason,
            );
        }
    };
    let ids = actions.iter().map(|(_, id, _)| id.clone()).collect();
    cluster.requests.push(Received {
        headers: parts.headers,
        body,
        ids,
    });
    if cluster.unavailable > 0 {
        cluster.unavailable -= 1;
        let reason = "blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];";
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster_block_exception",
            reason,
        );
    }
    let mut errors = false;
    let mut items = Vec::new();
    for (index, id, source) in actions {
        let head = json!({"_index": index, "_id": id});
        let throttled = cluster.throttle.get_mut(&id).filter(|tries| **tries > 0);
        let item = if cluster.refuse.contains(&id) {
            errors = true;
            let reason = format!(
                "failed to parse field [amount] of type [double] in document with id '{id}'"
            );
            json!({"status": 400, "error": {"type": "mapper_parsing_exception", "reason": reason}})
        } else if let Some(tries) = throttled {
            *tries -= 1;
            errors = true;
            let reason = "rejected execution of coordinating operation";
            json!({"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": reason}})
        } else {
            let replaced = cluster.documents.insert((index, id), source).is_some();
            let (status, result) = if replaced {
                (200, "updated")
            } else {
                (201, "created")
            };
            let shards = json!({"total": 2, "successful": 1, "failed": 0});
            json!({"_version": 1, "result": result, "_shards": shards, "status": status, "_seq_no": 0, "_primary_term": 1})
        };
        let mut result = head;
        result
            .as_object_mut()
            .unwrap()
            .extend(item.as_object().unwrap().clone());
        items.push(json!({"index": result}));
    }
    json_response(
        StatusCode::OK,
        &json!({"took": 3, "errors": errors, "items": items}),
    )
}

/// The actions of a well-formed bulk request (index, id, document), or why it is not one.
fn check_bulk(parts: &Parts, body: &[u8]) -> Result<Vec<(String, String, Value)>, String> {
    if parts.method != Method::POST {
        return Err(format!("the bulk API takes POST, not {}", parts.method));
    }
    if parts.uri.path() != "/_bulk" || parts.uri.query().is_some() {
        return Err(format!("no bulk endpoint at {}", parts.uri));
    }
    if !parts.headers.contains_key(HOST) {
        return Err("the request has no Host header".to_owned());
    }
    let media_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    if media_type
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        != Some("application/x-ndjson")
    {
        return Err(format!(
            "Content-Type {media_type:?} is not application/x-ndjson"
        ));
    }
    let text =
        std::str::from_utf8(body).map_err(|error| format!("the body is not UTF-8: {error}"))?;
    let Some(text) = text.strip_suffix('\n') else {
        return Err("The bulk request must be terminated by a newline [\\n]".to_owned());
    };
    let lines: Vec<&str> = text.split('\n').collect();
    if !lines.len().is_multiple_of(2) {
        return Err(format!(
            "{} lines: every action needs its document",
            lines.len()
        ));
    }
    let mut actions = Vec::new();
    for (number, pair) in lines.chunks(2).enumerate() {
        let parse = |line: &str| {
            serde_json::from_str::<Value>(line)
                .map_err(|error| format!("line {}: {error}", number * 2 + 1))
        };
        let action = parse(pair[0])?;
        let target = action
            .as_object()
            .filter(|action| action.len() == 1)
            .and_then(|action| action.get("index"));
        let field = |name: &str| {
            target
                .and_then(|target| target.get(name))
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
        };
        let (Some(index), Some(id)) = (field("_index"), field("_id")) else {
            return Err(format!(
                "action {number} is not an index action with _index and _id: {action}"
            ));
        };
        let document = parse(pair[1])?;
        if !document.is_object() {
            return Err(format!("document {number} is not a JSON object"));
        }
        actions.push((index.to_owned(), id.to_owned(), document));
    }
    Ok(actions)
}

fn document(id: &str, amount: f64) -> SearchDocument {
    SearchDocument {
        event_id: id.to_owned(),
        text: format!("purchase user-{id} mobile"),
        body: json!({"eventId": id, "eventType": "purchase", "data": {"amount": amount}}),
    }
}

fn documents(count: usize, amount: f64) -> Vec<SearchDocument> {
    (1..=count)
        .map(|n| document(&format!("e{n}"), amount))
        .collect()
}

fn ids(documents: &[SearchDocument]) -> Vec<String> {
    documents
        .iter()
        .map(|document| document.event_id.clone())
        .collect()
}

#[tokio::test]
async fn every_document_is_indexed_by_event_id_and_a_second_write_overwrites() {
    let server = FakeOpenSearch::start().await;
    let index = server.index(3, 5 * 1024 * 1024);
    let mut first = documents(4, 10.0);
    first.push(SearchDocument {
        event_id: "bare".to_owned(),
        text: "no body".to_owned(),
        body: Value::Null,
    });
    assert_eq!(index.index(&first).await, Ok(vec![]));
    for document in &first[..4] {
        let stored = server.stored(&document.event_id).unwrap();
        let mut expected = document.body.clone();
        expected["searchText"] = json!(document.text);
        assert_eq!(stored, expected);
    }
    assert_eq!(
        server.stored("bare"),
        Some(json!({"searchText": "no body"}))
    );

    let second = documents(4, 99.5);
    assert_eq!(index.index(&second).await, Ok(vec![]));
    assert_eq!(server.cluster().documents.len(), 5);
    for document in &second {
        assert_eq!(
            server.stored(&document.event_id).unwrap()["data"]["amount"],
            99.5
        );
    }
    assert_eq!(server.requests().len(), 2);
    server.assert_only_well_formed_requests();
}

#[tokio::test]
async fn a_refused_document_comes_back_as_a_failure_and_the_rest_are_kept() {
    let server = FakeOpenSearch::start().await;
    server.cluster().refuse.insert("e2".to_owned());
    let failures = server
        .index(3, 5 * 1024 * 1024)
        .index(&documents(4, 1.0))
        .await
        .unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].event_id, "e2");
    assert!(
        failures[0]
            .reason
            .starts_with("mapper_parsing_exception: failed to parse field [amount]"),
        "{failures:?}"
    );
    assert_eq!(server.stored("e2"), None);
    for id in ["e1", "e3", "e4"] {
        assert!(server.stored(id).is_some(), "{id}");
    }
    assert_eq!(
        server.requests().len(),
        1,
        "a refused document is not resent"
    );
    server.assert_only_well_formed_requests();
}

#[tokio::test]
async fn throttled_items_are_resent_alone_and_end_indexed() {
    let server = FakeOpenSearch::start().await;
    server
        .cluster()
        .throttle
        .extend([("e2".to_owned(), 1), ("e4".to_owned(), 1)]);
    let sent = documents(5, 1.0);
    assert_eq!(
        server.index(3, 5 * 1024 * 1024).index(&sent).await,
        Ok(vec![])
    );
    assert_eq!(
        server.requests(),
        [ids(&sent), vec!["e2".to_owned(), "e4".to_owned()]]
    );
    for id in ids(&sent) {
        assert!(server.stored(&id).is_some(), "{id}");
    }
    server.assert_only_well_formed_requests();
}

#[tokio::test]
async fn a_whole_request_answered_503_is_sent_again() {
    let server = FakeOpenSearch::start().await;
    server.cluster().unavailable = 1;
    let sent = documents(3, 1.0);
    assert_eq!(
        server.index(3, 5 * 1024 * 1024).index(&sent).await,
        Ok(vec![])
    );
    assert_eq!(server.requests(), [ids(&sent), ids(&sent)]);
    assert_eq!(server.cluster().documents.len(), 3);
    server.assert_only_well_formed_requests();
}

#[tokio::test]
async fn failures_that_never_pass_fail_the_call_as_transient_after_the_last_attempt() {
    let server = FakeOpenSearch::start().await;
    server.cluster().throttle.insert("e3".to_owned(), u32::MAX);
    let error = server
        .index(3, 5 * 1024 * 1024)
        .index(&documents(4, 1.0))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(
        error
            .message
            .starts_with("1 of 4 documents were still failing after 3 attempts"),
        "{error}"
    );
    assert!(
        error.message.contains("es_rejected_execution_exception"),
        "{error}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[1..],
        [vec!["e3".to_owned()], vec!["e3".to_owned()]]
    );
    for id in ["e1", "e2", "e4"] {
        assert!(server.stored(id).is_some(), "{id}");
    }
    server.assert_only_well_formed_requests();
}

#[tokio::test]
async fn a_small_request_limit_splits_the_documents_over_several_requests() {
    let server = FakeOpenSearch::start().await;
    let limit = 700;
    let sent = documents(20, 1.0);
    assert_eq!(server.index(3, limit).index(&sent).await, Ok(vec![]));
    let cluster = server.cluster();
    assert!(
        cluster.requests.len() > 3,
        "{} requests",
        cluster.requests.len()
    );
    for request in &cluster.requests {
        assert!(
            request.body.len() <= limit,
            "a request of {} bytes",
            request.body.len()
        );
    }
    let received: Vec<String> = cluster
        .requests
        .iter()
        .flat_map(|request| request.ids.clone())
        .collect();
    assert_eq!(received, ids(&sent));
    assert_eq!(cluster.documents.len(), 20);
    drop(cluster);
    server.assert_only_well_formed_requests();
}

#[tokio::test]
async fn signed_requests_carry_a_sigv4_authorization_and_the_body_digest() {
    let server = FakeOpenSearch::start().await;
    server.cluster().unavailable = 1;
    let mut settings = OpenSearchSettings::new(&server.url, INDEX);
    settings.max_request_bytes = 700;
    settings.signing = Some(Signing {
        service: "es".to_owned(),
        region: "us-east-1".to_owned(),
        credentials: SharedCredentialsProvider::new(Credentials::new(
            "AKID", "SECRET", None, None, "test",
        )),
    });
    let sent = documents(8, 1.0);
    assert_eq!(
        OpenSearchIndex::new(settings).unwrap().index(&sent).await,
        Ok(vec![])
    );
    let cluster = server.cluster();
    assert!(
        cluster.requests.len() > 2,
        "{} requests",
        cluster.requests.len()
    );
    for request in &cluster.requests {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
        };
        let authorization = header("authorization").expect("an authorization header");
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("/us-east-1/es/aws4_request, SignedHeaders="),
            "{authorization}"
        );
        assert!(
            authorization.contains("x-amz-content-sha256;x-amz-date"),
            "{authorization}"
        );
        let date = header("x-amz-date").expect("an x-amz-date header");
        assert!(
            date.len() == 16 && date.ends_with('Z') && date.as_bytes()[8] == b'T',
            "{date}"
        );
        assert_eq!(
            header("x-amz-content-sha256"),
            Some(hex_digest(&request.body))
        );
    }
    assert_eq!(cluster.documents.len(), 8);
    drop(cluster);
    server.assert_only_well_formed_requests();
}

#[tokio::test]
async fn the_fake_refuses_requests_that_break_the_documented_format() {
    let server = FakeOpenSearch::start().await;
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let good =
        "{\"index\":{\"_index\":\"pipeline-events\",\"_id\":\"a\"}}\n{\"searchText\":\"x\"}\n";
    let cases = [
        ("POST", "/_bulk", "application/json", good.to_owned()),
        ("PUT", "/_bulk", "application/x-ndjson", good.to_owned()),
        (
            "POST",
            "/pipeline-events/_doc",
            "application/x-ndjson",
            good.to_owned(),
        ),
        (
            "POST",
            "/_bulk",
            "application/x-ndjson",
            good.trim_end().to_owned(),
        ),
        (
            "POST",
            "/_bulk",
            "application/x-ndjson",
            good.replace("\"_id\":\"a\"", "\"id\":\"a\""),
        ),
        (
            "POST",
            "/_bulk",
            "application/x-ndjson",
            good.replace("{\"searchText\":\"x\"}", "{searchText}"),
        ),
        (
            "POST",
            "/_bulk",
            "application/x-ndjson",
            format!("{good}{good}").replacen("\n", "\n\n", 1),
        ),
    ];
    for (method, path, media_type, body) in &cases {
        let request = Request::builder()
            .method(*method)
            .uri(format!("{}{path}", server.url))
            .header(CONTENT_TYPE, *media_type)
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{method} {path} {media_type} {body:?}"
        );
        let answer: Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(answer["status"], 400);
        assert!(answer["error"]["type"].is_string(), "{answer}");
    }
    let cluster = server.cluster();
    assert_eq!(cluster.malformed.len(), cases.len());
    assert!(cluster.requests.is_empty() && cluster.documents.is_empty());
}
