//! Staged values kept in memory, as they are, when the whole state machine runs in this
//! process (`pipeline run`, `demo`, `serve`).
//!
//! A deployed stage stages a large output in S3 and the next Lambda function reads it back,
//! so it must be encoded and decoded. When every Task runs in one process the value can
//! stay where it is: the state machine still passes the same small reference and enforces
//! the same limits, but the stage that reads the reference takes the value from memory
//! instead of parsing it from a file. Values are kept per execution (two executions of the
//! same events share staging keys, never values), up to a budget of bytes (their encoded
//! size); beyond it, values go to the staging store as before. An execution's values are
//! forgotten when it ends.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// A kept value: readable as its own type, or encoded when read as another.
pub trait KeptValue: Send + Sync {
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn encode(&self) -> serde_json::Result<Vec<u8>>;
}

impl<T: Serialize + Send + Sync + 'static> KeptValue for T {
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn encode(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}

struct Entry {
    value: Arc<dyn KeptValue>,
    bytes: usize,
}

#[derive(Default)]
struct Held {
    /// By execution name, then staging key.
    executions: HashMap<String, HashMap<String, Entry>>,
    bytes: usize,
}

/// The values staged by the executions running in this process.
pub struct KeptValues {
    held: Mutex<Held>,
    budget_bytes: usize,
    largest_bytes: usize,
    /// Values refused because the budget was full (not for their own size).
    refused_for_room: AtomicUsize,
}

impl KeptValues {
    /// Keeps at most `budget_bytes` (counted as the values' encoded sizes) at a time, and no
    /// value larger than `largest_bytes`: a large part is what the staging store is for, and
    /// a long execution of many large parts would otherwise hold its first ones until it ends.
    pub fn new(budget_bytes: usize, largest_bytes: usize) -> Self {
        Self {
            held: Mutex::new(Held::default()),
            budget_bytes,
            largest_bytes,
            refused_for_room: AtomicUsize::new(0),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `value` (of encoded size `bytes`) under `key` for `execution`, replacing what
    /// that execution kept there. False when the budget has no room: the caller stages the
    /// value in the store instead, and what was kept under the key is dropped, so a read
    /// finds the newer value. Also false for a value over the largest size kept.
    pub fn keep(
        &self,
        execution: &str,
        key: &str,
        value: Arc<dyn KeptValue>,
        bytes: usize,
    ) -> bool {
        let mut held = self.held();
        let previous = held
            .executions
            .get_mut(execution)
            .and_then(|entries| entries.remove(key))
            .map_or(0, |entry| entry.bytes);
        held.bytes -= previous;
        if bytes > self.largest_bytes {
            return false;
        }
        if held.bytes + bytes > self.budget_bytes {
            self.refused_for_room.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        held.bytes += bytes;
        held.executions
            .entry(execution.to_owned())
            .or_default()
            .insert(key.to_owned(), Entry { value, bytes });
        true
    }

    /// What `execution` kept under `key`, if anything.
    pub fn get(&self, execution: &str, key: &str) -> Option<Arc<dyn KeptValue>> {
        self.held()
            .executions
            .get(execution)
            .and_then(|entries| entries.get(key))
            .map(|entry| entry.value.clone())
    }

    /// Drops everything `execution` kept; returns how many values there were.
    pub fn forget(&self, execution: &str) -> usize {
        let mut held = self.held();
        let Some(entries) = held.executions.remove(execution) else {
            return 0;
        };
        held.bytes -= entries.values().map(|entry| entry.bytes).sum::<usize>();
        // The values are freed after the lock is released: freeing an execution's batches
        // takes a while, and the other executions' stages take the lock to keep and read.
        drop(held);
        entries.len()
    }

    /// The encoded size of everything kept now.
    pub fn held_bytes(&self) -> usize {
        self.held().bytes
    }

    /// How many values were not kept because the budget was full, so went to the staging
    /// store (each costs an encoding, a file and a decoding that keeping it would not).
    pub fn refused_for_room(&self) -> usize {
        self.refused_for_room.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(items: usize) -> Arc<dyn KeptValue> {
        Arc::new(vec![7_u32; items])
    }

    #[test]
    fn values_are_kept_per_execution_within_the_budget_and_forgotten_with_it() {
        let kept = KeptValues::new(100, 100);
        assert!(kept.keep("a", "staging/bat_1/enriched.json", value(3), 60));
        assert!(
            !kept.keep("b", "staging/bat_1/enriched.json", value(3), 60),
            "no room left for another execution's value"
        );
        assert_eq!(kept.refused_for_room(), 1);
        assert!(kept.get("b", "staging/bat_1/enriched.json").is_none());
        assert!(kept.keep("b", "staging/bat_1/scores.json", value(1), 40));
        assert_eq!(kept.held_bytes(), 100);

        let read = kept.get("a", "staging/bat_1/enriched.json").unwrap();
        assert_eq!(read.into_any().downcast::<Vec<u32>>().unwrap().len(), 3);

        assert_eq!(kept.forget("a"), 1);
        assert_eq!(kept.forget("a"), 0);
        assert_eq!(kept.held_bytes(), 40);
        assert!(kept.get("a", "staging/bat_1/enriched.json").is_none());
    }

    #[test]
    fn a_value_that_does_not_fit_drops_the_older_one_under_its_key() {
        let kept = KeptValues::new(100, 100);
        assert!(kept.keep("a", "k", value(1), 50));
        assert!(
            kept.keep("a", "k", value(2), 90),
            "the older value's room is reused"
        );
        assert_eq!(kept.held_bytes(), 90);
        assert!(!kept.keep("a", "k", value(3), 150));
        assert!(
            kept.get("a", "k").is_none(),
            "a read must not find the stale value"
        );
        assert_eq!(kept.held_bytes(), 0);
    }

    #[test]
    fn a_value_over_the_largest_size_is_not_kept_even_with_room() {
        let kept = KeptValues::new(100, 30);
        assert!(!kept.keep("a", "large", value(9), 31));
        assert_eq!(
            kept.refused_for_room(),
            0,
            "refused for its size, not for room"
        );
        assert!(kept.keep("a", "small", value(1), 30));
        assert_eq!(kept.held_bytes(), 30);
    }

    #[test]
    fn a_value_read_as_another_type_is_still_readable_as_json() {
        let kept = KeptValues::new(100, 100);
        kept.keep("a", "k", value(2), 10);
        let read = kept.get("a", "k").unwrap();
        assert_eq!(read.encode().unwrap(), b"[7,7]");
        assert!(read.into_any().downcast::<Vec<String>>().is_err());
    }
}
