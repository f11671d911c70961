//! `aggregate`: one-minute tumbling windows per event type, per user and overall.
//!
//! The output is additive: counters to add and window memberships to record. Distinct users
//! are not additive numbers, so they are kept as memberships (`scope`, window, user) that the
//! store inserts if absent; a window's distinct users is the number of its memberships. That
//! makes every part of the output safe to apply once per batch, in any order across batches.
//!
//! The same event may arrive again in another batch (a queue redelivers a message beside
//! new ones, so the batch id differs). The deltas therefore also list each event's
//! contribution: a table that finds some event ids already applied applies
//! [`AggregateDeltas::without`] those events instead, so no event is counted twice.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::event::UserEvent;

/// Window length.
pub const WINDOW_MILLIS: i64 = 60_000;

/// Scope of the counters over every event.
pub const SCOPE_ALL: &str = "all";

/// Counts to add to one scope's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterDelta {
    /// `all`, `type:<eventType>` or `user:<userId>`.
    pub scope: String,
    /// Start of the window, milliseconds since the Unix epoch.
    pub window_start: i64,
    pub count: u64,
    /// Sum of `data.amount` over the events that have one.
    pub amount_sum: f64,
}

/// One user seen in one scope's window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowMember {
    pub scope: String,
    pub window_start: i64,
    pub user_id: String,
}

/// What one event adds to the aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventContribution {
    pub event_id: String,
    pub event_type: String,
    pub user_id: String,
    pub window_start: i64,
    /// `data.amount`, or 0 when the event has none.
    pub amount: f64,
}

/// A batch's contribution to the aggregates, applied at most once per `batch_id`, and at
/// most once per event id: `counters` and `members` sum `contributions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateDeltas {
    pub batch_id: String,
    pub window_seconds: u32,
    pub counters: Vec<CounterDelta>,
    pub members: Vec<WindowMember>,
    /// Empty in deltas made before contributions were listed: those are applied once per
    /// batch id only.
    #[serde(default)]
    pub contributions: Vec<EventContribution>,
}

impl AggregateDeltas {
    /// The same batch without the events in `applied` (ids already counted).
    pub fn without(&self, applied: &HashSet<&str>) -> AggregateDeltas {
        let contributions: Vec<EventContribution> = self
            .contributions
            .iter()
            .filter(|contribution| !applied.contains(contribution.event_id.as_str()))
            .cloned()
            .collect();
        let (counters, members) = sum(contributions.iter().map(Contribution::of));
        AggregateDeltas {
            batch_id: self.batch_id.clone(),
            window_seconds: self.window_seconds,
            counters,
            members,
            contributions,
        }
    }
}

/// One event's contribution while summing, borrowed.
struct Contribution<'a> {
    event_type: &'a str,
    user_id: &'a str,
    window_start: i64,
    amount: f64,
}

impl<'a> Contribution<'a> {
    fn of(contribution: &'a EventContribution) -> Self {
        Self {
            event_type: &contribution.event_type,
            user_id: &contribution.user_id,
            window_start: contribution.window_start,
            amount: contribution.amount,
        }
    }
}

/// The start of the window holding `timestamp_millis`.
pub fn window_start(timestamp_millis: f64) -> i64 {
    let millis = timestamp_millis.floor() as i64;
    millis - millis.rem_euclid(WINDOW_MILLIS)
}

/// Aggregates a batch of events into deltas, in a deterministic order.
pub fn aggregate<'a>(
    batch_id: &str,
    events: impl IntoIterator<Item = &'a UserEvent>,
) -> AggregateDeltas {
    let events = events.into_iter();
    let mut contributions = Vec::with_capacity(events.size_hint().0);
    let (counters, members) = sum(events.map(|event| {
        let window_start = window_start(event.timestamp_millis());
        let amount = event.amount().unwrap_or(0.0);
        contributions.push(EventContribution {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            user_id: event.user_id.clone(),
            window_start,
            amount,
        });
        Contribution {
            event_type: &event.event_type,
            user_id: &event.user_id,
            window_start,
            amount,
        }
    }));
    AggregateDeltas {
        batch_id: batch_id.to_owned(),
        window_seconds: (WINDOW_MILLIS / 1000) as u32,
        counters,
        members,
        contributions,
    }
}

