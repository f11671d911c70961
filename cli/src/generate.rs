//! Synthetic source events: `pipeline generate`, and the inputs of `pipeline demo`.

use std::io::Write;
use std::path::{Path, PathBuf};

use pipeline_domain::event::SourceKind;
use pipeline_domain::synth::wrap_as;
use serde_json::{Value, json};

/// The bucket synthetic S3 uploads go to.
pub const UPLOAD_BUCKET: &str = "pipeline-uploads";

/// Wraps `events` as one source event of `kind`. S3 uploads are written as a JSON Lines
/// object under `objects_dir/<bucket>/<key>` and the event is the notification naming it.
/// EventBridge delivers one event at a time: only the first event is wrapped.
pub fn source_event(
    kind: SourceKind,
    events: &[Value],
    number: usize,
    objects_dir: &Path,
) -> Result<Value, String> {
    if kind == SourceKind::S3 {
        let key = format!("uploads/synthetic/batch-{number:06}.jsonl");
        write_object(&objects_dir.join(UPLOAD_BUCKET).join(&key), events)?;
        return Ok(s3_notification(UPLOAD_BUCKET, &key, number));
    }
    wrap_as(kind, events, number).ok_or_else(|| format!("{kind} events cannot be generated"))
}

fn write_object(path: &Path, events: &[Value]) -> Result<(), String> {
    let failed = |error: std::io::Error| format!("cannot write {}: {error}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let file = std::fs::File::create(path).map_err(failed)?;
    let mut writer = std::io::BufWriter::new(file);
    for event in events {
        serde_json::to_writer(&mut writer, event).map_err(|error| failed(error.into()))?;
        writer.write_all(b"\n").map_err(failed)?;
    }
    writer.flush().map_err(failed)
}

/// An `ObjectCreated:Put` notification for `bucket/key`.
pub fn s3_notification(bucket: &str, key: &str, number: usize) -> Value {
    json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventTime": "2023-11-14T22:13:20.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": { "principalId": "EXAMPLE" },
        "requestParameters": { "sourceIPAddress": "192.0.2.1" },
        "responseElements": { "x-amz-request-id": format!("req-{number}"), "x-amz-id-2": "EXAMPLE" },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "pipeline-uploads",
            "bucket": { "name": bucket, "ownerIdentity": { "principalId": "EXAMPLE" }, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": { "key": key, "size": 0, "eTag": "0", "sequencer": "0" },
        },
    }] })
}

/// Writes `event` as `<out>/<kind>-<number>.json`.
pub fn write_event(
    out: &Path,
    kind: SourceKind,
    number: usize,
    event: &Value,
) -> Result<PathBuf, String> {
    let path = out.join(format!("{kind}-{number:06}.json"));
    let text = serde_json::to_string_pretty(event).map_err(|error| error.to_string())?;
    std::fs::write(&path, text)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    Ok(path)
}
