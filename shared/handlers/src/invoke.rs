//! One invocation of one stage: JSON in, JSON out, or a named error.

use pipeline_domain::sources::decode;
use pipeline_domain::stages::aggregate::aggregate;
use pipeline_domain::stages::enrich::enrich;
use pipeline_domain::stages::inference::{RiskLabel, score_batch};
use pipeline_domain::stages::store::{StoreInput, StorePorts, store_batch};
use pipeline_domain::stages::validate::validate;
use serde::Serialize;
use serde_json::Value;
use tracing::{Instrument, Span, field, info, warn, warn_span};

use crate::deps::Dependencies;
use crate::error::{ErrorName, HandlerError};
use crate::stage::Stage;
use crate::wire::{
    AggregateOutput, CONTRACT_VERSION, EnrichInput, EnrichOutput, EventsInput, InferenceInput,
    InferenceOutput, StoreOutput, ValidateOutput, parse_input,
};

/// Runs `stage` on `event`. Every log line inside carries the request id and, once known,
/// the batch id. The span is at `WARN` level so that it is recorded whenever warnings are
/// logged, including under the command line's quieter default filter.
pub async fn invoke(
    stage: Stage,
    deps: &Dependencies,
    event: Value,
    request_id: &str,
) -> Result<Value, HandlerError> {
    let span = warn_span!(
        "invocation",
        stage = stage.as_str(),
        requestId = request_id,
        batchId = field::Empty
    );
    async {
        let result = match stage {
            Stage::Validate => run_validate(deps, event),
            Stage::Enrich => run_enrich(deps, event).await,
            Stage::Aggregate => run_aggregate(event),
            Stage::Inference => run_inference(deps, event),
            Stage::Store => run_store(deps, event).await,
        };
        if let Err(error) = &result {
            warn!(errorType = error.name.as_str(), reason = %error.message, "The invocation failed.");
        }
        result
    }
    .instrument(span)
    .await
}

fn to_json(output: &impl Serialize) -> Result<Value, HandlerError> {
    serde_json::to_value(output).map_err(|error| {
        HandlerError::new(
            ErrorName::InvalidStageInput,
            format!("the output could not be encoded: {error}"),
        )
    })
}

fn record_batch_id(batch_id: &str) {
    Span::current().record("batchId", batch_id);
}

fn run_validate(deps: &Dependencies, event: Value) -> Result<Value, HandlerError> {
    let decoded = decode(event, deps.objects.as_ref())?;
    let batch = validate(decoded);
    record_batch_id(&batch.batch_id);
    info!(
        source = batch.source_kind.as_str(),
        accepted = batch.events.len(),
        rejected = batch.rejected.len(),
        skipped = batch.skipped.len(),
        duplicates = batch.duplicates,
        "Validated the batch."
    );
    let batch = batch.require_valid()?;
    to_json(&ValidateOutput::from(batch))
}

async fn run_enrich(deps: &Dependencies, event: Value) -> Result<Value, HandlerError> {
    let input: EnrichInput = parse_input("enrich", event)?;
    record_batch_id(&input.batch_id);
    let now = (deps.clock)();
    let user_ids: Vec<String> = input
        .events
        .iter()
        .map(|valid| valid.event.user_id.clone())
        .collect();
    let (profiles, stats) = deps
        .profile_cache
        .lookup(deps.profiles.as_ref(), &user_ids, now)
        .await?;
    let events = enrich(input.events, &profiles, now);
    info!(
        events = events.len(),
        profilesFound = profiles.len(),
        cacheHits = stats.hits,
        fetched = stats.fetched,
        "Enriched the batch."
    );
    to_json(&EnrichOutput {
        version: CONTRACT_VERSION,
        batch_id: input.batch_id,
        profiles_found: profiles.len(),
        events,
    })
}

fn run_aggregate(event: Value) -> Result<Value, HandlerError> {
    let input: EventsInput = parse_input("aggregate", event)?;
    record_batch_id(&input.batch_id);
    let deltas = aggregate(&input.batch_id, input.events.iter().map(|item| &item.event));
    info!(
        counters = deltas.counters.len(),
        members = deltas.members.len(),
        "Aggregated the batch."
    );
    to_json(&AggregateOutput {
        version: CONTRACT_VERSION,
        batch_id: input.batch_id,
        aggregates: deltas,
    })
}

fn run_inference(deps: &Dependencies, event: Value) -> Result<Value, HandlerError> {
    let input: InferenceInput = parse_input("inference", event)?;
    record_batch_id(&input.batch_id);
    let model = deps.model.as_ref();
    let scores = score_batch(&input.events, model)?;
    let high_risk = scores
        .iter()
        .filter(|score| score.label == RiskLabel::High)
        .count();
    info!(
        scored = scores.len(),
        highRisk = high_risk,
        "Scored the batch."
    );
    to_json(&InferenceOutput {
        version: CONTRACT_VERSION,
        batch_id: input.batch_id,
        model_version: model.version().to_owned(),
        high_risk,
        scores,
    })
}

async fn run_store(deps: &Dependencies, event: Value) -> Result<Value, HandlerError> {
    let input: StoreInput = parse_input("store", event)?;
    record_batch_id(&input.batch_id);
    let ports = StorePorts {
        events: deps.events.as_ref(),
        aggregates: deps.aggregates.as_ref(),
        lake: deps.lake.as_ref(),
        notifier: deps.notifier.as_ref(),
        search: deps.search.as_ref(),
    };
    let report = store_batch(input, &ports, (deps.clock)()).await?;
    info!(
        eventsWritten = report.events_written,
        lakeObjects = report.lake_objects.len(),
        notificationsSent = report.notifications_sent,
        aggregates = ?report.aggregates,
        "Stored the batch."
    );
    to_json(&StoreOutput {
        version: CONTRACT_VERSION,
        report,
    })
}
