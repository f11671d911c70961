//! The event-id index of the local database, held in memory by the writer thread.
//!
//! Every event id the tables know has one row in `event_keys`: its events row, when its
//! aggregates claim was made, and the digest of the text its search document indexed. Event
//! ids are digests, so an index on them in the file would be written at random: each commit
//! would dirty (and log whole) about one index page per event. Instead the table is
//! append-only in row-id order, with no index but its row id, and this module answers "which
//! row holds event id X" from memory: 64-bit digests of the ids, in an open-addressing table
//! of entry numbers.
//!
//! Other processes may append to the same file. Each write transaction of the writer first
//! reads the rows appended since the last one it knows ([`EventKeys::catch_up`]), under the
//! write lock, so no row can be added meanwhile. A transaction that rolls back forgets the
//! rows it added ([`EventKeys::roll_back`]); SQLite may give their row ids to other ids.
//!
//! One transaction usually puts an event, claims its aggregates and indexes it: three
//! changes to the same row. So the rows a transaction adds or changes are held here until
//! it is about to commit ([`EventKeys::flush`]), then each is written once: a new id costs
//! one insert, not an insert, two reads and two updates. The writer holds the write lock
//! meanwhile, so the next row id is the one after the last known row.
//!
//! Memory: 16 bytes per id and 4 bytes per slot, with 1.3 to 4 slots per id: about 24 MiB
//! for a million ids.

use std::hash::BuildHasher;

use rusqlite::{Connection, OptionalExtension, params};

/// One known id: the digest of its text and its row in `event_keys`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    digest: u64,
    row: i64,
}

/// The `event_keys` row of one event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyRow {
    pub id: i64,
    /// The row of `events` that holds the event, once it was put.
    pub event_row: Option<i64>,
    /// When the event's aggregates were last claimed, in Unix milliseconds.
    pub applied_at: Option<i64>,
    /// The digest of the text its search document indexed, once indexed.
    pub text_digest: Option<i64>,
}

/// What an `event_keys` row holds besides its ids, for a row about to be added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct KeyFields {
    pub event_row: Option<i64>,
    pub applied_at: Option<i64>,
    pub text_digest: Option<i64>,
}

/// A row the open transaction added or changed, not yet written to the file.
#[derive(Debug)]
struct Unwritten {
    row: KeyRow,
    /// True for a row that is not in the file at all (an insert, not an update).
    added: bool,
}

/// Row ids of `event_keys` by event id, for the rows the file held at the last catch-up
/// plus the rows this process added since.
#[derive(Debug, Default)]
pub(super) struct EventKeys {
    /// In row-id order.
    entries: Vec<Entry>,
    /// Entry number + 1 per slot, 0 for an empty slot; a power of two long, at most three
    /// quarters full.
    slots: Vec<u32>,
    /// Entries known to be in the file; those after were added by the open transaction.
    committed: usize,
    /// The rows the open transaction added or changed, by event id, until
    /// [`EventKeys::flush`]. A transaction usually looks up each of its ids three times (its
    /// event, its claim, its document); after the first, the id is found here, among the
    /// transaction's few thousand, without probing the slots of every known id (a cache
    /// miss each).
    unwritten: foldhash::HashMap<String, Unwritten>,
}

/// The digest of an event id in the table: foldhash with a fixed seed, a few multiplications
/// for a 36-byte id where FNV-1a makes one per byte. It is never stored (each process builds
/// its table from `event_keys`), so it need not be stable across versions.
fn id_digest(event_id: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x6576_656e_745f_6964).hash_one(event_id)
}

