//! A local stand-in for the Lambda Runtime API, to run a function's real binary.
//!
//! It speaks the documented protocol on 127.0.0.1: it hands out invocations on
//! `GET /2018-06-01/runtime/invocation/next` and records what the function posts to
//! `.../response` or `.../error`. This checks the wiring a unit test cannot: the runtime
//! loop, the `errorType` of a failure, and the JSON logs carrying the request id.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use serde_json::Value;

/// What the function posted for one invocation.
#[derive(Debug)]
pub struct Posted {
    /// `/2018-06-01/runtime/invocation/<request id>/response` or `.../error`.
    pub path: String,
    pub body: Value,
}

impl Posted {
    /// Whether this is the successful response to `request_id`.
    pub fn is_response_to(&self, request_id: &str) -> bool {
        self.path
            .ends_with(&format!("/invocation/{request_id}/response"))
    }

    /// Whether this is the error reported for `request_id`.
    pub fn is_error_of(&self, request_id: &str) -> bool {
        self.path
            .ends_with(&format!("/invocation/{request_id}/error"))
    }
}

/// One run of a function binary over some invocations.
pub struct FunctionRun {
    /// One entry per invocation, in order.
    pub posted: Vec<Posted>,
    /// The JSON log lines the function wrote.
    pub logs: Vec<Value>,
    /// Everything it wrote to standard output, for messages.
    pub output: String,
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

/// Writes a response. The function may be gone (killed once the test has its answers), so
/// a failed write only ends the exchange.
fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut text = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/json\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let _ = stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush());
}

/// Serves `events` one by one, and sends every posted result back. Each connection has its
/// own thread: the runtime's HTTP client may open a second connection while the first is
/// idle, and a server reading only the first would wait for it forever.
fn serve(
    listener: TcpListener,
    function: String,
    events: Vec<(String, Vec<u8>)>,
    results: mpsc::Sender<Posted>,
) {
    let pending = Arc::new(Mutex::new(events.into_iter()));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let pending = pending.clone();
        let results = results.clone();
        let function = function.clone();
        thread::spawn(move || answer(stream, &function, &pending, &results));
    }
}

type Pending = Mutex<std::vec::IntoIter<(String, Vec<u8>)>>;

/// Answers the requests of one connection until it closes or the events run out.
fn answer(stream: TcpStream, function: &str, pending: &Pending, results: &mpsc::Sender<Posted>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut reader) {
        if method == "GET" && path.ends_with("/invocation/next") {
            let next = pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .next();
            let Some((request_id, event)) = next else {
                return;
            };
            let headers = [
                ("lambda-runtime-aws-request-id", request_id),
                ("lambda-runtime-deadline-ms", "4102444800000".to_owned()),
                (
                    "lambda-runtime-invoked-function-arn",
                    format!("arn:aws:lambda:eu-west-1:123456789012:function:{function}"),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".to_owned(),
                ),
            ];
            respond(&mut writer, "200 OK", &headers, &event);
        } else {
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if results.send(Posted { path, body }).is_err() {
                return;
            }
            respond(&mut writer, "202 Accepted", &[], b"{}");
        }
    }
}

/// Runs the function binary at `binary` on the embedded backend in `data_dir`, hands it
/// `events` as (request id, event file under the repository root), and stops it once every
/// invocation has been answered. A debug build loads the model and compiles the schema at
/// its cold start, which takes seconds on a busy machine, so each answer may take up to
/// two minutes before the run is called failed.
pub fn run_function(
    binary: &Path,
    function: &str,
    data_dir: &Path,
    events: &[(&str, &str)],
) -> FunctionRun {
    let root = crate::repo_root();
    let events: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|(request_id, file)| {
            let path = root.join(file);
            let bytes =
                std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            ((*request_id).to_owned(), bytes)
        })
        .collect();
    let count = events.len();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, results) = mpsc::channel();
    let name = function.to_owned();
    thread::spawn(move || serve(listener, name, events, sender));

    let mut child = Command::new(binary)
        .current_dir(&root)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("PIPELINE_BACKEND", "local")
        .env("PIPELINE_DATA_DIR", data_dir)
        .env("PIPELINE_OBJECTS_DIR", crate::objects_dir())
        .env_remove("PIPELINE_MODEL_PATH")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{}: {error}", binary.display()));

    let mut posted = Vec::with_capacity(count);
    for _ in 0..count {
        match results.recv_timeout(Duration::from_secs(120)) {
            Ok(result) => posted.push(result),
            Err(_) => break,
        }
    }
    // The function waits for its next invocation forever; it has answered all it will.
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        posted.len(),
        count,
        "{function} answered {} of {count} invocations\n{stdout}\n{}",
        posted.len(),
        String::from_utf8_lossy(&output.stderr)
    );
    FunctionRun {
        posted,
        logs: stdout
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect(),
        output: stdout,
    }
}
