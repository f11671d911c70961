//! Aggregates in DynamoDB, applied at most once per batch id and per event id.
//!
//! **Transactions, not a claim followed by updates.** A conditional idempotency record
//! written before separate `UpdateItem ... ADD` calls leaves a gap: a crash between the
//! claim and the additions loses them, and a crash in the middle of the additions leaves
//! half of them applied with no way to finish. So each chunk of events is applied with one
//! `TransactWriteItems` holding, together:
//! - a conditional claim of every event id in the chunk (idempotency table),
//! - a conditional put of every window membership the chunk adds (new distinct users),
//! - one `ADD` update per counter item (`eventCount`, `amountSum`, `distinctUsers`).
//!
//! Either all of it happens or none. When the transaction is cancelled because some event
//! ids were claimed before (the events were redelivered in another batch) or some
//! memberships exist already, the reasons name which; those are left out and the chunk is
//! sent again, so no event is counted twice and no user twice in a window. A transaction
//! holds at most 100 actions, so a batch is cut into chunks that fit ([`chunks`]); each is
//! atomic on its own, and a batch interrupted between chunks is finished by its retry,
//! whose claims skip the chunks already applied. The batch id is claimed last: it only
//! makes a replay of a whole batch cost one read.
//!
//! Items of the aggregates table (key `pk` + `sk`):
//! - a counter: `pk` = scope (`all`, `type:<eventType>`, `user:<userId>`), `sk` =
//!   `w#<windowStart, 15 digits>`, with `scope`, `windowStart`, `eventCount`, `amountSum`,
//!   `distinctUsers`;
//! - a membership: `pk` = `<scope>#<windowStart>`, `sk` = `u#<userId>`, with `userId`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use pipeline_domain::StorageError;
use pipeline_domain::ports::{AggregateTable, ApplyOutcome};
use pipeline_domain::stages::aggregate::{AggregateDeltas, EventContribution, WindowMember};
use tracing::debug;

use super::idempotency::IdempotencyTable;
use crate::error::classify;

/// Most actions in one transaction (DynamoDB's limit).
pub const MAX_ACTIONS: usize = 100;

pub struct DynamoAggregateTable {
    client: Client,
    table: String,
    claims: IdempotencyTable,
}

impl DynamoAggregateTable {
    pub fn new(client: Client, table: impl Into<String>, claims: IdempotencyTable) -> Self {
        Self {
            client,
            table: table.into(),
            claims,
        }
    }
}

/// The sort key of a counter item.
pub fn counter_sort_key(window_start: i64) -> String {
    format!("w#{window_start:015}")
}

/// The partition key of a window's memberships.
pub fn members_partition_key(scope: &str, window_start: i64) -> String {
    format!("{scope}#{window_start}")
}

/// The scopes an event counts in, and those it is a member of.
fn scopes_of(contribution: &EventContribution) -> ([String; 3], [String; 2]) {
    let by_type = format!("type:{}", contribution.event_type);
    (
        [
            "all".to_owned(),
            by_type.clone(),
            format!("user:{}", contribution.user_id),
        ],
        ["all".to_owned(), by_type],
    )
}

/// Cuts contributions, in order, into chunks whose transaction fits in [`MAX_ACTIONS`]: one
/// claim per event, one put per distinct membership, one update per distinct counter.
pub fn chunks(contributions: &[EventContribution]) -> Vec<&[EventContribution]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut counters: HashSet<(String, i64)> = HashSet::new();
    let mut members: HashSet<(String, i64, &str)> = HashSet::new();
    for (index, contribution) in contributions.iter().enumerate() {
        let (counted, member_of) = scopes_of(contribution);
        let window = contribution.window_start;
        let new_counters = counted
            .iter()
            .filter(|scope| !counters.contains(&((*scope).clone(), window)))
            .count();
        let new_members = member_of
            .iter()
            .filter(|scope| {
                !members.contains(&((*scope).clone(), window, contribution.user_id.as_str()))
            })
            .count();
        let events = index - start;
        if events + 1 + counters.len() + new_counters + members.len() + new_members > MAX_ACTIONS {
            chunks.push(&contributions[start..index]);
            start = index;
            counters.clear();
            members.clear();
        }
        counters.extend(counted.into_iter().map(|scope| (scope, window)));
        members.extend(
            member_of
                .into_iter()
                .map(|scope| (scope, window, contribution.user_id.as_str())),
        );
    }
    if start < contributions.len() {
        chunks.push(&contributions[start..]);
    }
    chunks
}

