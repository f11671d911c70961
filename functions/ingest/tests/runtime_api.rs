//! The real `ingest` binary against a local stand-in for the Lambda Runtime API: a direct
//! trigger's partial batch response.

use std::path::Path;

use pipeline_tests::runtime_api::run_function;

#[test]
fn the_function_answers_with_a_partial_batch_response() {
    let data_dir = tempfile::tempdir().unwrap();
    let run = run_function(
        Path::new(env!("CARGO_BIN_EXE_ingest")),
        "ingest",
        data_dir.path(),
        &[
            ("req-kinesis", "events/kinesis/poisoned.json"),
            ("req-sns", "events/sns/valid.json"),
        ],
    );
    let [kinesis, sns] = &run.posted[..] else {
        panic!("two answers: {:?}", run.posted);
    };
    assert!(kinesis.is_response_to("req-kinesis"), "{}", kinesis.path);
    assert_eq!(kinesis.body, serde_json::json!({"batchItemFailures": []}));
    // The poisoned record went to quarantine, not back to Lambda.
    assert!(data_dir.path().join("lake").join("rejected").is_dir());
    // SNS cannot take a partial batch response: the function says so.
    assert!(sns.is_error_of("req-sns"), "{}", sns.path);
    assert_eq!(sns.body["errorType"], "InvalidStageInput");
}
