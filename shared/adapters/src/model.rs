//! The risk model: an ONNX file scored in pure Rust with `tract`, checked against its card.
//!
//! The model is loaded once per cold start, from `PIPELINE_MODEL_PATH` or from the copy
//! embedded in the binary (`models/risk.onnx`). Loading checks the model card: the file's
//! SHA-256, the feature names and their order (they must be the enrich stage's
//! [`FEATURE_NAMES`]), and a probe run; any mismatch fails the start instead of producing
//! wrong scores later.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipeline_domain::ports::RiskModel;
use pipeline_domain::stages::enrich::FEATURE_NAMES;
use pipeline_domain::stages::inference::ModelError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::dims;

/// The model file compiled into every binary.
pub const EMBEDDED_MODEL: &[u8] = include_bytes!("../../../models/risk.onnx");
/// Its card.
pub const EMBEDDED_CARD: &[u8] = include_bytes!("../../../models/risk.card.json");

/// What the model card says about a model file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelCard {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub feature_names: Vec<String>,
    pub threshold: f32,
}

/// Why a model could not be loaded.
#[derive(Debug, Error)]
pub enum ModelLoadError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("the model card is not valid: {0}")]
    Card(String),
    #[error(
        "the model card is for a file with SHA-256 {expected}, but the model file's is {actual}"
    )]
    Digest { expected: String, actual: String },
    #[error("the model card lists features {card:?}, but the pipeline computes {pipeline:?}")]
    Features {
        card: Vec<String>,
        pipeline: Vec<String>,
    },
    #[error("the threshold {0} is not between 0 and 1")]
    Threshold(f32),
    #[error("the ONNX model cannot be loaded: {0}")]
    Onnx(String),
}

type Plan = Arc<TypedSimplePlan>;

/// A loaded, optimised model, ready to score batches.
pub struct OnnxRiskModel {
    plan: Plan,
    card: ModelCard,
}

impl OnnxRiskModel {
    /// The model embedded in the binary.
    pub fn embedded() -> Result<Self, ModelLoadError> {
        Self::load(EMBEDDED_MODEL, EMBEDDED_CARD)
    }

    /// A model file and its card beside it (`risk.onnx` and `risk.card.json`).
    pub fn from_path(path: &Path) -> Result<Self, ModelLoadError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|error| ModelLoadError::Read {
                path: path.to_path_buf(),
                message: error.to_string(),
            })
        };
        let card_path = path.with_extension("card.json");
        Self::load(&read(path)?, &read(&card_path)?)
    }

    /// Checks the card against the file and the pipeline, then loads and optimises the graph
    /// for any batch size.
    pub fn load(model: &[u8], card: &[u8]) -> Result<Self, ModelLoadError> {
        let card: ModelCard = serde_json::from_slice(card)
            .map_err(|error| ModelLoadError::Card(error.to_string()))?;
        let actual = hex_digest(model);
        if !card.sha256.eq_ignore_ascii_case(&actual) {
            return Err(ModelLoadError::Digest {
                expected: card.sha256,
                actual,
            });
        }
        if card
            .feature_names
            .iter()
            .map(String::as_str)
            .ne(FEATURE_NAMES)
        {
            return Err(ModelLoadError::Features {
                card: card.feature_names,
                pipeline: FEATURE_NAMES
                    .iter()
                    .map(|name| (*name).to_owned())
                    .collect(),
            });
        }
        if !(0.0..=1.0).contains(&card.threshold) {
            return Err(ModelLoadError::Threshold(card.threshold));
        }
        let plan = optimise(model, card.feature_names.len())
            .map_err(|error| ModelLoadError::Onnx(format!("{error:#}")))?;
        let loaded = Self { plan, card };
        // A probe row proves the graph runs and returns one probability pair per row.
        loaded
            .score(&[vec![0.0; FEATURE_NAMES.len()]])
            .map_err(|error| ModelLoadError::Onnx(format!("a probe run failed: {error}")))?;
        Ok(loaded)
    }

    pub fn card(&self) -> &ModelCard {
        &self.card
    }
}

fn optimise(model: &[u8], features: usize) -> TractResult<Plan> {
    let model = tract_onnx::onnx().model_for_read(&mut &model[..])?;
    let batch = model.sym("N");
    let typed = model
        .with_input_fact(0, f32::fact(dims!(batch, features)).into())?
        .into_optimized()?;
    typed.into_runnable()
}

/// The SHA-256 of `bytes` in lower-case hex, as model cards record it.
pub fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl RiskModel for OnnxRiskModel {
    fn version(&self) -> &str {
        &self.card.version
    }

    fn threshold(&self) -> f32 {
        self.card.threshold
    }

    fn feature_names(&self) -> &[String] {
        &self.card.feature_names
    }

    fn score(&self, rows: &[Vec<f32>]) -> Result<Vec<f32>, ModelError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let width = self.card.feature_names.len();
        let mut flat = Vec::with_capacity(rows.len() * width);
        for (position, row) in rows.iter().enumerate() {
            if row.len() != width {
                return Err(ModelError::Runtime(format!(
                    "row {position} has {} features; the model reads {width}",
                    row.len()
                )));
            }
            flat.extend_from_slice(row);
        }
        let input = tract_ndarray::Array2::from_shape_vec((rows.len(), width), flat)
            .map_err(|error| ModelError::Runtime(error.to_string()))?;
        let outputs = self
            .plan
            .run(tvec!(Tensor::from(input).into()))
            .map_err(|error| ModelError::Runtime(format!("{error:#}")))?;
        let probabilities = outputs
            .get(1)
            .ok_or_else(|| ModelError::Runtime("the model has no probabilities output".to_owned()))?
            .to_plain_array_view::<f32>()
            .map_err(|error| ModelError::Runtime(format!("{error:#}")))?;
        let shape = probabilities.shape().to_vec();
        if shape != [rows.len(), 2] {
            return Err(ModelError::Runtime(format!(
                "the probabilities output has shape {shape:?}, expected [{}, 2]",
                rows.len()
            )));
        }
        Ok(probabilities.iter().skip(1).step_by(2).copied().collect())
    }
}