/// Why a chunk's transaction was cancelled, from its cancellation reasons.
enum Cancelled {
    /// These events were claimed before and these memberships exist: leave them out.
    Known {
        events: Vec<String>,
        members: Vec<WindowMember>,
    },
    /// A conflicting transaction or throttling: the same chunk may pass later.
    Busy(String),
}

impl DynamoAggregateTable {
    /// Builds one chunk's transaction: the claims, the membership puts (leaving out those
    /// known to exist), the counter updates.
    fn transaction(
        &self,
        batch_id: &str,
        events: &[EventContribution],
        known_members: &BTreeSet<WindowMember>,
        now: i64,
    ) -> Result<(Vec<TransactWriteItem>, Vec<WindowMember>), StorageError> {
        let sums = AggregateDeltas {
            batch_id: batch_id.to_owned(),
            window_seconds: 60,
            counters: Vec::new(),
            members: Vec::new(),
            contributions: events.to_vec(),
        }
        .without(&HashSet::new());
        let mut items = Vec::with_capacity(MAX_ACTIONS);
        for contribution in events {
            let put = self
                .claims
                .claim_put(&format!("event#{}", contribution.event_id), now)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let fresh: Vec<WindowMember> = sums
            .members
            .into_iter()
            .filter(|member| !known_members.contains(member))
            .collect();
        let mut distinct: BTreeMap<(&str, i64), u64> = BTreeMap::new();
        for member in &fresh {
            *distinct
                .entry((member.scope.as_str(), member.window_start))
                .or_default() += 1;
            let put = Put::builder()
                .table_name(&self.table)
                .item(
                    "pk",
                    AttributeValue::S(members_partition_key(&member.scope, member.window_start)),
                )
                .item("sk", AttributeValue::S(format!("u#{}", member.user_id)))
                .item("userId", AttributeValue::S(member.user_id.clone()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|error| StorageError::permanent("build a membership put", error))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        for counter in &sums.counters {
            let users = distinct
                .get(&(counter.scope.as_str(), counter.window_start))
                .copied()
                .unwrap_or(0);
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(counter.scope.clone()))
                .key("sk", AttributeValue::S(counter_sort_key(counter.window_start)))
                .update_expression(
                    "SET #scope = :scope, windowStart = :window ADD eventCount :count, amountSum :amount, distinctUsers :users",
                )
                .expression_attribute_names("#scope", "scope")
                .expression_attribute_values(":scope", AttributeValue::S(counter.scope.clone()))
                .expression_attribute_values(":window", AttributeValue::N(counter.window_start.to_string()))
                .expression_attribute_values(":count", AttributeValue::N(counter.count.to_string()))
                .expression_attribute_values(":amount", AttributeValue::N(counter.amount_sum.to_string()))
                .expression_attribute_values(":users", AttributeValue::N(users.to_string()))
                .build()
                .map_err(|error| StorageError::permanent("build a counter update", error))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        Ok((items, fresh))
    }

    /// Applies one chunk; returns how many of its events were applied by this call.
    async fn apply_chunk(
        &self,
        batch_id: &str,
        chunk: &[EventContribution],
        now: i64,
    ) -> Result<usize, StorageError> {
        let operation = || format!("apply aggregates of batch {batch_id}");
        let mut events: Vec<EventContribution> = chunk.to_vec();
        let mut known_members: BTreeSet<WindowMember> = BTreeSet::new();
        let mut attempts = self.claims.backoff.start();
        while !events.is_empty() {
            let (items, fresh) = self.transaction(batch_id, &events, &known_members, now)?;
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let cancelled = match sent {
                Ok(_) => return Ok(events.len()),
                Err(error) => match error.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                        read_reasons(cancel.cancellation_reasons(), &events, &fresh)?
                    }
                    _ => {
                        let error = classify(operation(), error);
                        if !error.is_transient() {
                            return Err(error);
                        }
                        Cancelled::Busy(error.message)
                    }
                },
            };
            match cancelled {
                Cancelled::Known {
                    events: applied,
                    members,
                } => {
                    debug!(
                        batchId = batch_id,
                        applied = applied.len(),
                        members = members.len(),
                        "Left out what was applied before."
                    );
                    let applied: HashSet<String> = applied.into_iter().collect();
                    events.retain(|contribution| !applied.contains(&contribution.event_id));
                    known_members.extend(members);
                }
                Cancelled::Busy(why) => {
                    if !attempts.wait().await {
                        return Err(StorageError::transient(operation(), why));
                    }
                }
            }
        }
        Ok(0)
    }
}

/// Reads a cancelled transaction's reasons, which come in the order of its actions: the
/// claims first, then the membership puts, then the counter updates.
fn read_reasons(
    reasons: &[aws_sdk_dynamodb::types::CancellationReason],
    events: &[EventContribution],
    fresh: &[WindowMember],
) -> Result<Cancelled, StorageError> {
    let mut applied = Vec::new();
    let mut members = Vec::new();
    let mut busy = None;
    for (index, reason) in reasons.iter().enumerate() {
        match reason.code().unwrap_or("None") {
            "None" => {}
            "ConditionalCheckFailed" if index < events.len() => {
                applied.push(events[index].event_id.clone());
            }
            "ConditionalCheckFailed" if index < events.len() + fresh.len() => {
                members.push(fresh[index - events.len()].clone());
            }
            code
            @ ("TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded") => {
                busy = Some(code.to_owned());
            }
            code => {
                return Err(StorageError::permanent(
                    "apply aggregates",
                    format!(
                        "the transaction was cancelled at action {index}: {code}: {}",
                        reason.message().unwrap_or("")
                    ),
                ));
            }
        }
    }
    if applied.is_empty() && members.is_empty() {
        return Ok(Cancelled::Busy(busy.unwrap_or_else(|| {
            "the transaction was cancelled without a reason".to_owned()
        })));
    }
    Ok(Cancelled::Known {
        events: applied,
        members,
    })
}

#[async_trait]
impl AggregateTable for DynamoAggregateTable {
    async fn apply_once(&self, deltas: Arc<AggregateDeltas>) -> Result<ApplyOutcome, StorageError> {
        let now = super::now_millis();
        let batch_key = format!("batch#{}", deltas.batch_id);
        if self.claims.is_claimed(&batch_key, now).await? {
            return Ok(ApplyOutcome::AlreadyApplied);
        }
        if deltas.contributions.is_empty() && !deltas.counters.is_empty() {
            return Err(StorageError::permanent(
                format!("apply aggregates of batch {}", deltas.batch_id),
                "the deltas list no per-event contributions (they were made by an older version); the DynamoDB table applies deltas per event only",
            ));
        }
        let mut applied = 0;
        for chunk in chunks(&deltas.contributions) {
            applied += self.apply_chunk(&deltas.batch_id, chunk, now).await?;
        }
        let claimed = self.claims.claim(&batch_key, now).await?;
        if !claimed && applied == 0 {
            return Ok(ApplyOutcome::AlreadyApplied);
        }
        Ok(ApplyOutcome::Applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contribution(index: usize, users: usize, types: usize) -> EventContribution {
        EventContribution {
            event_id: format!("e{index}"),
            event_type: format!("t{}", index % types),
            user_id: format!("u{}", index % users),
            window_start: 1_700_000_040_000,
            amount: 1.0,
        }
    }

    /// The actions a chunk's transaction would hold at most.
    fn actions(chunk: &[EventContribution]) -> usize {
        let mut counters = HashSet::new();
        let mut members = HashSet::new();
        for contribution in chunk {
            let (counted, member_of) = scopes_of(contribution);
            counters.extend(counted.map(|scope| (scope, contribution.window_start)));
            members.extend(member_of.map(|scope| (scope, contribution.user_id.clone())));
        }
        chunk.len() + counters.len() + members.len()
    }

    #[test]
    fn chunks_keep_every_event_in_order_and_fit_one_transaction() {
        for (users, types) in [(1, 1), (7, 3), (10_000, 5)] {
            let contributions: Vec<_> = (0..1_000).map(|i| contribution(i, users, types)).collect();
            let chunks = chunks(&contributions);
            let rejoined: Vec<&EventContribution> =
                chunks.iter().flat_map(|chunk| chunk.iter()).collect();
            assert_eq!(rejoined.len(), contributions.len());
            assert!(rejoined.iter().zip(&contributions).all(|(a, b)| *a == b));
            for chunk in &chunks {
                assert!(!chunk.is_empty());
                assert!(actions(chunk) <= MAX_ACTIONS, "{} actions", actions(chunk));
            }
        }
        // One user and one type: a chunk holds 95 claims beside 3 counters and 2 memberships.
        let same: Vec<_> = (0..200).map(|i| contribution(i, 1, 1)).collect();
        assert_eq!(chunks(&same)[0].len(), 95);
        assert!(chunks(&[]).is_empty());
    }

    #[test]
    fn counter_sort_keys_order_like_their_windows() {
        assert!(counter_sort_key(60_000) < counter_sort_key(1_700_000_040_000));
        assert_eq!(counter_sort_key(60_000), "w#000000000060000");
    }
}
