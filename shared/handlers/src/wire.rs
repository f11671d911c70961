//! The JSON that crosses a Lambda or state boundary: version 1 of the stage contracts.
//!
//! Domain types are embedded, but each envelope is declared here, at the edge, with its
//! version, so a change to a domain type that would break a deployed state machine shows up
//! as a change to this file and to the golden outputs.

use pipeline_domain::event::{SourceKind, UserEvent};
use pipeline_domain::sources::SkippedRecord;
use pipeline_domain::stages::aggregate::AggregateDeltas;
use pipeline_domain::stages::enrich::EnrichedEvent;
use pipeline_domain::stages::inference::RiskScore;
use pipeline_domain::stages::store::StoreReport;
use pipeline_domain::stages::validate::{RejectedRecord, ValidEvent, ValidatedBatch};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

/// `validate`'s output, which is also `enrich`'s input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateOutput {
    pub version: u32,
    pub batch_id: String,
    pub source_kind: SourceKind,
    pub counts: ValidateCounts,
    pub events: Vec<ValidEvent>,
    pub rejected: Vec<RejectedRecord>,
    pub skipped: Vec<SkippedRecord>,
}

impl From<ValidatedBatch> for ValidateOutput {
    fn from(batch: ValidatedBatch) -> Self {
        Self {
            version: CONTRACT_VERSION,
            counts: ValidateCounts {
                accepted: batch.events.len(),
                rejected: batch.rejected.len(),
                skipped: batch.skipped.len(),
                duplicates: batch.duplicates,
            },
            batch_id: batch.batch_id,
            source_kind: batch.source_kind,
            events: batch.events,
            rejected: batch.rejected,
            skipped: batch.skipped,
        }
    }
}

/// `enrich`'s input: a validated batch (other fields of `validate`'s output are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichInput {
    pub batch_id: String,
    pub events: Vec<ValidEvent>,
}

/// `enrich`'s output: the input of `aggregate`, `inference` and (with their results) `store`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichOutput {
    pub version: u32,
    pub batch_id: String,
    pub profiles_found: usize,
    pub events: Vec<EnrichedEvent>,
}

/// Any batch whose events carry an `event`: `validate`'s or `enrich`'s output.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsInput {
    pub batch_id: String,
    pub events: Vec<EventOnly>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventOnly {
    pub event: UserEvent,
}

/// `aggregate`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateOutput {
    pub version: u32,
    pub batch_id: String,
    pub aggregates: AggregateDeltas,
}

/// `inference`'s input: an enriched batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceInput {
    pub batch_id: String,
    pub events: Vec<EnrichedEvent>,
}

/// `inference`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceOutput {
    pub version: u32,
    pub batch_id: String,
    pub model_version: String,
    pub high_risk: usize,
    pub scores: Vec<RiskScore>,
}

/// `store`'s output: the domain's report, versioned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreOutput {
    pub version: u32,
    #[serde(flatten)]
    pub report: StoreReport,
}

/// Parses a stage's input, naming the stage and the problem when it does not fit.
pub fn parse_input<T: serde::de::DeserializeOwned>(
    stage: &str,
    event: Value,
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
