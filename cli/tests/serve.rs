//! `pipeline serve` answers as the deployed API does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// The server on a free port; stopped when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(data_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap())
            .env_remove("PIPELINE_BACKEND")
            .env_remove("PIPELINE_MODEL_PATH")
            .env("RUST_LOG", "off")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Listening on http://127.0.0.1:PORT: POST ..."
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split(": ").next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("the server prints its address: {line:?}"));
        Self { child, address }
    }

    /// Sends one request and returns the status code and the JSON body.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.address).expect("connects");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        // The server may answer (413) before reading a large body: a failed write is fine.
        let _ = stream.write_all(body);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(user: &str, timestamp: Value) -> Value {
    json!({ "userId": user, "eventType": "purchase", "timestamp": timestamp, "data": { "amount": 12.5 } })
}

#[test]
fn the_local_endpoint_answers_like_the_deployed_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());

    let body = json!([
        event("user-1", json!(1_700_000_000_000_u64)),
        event("user-2", json!(1_700_000_001_000_u64))
    ]);
    let (status, answer) = server.request("POST", "/events", body.to_string().as_bytes());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"], 0);
    assert!(answer["batchId"].as_str().unwrap().starts_with("bat_"));

    let body = json!([
        event("user-3", json!(1_700_000_002_000_u64)),
        event("", json!("yesterday"))
    ]);
    let (status, answer) = server.request("POST", "/events", body.to_string().as_bytes());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected"], 1);
    let record = &answer["rejectedRecords"][0];
    assert_eq!(record["index"], 1);
    let pointers: Vec<&str> = record["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.contains(&"/userId"), "{record}");
    assert!(pointers.contains(&"/timestamp"), "{record}");

    let (status, answer) = server.request(
        "POST",
        "/events",
        event("", json!(-1)).to_string().as_bytes(),
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["accepted"], 0);
    assert!(!answer["rejectedRecords"].as_array().unwrap().is_empty());

    let (status, answer) = server.request("POST", "/events", b"{\"userId\": ");
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["rejectedRecords"][0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    let (status, _) = server.request("GET", "/events", b"");
    assert_eq!(status, 405);
    let (status, _) = server.request("POST", "/elsewhere", b"[]");
    assert_eq!(status, 404);

    let big: Vec<Value> = (0..1_200)
        .map(|index| {
            let mut event = event(&format!("user-{index}"), json!(1_700_000_000_000_u64));
            event["data"]["note"] = json!("x".repeat(200));
            event
        })
        .collect();
    let (status, answer) =
        server.request("POST", "/events", Value::Array(big).to_string().as_bytes());
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("262144"),
        "{answer}"
    );
}
