//! The real `inference` binary (with the embedded model) against a local stand-in for the
//! Lambda Runtime API.

use std::path::Path;

use pipeline_tests::runtime_api::run_function;

#[test]
fn the_function_scores_every_event_with_the_embedded_model() {
    let data_dir = tempfile::tempdir().unwrap();
    let run = run_function(
        Path::new(env!("CARGO_BIN_EXE_inference")),
        "inference",
        data_dir.path(),
        &[("req-1", "events/pipeline/enrich-output.json")],
    );
    let answer = &run.posted[0];
    assert!(answer.is_response_to("req-1"), "{}", answer.path);
    let scores = answer.body["scores"].as_array().expect("scores inline");
    assert_eq!(scores.len(), 2);
    assert!(
        scores
            .iter()
            .all(|score| (0.0..=1.0).contains(&score["score"].as_f64().unwrap()))
    );
    assert!(
        answer.body["modelVersion"]
            .as_str()
            .unwrap()
            .starts_with("risk-")
    );
}
