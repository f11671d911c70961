//! DynamoDB: the events table, the aggregates table, user profiles, and the idempotency
//! table that holds every claim (batch ids, event ids, sent notifications).

pub mod aggregates;
pub mod batch;
pub mod events;
pub mod idempotency;
pub mod item;
mod ledger;
pub mod profiles;

pub use aggregates::DynamoAggregateTable;
pub use events::DynamoEventTable;
pub use idempotency::IdempotencyTable;
pub use profiles::DynamoProfileTable;

/// The current time in milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
