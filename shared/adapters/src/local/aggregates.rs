//! The embedded aggregate tables: a batch's deltas wait in `pending_deltas` as one row, and
//! are folded into `aggregates` and `window_users` once enough are pending.
//!
//! Keyed by window and scope, the aggregate rows a batch touches (one per user and window,
//! and the windows of `all` and of each event type) are spread over the table, and adding
//! them batch by batch wrote about one page per event to the log. Pending deltas are
//! appended instead, and the fold writes each page of the aggregate tables once however
//! many batches touched it. A batch's deltas are one row, encoded here ([`encode`]): with a
//! row per counter and per membership (schema version 5) inserting them was about half of what
//! applying a batch cost (docs/benchmarks.md).

use std::collections::{BTreeMap, HashMap};

use pipeline_domain::stages::aggregate::{AggregateDeltas, CounterDelta, WindowMember};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, params};

/// Pending memberships past which a write that adds deltas folds them (about half as many
/// events). Most counters are a user's in one window, added once however often the fold
/// runs, so folding often costs about the same in all and writes no more; but what is still
/// pending when a run ends is folded before it reads, with nothing else to overlap: with
/// 200,000, that last fold was 0.14 s of the demo's 2.9 (docs/benchmarks.md).
pub(super) const FOLD_AFTER_MEMBERS: i64 = 50_000;

/// How many memberships are pending: the running total kept in the last pending row, read
/// by its row id, so the count costs one lookup however many rows are pending.
pub(super) const PENDING_MEMBERS: &str = "SELECT COALESCE((SELECT members_through \
     FROM pending_deltas WHERE id = (SELECT MAX(id) FROM pending_deltas)), 0)";

/// The first byte of an encoded row: the layout of [`encode`].
const FORMAT: u8 = 1;

/// Leaves a batch's deltas pending, as one row, and answers how many memberships are
/// pending now, this batch's included.
pub(super) fn append_pending(
    connection: &Connection,
    deltas: &AggregateDeltas,
) -> rusqlite::Result<i64> {
    append_pending_parts(connection, &deltas.counters, &deltas.members)
}

/// [`append_pending`] for counters and memberships sorted by scope and window; nothing
/// to add adds no row.
fn append_pending_parts(
    connection: &Connection,
    counters: &[CounterDelta],
    members: &[WindowMember],
) -> rusqlite::Result<i64> {
    let pending: i64 = connection
        .prepare_cached(PENDING_MEMBERS)?
        .query_row([], |row| row.get(0))?;
    if counters.is_empty() && members.is_empty() {
        return Ok(pending);
    }
    let through = pending + members.len() as i64;
    connection
        .prepare_cached("INSERT INTO pending_deltas (members_through, deltas) VALUES (?1, ?2)")?
        .execute(params![through, encode(counters, members)])?;
    Ok(through)
}

/// A batch's counters and memberships as bytes, little-endian: [`FORMAT`], the number of
/// counters and each one's scope, window start, count and amount sum; then the number of
/// (scope, window) groups of memberships and each one's scope, window start, number of
/// users and the users. A string is its length (`u32`) and its UTF-8 bytes. The memberships
/// come sorted by scope and window from `aggregate`, so a group is a run of them; exact
/// floats, and several times faster to write and read than JSON.
fn encode(counters: &[CounterDelta], members: &[WindowMember]) -> Vec<u8> {
    let text: usize = counters.iter().map(|c| c.scope.len()).sum::<usize>()
        + members.iter().map(|m| m.user_id.len()).sum::<usize>();
    let mut out = Vec::with_capacity(16 + text + counters.len() * 28 + members.len() * 4);
    out.push(FORMAT);
    put_len(&mut out, counters.len());
    for counter in counters {
        put_str(&mut out, &counter.scope);
        out.extend_from_slice(&counter.window_start.to_le_bytes());
        out.extend_from_slice(&counter.count.to_le_bytes());
        out.extend_from_slice(&counter.amount_sum.to_le_bytes());
    }
    let groups: Vec<&[WindowMember]> = members
        .chunk_by(|a, b| a.scope == b.scope && a.window_start == b.window_start)
        .collect();
    put_len(&mut out, groups.len());
    for group in groups {
        put_str(&mut out, &group[0].scope);
        out.extend_from_slice(&group[0].window_start.to_le_bytes());
        put_len(&mut out, group.len());
        for member in group {
            put_str(&mut out, &member.user_id);
        }
    }
    out
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_len(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// Reads an encoded row; every read fails on a row that ends too soon.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], &'static str> {
        if self.bytes.len() < count {
            return Err("the row ends too soon");
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn eight(&mut self) -> Result<[u8; 8], &'static str> {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(bytes)
    }

    fn len(&mut self) -> Result<usize, &'static str> {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(bytes) as usize)
    }

    fn str(&mut self) -> Result<&'a str, &'static str> {
        let len = self.len()?;
        std::str::from_utf8(self.take(len)?).map_err(|_| "a string is not UTF-8")
    }
}

/// A scope's window: the scope and the window's start.
type Window<'a> = (&'a str, i64);

/// A window's event count and amount sum.
type Sums = (i64, f64);

