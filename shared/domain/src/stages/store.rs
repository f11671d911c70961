//! `store`: writes a processed batch through the storage ports, idempotently.
//!
//! Everything is keyed so that a replay overwrites instead of duplicating: events by event
//! id, data lake objects by partition and batch id, search documents by event id,
//! notifications by a deterministic id, and aggregate deltas are applied once per batch id.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

use crate::error::StorageError;
use crate::event_data::USER_AGENT;
use crate::ports::{
    AggregateTable, ApplyOutcome, DataLake, EventTable, IndexFailure, Notifier, SearchIndex,
};
use crate::stages::aggregate::AggregateDeltas;
use crate::stages::enrich::{EnrichedEvent, Partition, partition_of};
use crate::stages::enriched_batch::EnrichedBatch;
use crate::stages::inference::{RiskLabel, RiskScore};
use crate::stages::validate::RejectedRecord;

/// Rejected records, or high-risk events, listed in one notification; the quarantine object
/// has every rejected record, and the events table and the lake every event.
pub const MAX_RECORDS_IN_NOTIFICATION: usize = 20;

/// An event as written to the table, the lake and the index: the enriched event and its
/// score, borrowed from the batch `store` was given, so a batch kept in memory by an
/// earlier stage is written without a copy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StoredEvent<'a> {
    #[serde(flatten)]
    pub enriched: &'a EnrichedEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<&'a RiskScore>,
    /// The enriched event's JSON when its batch has it written ([`EnrichedBatch`]): an events
    /// row copies it instead of writing the event again.
    #[serde(skip)]
    pub enriched_json: Option<&'a str>,
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotificationKind {
    RejectedRecords,
    HighRisk,
}

/// A message for the notifier (SNS when deployed), with attributes for subscription filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `<batchId>:<kind>`: the same batch never notifies twice.
    pub id: String,
    pub kind: NotificationKind,
    /// `warning` or `critical`.
    pub severity: String,
    pub batch_id: String,
    pub subject: String,
    pub body: Value,
}

/// One event in the search index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchDocument {
    pub event_id: String,
    /// Words to search: event type, user, device, profile, and the string values in `data`.
    pub text: String,
    /// The stored event as JSON when the index asked for bodies
    /// ([`SearchIndex::wants_bodies`](crate::ports::SearchIndex::wants_bodies)), else null.
    pub body: Value,
}

/// Everything `store` receives: the enriched batch, the aggregate deltas, the scores when the
/// model ran, and the records validation rejected. The events and scores are shared, not
/// owned: `store` only reads them, and an in-process run hands over what earlier stages kept
/// (which a retried `store` reads again).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreInput {
    pub batch_id: String,
    pub events: Arc<EnrichedBatch>,
    pub aggregates: Option<Arc<AggregateDeltas>>,
    pub scores: Arc<Vec<RiskScore>>,
    pub rejected: Vec<RejectedRecord>,
}

/// The storage ports `store` writes through.
pub struct StorePorts<'a> {
    pub events: &'a dyn EventTable,
    pub aggregates: &'a dyn AggregateTable,
    pub lake: &'a dyn DataLake,
    pub notifier: &'a dyn Notifier,
    pub search: &'a dyn SearchIndex,
}

/// Where everything went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreReport {
    pub batch_id: String,
    pub events_written: usize,
    pub aggregates: Option<ApplyOutcome>,
    pub lake_objects: Vec<String>,
    pub quarantine_object: Option<String>,
    pub high_risk_events: usize,
    pub notifications_sent: usize,
    pub documents_indexed: usize,
    pub index_failures: Vec<IndexFailure>,
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the store input is inconsistent: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The data lake key of a batch's events in one partition.
pub fn lake_key(partition: &Partition, batch_id: &str) -> String {
    format!(
        "events/dt={}/hour={}/{}.parquet",
        partition.dt, partition.hour, batch_id
    )
}

/// The quarantine key of a batch's rejected records, by processing date.
pub fn quarantine_key(processed_date: &str, batch_id: &str) -> String {
    format!("rejected/dt={processed_date}/{batch_id}.jsonl")
}

