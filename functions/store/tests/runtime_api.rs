//! The real `store` binary against a local stand-in for the Lambda Runtime API.

use std::path::Path;

use pipeline_tests::runtime_api::run_function;

#[test]
fn the_function_stores_a_batch_once() {
    let data_dir = tempfile::tempdir().unwrap();
    let run = run_function(
        Path::new(env!("CARGO_BIN_EXE_store")),
        "store",
        data_dir.path(),
        &[
            ("req-first", "events/pipeline/store-input-scored.json"),
            ("req-replay", "events/pipeline/store-input-scored.json"),
        ],
    );
    let [first, replay] = &run.posted[..] else {
        panic!("two answers: {:?}", run.posted);
    };
    assert!(first.is_response_to("req-first"), "{}", first.path);
    assert_eq!(first.body["eventsWritten"], 2);
    assert_eq!(first.body["aggregates"], "applied");
    assert!(replay.is_response_to("req-replay"), "{}", replay.path);
    assert_eq!(replay.body["aggregates"], "already-applied");
    assert_eq!(replay.body["notificationsSent"], 0);
    assert!(data_dir.path().join("pipeline.db").is_file());
}
