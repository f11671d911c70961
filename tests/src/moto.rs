//! A local AWS endpoint for the AWS adapter tests: `moto` in server mode on 127.0.0.1.
//!
//! [`endpoint`] starts one server per test process, from the project virtualenv that the
//! test command (`scripts/test`) creates with `moto[server]` in it, on a port the server
//! picks itself, and reports its address. The server reads its standard input and stops when
//! that closes, so it ends with the test process however that ends: nothing is left
//! running. `PIPELINE_TEST_AWS_ENDPOINT` may name an endpoint that is already running
//! instead; it must be on 127.0.0.1 or localhost, never a real AWS endpoint.
//!
//! Tests create their own tables, buckets and topics with [`unique_name`], so they can share
//! one server.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The script the virtualenv's Python runs: pick a free port, serve, stop at end of input.
const SERVE: &str = "
import socket, sys
from moto.server import ThreadedMotoServer
probe = socket.socket()
probe.bind(('127.0.0.1', 0))
port = probe.getsockname()[1]
probe.close()
server = ThreadedMotoServer(ip_address='127.0.0.1', port=port, verbose=False)
server.start()
print(port, flush=True)
sys.stdin.read()
server.stop()
";

/// The running server: kept for the life of the process; its stdin is the stop signal.
struct Server {
    endpoint: String,
    _child: Child,
    _stdin: ChildStdin,
}

static SERVER: OnceLock<Mutex<Option<Server>>> = OnceLock::new();

fn python() -> PathBuf {
    std::env::var_os("PIPELINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join(".venv").join("bin").join("python"))
}

fn start() -> Server {
    let python = python();
    assert!(
        python.exists(),
        "{} does not exist: run ./scripts/test (it creates .venv with moto[server]), or set PIPELINE_PYTHON",
        python.display()
    );
    let mut child = Command::new(&python)
        .args(["-c", SERVE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("start moto with {}: {error}", python.display()));
    let stdin = child.stdin.take().expect("stdin was piped");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout was piped"))
        .read_line(&mut line)
        .expect("read the port moto chose");
    let port: u16 = line.trim().parse().unwrap_or_else(|_| {
        panic!(
            "moto did not start (it printed {line:?}); is moto[server] installed in {}?",
            python.display()
        )
    });
    Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        _child: child,
        _stdin: stdin,
    }
}

/// The address of the local AWS endpoint, starting the server on first use.
pub fn endpoint() -> String {
    if let Ok(endpoint) = std::env::var("PIPELINE_TEST_AWS_ENDPOINT") {
        assert!(
            endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
            "PIPELINE_TEST_AWS_ENDPOINT must be a local endpoint, not {endpoint}"
        );
        return endpoint;
    }
    let mut server = SERVER
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    server.get_or_insert_with(start).endpoint.clone()
}

/// A name no other test in this process uses, valid for tables, buckets and topics.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The environment every AWS client in the tests gets: the local endpoint, a region, and
/// dummy credentials, so that nothing can reach or sign for a real account.
pub fn client_environment() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ]
}

/// SDK clients for the local endpoint, built without touching the process environment.
pub async fn clients() -> pipeline_aws::AwsClients {
    clients_for(&endpoint()).await
}

/// SDK clients for `endpoint` (the local endpoint, or a proxy in front of it).
pub async fn clients_for(endpoint: &str) -> pipeline_aws::AwsClients {
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "the tests only ever talk to local endpoints, not {endpoint}"
    );
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await;
    pipeline_aws::AwsClients::from_config(config)
}

/// Resource names no other test uses: tables, bucket and topic of one test's own.
pub fn unique_resources() -> pipeline_adapters::AwsResources {
    let name = unique_name("pipeline-test");
    pipeline_adapters::AwsResources {
        events_table: format!("{name}-events"),
        aggregates_table: format!("{name}-aggregates"),
        idempotency_table: format!("{name}-idempotency"),
        profiles_table: format!("{name}-profiles"),
        lake_bucket: format!("{name}-lake"),
        topic_arn: None,
        topic_name: format!("{name}-alerts"),
        search_url: None,
        search_index: "pipeline-events".to_owned(),
        search_signing: None,
    }
}

/// A queue subscribed to `topic_arn` with the SNS envelope kept, and its URL.
pub async fn subscribed_queue(clients: &pipeline_aws::AwsClients, topic_arn: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(&clients.config);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("alerts"))
        .send()
        .await
        .expect("create the queue")
        .queue_url
        .expect("a queue URL");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("the queue's attributes")
        .attributes
        .and_then(|mut attributes| {
            attributes.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        })
        .expect("the queue ARN");
    clients
        .sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "false")
        .send()
        .await
        .expect("subscribe the queue");
    queue_url
}

/// Receives messages until `expected` have arrived or `tries` polls of a second each have
/// passed, and deletes them.
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    expected: usize,
    tries: usize,
) -> Vec<serde_json::Value> {
    let mut bodies = Vec::new();
    for _ in 0..tries {
        if bodies.len() >= expected {
            break;
        }
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive messages");
        for message in output.messages() {
            let body = message.body().expect("a body");
            bodies.push(serde_json::from_str(body).expect("an SNS envelope"));
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().expect("a receipt handle"))
                .send()
                .await
                .expect("delete the message");
        }
    }
    bodies
}

/// Every item of `table`, over all scan pages.
pub async fn scan(
    clients: &pipeline_aws::AwsClients,
    table: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = clients
            .dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// Every key of `bucket` under `prefix`, through as many list pages as it takes.
pub async fn list_keys(
    clients: &pipeline_aws::AwsClients,
    bucket: &str,
    prefix: &str,
) -> Vec<String> {
    let mut pages = clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.expect("a list page");
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|object| object.key().map(str::to_owned)),
        );
    }
    keys
}
