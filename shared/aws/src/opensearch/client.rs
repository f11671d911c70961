//! The HTTP/1 client of the bulk endpoint, built once per cold start: connections are pooled
//! and reused by warm invocations. TLS is rustls with the system's root certificates, and
//! plain `http://` is accepted for local clusters.

use std::time::Duration;

use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use pipeline_adapters::ConfigError;
use pipeline_domain::StorageError;

use super::Signing;
use super::endpoint::bulk_request;
use super::response::{OPERATION, Reply, classify_reply};
use super::sign::sign_request;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one bulk request may take, answer included; a request that takes longer is
/// abandoned and retried like a lost connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pooled connections idle longer than this are closed rather than reused: a frozen Lambda
/// container finds its connections closed by the other end.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The connections: TLS or plain by the URL's scheme, or plain only when the system has no
/// root certificates and the endpoint is `http://`.
#[derive(Debug)]
enum Transport {
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
    Plain(Client<HttpConnector, Full<Bytes>>),
}

/// Sends bulk bodies to one endpoint, signed when signing is configured.
#[derive(Debug)]
pub struct BulkClient {
    transport: Transport,
    bulk_uri: Uri,
    signing: Option<Signing>,
}

impl BulkClient {
    pub fn new(bulk_uri: Uri, signing: Option<Signing>) -> Result<Self, ConfigError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT);
        let transport = match HttpsConnectorBuilder::new().with_native_roots() {
            Ok(tls) => Transport::Tls(
                builder.build(tls.https_or_http().enable_http1().wrap_connector(http)),
            ),
            Err(_) if bulk_uri.scheme_str() == Some("http") => {
                Transport::Plain(builder.build(http))
            }
            Err(error) => {
                return Err(ConfigError {
                    variable: "PIPELINE_SEARCH_URL".to_owned(),
                    message: format!(
                        "{bulk_uri} needs TLS, and no root certificates were found: {error}"
                    ),
                });
            }
        };
        Ok(Self {
            transport,
            bulk_uri,
            signing,
        })
    }

    /// Posts one bulk body and classifies what came back.
    pub async fn send(&self, body: Vec<u8>) -> Reply {
        let body = Bytes::from(body);
        let mut request = match bulk_request(&self.bulk_uri, body.clone()) {
            Ok(request) => request,
            Err(message) => return Reply::Refused(StorageError::permanent(OPERATION, message)),
        };
        if let Some(signing) = &self.signing
            && let Err(error) = sign_request(&mut request, &body, signing).await
        {
            return Reply::Refused(error);
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request)).await {
            Ok(reply) => reply,
            Err(_) => Reply::Retryable(format!(
                "the bulk request got no answer within {REQUEST_TIMEOUT:?}"
            )),
        }
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Reply {
        let answer: Result<Response<Incoming>, _> = match &self.transport {
            Transport::Tls(client) => client.request(request).await,
            Transport::Plain(client) => client.request(request).await,
        };
        let response = match answer {
            Ok(response) => response,
            Err(error) => {
                return Reply::Retryable(format!("the bulk request failed: {}", chain(&error)));
            }
        };
        let status = response.status();
        match response.into_body().collect().await {
            Ok(collected) => classify_reply(status, collected.to_bytes()),
            Err(error) => {
                Reply::Retryable(format!("reading the bulk answer failed: {}", chain(&error)))
            }
        }
    }
}

/// An error and its causes, which name what actually went wrong (refused, reset, DNS).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
