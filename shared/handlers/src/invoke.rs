//! One invocation of one stage: JSON in, JSON out, or a named error.

use std::collections::HashMap;

use pipeline_domain::canonical::digest_id;
use pipeline_domain::event::{SourceKind, SourceRef};
use pipeline_domain::schema::FieldError;
use pipeline_domain::sources::{DecodeError, Streamed, detect, open_stream};
use pipeline_domain::stages::aggregate::aggregate;
use pipeline_domain::stages::enrich::enrich;
use pipeline_domain::stages::enriched_batch::EnrichedBatch;
use pipeline_domain::stages::inference::{RiskLabel, score_batch};
use pipeline_domain::stages::store::{StoreInput, StorePorts, store_batch};
use pipeline_domain::stages::validate::{
    RAW_EXCERPT_BYTES, RejectedRecord, ValidEvent, Validator, derive_batch_id,
    describe_no_valid_record,
};
use serde::Serialize;
use serde_json::Value;
use tracing::{Instrument, Span, field, info, warn, warn_span};

use crate::carried::{Carried, StagingScope, staging_key};
use crate::deps::Dependencies;
use crate::error::{ErrorName, HandlerError};
use crate::stage::Stage;
use crate::wire::{
    AggregateOutput, BatchPart, CONTRACT_VERSION, EnrichInput, EnrichOutput, EventOnly,
    EventsInput, InferenceInput, InferenceOutput, QuarantineInput, QuarantineRequest, ReasonCount,
    SKIPPED_LISTED, StoreBatchInput, StoreOutput, TOP_REASONS, ValidateCounts, ValidateOutput,
    ValidationFailure, parse_input,
};

/// Runs `stage` on `event`, staging large outputs in the staging store, as a deployed
/// function does. Every log line inside carries the request id and, once known, the batch
/// id.
pub async fn invoke(
    stage: Stage,
    deps: &Dependencies,
    event: Value,
    request_id: &str,
) -> Result<Value, HandlerError> {
    invoke_in_execution(stage, deps, &event, request_id, None).await
}

