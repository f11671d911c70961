//! The JSON of enriched and stored events, written by hand.
//!
//! Every event row holds a stored event's JSON, and every staged batch of enriched events
//! has its JSON size counted (now from its text, written once: [`crate::stages::enriched_batch`]):
//! together about a fifth of the stage workers' time in the demo with the derived
//! `Serialize`, which goes through serde's map machinery and escapes each of an event's 40
//! keys byte by byte. Here the keys are literals, strings are copied as they
//! are when they need no escape, and the data object is already JSON text.
//!
//! The bytes are exactly those `serde_json` writes for the derived `Serialize` of
//! [`EnrichedEvent`] and [`StoredEvent`], which stay the definition of the format (and what
//! reads it back): the tests compare the two over events of every shape.

use std::io::{self, Write};

use serde_json::ser::{CompactFormatter, Formatter};

use crate::canonical::write_string_to as string;
use crate::stages::enrich::EnrichedEvent;
use crate::stages::inference::{RiskLabel, RiskScore};
use crate::stages::store::StoredEvent;

impl EnrichedEvent {
    /// Writes the event's compact JSON, the same bytes as `serde_json::to_writer(out, self)`.
    pub fn write_json<W: Write>(&self, out: &mut W) -> io::Result<()> {
        write_members(self, out)?;
        out.write_all(b"}")
    }
}

impl StoredEvent<'_> {
    /// Writes the event's compact JSON, the same bytes as `serde_json::to_writer(out, self)`.
    pub fn write_json<W: Write>(&self, out: &mut W) -> io::Result<()> {
        // The enriched event's JSON without its closing brace is the stored event's opening
        // brace and members.
        match self.enriched_json.and_then(|json| json.strip_suffix('}')) {
            Some(members) => out.write_all(members.as_bytes())?,
            None => write_members(self.enriched, out)?,
        }
        if let Some(risk) = self.risk {
            out.write_all(b",\"risk\":")?;
            write_risk(risk, out)?;
        }
        out.write_all(b"}")
    }
}

/// An enriched event's opening brace and members, without the closing brace (a stored
/// event adds its score after them).
fn write_members<W: Write>(enriched: &EnrichedEvent, out: &mut W) -> io::Result<()> {
    let event = &enriched.event;
    out.write_all(b"{\"event\":{\"eventId\":")?;
    string(out, &event.event_id)?;
    out.write_all(b",\"userId\":")?;
    string(out, &event.user_id)?;
    out.write_all(b",\"eventType\":")?;
    string(out, &event.event_type)?;
    out.write_all(b",\"timestamp\":")?;
    serde_json::to_writer(&mut *out, &event.timestamp).map_err(io::Error::other)?;
    out.write_all(b",\"data\":")?;
    out.write_all(event.data.json().as_bytes())?;

    let source = &enriched.source;
    out.write_all(b"},\"source\":{\"kind\":")?;
    string(out, source.kind.as_str())?;
    out.write_all(b",\"id\":")?;
    string(out, &source.id)?;
    out.write_all(b",\"index\":")?;
    CompactFormatter.write_u64(out, source.index as u64)?;

    out.write_all(b"},\"partition\":{\"dt\":")?;
    string(out, &enriched.partition.dt)?;
    out.write_all(b",\"hour\":")?;
    string(out, &enriched.partition.hour)?;
    out.write_all(b"},\"processedAt\":")?;
    string(out, &enriched.processed_at)?;

    if let Some(device) = &enriched.device {
        out.write_all(b",\"device\":{\"category\":")?;
        string(out, &device.category)?;
        out.write_all(b",\"os\":")?;
        string(out, &device.os)?;
        out.write_all(b",\"osVersion\":")?;
        string(out, &device.os_version)?;
        out.write_all(b",\"browser\":")?;
        string(out, &device.browser)?;
        out.write_all(b",\"browserVersion\":")?;
        string(out, &device.browser_version)?;
        out.write_all(b"}")?;
    }
    if let Some(profile) = &enriched.profile {
        out.write_all(b",\"profile\":{\"segment\":")?;
        string(out, &profile.segment)?;
        out.write_all(b",\"country\":")?;
        string(out, &profile.country)?;
        out.write_all(b"}")?;
    }

    let features = &enriched.features;
    let named = [
        (&b",\"features\":{\"amount\":"[..], features.amount),
        (b",\"log_amount\":", features.log_amount),
        (
            b",\"amount_to_user_average\":",
            features.amount_to_user_average,
        ),
        (b",\"hour_sin\":", features.hour_sin),
        (b",\"hour_cos\":", features.hour_cos),
        (b",\"is_new_device\":", features.is_new_device),
        (b",\"user_events_in_batch\":", features.user_events_in_batch),
        (b",\"account_age_days\":", features.account_age_days),
        (b",\"is_mobile\":", features.is_mobile),
    ];
    for (key, value) in named {
        out.write_all(key)?;
        float(out, value)?;
    }
    out.write_all(b"}")
}

