//! The processed events table: one item per event id, written with `BatchWriteItem`.
//!
//! An item carries the keys and the fields queries filter on at the top level (`eventId`,
//! `userId`, `eventType`, `timestamp`, `dt`, `hour`, `riskScore`, `riskLabel`) and the whole
//! stored event as the `body` map. Writing an event again replaces its item, so a retried
//! or replayed batch leaves the same table.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use pipeline_domain::StorageError;
use pipeline_domain::ports::EventTable;
use pipeline_domain::stages::inference::RiskLabel;
use pipeline_domain::stages::store::StoredEvent;

use super::batch::write_all;
use super::item::to_attribute;
use crate::backoff::Backoff;

pub struct DynamoEventTable {
    client: Client,
    table: String,
    backoff: Backoff,
}

impl DynamoEventTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            backoff: Backoff::default(),
        }
    }

    /// The same table with another retry schedule for unprocessed items.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
}

/// The item of one stored event.
pub fn event_item(
    stored: &StoredEvent,
) -> Result<std::collections::HashMap<String, AttributeValue>, StorageError> {
    // Encoded as text first: `to_value` would widen the `f32` features and score to `f64`
    // (578.7038 would become 578.7037963867188), while the text keeps the shortest form that
    // every other output (the local table, the search index, the Parquet rows) records.
    let encode = |error| StorageError::permanent("encode an event item", error);
    let body: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(stored).map_err(encode)?).map_err(encode)?;
    let event = &stored.enriched.event;
    let mut item = std::collections::HashMap::from([
        (
            "eventId".to_owned(),
            AttributeValue::S(event.event_id.clone()),
        ),
        (
            "userId".to_owned(),
            AttributeValue::S(event.user_id.clone()),
        ),
        (
            "eventType".to_owned(),
            AttributeValue::S(event.event_type.clone()),
        ),
        (
            "timestamp".to_owned(),
            to_attribute(&serde_json::json!(event.timestamp_millis())),
        ),
        (
            "dt".to_owned(),
            AttributeValue::S(stored.enriched.partition.dt.clone()),
        ),
        (
            "hour".to_owned(),
            AttributeValue::S(stored.enriched.partition.hour.clone()),
        ),
        ("body".to_owned(), to_attribute(&body)),
    ]);
    if let Some(risk) = &stored.risk {
        item.insert(
            "riskScore".to_owned(),
            AttributeValue::N(risk.score.to_string()),
        );
        let label = match risk.label {
            RiskLabel::High => "high",
            RiskLabel::Low => "low",
        };
        item.insert("riskLabel".to_owned(), AttributeValue::S(label.to_owned()));
    }
    Ok(item)
}

#[async_trait]
impl EventTable for DynamoEventTable {
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), StorageError> {
        let requests = events
            .iter()
            .map(|stored| {
                let put = PutRequest::builder()
                    .set_item(Some(event_item(stored)?))
                    .build()
                    .map_err(|error| StorageError::permanent("build an event write", error))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        write_all(&self.client, &self.table, requests, self.backoff).await
    }
}
