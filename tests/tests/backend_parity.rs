//! The same end-to-end scenario on both backends: every source fixture through the deployed
//! definition, once on the embedded backend and once on the AWS adapters against moto,
//! must leave the same logical state: the same events (by id, with the same stored body),
//! the same aggregates, the same data lake keys with the same row counts, and the same
//! notifications, delivered through SNS to a subscribed SQS queue. A replay on AWS then
//! changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use pipeline_adapters::Config;
use pipeline_asl::{ExecutionOptions, RecordingSleeper};
use pipeline_aws::AwsBackend;
use pipeline_aws::bootstrap::bootstrap;
use pipeline_handlers::Dependencies;
use pipeline_handlers::orchestrator::Orchestrator;
use pipeline_tests::{
    FIXED_NOW_MILLIS, Sandbox, embedded_model, moto, objects_dir, source_fixtures,
};
use serde_json::Value;

fn options(name: &str) -> ExecutionOptions {
    ExecutionOptions {
        name: name.to_owned(),
        sleeper: Arc::new(RecordingSleeper::default()),
        now: Arc::new(|| {
            chrono::DateTime::from_timestamp_millis(FIXED_NOW_MILLIS).unwrap_or_default()
        }),
        ..ExecutionOptions::default()
    }
}

/// The logical state of one backend.
#[derive(Debug, PartialEq)]
struct State {
    events: BTreeMap<String, Value>,
    /// (scope, window) -> (count, amount sum in thousandths, distinct users).
    aggregates: BTreeMap<(String, i64), (u64, i64, u64)>,
    /// Lake key -> rows (Parquet) or lines (JSON Lines); staged batches are left out.
    lake: BTreeMap<String, usize>,
    notifications: BTreeSet<String>,
}

fn rows_of(key: &str, bytes: Vec<u8>) -> usize {
    if key.ends_with(".parquet") {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let reader =
            SerializedFileReader::new(hyper::body::Bytes::from(bytes)).expect("a Parquet object");
        reader.metadata().file_metadata().num_rows() as usize
    } else {
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .count()
    }
}

