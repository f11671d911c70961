//! The Rust scorer (tract) and Python's onnxruntime give the same scores for the same rows.
//!
//! The reference side runs `python/score_onnx.py` with the project's virtualenv, which the
//! test command (`scripts/test`) creates; `PIPELINE_PYTHON` may name another interpreter
//! that has onnxruntime and numpy.

use std::path::PathBuf;
use std::process::Command;

use pipeline_adapters::model::{OnnxRiskModel, hex_digest};
use pipeline_domain::ports::RiskModel;
use pipeline_domain::training::{TrainingConfig, training_rows};
use pipeline_tests::{events_dir, read_json, repo_root};

const TOLERANCE: f32 = 1e-5;

fn python() -> PathBuf {
    match std::env::var_os("PIPELINE_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => repo_root().join(".venv/bin/python"),
    }
}

fn parity_rows() -> Vec<Vec<f32>> {
    let config = TrainingConfig {
        sessions: 1_500,
        seed: 99,
        ..TrainingConfig::default()
    };
    let mut rows: Vec<Vec<f32>> = training_rows(&config)
        .into_iter()
        .map(|row| row.features.to_vec())
        .collect();
    let enriched = read_json(&events_dir().join("pipeline/enrich-output.json"));
    for event in enriched["events"].as_array().unwrap() {
        let features: pipeline_domain::stages::enrich::RiskFeatures =
            serde_json::from_value(event["features"].clone()).unwrap();
        rows.push(features.to_row().to_vec());
    }
    // Extremes: nothing at all, and values far outside the training range.
    rows.push(vec![0.0; 9]);
    rows.push(vec![
        1.0e6, 13.8, 500.0, -1.0, 0.0, 1.0, 50.0, 10_000.0, 1.0,
    ]);
    rows
}

#[test]
fn tract_and_onnxruntime_agree_within_tolerance() {
    let python = python();
    assert!(
        python.exists(),
        "{} does not exist: run ./scripts/test (it creates .venv with onnxruntime), or set PIPELINE_PYTHON",
        python.display()
    );
    let model = OnnxRiskModel::embedded().expect("the embedded model loads");
    let rows = parity_rows();
    let ours = model.score(&rows).expect("tract scores the rows");

    let dir = tempfile::tempdir().unwrap();
    let rows_path = dir.path().join("rows.json");
    std::fs::write(&rows_path, serde_json::to_vec(&rows).unwrap()).unwrap();
    let output = Command::new(&python)
        .arg(repo_root().join("python/score_onnx.py"))
        .arg(repo_root().join("models/risk.onnx"))
        .arg(&rows_path)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "score_onnx.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Vec<f32> = serde_json::from_slice(&output.stdout).expect("scores as JSON");

    assert_eq!(ours.len(), theirs.len());
    let worst = ours
        .iter()
        .zip(&theirs)
        .enumerate()
        .map(|(index, (a, b))| (index, (a - b).abs()))
        .fold(
            (0, 0.0_f32),
            |worst, item| if item.1 > worst.1 { item } else { worst },
        );
    eprintln!(
        "{} rows; largest difference {:e} at row {}",
        ours.len(),
        worst.1,
        worst.0
    );
    assert!(
        worst.1 <= TOLERANCE,
        "row {} differs by {}: tract {} vs onnxruntime {}",
        worst.0,
        worst.1,
        ours[worst.0],
        theirs[worst.0]
    );
    assert!(ours.iter().any(|score| *score > 0.5) && ours.iter().any(|score| *score < 0.5));
}

#[test]
fn bad_model_input_and_files_are_clear_errors() {
    let model = OnnxRiskModel::embedded().unwrap();
    let error = model.score(&[vec![1.0; 8]]).unwrap_err();
    assert!(
        error.to_string().contains("row 0 has 8 features"),
        "{error}"
    );

    let card = std::fs::read(repo_root().join("models/risk.card.json")).unwrap();
    let onnx = std::fs::read(repo_root().join("models/risk.onnx")).unwrap();
    let garbage = OnnxRiskModel::load(b"not a model", &card).err().unwrap();
    assert!(garbage.to_string().contains("SHA-256"), "{garbage}");

    let mut renamed: serde_json::Value = serde_json::from_slice(&card).unwrap();
    renamed["featureNames"][0] = "price".into();
    let mismatch = OnnxRiskModel::load(&onnx, &serde_json::to_vec(&renamed).unwrap())
        .err()
        .unwrap();
    assert!(mismatch.to_string().contains("price"), "{mismatch}");

    // A file that matches its card but is not ONNX.
    let fake = b"\x08\x07not really onnx".to_vec();
    let digest = hex_digest(&fake);
    let mut card_for_fake: serde_json::Value = serde_json::from_slice(&card).unwrap();
    card_for_fake["sha256"] = digest.into();
    let broken = OnnxRiskModel::load(&fake, &serde_json::to_vec(&card_for_fake).unwrap())
        .err()
        .unwrap();
    assert!(broken.to_string().contains("cannot be loaded"), "{broken}");
}
