//! The `pipeline` binary with `--backend aws`, against moto on 127.0.0.1: `bootstrap`
//! creates the resources once, then `import-profiles`, `run` and `demo` go through the
//! DynamoDB, S3 and SNS adapters, and a replay changes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pipeline_adapters::AwsResources;
use pipeline_tests::fault_proxy::FaultProxy;
use pipeline_tests::moto;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The binary with the local endpoint, dummy credentials and `names` in its environment,
/// and nothing else of the AWS configuration of the machine it runs on.
fn pipeline(endpoint: &str, names: &AwsResources, data_dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    command.current_dir(repo_root());
    for variable in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "PIPELINE_BACKEND",
        "PIPELINE_TOPIC_ARN",
        "PIPELINE_SEARCH_URL",
        "RUST_LOG",
    ] {
        command.env_remove(variable);
    }
    command.envs(moto::client_environment());
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", data_dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            data_dir.join("no-aws-credentials"),
        )
        .env("PIPELINE_EVENTS_TABLE", &names.events_table)
        .env("PIPELINE_AGGREGATES_TABLE", &names.aggregates_table)
        .env("PIPELINE_IDEMPOTENCY_TABLE", &names.idempotency_table)
        .env("PIPELINE_PROFILES_TABLE", &names.profiles_table)
        .env("PIPELINE_LAKE_BUCKET", &names.lake_bucket)
        .env("PIPELINE_TOPIC_NAME", &names.topic_name)
        .arg("--backend")
        .arg("aws")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args);
    command.output().expect("the pipeline binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_then_run_and_demo_go_through_the_aws_adapters() {
    let dir = tempfile::tempdir().unwrap();
    let names = moto::unique_resources();
    // moto does not isolate concurrent transactions from each other (see
    // `FaultProxy::serializing`); the proxy gives the binary's concurrent executions the
    // isolation DynamoDB gives them.
    let proxy = FaultProxy::serializing(moto::endpoint()).await;
    let pipeline = |args: &[&str]| pipeline(&proxy.endpoint, &names, dir.path(), args);

    // Before bootstrapping, the start fails and says what to do.
    let early = pipeline(&["run", "events/sqs/valid.json"]);
    assert!(!early.status.success());
    let stderr = text(&early.stderr);
    assert!(
        stderr.contains("PIPELINE_TOPIC_NAME") && stderr.contains("pipeline bootstrap"),
        "{stderr}"
    );

    let first = succeeded(&pipeline(&["bootstrap"]));
    assert_eq!(first.matches("created").count(), 6, "{first}");
    let again = succeeded(&pipeline(&["bootstrap"]));
    assert_eq!(again.matches("exists").count(), 6, "{again}");

    let imported = succeeded(&pipeline(&["import-profiles", "events/profiles.jsonl"]));
    assert!(imported.contains(&names.events_table), "{imported}");

    let files = [
        "events/sqs/valid.json",
        "events/kinesis/valid.json",
        "events/sns/invalid.json",
    ];
    let mut args = vec!["run"];
    args.extend(files);
    let run = succeeded(&pipeline(&args));
    assert!(
        run.contains(&format!("s3://{}", names.lake_bucket)),
        "{run}"
    );
    assert!(run.contains(&names.topic_name), "{run}");
    let clients = moto::clients().await;
    let events = moto::scan(&clients, &names.events_table).await.len();
    assert!(events > 0);
    let keys = moto::list_keys(&clients, &names.lake_bucket, "").await;
    assert!(
        keys.iter()
            .any(|key| key.starts_with("events/dt=") && key.ends_with(".parquet")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|key| key.starts_with("rejected/dt=")),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|key| key.starts_with("staging/")),
        "staged batches are removed when the run ends: {keys:?}"
    );

    // A replay applies nothing again.
    let replay = succeeded(&pipeline(&args));
    assert!(replay.contains("0 parts applied"), "{replay}");
    assert_eq!(
        moto::scan(&clients, &names.events_table).await.len(),
        events
    );

    // The demo, S3 uploads included: they are put in the lake bucket under uploads/.
    let demo = succeeded(&pipeline(&[
        "demo",
        "--events",
        "300",
        "--batch-size",
        "30",
    ]));
    for source in [
        "apigateway-http",
        "sqs",
        "kinesis",
        "s3",
        "dynamodb-stream",
        "eventbridge",
    ] {
        assert!(
            demo.contains(source),
            "{source} missing from the summary:\n{demo}"
        );
    }
    let keys = moto::list_keys(&clients, &names.lake_bucket, "").await;
    assert!(
        keys.iter().any(|key| key.starts_with("uploads/")),
        "{keys:?}"
    );
    assert!(moto::scan(&clients, &names.events_table).await.len() > events + 200);
}
