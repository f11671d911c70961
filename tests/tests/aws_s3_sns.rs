//! The S3 and SNS adapters through the real SDK over HTTP, against moto on 127.0.0.1: lake
//! objects and staged batches land under their exact keys and are removed by prefix, source
//! objects stream on either flavour of runtime, the S3 source decodes the same records as
//! the local folder, and notifications reach a subscribed queue once. A proxy in front of
//! moto answers some PublishBatch requests itself, for the entry failures moto never gives.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use parquet::file::reader::{FileReader, SerializedFileReader};
use pipeline_adapters::local::FolderObjects;
use pipeline_aws::AwsClients;
use pipeline_aws::backoff::Backoff;
use pipeline_aws::ledger::NotificationLedger;
use pipeline_aws::s3::{PARQUET_CONTENT_TYPE, S3Lake, S3Objects};
use pipeline_aws::sns::{SnsNotifier, topic_arn_by_name};
use pipeline_domain::StorageError;
use pipeline_domain::ports::{BatchStaging, DataLake, Notifier, ObjectSource};
use pipeline_domain::sources::{Streamed, open_stream};
use pipeline_domain::stages::store::{Notification, NotificationKind};
use pipeline_tests::fault_proxy::{FaultProxy, Verdict};
use pipeline_tests::moto;
use serde_json::{Value, json};

/// The bucket the S3 fixtures name.
const FIXTURE_BUCKET: &str = "pipeline-uploads";

/// A new bucket for one test. In us-east-1 CreateBucket takes no location constraint.
async fn bucket(clients: &AwsClients, prefix: &str) -> String {
    let name = moto::unique_name(prefix);
    clients
        .s3
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create the bucket");
    name
}

async fn get(clients: &AwsClients, bucket: &str, key: &str) -> Vec<u8> {
    let output = clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|error| panic!("get s3://{bucket}/{key}: {error:?}"));
    output.body.collect().await.expect("the body").to_vec()
}

async fn put(clients: &AwsClients, bucket: &str, key: &str, body: Vec<u8>) {
    clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|error| panic!("put s3://{bucket}/{key}: {error:?}"));
}

#[tokio::test]
async fn lake_objects_land_under_their_exact_keys_and_are_replaced() {
    let clients = moto::clients().await;
    let bucket = bucket(&clients, "lake").await;
    let lake = S3Lake::new(clients.s3.clone(), &bucket);
    let enriched = pipeline_tests::store_fixture_events();
    let events = pipeline_tests::unscored(&enriched);

    let key = "events/dt=2023-11-14/hour=22/bat_lake.parquet";
    lake.put_events(key, &events).await.expect("put events");
    let head = clients
        .s3
        .head_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("the Parquet object exists");
    assert_eq!(head.content_type(), Some(PARQUET_CONTENT_TYPE));
    let parquet = clients
        .s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("get the Parquet object")
        .body
        .collect()
        .await
        .expect("the body")
        .into_bytes();
    assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"));
    let reader = SerializedFileReader::new(parquet).expect("a Parquet file");
    assert_eq!(
        reader.metadata().file_metadata().num_rows(),
        events.len() as i64
    );

    let rejected = "rejected/dt=2023-11-14/bat_lake.jsonl";
    lake.put_object(
        rejected,
        b"{\"first\":1}\n".to_vec(),
        "application/x-ndjson",
    )
    .await
    .expect("put object");
    assert_eq!(get(&clients, &bucket, rejected).await, b"{\"first\":1}\n");
    lake.put_object(
        rejected,
        b"{\"second\":2}\n".to_vec(),
        "application/x-ndjson",
    )
    .await
    .expect("put the object again");
    assert_eq!(get(&clients, &bucket, rejected).await, b"{\"second\":2}\n");
    assert_eq!(
        moto::list_keys(&clients, &bucket, "").await,
        [key, rejected],
        "exactly the two keys written"
    );
}

