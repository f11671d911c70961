//! The JSON that crosses a Lambda or state boundary: version 1 of the stage contracts.
//!
//! Domain types are embedded, but each envelope is declared here, at the edge, with its
//! version, so a change to a domain type that would break a deployed state machine shows up
//! as a change to this file and to the golden outputs.

use pipeline_domain::event::{SourceKind, UserEvent};
use pipeline_domain::sources::SkippedRecord;
use pipeline_domain::stages::aggregate::AggregateDeltas;
use pipeline_domain::stages::enriched_batch::EnrichedBatch;
use pipeline_domain::stages::inference::RiskScore;
use pipeline_domain::stages::store::StoreReport;
use pipeline_domain::stages::validate::{RejectedRecord, ValidEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::carried::{Carried, CarriedItem, Countable};
use crate::error::{ErrorName, HandlerError};

/// The contract version every stage writes and accepts.
pub const CONTRACT_VERSION: u32 = 1;

/// Counts that summarise a validated batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateCounts {
    pub accepted: usize,
    pub rejected: usize,
    pub skipped: usize,
    pub duplicates: usize,
    pub parts: usize,
}

/// One part of a validated batch: the unit that goes through enrich, aggregate, inference
/// and store. A small batch is one part with the batch's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchPart {
    pub batch_id: String,
    pub events: Carried<Vec<ValidEvent>>,
    /// The batch's rejected records travel with its last part, so they are quarantined once.
    pub rejected: Carried<Vec<RejectedRecord>>,
}

/// `validate`'s output: the batch's parts and what was rejected or skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateOutput {
    pub version: u32,
    pub batch_id: String,
    pub source_kind: SourceKind,
    pub counts: ValidateCounts,
    /// Rejections counted by field (JSON pointer), the most frequent first, at most
    /// [`TOP_REASONS`].
    pub rejected_reasons: Vec<ReasonCount>,
    pub parts: Vec<BatchPart>,
    /// The first skipped records (at most [`SKIPPED_LISTED`]); `counts.skipped` has them all.
    pub skipped: Vec<SkippedRecord>,
}

/// How many distinct rejection reasons a summary keeps.
pub const TOP_REASONS: usize = 5;
/// How many skipped records `validate`'s output lists.
pub const SKIPPED_LISTED: usize = 20;

/// A field and how many records it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonCount {
    pub field: String,
    pub count: usize,
}

/// What a `ValidationError` carries in its message, as JSON: the batch and its rejected
/// records, so that the state machine's catch path can quarantine them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationFailure {
    pub message: String,
    pub batch_id: String,
    pub source_kind: SourceKind,
    pub rejected: Carried<Vec<RejectedRecord>>,
}

/// `enrich`'s input: one part of a validated batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichInput {
    pub batch_id: String,
    pub events: Carried<Vec<ValidEvent>>,
}

/// `enrich`'s output: the input of `aggregate`, `inference` and (with their results) `store`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichOutput {
    pub version: u32,
    pub batch_id: String,
    pub profiles_found: usize,
    pub events: Carried<EnrichedBatch>,
}

/// Any batch whose events carry an `event`: `validate`'s parts or `enrich`'s output.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsInput {
    pub batch_id: String,
    pub events: Carried<Vec<EventOnly>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventOnly {
    pub event: UserEvent,
}

/// `aggregate`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateOutput {
    pub version: u32,
    pub batch_id: String,
    pub aggregates: Carried<AggregateDeltas>,
}

/// `inference`'s input: an enriched batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceInput {
    pub batch_id: String,
    pub events: Carried<EnrichedBatch>,
}

/// `inference`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceOutput {
    pub version: u32,
    pub batch_id: String,
    pub model_version: String,
    pub high_risk: usize,
    pub scores: Carried<Vec<RiskScore>>,
}

/// A part to store: `store`'s usual input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreBatchInput {
    pub batch_id: String,
    pub events: Carried<EnrichedBatch>,
    #[serde(default)]
    pub aggregates: Option<Carried<AggregateDeltas>>,
    #[serde(default)]
    pub scores: Carried<Vec<RiskScore>>,
    #[serde(default)]
    pub rejected: Carried<Vec<RejectedRecord>>,
}

/// `store`'s other input, `{"quarantine": {"error", "cause"}}`: a batch with no valid record,
/// caught by the state machine.
#[derive(Debug, Clone, Deserialize)]
pub struct QuarantineInput {
    pub quarantine: QuarantineRequest,
}

/// The error a `Catch` caught: its name and cause, as Step Functions reports them.
#[derive(Debug, Clone, Deserialize)]
pub struct QuarantineRequest {
    pub error: String,
    pub cause: String,
}

/// `store`'s output: the domain's report, versioned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreOutput {
    pub version: u32,
    #[serde(flatten)]
    pub report: StoreReport,
}

impl CarriedItem for EventOnly {}

impl Countable for AggregateDeltas {
    fn item_count(&self) -> usize {
        self.counters.len()
    }
}

/// Parses a stage's input, naming the stage and the problem when it does not fit.
pub fn parse_input<T: serde::de::DeserializeOwned>(
    stage: &str,
    event: &Value,
) -> Result<T, HandlerError> {
    if let Some(version) = event.get("version").and_then(Value::as_u64)
        && version != u64::from(CONTRACT_VERSION)
    {
        return Err(HandlerError::new(
            ErrorName::InvalidStageInput,
            format!("{stage} accepts contract version {CONTRACT_VERSION}, not {version}"),
        ));
    }
    serde_path_to_error::deserialize(event).map_err(|error| {
        let path = error.path().to_string();
        HandlerError::new(
            ErrorName::InvalidStageInput,
            format!(
                "{stage} input does not match its contract at {path}: {}",
                error.inner()
            ),
        )
    })
}