/// What the pending rows add up to, borrowing their scopes and users.
#[derive(Default)]
struct Folded<'a> {
    /// Count and amount sum per (scope, window start).
    counters: HashMap<Window<'a>, Sums>,
    /// Users added per scope and window, unsorted and possibly repeated.
    members: HashMap<&'a str, BTreeMap<i64, Vec<&'a str>>>,
}

impl<'a> Folded<'a> {
    /// Adds one encoded row.
    fn add(&mut self, row: &'a [u8]) -> Result<(), &'static str> {
        let mut reader = Reader { bytes: row };
        if reader.take(1)? != [FORMAT] {
            return Err("the row is of an unknown format");
        }
        for _ in 0..reader.len()? {
            let scope = reader.str()?;
            let window_start = i64::from_le_bytes(reader.eight()?);
            let count = u64::from_le_bytes(reader.eight()?) as i64;
            let amount_sum = f64::from_le_bytes(reader.eight()?);
            let counter = self
                .counters
                .entry((scope, window_start))
                .or_insert((0, 0.0));
            counter.0 += count;
            counter.1 += amount_sum;
        }
        for _ in 0..reader.len()? {
            let scope = reader.str()?;
            let window_start = i64::from_le_bytes(reader.eight()?);
            let users = self
                .members
                .entry(scope)
                .or_default()
                .entry(window_start)
                .or_default();
            for _ in 0..reader.len()? {
                users.push(reader.str()?);
            }
        }
        if !reader.bytes.is_empty() {
            return Err("the row goes on after its memberships");
        }
        Ok(())
    }
}

/// Adds a window's counts; the table is keyed by window first, so a fold's new rows (most
/// of them the `user:` scope's, one per user and window) go about at the table's end.
const ADD_COUNTERS: &str = "INSERT INTO aggregates \
     (scope, window_start, event_count, amount_sum, distinct_users) VALUES (?1, ?2, ?3, ?4, 0) \
     ON CONFLICT (window_start, scope) DO UPDATE SET \
         event_count = event_count + excluded.event_count, \
         amount_sum = amount_sum + excluded.amount_sum";

/// A window's distinct users, once its users changed.
const SET_DISTINCT_USERS: &str = "INSERT INTO aggregates \
     (scope, window_start, event_count, amount_sum, distinct_users) VALUES (?1, ?2, 0, 0, ?3) \
     ON CONFLICT (window_start, scope) DO UPDATE SET distinct_users = excluded.distinct_users";

/// Folds the pending deltas into `aggregates` and `window_users`, inside the caller's write
/// transaction: the counters are summed per window and added in key order, and each
/// window's pending users are merged into its users, so one pending twice or already there
/// counts once. The pending rows are read whole first (a few MiB at the fold threshold),
/// so what they add up to borrows their strings instead of copying each one.
pub(super) fn fold(connection: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<Vec<u8>> = {
        let mut statement = connection.prepare_cached("SELECT deltas FROM pending_deltas")?;
        statement
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut folded = Folded::default();
    for row in &rows {
        folded.add(row).map_err(|reason| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                Type::Blob,
                format!("a pending aggregate deltas row cannot be read: {reason}").into(),
            )
        })?;
    }
    let mut counters: Vec<(Window, Sums)> = folded.counters.into_iter().collect();
    counters.sort_unstable_by(|((a_scope, a_window), _), ((b_scope, b_window), _)| {
        (a_window, a_scope).cmp(&(b_window, b_scope))
    });
    let mut add = connection.prepare_cached(ADD_COUNTERS)?;
    for ((scope, window_start), (count, amount_sum)) in counters {
        add.execute(params![scope, window_start, count, amount_sum])?;
    }
    fold_members(connection, folded.members)?;
    connection.execute_batch("DELETE FROM pending_deltas")
}

/// Merges the pending memberships window by window into `window_users`, a row per window
/// holding its users as a sorted JSON array. With a row per membership instead
/// (`window_members` before version 5), inserting each one into its b-tree and counting the
/// windows' rows again was most of the fold's time (docs/benchmarks.md); now a window costs
/// one read and, if it gained users, one write.
fn fold_members(
    connection: &Connection,
    pending: HashMap<&str, BTreeMap<i64, Vec<&str>>>,
) -> rusqlite::Result<()> {
    let mut scopes: Vec<(&str, BTreeMap<i64, Vec<&str>>)> = pending.into_iter().collect();
    scopes.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut read = connection
        .prepare_cached("SELECT users FROM window_users WHERE scope = ?1 AND window_start = ?2")?;
    let mut write = connection.prepare_cached(
        "INSERT OR REPLACE INTO window_users (scope, window_start, users) VALUES (?1, ?2, ?3)",
    )?;
    let mut distinct = connection.prepare_cached(SET_DISTINCT_USERS)?;
    for (scope, windows) in scopes {
        for (window_start, mut added) in windows {
            added.sort_unstable();
            added.dedup();
            let known: Option<String> = read
                .query_row(params![scope, window_start], |row| row.get(0))
                .optional()?;
            let known: Vec<String> = match known {
                Some(text) => serde_json::from_str(&text).map_err(|error| {
                    rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(error))
                })?,
                None => Vec::new(),
            };
            let users = merge_sorted(&known, added.into_iter());
            if users.len() == known.len() {
                continue;
            }
            let text = serde_json::to_string(&users)
                .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
            write.execute(params![scope, window_start, text])?;
            distinct.execute(params![scope, window_start, users.len() as i64])?;
        }
    }
    Ok(())
}

