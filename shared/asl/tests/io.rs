//! Input and output processing, data-driven from `definitions/io_cases.json`: each case runs
//! its definition (tasks echo their input) and compares the output.

mod common;

use serde_json::Value;

#[tokio::test]
async fn input_and_output_processing_cases() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("definitions/io_cases.json"))
        .expect("io_cases.json parses");
    assert!(cases.len() >= 20);
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let execution = common::run(&case["definition"], case["input"].clone()).await;
        match execution.result {
            Ok(output) => assert_eq!(output, case["expected"], "{name}"),
            Err(failure) => panic!("{name}: the execution failed: {failure}"),
        }
    }
}
