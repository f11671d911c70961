//! Every fixture in `events/` decodes and runs through the stages to its golden output.

use pipeline_adapters::local::FolderObjects;
use pipeline_domain::sources::{Payload, decode};
use pipeline_tests::{
    SOURCE_FOLDERS, Sandbox, assert_no_mismatch, compare_golden, objects_dir, read_json,
    source_fixtures,
};
use serde_json::{Value, json};

#[test]
fn every_source_has_a_valid_and_an_invalid_fixture() {
    let fixtures = source_fixtures();
    for folder in SOURCE_FOLDERS {
        let names: Vec<&str> = fixtures
            .iter()
            .filter(|(source, _, _)| source == folder)
            .map(|(_, name, _)| name.as_str())
            .collect();
        assert!(
            names.iter().any(|name| name.starts_with("valid")),
            "{folder} has no valid fixture"
        );
        assert!(
            names.contains(&"invalid"),
            "{folder} has no invalid fixture"
        );
    }
}

fn describe_payload(payload: &Payload) -> Value {
    match payload {
        Payload::Bytes(bytes) => json!({ "bytes": String::from_utf8_lossy(bytes) }),
        Payload::Json(value) => json!({ "json": value }),
        Payload::Oversized { bytes } => json!({ "oversized": bytes }),
        Payload::Undecodable { pointer, reason } => {
            json!({ "undecodable": { "pointer": pointer, "reason": reason } })
        }
    }
}

#[test]
fn fixtures_decode_to_the_expected_records() {
    let objects = FolderObjects::new(objects_dir());
    let mut mismatches = Vec::new();
    for (source, name, path) in source_fixtures() {
        let decoded = decode(&read_json(&path), &objects)
            .unwrap_or_else(|error| panic!("{source}/{name}: {error}"));
        assert_eq!(
            decoded.kind.as_str(),
            source,
            "{source}/{name} is detected as its folder's kind"
        );
        let actual = json!({
            "kind": decoded.kind,
            "batchId": decoded.batch_id,
            "records": decoded.records.iter().map(|record| json!({
                "source": record.source,
                "payload": describe_payload(&record.payload),
            })).collect::<Vec<_>>(),
            "skipped": decoded.skipped,
        });
        mismatches.extend(compare_golden(
            &format!("decode/{source}/{name}.json"),
            &actual,
        ));
    }
    assert_no_mismatch(mismatches);
}

/// Every fixture runs through the deployed state machine definition: the final output (or
/// error), the tables, the data lake and the outbox match the golden file.
#[tokio::test]
async fn fixtures_run_through_the_state_machine_to_the_golden_outputs() {
    let mut mismatches = Vec::new();
    for (source, name, path) in source_fixtures() {
        let sandbox = Sandbox::new();
        let execution = sandbox
            .execute(read_json(&path), &format!("test-{source}-{name}"))
            .await;
        let result = match &execution.result {
            Ok(output) => {
                if name == "invalid" {
                    let rejected = output["counts"]["rejected"]
                        .as_u64()
                        .or_else(|| output["rejected"].as_u64())
                        .unwrap_or(0);
                    assert!(
                        rejected > 0,
                        "{source}/invalid should reject at least one record: {output}"
                    );
                } else {
                    assert_eq!(output["status"], "processed", "{source}/{name}");
                }
                json!({ "output": output })
            }
            Err(failure) => panic!("{source}/{name} failed: {failure:?}"),
        };
        assert!(
            execution.largest_payload_bytes <= 262_144,
            "{source}/{name} carried {} bytes in one state",
            execution.largest_payload_bytes
        );
        let actual = json!({
            "result": result,
            "largestPayloadBytes": execution.largest_payload_bytes,
            "state": sandbox.state(),
        });
        mismatches.extend(compare_golden(
            &format!("stages/{source}/{name}.json"),
            &actual,
        ));
    }
    assert_no_mismatch(mismatches);
}
