//! An enriched batch and its JSON, written once, when the batch is made.
//!
//! A batch of enriched events is written as JSON more than once on its way: its size is
//! counted to decide whether it travels inline or staged, a staged batch is encoded, and
//! `store` writes each event's JSON again inside its events row. Written by `store`, an
//! event's fields are read long after `enrich` made them, when other executions' batches have
//! pushed them out of the cache: in the demo that write took about three and a half times as
//! long as the same write right after `enrich` (docs/benchmarks.md). So the batch's JSON is
//! written where the events are made, and the later uses copy it or just read its length.
//!
//! A batch read back from JSON (a staged object) has no text of its own until something asks
//! for it.

use std::ops::Deref;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::stages::enrich::EnrichedEvent;

/// About what an enriched event's JSON takes beside its data object (at most about 900 bytes
/// in the demo's events), to size a batch's text at once.
const EVENT_BYTES_BESIDE_DATA: usize = 896;

/// Enriched events and their compact JSON array, the same bytes as `serde_json::to_vec` of
/// the events. The events cannot change once the batch holds them, so the text stays theirs.
#[derive(Debug, Clone, Default)]
pub struct EnrichedBatch {
    events: Vec<EnrichedEvent>,
    rendered: OnceLock<Rendered>,
}

#[derive(Debug, Clone)]
struct Rendered {
    /// The JSON array of the events.
    json: String,
    /// Where each event's JSON ends in `json` (exclusive); it starts one byte after the
    /// previous one ends (after `[` or `,`).
    ends: Vec<usize>,
}

impl EnrichedBatch {
    /// A batch of events, its JSON written now, while the events are still in the cache.
    pub fn new(events: Vec<EnrichedEvent>) -> Self {
        let batch = Self::unrendered(events);
        batch.rendered();
        batch
    }

    /// A batch whose JSON is written when it is first asked for.
    fn unrendered(events: Vec<EnrichedEvent>) -> Self {
        Self {
            events,
            rendered: OnceLock::new(),
        }
    }

    pub fn events(&self) -> &[EnrichedEvent] {
        &self.events
    }

    pub fn into_events(self) -> Vec<EnrichedEvent> {
        self.events
    }

    /// The batch's compact JSON (an array).
    pub fn json(&self) -> &str {
        &self.rendered().json
    }

    /// The compact JSON of the event at `index`, when the batch's JSON has been written
    /// (always for a batch made by [`EnrichedBatch::new`]); `None` otherwise, or past the end.
    pub fn written_event_json(&self, index: usize) -> Option<&str> {
        let rendered = self.rendered.get()?;
        let end = *rendered.ends.get(index)?;
        let start = match index {
            0 => 1,
            _ => rendered.ends[index - 1] + 1,
        };
        Some(&rendered.json[start..end])
    }

    fn rendered(&self) -> &Rendered {
        self.rendered.get_or_init(|| {
            let capacity: usize = self
                .events
                .iter()
                .map(|event| EVENT_BYTES_BESIDE_DATA + event.event.data.json().len())
                .sum();
            let mut json = Vec::with_capacity(capacity + 2);
            let mut ends = Vec::with_capacity(self.events.len());
            json.push(b'[');
            for (index, event) in self.events.iter().enumerate() {
                if index > 0 {
                    json.push(b',');
                }
                // Writing into memory cannot fail.
                let _ = event.write_json(&mut json);
                ends.push(json.len());
            }
            json.push(b']');
            Rendered {
                // The JSON writer writes only UTF-8 (its strings are `str`s, escaped or not).
                json: String::from_utf8(json).expect("the event JSON writer writes UTF-8"),
                ends,
            }
        })
    }
}

impl Deref for EnrichedBatch {
    type Target = [EnrichedEvent];

    fn deref(&self) -> &[EnrichedEvent] {
        &self.events
    }
}

impl From<Vec<EnrichedEvent>> for EnrichedBatch {
    fn from(events: Vec<EnrichedEvent>) -> Self {
        Self::new(events)
    }
}

impl PartialEq for EnrichedBatch {
    fn eq(&self, other: &Self) -> bool {
        self.events == other.events
    }
}

/// The array of events, as `Vec<EnrichedEvent>` serializes (the same bytes as
/// [`EnrichedBatch::json`]).
impl Serialize for EnrichedBatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.events.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EnrichedBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<EnrichedEvent>::deserialize(deserializer).map(Self::unrendered)
    }
}
