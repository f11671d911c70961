//! A function triggered directly by SQS, Kinesis or DynamoDB Streams (an event source
//! mapping, not the state machine): it runs the pipeline's state machine in-process on the
//! batch and answers with a partial batch response, so that Lambda retries only the records
//! that failed for a reason that may pass.
//!
//! - Invalid records are rejected by `validate` and quarantined by the definition's catch
//!   path like any other batch: they are never reported, so never retried.
//! - When an execution fails, the batch is split in halves and each half runs again, down to
//!   single records, so that one record that cannot be stored does not hold back the rest.
//!   Every write of the pipeline is idempotent, so running a record twice changes nothing.
//! - A single record that fails with a retryable error (`TransientError`, a time-out, a
//!   Lambda service error) is reported. One that fails for good is quarantined with its
//!   error and not reported; if even that fails, it is reported, so nothing is lost.
//! - Kinesis and DynamoDB Streams are ordered: Lambda retries from the first failed sequence
//!   number on, so only that one is reported, and the records after it are not run again
//!   until then.
//! - An SQS FIFO queue (its ARN ends in `.fifo`) is ordered too, but Lambda retries exactly
//!   the messages reported: the first failed message and every message after it are
//!   reported and not run again, so that no message overtakes an earlier one.
//!
//! The first, failed attempt at the whole batch may have written some records already
//! (the events table comes before the lake in `store`); that is safe because every write is
//! keyed and aggregates are claimed per event id.

use std::future::Future;
use std::pin::Pin;

use pipeline_asl::{ExecutionFailure, ExecutionOptions};
use pipeline_domain::canonical::digest_id;
use pipeline_domain::event::{SourceKind, SourceRef};
use pipeline_domain::schema::FieldError;
use pipeline_domain::sources::detect;
use pipeline_domain::stages::store::{StoreInput, store_batch};
use pipeline_domain::stages::validate::RejectedRecord;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::deps::Dependencies;
use crate::error::{ErrorName, HandlerError};
use crate::invoke::{json_excerpt, store_ports};
use crate::orchestrator::Orchestrator;

/// The response Lambda reads when a function reports batch item failures
/// (`FunctionResponseTypes: [ReportBatchItemFailures]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<ItemFailure>,
}

/// One record to retry: the SQS message id, or the Kinesis or DynamoDB Streams sequence
/// number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    pub item_identifier: String,
}

/// Error names after which the same record may succeed later.
const RETRYABLE_ERRORS: [&str; 7] = [
    "TransientError",
    "States.Timeout",
    "States.HeartbeatTimeout",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

fn is_retryable(failure: &ExecutionFailure) -> bool {
    RETRYABLE_ERRORS.contains(&failure.error.as_str())
}

/// How a source wants failures reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Any record may be retried alone (a standard SQS queue).
    None,
    /// Lambda retries from the first failed sequence number on (Kinesis, DynamoDB Streams).
    FromFirstFailure,
    /// Lambda retries the messages reported, which must then be the first failed one and
    /// all after it (an SQS FIFO queue).
    FirstFailureAndAfter,
}

/// The kinds of event a direct trigger takes, and where a record keeps the identifier Lambda
/// expects back.
fn trigger_of(kind: SourceKind) -> Option<&'static str> {
    match kind {
        SourceKind::Sqs => Some("/messageId"),
        SourceKind::Kinesis => Some("/kinesis/sequenceNumber"),
        SourceKind::DynamodbStream => Some("/dynamodb/SequenceNumber"),
        _ => None,
    }
}

fn order_of(kind: SourceKind, records: &[Record]) -> Order {
    let fifo = records.first().is_some_and(|record| {
        record
            .value
            .get("eventSourceARN")
            .and_then(Value::as_str)
            .is_some_and(|arn| arn.ends_with(".fifo"))
    });
    match kind {
        SourceKind::Sqs if fifo => Order::FirstFailureAndAfter,
        SourceKind::Sqs => Order::None,
        _ => Order::FromFirstFailure,
    }
}

/// A record of the triggering event, with where it was in the batch.
struct Record {
    index: usize,
    identifier: String,
    value: Value,
}

