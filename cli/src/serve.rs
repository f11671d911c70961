//! `pipeline serve`: a local HTTP endpoint in front of the state machine, answering as the
//! deployed API does. The server takes its listener and its shutdown signal as arguments,
//! so tests own both.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use pipeline_asl::ExecutionOptions;
use pipeline_handlers::Dependencies;
use pipeline_handlers::carried::encoded_size;
use pipeline_handlers::orchestrator::Orchestrator;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Step Functions' limit on an execution's input, which the API Gateway event must fit.
pub const EXECUTION_INPUT_LIMIT: usize = 262_144;
/// Bodies over this are refused before they are read whole.
const BODY_READ_LIMIT: usize = 1024 * 1024;
/// Most rejected records listed in a response.
const REJECTED_LISTED: usize = 100;

/// What every request needs.
pub struct App {
    orchestrator: Arc<Orchestrator>,
    deps: Arc<Dependencies>,
    requests: AtomicU64,
}

impl App {
    pub fn new(orchestrator: Arc<Orchestrator>, deps: Arc<Dependencies>) -> Self {
        Self {
            orchestrator,
            deps,
            requests: AtomicU64::new(0),
        }
    }
}

/// Accepts connections until `shutdown` completes.
pub async fn serve(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) {
    let app = Arc::new(app);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(&app, request).await) }
            });
            // A client that hangs up mid-request only ends its own connection.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if path != "/events" && path != "/" {
        return respond(
            StatusCode::NOT_FOUND,
            &json!({ "message": format!("no route for {path}; POST events to /events") }),
        );
    }
    if request.method() != Method::POST {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "message": format!("{} is not allowed; POST a JSON event or an array of events", request.method()) }),
        );
    }
    let number = app.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, BODY_READ_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({ "message": format!("the body is over {BODY_READ_LIMIT} bytes") }),
            );
        }
    };
    let event = api_gateway_event(&parts, &path, &body, number);
    let input_bytes = encoded_size(&event);
    if input_bytes > EXECUTION_INPUT_LIMIT {
        return respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({ "message": format!(
                "the request makes an execution input of {input_bytes} bytes, over Step Functions' {EXECUTION_INPUT_LIMIT}-byte limit; upload large batches to S3 instead"
            ) }),
        );
    }
    let options = ExecutionOptions {
        name: format!("serve-{}-{number}", std::process::id()),
        ..ExecutionOptions::default()
    };
    let execution = app.orchestrator.execute(event, &options).await;
    let output = match execution.result {
        Ok(output) => output,
        Err(failure) if failure.error == "States.DataLimitExceeded" => {
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({ "message": failure.cause }),
            );
        }
        Err(failure) => {
            return respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "error": failure.error, "cause": failure.cause }),
            );
        }
    };
    crate::runner::remove_staged_of(&app.deps, &output).await;
    let quarantine_keys: Vec<String> = std::iter::once(&output)
        .chain(output["parts"].as_array().into_iter().flatten())
        .filter_map(|report| report["quarantineObject"].as_str().map(str::to_owned))
        .collect();
    let rejected_records = read_rejected(&app.deps, &quarantine_keys).await;
    if output["status"] == "quarantined" {
        return respond(
            StatusCode::BAD_REQUEST,
            &json!({
                "message": "no event in the request is valid",
                "batchId": output["batchId"],
                "accepted": 0,
                "rejected": output["rejected"],
                "rejectedRecords": rejected_records,
            }),
        );
    }
    respond(
        StatusCode::OK,
        &json!({
            "batchId": output["batchId"],
            "accepted": output["counts"]["accepted"],
            "rejected": output["counts"]["rejected"],
            "duplicates": output["counts"]["duplicates"],
            "rejectedRecords": rejected_records,
        }),
    )
}

/// The request as API Gateway's HTTP API (payload 2.0) hands it to the state machine.
fn api_gateway_event(
    parts: &hyper::http::request::Parts,
    path: &str,
    body: &[u8],
    number: u64,
) -> Value {
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|value| (name.as_str().to_owned(), Value::from(value)))
        })
        .collect();
    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => {
            use base64::Engine;
            (base64::engine::general_purpose::STANDARD.encode(body), true)
        }
    };
    let now = chrono::Utc::now();
    json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": parts.headers.get(hyper::header::USER_AGENT).and_then(|value| value.to_str().ok()).unwrap_or_default(),
            },
            "requestId": format!("local-{}-{number}", std::process::id()),
            "routeKey": format!("POST {path}"),
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "body": body,
        "isBase64Encoded": encoded,
    })
}

/// The rejected records of the request, read back from their quarantine objects in the
/// data lake (through the staging port, which reads any key of the lake).
async fn read_rejected(deps: &Dependencies, keys: &[String]) -> Vec<Value> {
    let mut records = Vec::new();
    for key in keys {
        let Ok(bytes) = deps.staging.get_staged(key).await else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines() {
            if records.len() == REJECTED_LISTED {
                return records;
            }
            if let Ok(record) = serde_json::from_str::<Value>(line) {
                records.push(json!({
                    "index": record["source"]["index"],
                    "errors": record["errors"],
                }));
            }
        }
    }
    records
}