/// Writes one batch. `now_millis` dates the quarantine object.
pub async fn store_batch(
    input: StoreInput,
    ports: &StorePorts<'_>,
    now_millis: i64,
) -> Result<StoreReport, StoreError> {
    let events = join_batch_scores(&input.events, &input.scores)?;
    if let Some(deltas) = &input.aggregates
        && deltas.batch_id != input.batch_id
    {
        return Err(StoreError::Inconsistent(format!(
            "aggregates are for batch {} but the events are batch {}",
            deltas.batch_id, input.batch_id
        )));
    }

    // The table writes, the index and the aggregates do not depend on each other (each is
    // idempotent, so a retried batch repeats them in any order): they run together, and a
    // backend that commits concurrent writes together (the embedded one) commits them once.
    let with_bodies = ports.search.wants_bodies();
    let documents: Vec<SearchDocument> = events
        .iter()
        .map(|stored| search_document(stored, with_bodies))
        .collect();
    let apply = async {
        match input.aggregates {
            Some(deltas) => ports.aggregates.apply_once(deltas).await.map(Some),
            None => Ok(None),
        }
    };
    let ((), index_failures, aggregates) = futures_util::future::try_join3(
        ports.events.put_events(&events),
        ports.search.index(&documents),
        apply,
    )
    .await?;

    // What needs the events in batch order is built first; then the events move into their
    // partitions, so that a batch is held once, not twice.
    let high_risk: Vec<&StoredEvent> = events
        .iter()
        .filter(|event| {
            event
                .risk
                .as_ref()
                .is_some_and(|risk| risk.label == RiskLabel::High)
        })
        .collect();
    let high_risk_events = high_risk.len();
    let high_risk_notice =
        (!high_risk.is_empty()).then(|| high_risk_notification(&input.batch_id, &high_risk));
    let events_written = events.len();
    let mut partitions: BTreeMap<&Partition, Vec<StoredEvent>> = BTreeMap::new();
    for event in events {
        partitions
            .entry(&event.enriched.partition)
            .or_default()
            .push(event);
    }
    let mut lake_objects = Vec::with_capacity(partitions.len());
    for (partition, rows) in &partitions {
        let key = lake_key(partition, &input.batch_id);
        ports.lake.put_events(&key, rows).await?;
        lake_objects.push(key);
    }

    let quarantine_object = if input.rejected.is_empty() {
        None
    } else {
        let key = quarantine_key(&partition_of(now_millis as f64).dt, &input.batch_id);
        let mut body = Vec::new();
        for record in &input.rejected {
            serde_json::to_writer(&mut body, record)
                .map_err(|error| StoreError::Inconsistent(error.to_string()))?;
            body.push(b'\n');
        }
        ports
            .lake
            .put_object(&key, body, "application/x-ndjson")
            .await?;
        Some(key)
    };

    let mut notifications = Vec::new();
    if !input.rejected.is_empty() {
        notifications.push(rejected_notification(
            &input.batch_id,
            &input.rejected,
            quarantine_object.as_deref(),
        ));
    }
    notifications.extend(high_risk_notice);
    let notifications_sent = if notifications.is_empty() {
        0
    } else {
        ports.notifier.publish(&notifications).await?
    };

    Ok(StoreReport {
        batch_id: input.batch_id,
        events_written,
        aggregates,
        lake_objects,
        quarantine_object,
        high_risk_events,
        notifications_sent,
        documents_indexed: documents.len() - index_failures.len(),
        index_failures,
    })
}

/// The events as `store` writes them, each with its score when `scores` has one; a score
/// for an event not in the batch is an inconsistency.
pub fn join_scores<'a>(
    events: &'a [EnrichedEvent],
    scores: &'a [RiskScore],
) -> Result<Vec<StoredEvent<'a>>, StoreError> {
    join(events.iter().map(|enriched| (enriched, None)), scores)
}

/// [`join_scores`] for a batch, each event with its JSON when the batch has it written.
pub fn join_batch_scores<'a>(
    batch: &'a EnrichedBatch,
    scores: &'a [RiskScore],
) -> Result<Vec<StoredEvent<'a>>, StoreError> {
    let events = batch.iter().enumerate();
    join(
        events.map(|(index, enriched)| (enriched, batch.written_event_json(index))),
        scores,
    )
}

