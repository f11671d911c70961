//! The real `enrich` binary against a local stand-in for the Lambda Runtime API.

use std::path::Path;

use pipeline_tests::runtime_api::run_function;

#[test]
fn the_function_enriches_a_batch_and_names_bad_input() {
    let data_dir = tempfile::tempdir().unwrap();
    let run = run_function(
        Path::new(env!("CARGO_BIN_EXE_enrich")),
        "enrich",
        data_dir.path(),
        &[
            ("req-good", "events/pipeline/enrich-input.json"),
            ("req-bad", "events/pipeline/enrich-input-invalid.json"),
        ],
    );
    let [good, bad] = &run.posted[..] else {
        panic!("two answers: {:?}", run.posted);
    };
    assert!(good.is_response_to("req-good"), "{}", good.path);
    let events = good.body["events"].as_array().expect("events inline");
    assert_eq!(events.len(), 2);
    assert!(events[0]["partition"]["dt"].is_string(), "{}", good.body);
    assert!(bad.is_error_of("req-bad"), "{}", bad.path);
    assert_eq!(bad.body["errorType"], "InvalidStageInput");
}