/// A 64-bit FNV-1a digest: stable across processes and versions, unlike the standard hasher.
pub(super) fn digest(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl EventKeys {
    /// The first slot a digest probes: its bits mixed (Fibonacci hashing), the top ones kept.
    fn home(&self, digest: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (digest.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// The rows of `event_keys` whose id has this digest: almost always none or one.
    fn candidates(&self, digest: u64) -> impl Iterator<Item = i64> + '_ {
        let mask = self.slots.len().wrapping_sub(1);
        let start = if self.slots.is_empty() {
            0
        } else {
            self.home(digest)
        };
        (0..self.slots.len())
            .map(move |step| self.slots[(start + step) & mask])
            .take_while(|slot| *slot != 0)
            .map(|slot| self.entries[slot as usize - 1])
            .filter(move |entry| entry.digest == digest)
            .map(|entry| entry.row)
    }

    fn place(&mut self, number: usize) {
        let mask = self.slots.len() - 1;
        let mut slot = self.home(self.entries[number].digest);
        while self.slots[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = u32::try_from(number + 1).expect("fewer than 2^32 event ids");
    }

    /// Makes the slot table fit the entries again, from scratch.
    fn rebuild(&mut self) {
        let wanted = (self.entries.len() * 2).next_power_of_two().max(1024);
        self.slots.clear();
        self.slots.resize(wanted, 0);
        for number in 0..self.entries.len() {
            self.place(number);
        }
    }

    /// Remembers that event id `event_id` is in row `row`, added by the open transaction.
    pub fn record(&mut self, event_id: &str, row: i64) {
        self.entries.push(Entry {
            digest: id_digest(event_id),
            row,
        });
        if self.entries.len() * 4 > self.slots.len() * 3 {
            self.rebuild();
        } else {
            self.place(self.entries.len() - 1);
        }
    }

    /// Reads the rows other processes (or an earlier run) appended since the last known one.
    /// Runs inside a write transaction, so none can be appended meanwhile.
    pub fn catch_up(&mut self, connection: &Connection) -> rusqlite::Result<()> {
        let last = self.entries.last().map_or(0, |entry| entry.row);
        let mut statement =
            connection.prepare_cached("SELECT id, event_id FROM event_keys WHERE id > ?1")?;
        let mut rows = statement.query(params![last])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let event_id: String = row.get(1)?;
            self.record(&event_id, id);
        }
        self.committed = self.entries.len();
        Ok(())
    }

    /// The open transaction committed: its rows are in the file.
    pub fn commit(&mut self) {
        debug_assert!(self.unwritten.is_empty(), "rows were committed unwritten");
        self.committed = self.entries.len();
    }

    /// The open transaction rolled back: its rows are gone, and so are their entries.
    pub fn roll_back(&mut self) {
        self.unwritten.clear();
        if self.entries.len() > self.committed {
            self.entries.truncate(self.committed);
            self.rebuild();
        }
    }

    /// Adds a row for `event_id`, which [`EventKeys::locate`] did not find, and returns it.
    /// It is written to the file by [`EventKeys::flush`].
    pub fn add(&mut self, event_id: &str, fields: KeyFields) -> KeyRow {
        let id = self.entries.last().map_or(1, |entry| entry.row + 1);
        self.record(event_id, id);
        let row = KeyRow {
            id,
            event_row: fields.event_row,
            applied_at: fields.applied_at,
            text_digest: fields.text_digest,
        };
        self.unwritten
            .insert(event_id.to_owned(), Unwritten { row, added: true });
        row
    }

    /// Replaces the fields of `event_id`'s row (found by [`EventKeys::locate`]) with those of
    /// `row`. It is written to the file by [`EventKeys::flush`].
    pub fn change(&mut self, event_id: &str, row: KeyRow) {
        match self.unwritten.get_mut(event_id) {
            Some(unwritten) => unwritten.row = row,
            None => {
                self.unwritten
                    .insert(event_id.to_owned(), Unwritten { row, added: false });
            }
        }
    }

    /// Writes the rows the open transaction added or changed, once each, in row-id order.
    pub fn flush(&mut self, connection: &Connection) -> rusqlite::Result<()> {
        let mut rows: Vec<(String, Unwritten)> = self.unwritten.drain().collect();
        rows.sort_unstable_by_key(|(_, unwritten)| unwritten.row.id);
        let mut insert = connection.prepare_cached(
            "INSERT INTO event_keys (id, event_id, event_row, applied_at, text_digest) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut update = connection.prepare_cached(
            "UPDATE event_keys SET event_row = ?2, applied_at = ?3, text_digest = ?4 WHERE id = ?1",
        )?;
        for (event_id, Unwritten { row, added }) in rows {
            if added {
                insert.execute(params![
                    row.id,
                    event_id,
                    row.event_row,
                    row.applied_at,
                    row.text_digest
                ])?;
            } else {
                update.execute(params![
                    row.id,
                    row.event_row,
                    row.applied_at,
                    row.text_digest
                ])?;
            }
        }
        Ok(())
    }

    /// The row of `event_id` (as the open transaction left it), or `None` when the id is new.
    pub fn locate(
        &self,
        connection: &Connection,
        event_id: &str,
    ) -> rusqlite::Result<Option<KeyRow>> {
        if let Some(unwritten) = self.unwritten.get(event_id) {
            return Ok(Some(unwritten.row));
        }
        for id in self.candidates(id_digest(event_id)) {
            // Another id with the same digest: a row the open transaction added is not in
            // the file yet, and one in the file holds its own id; either way it is no match.
            let mut statement = connection.prepare_cached(
                "SELECT event_id, event_row, applied_at, text_digest FROM event_keys WHERE id = ?1",
            )?;
            let found = statement
                .query_row(params![id], |row| {
                    let stored: String = row.get(0)?;
                    Ok((stored == event_id).then_some(KeyRow {
                        id,
                        event_row: row.get(1)?,
                        applied_at: row.get(2)?,
                        text_digest: row.get(3)?,
                    }))
                })
                .optional()?
                .flatten();
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE event_keys (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, \
                 event_row INTEGER, applied_at INTEGER, text_digest INTEGER);",
            )
            .unwrap();
        connection
    }

    fn add(connection: &Connection, keys: &mut EventKeys, event_id: &str) -> i64 {
        connection
            .execute(
                "INSERT INTO event_keys (event_id, applied_at) VALUES (?1, 7)",
                params![event_id],
            )
            .unwrap();
        let row = connection.last_insert_rowid();
        keys.record(event_id, row);
        row
    }

    #[test]
    fn ids_added_are_found_and_others_are_not() {
        let connection = table();
        let mut keys = EventKeys::default();
        keys.catch_up(&connection).unwrap();
        let rows: Vec<i64> = (0..5_000)
            .map(|number| add(&connection, &mut keys, &format!("evt_{number}")))
            .collect();
        for (number, row) in rows.iter().enumerate() {
            let found = keys
                .locate(&connection, &format!("evt_{number}"))
                .unwrap()
                .expect("a known id is found");
            assert_eq!(found.id, *row);
            assert_eq!(found.applied_at, Some(7));
            assert_eq!(found.event_row, None);
        }
        assert_eq!(keys.locate(&connection, "evt_5000").unwrap(), None);
    }

    #[test]
    fn rows_appended_by_another_connection_are_read_at_catch_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        let mine = Connection::open(&path).unwrap();
        mine.execute_batch(
            "CREATE TABLE event_keys (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, \
             event_row INTEGER, applied_at INTEGER, text_digest INTEGER);",
        )
        .unwrap();
        let mut keys = EventKeys::default();
        keys.catch_up(&mine).unwrap();
        add(&mine, &mut keys, "evt_mine");
        let other = Connection::open(&path).unwrap();
        other
            .execute("INSERT INTO event_keys (event_id) VALUES ('evt_other')", [])
            .unwrap();
        assert_eq!(keys.locate(&mine, "evt_other").unwrap(), None);
        keys.catch_up(&mine).unwrap();
        assert_eq!(keys.locate(&mine, "evt_other").unwrap().unwrap().id, 2);
        assert_eq!(keys.locate(&mine, "evt_mine").unwrap().unwrap().id, 1);
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn a_rolled_back_transaction_forgets_its_ids_and_keeps_the_committed_ones() {
        let connection = table();
        let mut keys = EventKeys::default();
        keys.catch_up(&connection).unwrap();
        add(&connection, &mut keys, "evt_kept");
        keys.commit();
        connection.execute_batch("BEGIN").unwrap();
        // Enough ids to grow the slot table inside the transaction.
        for number in 0..3_000 {
            add(&connection, &mut keys, &format!("evt_gone_{number}"));
        }
        connection.execute_batch("ROLLBACK").unwrap();
        keys.roll_back();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.locate(&connection, "evt_gone_0").unwrap(), None);
        assert_eq!(keys.locate(&connection, "evt_kept").unwrap().unwrap().id, 1);
        // The row id of a forgotten id goes to the next one, which is then found.
        let row = add(&connection, &mut keys, "evt_next");
        assert_eq!(row, 2);
        assert_eq!(keys.locate(&connection, "evt_next").unwrap().unwrap().id, 2);
    }

    #[test]
    fn ids_whose_digests_collide_are_told_apart_by_their_text() {
        let connection = table();
        let mut keys = EventKeys::default();
        add(&connection, &mut keys, "evt_a");
        // A row whose recorded digest is that of another id: what a collision looks like.
        connection
            .execute("INSERT INTO event_keys (event_id) VALUES ('evt_b')", [])
            .unwrap();
        keys.entries.push(Entry {
            digest: id_digest("evt_a"),
            row: connection.last_insert_rowid(),
        });
        keys.rebuild();
        assert_eq!(keys.locate(&connection, "evt_a").unwrap().unwrap().id, 1);
        assert_eq!(keys.locate(&connection, "evt_b").unwrap(), None);
        assert_eq!(keys.candidates(id_digest("evt_a")).count(), 2);
    }

    #[test]
    fn an_id_is_not_taken_for_a_row_the_open_transaction_added_under_its_digest() {
        let connection = table();
        let mut keys = EventKeys::default();
        keys.catch_up(&connection).unwrap();
        connection.execute_batch("BEGIN").unwrap();
        let added = keys.add("evt_a", KeyFields::default());
        // What a collision looks like: evt_b's digest leads to evt_a's row, which is not in
        // the file yet.
        keys.entries.push(Entry {
            digest: id_digest("evt_b"),
            row: added.id,
        });
        keys.rebuild();
        assert_eq!(keys.locate(&connection, "evt_b").unwrap(), None);
        assert_eq!(keys.locate(&connection, "evt_a").unwrap(), Some(added));
        connection.execute_batch("ROLLBACK").unwrap();
    }

    fn stored(connection: &Connection, id: i64) -> (String, Option<i64>, Option<i64>, Option<i64>) {
        connection
            .query_row(
                "SELECT event_id, event_row, applied_at, text_digest FROM event_keys WHERE id = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .unwrap()
    }

    #[test]
    fn rows_added_and_changed_in_a_transaction_are_found_then_written_once_each() {
        let connection = table();
        let mut keys = EventKeys::default();
        let old = add(&connection, &mut keys, "evt_old");
        keys.commit();

        connection.execute_batch("BEGIN").unwrap();
        keys.catch_up(&connection).unwrap();
        let fresh = keys.add(
            "evt_new",
            KeyFields {
                event_row: Some(40),
                ..KeyFields::default()
            },
        );
        assert_eq!(
            fresh.id,
            old + 1,
            "the next row id after the last known row"
        );
        let found = keys.locate(&connection, "evt_new").unwrap().unwrap();
        assert_eq!(found, fresh, "an added row is found before it is written");
        keys.change(
            "evt_new",
            KeyRow {
                text_digest: Some(9),
                ..found
            },
        );
        let known = keys.locate(&connection, "evt_old").unwrap().unwrap();
        keys.change(
            "evt_old",
            KeyRow {
                event_row: Some(41),
                ..known
            },
        );
        assert_eq!(
            keys.locate(&connection, "evt_old")
                .unwrap()
                .unwrap()
                .event_row,
            Some(41),
            "a changed row is read as changed"
        );
        let in_file: i64 = connection
            .query_row("SELECT COUNT(*) FROM event_keys", [], |row| row.get(0))
            .unwrap();
        assert_eq!(in_file, 1, "nothing is written before the flush");

        keys.flush(&connection).unwrap();
        connection.execute_batch("COMMIT").unwrap();
        keys.commit();
        assert_eq!(
            stored(&connection, fresh.id),
            ("evt_new".to_owned(), Some(40), None, Some(9))
        );
        assert_eq!(
            stored(&connection, old),
            ("evt_old".to_owned(), Some(41), Some(7), None)
        );
        assert_eq!(
            keys.locate(&connection, "evt_new").unwrap(),
            Some(KeyRow {
                text_digest: Some(9),
                ..fresh
            })
        );
    }

    #[test]
    fn a_rolled_back_transaction_forgets_its_unwritten_rows() {
        let connection = table();
        let mut keys = EventKeys::default();
        connection.execute_batch("BEGIN").unwrap();
        keys.catch_up(&connection).unwrap();
        keys.add("evt_gone", KeyFields::default());
        connection.execute_batch("ROLLBACK").unwrap();
        keys.roll_back();
        assert_eq!(keys.locate(&connection, "evt_gone").unwrap(), None);
        connection.execute_batch("BEGIN").unwrap();
        keys.flush(&connection).unwrap();
        connection.execute_batch("COMMIT").unwrap();
        let in_file: i64 = connection
            .query_row("SELECT COUNT(*) FROM event_keys", [], |row| row.get(0))
            .unwrap();
        assert_eq!(in_file, 0);
    }

    #[test]
    fn digests_are_stable() {
        assert_eq!(digest(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(digest("login"), digest("login"));
        assert_ne!(digest("login"), digest("logout"));
    }
}