/// Runs the batch through `orchestrator` and says which records Lambda should retry.
pub async fn process_direct(
    orchestrator: &Orchestrator,
    deps: &Dependencies,
    event: Value,
    options: &ExecutionOptions,
) -> Result<BatchResponse, HandlerError> {
    let not_a_trigger = |detail: &str| {
        HandlerError::new(
            ErrorName::InvalidStageInput,
            format!(
                "a direct trigger takes SQS, Kinesis or DynamoDB Streams events; this one {detail}"
            ),
        )
    };
    let kind = detect(&event).map_err(|_| not_a_trigger("is of no known shape"))?;
    let identifier_at =
        trigger_of(kind).ok_or_else(|| not_a_trigger(&format!("is {}", kind.as_str())))?;
    let Value::Object(mut envelope) = event else {
        return Err(not_a_trigger("is not an object"));
    };
    let Some(Value::Array(values)) = envelope.remove("Records") else {
        return Err(not_a_trigger("has no Records array"));
    };
    let mut records = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        let Some(identifier) = value.pointer(identifier_at).and_then(Value::as_str) else {
            return Err(HandlerError::new(
                ErrorName::InvalidStageInput,
                format!(
                    "record {index} of the {} batch has no {identifier_at}, which Lambda needs \
                     to retry it",
                    kind.as_str()
                ),
            ));
        };
        records.push(Record {
            index,
            identifier: identifier.to_owned(),
            value,
        });
    }
    let order = order_of(kind, &records);
    let run = Run {
        orchestrator,
        deps,
        options,
        envelope: &envelope,
        kind,
        ordered: order != Order::None,
    };
    let mut failed = run.settle(&records).await;
    match (order, failed.first().map(|record| record.index)) {
        (Order::FromFirstFailure, Some(_)) => failed.truncate(1),
        (Order::FirstFailureAndAfter, Some(first)) => {
            failed = records[first..].iter().collect();
        }
        _ => {}
    }
    info!(
        source = kind.as_str(),
        records = records.len(),
        failed = failed.len(),
        "Processed a batch from a direct trigger."
    );
    Ok(BatchResponse {
        batch_item_failures: failed
            .into_iter()
            .map(|record| ItemFailure {
                item_identifier: record.identifier.clone(),
            })
            .collect(),
    })
}

struct Run<'a> {
    orchestrator: &'a Orchestrator,
    deps: &'a Dependencies,
    options: &'a ExecutionOptions,
    envelope: &'a serde_json::Map<String, Value>,
    kind: SourceKind,
    ordered: bool,
}

type Settling<'r> = Pin<Box<dyn Future<Output = Vec<&'r Record>> + Send + 'r>>;

impl Run<'_> {
    /// The records of `records` to report, in batch order.
    fn settle<'r>(&'r self, records: &'r [Record]) -> Settling<'r> {
        Box::pin(async move {
            if records.is_empty() {
                return Vec::new();
            }
            let failure = match self.execute(records).await {
                Ok(()) => return Vec::new(),
                Err(failure) => failure,
            };
            if let [record] = records {
                return self.settle_one(record, failure).await;
            }
            warn!(
                records = records.len(),
                first = records[0].index,
                error = %failure.error,
                "An execution failed; running each half of its records again."
            );
            let (left, right) = records.split_at(records.len() / 2);
            let mut failed = self.settle(left).await;
            if self.ordered && !failed.is_empty() {
                return failed;
            }
            failed.extend(self.settle(right).await);
            failed
        })
    }

    async fn execute(&self, records: &[Record]) -> Result<(), ExecutionFailure> {
        let mut event = self.envelope.clone();
        event.insert(
            "Records".to_owned(),
            Value::Array(records.iter().map(|record| record.value.clone()).collect()),
        );
        self.orchestrator
            .execute(Value::Object(event), self.options)
            .await
            .result
            .map(drop)
    }

    /// One record whose execution failed: reported when the error may pass, else
    /// quarantined with its error.
    async fn settle_one<'r>(
        &self,
        record: &'r Record,
        failure: ExecutionFailure,
    ) -> Vec<&'r Record> {
        if is_retryable(&failure) {
            warn!(
                record = %record.identifier,
                error = %failure.error,
                cause = %failure.cause,
                "A record failed for a reason that may pass; Lambda will retry it."
            );
            return vec![record];
        }
        match self.quarantine(record, &failure).await {
            Ok(()) => {
                warn!(
                    record = %record.identifier,
                    error = %failure.error,
                    cause = %failure.cause,
                    "A record failed for good; it is quarantined and not retried."
                );
                Vec::new()
            }
            Err(error) => {
                warn!(
                    record = %record.identifier,
                    error = %failure.error,
                    quarantineError = %error,
                    "A record failed and could not be quarantined; Lambda will retry it."
                );
                vec![record]
            }
        }
    }

    async fn quarantine(
        &self,
        record: &Record,
        failure: &ExecutionFailure,
    ) -> Result<(), HandlerError> {
        let excerpt = json_excerpt(&record.value);
        let rejected = RejectedRecord {
            source: SourceRef {
                kind: self.kind,
                id: record.identifier.clone(),
                index: record.index,
            },
            errors: vec![FieldError::new(
                "",
                format!("{}: {}", failure.error, failure.cause),
            )],
            raw_excerpt: Some(excerpt.clone()),
        };
        let input = StoreInput {
            batch_id: digest_id("bat_", record.value.to_string().as_bytes()),
            events: Default::default(),
            aggregates: None,
            scores: Default::default(),
            rejected: vec![rejected],
        };
        store_batch(input, &store_ports(self.deps), (self.deps.clock)()).await?;
        Ok(())
    }
}