#[tokio::test]
async fn staged_batches_round_trip_and_a_missing_one_is_permanent() {
    let clients = moto::clients().await;
    let bucket = bucket(&clients, "staging").await;
    let lake = S3Lake::new(clients.s3.clone(), &bucket);

    let key = "staging/bat_round/part-0.json";
    let body = br#"{"events":[1,2,3]}"#.to_vec();
    lake.put_staged(key, body.clone())
        .await
        .expect("put staged");
    assert_eq!(lake.get_staged(key).await.expect("get staged"), body);

    let missing = "staging/bat_round/part-9.json";
    let error = lake.get_staged(missing).await.expect_err("no such key");
    assert!(!error.is_transient(), "{error}");
    assert!(
        error
            .to_string()
            .contains(&format!("s3://{bucket}/{missing}")),
        "{error}"
    );
}

#[tokio::test]
async fn delete_staged_removes_every_key_under_the_prefix_and_nothing_else() {
    let clients = moto::clients().await;
    let bucket = bucket(&clients, "cleanup").await;
    let lake = S3Lake::new(clients.s3.clone(), &bucket);

    let staged: Vec<String> = (0..1050)
        .map(|part| format!("staging/bat_1/part-{part:04}.json"))
        .collect();
    for group in staged.chunks(50) {
        let mut uploads = tokio::task::JoinSet::new();
        for key in group {
            let s3 = clients.s3.clone();
            let (bucket, key) = (bucket.clone(), key.clone());
            uploads.spawn(async move {
                s3.put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from_static(b"{}"))
                    .send()
                    .await
            });
        }
        while let Some(upload) = uploads.join_next().await {
            upload
                .expect("the upload task")
                .expect("put a staged object");
        }
    }
    let kept = [
        "staging/bat_10/part-0000.json",
        "staging/bat_2/part-0000.json",
        "events/dt=2023-11-14/hour=22/bat_1.parquet",
    ];
    for key in kept {
        put(&clients, &bucket, key, b"{}".to_vec()).await;
    }
    // Without MaxKeys a list page holds 1,000 keys (moto as AWS), so 1,050 keys take two
    // pages and two DeleteObjects requests.
    let first_page = clients
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("staging/bat_1/")
        .send()
        .await
        .expect("list the first page");
    assert_eq!(first_page.key_count(), Some(1000));
    assert_eq!(first_page.is_truncated(), Some(true));

    let deleted = lake
        .delete_staged("staging/bat_1")
        .await
        .expect("delete staged");
    assert_eq!(deleted, 1050);
    let mut left = moto::list_keys(&clients, &bucket, "").await;
    left.sort();
    let mut expected: Vec<String> = kept.iter().map(|key| (*key).to_owned()).collect();
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(lake.delete_staged("staging/bat_1").await, Ok(0));
}

/// About 3 MiB of JSON Lines, every line different.
fn large_object() -> Vec<u8> {
    let mut body = Vec::with_capacity(3 * 1024 * 1024 + 200);
    let mut line = 0;
    while body.len() < 3 * 1024 * 1024 {
        let record = json!({"userId": format!("user-{line:07}"), "eventType": "click",
            "timestamp": 1_700_000_000_000_u64 + line, "data": {"page": format!("/p/{line}")}});
        body.extend_from_slice(record.to_string().as_bytes());
        body.push(b'\n');
        line += 1;
    }
    body
}

/// Reads a whole object through the adapter, as the decoder does: inside async code.
async fn read_through_adapter() {
    let clients = moto::clients().await;
    let bucket = bucket(&clients, "objects").await;
    let body = large_object();
    put(&clients, &bucket, "uploads/large.jsonl", body.clone()).await;
    let objects = S3Objects::new(&clients.config).expect("the adapter starts");
    let mut reader = objects
        .open(&bucket, "uploads/large.jsonl")
        .expect("open the object");
    let mut read = Vec::new();
    reader.read_to_end(&mut read).expect("read the object");
    assert_eq!(read.len(), body.len());
    assert!(read == body, "the bytes read are the bytes written");
}

