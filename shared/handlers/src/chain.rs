//! The stages run in order in-process: validate, enrich, aggregate and inference, store.
//!
//! This is the flow the state machine orchestrates when deployed; here each stage still
//! receives and returns the JSON of its contract, so the wire formats are exercised too.

use serde_json::{Value, json};

use crate::deps::Dependencies;
use pipeline_domain::stages::inference::ModelError;

use crate::error::HandlerError;
use crate::invoke::invoke;
use crate::stage::Stage;

/// What one source event became.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainOutcome {
    pub validate: Value,
    pub enrich: Value,
    pub aggregate: Value,
    /// The scores, or the reason inference did not run (no model configured).
    pub inference: Result<Value, HandlerError>,
    pub store: Value,
}

/// Runs one source event through every stage. A `ValidationError` (no valid record) or any
/// other stage failure ends the chain with that error. Without a model, scoring is skipped
/// and the events are stored unscored.
pub async fn run_chain(
    deps: &Dependencies,
    event: Value,
    request_id: &str,
) -> Result<ChainOutcome, HandlerError> {
    let validated = invoke(Stage::Validate, deps, event, request_id).await?;
    let enriched = invoke(Stage::Enrich, deps, validated.clone(), request_id).await?;
    let aggregated = invoke(Stage::Aggregate, deps, enriched.clone(), request_id).await?;
    let inference = if deps.model.is_none() {
        Err(HandlerError::from(ModelError::NotConfigured))
    } else {
        Ok(invoke(Stage::Inference, deps, enriched.clone(), request_id).await?)
    };
    let scores = inference
        .as_ref()
        .ok()
        .and_then(|output| output.get("scores").cloned())
        .unwrap_or(json!([]));
    let store_input = json!({
        "version": 1,
        "batchId": validated["batchId"],
        "events": enriched["events"],
        "aggregates": aggregated["aggregates"],
        "scores": scores,
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
