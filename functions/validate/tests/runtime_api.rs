//! The real `validate` binary against a local stand-in for the Lambda Runtime API.
//!
//! The stand-in speaks the documented protocol on 127.0.0.1: it hands out invocations on
//! `GET /2018-06-01/runtime/invocation/next` and records what the function posts to
//! `.../response` or `.../error`. This checks the wiring a unit test cannot: the runtime
//! loop, the `errorType` of a failure, and the JSON logs carrying the request id.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

struct Posted {
    path: String,
    body: serde_json::Value,
}

/// Reads one HTTP/1.1 request: (method, path, body).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut text = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/json\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
}

/// Serves `events` one by one, then sends every posted result back and stops answering.
fn serve(listener: TcpListener, events: Vec<(String, Vec<u8>)>, results: mpsc::Sender<Posted>) {
    let mut pending = events.into_iter();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        while let Some((method, path, body)) = read_request(&mut reader) {
            if method == "GET" && path.ends_with("/invocation/next") {
                let Some((request_id, event)) = pending.next() else {
                    return;
                };
                let headers = [
                    ("lambda-runtime-aws-request-id", request_id),
                    ("lambda-runtime-deadline-ms", "4102444800000".to_owned()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:eu-west-1:123456789012:function:validate".to_owned(),
                    ),
                    (
                        "lambda-runtime-trace-id",
                        "Root=1-00000000-000000000000000000000000".to_owned(),
                    ),
                ];
                respond(&mut writer, "200 OK", &headers, &event);
            } else {
                let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                results.send(Posted { path, body }).unwrap();
                respond(&mut writer, "202 Accepted", &[], b"{}");
            }
        }
    }
}

#[test]
fn the_function_answers_invocations_and_reports_named_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let valid = std::fs::read(root.join("events/sqs/valid.json")).unwrap();
    let invalid = std::fs::read(root.join("events/sns/invalid.json")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, results) = mpsc::channel();
    let events = vec![
        ("req-valid".to_owned(), valid),
        ("req-invalid".to_owned(), invalid),
    ];
    thread::spawn(move || serve(listener, events, sender));

    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_validate"))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "validate")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/validate")
        .env("PIPELINE_BACKEND", "local")
        .env("PIPELINE_DATA_DIR", data_dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let first = results
        .recv_timeout(Duration::from_secs(30))
        .expect("a response to the first invocation");
    let second = results
        .recv_timeout(Duration::from_secs(30))
        .expect("a response to the second invocation");
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stdout);

    assert!(
        first.path.ends_with("/invocation/req-valid/response"),
        "{}",
        first.path
    );
    assert_eq!(first.body["counts"]["accepted"], 2);
    assert!(
        second.path.ends_with("/invocation/req-invalid/error"),
        "{}",
        second.path
    );
    assert_eq!(second.body["errorType"], "ValidationError");
    assert!(
        second.body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("/timestamp")
    );

    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let validated: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["message"] == "Validated the batch.")
        .collect();
    assert_eq!(validated.len(), 2, "{logs}");
    assert_eq!(validated[0]["span"]["requestId"], "req-valid", "{logs}");
    assert!(
        validated[0]["span"]["batchId"]
            .as_str()
            .unwrap()
            .starts_with("bat_"),
        "{logs}"
    );
    assert_eq!(validated[1]["span"]["requestId"], "req-invalid", "{logs}");
}