fn local_state(sandbox: &Sandbox) -> State {
    let snapshot = sandbox.backend.database.snapshot().expect("a snapshot");
    let aggregates = snapshot
        .aggregates
        .iter()
        .map(|row| {
            let row = serde_json::to_value(row).expect("a row");
            (
                (
                    row["scope"].as_str().unwrap().to_owned(),
                    row["windowStart"].as_i64().unwrap(),
                ),
                (
                    row["count"].as_u64().unwrap(),
                    (row["amountSum"].as_f64().unwrap() * 1000.0).round() as i64,
                    row["distinctUsers"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    let root = sandbox.backend.lake.root();
    let lake = pipeline_tests::lake_listing(root)
        .into_iter()
        .map(|object| object["key"].as_str().unwrap().to_owned())
        .filter(|key| !key.starts_with("staging/"))
        .map(|key| {
            let rows = rows_of(&key, std::fs::read(root.join(&key)).expect("a lake object"));
            (key, rows)
        })
        .collect();
    let notifications = pipeline_tests::outbox_lines(sandbox.backend.outbox.path())
        .into_iter()
        .map(|line| line["id"].as_str().unwrap().to_owned())
        .collect();
    State {
        events: snapshot.events,
        aggregates,
        lake,
        notifications,
    }
}

async fn aws_state(aws: &AwsBackend, queue_url: &str, delivered: &mut BTreeSet<String>) -> State {
    let clients = &aws.clients;
    let names = &aws.resources;
    let mut events = BTreeMap::new();
    let mut aggregates = BTreeMap::new();
    for item in moto::scan(clients, &names.events_table).await {
        let item = Value::Object(pipeline_aws::dynamodb::item::from_item(&item).expect("an item"));
        events.insert(
            item["eventId"].as_str().unwrap().to_owned(),
            item["body"].clone(),
        );
    }
    for item in moto::scan(clients, &names.aggregates_table).await {
        let item = Value::Object(pipeline_aws::dynamodb::item::from_item(&item).expect("an item"));
        if item["sk"].as_str().unwrap().starts_with("w#") {
            aggregates.insert(
                (
                    item["scope"].as_str().unwrap().to_owned(),
                    item["windowStart"].as_i64().unwrap(),
                ),
                (
                    item["eventCount"].as_u64().unwrap(),
                    (item["amountSum"].as_f64().unwrap() * 1000.0).round() as i64,
                    item["distinctUsers"].as_u64().unwrap(),
                ),
            );
        }
    }
    let mut lake = BTreeMap::new();
    for key in moto::list_keys(clients, &names.lake_bucket, "").await {
        if key.starts_with("staging/") {
            continue;
        }
        let body = clients
            .s3
            .get_object()
            .bucket(&names.lake_bucket)
            .key(&key)
            .send()
            .await
            .expect("an object");
        let bytes = body
            .body
            .collect()
            .await
            .expect("a body")
            .into_bytes()
            .to_vec();
        lake.insert(key.clone(), rows_of(&key, bytes));
    }
    // What SNS delivered to the queue so far (a few polls of a second each).
    let sqs = aws_sdk_sqs::Client::new(&clients.config);
    for envelope in moto::receive(&sqs, queue_url, usize::MAX, 3).await {
        let message = envelope["Message"].as_str().expect("a message");
        let notification: Value = serde_json::from_str(message).expect("a notification");
        delivered.insert(notification["id"].as_str().expect("an id").to_owned());
    }
    State {
        events,
        aggregates,
        lake,
        notifications: delivered.clone(),
    }
}

/// Puts every fixture object (`events/s3/objects/<bucket>/<key>`) into moto.
async fn upload_fixture_objects(clients: &pipeline_aws::AwsClients, root: &Path) {
    for bucket in std::fs::read_dir(root).expect("the objects folder") {
        let bucket = bucket.unwrap().path();
        let name = bucket.file_name().unwrap().to_string_lossy().into_owned();
        let _ = clients.s3.create_bucket().bucket(&name).send().await;
        let mut pending = vec![bucket.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let key = path
                    .strip_prefix(&bucket)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                clients
                    .s3
                    .put_object()
                    .bucket(&name)
                    .key(&key)
                    .body(ByteStream::from_path(&path).await.unwrap())
                    .send()
                    .await
                    .expect("upload");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_leaves_the_same_state_on_both_backends() {
    // The embedded backend.
    let sandbox = Sandbox::new();
    let fixtures = source_fixtures();
    for (folder, stem, path) in &fixtures {
        let event = pipeline_tests::read_json(path);
        sandbox
            .orchestrator
            .execute(event, &options(&format!("{folder}-{stem}")))
            .await;
    }
    let local = local_state(&sandbox);

    // AWS, against moto.
    let clients = moto::clients().await;
    let names = moto::unique_resources();
    let provisioned = bootstrap(&clients, &names).await.expect("bootstrap");
    upload_fixture_objects(&clients, &objects_dir()).await;
    let queue_url = moto::subscribed_queue(&clients, &provisioned.topic_arn).await;

    let config = Config::from_lookup(|_| None).expect("the default configuration");
    let config = Config {
        aws: names.clone(),
        ..config
    };
    let aws = Arc::new(
        AwsBackend::with_clients(clients.clone(), &config)
            .await
            .expect("the AWS backend"),
    );
    aws.profiles
        .put_profiles(&pipeline_tests::fixture_profiles())
        .await
        .expect("profiles");
    let deps = Arc::new(Dependencies::aws(
        &aws,
        embedded_model(),
        300,
        Arc::new(|| FIXED_NOW_MILLIS),
    ));
    let orchestrator = Orchestrator::pipeline(deps).expect("the definition loads");
    for (folder, stem, path) in &fixtures {
        let event = pipeline_tests::read_json(path);
        orchestrator
            .execute(event, &options(&format!("{folder}-{stem}")))
            .await;
    }
    let mut delivered = BTreeSet::new();
    let remote = aws_state(&aws, &queue_url, &mut delivered).await;

    assert!(
        !local.events.is_empty() && !local.aggregates.is_empty() && !local.notifications.is_empty()
    );
    let event_ids = |state: &State| state.events.keys().cloned().collect::<Vec<_>>();
    assert_eq!(event_ids(&remote), event_ids(&local));
    for (id, body) in &local.events {
        assert_eq!(&remote.events[id], body, "the stored body of {id}");
    }
    assert_eq!(remote.aggregates, local.aggregates);
    assert_eq!(remote.lake, local.lake);
    assert_eq!(remote.notifications, local.notifications);

    // A replay on AWS changes nothing and sends nothing.
    for (folder, stem, path) in &fixtures {
        let event = pipeline_tests::read_json(path);
        orchestrator
            .execute(event, &options(&format!("{folder}-{stem}-again")))
            .await;
    }
    let replayed = aws_state(&aws, &queue_url, &mut delivered).await;
    assert_eq!(replayed, remote);
}
