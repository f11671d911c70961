//! The real `aggregate` binary against a local stand-in for the Lambda Runtime API.

use std::path::Path;

use pipeline_tests::runtime_api::run_function;

#[test]
fn the_function_answers_with_the_batchs_deltas() {
    let data_dir = tempfile::tempdir().unwrap();
    let run = run_function(
        Path::new(env!("CARGO_BIN_EXE_aggregate")),
        "aggregate",
        data_dir.path(),
        &[("req-1", "events/pipeline/enrich-output.json")],
    );
    let answer = &run.posted[0];
    assert!(answer.is_response_to("req-1"), "{}", answer.path);
    let counters = answer.body["aggregates"]["counters"]
        .as_array()
        .expect("counters inline");
    assert!(
        counters
            .iter()
            .any(|counter| counter["scope"] == "all" && counter["count"] == 2),
        "{}",
        answer.body
    );
}
