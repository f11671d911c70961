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
    if model
        .feature_names()
        .iter()
        .map(String::as_str)
        .eq(FEATURE_NAMES)
    {
        Ok(())
    } else {
        Err(ModelError::FeatureMismatch {
            expected: model.feature_names().to_vec(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{SourceKind, SourceRef, UserEvent};
    use crate::stages::enrich::{FEATURE_NAMES, UserProfile, enrich};
    use crate::stages::validate::ValidEvent;
    use serde_json::{Map, Number, json};
    use std::collections::HashMap;

    /// A model for the contract's tests: a logistic function of the log amount.
    struct RatioModel {
        names: Vec<String>,
        shift: f32,
    }

    impl RiskModel for RatioModel {
        fn version(&self) -> &str {
            "ratio-test"
        }
        fn threshold(&self) -> f32 {
            0.5
        }
        fn feature_names(&self) -> &[String] {
            &self.names
        }
        fn score(&self, rows: &[Vec<f32>]) -> Result<Vec<f32>, ModelError> {
            Ok(rows
                .iter()
                .map(|row| 1.0 / (1.0 + (-(row[1] - 4.0) * 4.0).exp()) + self.shift)
                .collect())
        }
    }

    fn batch(amounts: &[f64]) -> Vec<EnrichedEvent> {
        let events = amounts
            .iter()
            .enumerate()
            .map(|(index, amount)| {
                let mut data = Map::new();
                data.insert("amount".into(), json!(amount));
                ValidEvent {
                    source: SourceRef {
                        kind: SourceKind::Direct,
                        id: format!("item-{index}"),
                        index,
                    },
                    event: UserEvent {
                        event_id: format!("e{index}"),
                        user_id: "u".into(),
                        event_type: "purchase".into(),
                        timestamp: Number::from(1_700_000_000_000_u64),
                        data: data.into(),
                    },
                }
            })
            .collect();
        enrich(events, &HashMap::<String, UserProfile>::new(), 0)
    }

    fn model(shift: f32) -> RatioModel {
        RatioModel {
            names: FEATURE_NAMES
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            shift,
        }
    }

    #[test]
    fn scores_are_labelled_by_the_threshold() {
        let scores = score_batch(&batch(&[0.5, 900.0]), &model(0.0)).unwrap();
        assert_eq!(scores.len(), 2);
        assert_eq!(scores[0].label, RiskLabel::Low);
        assert_eq!(scores[1].label, RiskLabel::High);
        assert_eq!(scores[1].model_version, "ratio-test");
    }

    #[test]
    fn a_model_trained_on_other_features_is_refused() {
        let mut wrong = model(0.0);
        wrong.names.swap(0, 1);
        assert!(matches!(
            score_batch(&batch(&[1.0]), &wrong),
            Err(ModelError::FeatureMismatch { .. })
        ));
    }

    #[test]
    fn non_finite_features_and_impossible_scores_are_errors() {
        let mut events = batch(&[1.0]);
        events[0].features.amount = f32::NAN;
        let error = score_batch(&events, &model(0.0)).unwrap_err();
        assert!(
            matches!(&error, ModelError::InvalidFeature { event_id, feature, .. } if event_id == "e0" && feature == "amount"),
            "{error}"
        );
        let error = score_batch(&batch(&[900.0]), &model(0.5)).unwrap_err();
        assert!(
            matches!(error, ModelError::ScoreOutOfRange { .. }),
            "{error}"
        );
    }
}