#[tokio::test]
async fn an_object_streams_whole_on_a_current_thread_runtime() {
    read_through_adapter().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_streams_whole_on_a_multi_thread_runtime() {
    read_through_adapter().await;
}

#[tokio::test]
async fn a_missing_object_fails_at_open_as_permanent() {
    let clients = moto::clients().await;
    let bucket = bucket(&clients, "missing").await;
    let objects = S3Objects::new(&clients.config).expect("the adapter starts");
    let Err(error) = objects.open(&bucket, "uploads/none.jsonl") else {
        panic!("a missing key opened");
    };
    assert!(!error.is_transient(), "{error}");
    assert!(
        error
            .operation
            .contains(&format!("s3://{bucket}/uploads/none.jsonl")),
        "{error}"
    );
    let Err(error) = objects.open(&moto::unique_name("no-bucket"), "key") else {
        panic!("a missing bucket opened");
    };
    assert!(!error.is_transient(), "{error}");
}

#[tokio::test]
async fn a_reader_dropped_early_stops_its_download() {
    let clients = moto::clients().await;
    let bucket = bucket(&clients, "early").await;
    let body = large_object();
    put(&clients, &bucket, "uploads/large.jsonl", body.clone()).await;
    let objects = Arc::new(S3Objects::new(&clients.config).expect("the adapter starts"));
    // The adapter's single worker must be free again after the drop: a second object read
    // whole on the same adapter proves it, within a bound rather than forever.
    let (done, finished) = std::sync::mpsc::channel();
    let expected = body.clone();
    std::thread::spawn(move || {
        let mut reader = objects
            .open(&bucket, "uploads/large.jsonl")
            .expect("open the object");
        let mut first = [0_u8; 16];
        let count = reader.read(&mut first).expect("the first read");
        let _ = done.send(first[..count] == expected[..count]);
        drop(reader);
        let mut again = Vec::new();
        objects
            .open(&bucket, "uploads/large.jsonl")
            .expect("open the object again")
            .read_to_end(&mut again)
            .expect("read the object again");
        let _ = done.send(again == expected);
    });
    for step in ["the first read", "the whole second read"] {
        let right = finished
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{step} hung or failed"));
        assert!(right, "{step} gave the object's bytes");
    }
}

#[tokio::test]
async fn readers_open_at_once_on_one_adapter_both_read_whole() {
    let clients = moto::clients().await;
    let bucket = bucket(&clients, "together").await;
    let body = large_object();
    put(&clients, &bucket, "uploads/a.jsonl", body.clone()).await;
    put(&clients, &bucket, "uploads/b.jsonl", body.clone()).await;
    let objects = S3Objects::new(&clients.config).expect("the adapter starts");
    // The first reader's download fills its channel and waits while the second object is
    // opened and read: the waiting download must not hold the adapter's only worker.
    let (done, finished) = std::sync::mpsc::channel();
    let expected = body.clone();
    std::thread::spawn(move || {
        let mut first = objects.open(&bucket, "uploads/a.jsonl").expect("open a");
        let mut head = [0_u8; 16];
        let count = first.read(&mut head).expect("the first read of a");
        let mut second = Vec::new();
        objects
            .open(&bucket, "uploads/b.jsonl")
            .expect("open b")
            .read_to_end(&mut second)
            .expect("read b");
        let mut rest = Vec::new();
        first.read_to_end(&mut rest).expect("read the rest of a");
        let whole_first = [&head[..count], &rest[..]].concat();
        let _ = done.send(second == expected && whole_first == expected);
    });
    let right = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("both reads finish instead of hanging");
    assert!(right, "both readers gave their object's bytes");
}

/// The fixture with its bucket renamed to `bucket`.
fn with_bucket(mut event: Value, bucket: &str) -> Value {
    for record in event["Records"].as_array_mut().expect("records") {
        record["s3"]["bucket"]["name"] = json!(bucket);
    }
    event
}

/// Every item the S3 notification streams, with the bucket in record ids put back to the
/// fixtures' one.
fn streamed(event: Value, objects: &dyn ObjectSource, bucket: &str) -> Vec<Streamed> {
    let opened = open_stream(&event, objects).expect("an S3 notification");
    opened
        .records
        .map(|item| {
            let mut item = item.expect("every object opens");
            let source = match &mut item {
                Streamed::Record(record) => &mut record.source,
                Streamed::Skipped(skipped) => &mut skipped.source,
            };
            if let Some(rest) = source.id.strip_prefix(&format!("{bucket}/")) {
                source.id = format!("{FIXTURE_BUCKET}/{rest}");
            }
            item
        })
        .collect()
}

#[tokio::test]
async fn the_s3_source_reads_from_s3_what_it_reads_from_the_folder() {
    let clients = moto::clients().await;
    let bucket = bucket(&clients, "uploads").await;
    let root = pipeline_tests::objects_dir().join(FIXTURE_BUCKET);
    let folder = root.join("uploads/2023/11/14");
    for entry in std::fs::read_dir(&folder).expect("the fixture objects") {
        let path = entry.expect("an entry").path();
        let key = path
            .strip_prefix(&root)
            .expect("under the bucket folder")
            .to_string_lossy()
            .into_owned();
        put(&clients, &bucket, &key, std::fs::read(&path).expect("read")).await;
    }
    let s3 = S3Objects::new(&clients.config).expect("the adapter starts");
    let local = FolderObjects::new(pipeline_tests::objects_dir());
    let fixtures = ["valid", "valid-array", "valid-gzip", "invalid"];
    for fixture in fixtures {
        let event = pipeline_tests::read_json(
            &pipeline_tests::events_dir()
                .join("s3")
                .join(format!("{fixture}.json")),
        );
        let expected = streamed(event.clone(), &local, FIXTURE_BUCKET);
        let actual = streamed(with_bucket(event, &bucket), &s3, &bucket);
        assert!(!expected.is_empty(), "{fixture} has records");
        assert_eq!(actual, expected, "{fixture}");
    }
}

/// The notification ledger in memory.
#[derive(Default)]
struct MemoryLedger {
    sent: Mutex<HashSet<String>>,
}

#[async_trait]
impl NotificationLedger for MemoryLedger {
    async fn unsent(&self, ids: &[&str]) -> Result<HashSet<String>, StorageError> {
        let sent = self.sent.lock().expect("the ledger");
        Ok(ids
            .iter()
            .filter(|id| !sent.contains(**id))
            .map(|id| (*id).to_owned())
            .collect())
    }

    async fn record_sent(&self, ids: &[String]) -> Result<(), StorageError> {
        self.sent
            .lock()
            .expect("the ledger")
            .extend(ids.iter().cloned());
        Ok(())
    }
}

fn notifications(count: usize) -> Vec<Notification> {
    (0..count)
        .map(|index| {
            let batch_id = format!("bat_{index:02}");
            let (kind, severity, suffix) = if index % 2 == 0 {
                (NotificationKind::HighRisk, "critical", "high-risk")
            } else {
                (
                    NotificationKind::RejectedRecords,
                    "warning",
                    "rejected-records",
                )
            };
            Notification {
                id: format!("{batch_id}:{suffix}"),
                kind,
                severity: severity.to_owned(),
                subject: format!("{index} things happened in batch {batch_id}"),
                body: json!({"batchId": batch_id, "index": index}),
                batch_id,
            }
        })
        .collect()
}

#[tokio::test]
async fn notifications_reach_a_subscribed_queue_once() {
    let clients = moto::clients().await;
    let name = moto::unique_name("alerts");
    let topic_arn = clients
        .sns
        .create_topic()
        .name(&name)
        .send()
        .await
        .expect("create the topic")
        .topic_arn
        .expect("a topic ARN");
    let queue_url = moto::subscribed_queue(&clients, &topic_arn).await;
    let sqs = aws_sdk_sqs::Client::new(&clients.config);
    let notifier = SnsNotifier::new(
        clients.sns.clone(),
        &topic_arn,
        Arc::new(MemoryLedger::default()),
    );

    let sent = notifications(12);
    assert_eq!(notifier.publish(&sent).await, Ok(12));
    let envelopes = moto::receive(&sqs, &queue_url, sent.len(), 20).await;
    assert_eq!(
        envelopes.len(),
        sent.len(),
        "every notification arrives once"
    );
    let mut received = BTreeMap::new();
    for envelope in &envelopes {
        let message: Notification =
            serde_json::from_str(envelope["Message"].as_str().expect("a message"))
                .expect("the notification as JSON");
        assert_eq!(envelope["Subject"], json!(message.subject));
        let attributes = &envelope["MessageAttributes"];
        assert_eq!(attributes["severity"]["Type"], "String");
        assert_eq!(attributes["severity"]["Value"], json!(message.severity));
        assert_eq!(attributes["batchId"]["Value"], json!(message.batch_id));
        let kind = serde_json::to_value(message.kind).expect("a kind");
        assert_eq!(attributes["kind"]["Value"], kind);
        received.insert(message.id.clone(), message);
    }
    let expected: BTreeMap<String, Notification> = sent
        .iter()
        .map(|notification| (notification.id.clone(), notification.clone()))
        .collect();
    assert_eq!(received, expected);

    assert_eq!(notifier.publish(&sent).await, Ok(0), "already sent");
    let again = moto::receive(&sqs, &queue_url, 1, 3).await;
    assert!(again.is_empty(), "nothing new arrives: {again:?}");

    assert_eq!(
        topic_arn_by_name(&clients.sns, &name).await,
        Ok(Some(topic_arn))
    );
    assert_eq!(
        topic_arn_by_name(&clients.sns, &moto::unique_name("none")).await,
        Ok(None)
    );
}

/// The entry ids of a PublishBatch request (its form-encoded body), in order.
fn entry_ids(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| {
            name.starts_with("PublishBatchRequestEntries.member.") && name.ends_with(".Id")
        })
        .map(|(_, value)| value.to_owned())
        .collect()
}