fn write_risk<W: Write>(risk: &RiskScore, out: &mut W) -> io::Result<()> {
    out.write_all(b"{\"eventId\":")?;
    string(out, &risk.event_id)?;
    out.write_all(b",\"score\":")?;
    float(out, risk.score)?;
    out.write_all(match risk.label {
        RiskLabel::Low => b",\"label\":\"low\",\"modelVersion\":",
        RiskLabel::High => b",\"label\":\"high\",\"modelVersion\":",
    })?;
    string(out, &risk.model_version)?;
    out.write_all(b"}")
}

/// A float as `serde_json` writes an `f32`: `null` when it is not finite.
fn float<W: Write>(out: &mut W, value: f32) -> io::Result<()> {
    if value.is_finite() {
        CompactFormatter.write_f32(out, value)
    } else {
        CompactFormatter.write_null(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::event::{SourceKind, SourceRef, UserEvent};
    use crate::stages::enrich::{UserProfile, enrich};
    use crate::stages::enriched_batch::EnrichedBatch;
    use crate::stages::validate::ValidEvent;
    use crate::synth::{SynthConfig, generate};

    /// Asserts that the hand-written JSON of `events`, alone, stored with each score (written
    /// whole, and from the batch's text), and as a batch, is the derived `Serialize`'s.
    fn assert_same_json(events: &[EnrichedEvent]) {
        let batch = EnrichedBatch::new(events.to_vec());
        for (index, event) in events.iter().enumerate() {
            let mut ours = Vec::new();
            event.write_json(&mut ours).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(event).unwrap()
            );
            let label = if index % 2 == 0 {
                RiskLabel::Low
            } else {
                RiskLabel::High
            };
            let risk = RiskScore {
                event_id: event.event.event_id.clone(),
                score: index as f32 / 7.0,
                label,
                model_version: "risk-\"lr\"".to_owned(),
            };
            let written = batch.written_event_json(index);
            assert_eq!(
                written,
                Some(serde_json::to_string(event).unwrap().as_str())
            );
            for risk in [None, Some(&risk)] {
                for enriched_json in [None, written] {
                    let stored = StoredEvent {
                        enriched: event,
                        risk,
                        enriched_json,
                    };
                    let mut ours = Vec::new();
                    stored.write_json(&mut ours).unwrap();
                    assert_eq!(
                        String::from_utf8(ours).unwrap(),
                        serde_json::to_string(&stored).unwrap()
                    );
                }
            }
        }
        assert_eq!(batch.written_event_json(events.len()), None);
        let derived = serde_json::to_string(events).unwrap();
        assert_eq!(batch.json(), derived);
        assert_eq!(serde_json::to_string(&batch).unwrap(), derived);
    }

    /// Asserts that a batch read back from its JSON has the same events, and writes the same
    /// text once asked for it.
    fn assert_read_back(events: &[EnrichedEvent]) {
        let batch = EnrichedBatch::new(events.to_vec());
        let read: EnrichedBatch = serde_json::from_str(batch.json()).unwrap();
        assert_eq!(read, batch);
        assert_eq!(read.written_event_json(0), None);
        assert_eq!(read.json(), batch.json());
        assert_eq!(read.written_event_json(0), batch.written_event_json(0));
    }

    fn valid(event: Value, kind: SourceKind, index: usize) -> ValidEvent {
        ValidEvent {
            event: serde_json::from_value(event).unwrap(),
            source: SourceRef {
                kind,
                id: format!("source-{index}"),
                index,
            },
        }
    }

    #[test]
    fn synthetic_events_of_every_source_are_written_as_serde_writes_them() {
        let config = SynthConfig {
            invalid_ratio: 0.0,
            ..SynthConfig::default()
        };
        let events: Vec<ValidEvent> = generate(&config, 300)
            .into_iter()
            .enumerate()
            .map(|(index, mut event)| {
                event["eventId"] = json!(format!("evt-{index}"));
                valid(event, SourceKind::ALL[index % SourceKind::ALL.len()], index)
            })
            .collect();
        // Some users with a profile, so both shapes of event are there.
        let profiles: HashMap<String, UserProfile> = events
            .iter()
            .step_by(3)
            .map(|valid| {
                let user_id = valid.event.user_id.clone();
                let profile = UserProfile {
                    user_id: user_id.clone(),
                    segment: "vip".to_owned(),
                    country: "DE".to_owned(),
                    signup_timestamp: 0,
                    average_amount: 42.5,
                    known_devices: vec!["Linux/Firefox".to_owned()],
                };
                (user_id, profile)
            })
            .collect();
        let enriched = enrich(events, &profiles, 1_700_000_000_123);
        assert!(enriched.iter().any(|event| event.profile.is_some()));
        assert!(enriched.iter().any(|event| event.profile.is_none()));
        assert!(enriched.iter().any(|event| event.device.is_some()));
        assert_same_json(&enriched);
        assert_same_json(&[]);
        assert_read_back(&enriched);
    }

    #[test]
    fn strings_that_need_escapes_numbers_of_every_kind_and_missing_parts_are_written_as_serde_writes_them()
     {
        let mut events = Vec::new();
        for (index, (timestamp, user, agent)) in [
            (
                json!(1_700_000_000_000u64),
                "plain",
                Some("Mozilla/5.0 (iPhone)"),
            ),
            (json!(1.7e12), "quote \" and \\ back", None),
            (
                json!(1_700_000_000_000.5),
                "tab\tnew\nline\u{1}",
                Some("\"agent\""),
            ),
            (json!(0), "ünïcødé ✓ \u{7f}", Some("")),
        ]
        .into_iter()
        .enumerate()
        {
            let mut data = json!({"page": "/p/\"1\"", "amount": 12.5, "nested": {"b": [1, null]}});
            if let Some(agent) = agent {
                data["userAgent"] = json!(agent);
            }
            let event = json!({
                "eventId": format!("evt-{user}"), "userId": user, "eventType": "type\u{0}",
                "timestamp": timestamp, "data": data,
            });
            events.push(valid(event, SourceKind::Sqs, usize::MAX - index));
        }
        let mut enriched = enrich(events, &HashMap::<String, UserProfile>::new(), 0);
        // Features that are not finite are written as null, as serde_json writes them.
        enriched[1].features.amount = f32::NAN;
        enriched[2].features.log_amount = f32::INFINITY;
        enriched[3].features.hour_sin = f32::NEG_INFINITY;
        enriched[0].features.is_mobile = -0.0;
        enriched[0].features.account_age_days = f32::MIN_POSITIVE;
        enriched[1].features.user_events_in_batch = f32::MAX;
        assert_same_json(&enriched);
    }

    proptest! {
        #[test]
        fn any_strings_and_floats_are_written_as_serde_writes_them(
            user in any::<String>(),
            kind in any::<String>(),
            page in any::<String>(),
            agent in proptest::option::of(any::<String>()),
            features in proptest::array::uniform9(any::<f32>()),
            timestamp in any::<u64>(),
        ) {
            let mut data = json!({"page": page});
            if let Some(agent) = agent {
                data["userAgent"] = json!(agent);
            }
            let event: UserEvent = serde_json::from_value(json!({
                "eventId": user.clone(), "userId": user, "eventType": kind,
                "timestamp": timestamp, "data": data,
            }))
            .unwrap();
            let valid = ValidEvent {
                source: SourceRef { kind: SourceKind::Kinesis, id: page, index: 3 },
                event,
            };
            let mut enriched = enrich(vec![valid], &HashMap::<String, UserProfile>::new(), 5);
            let f = &mut enriched[0].features;
            [
                f.amount, f.log_amount, f.amount_to_user_average, f.hour_sin, f.hour_cos,
                f.is_new_device, f.user_events_in_batch, f.account_age_days, f.is_mobile,
            ] = features;
            assert_same_json(&enriched);
        }
    }
}
