//! An HTTP proxy on 127.0.0.1 in front of the local AWS endpoint that can answer some
//! requests itself: the test double that makes DynamoDB throttle or leave items
//! unprocessed, which moto never does on its own.
//!
//! Each request is shown to the proxy's [`Fault`] rule with its `X-Amz-Target` (the
//! DynamoDB operation) and body; the rule either lets it through to the endpoint or answers
//! in its place. The proxy counts requests by operation, so tests can see the retries.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// What the proxy does with one request.
pub enum Verdict {
    /// Send it on to the endpoint.
    Forward,
    /// Answer it with this status and JSON body.
    Answer(u16, String),
}

/// Decides, per request, from the operation and its body (and how many requests of that
/// operation came before it, counting from 0).
pub type Fault = Box<dyn Fn(&str, &[u8], usize) -> Verdict + Send + Sync>;

pub struct FaultProxy {
    pub endpoint: String,
    seen: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (an `http://host:port` address) with `fault`.
    pub async fn start(upstream: String, fault: Fault) -> Self {
        Self::start_with(upstream, fault, false).await
    }

    /// A proxy that forwards one request at a time. moto runs requests on threads and does
    /// not isolate transactions from each other (a cancelled transaction restores the
    /// table as it was before it began, undoing writes made meanwhile), while DynamoDB's
    /// transactions are serializable. Forwarding one request at a time gives the clients
    /// behind the proxy DynamoDB's isolation while they still run concurrently.
    pub async fn serializing(upstream: String) -> Self {
        Self::start_with(upstream, Box::new(|_, _, _| Verdict::Forward), true).await
    }

    async fn start_with(upstream: String, fault: Fault, one_at_a_time: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("local address"));
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        let state = Arc::new((upstream, fault, client, seen.clone(), gate, one_at_a_time));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move {
                            let (upstream, fault, client, seen, gate, one_at_a_time) = &*state;
                            let _turn = if *one_at_a_time {
                                Some(gate.lock().await)
                            } else {
                                None
                            };
                            Ok::<_, Infallible>(
                                handle(request, upstream, fault, client, seen).await,
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            seen,
            task,
        }
    }

    /// How many requests of `operation` (`BatchWriteItem`, ...) reached the proxy.
    pub fn seen(&self, operation: &str) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(operation)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    request: Request<Incoming>,
    upstream: &str,
    fault: &Fault,
    client: &Client<HttpConnector, Full<Bytes>>,
    seen: &Mutex<HashMap<String, usize>>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .and_then(|target| target.rsplit('.').next())
        .unwrap_or("")
        .to_owned();
    let count = {
        let mut seen = seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = seen.entry(operation.clone()).or_default();
        *entry += 1;
        *entry - 1
    };
    match fault(&operation, &body, count) {
        Verdict::Answer(status, json) => Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", "application/x-amz-json-1.0")
            .body(Full::new(Bytes::from(json)))
            .expect("a valid response"),
        Verdict::Forward => {
            let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
            let mut forwarded = Request::builder()
                .method(parts.method.clone())
                .uri(format!("{upstream}{path}"));
            for (name, value) in &parts.headers {
                forwarded = forwarded.header(name, value);
            }
            let forwarded = forwarded.body(Full::new(body)).expect("a valid request");
            match client.request(forwarded).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    Response::from_parts(parts, Full::new(body))
                }
                Err(error) => Response::builder()
                    .status(StatusCode::BAD_GATEWAY)
                    .body(Full::new(Bytes::from(error.to_string())))
                    .expect("a valid response"),
            }
        }
    }
}
