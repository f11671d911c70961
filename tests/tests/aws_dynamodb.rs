//! The DynamoDB adapters through the real SDK over HTTP, against moto on 127.0.0.1: events
//! land and are replaced, unprocessed items and throttling are retried, aggregates apply
//! once per batch and per event (also when the same batch is applied twice at once),
//! profiles and the notification ledger read back what was written.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use pipeline_aws::backoff::Backoff;
use pipeline_aws::bootstrap::bootstrap;
use pipeline_aws::dynamodb::{
    DynamoAggregateTable, DynamoEventTable, DynamoProfileTable, IdempotencyTable,
};
use pipeline_aws::ledger::NotificationLedger;
use pipeline_domain::event::UserEvent;
use pipeline_domain::ports::{AggregateTable, ApplyOutcome, EventTable, ProfileTable};
use pipeline_domain::stages::aggregate::{AggregateDeltas, aggregate};
use pipeline_tests::fault_proxy::{FaultProxy, Verdict};
use pipeline_tests::moto;
use serde_json::{Value, json};

const WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

fn user_event(id: &str, user: &str, kind: &str, timestamp: u64, amount: f64) -> UserEvent {
    serde_json::from_value(json!({
        "eventId": id, "userId": user, "eventType": kind, "timestamp": timestamp,
        "data": {"amount": amount}
    }))
    .expect("a user event")
}

