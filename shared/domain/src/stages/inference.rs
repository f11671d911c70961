//! `inference`: the risk model's contract. Features in, one score in [0, 1] and a label out.
//!
//! The model itself is behind the [`RiskModel`] port; this module builds its input, checks it,
//! and checks what comes back, so a broken model or a bad row is a clear error, never a
//! silent zero.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ports::RiskModel;
use crate::stages::enrich::{EnrichedEvent, FEATURE_NAMES};

/// Whether a score is at or over the model's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskLabel {
    Low,
    High,
}

/// One event's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskScore {
    pub event_id: String,
    pub score: f32,
    pub label: RiskLabel,
    pub model_version: String,
}

/// Why scoring failed.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum ModelError {
    #[error("no risk model is configured: set PIPELINE_MODEL_PATH to an ONNX model file")]
    NotConfigured,
    #[error("the model expects features {expected:?} but the pipeline provides {provided:?}")]
    FeatureMismatch {
        expected: Vec<String>,
        provided: Vec<String>,
    },
    #[error("event {event_id}: feature {feature} is {value}, not a finite number")]
    InvalidFeature {
        event_id: String,
        feature: String,
        value: f32,
    },
    #[error("the model returned {returned} scores for {expected} events")]
    WrongScoreCount { expected: usize, returned: usize },
    #[error("event {event_id}: the model returned {score}, outside [0, 1]")]
    ScoreOutOfRange { event_id: String, score: f32 },
    #[error("the model failed: {0}")]
    Runtime(String),
}

/// The model input: one row per event, features in [`FEATURE_NAMES`] order, all finite.
pub fn model_input(events: &[EnrichedEvent]) -> Result<Vec<Vec<f32>>, ModelError> {
    events
        .iter()
        .map(|enriched| {
            let row = enriched.features.to_row();
            if let Some((position, value)) =
                row.iter().enumerate().find(|(_, value)| !value.is_finite())
            {
                return Err(ModelError::InvalidFeature {
                    event_id: enriched.event.event_id.clone(),
                    feature: FEATURE_NAMES[position].to_owned(),
                    value: *value,
                });
            }
            Ok(row.to_vec())
        })
        .collect()
}

/// Checks that a model reads exactly the pipeline's features, in the same order.
pub fn check_model_features(model: &dyn RiskModel) -> Result<(), ModelError> {
    if model.feature_names() == FEATURE_NAMES.as_slice() {
        Ok(())
    } else {
        Err(ModelError::FeatureMismatch {
            expected: model
                .feature_names()
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            provided: FEATURE_NAMES
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
        })
    }
}

/// Scores a whole batch in one model call.
pub fn score_batch(
    events: &[EnrichedEvent],
    model: &dyn RiskModel,
) -> Result<Vec<RiskScore>, ModelError> {
    check_model_features(model)?;
    let rows = model_input(events)?;
    let scores = model.score(&rows)?;
    if scores.len() != events.len() {
        return Err(ModelError::WrongScoreCount {
            expected: events.len(),
            returned: scores.len(),
        });
    }
    let threshold = model.threshold();
    events
        .iter()
        .zip(scores)
        .map(|(enriched, score)| {
            if !(0.0..=1.0).contains(&score) {
                return Err(ModelError::ScoreOutOfRange {
                    event_id: enriched.event.event_id.clone(),
                    score,
                });
            }
            Ok(RiskScore {
                event_id: enriched.event.event_id.clone(),
                score,
                label: if score >= threshold {
                    RiskLabel::High
                } else {
                    RiskLabel::Low
                },
                model_version: model.version().to_owned(),
            })
        })
        .collect()
}