/// Sums contributions into counters and memberships, sorted by scope name and window.
fn sum<'a>(
    contributions: impl Iterator<Item = Contribution<'a>>,
) -> (Vec<CounterDelta>, Vec<WindowMember>) {
    // Accumulate on borrowed keys (no allocation per event), then render and sort once.
    // Sized for a batch of distinct users, as a stream's batches about are (a `user:` counter
    // and two memberships per event): growing the tables from empty rehashed them about ten
    // times per batch.
    let events = contributions.size_hint().0;
    let mut counters: foldhash::HashMap<(Scope<'a>, i64), (u64, f64)> =
        foldhash::HashMap::with_capacity_and_hasher(events + events / 8, Default::default());
    let mut members: foldhash::HashSet<(Scope<'a>, i64, &'a str)> =
        foldhash::HashSet::with_capacity_and_hasher(2 * events, Default::default());
    for contribution in contributions {
        let window = contribution.window_start;
        let by_type = Scope::Type(contribution.event_type);
        for scope in [Scope::All, by_type, Scope::User(contribution.user_id)] {
            let counter = counters.entry((scope, window)).or_insert((0, 0.0));
            counter.0 += 1;
            counter.1 += contribution.amount;
        }
        for scope in [Scope::All, by_type] {
            members.insert((scope, window, contribution.user_id));
        }
    }
    // Scopes order like their rendered names ("all" < "type:..." < "user:..."), so sorting
    // the borrowed keys first gives the rendered output in name order without comparing
    // freshly allocated strings.
    let mut counters: Vec<((Scope<'a>, i64), (u64, f64))> = counters.into_iter().collect();
    counters.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut members: Vec<(Scope<'a>, i64, &'a str)> = members.into_iter().collect();
    members.sort_unstable();
    let counters = counters
        .into_iter()
        .map(
            |((scope, window_start), (count, amount_sum))| CounterDelta {
                scope: scope.render(),
                window_start,
                count,
                amount_sum,
            },
        )
        .collect();
    let members = members
        .into_iter()
        .map(|(scope, window_start, user_id)| WindowMember {
            scope: scope.render(),
            window_start,
            user_id: user_id.to_owned(),
        })
        .collect();
    (counters, members)
}

/// A counter's scope while accumulating, borrowed from the events. The variant order is the
/// order of the rendered names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Scope<'a> {
    All,
    Type(&'a str),
    User(&'a str),
}

impl Scope<'_> {
    fn render(self) -> String {
        match self {
            Scope::All => SCOPE_ALL.to_owned(),
            Scope::Type(event_type) => format!("type:{event_type}"),
            Scope::User(user_id) => format!("user:{user_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Number, json};

    fn event(user: &str, kind: &str, timestamp: u64, amount: Option<f64>) -> UserEvent {
        let mut data = Map::new();
        if let Some(amount) = amount {
            data.insert("amount".into(), json!(amount));
        }
        UserEvent {
            event_id: format!("{user}-{timestamp}"),
            user_id: user.into(),
            event_type: kind.into(),
            timestamp: Number::from(timestamp),
            data: data.into(),
        }
    }

    #[test]
    fn windows_count_sum_and_list_distinct_users() {
        let events = [
            event("u1", "purchase", 60_000, Some(10.0)),
            event("u1", "purchase", 119_999, Some(5.5)),
            event("u2", "purchase", 61_000, None),
            event("u2", "click", 120_000, None),
        ];
        let deltas = aggregate("bat_1", &events);
        let find = |scope: &str, window: i64| {
            deltas
                .counters
                .iter()
                .find(|c| c.scope == scope && c.window_start == window)
                .cloned()
                .unwrap()
        };
        assert_eq!(find("type:purchase", 60_000).count, 3);
        assert_eq!(find("type:purchase", 60_000).amount_sum, 15.5);
        assert_eq!(find("user:u1", 60_000).count, 2);
        assert_eq!(find("all", 120_000).count, 1);
        let sorted = |a: &CounterDelta, b: &CounterDelta| {
            (&a.scope, a.window_start) <= (&b.scope, b.window_start)
        };
        assert!(
            deltas
                .counters
                .windows(2)
                .all(|pair| sorted(&pair[0], &pair[1]))
        );
        assert!(deltas.members.windows(2).all(|pair| pair[0] <= pair[1]));
        let purchase_users = deltas
            .members
            .iter()
            .filter(|m| m.scope == "type:purchase")
            .count();
        assert_eq!(purchase_users, 2);
    }

    #[test]
    fn without_applied_events_is_the_aggregate_of_the_others() {
        let events = [
            event("u1", "purchase", 60_000, Some(10.0)),
            event("u1", "purchase", 119_999, Some(5.5)),
            event("u2", "click", 61_000, None),
        ];
        let deltas = aggregate("bat_1", &events);
        assert_eq!(deltas.contributions.len(), 3);
        let applied: HashSet<&str> = ["u1-119999"].into_iter().collect();
        let rest = deltas.without(&applied);
        let expected = aggregate("bat_1", [&events[0], &events[2]]);
        assert_eq!(rest, expected);
        assert_eq!(deltas.without(&HashSet::new()), deltas);
    }

    #[test]
    fn windows_start_on_the_minute_even_before_the_epoch() {
        assert_eq!(window_start(59_999.9), 0);
        assert_eq!(window_start(60_000.0), 60_000);
        assert_eq!(window_start(-1.0), -60_000);
    }
}
