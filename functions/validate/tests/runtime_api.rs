//! The real `validate` binary against a local stand-in for the Lambda Runtime API.

use std::path::Path;

use pipeline_tests::runtime_api::run_function;

#[test]
fn the_function_answers_invocations_and_reports_named_errors() {
    let data_dir = tempfile::tempdir().unwrap();
    let run = run_function(
        Path::new(env!("CARGO_BIN_EXE_validate")),
        "validate",
        data_dir.path(),
        &[
            ("req-valid", "events/sqs/valid.json"),
            ("req-invalid", "events/sns/invalid.json"),
        ],
    );
    let [first, second] = &run.posted[..] else {
        panic!("two answers: {:?}", run.posted);
    };
    assert!(first.is_response_to("req-valid"), "{}", first.path);
    assert_eq!(first.body["counts"]["accepted"], 2);
    assert!(second.is_error_of("req-invalid"), "{}", second.path);
    assert_eq!(second.body["errorType"], "ValidationError");
    assert!(
        second.body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("/timestamp")
    );

    // Every log line of an invocation carries its request id, and the batch id once known.
    let validated: Vec<&serde_json::Value> = run
        .logs
        .iter()
        .filter(|line| line["message"] == "Validated the batch.")
        .collect();
    assert_eq!(validated.len(), 2, "{}", run.output);
    assert_eq!(validated[0]["span"]["requestId"], "req-valid");
    assert!(
        validated[0]["span"]["batchId"]
            .as_str()
            .unwrap()
            .starts_with("bat_")
    );
    assert_eq!(validated[1]["span"]["requestId"], "req-invalid");
}
