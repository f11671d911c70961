//! The `pipeline` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The binary, run from the repository root on `data_dir`, with a clean environment.
fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    command
        .current_dir(repo_root())
        .env_remove("PIPELINE_BACKEND")
        .env_remove("PIPELINE_MODEL_PATH")
        .env_remove("RUST_LOG")
        .env("PIPELINE_OBJECTS_DIR", "events/s3/objects")
        .arg("--data-dir")
        .arg(data_dir);
    command
}

fn pipeline(data_dir: &Path, args: &[&str]) -> Output {
    command(data_dir)
        .args(args)
        .output()
        .expect("the pipeline binary runs")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn invoke_prints_the_handlers_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let output = pipeline(
        dir.path(),
        &["invoke", "validate", "--event", "events/s3/valid-gzip.json"],
    );
    assert!(output.status.success(), "{}", stderr_of(&output));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    assert_eq!(value["counts"]["accepted"], 7);
    assert_eq!(value["sourceKind"], "s3");
}

#[test]
fn trigger_prints_the_partial_batch_response_and_stores_the_good_records() {
    let dir = tempfile::tempdir().unwrap();
    let output = pipeline(
        dir.path(),
        &["trigger", "--event", "events/kinesis/poisoned.json"],
    );
    assert!(output.status.success(), "{}", stderr_of(&output));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    assert_eq!(value, serde_json::json!({"batchItemFailures": []}));
    // The three good records are stored; the poisoned one is quarantined.
    let rejected = dir.path().join("lake").join("rejected");
    assert_eq!(std::fs::read_dir(rejected).unwrap().count(), 1);

    let refused = pipeline(dir.path(), &["trigger", "--event", "events/sns/valid.json"]);
    assert!(!refused.status.success());
    assert!(stderr_of(&refused).contains("SQS, Kinesis or DynamoDB Streams"));
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // As `pipeline invoke ... | head -c 100` does: the pipe is closed before the output.
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(dir.path())
        .args(["invoke", "validate", "--event", "events/sqs/valid.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_handler_error_is_one_line_on_stderr_and_a_failure_exit() {
    let dir = tempfile::tempdir().unwrap();
    let output = pipeline(
        dir.path(),
        &["invoke", "validate", "--event", "events/sns/invalid.json"],
    );
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("ValidationError: "), "{stderr}");
    assert!(stderr.contains("/timestamp"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn inference_scores_with_the_embedded_model() {
    let dir = tempfile::tempdir().unwrap();
    let output = pipeline(
        dir.path(),
        &[
            "invoke",
            "inference",
            "--event",
            "events/pipeline/enrich-output.json",
        ],
    );
    assert!(output.status.success(), "{}", stderr_of(&output));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let scores = value["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 2);
    for score in scores {
        let probability = score["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&probability), "{score}");
        assert!(
            score["modelVersion"]
                .as_str()
                .unwrap()
                .starts_with("risk-lr-")
        );
    }
}

#[test]
fn a_broken_model_file_fails_at_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("risk.onnx");
    std::fs::write(&model, b"not an onnx model").unwrap();
    std::fs::copy(
        repo_root().join("models/risk.card.json"),
        dir.path().join("risk.card.json"),
    )
    .unwrap();
    let output = command(dir.path())
        .env("PIPELINE_MODEL_PATH", &model)
        .args(["invoke", "validate", "--event", "events/sqs/valid.json"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("ConfigError: PIPELINE_MODEL_PATH: "),
        "{stderr}"
    );
    assert!(stderr.contains("SHA-256"), "{stderr}");
}

#[test]
fn events_can_come_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(dir.path())
        .args(["invoke", "aggregate", "--event", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let fixture = std::fs::read(repo_root().join("events/pipeline/enrich-output.json")).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &fixture).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        !value["aggregates"]["counters"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_bad_backend_fails_at_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path())
        .env("PIPELINE_BACKEND", "cloud")
        .args(["invoke", "validate", "--event", "events/sqs/valid.json"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert!(
        stderr.starts_with("ConfigError: PIPELINE_BACKEND: "),
        "{stderr}"
    );
}

#[test]
fn store_then_replay_through_the_binary_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = pipeline(
        dir.path(),
        &[
            "invoke",
            "store",
            "--event",
            "events/pipeline/store-input.json",
        ],
    );
    assert!(first.status.success(), "{}", stderr_of(&first));
    let second = pipeline(
        dir.path(),
        &[
            "invoke",
            "store",
            "--event",
            "events/pipeline/store-input.json",
        ],
    );
    let value: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(value["aggregates"], "already-applied");
    assert_eq!(value["notificationsSent"], 0);
    assert!(
        dir.path()
            .join("lake/events/dt=2023-11-14/hour=22")
            .is_dir()
    );
}

#[test]
fn the_demo_runs_and_reports_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let output = pipeline(
        dir.path(),
        &["demo", "--events", "1200", "--batch-size", "100"],
    );
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("events/s"), "{stdout}");
    for source in [
        "apigateway-http",
        "apigateway-rest",
        "sqs",
        "sns",
        "kinesis",
        "s3",
        "dynamodb-stream",
        "eventbridge",
        "direct",
    ] {
        assert!(
            stdout.contains(source),
            "{source} missing from the summary:\n{stdout}"
        );
    }
    assert!(dir.path().join("pipeline.db").is_file());
    assert!(dir.path().join("outbox/notifications.jsonl").is_file());
    assert!(
        dir.path()
            .join("objects/pipeline-uploads/uploads/synthetic")
            .is_dir(),
        "the demo's S3 uploads are written under its data directory"
    );
    assert!(
        !repo_root()
            .join("events/s3/objects/pipeline-uploads/uploads/synthetic")
            .exists(),
        "and never into the fixtures' objects"
    );
}

#[test]
fn run_sends_files_and_folders_through_the_state_machine_and_a_replay_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "events/sqs",
        "events/s3/valid.json",
        "events/sns/invalid.json",
    ];
    let first = pipeline(dir.path(), &args);
    assert!(first.status.success(), "{}", stderr_of(&first));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("executions: 4 processed, 1 quarantined"),
        "{stdout}"
    );
    assert!(
        stdout.contains("events table:   18 events written"),
        "{stdout}"
    );
    assert!(stdout.contains("quarantine:"), "{stdout}");
    assert!(stdout.contains("largest state payload:"), "{stdout}");
    assert!(stdout.contains("events/s"), "{stdout}");
    assert!(
        !dir.path().join("lake/staging").exists()
            || std::fs::read_dir(dir.path().join("lake/staging"))
                .unwrap()
                .next()
                .is_none(),
        "staged batches are removed after their execution"
    );
    let replay = pipeline(dir.path(), &args);
    assert!(replay.status.success(), "{}", stderr_of(&replay));
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert!(
        stdout.contains("aggregates:     0 parts applied, 4 already applied before"),
        "{stdout}"
    );
}

#[test]
fn run_fails_when_an_execution_fails_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path())
        .env("PIPELINE_OBJECTS_DIR", dir.path().join("no-objects"))
        .args(["run", "events/s3/valid.json"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("FAILED events/s3/valid.json: StorageError"),
        "{stdout}"
    );
    assert!(stderr_of(&output).contains("1 executions failed"));
}

fn write_definition(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("definition.asl.json");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn run_with_a_definition_prints_its_output_or_its_error_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let definition = write_definition(
        dir.path(),
        r#"{"StartAt": "Check", "States": {
            "Check": {"Type": "Task", "Resource": "validate",
                      "ResultSelector": {"accepted.$": "$.counts.accepted", "source.$": "$.sourceKind"},
                      "Next": "Done"},
            "Done": {"Type": "Pass", "Parameters": {"summary.$": "States.Format('{} events from {}', $.accepted, $.source)"}, "End": true}
        }}"#,
    );
    let output = pipeline(
        dir.path(),
        &[
            "run",
            "--definition",
            definition.to_str().unwrap(),
            "--input",
            "events/sqs/valid.json",
        ],
    );
    assert!(output.status.success(), "{}", stderr_of(&output));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["summary"], "2 events from sqs");

    let failing = write_definition(
        dir.path(),
        r#"{"StartAt": "Stop", "States": {"Stop": {"Type": "Fail", "Error": "Demo.Stopped", "Cause": "on purpose"}}}"#,
    );
    let output = pipeline(
        dir.path(),
        &[
            "run",
            "--definition",
            failing.to_str().unwrap(),
            "--input",
            "events/sqs/valid.json",
        ],
    );
    assert!(!output.status.success());
    assert_eq!(stderr_of(&output).trim(), "Demo.Stopped: on purpose");
}

