//! Writes labelled feature rows for training the risk model, as CSV (features in
//! `FEATURE_NAMES` order, then `label`). Used by `python/train_risk_model.py`:
//!
//! ```sh
//! cargo run --release -p pipeline-domain --example training_data -- --sessions 20000 --seed 7 --out rows.csv
//! ```

use std::process::ExitCode;

use pipeline_domain::stages::enrich::FEATURE_NAMES;
use pipeline_domain::training::{TrainingConfig, training_rows};

fn main() -> ExitCode {
    let mut config = TrainingConfig::default();
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        let parsed = match (flag.as_str(), value) {
            ("--sessions", Some(value)) => value
                .parse()
                .map(|sessions| config.sessions = sessions)
                .is_ok(),
            ("--seed", Some(value)) => value.parse().map(|seed| config.seed = seed).is_ok(),
            ("--out", Some(value)) => {
                out = Some(value);
                true
            }
            _ => false,
        };
        if !parsed {
            eprintln!("usage: training_data [--sessions N] [--seed S] --out FILE.csv");
            return ExitCode::from(2);
        }
    }
    let Some(out) = out else {
        eprintln!("usage: training_data [--sessions N] [--seed S] --out FILE.csv");
        return ExitCode::from(2);
    };
    let rows = training_rows(&config);
    let mut text = FEATURE_NAMES.join(",");
    text.push_str(",label\n");
    for row in &rows {
        let values: Vec<String> = row.features.iter().map(f32::to_string).collect();
        text.push_str(&values.join(","));
        text.push_str(&format!(",{}\n", row.label));
    }
    if let Err(error) = std::fs::write(&out, text) {
        eprintln!("cannot write {out}: {error}");
        return ExitCode::FAILURE;
    }
    println!(
        "Wrote {} rows from {} sessions (seed {}) to {out}.",
        rows.len(),
        config.sessions,
        config.seed
    );
    ExitCode::SUCCESS
}