/// The union of two sorted lists of distinct users, sorted.
fn merge_sorted<'a>(known: &'a [String], added: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut merged = Vec::with_capacity(known.len());
    let mut known = known.iter().map(String::as_str).peekable();
    for user in added {
        while let Some(&before) = known.peek() {
            if before >= user {
                break;
            }
            merged.push(before);
            known.next();
        }
        if known.peek() == Some(&user) {
            known.next();
        }
        merged.push(user);
    }
    merged.extend(known);
    merged
}

/// Brings the pending deltas of a file of version 5 or earlier (a row per counter in
/// `pending_counters` and per membership in `pending_members`; a file closed cleanly has
/// none) into one `pending_deltas` row, and drops the old tables. Files of versions before
/// the pending tables existed have neither.
pub(super) fn migrate_pending_rows(connection: &Connection) -> rusqlite::Result<()> {
    let exists = |table: &str| -> rusqlite::Result<bool> {
        connection
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                params![table],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
    };
    let mut counters = Vec::new();
    if exists("pending_counters")? {
        let mut statement = connection
            .prepare("SELECT scope, window_start, event_count, amount_sum FROM pending_counters")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            counters.push(CounterDelta {
                scope: row.get(0)?,
                window_start: row.get(1)?,
                count: row.get::<_, i64>(2)? as u64,
                amount_sum: row.get(3)?,
            });
        }
        connection.execute_batch("DROP TABLE pending_counters")?;
    }
    let mut members = Vec::new();
    if exists("pending_members")? {
        let mut statement =
            connection.prepare("SELECT scope, window_start, user_id FROM pending_members")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            members.push(WindowMember {
                scope: row.get(0)?,
                window_start: row.get(1)?,
                user_id: row.get(2)?,
            });
        }
        connection.execute_batch("DROP TABLE pending_members")?;
    }
    members.sort_unstable();
    append_pending_parts(connection, &counters, &members).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(scope: &str, window_start: i64, count: u64, amount_sum: f64) -> CounterDelta {
        CounterDelta {
            scope: scope.to_owned(),
            window_start,
            count,
            amount_sum,
        }
    }

    fn member(scope: &str, window_start: i64, user_id: &str) -> WindowMember {
        WindowMember {
            scope: scope.to_owned(),
            window_start,
            user_id: user_id.to_owned(),
        }
    }

    #[test]
    fn an_encoded_row_adds_up_to_its_counters_and_memberships_exactly() {
        let counters = [
            counter("all", 60_000, 3, 0.1 + 0.2),
            counter("type:click", 60_000, 2, f64::INFINITY),
            counter("user:ü", 120_000, 1, -0.0),
        ];
        let members = [
            member("all", 60_000, "u1"),
            member("all", 60_000, "u2"),
            member("all", 120_000, "ü"),
            member("type:click", 60_000, "u1"),
        ];
        let row = encode(&counters, &members);
        let mut folded = Folded::default();
        folded.add(&row).unwrap();
        folded.add(&row).unwrap();
        assert_eq!(folded.counters.len(), 3);
        let (count, sum) = folded.counters[&("all", 60_000)];
        assert_eq!((count, sum), (6, 2.0 * (0.1 + 0.2)));
        assert_eq!(folded.counters[&("type:click", 60_000)].1, f64::INFINITY);
        assert_eq!(folded.counters[&("user:ü", 120_000)], (2, 0.0));
        assert_eq!(folded.members["all"][&60_000], ["u1", "u2", "u1", "u2"]);
        assert_eq!(folded.members["all"][&120_000], ["ü", "ü"]);
        assert_eq!(folded.members["type:click"][&60_000], ["u1", "u1"]);
    }

    #[test]
    fn a_row_cut_short_or_of_another_format_is_refused() {
        let row = encode(&[counter("all", 0, 1, 1.0)], &[member("all", 0, "u1")]);
        for end in 0..row.len() {
            assert!(Folded::default().add(&row[..end]).is_err(), "cut at {end}");
        }
        let mut other = row.clone();
        other[0] = FORMAT + 1;
        assert_eq!(
            Folded::default().add(&other).err(),
            Some("the row is of an unknown format")
        );
        let mut longer = row;
        longer.push(0);
        assert!(Folded::default().add(&longer).is_err());
    }

    #[test]
    fn merging_keeps_users_sorted_and_each_once() {
        let known = ["b".to_owned(), "d".to_owned()];
        assert_eq!(
            merge_sorted(&known, ["a", "b", "c", "e"].into_iter()),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(merge_sorted(&known, std::iter::empty()), ["b", "d"]);
        assert_eq!(merge_sorted(&[], ["a"].into_iter()), ["a"]);
    }
}