#[test]
fn a_definition_that_cannot_run_locally_is_refused_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        (
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Colour": "red"}}}"#,
            "state \"A\", field \"Colour\"",
        ),
        (
            r#"{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": true}}}"#,
            "state \"A\", field \"Resource\"",
        ),
    ] {
        let definition = write_definition(dir.path(), text);
        let output = pipeline(
            dir.path(),
            &[
                "run",
                "--definition",
                definition.to_str().unwrap(),
                "--input",
                "events/sqs/valid.json",
            ],
        );
        assert!(!output.status.success());
        let stderr = stderr_of(&output);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!dir.path().join("lake").exists(), "nothing ran");
    }
}

#[test]
fn the_same_batch_running_twice_at_once_keeps_its_staged_parts_until_both_end() {
    // A queue can deliver a batch again while the first delivery is still running: both
    // executions have the same batch id, so the same staged objects.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("generated");
    let objects = dir.path().join("objects");
    let generated = command(dir.path())
        .env("PIPELINE_OBJECTS_DIR", &objects)
        .args(["generate", "--events", "3000", "--batch-size", "3000"])
        .args(["--source", "s3", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", stderr_of(&generated));
    let file = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = file.to_str().unwrap();
    let copies = [file; 8];
    let output = command(dir.path())
        .env("PIPELINE_OBJECTS_DIR", &objects)
        .env("PIPELINE_PART_EVENTS", "500")
        .env("PIPELINE_INLINE_LIMIT_BYTES", "1024")
        .args(["run", "--concurrency", "8"])
        .args(copies)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("8 processed"), "{stdout}");
    let staging = dir.path().join("lake").join("staging");
    assert!(
        !staging.exists() || std::fs::read_dir(&staging).unwrap().next().is_none(),
        "staged objects are removed once the run ends"
    );
}

#[test]
fn generated_source_events_run_through_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("generated");
    let objects = dir.path().join("objects");
    for source in ["s3", "kinesis", "dynamodb-stream"] {
        let output = command(dir.path())
            .env("PIPELINE_OBJECTS_DIR", &objects)
            .args([
                "generate",
                "--events",
                "250",
                "--batch-size",
                "100",
                "--source",
                source,
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
    }
    let files = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(files, 9, "3 source events of each kind");
    let output = command(dir.path())
        .env("PIPELINE_OBJECTS_DIR", &objects)
        .arg("run")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let total = stdout
        .lines()
        .find(|line| line.starts_with("total"))
        .expect("a total row");
    let numbers: Vec<u64> = total
        .split_whitespace()
        .skip(1)
        .map(|cell| cell.parse().unwrap())
        .collect();
    assert_eq!(numbers[0], 9, "executions: {total}");
    assert_eq!(numbers[1] + numbers[2], 750, "accepted + rejected: {total}");
    assert!(numbers[2] > 0, "some generated events are invalid: {total}");
}

#[test]
fn every_fixture_in_events_runs_through_the_state_machine_without_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let first = pipeline(dir.path(), &["run", "events"]);
    assert!(
        first.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&first.stdout),
        stderr_of(&first)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains(", 0 failed"), "{stdout}");
    let replay = pipeline(dir.path(), &["run", "events"]);
    assert!(replay.status.success(), "{}", stderr_of(&replay));
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert!(
        stdout.contains("aggregates:     0 parts applied"),
        "{stdout}"
    );
    assert!(stdout.contains("0 notifications sent"), "{stdout}");
}

