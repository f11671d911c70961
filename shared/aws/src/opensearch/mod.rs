//! The [`SearchIndex`] port over the OpenSearch (or Elasticsearch) bulk API.
//!
//! Documents are indexed under their event id, so a replay overwrites rather than adds.
//! The stored document is the event's body with its search words added as `searchText`.
//! One call encodes each document once (`request.rs`), sends the documents in bulk requests
//! of at most `max_request_bytes`, one request after the other (`endpoint.rs`, `client.rs`,
//! signed by `sign.rs` for Amazon OpenSearch Service), reads each answer item by item
//! (`response.rs`) and resends only what failed retryably (`retry.rs`, `backoff.rs`). A
//! document the cluster refuses for good comes back as an
//! [`IndexFailure`]; the rest of the batch is kept.
//!
//! OpenSearch Serverless (`aoss`) accepts custom document ids in search collections only,
//! not in time-series collections, so the collection must be of the search type.

mod client;
mod endpoint;
mod request;
mod response;
mod retry;
mod sign;

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use pipeline_adapters::ConfigError;
use pipeline_domain::StorageError;
use pipeline_domain::ports::{IndexFailure, SearchIndex};
use pipeline_domain::stages::store::SearchDocument;

use client::BulkClient;

/// The default of [`OpenSearchSettings::max_request_bytes`]: 5 MiB, well under the 10 MiB
/// HTTP payload limit of the smallest OpenSearch Service instances.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;
/// The default of [`OpenSearchSettings::max_attempts`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Where and how documents are indexed.
#[derive(Debug, Clone)]
pub struct OpenSearchSettings {
    /// The endpoint, for example `https://search-x.us-east-1.es.amazonaws.com` or
    /// `http://127.0.0.1:9200` (`PIPELINE_SEARCH_URL`).
    pub url: String,
    /// The index documents are written to (`PIPELINE_SEARCH_INDEX`).
    pub index: String,
    /// SigV4 signing, for Amazon OpenSearch Service and OpenSearch Serverless; `None` sends
    /// requests unsigned.
    pub signing: Option<Signing>,
    /// The largest bulk request body; documents are split over several requests to stay
    /// under it, and a document larger than it alone is refused.
    pub max_request_bytes: usize,
    /// How many times a document failing retryably is sent before the call fails (0 is
    /// taken as 1).
    pub max_attempts: u32,
}

impl OpenSearchSettings {
    /// Settings for `url` and `index`, unsigned, with the default limits.
    pub fn new(url: impl Into<String>, index: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            index: index.into(),
            signing: None,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// What requests are signed for, and with whose credentials.
#[derive(Debug, Clone)]
pub struct Signing {
    /// `es` for Amazon OpenSearch Service, `aoss` for OpenSearch Serverless.
    pub service: String,
    pub region: String,
    pub credentials: SharedCredentialsProvider,
}

/// The search index in an OpenSearch or Elasticsearch cluster.
#[derive(Debug)]
pub struct OpenSearchIndex {
    client: BulkClient,
    index: String,
    max_request_bytes: usize,
    max_attempts: u32,
}

impl OpenSearchIndex {
    /// Checks the settings and builds the HTTP client, once per cold start.
    pub fn new(settings: OpenSearchSettings) -> Result<Self, ConfigError> {
        let bulk_uri = endpoint::bulk_uri(settings.url.trim()).map_err(|message| ConfigError {
            variable: "PIPELINE_SEARCH_URL".to_owned(),
            message,
        })?;
        check_index_name(&settings.index).map_err(|message| ConfigError {
            variable: "PIPELINE_SEARCH_INDEX".to_owned(),
            message,
        })?;
        Ok(Self {
            client: BulkClient::new(bulk_uri, settings.signing)?,
            index: settings.index,
            max_request_bytes: settings.max_request_bytes,
            max_attempts: settings.max_attempts.max(1),
        })
    }
}

#[async_trait]
impl SearchIndex for OpenSearchIndex {
    async fn index(&self, documents: &[SearchDocument]) -> Result<Vec<IndexFailure>, StorageError> {
        let (encoded, mut failures) =
            request::encode_documents(documents, &self.index, self.max_request_bytes);
        let send = |body| self.client.send(body);
        let refused =
            retry::index_with_retries(&encoded, self.max_request_bytes, self.max_attempts, send)
                .await?;
        failures.extend(refused);
        Ok(failures)
    }

    fn wants_bodies(&self) -> bool {
        true
    }
}

/// OpenSearch's rules for index names: lower case, no spaces or `\ / * ? " < > | , # :`,
/// not starting with `-`, `_` or `+`, not `.` or `..`, at most 255 bytes.
fn check_index_name(name: &str) -> Result<(), String> {
    let forbidden = |c: char| c.is_uppercase() || c.is_whitespace() || "\\/*?\"<>|,#:".contains(c);
    if name.is_empty() || name.len() > 255 || name == "." || name == ".." {
        return Err(format!("{name:?} is not an index name (1 to 255 bytes)"));
    }
    if name.starts_with(['-', '_', '+']) || name.contains(forbidden) {
        return Err(format!(
            "{name:?} is not an index name: use lower case, no spaces or \\ / * ? \" < > | , # :, and do not start with - _ +"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_their_variable() {
        let error = OpenSearchIndex::new(OpenSearchSettings::new(
            "search-x.es.amazonaws.com",
            "events",
        ))
        .unwrap_err();
        assert_eq!(error.variable, "PIPELINE_SEARCH_URL");
        let error =
            OpenSearchIndex::new(OpenSearchSettings::new("http://127.0.0.1:9200", "Events"))
                .unwrap_err();
        assert_eq!(error.variable, "PIPELINE_SEARCH_INDEX");
        for name in ["pipeline-events", "events.2024", "a"] {
            assert_eq!(check_index_name(name), Ok(()), "{name}");
        }
        for name in ["", "_events", "a b", "a/b", "a*", ".."] {
            assert!(check_index_name(name).is_err(), "{name:?}");
        }
    }

    #[tokio::test]
    async fn nothing_to_index_sends_nothing() {
        // Port 9 (discard) on 127.0.0.1: a request would fail, so success means none was sent.
        let index =
            OpenSearchIndex::new(OpenSearchSettings::new("http://127.0.0.1:9", "events")).unwrap();
        assert!(index.wants_bodies());
        assert_eq!(index.index(&[]).await, Ok(vec![]));
    }
}
