//! The stages run in order in-process: validate, enrich, aggregate and inference, store.
//!
//! This is the flow the state machine orchestrates when deployed; here each stage still
//! receives and returns the JSON of its contract, so the wire formats are exercised too.

use serde_json::{Value, json};

use crate::deps::Dependencies;
use crate::error::HandlerError;
use crate::invoke::invoke;
use crate::stage::Stage;

/// What one source event became.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainOutcome {
    pub validate: Value,
    pub enrich: Value,
    pub aggregate: Value,
    pub inference: Value,
    pub store: Value,
}

/// Runs one source event through every stage. A `ValidationError` (no valid record) or any
/// other stage failure ends the chain with that error.
pub async fn run_chain(
    deps: &Dependencies,
    event: Value,
    request_id: &str,
) -> Result<ChainOutcome, HandlerError> {
    let validated = invoke(Stage::Validate, deps, event, request_id).await?;
    let enriched = invoke(Stage::Enrich, deps, validated.clone(), request_id).await?;
    let aggregated = invoke(Stage::Aggregate, deps, enriched.clone(), request_id).await?;
    let inference = invoke(Stage::Inference, deps, enriched.clone(), request_id).await?;
    let store_input = json!({
        "version": 1,
        "batchId": validated["batchId"],
        "events": enriched["events"],
        "aggregates": aggregated["aggregates"],
        "scores": inference["scores"],
        "rejected": validated["rejected"],
    });
    let stored = invoke(Stage::Store, deps, store_input, request_id).await?;
    Ok(ChainOutcome {
        validate: validated,
        enrich: enriched,
        aggregate: aggregated,
        inference,
        store: stored,
    })
}