fn join<'a>(
    events: impl Iterator<Item = (&'a EnrichedEvent, Option<&'a str>)>,
    scores: &'a [RiskScore],
) -> Result<Vec<StoredEvent<'a>>, StoreError> {
    let mut by_event: foldhash::HashMap<&str, &RiskScore> = scores
        .iter()
        .map(|score| (score.event_id.as_str(), score))
        .collect();
    let stored: Vec<StoredEvent> = events
        .map(|(enriched, enriched_json)| {
            let risk = by_event.remove(enriched.event.event_id.as_str());
            StoredEvent {
                enriched,
                risk,
                enriched_json,
            }
        })
        .collect();
    if let Some(unknown) = by_event.keys().next() {
        return Err(StoreError::Inconsistent(format!(
            "a score names event {unknown}, which is not in the batch"
        )));
    }
    Ok(stored)
}

fn search_document(stored: &StoredEvent<'_>, with_body: bool) -> SearchDocument {
    let enriched = &stored.enriched;
    let event = &enriched.event;
    // The words joined by single spaces, written straight into the text; the event type
    // comes first.
    let mut text = String::with_capacity(160);
    text.push_str(&event.event_type);
    let mut add = |word: &str| {
        text.push(' ');
        text.push_str(word);
    };
    add(&event.user_id);
    if let Some(device) = &enriched.device {
        add(&device.category);
        add(&device.os);
        add(&device.browser);
    }
    if let Some(profile) = &enriched.profile {
        add(&profile.segment);
        add(&profile.country);
    }
    // A user agent is indexed as the device it names, not as its own words (`Mozilla`,
    // `Gecko`, version numbers...): in the demo's events those were more than half of a
    // document's words, and of the index's work (docs/benchmarks.md).
    let left_out = enriched.device.is_some().then_some(USER_AGENT);
    for value in event.data.string_values_except(left_out) {
        add(&value);
    }
    SearchDocument {
        event_id: event.event_id.clone(),
        text,
        body: if with_body {
            serde_json::to_value(stored).unwrap_or(Value::Null)
        } else {
            Value::Null
        },
    }
}

fn rejected_notification(
    batch_id: &str,
    rejected: &[RejectedRecord],
    quarantine: Option<&str>,
) -> Notification {
    let listed: Vec<&RejectedRecord> = rejected.iter().take(MAX_RECORDS_IN_NOTIFICATION).collect();
    Notification {
        id: format!("{batch_id}:rejected-records"),
        kind: NotificationKind::RejectedRecords,
        severity: "warning".to_owned(),
        batch_id: batch_id.to_owned(),
        subject: format!("{} record(s) rejected in batch {batch_id}", rejected.len()),
        body: json!({
            "batchId": batch_id,
            "rejectedCount": rejected.len(),
            "quarantineObject": quarantine,
            "records": listed,
        }),
    }
}

