//! Labelled training data for the risk model, made by the same code that runs in production.
//!
//! Sessions of purchases are generated for synthetic users with profiles; a share of them
//! is risky, showing the patterns the model should learn (an amount far above the user's
//! usual one, an odd hour, a device never seen before, a burst of events, an account without
//! a profile). Each session is enriched exactly as the `enrich` stage does, so the features
//! the model is trained on are the features it will score. Labels carry a little noise, as
//! real fraud labels do.

use std::collections::HashMap;

use serde_json::{Map, Number, Value, json};

use crate::event::{EventData, SourceKind, SourceRef, UserEvent, derive_event_id};
use crate::stages::enrich::{FEATURE_NAMES, UserProfile, enrich, parse_user_agent};
use crate::stages::validate::ValidEvent;
use crate::synth::{SplitMix64, USER_AGENTS};

/// Settings for [`training_rows`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingConfig {
    pub seed: u64,
    pub sessions: usize,
    pub users: u64,
    /// Share of sessions that are risky.
    pub risky_ratio: f64,
    /// Share of labels flipped.
    pub label_noise: f64,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            sessions: 20_000,
            users: 2_000,
            risky_ratio: 0.12,
            label_noise: 0.02,
        }
    }
}

/// One event's features, in [`FEATURE_NAMES`] order, and whether it is risky.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRow {
    pub features: [f32; FEATURE_NAMES.len()],
    pub label: u8,
}

/// Day the sessions happen on: 2023-11-14T00:00:00Z.
const DAY_START_MILLIS: u64 = 1_699_920_000_000;
const HOUR_MILLIS: u64 = 3_600_000;
const DAY_MILLIS: i64 = 86_400_000;

/// Generates labelled rows, deterministic for the configuration.
pub fn training_rows(config: &TrainingConfig) -> Vec<TrainingRow> {
    let mut random = SplitMix64::new(config.seed);
    let device_keys: Vec<String> = USER_AGENTS
        .iter()
        .map(|agent| parse_user_agent(agent).key())
        .collect();
    let profiles = training_profiles(config, &mut random, &device_keys);
    let mut rows = Vec::with_capacity(config.sessions * 2);
    for session in 0..config.sessions {
        let risky = random.unit() < config.risky_ratio;
        let user = random.below(config.users);
        // Most new accounts are legitimate customers; risky sessions use them more often.
        let unknown_account = random.unit() < if risky { 0.3 } else { 0.08 };
        let user_id = if unknown_account {
            format!("new-{session:07}")
        } else {
            format!("user-{user:05}")
        };
        let profile = profiles.get(&user_id);
        let usual_amount = profile.map_or(60.0, |found| found.average_amount);
        let count = if risky && random.unit() < 0.5 {
            3 + random.below(6)
        } else {
            1 + random.below(2)
        };
        let hour = if risky && random.unit() < 0.6 {
            random.below(5)
        } else {
            8 + random.below(14)
        };
        let agent = pick_agent(&mut random, risky, profile, &device_keys);
        let events: Vec<ValidEvent> = (0..count)
            .map(|position| {
                let amount = if risky && random.unit() < 0.75 {
                    usual_amount * (3.0 + 12.0 * random.unit())
                } else {
                    usual_amount * (0.3 + 1.4 * random.unit())
                };
                let timestamp = DAY_START_MILLIS + hour * HOUR_MILLIS + random.below(HOUR_MILLIS);
                purchase(
                    &user_id,
                    timestamp,
                    amount,
                    agent,
                    session,
                    position as usize,
                )
            })
            .collect();
        for enriched in enrich(events, &profiles, DAY_START_MILLIS as i64 + DAY_MILLIS) {
            let flipped = random.unit() < config.label_noise;
            rows.push(TrainingRow {
                features: enriched.features.to_row(),
                label: u8::from(risky != flipped),
            });
        }
    }
    rows
}

fn training_profiles(
    config: &TrainingConfig,
    random: &mut SplitMix64,
    device_keys: &[String],
) -> HashMap<String, UserProfile> {
    (0..config.users)
        .map(|user| {
            let user_id = format!("user-{user:05}");
            let first = random.below(device_keys.len() as u64) as usize;
            let mut known_devices = vec![device_keys[first].clone()];
            if random.unit() < 0.4 {
                known_devices.push(device_keys[(first + 1) % device_keys.len()].clone());
            }
            let profile = UserProfile {
                user_id: user_id.clone(),
                segment: ["new", "regular", "vip"][random.below(3) as usize].to_owned(),
                country: "DE".to_owned(),
                signup_timestamp: DAY_START_MILLIS as i64
                    - (30 + random.below(2_000) as i64) * DAY_MILLIS,
                average_amount: 15.0 + 185.0 * random.unit() * random.unit(),
                known_devices,
            };
            (user_id, profile)
        })
        .collect()
}

/// A known device for normal sessions (mostly), a new one for risky sessions (mostly).
fn pick_agent(
    random: &mut SplitMix64,
    risky: bool,
    profile: Option<&UserProfile>,
    device_keys: &[String],
) -> &'static str {
    let want_new = if risky {
        random.unit() < 0.7
    } else {
        random.unit() < 0.08
    };
    let known = |index: &usize| {
        profile.is_some_and(|found| found.known_devices.contains(&device_keys[*index]))
    };
    let candidates: Vec<usize> = (0..USER_AGENTS.len())
        .filter(|index| known(index) != want_new)
        .collect();
    let pool = if candidates.is_empty() {
        (0..USER_AGENTS.len()).collect()
    } else {
        candidates
    };
    USER_AGENTS[pool[random.below(pool.len() as u64) as usize]]
}

fn purchase(
    user_id: &str,
    timestamp: u64,
    amount: f64,
    agent: &str,
    session: usize,
    position: usize,
) -> ValidEvent {
    let mut data = Map::new();
    data.insert("amount".to_owned(), json!((amount * 100.0).round() / 100.0));
    data.insert("currency".to_owned(), Value::String("EUR".to_owned()));
    data.insert("userAgent".to_owned(), Value::String(agent.to_owned()));
    let timestamp = Number::from(timestamp);
    let data = EventData::from(data);
    let event_id = derive_event_id(user_id, "purchase", &timestamp, &data);
    ValidEvent {
        source: SourceRef {
            kind: SourceKind::Direct,
            id: format!("session-{session}#{position}"),
            index: position,
        },
        event: UserEvent {
            event_id,
            user_id: user_id.to_owned(),
            event_type: "purchase".to_owned(),
            timestamp,
            data,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_deterministic_and_risky_rows_look_risky() {
        let config = TrainingConfig {
            sessions: 3_000,
            ..TrainingConfig::default()
        };
        let rows = training_rows(&config);
        assert_eq!(rows, training_rows(&config));
        let mean = |label: u8, feature: usize| {
            let selected: Vec<f32> = rows
                .iter()
                .filter(|row| row.label == label)
                .map(|row| row.features[feature])
                .collect();
            selected.iter().sum::<f32>() / selected.len() as f32
        };
        // amount_to_user_average, is_new_device and user_events_in_batch separate the classes.
        for feature in [2, 5, 6] {
            assert!(
                mean(1, feature) > mean(0, feature) * 1.5,
                "feature {} does not separate",
                FEATURE_NAMES[feature]
            );
        }
        let risky = rows.iter().filter(|row| row.label == 1).count() as f64 / rows.len() as f64;
        assert!((0.1..0.4).contains(&risky), "{risky}");
    }
}
