//! Ports: one small trait per external capability.
//!
//! Adapters implement them for the embedded local default and for AWS. They are batch-oriented
//! (one call per batch, not per event) and return [`StorageError`]s classified for retries.
//! Storage ports are async because their AWS implementations are network calls; reading a
//! source object is a blocking [`Read`] so that decoding stays a plain function over bytes.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StorageError;
use crate::stages::aggregate::AggregateDeltas;
use crate::stages::enrich::UserProfile;
use crate::stages::inference::ModelError;
use crate::stages::store::{Notification, SearchDocument, StoredEvent};

/// Reads source objects (the S3 source): a stream, never the whole object in memory.
pub trait ObjectSource: Send + Sync {
    fn open(&self, bucket: &str, key: &str) -> Result<Box<dyn Read + Send>, StorageError>;
}

/// Looks up user profiles for enrichment. Missing users are simply absent from the map.
#[async_trait]
pub trait ProfileTable: Send + Sync {
    async fn get_profiles(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, UserProfile>, StorageError>;
}

/// The processed events table, keyed by event id: writing an event again overwrites it.
#[async_trait]
pub trait EventTable: Send + Sync {
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), StorageError>;
}

/// What happened when a batch's aggregate deltas were offered to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplyOutcome {
    /// The deltas were added.
    Applied,
    /// This batch id was applied before; nothing changed.
    AlreadyApplied,
}

/// Aggregate counters, applied at most once per batch id and per event id. The deltas are
/// shared: an adapter that applies them elsewhere (another thread, a request body) needs no
/// copy, and neither does an in-process run whose `aggregate` stage kept them.
#[async_trait]
pub trait AggregateTable: Send + Sync {
    async fn apply_once(&self, deltas: Arc<AggregateDeltas>) -> Result<ApplyOutcome, StorageError>;
}

/// The data lake: objects under S3-style keys. Writing a key again replaces the object.
#[async_trait]
pub trait DataLake: Send + Sync {
    /// Writes events as one Parquet object at `key`.
    async fn put_events(&self, key: &str, events: &[StoredEvent]) -> Result<(), StorageError>;
    /// Writes an object as given (quarantined records as JSON Lines, for example).
    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError>;
}

/// Where a batch too large for a state's payload waits between stages (the claim-check
/// pattern): one stage writes it under an S3-style key and passes the key on; the next
/// stages read it. Writing a key again replaces it, so a retried stage is harmless.
#[async_trait]
pub trait BatchStaging: Send + Sync {
    async fn put_staged(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError>;
    async fn get_staged(&self, key: &str) -> Result<Vec<u8>, StorageError>;
    /// Removes every staged object under `prefix`; returns how many there were.
    async fn delete_staged(&self, prefix: &str) -> Result<usize, StorageError>;
}

/// Sends notifications. Each has a deterministic id; an id already sent is not sent again.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, notifications: &[Notification]) -> Result<usize, StorageError>;
}

/// A document the search index refused, with the reason; the rest of the batch is kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexFailure {
    pub event_id: String,
    pub reason: String,
}

/// The search index, documents keyed by event id.
#[async_trait]
pub trait SearchIndex: Send + Sync {
    async fn index(&self, documents: &[SearchDocument]) -> Result<Vec<IndexFailure>, StorageError>;

    /// Whether documents should carry the whole stored event as their `body` (a document
    /// store such as OpenSearch keeps it; an index of words only does not, and building it
    /// costs an encoding of every event).
    fn wants_bodies(&self) -> bool {
        false
    }
}

/// The risk model: scores a whole batch of feature rows in one call.
pub trait RiskModel: Send + Sync {
    /// The version recorded with every score.
    fn version(&self) -> &str;
    /// Scores at or over this are labelled high risk.
    fn threshold(&self) -> f32;
    /// The feature names in the order the model expects them.
    fn feature_names(&self) -> &[String];
    /// One score in [0, 1] per row, in order.
    fn score(&self, rows: &[Vec<f32>]) -> Result<Vec<f32>, ModelError>;
}