/// Lists the highest scores (the events table and the lake hold every event) and names
/// every event type, so that a subscription filter on `eventType` sees them all. Listing
/// every event made a batch as large as a Lambda trigger's (10,000 records) a message over
/// the 256 KiB SNS takes.
fn high_risk_notification(batch_id: &str, events: &[&StoredEvent<'_>]) -> Notification {
    let score = |stored: &StoredEvent<'_>| stored.risk.map_or(f32::NEG_INFINITY, |risk| risk.score);
    let mut ranked: Vec<&StoredEvent> = events.to_vec();
    // Stable: equal scores stay in batch order.
    ranked.sort_by(|a, b| score(b).total_cmp(&score(a)));
    let listed: Vec<Value> = ranked
        .iter()
        .take(MAX_RECORDS_IN_NOTIFICATION)
        .map(|stored| {
            json!({
                "eventId": stored.enriched.event.event_id,
                "userId": stored.enriched.event.user_id,
                "eventType": stored.enriched.event.event_type,
                "score": stored.risk.as_ref().map(|risk| risk.score),
            })
        })
        .collect();
    let mut event_types: Vec<&str> = events
        .iter()
        .map(|stored| stored.enriched.event.event_type.as_str())
        .collect();
    event_types.sort_unstable();
    event_types.dedup();
    Notification {
        id: format!("{batch_id}:high-risk"),
        kind: NotificationKind::HighRisk,
        severity: "critical".to_owned(),
        batch_id: batch_id.to_owned(),
        subject: format!("{} high-risk event(s) in batch {batch_id}", events.len()),
        body: json!({
            "batchId": batch_id,
            "highRiskCount": events.len(),
            "eventTypes": event_types,
            "events": listed,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{SourceKind, SourceRef, UserEvent};
    use crate::stages::enrich::{UserProfile, enrich};
    use crate::stages::validate::ValidEvent;
    use std::collections::HashMap;

    fn document_text(data: Value) -> String {
        let event: UserEvent = serde_json::from_value(json!({
            "eventId": "evt-1", "userId": "u1", "eventType": "purchase",
            "timestamp": 1_700_000_000_000u64, "data": data,
        }))
        .unwrap();
        let valid = ValidEvent {
            source: SourceRef {
                kind: SourceKind::Direct,
                id: "item-1".to_owned(),
                index: 0,
            },
            event,
        };
        let enriched = enrich(vec![valid], &HashMap::<String, UserProfile>::new(), 0);
        let stored = StoredEvent {
            enriched: &enriched[0],
            risk: None,
            enriched_json: None,
        };
        search_document(&stored, false).text
    }

    #[test]
    fn a_high_risk_notification_lists_the_highest_scores_and_counts_every_event() {
        // A batch as large as a Lambda trigger's, every event high-risk: listing them all
        // made a message over the 256 KiB SNS takes.
        let valid: Vec<ValidEvent> = (0..10_000)
            .map(|index| {
                let event: UserEvent = serde_json::from_value(json!({
                    "eventId": format!("evt-{index}"), "userId": format!("user-{index}"),
                    "eventType": format!("type-{}", index % 7),
                    "timestamp": 1_700_000_000_000u64, "data": {},
                }))
                .unwrap();
                let source = SourceRef {
                    kind: SourceKind::Sqs,
                    id: format!("message-{index}"),
                    index,
                };
                ValidEvent { source, event }
            })
            .collect();
        let enriched = enrich(valid, &HashMap::<String, UserProfile>::new(), 0);
        let scores: Vec<RiskScore> = enriched
            .iter()
            .enumerate()
            .map(|(index, event)| RiskScore {
                event_id: event.event.event_id.clone(),
                // Events 5,000 and 5,001 score highest (a tie, which keeps batch order),
                // then 5,002 and 5,003, and so on.
                score: 0.9 - (((index + 5_000) % 10_000) / 2) as f32 * 0.000_001,
                label: RiskLabel::High,
                model_version: "risk-test".to_owned(),
            })
            .collect();
        let stored = join_scores(&enriched, &scores).unwrap();
        let high_risk: Vec<&StoredEvent> = stored.iter().collect();
        let notification = high_risk_notification("bat_1", &high_risk);

        assert_eq!(
            notification.subject,
            "10000 high-risk event(s) in batch bat_1"
        );
        assert_eq!(notification.body["highRiskCount"], json!(10_000));
        let listed: Vec<&str> = notification.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["eventId"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (5_000..5_000 + MAX_RECORDS_IN_NOTIFICATION)
            .map(|index| format!("evt-{index}"))
            .collect();
        assert_eq!(listed, expected);
        // Every event type is named, listed or not, for subscription filters.
        let types: Vec<String> = (0..7).map(|kind| format!("type-{kind}")).collect();
        assert_eq!(notification.body["eventTypes"], json!(types));
        assert!(serde_json::to_vec(&notification).unwrap().len() < 4_096);
    }

    #[test]
    fn a_search_document_holds_the_device_a_user_agent_names_and_not_its_words() {
        let text = document_text(json!({
            "userAgent": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "page": "/p/7", "currency": "EUR", "amount": 3,
        }));
        assert_eq!(text, "purchase u1 pc Linux Firefox EUR /p/7");
        // Without a user agent there is no device, and every string member is indexed.
        let text = document_text(json!({"page": "/p/7", "userAgent": 5}));
        assert_eq!(text, "purchase u1 /p/7");
    }
}