/// Counters of the aggregates table as (scope, window) -> (count, amount, distinct users).
async fn counters(
    clients: &pipeline_aws::AwsClients,
    table: &str,
) -> BTreeMap<(String, i64), (u64, f64, u64)> {
    let number = |item: &std::collections::HashMap<String, AttributeValue>, name: &str| -> f64 {
        item[name]
            .as_n()
            .expect("a number")
            .parse()
            .expect("a decimal")
    };
    moto::scan(clients, table)
        .await
        .into_iter()
        .filter(|item| item["sk"].as_s().is_ok_and(|sk| sk.starts_with("w#")))
        .map(|item| {
            let scope = item["scope"].as_s().expect("scope").clone();
            (
                (scope, number(&item, "windowStart") as i64),
                (
                    number(&item, "eventCount") as u64,
                    number(&item, "amountSum"),
                    number(&item, "distinctUsers") as u64,
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn events_land_with_their_body_and_a_rewrite_replaces_them() {
    let clients = moto::clients().await;
    let names = moto::unique_resources();
    bootstrap(&clients, &names).await.expect("bootstrap");
    let table = DynamoEventTable::new(clients.dynamodb.clone(), &names.events_table);
    let mut enriched = pipeline_tests::store_fixture_events();
    let original = enriched[0].clone();
    // 60 events: three BatchWriteItem requests of at most 25.
    while enriched.len() < 60 {
        let mut copy = original.clone();
        copy.event.event_id = format!("evt-{}", enriched.len());
        enriched.push(copy);
    }
    let events = pipeline_tests::unscored(&enriched);
    table.put_events(&events).await.expect("put events");
    table.put_events(&events).await.expect("put events again");
    let items = moto::scan(&clients, &names.events_table).await;
    assert_eq!(items.len(), 60);
    let item = items
        .iter()
        .find(|item| item["eventId"].as_s().unwrap() == &original.event.event_id)
        .expect("the first event");
    assert_eq!(item["userId"].as_s().unwrap(), &original.event.user_id);
    assert_eq!(item["dt"].as_s().unwrap(), &original.partition.dt);
    let body = pipeline_aws::dynamodb::item::from_attribute(&item["body"]).expect("a body");
    // The body is the stored event as its JSON text reads, as the local table keeps it.
    let text = serde_json::to_string(&original).unwrap();
    assert_eq!(body, serde_json::from_str::<Value>(&text).unwrap());
}

/// The answer of a BatchWriteItem that processed none of the request's items.
fn all_unprocessed(body: &[u8]) -> Verdict {
    let request: Value = serde_json::from_slice(body).expect("a JSON request");
    Verdict::Answer(
        200,
        json!({"UnprocessedItems": request["RequestItems"]}).to_string(),
    )
}

#[tokio::test]
async fn unprocessed_items_and_throttling_are_retried_until_every_item_lands() {
    let names = moto::unique_resources();
    bootstrap(&moto::clients().await, &names)
        .await
        .expect("bootstrap");
    // The first BatchWriteItem is answered with every item left unprocessed, the second
    // with a throttling error; the rest reach moto.
    let proxy = FaultProxy::start(
        moto::endpoint(),
        Box::new(|operation, body, count| match (operation, count) {
            ("BatchWriteItem", 0) => all_unprocessed(body),
            ("BatchWriteItem", 1) => Verdict::Answer(
                400,
                json!({"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                       "message": "injected by the test"}).to_string(),
            ),
            _ => Verdict::Forward,
        }),
    )
    .await;
    let clients = moto::clients_for(&proxy.endpoint).await;
    let backoff = Backoff {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        deadline: Duration::from_secs(10),
    };
    let table =
        DynamoEventTable::new(clients.dynamodb.clone(), &names.events_table).with_backoff(backoff);
    let enriched = pipeline_tests::store_fixture_events();
    let events: Vec<_> = pipeline_tests::unscored(&enriched)
        .into_iter()
        .take(3)
        .collect();
    table.put_events(&events).await.expect("put events");
    assert!(
        proxy.seen("BatchWriteItem") >= 3,
        "saw {}",
        proxy.seen("BatchWriteItem")
    );
    assert_eq!(
        moto::scan(&clients, &names.events_table).await.len(),
        events.len()
    );

    // Items that stay unprocessed fail the call as transient once the deadline passes.
    let stuck = FaultProxy::start(
        moto::endpoint(),
        Box::new(|operation, body, _| match operation {
            "BatchWriteItem" => all_unprocessed(body),
            _ => Verdict::Forward,
        }),
    )
    .await;
    let clients = moto::clients_for(&stuck.endpoint).await;
    let backoff = Backoff {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(10),
        deadline: Duration::from_millis(200),
    };
    let table =
        DynamoEventTable::new(clients.dynamodb.clone(), &names.events_table).with_backoff(backoff);
    let error = table
        .put_events(&events)
        .await
        .expect_err("never processed");
    assert!(error.is_transient(), "{error}");
    assert!(error.message.contains("still unprocessed"), "{error}");
}

#[tokio::test]
async fn aggregates_apply_once_per_batch_and_once_per_event() {
    let clients = moto::clients().await;
    let names = moto::unique_resources();
    bootstrap(&clients, &names).await.expect("bootstrap");
    let claims = IdempotencyTable::new(clients.dynamodb.clone(), &names.idempotency_table, WINDOW);
    let table =
        DynamoAggregateTable::new(clients.dynamodb.clone(), &names.aggregates_table, claims);
    let minute = 1_700_000_040_000u64;
    let first = [
        user_event("e1", "u1", "click", minute + 1, 10.0),
        user_event("e2", "u2", "click", minute + 2, 5.5),
        user_event("e3", "u1", "purchase", minute + 3, 1.0),
    ];
    let deltas = aggregate("batch-1", &first);
    assert_eq!(
        table.apply_once(deltas.clone().into()).await.unwrap(),
        ApplyOutcome::Applied
    );
    let after_first = counters(&clients, &names.aggregates_table).await;
    let window = minute as i64;
    assert_eq!(after_first[&("all".to_owned(), window)], (3, 16.5, 2));
    assert_eq!(
        after_first[&("type:click".to_owned(), window)],
        (2, 15.5, 2)
    );
    assert_eq!(after_first[&("user:u1".to_owned(), window)], (2, 11.0, 0));
    // The same batch again changes nothing.
    assert_eq!(
        table.apply_once(deltas.into()).await.unwrap(),
        ApplyOutcome::AlreadyApplied
    );
    assert_eq!(
        counters(&clients, &names.aggregates_table).await,
        after_first
    );
    // e2 redelivered beside a new event, so under another batch id: only e4 counts, and
    // u1 is not a new distinct user of the window.
    let second = [
        user_event("e2", "u2", "click", minute + 2, 5.5),
        user_event("e4", "u1", "click", minute + 4, 2.0),
    ];
    assert_eq!(
        table
            .apply_once(aggregate("batch-2", &second).into())
            .await
            .unwrap(),
        ApplyOutcome::Applied
    );
    let after_second = counters(&clients, &names.aggregates_table).await;
    assert_eq!(after_second[&("all".to_owned(), window)], (4, 18.5, 2));
    assert_eq!(
        after_second[&("type:click".to_owned(), window)],
        (3, 17.5, 2)
    );
    // A batch made only of events applied before is applied (its id is new) but adds nothing.
    let replayed: AggregateDeltas = aggregate("batch-3", &first);
    assert_eq!(
        table.apply_once(replayed.into()).await.unwrap(),
        ApplyOutcome::Applied
    );
    assert_eq!(
        counters(&clients, &names.aggregates_table).await,
        after_second
    );
}

#[tokio::test]
async fn a_large_batch_spans_many_transactions_and_counts_every_event_once() {
    let clients = moto::clients().await;
    let names = moto::unique_resources();
    bootstrap(&clients, &names).await.expect("bootstrap");
    let claims = IdempotencyTable::new(clients.dynamodb.clone(), &names.idempotency_table, WINDOW);
    let table =
        DynamoAggregateTable::new(clients.dynamodb.clone(), &names.aggregates_table, claims);
    let minute = 1_700_000_040_000u64;
    // 600 events of 40 users and 3 types over two windows.
    let events: Vec<UserEvent> = (0..600)
        .map(|i| {
            let kind = ["click", "view", "purchase"][i % 3];
            user_event(
                &format!("e{i}"),
                &format!("u{}", i % 40),
                kind,
                minute + (i as u64 % 2) * 60_000,
                1.0,
            )
        })
        .collect();
    let deltas = aggregate("big", &events);
    // A first attempt that applied only part of the batch (a crash between chunks): the
    // retry applies the rest, and nothing twice.
    let head = aggregate("big", &events[..250]);
    assert_eq!(
        table
            .apply_once(
                AggregateDeltas {
                    batch_id: "big-interrupted".into(),
                    ..head
                }
                .into()
            )
            .await
            .unwrap(),
        ApplyOutcome::Applied
    );
    assert_eq!(
        table.apply_once(deltas.into()).await.unwrap(),
        ApplyOutcome::Applied
    );
    let totals = counters(&clients, &names.aggregates_table).await;
    let window = minute as i64;
    assert_eq!(totals[&("all".to_owned(), window)], (300, 300.0, 20));
    assert_eq!(
        totals[&("all".to_owned(), window + 60_000)],
        (300, 300.0, 20)
    );
    let users: u64 = totals
        .iter()
        .filter(|((scope, _), _)| scope.starts_with("user:"))
        .map(|(_, (count, _, _))| count)
        .sum();
    assert_eq!(users, 600);
    let members = moto::scan(&clients, &names.aggregates_table)
        .await
        .into_iter()
        .filter(|item| item["sk"].as_s().is_ok_and(|sk| sk.starts_with("u#")))
        .count();
    // Scope `all` and each type, per window: 20 users each.
    assert_eq!(
        members,
        2 * 20 + 2 * 3 * 20 - members_never_seen(&events, minute)
    );
}

/// Memberships a (type, window) pair cannot have because no event of that user had it.
fn members_never_seen(events: &[UserEvent], minute: u64) -> usize {
    let mut seen = HashSet::new();
    for event in events {
        let window = (event.timestamp_millis() as u64 - minute) / 60_000;
        seen.insert((event.event_type.clone(), window, event.user_id.clone()));
    }
    2 * 3 * 20 - seen.len()
}

#[tokio::test]
async fn the_same_batch_applied_twice_at_once_counts_once() {
    let names = moto::unique_resources();
    bootstrap(&moto::clients().await, &names)
        .await
        .expect("bootstrap");
    // Two clients apply the same batch at once; the proxy gives moto DynamoDB's
    // transaction isolation (see `FaultProxy::serializing`).
    let proxy = FaultProxy::serializing(moto::endpoint()).await;
    let clients = moto::clients_for(&proxy.endpoint).await;
    let minute = 1_700_000_040_000u64;
    let events: Vec<UserEvent> = (0..20)
        .map(|i| {
            user_event(
                &format!("c{i}"),
                &format!("u{}", i % 4),
                "click",
                minute,
                2.0,
            )
        })
        .collect();
    let deltas = aggregate("concurrent", &events);
    let table = || {
        let claims =
            IdempotencyTable::new(clients.dynamodb.clone(), &names.idempotency_table, WINDOW);
        DynamoAggregateTable::new(clients.dynamodb.clone(), &names.aggregates_table, claims)
    };
    let (one, two) = (table(), table());
    let (a, b) = tokio::join!(
        one.apply_once(deltas.clone().into()),
        two.apply_once(deltas.clone().into())
    );
    let outcomes = [a.expect("first"), b.expect("second")];
    assert!(outcomes.contains(&ApplyOutcome::Applied), "{outcomes:?}");
    let totals = counters(&clients, &names.aggregates_table).await;
    assert_eq!(totals[&("all".to_owned(), minute as i64)], (20, 40.0, 4));
}

#[tokio::test]
async fn claims_expire_after_the_idempotency_window() {
    let clients = moto::clients().await;
    let names = moto::unique_resources();
    bootstrap(&clients, &names).await.expect("bootstrap");
    let claims = IdempotencyTable::new(
        clients.dynamodb.clone(),
        &names.idempotency_table,
        Duration::from_millis(1),
    );
    let table =
        DynamoAggregateTable::new(clients.dynamodb.clone(), &names.aggregates_table, claims);
    let minute = 1_700_000_040_000u64;
    let deltas = aggregate("expiring", &[user_event("x1", "u1", "click", minute, 1.0)]);
    assert_eq!(
        table.apply_once(deltas.clone().into()).await.unwrap(),
        ApplyOutcome::Applied
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        table.apply_once(deltas.into()).await.unwrap(),
        ApplyOutcome::Applied
    );
    let totals = counters(&clients, &names.aggregates_table).await;
    assert_eq!(totals[&("all".to_owned(), minute as i64)].0, 2);
}

#[tokio::test]
async fn profiles_and_the_notification_ledger_read_back_what_was_written() {
    let clients = moto::clients().await;
    let names = moto::unique_resources();
    bootstrap(&clients, &names).await.expect("bootstrap");
    let profiles = DynamoProfileTable::new(clients.dynamodb.clone(), &names.profiles_table);
    let fixture = pipeline_tests::fixture_profiles();
    assert_eq!(
        profiles.put_profiles(&fixture).await.unwrap(),
        fixture.len()
    );
    let mut wanted: Vec<String> = fixture
        .iter()
        .map(|profile| profile.user_id.clone())
        .collect();
    wanted.push("nobody".to_owned());
    let found = profiles.get_profiles(&wanted).await.unwrap();
    assert_eq!(found.len(), fixture.len());
    for profile in &fixture {
        assert_eq!(&found[&profile.user_id], profile);
    }

    let ledger = IdempotencyTable::new(clients.dynamodb.clone(), &names.idempotency_table, WINDOW);
    let unsent = ledger
        .unsent(&["b1:high-risk", "b2:rejected-records"])
        .await
        .unwrap();
    assert_eq!(unsent.len(), 2);
    ledger
        .record_sent(&["b1:high-risk".to_owned()])
        .await
        .unwrap();
    let unsent = ledger
        .unsent(&["b1:high-risk", "b2:rejected-records"])
        .await
        .unwrap();
    assert_eq!(unsent, HashSet::from(["b2:rejected-records".to_owned()]));
}

#[tokio::test]
async fn bootstrap_is_idempotent() {
    let clients = moto::clients().await;
    let names = moto::unique_resources();
    let first = bootstrap(&clients, &names).await.expect("bootstrap");
    assert!(
        first.resources.iter().all(|resource| resource.created),
        "{first:?}"
    );
    let second = bootstrap(&clients, &names).await.expect("bootstrap again");
    assert!(
        second.resources.iter().all(|resource| !resource.created),
        "{second:?}"
    );
    assert_eq!(first.topic_arn, second.topic_arn);
    let ttl = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&names.idempotency_table)
        .send()
        .await
        .expect("describe TTL");
    let description = ttl.time_to_live_description.expect("a TTL description");
    assert_eq!(description.attribute_name(), Some("expiresAt"));
}