/// Runs `stage` on `event` as a Task of `execution`, a state machine running in this
/// process: large outputs are kept in memory for that execution when `deps` keeps values
/// ([`Dependencies::kept`]). The span is at `WARN` level so that it is recorded whenever
/// warnings are logged, including under the command line's quieter default filter.
pub async fn invoke_in_execution(
    stage: Stage,
    deps: &Dependencies,
    event: &Value,
    request_id: &str,
    execution: Option<&str>,
) -> Result<Value, HandlerError> {
    let span = warn_span!(
        "invocation",
        stage = stage.as_str(),
        requestId = request_id,
        batchId = field::Empty
    );
    let staging = deps.staging_scope(execution);
    async {
        let result = match stage {
            Stage::Validate => run_validate(deps, staging, event).await,
            Stage::Enrich => run_enrich(deps, staging, event).await,
            Stage::Aggregate => run_aggregate(deps, staging, event).await,
            Stage::Inference => run_inference(deps, staging, event).await,
            Stage::Store => run_store(deps, staging, event).await,
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

async fn run_validate(
    deps: &Dependencies,
    staging: StagingScope<'_>,
    event: &Value,
) -> Result<Value, HandlerError> {
    // Kept in case the event turns out to be unreadable, so that it can be quarantined.
    let excerpt = json_excerpt(event);
    let kind = detect(event).unwrap_or(SourceKind::Direct);
    let opened = match open_stream(event, deps.objects.as_ref()) {
        Ok(opened) => opened,
        Err(DecodeError::Object(storage)) => return Err(storage.into()),
        Err(error) => return Err(unreadable_event(staging, kind, excerpt, error).await),
    };
    let mut validator = Validator::new(opened.kind, deps.part_events);
    let mut parts = Vec::new();
    let mut skipped = Vec::new();
    let mut skipped_count = 0;
    for item in opened.records {
        match item? {
            Streamed::Record(record) => {
                if let Some(full) = validator.check(record) {
                    let part_id = derive_batch_id(&full);
                    parts.push(pack_part(deps, staging, part_id, full, Vec::new()).await?);
                }
            }
            Streamed::Skipped(record) => {
                skipped_count += 1;
                if skipped.len() < SKIPPED_LISTED {
                    skipped.push(record);
                }
            }
        }
    }
    let (last, summary) = validator.finish(opened.batch_id);
    record_batch_id(&summary.batch_id);
    info!(
        source = summary.source_kind.as_str(),
        accepted = summary.accepted,
        rejected = summary.rejected.len(),
        skipped = skipped_count,
        duplicates = summary.duplicates,
        parts = summary.parts,
        "Validated the batch."
    );
    let rejected_reasons = top_reasons(&summary.rejected);
    let counts = ValidateCounts {
        accepted: summary.accepted,
        rejected: summary.rejected.len(),
        skipped: skipped_count,
        duplicates: summary.duplicates,
        parts: summary.parts,
    };
    if summary.accepted == 0 {
        let message = describe_no_valid_record(
            &summary.batch_id,
            summary.source_kind,
            &summary.rejected,
            skipped_count,
        );
        let rejected = Carried::pack(
            summary.rejected,
            staging_key(&summary.batch_id, "rejected"),
            deps.inline_limit_bytes.min(FAILURE_INLINE_LIMIT),
            staging,
        )
        .await?;
        return Err(validation_failure(ValidationFailure {
            message,
            batch_id: summary.batch_id,
            source_kind: summary.source_kind,
            rejected,
        }));
    }
    let last_id = if parts.is_empty() {
        summary.batch_id.clone()
    } else {
        derive_batch_id(&last)
    };
    parts.push(pack_part(deps, staging, last_id, last, summary.rejected).await?);
    to_json(&ValidateOutput {
        version: CONTRACT_VERSION,
        batch_id: summary.batch_id,
        source_kind: summary.source_kind,
        counts,
        rejected_reasons,
        parts,
        skipped,
    })
}

/// Rejected records travel in an error's cause when small; Step Functions keeps 32,768
/// characters of a cause.
const FAILURE_INLINE_LIMIT: usize = 8 * 1024;

async fn pack_part(
    deps: &Dependencies,
    staging: StagingScope<'_>,
    batch_id: String,
    events: Vec<ValidEvent>,
    rejected: Vec<RejectedRecord>,
) -> Result<BatchPart, HandlerError> {
    let limit = deps.inline_limit_bytes;
    let events = Carried::pack(events, staging_key(&batch_id, "validated"), limit, staging).await?;
    let rejected =
        Carried::pack(rejected, staging_key(&batch_id, "rejected"), limit, staging).await?;
    Ok(BatchPart {
        batch_id,
        events,
        rejected,
    })
}

/// An event that is no source the pipeline knows becomes one rejected record, so the
/// catch path quarantines it like any other invalid input.
async fn unreadable_event(
    staging: StagingScope<'_>,
    kind: SourceKind,
    excerpt: String,
    error: DecodeError,
) -> HandlerError {
    let batch_id = digest_id("bat_", excerpt.as_bytes());
    let rejected = vec![RejectedRecord {
        source: SourceRef {
            kind,
            id: "event".to_owned(),
            index: 0,
        },
        errors: vec![FieldError::new("", error.to_string())],
        raw_excerpt: Some(excerpt),
    }];
    let message = describe_no_valid_record(&batch_id, kind, &rejected, 0);
    let packed = Carried::pack(
        rejected,
        staging_key(&batch_id, "rejected"),
        FAILURE_INLINE_LIMIT,
        staging,
    )
    .await;
    match packed {
        Ok(rejected) => validation_failure(ValidationFailure {
            message,
            batch_id,
            source_kind: kind,
            rejected,
        }),
        Err(error) => error,
    }
}

/// A `ValidationError` whose message is the failure as JSON.
fn validation_failure(failure: ValidationFailure) -> HandlerError {
    match serde_json::to_string(&failure) {
        Ok(text) => HandlerError::new(ErrorName::ValidationError, text),
        Err(_) => HandlerError::new(ErrorName::ValidationError, failure.message),
    }
}

/// The first [`RAW_EXCERPT_BYTES`] of a value's JSON, without encoding the rest.
pub(crate) fn json_excerpt(value: &Value) -> String {
    struct Limited(Vec<u8>);
    impl std::io::Write for Limited {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let room = RAW_EXCERPT_BYTES.saturating_sub(self.0.len());
            if room == 0 {
                return Err(std::io::Error::other("excerpt is full"));
            }
            let taken = room.min(bytes.len());
            self.0.extend_from_slice(&bytes[..taken]);
            Ok(taken)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut limited = Limited(Vec::with_capacity(RAW_EXCERPT_BYTES));
    // Stopping at the limit is the point: the error only says the excerpt is full.
    let _ = serde_json::to_writer(&mut limited, value);
    String::from_utf8_lossy(&limited.0).into_owned()
}

/// Rejections counted by field, the most frequent first.
fn top_reasons(rejected: &[RejectedRecord]) -> Vec<ReasonCount> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for record in rejected {
        let mut fields: Vec<&str> = record
            .errors
            .iter()
            .map(|error| error.pointer.as_str())
            .collect();
        fields.sort_unstable();
        fields.dedup();
        for field in fields {
            *counts.entry(field).or_default() += 1;
        }
    }
    let mut reasons: Vec<ReasonCount> = counts
        .into_iter()
        .map(|(field, count)| ReasonCount {
            field: if field.is_empty() {
                "(record)".to_owned()
            } else {
                field.to_owned()
            },
            count,
        })
        .collect();
    reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.field.cmp(&b.field)));
    reasons.truncate(TOP_REASONS);
    reasons
}

async fn run_enrich(
    deps: &Dependencies,
    staging: StagingScope<'_>,
    event: &Value,
) -> Result<Value, HandlerError> {
    let input: EnrichInput = parse_input("enrich", event)?;
    record_batch_id(&input.batch_id);
    let valid_events = input.events.unpack(staging).await?;
    let now = (deps.clock)();
    let user_ids: Vec<String> = valid_events
        .iter()
        .map(|valid| valid.event.user_id.clone())
        .collect();
    let (profiles, stats) = deps
        .profile_cache
        .lookup(deps.profiles.as_ref(), &user_ids, now)
        .await?;
    let events = EnrichedBatch::new(enrich(valid_events, &profiles, now));
    info!(
        events = events.len(),
        profilesFound = profiles.len(),
        cacheHits = stats.hits,
        fetched = stats.fetched,
        "Enriched the batch."
    );
    let key = staging_key(&input.batch_id, "enriched");
    let events = Carried::pack(events, key, deps.inline_limit_bytes, staging).await?;
    to_json(&EnrichOutput {
        version: CONTRACT_VERSION,
        batch_id: input.batch_id,
        profiles_found: profiles.len(),
        events,
    })
}

async fn run_aggregate(
    deps: &Dependencies,
    staging: StagingScope<'_>,
    event: &Value,
) -> Result<Value, HandlerError> {
    let input: EventsInput = parse_input("aggregate", event)?;
    record_batch_id(&input.batch_id);
    let deltas = match kept_events(&input.events, staging) {
        Some(KeptEvents::Enriched(events)) => {
            aggregate(&input.batch_id, events.iter().map(|item| &item.event))
        }
        Some(KeptEvents::Valid(events)) => {
            aggregate(&input.batch_id, events.iter().map(|item| &item.event))
        }
        None => {
            let events = input.events.unpack_shared(staging).await?;
            aggregate(&input.batch_id, events.iter().map(|item| &item.event))
        }
    };
    info!(
        counters = deltas.counters.len(),
        members = deltas.members.len(),
        "Aggregated the batch."
    );
    let key = staging_key(&input.batch_id, "aggregates");
    let aggregates = Carried::pack(deltas, key, deps.inline_limit_bytes, staging).await?;
    to_json(&AggregateOutput {
        version: CONTRACT_VERSION,
        batch_id: input.batch_id,
        aggregates,
    })
}

/// A batch of events kept in memory by the stage that staged it, as that stage's type.
enum KeptEvents {
    Enriched(std::sync::Arc<EnrichedBatch>),
    Valid(std::sync::Arc<Vec<ValidEvent>>),
}

/// The events behind a staged reference when this execution kept them as enriched or
/// validated events; `None` when they are inline, in the store, or kept as something else.
fn kept_events(events: &Carried<Vec<EventOnly>>, staging: StagingScope<'_>) -> Option<KeptEvents> {
    let Carried::Staged(reference) = events else {
        return None;
    };
    let key = reference.staged.as_str();
    staging
        .kept_as::<EnrichedBatch>(key)
        .map(KeptEvents::Enriched)
        .or_else(|| {
            staging
                .kept_as::<Vec<ValidEvent>>(key)
                .map(KeptEvents::Valid)
        })
}

async fn run_inference(
    deps: &Dependencies,
    staging: StagingScope<'_>,
    event: &Value,
) -> Result<Value, HandlerError> {
    let input: InferenceInput = parse_input("inference", event)?;
    record_batch_id(&input.batch_id);
    let events = input.events.unpack_shared(staging).await?;
    let model = deps.model.as_ref();
    let scores = score_batch(&events[..], model)?;
    let high_risk = scores
        .iter()
        .filter(|score| score.label == RiskLabel::High)
        .count();
    info!(
        scored = scores.len(),
        highRisk = high_risk,
        "Scored the batch."
    );
    let key = staging_key(&input.batch_id, "scores");
    let scores = Carried::pack(scores, key, deps.inline_limit_bytes, staging).await?;
    to_json(&InferenceOutput {
        version: CONTRACT_VERSION,
        batch_id: input.batch_id,
        model_version: model.version().to_owned(),
        high_risk,
        scores,
    })
}

async fn run_store(
    deps: &Dependencies,
    staging: StagingScope<'_>,
    event: &Value,
) -> Result<Value, HandlerError> {
    if event.get("quarantine").is_some() {
        let input: QuarantineInput = parse_input("store", event)?;
        return run_quarantine(deps, staging, input.quarantine).await;
    }
    let input: StoreBatchInput = parse_input("store", event)?;
    record_batch_id(&input.batch_id);
    let aggregates = match input.aggregates {
        Some(carried) => Some(carried.unpack_shared(staging).await?),
        None => None,
    };
    let input = StoreInput {
        batch_id: input.batch_id,
        events: input.events.unpack_shared(staging).await?,
        aggregates,
        scores: input.scores.unpack_shared(staging).await?,
        rejected: input.rejected.unpack(staging).await?,
    };
    let report = store_batch(input, &store_ports(deps), (deps.clock)()).await?;
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

pub(crate) fn store_ports(deps: &Dependencies) -> StorePorts<'_> {
    StorePorts {
        events: deps.events.as_ref(),
        aggregates: deps.aggregates.as_ref(),
        lake: deps.lake.as_ref(),
        notifier: deps.notifier.as_ref(),
        search: deps.search.as_ref(),
    }
}

/// The catch path: a batch with no valid record. Its rejected records (in the error's cause,
/// or staged) are quarantined in the data lake and one notification is sent.
async fn run_quarantine(
    deps: &Dependencies,
    staging: StagingScope<'_>,
    request: QuarantineRequest,
) -> Result<Value, HandlerError> {
    if request.error != ErrorName::ValidationError.as_str() {
        return Err(HandlerError::new(
            ErrorName::InvalidStageInput,
            format!(
                "store quarantines batches that failed with ValidationError, not {}",
                request.error
            ),
        ));
    }
    let failure = parse_failure_cause(&request.cause)?;
    record_batch_id(&failure.batch_id);
    let rejected = failure.rejected.unpack(staging).await?;
    let rejected_count = rejected.len();
    let input = StoreInput {
        batch_id: failure.batch_id,
        events: Default::default(),
        aggregates: None,
        scores: Default::default(),
        rejected,
    };
    let report = store_batch(input, &store_ports(deps), (deps.clock)()).await?;
    info!(
        quarantineObject = report.quarantine_object.as_deref().unwrap_or_default(),
        notificationsSent = report.notifications_sent,
        "Quarantined a batch with no valid record."
    );
    let mut output = to_json(&StoreOutput {
        version: CONTRACT_VERSION,
        report,
    })?;
    if let Value::Object(fields) = &mut output {
        fields.insert("status".to_owned(), Value::from("quarantined"));
        fields.insert(
            "sourceKind".to_owned(),
            Value::from(failure.source_kind.as_str()),
        );
        fields.insert("rejected".to_owned(), Value::from(rejected_count));
        fields.insert("reason".to_owned(), Value::from(failure.message));
    }
    Ok(output)
}

/// A cause as Step Functions reports a Lambda function's error (`{"errorType",
/// "errorMessage"}` as a string), or the error message itself.
fn parse_failure_cause(cause: &str) -> Result<ValidationFailure, HandlerError> {
    let unreadable = |detail: String| {
        HandlerError::new(
            ErrorName::InvalidStageInput,
            format!("the quarantine cause is not a validation failure from validate: {detail}"),
        )
    };
    let value: Value =
        serde_json::from_str(cause).map_err(|error| unreadable(error.to_string()))?;
    let value = match value.get("errorMessage").and_then(Value::as_str) {
        Some(message) => {
            serde_json::from_str(message).map_err(|error| unreadable(error.to_string()))?
        }
        None => value,
    };
    serde_json::from_value(value).map_err(|error| unreadable(error.to_string()))
}