/// Runs `scripts/demo-series` with `args`, then `builds` (each `NAME` or `NAME,VAR=VALUE`,
/// the test binary under that name), on demos of 3,000 events; what it printed.
#[cfg(target_os = "linux")]
fn demo_series(args: &[&std::ffi::OsStr], builds: &[&str]) -> String {
    let binary = env!("CARGO_BIN_EXE_pipeline");
    let builds = builds.iter().map(|build| match build.split_once(',') {
        Some((name, settings)) => format!("{name}={binary},{settings}"),
        None => format!("{build}={binary}"),
    });
    let output = Command::new("python3")
        .current_dir(repo_root())
        .arg("scripts/demo-series")
        .args(args)
        .args(builds)
        .args(["--", "--events", "3000", "--batch-size", "250"])
        .env("PIPELINE_OBJECTS_DIR", "events/s3/objects")
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs the script");
    assert!(output.status.success(), "{}", stderr_of(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `scripts/demo-series`, the measuring script of docs/benchmarks.md, on this binary: one line
/// per run and the means, with the stage workers' and the writer's CPU time read from /proc.
#[cfg(target_os = "linux")]
#[test]
fn the_demo_series_script_reports_each_runs_rate_and_threads() {
    let scratch = tempfile::tempdir().unwrap();
    let stdout = demo_series(
        &[
            "--rounds".as_ref(),
            "2".as_ref(),
            "--scratch".as_ref(),
            scratch.path().as_os_str(),
        ],
        &["one", "two,PIPELINE_PART_EVENTS=50"],
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        7,
        "four runs, a heading and two means:\n{stdout}"
    );
    for (line, prefix) in lines.iter().zip([
        "round 1 one: ",
        "round 1 two: ",
        "round 2 one: ",
        "round 2 two: ",
        "means:",
        "one: ",
        "two: ",
    ]) {
        assert!(
            line.starts_with(prefix),
            "{line:?} after {prefix:?}:\n{stdout}"
        );
    }
    let seconds = |line: &str, kind: &str| -> f64 {
        let after = line
            .split(&format!("{kind} "))
            .nth(1)
            .unwrap_or_else(|| panic!("{kind} in {line}"));
        after.split(' ').next().unwrap().parse().unwrap()
    };
    for line in lines.iter().filter(|line| !line.starts_with("means")) {
        assert!(line.contains(" events/s, "), "{line}");
        assert!(seconds(line, "workers") > 0.0, "the stages ran: {line}");
        assert!(seconds(line, "writer") > 0.0, "the writer ran: {line}");
        // Where the kernel keeps schedstat, the time each kind of thread waited for a CPU.
        if std::path::Path::new("/proc/self/schedstat").exists() {
            let queued = line
                .split("; runnable but waiting for a CPU: ")
                .nth(1)
                .unwrap_or_else(|| panic!("the waits for a CPU in {line}"));
            assert!(seconds(queued, "workers") >= 0.0, "{line}");
            assert!(seconds(queued, "writer") >= 0.0, "{line}");
        }
    }
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "the series removes its data directories when it ends"
    );

    // With the threads' states sampled, each line also says how often no stage worker ran,
    // and, where the kernel says where a sleeping thread sleeps, how often the writer waited
    // for a lock.
    let says_where_threads_sleep = kernel_says_where_threads_sleep();
    let stdout = demo_series(
        &["--rounds".as_ref(), "1".as_ref(), "--states".as_ref()],
        &["one"],
    );
    for line in stdout.lines().filter(|line| !line.starts_with("means")) {
        let share = line
            .split("; no stage worker running in ")
            .nth(1)
            .unwrap_or_else(|| panic!("the waits in {line}"));
        let percent: f64 = share.split(' ').next().unwrap().parse().unwrap();
        assert!((0.0..=100.0).contains(&percent), "{line}");
        assert!(share.contains(" samples (the writer alone "), "{line}");
        let locked = share.split("; the writer waiting for a lock in ").nth(1);
        assert_eq!(locked.is_some(), says_where_threads_sleep, "{line}");
        if let Some(locked) = locked {
            let percent: f64 = locked.trim_end_matches(" %").parse().unwrap();
            assert!((0.0..=100.0).contains(&percent), "{line}");
        }
    }
}

/// `scripts/demo-series --states` counts a sample with every thread asleep as one with
/// nothing running, whether or not the writer sleeps waiting for a lock: the lock wait is
/// counted beside the states, not as a thread running.
#[test]
fn the_demo_series_script_counts_nothing_running_while_the_writer_waits_for_a_lock() {
    let check = r#"
import importlib.machinery, importlib.util, sys
sys.dont_write_bytecode = True
loader = importlib.machinery.SourceFileLoader("demo_series", "scripts/demo-series")
spec = importlib.util.spec_from_loader("demo_series", loader)
series = importlib.util.module_from_spec(spec)
loader.exec_module(series)
asleep = dict.fromkeys(series.KINDS, 0)
waits = series.Waits()
for locked in (True, False, None):
    waits.add((dict(asleep), locked))
writer_running = dict(asleep, writer=1)
waits.add((writer_running, None))
print(waits.samples, waits.no_worker, waits.nothing, waits.writer_alone, waits.writer_locked)
"#;
    let output = Command::new("python3")
        .current_dir(repo_root())
        .args(["-c", check])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs the check");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "4 4 3 1 1");
}

/// Whether `/proc/PID/task/TID/wchan` names where a sleeping thread sleeps (some kernels
/// hide it), read from a child that sleeps.
#[cfg(target_os = "linux")]
fn kernel_says_where_threads_sleep() -> bool {
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut channel = String::new();
    for _ in 0..100 {
        channel =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/wchan")).unwrap_or_default();
        if !matches!(channel.trim(), "" | "0") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    !matches!(channel.trim(), "" | "0")
}