/// A PublishBatch answer in the Query protocol's XML: `failed` gives, for an entry id, the
/// error code and whether it is the sender's fault; every other entry succeeded.
fn publish_batch_answer(
    ids: &[String],
    failed: impl Fn(&str) -> Option<(&'static str, bool)>,
) -> String {
    let mut successful = String::new();
    let mut failures = String::new();
    for id in ids {
        match failed(id) {
            None => successful.push_str(&format!(
                "<member><Id>{id}</Id><MessageId>message-{id}</MessageId></member>"
            )),
            Some((code, sender_fault)) => failures.push_str(&format!(
                "<member><Id>{id}</Id><Code>{code}</Code><Message>injected by the test</Message>\
                 <SenderFault>{sender_fault}</SenderFault></member>"
            )),
        }
    }
    format!(
        "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
         <PublishBatchResult><Successful>{successful}</Successful><Failed>{failures}</Failed>\
         </PublishBatchResult><ResponseMetadata><RequestId>test</RequestId></ResponseMetadata>\
         </PublishBatchResponse>"
    )
}

/// A topic, an SNS client that goes through a proxy answering PublishBatch with `answer`
/// (given the request's entry ids and how many PublishBatch requests came before), and the
/// entry ids of every PublishBatch request the proxy saw.
async fn topic_behind_proxy(
    answer: impl Fn(&[String], usize) -> Verdict + Send + Sync + 'static,
) -> (
    aws_sdk_sns::Client,
    String,
    FaultProxy,
    Arc<Mutex<Vec<Vec<String>>>>,
) {
    let clients = moto::clients().await;
    let topic_arn = clients
        .sns
        .create_topic()
        .name(moto::unique_name("faults"))
        .send()
        .await
        .expect("create the topic")
        .topic_arn
        .expect("a topic ARN");
    let requests: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let seen = requests.clone();
    let proxy = FaultProxy::start(
        moto::endpoint(),
        Box::new(move |_, body, _| {
            if !String::from_utf8_lossy(body).contains("Action=PublishBatch") {
                return Verdict::Forward;
            }
            let ids = entry_ids(body);
            let mut seen = seen.lock().expect("the requests");
            seen.push(ids.clone());
            answer(&ids, seen.len() - 1)
        }),
    )
    .await;
    let config = aws_sdk_sns::config::Builder::from(&clients.config)
        .endpoint_url(&proxy.endpoint)
        .build();
    (
        aws_sdk_sns::Client::from_conf(config),
        topic_arn,
        proxy,
        requests,
    )
}

fn quick_backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
        deadline: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn entries_failed_on_the_sns_side_are_retried_and_a_senders_fault_is_not() {
    // The first PublishBatch is answered here: n0 goes out, n1 fails on SNS's side, n2 is
    // refused as the sender's fault. Every later request reaches moto.
    let (sns, topic_arn, _proxy, requests) = topic_behind_proxy(|ids, count| {
        if count > 0 {
            return Verdict::Forward;
        }
        let failed = |id: &str| match id {
            "n1" => Some(("InternalError", false)),
            "n2" => Some(("InvalidParameter", true)),
            _ => None,
        };
        Verdict::Answer(200, publish_batch_answer(ids, failed))
    })
    .await;
    let ledger = Arc::new(MemoryLedger::default());
    let notifier = SnsNotifier::new(sns, &topic_arn, ledger.clone()).with_backoff(quick_backoff());
    let sent = notifications(3);

    let error = notifier.publish(&sent).await.expect_err("n2 is refused");
    assert!(!error.is_transient(), "{error}");
    assert!(error.message.contains(&sent[2].id), "{error}");
    assert_eq!(
        *requests.lock().unwrap(),
        [vec!["n0", "n1", "n2"], vec!["n1"]],
        "only the entry that failed on SNS's side is sent again"
    );
    let recorded = ledger.sent.lock().unwrap().clone();
    assert_eq!(
        recorded,
        HashSet::from([sent[0].id.clone(), sent[1].id.clone()])
    );

    // A second call sends only the one never published.
    assert_eq!(notifier.publish(&sent).await, Ok(1));
    assert_eq!(requests.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn an_entry_still_failing_after_the_retries_fails_the_call_as_transient() {
    let (sns, topic_arn, _proxy, requests) = topic_behind_proxy(|ids, _| {
        let failed = |id: &str| (id == "n1").then_some(("InternalError", false));
        Verdict::Answer(200, publish_batch_answer(ids, failed))
    })
    .await;
    let ledger = Arc::new(MemoryLedger::default());
    let notifier = SnsNotifier::new(sns, &topic_arn, ledger.clone()).with_backoff(quick_backoff());
    let sent = notifications(3);

    let error = notifier
        .publish(&sent)
        .await
        .expect_err("n1 never goes out");
    assert!(error.is_transient(), "{error}");
    assert!(error.message.contains(&sent[1].id), "{error}");
    let requests = requests.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        4,
        "the first request and three retries: {requests:?}"
    );
    assert!(requests[1..].iter().all(|ids| ids == &["n1"]));
    let recorded = ledger.sent.lock().unwrap().clone();
    assert_eq!(
        recorded,
        HashSet::from([sent[0].id.clone(), sent[2].id.clone()])
    );
}

#[tokio::test]
async fn a_put_to_a_bucket_that_does_not_exist_is_permanent() {
    let clients = moto::clients().await;
    let bucket = moto::unique_name("absent");
    let lake = S3Lake::new(clients.s3.clone(), &bucket);
    let error = lake
        .put_object("rejected/x.jsonl", b"{}\n".to_vec(), "application/x-ndjson")
        .await
        .expect_err("no such bucket");
    assert!(!error.is_transient(), "{error}");
    assert!(error.message.contains("NoSuchBucket"), "{error}");
}
