//! The tables of the local backend in one SQLite file.
//!
//! Several processes may share the file (one per function under `cargo lambda watch`), so it
//! runs in WAL mode with a busy timeout; a database still busy after that is a transient error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use pipeline_domain::StorageError;
use pipeline_domain::ports::{
    AggregateTable, ApplyOutcome, EventTable, IndexFailure, ProfileTable, SearchIndex,
};
use pipeline_domain::stages::aggregate::AggregateDeltas;
use pipeline_domain::stages::enrich::{Partition, UserProfile};
use pipeline_domain::stages::inference::RiskLabel;
use pipeline_domain::stages::store::{SearchDocument, StoredEvent};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde::Serialize;
use tokio::sync::oneshot;

use super::checkpoint::{RESTART_PAGES, run_checkpointer};
use super::keys::{EventKeys, KeyFields, KeyRow, digest};
use super::{aggregates, busy};
use crate::config::DEFAULT_IDEMPOTENCY_WINDOW_SECONDS;

/// Bumped whenever the tables change shape; a file made by another version is refused with
/// a message rather than misread.
const SCHEMA_VERSION: i64 = 6;

/// Versions whose files are brought up to date by [`MIGRATE_BEFORE_SCHEMA`] and
/// [`MIGRATE_AFTER_SCHEMA`], then to version 5 and 6: version 3 added
/// `applied_events`, and version 4 moved it, the search documents and the event-id index of
/// `events` into `event_keys`.
const MIGRATABLE_VERSIONS: [i64; 2] = [2, 3];

/// Version 5 keys `aggregates` by window first, and keeps each window's users in one
/// `window_users` row instead of a `window_members` row per user. Before [`SCHEMA`], the
/// old aggregates are set aside; after it, they are copied and the users gathered.
const MIGRATE_TO_5_BEFORE_SCHEMA: &str = "ALTER TABLE aggregates RENAME TO aggregates_4;";

/// The second half of the migration to version 5, after [`SCHEMA`].
const MIGRATE_TO_5_AFTER_SCHEMA: &str = "
INSERT INTO aggregates (scope, window_start, event_count, amount_sum, distinct_users)
    SELECT scope, window_start, event_count, amount_sum, distinct_users FROM aggregates_4
    ORDER BY window_start, scope;
DROP TABLE aggregates_4;
INSERT INTO window_users (scope, window_start, users)
    SELECT scope, window_start, json_group_array(user_id ORDER BY user_id)
    FROM window_members GROUP BY scope, window_start;
DROP TABLE window_members;
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    timestamp_ms REAL NOT NULL,
    dt TEXT NOT NULL,
    hour TEXT NOT NULL,
    risk_score REAL,
    risk_label TEXT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aggregates (
    scope TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    amount_sum REAL NOT NULL,
    distinct_users INTEGER NOT NULL,
    PRIMARY KEY (window_start, scope)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS window_users (
    scope TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    users TEXT NOT NULL,
    PRIMARY KEY (scope, window_start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied_batches (
    batch_id TEXT PRIMARY KEY,
    applied_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sent_notifications (
    id TEXT PRIMARY KEY,
    sent_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_keys (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_row INTEGER,
    applied_at INTEGER,
    text_digest INTEGER
);
CREATE TABLE IF NOT EXISTS pending_deltas (
    id INTEGER PRIMARY KEY,
    members_through INTEGER NOT NULL,
    deltas BLOB NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_index USING fts5(text, content = '', contentless_delete = 1);
";

/// How the search index merges its segments, set when a file that lacks it is opened (a new
/// one, or one an earlier version made: [`set_search_index_merging`]). FTS5 writes the
/// words of each commit as a new segment and by default merges four segments of a level
/// into one of the next level as soon as it can (`automerge`), so each word is written
/// again at every level; that merging was a sixth of the writer thread's time in the demo.
/// Here segments are merged only when a level holds 64 (`crisismerge`), which rewrites
/// words about half as often and leaves at most 64 segments per level for a search to
/// read: the writer thread's CPU time fell by about a tenth, and searches were no slower
/// (docs/benchmarks.md).
const SEARCH_INDEX_MERGING: &str = "
INSERT INTO search_index (search_index, rank) VALUES ('automerge', 0);
INSERT INTO search_index (search_index, rank) VALUES ('crisismerge', 64);
";

/// Gives a file whose search index has FTS5's default merging (a new file, or one an
/// earlier version made) the merging of [`SEARCH_INDEX_MERGING`], once; a file with a
/// `crisismerge` of its own keeps it.
fn set_search_index_merging(connection: &Connection) -> rusqlite::Result<()> {
    let configured = |connection: &Connection| -> rusqlite::Result<bool> {
        connection
            .query_row(
                "SELECT 1 FROM search_index_config WHERE k = 'crisismerge'",
                [],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
    };
    if configured(connection)? {
        return Ok(());
    }
    in_write_transaction(connection, |connection| {
        // Read again under the write lock: another process may have just set it.
        if configured(connection)? {
            return Ok(());
        }
        connection.execute_batch(SEARCH_INDEX_MERGING)
    })
}

/// Brings a file of version 2 or 3 to version 4, in the transaction that runs [`SCHEMA`]
/// between the two halves: the old events table is set aside (with its unique index on
/// event ids, which the copy uses), the current tables are created, and then one
/// `event_keys` row is made per event id known to `search_documents`, `applied_events` or
/// the events; a search document keeps its id, which is the rowid of its words in
/// `search_index`.
const MIGRATE_BEFORE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS applied_events (
    event_id TEXT PRIMARY KEY,
    applied_at INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE events RENAME TO events_3;
";

/// The second half of the migration, after [`SCHEMA`].
const MIGRATE_AFTER_SCHEMA: &str = "
INSERT INTO event_keys (id, event_id, text_digest)
    SELECT id, event_id, text_digest FROM search_documents ORDER BY id;
INSERT INTO event_keys (event_id)
    SELECT event_id FROM applied_events
    UNION SELECT event_id FROM events_3
    EXCEPT SELECT event_id FROM search_documents;
UPDATE event_keys SET
    applied_at = (SELECT applied_at FROM applied_events a WHERE a.event_id = event_keys.event_id),
    event_row = (SELECT id FROM events_3 e WHERE e.event_id = event_keys.event_id);
INSERT INTO events SELECT id, event_id, user_id, event_type, timestamp_ms, dt, hour,
    risk_score, risk_label, body FROM events_3;
DROP TABLE events_3;
DROP TABLE applied_events;
DROP TABLE search_documents;
";

/// Connection settings: pages of 8 KiB in a new file (a file keeps the page size it was
/// made with), 16 MiB of page cache, and WAL, which lets readers run beside the writer.
/// Most pages a commit writes are appended rows (events, their keys, the pending deltas, a
/// new search segment), so larger pages mean fewer log frames for the same rows: the
/// checkpointer used about a third less CPU than with 4 KiB and the file was 8 % smaller,
/// while the writer thread's CPU did not change measurably (docs/benchmarks.md). A
/// connection that commits checkpoints every 64 MiB of log (8,192 pages) rather than
/// SQLite's 4 MiB, because each
/// checkpoint copies and syncs every page written since the last, and index pages are
/// written over and over; the writer thread does not checkpoint at all, and leaves it to a
/// thread of its own ([`super::checkpoint`]).
const PRAGMAS: &str = "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; \
     PRAGMA wal_autocheckpoint = 8192;";

/// Writes queued while a commit runs are applied together in the next one, up to this many.
const MAX_WRITES_PER_COMMIT: usize = 256;

/// The SQLite database behind the local tables and the search index.
///
/// Writes go to one writer thread that owns a connection and commits whatever writes are
/// waiting in one transaction (group commit); when one of them fails, the group is rolled
/// back and its writes run again one by one, so the failure is that write's alone (see
/// [`run_writer`]). A write's caller hears back only after the commit, so it
/// sees the same durability as with a transaction of its own, while concurrent executions
/// share commits, and the SQLite work runs beside the stages instead of inside them. Reads
/// use a second connection, which WAL lets run while the writer writes.
pub struct Database {
    reader: Mutex<Connection>,
    /// How long an applied batch id or event id blocks the same id, in milliseconds.
    idempotency_window_millis: AtomicI64,
    /// [`aggregates::FOLD_AFTER_MEMBERS`], lower in tests.
    fold_after_members: AtomicI64,
    writes: Option<mpsc::Sender<Box<dyn Write>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

/// One aggregate row, as read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateRow {
    pub scope: String,
    pub window_start: i64,
    pub count: i64,
    pub amount_sum: f64,
    pub distinct_users: i64,
}

/// The logical content of the tables, for tests and summaries. Ordered, so two snapshots of
/// the same state compare equal.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSnapshot {
    pub events: BTreeMap<String, serde_json::Value>,
    pub aggregates: Vec<AggregateRow>,
    pub window_members: usize,
    pub applied_batches: Vec<String>,
    pub applied_events: usize,
    pub sent_notifications: Vec<String>,
    pub search_documents: usize,
}

/// Row counts of the main tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableCounts {
    pub events: usize,
    pub aggregates: usize,
    pub applied_batches: usize,
    pub search_documents: usize,
}

fn classify(operation: &str, error: &rusqlite::Error) -> StorageError {
    let busy = matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    if busy {
        StorageError::transient(operation, error)
    } else {
        StorageError::permanent(operation, error)
    }
}

/// The number of rows in `table` (a name from this file, never from input).
fn count_rows(tx: &rusqlite::Transaction<'_>, table: &str) -> rusqlite::Result<usize> {
    count_where(tx, table, "true")
}

/// The number of rows in `table` for which `condition` holds (both from this file).
fn count_where(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    condition: &str,
) -> rusqlite::Result<usize> {
    tx.query_row(
        &format!("SELECT COUNT(*) FROM {table} WHERE {condition}"),
        [],
        |row| row.get::<_, i64>(0),
    )
    .map(|count| count as usize)
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// The digest of a document's text: a replay that brings the same text leaves the index
/// alone.
fn text_digest(text: &str) -> i64 {
    digest(text) as i64
}

fn open_connection(path: &Path, operation: &str) -> Result<Connection, StorageError> {
    let connection = Connection::open(path).map_err(|error| classify(operation, &error))?;
    connection
        .busy_handler(Some(busy::wait_for_lock::<BUSY_TIMEOUT_MS>))
        .map_err(|error| classify(operation, &error))?;
    connection
        .execute_batch(PRAGMAS)
        .map_err(|error| classify(operation, &error))?;
    Ok(connection)
}

/// How long a connection waits for a lock another connection holds before its operation
/// fails as busy (a transient error), in milliseconds.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Creates the tables in a new file, brings a file of an older version up to date, and
/// refuses a file whose tables another version made. The version is read again under the
/// write lock, so two processes opening an old file at once migrate it once.
fn prepare_schema(connection: &Connection, path: &Path) -> Result<(), StorageError> {
    let operation = format!("create the tables in {}", path.display());
    let fail = |error: rusqlite::Error| classify(&operation, &error);
    let version = |connection: &Connection| -> rusqlite::Result<i64> {
        connection.query_row("PRAGMA user_version", [], |row| row.get(0))
    };
    if version(connection).map_err(fail)? == SCHEMA_VERSION {
        return Ok(());
    }
    connection.execute_batch("BEGIN IMMEDIATE").map_err(fail)?;
    let prepared = (|| {
        let found = version(connection)?;
        if found == SCHEMA_VERSION {
            return Ok(Ok(()));
        }
        let (before, after) = if MIGRATABLE_VERSIONS.contains(&found) {
            (
                format!("{MIGRATE_BEFORE_SCHEMA} {MIGRATE_TO_5_BEFORE_SCHEMA}"),
                format!("{MIGRATE_AFTER_SCHEMA} {MIGRATE_TO_5_AFTER_SCHEMA}"),
            )
        } else if found == 4 {
            (
                MIGRATE_TO_5_BEFORE_SCHEMA.to_owned(),
                MIGRATE_TO_5_AFTER_SCHEMA.to_owned(),
            )
        } else if found == 5 {
            (String::new(), String::new())
        } else {
            let tables: i64 =
                connection.query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| row.get(0))?;
            if tables > 0 {
                return Ok(Err(found));
            }
            (String::new(), String::new())
        };
        connection.execute_batch(&format!("{before} {SCHEMA} {after}"))?;
        // Version 6 keeps a batch's pending deltas as one row; every older file's pending
        // rows, if it has any, are brought over.
        aggregates::migrate_pending_rows(connection)?;
        connection.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
        Ok(Ok(()))
    })();
    match prepared {
        Ok(Ok(())) => connection.execute_batch("COMMIT").map_err(fail),
        Ok(Err(found)) => {
            let _ = connection.execute_batch("ROLLBACK");
            Err(StorageError::permanent(
                operation,
                format!(
                    "the file holds tables of schema version {found}, and this version of the \
                     pipeline reads version {SCHEMA_VERSION}; delete the data directory or \
                     choose another with --data-dir"
                ),
            ))
        }
        Err(error) => {
            let _ = connection.execute_batch("ROLLBACK");
            Err(fail(error))
        }
    }
}

/// A copy of an error for the writer, which must both stop the group and give the original
/// to the caller: the code and message are what classification and the caller need.
fn copy_error(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// One write waiting for the writer thread.
trait Write: Send {
    /// Does the work inside the open transaction. The error is kept for the caller too.
    fn apply(&mut self, connection: &Connection, keys: &mut EventKeys) -> rusqlite::Result<()>;
    /// Forgets the outcome of a transaction that was rolled back, to be applied again.
    fn reset(&mut self);
    /// Tells the caller how it ended, once the transaction is over: `failure` is why the
    /// transaction did not commit, if it did not.
    fn finish(self: Box<Self>, failure: Option<&rusqlite::Error>);
}

struct PendingWrite<T, W> {
    operation: &'static str,
    work: W,
    outcome: Option<rusqlite::Result<T>>,
    reply: oneshot::Sender<Result<T, StorageError>>,
}

impl<T, W> Write for PendingWrite<T, W>
where
    T: Send,
    W: Fn(&Connection, &mut EventKeys) -> rusqlite::Result<T> + Send,
{
    fn apply(&mut self, connection: &Connection, keys: &mut EventKeys) -> rusqlite::Result<()> {
        let outcome = (self.work)(connection, keys);
        let result = match &outcome {
            Ok(_) => Ok(()),
            Err(error) => Err(copy_error(error)),
        };
        self.outcome = Some(outcome);
        result
    }

    fn reset(&mut self) {
        self.outcome = None;
    }

    fn finish(self: Box<Self>, failure: Option<&rusqlite::Error>) {
        let operation = self.operation;
        let result = match (self.outcome, failure) {
            (Some(Err(error)), _) => Err(classify(operation, &error)),
            (_, Some(error)) => Err(classify(operation, error)),
            (Some(Ok(value)), None) => Ok(value),
            (None, None) => Err(StorageError::permanent(
                operation,
                "the write was never applied",
            )),
        };
        // The caller may have gone away (its execution was cancelled); nothing is owed then.
        let _ = self.reply.send(result);
    }
}

/// The writer thread: waits for a write, takes every other write already queued, applies
/// them in one transaction and reports to each caller after the commit. Ends when the
/// database is dropped. It owns the connection and the in-memory event-id index
/// ([`EventKeys`]), which only its transactions read and change.
///
/// Writes rarely fail, so a group runs without savepoints (each one would copy every page it
/// touches into a statement journal). When one write fails the group is rolled back and
/// every write of it runs again in a transaction of its own, so the failure is its alone.
fn run_writer(
    connection: Connection,
    writes: mpsc::Receiver<Box<dyn Write>>,
    commits: mpsc::SyncSender<()>,
) {
    let mut keys = EventKeys::default();
    while let Ok(first) = writes.recv() {
        // Commits are coming: the checkpointer lets them gather, then copies what they add to
        // the log. A nudge already waiting is enough.
        let _ = commits.try_send(());
        let mut group = vec![first];
        while group.len() < MAX_WRITES_PER_COMMIT {
            match writes.try_recv() {
                Ok(write) => group.push(write),
                Err(_) => break,
            }
        }
        if group.len() > 1 {
            if apply_group(&connection, &mut keys, &mut group).is_ok() {
                for write in group {
                    write.finish(None);
                }
                continue;
            }
            roll_back(&connection, &mut keys);
            for write in &mut group {
                write.reset();
            }
        }
        for mut write in group {
            let failure =
                apply_group(&connection, &mut keys, std::slice::from_mut(&mut write)).err();
            if failure.is_some() {
                roll_back(&connection, &mut keys);
            }
            write.finish(failure.as_ref());
        }
    }
    // What is pending is folded before the file is left to other processes and later runs;
    // a fold that fails (the file is busy) leaves it pending for the next reader or writer.
    let _ = fold_in_transaction(&connection);
}

/// Folds the pending aggregate deltas in a transaction of its own.
fn fold_in_transaction(connection: &Connection) -> rusqlite::Result<()> {
    in_write_transaction(connection, aggregates::fold)
}

/// Runs `work` in a write transaction of its own (taking the write lock at once), committed
/// when it succeeds and rolled back when it or the commit fails.
fn in_write_transaction(
    connection: &Connection,
    work: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    connection.execute_batch("BEGIN IMMEDIATE")?;
    let done = work(connection).and_then(|()| connection.execute_batch("COMMIT"));
    if done.is_err() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    done
}

/// Ends a transaction that failed, and forgets the event ids it added. It may already be
/// gone (a failed BEGIN); only an open one matters, so an error here says nothing new.
fn roll_back(connection: &Connection, keys: &mut EventKeys) {
    let _ = connection.execute_batch("ROLLBACK");
    keys.roll_back();
}

/// Applies writes in one transaction, after reading the event ids other processes added;
/// the first failing write fails it.
fn apply_group(
    connection: &Connection,
    keys: &mut EventKeys,
    group: &mut [Box<dyn Write>],
) -> rusqlite::Result<()> {
    connection.execute_batch("BEGIN IMMEDIATE")?;
    keys.catch_up(connection)?;
    for write in group.iter_mut() {
        write.apply(connection, keys)?;
    }
    keys.flush(connection)?;
    connection.execute_batch("COMMIT")?;
    keys.commit();
    Ok(())
}

impl Database {
    /// Opens or creates the database file and its tables, and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let operation = format!("open database {}", path.display());
        let writer_connection = open_connection(path, &operation)?;
        prepare_schema(&writer_connection, path)?;
        set_search_index_merging(&writer_connection)
            .map_err(|error| classify(&operation, &error))?;
        let reader = open_connection(path, &operation)?;
        // The writer's cache holds the pages it writes; the reader's holds profiles and
        // sent-notification ids, and two large caches would cost memory for nothing.
        reader
            .execute_batch("PRAGMA cache_size = -8192;")
            .map_err(|error| classify(&operation, &error))?;
        writer_connection
            .execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(|error| classify(&operation, &error))?;
        let checkpoint_connection = open_connection(path, &operation)?;
        checkpoint_connection
            .execute_batch("PRAGMA cache_size = -1024;")
            .map_err(|error| classify(&operation, &error))?;
        let (commits, nudges) = mpsc::sync_channel(1);
        let checkpointer = std::thread::Builder::new()
            .name("pipeline-db-checkpoint".to_owned())
            .spawn(move || run_checkpointer(checkpoint_connection, nudges, RESTART_PAGES))
            .map_err(|error| StorageError::permanent(operation.clone(), error))?;
        let (sender, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("pipeline-db-writer".to_owned())
            .spawn(move || run_writer(writer_connection, receiver, commits))
            .map_err(|error| StorageError::permanent(operation, error))?;
        Ok(Self {
            reader: Mutex::new(reader),
            idempotency_window_millis: AtomicI64::new(
                DEFAULT_IDEMPOTENCY_WINDOW_SECONDS as i64 * 1000,
            ),
            fold_after_members: AtomicI64::new(aggregates::FOLD_AFTER_MEMBERS),
            writes: Some(sender),
            writer: Some(writer),
            checkpointer: Some(checkpointer),
        })
    }

    /// Sets how long an applied batch id or event id keeps the same id from being applied to
    /// the aggregates again (`PIPELINE_IDEMPOTENCY_WINDOW_SECONDS`).
    pub fn set_idempotency_window(&self, window: std::time::Duration) {
        self.idempotency_window_millis
            .store(window.as_millis() as i64, Ordering::Relaxed);
    }

    /// Queues `work` for the writer thread and waits until its transaction is over. `work`
    /// may run twice: a second time alone if another write of its group failed.
    async fn write<T, W>(&self, operation: &'static str, work: W) -> Result<T, StorageError>
    where
        T: Send + 'static,
        W: Fn(&Connection, &mut EventKeys) -> rusqlite::Result<T> + Send + 'static,
    {
        let stopped = || StorageError::permanent(operation, "the database writer has stopped");
        let (reply, answer) = oneshot::channel();
        let pending = PendingWrite {
            operation,
            work,
            outcome: None,
            reply,
        };
        self.writes
            .as_ref()
            .ok_or_else(stopped)?
            .send(Box::new(pending))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `work` in one transaction on the reading connection. Reads are short and local,
    /// so they run on the calling thread rather than a blocking pool.
    fn read<T>(
        &self,
        operation: &str,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StorageError> {
        let mut connection = self
            .reader
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let transaction = connection
            .transaction()
            .map_err(|error| classify(operation, &error))?;
        let value = work(&transaction).map_err(|error| classify(operation, &error))?;
        transaction
            .commit()
            .map_err(|error| classify(operation, &error))?;
        Ok(value)
    }

    /// Inserts or replaces profiles (the local stand-in for loading the profiles table).
    /// A bulk load outside any execution, so it writes through the reading connection in a
    /// transaction of its own; SQLite serialises it with the writer thread's commits.
    pub fn put_profiles(&self, profiles: &[UserProfile]) -> Result<usize, StorageError> {
        self.read("put profiles", |tx| {
            let mut statement = tx.prepare_cached(
                "INSERT OR REPLACE INTO profiles (user_id, body) VALUES (?1, ?2)",
            )?;
            for profile in profiles {
                let body = serde_json::to_string(profile).unwrap_or_default();
                statement.execute(params![profile.user_id, body])?;
            }
            Ok(profiles.len())
        })
    }

    /// The ids among `ids` that were never sent.
    pub fn unsent_notifications(&self, ids: &[&str]) -> Result<HashSet<String>, StorageError> {
        self.read("read sent notifications", |tx| {
            let mut statement =
                tx.prepare_cached("SELECT 1 FROM sent_notifications WHERE id = ?1")?;
            let mut unsent = HashSet::new();
            for id in ids {
                if statement
                    .query_row(params![id], |_| Ok(()))
                    .optional()?
                    .is_none()
                {
                    unsent.insert((*id).to_owned());
                }
            }
            Ok(unsent)
        })
    }

    /// Records notification ids as sent.
    pub async fn record_notifications(&self, ids: Vec<String>) -> Result<(), StorageError> {
        let sent_at = now_millis();
        self.write("record sent notifications", move |connection, _| {
            let mut statement = connection.prepare_cached(
                "INSERT OR IGNORE INTO sent_notifications (id, sent_at) VALUES (?1, ?2)",
            )?;
            for id in &ids {
                statement.execute(params![id, sent_at])?;
            }
            Ok(())
        })
        .await
    }

    /// Event ids whose document matches an FTS5 query, best first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        self.read("search", |tx| {
            let mut statement = tx.prepare_cached(
                "SELECT k.event_id FROM search_index JOIN event_keys k ON k.id = search_index.rowid \
                 WHERE search_index MATCH ?1 ORDER BY rank LIMIT ?2",
            )?;
            let rows = statement.query_map(params![query, limit as i64], |row| row.get(0))?;
            rows.collect()
        })
    }

    /// Folds the pending aggregate deltas of every process into the aggregate tables, in a
    /// write transaction of the reading connection, so that what is read next includes them.
    pub fn fold_pending(&self) -> Result<(), StorageError> {
        let operation = "fold pending aggregate deltas";
        let connection = self
            .reader
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        fold_in_transaction(&connection).map_err(|error| classify(operation, &error))
    }

    /// How many rows the main tables hold, cheaply, for summaries.
    pub fn counts(&self) -> Result<TableCounts, StorageError> {
        self.fold_pending()?;
        self.read("count rows", |tx| {
            let count = |table: &str| count_rows(tx, table);
            Ok(TableCounts {
                events: count("events")?,
                aggregates: count("aggregates")?,
                applied_batches: count("applied_batches")?,
                search_documents: count_where(tx, "event_keys", "text_digest IS NOT NULL")?,
            })
        })
    }

    /// The logical content of every table.
    pub fn snapshot(&self) -> Result<TableSnapshot, StorageError> {
        self.fold_pending()?;
        self.read("snapshot", |tx| {
            let mut events = BTreeMap::new();
            let mut statement = tx.prepare("SELECT event_id, body FROM events")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let body: String = row.get(1)?;
                events.insert(row.get(0)?, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null));
            }
            let mut statement = tx.prepare(
                "SELECT scope, window_start, event_count, amount_sum, distinct_users FROM aggregates ORDER BY scope, window_start",
            )?;
            let aggregates = statement
                .query_map([], |row| {
                    Ok(AggregateRow {
                        scope: row.get(0)?,
                        window_start: row.get(1)?,
                        count: row.get(2)?,
                        amount_sum: row.get(3)?,
                        distinct_users: row.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let ids = |table: &str, column: &str| -> rusqlite::Result<Vec<String>> {
                let mut statement = tx.prepare(&format!("SELECT {column} FROM {table} ORDER BY {column}"))?;
                statement.query_map([], |row| row.get(0))?.collect()
            };
            Ok(TableSnapshot {
                events,
                aggregates,
                window_members: tx.query_row(
                    "SELECT COALESCE(SUM(json_array_length(users)), 0) FROM window_users",
                    [],
                    |row| row.get::<_, i64>(0),
                )? as usize,
                applied_batches: ids("applied_batches", "batch_id")?,
                applied_events: count_where(tx, "event_keys", "applied_at IS NOT NULL")?,
                sent_notifications: ids("sent_notifications", "id")?,
                search_documents: count_where(tx, "event_keys", "text_digest IS NOT NULL")?,
            })
        })
    }
}

impl Drop for Database {
    /// Closes the queue and waits for the writer to finish what it holds, so a database
    /// opened again on the same file sees every write that was answered.
    fn drop(&mut self) {
        drop(self.writes.take());
        if let Some(writer) = self.writer.take() {
            // A writer that panicked has already failed its callers; there is nothing to add.
            let _ = writer.join();
        }
        // The writer's end closed the checkpointer's channel: it makes a last checkpoint.
        if let Some(checkpointer) = self.checkpointer.take() {
            let _ = checkpointer.join();
        }
    }
}

/// Room for an event row's JSON besides its data object (a demo row is about 750 bytes
/// besides it).
const ROW_BYTES_BESIDE_DATA: usize = 1024;

/// An event row, encoded on the caller's thread so the writer only writes.
struct EventRow {
    event_id: String,
    user_id: String,
    event_type: String,
    timestamp_millis: f64,
    /// Shared with the batch's other events of the same hour.
    partition: Arc<Partition>,
    risk_score: Option<f64>,
    risk_label: Option<&'static str>,
    body: String,
}

impl EventRow {
    fn of(stored: &StoredEvent) -> Result<Self, StorageError> {
        let event = &stored.enriched.event;
        // Sized for the whole row at once: grown from empty, the buffer was reallocated
        // and copied about eight times per row. The data object's text is the part that
        // varies; the rest of a row is under 1 KiB.
        let mut body = Vec::with_capacity(ROW_BYTES_BESIDE_DATA + event.data.json().len());
        stored
            .write_json(&mut body)
            .map_err(|error| StorageError::permanent("encode an event row", error))?;
        // The JSON writer writes only UTF-8.
        let body = String::from_utf8(body)
            .map_err(|error| StorageError::permanent("encode an event row", error))?;
        Ok(Self {
            event_id: event.event_id.clone(),
            user_id: event.user_id.clone(),
            event_type: event.event_type.clone(),
            timestamp_millis: event.timestamp_millis(),
            partition: Arc::clone(&stored.enriched.partition),
            risk_score: stored.risk.as_ref().map(|risk| f64::from(risk.score)),
            risk_label: stored.risk.as_ref().map(|risk| match risk.label {
                RiskLabel::High => "high",
                RiskLabel::Low => "low",
            }),
            body,
        })
    }
}

#[async_trait]
impl EventTable for Database {
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), StorageError> {
        let rows = events
            .iter()
            .map(EventRow::of)
            .collect::<Result<Vec<_>, _>>()?;
        self.write("put events", move |connection, keys| {
            // With the row of an event already stored, this replaces it in place; without
            // (a null id), it appends a row.
            let mut put = connection.prepare_cached(
                "INSERT OR REPLACE INTO events \
                 (id, event_id, user_id, event_type, timestamp_ms, dt, hour, risk_score, risk_label, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for row in &rows {
                let known = keys.locate(connection, &row.event_id)?;
                let stored = known.and_then(|key| key.event_row);
                put.execute(params![
                    stored,
                    row.event_id,
                    row.user_id,
                    row.event_type,
                    row.timestamp_millis,
                    row.partition.dt,
                    row.partition.hour,
                    row.risk_score,
                    row.risk_label,
                    row.body,
                ])?;
                if stored.is_some() {
                    continue;
                }
                let event_row = Some(connection.last_insert_rowid());
                match known {
                    Some(key) => keys.change(&row.event_id, KeyRow { event_row, ..key }),
                    None => {
                        keys.add(
                            &row.event_id,
                            KeyFields {
                                event_row,
                                ..KeyFields::default()
                            },
                        );
                    }
                }
            }
            Ok(())
        })
        .await
    }
}

/// Claims a batch id: it succeeds (one row changed) when the id was never applied, or was
/// applied before `?3`, outside the idempotency window.
const CLAIM_BATCH: &str = "INSERT INTO applied_batches (batch_id, applied_at) VALUES (?1, ?2) \
     ON CONFLICT (batch_id) DO UPDATE SET applied_at = excluded.applied_at WHERE applied_at < ?3";

/// Claims a batch id: true when it is now claimed for this application.
fn claim_batch(
    connection: &Connection,
    batch_id: &str,
    now: i64,
    expired_before: i64,
) -> rusqlite::Result<bool> {
    let mut statement = connection.prepare_cached(CLAIM_BATCH)?;
    Ok(statement.execute(params![batch_id, now, expired_before])? == 1)
}

/// Claims an event id as [`claim_batch`] claims a batch id: true when the id was never
/// applied, or was applied before `expired_before`.
fn claim_event(
    connection: &Connection,
    keys: &mut EventKeys,
    event_id: &str,
    now: i64,
    expired_before: i64,
) -> rusqlite::Result<bool> {
    let applied_at = Some(now);
    match keys.locate(connection, event_id)? {
        Some(key) if key.applied_at.is_some_and(|at| at >= expired_before) => Ok(false),
        Some(key) => {
            keys.change(event_id, KeyRow { applied_at, ..key });
            Ok(true)
        }
        None => {
            keys.add(
                event_id,
                KeyFields {
                    applied_at,
                    ..KeyFields::default()
                },
            );
            Ok(true)
        }
    }
}

#[async_trait]
impl AggregateTable for Database {
    /// One write: the batch id is claimed first; if it was applied within the idempotency
    /// window nothing else happens. Then each event id is claimed, and events applied within
    /// the window (redelivered in another batch) are left out of the sums. What is left is
    /// appended as one pending row, and folded into the aggregates once enough are pending
    /// ([`aggregates`]).
    async fn apply_once(&self, deltas: Arc<AggregateDeltas>) -> Result<ApplyOutcome, StorageError> {
        let applied_at = now_millis();
        let expired_before = applied_at - self.idempotency_window_millis.load(Ordering::Relaxed);
        let fold_after = self.fold_after_members.load(Ordering::Relaxed);
        self.write("apply aggregate deltas", move |connection, keys| {
            if !claim_batch(connection, &deltas.batch_id, applied_at, expired_before)? {
                return Ok(ApplyOutcome::AlreadyApplied);
            }
            let mut applied_before = HashSet::new();
            for contribution in &deltas.contributions {
                let event_id = contribution.event_id.as_str();
                if !claim_event(connection, keys, event_id, applied_at, expired_before)? {
                    applied_before.insert(event_id);
                }
            }
            let fresh;
            let deltas = if applied_before.is_empty() {
                &deltas
            } else {
                fresh = deltas.without(&applied_before);
                &fresh
            };
            if aggregates::append_pending(connection, deltas)? >= fold_after {
                aggregates::fold(connection)?;
            }
            Ok(ApplyOutcome::Applied)
        })
        .await
    }
}

#[async_trait]
impl ProfileTable for Database {
    async fn get_profiles(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, UserProfile>, StorageError> {
        self.read("get profiles", |tx| {
            let mut statement =
                tx.prepare_cached("SELECT body FROM profiles WHERE user_id = ?1")?;
            let mut found = HashMap::new();
            for user_id in user_ids {
                let body: Option<String> = statement
                    .query_row(params![user_id], |row| row.get(0))
                    .optional()?;
                if let Some(profile) =
                    body.and_then(|body| serde_json::from_str::<UserProfile>(&body).ok())
                {
                    found.insert(user_id.clone(), profile);
                }
            }
            Ok(found)
        })
    }
}

/// The local index keeps words only (a contentless FTS5 table) and, per event id, the
/// digest of the text it indexed; the event itself is in the events table under the same
/// event id, so it is not stored twice. A document whose text did not change since it was
/// indexed (a replay) costs one lookup; a changed one is deleted and indexed again.
#[async_trait]
impl SearchIndex for Database {
    async fn index(&self, documents: &[SearchDocument]) -> Result<Vec<IndexFailure>, StorageError> {
        let documents: Vec<(String, String, i64)> = documents
            .iter()
            .map(|document| {
                let digest = text_digest(&document.text);
                (document.event_id.clone(), document.text.clone(), digest)
            })
            .collect();
        self.write("index documents", move |connection, keys| {
            let mut unindex =
                connection.prepare_cached("DELETE FROM search_index WHERE rowid = ?1")?;
            let mut index = connection
                .prepare_cached("INSERT INTO search_index (rowid, text) VALUES (?1, ?2)")?;
            for (event_id, text, digest) in &documents {
                let text_digest = Some(*digest);
                let id = match keys.locate(connection, event_id)? {
                    Some(key) if key.text_digest == text_digest => continue,
                    Some(key) => {
                        if key.text_digest.is_some() {
                            unindex.execute(params![key.id])?;
                        }
                        keys.change(event_id, KeyRow { text_digest, ..key });
                        key.id
                    }
                    None => {
                        keys.add(
                            event_id,
                            KeyFields {
                                text_digest,
                                ..KeyFields::default()
                            },
                        )
                        .id
                    }
                };
                index.execute(params![id, text])?;
            }
            Ok(Vec::new())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(event_id: &str, text: &str) -> SearchDocument {
        SearchDocument {
            event_id: event_id.to_owned(),
            text: text.to_owned(),
            body: serde_json::Value::Null,
        }
    }

    fn open(dir: &tempfile::TempDir) -> Database {
        Database::open(&dir.path().join("pipeline.db")).expect("the database opens")
    }

    /// A new file, made by the database and closed again, opened as a plain connection.
    fn made_file(dir: &tempfile::TempDir) -> Connection {
        drop(open(dir));
        Connection::open(dir.path().join("pipeline.db")).unwrap()
    }

    #[test]
    fn the_pending_count_is_read_from_the_last_pending_row_without_scanning_the_table() {
        use pipeline_domain::stages::aggregate::aggregate;
        let dir = tempfile::tempdir().unwrap();
        let file = made_file(&dir);
        let count = |file: &Connection| -> i64 {
            file.query_row(aggregates::PENDING_MEMBERS, [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(count(&file), 0);
        // Each event adds two memberships (the `all` window's and its type's).
        for (batch, user) in [("bat_1", "u1"), ("bat_2", "u2"), ("bat_3", "u3")] {
            let deltas = aggregate(batch, &[user_event(batch, user, 60_000)]);
            aggregates::append_pending(&file, &deltas).unwrap();
        }
        assert_eq!(count(&file), 6);
        let rows: i64 = file
            .query_row("SELECT COUNT(*) FROM pending_deltas", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 3);
        let mut plan = file
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                aggregates::PENDING_MEMBERS
            ))
            .unwrap();
        let steps: Vec<String> = plan
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            steps
                .iter()
                .all(|step| !step.starts_with("SCAN pending_deltas")),
            "{steps:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_write_fails_alone_among_the_writes_committed_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let database = open(&dir);
        // The first write holds the writer, so the next three queue up and form one group.
        let hold = database.write("hold the writer", |_, _| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            Ok(())
        });
        let good = |id: &'static str| {
            database.write("record", move |connection, _| {
                connection.execute(
                    "INSERT INTO sent_notifications (id, sent_at) VALUES (?1, 0)",
                    params![id],
                )
            })
        };
        let bad = database.write("write to a missing table", |connection, _| {
            connection.execute("INSERT INTO no_such_table VALUES (1)", [])
        });
        let (held, first, failed, second) = tokio::join!(hold, good("before"), bad, good("after"));
        held.unwrap();
        assert_eq!(first.unwrap(), 1);
        assert_eq!(second.unwrap(), 1);
        let error = failed.unwrap_err();
        assert!(error.to_string().contains("no_such_table"), "{error}");
        assert_eq!(
            database.snapshot().unwrap().sent_notifications,
            vec!["after".to_owned(), "before".to_owned()]
        );
    }

    #[tokio::test]
    async fn concurrent_writes_all_land_and_a_reopened_file_sees_them() {
        let dir = tempfile::tempdir().unwrap();
        {
            let database = std::sync::Arc::new(open(&dir));
            let mut tasks = Vec::new();
            for task in 0..8 {
                let database = database.clone();
                tasks.push(tokio::spawn(async move {
                    for number in 0..25 {
                        let ids = vec![format!("n-{task}-{number}")];
                        database.record_notifications(ids).await.unwrap();
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        }
        let database = open(&dir);
        assert_eq!(database.snapshot().unwrap().sent_notifications.len(), 200);
    }

    #[tokio::test]
    async fn the_checkpoint_thread_copies_commits_into_the_file_while_it_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipeline.db");
        let database = open(&dir);
        let before = std::fs::metadata(&path).unwrap().len();
        for batch in 0..20 {
            let ids = (0..500)
                .map(|number| format!("n-{batch}-{number}"))
                .collect();
            database.record_notifications(ids).await.unwrap();
        }
        // The writer never checkpoints; only the checkpoint thread makes the file grow.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the log into the file"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(
            database.snapshot().unwrap().sent_notifications.len(),
            10_000
        );
    }

    #[tokio::test]
    async fn the_index_finds_words_and_follows_changed_text_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let database = open(&dir);
        database
            .index(&[
                document("evt-1", "login user-00001 smartphone Android"),
                document("evt-2", "purchase user-00002 pc Windows EUR"),
            ])
            .await
            .unwrap();
        assert_eq!(database.search("android", 10).unwrap(), vec!["evt-1"]);
        assert_eq!(
            database.search("\"user-00002\"", 10).unwrap(),
            vec!["evt-2"]
        );

        // A replay brings the same text: nothing changes.
        database
            .index(&[document("evt-1", "login user-00001 smartphone Android")])
            .await
            .unwrap();
        assert_eq!(database.search("android", 10).unwrap(), vec!["evt-1"]);

        // New text replaces the old words of that event only.
        database
            .index(&[document("evt-1", "logout user-00001 tablet iOS")])
            .await
            .unwrap();
        assert!(database.search("android", 10).unwrap().is_empty());
        assert_eq!(database.search("tablet", 10).unwrap(), vec!["evt-1"]);
        assert_eq!(database.search("windows", 10).unwrap(), vec!["evt-2"]);
        assert_eq!(database.counts().unwrap().search_documents, 2);
    }

    #[test]
    fn a_new_file_has_pages_of_8_kib_and_an_older_file_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |file: &Connection| -> i64 {
            file.query_row("PRAGMA page_size", [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(page_size(&made_file(&dir)), 8192);

        let older = tempfile::tempdir().unwrap();
        let path = older.path().join("pipeline.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x);",
            )
            .unwrap();
        // A file made by another program is refused, but opening it changes nothing.
        let _ = Database::open(&path);
        assert_eq!(page_size(&Connection::open(&path).unwrap()), 4096);
    }

    #[test]
    fn search_segments_merge_only_when_a_level_is_full_in_new_and_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = made_file(&dir);
        let setting = |key: &str| -> i64 {
            file.query_row(
                "SELECT v FROM search_index_config WHERE k = ?1",
                [key],
                |row| row.get(0),
            )
            .unwrap()
        };
        assert_eq!((setting("automerge"), setting("crisismerge")), (0, 64));

        // A file an earlier version made has FTS5's defaults: opening it sets the merging.
        file.execute_batch(
            "DELETE FROM search_index_config WHERE k IN ('automerge', 'crisismerge')",
        )
        .unwrap();
        drop(open(&dir));
        assert_eq!((setting("automerge"), setting("crisismerge")), (0, 64));

        // A merging set by hand is left as it is.
        file.execute_batch(
            "INSERT INTO search_index (search_index, rank) VALUES ('crisismerge', 16)",
        )
        .unwrap();
        drop(open(&dir));
        assert_eq!(setting("crisismerge"), 16);
    }

    #[test]
    fn a_file_with_tables_of_another_schema_version_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipeline.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT);")
            .unwrap();
        let error = Database::open(&path).err().expect("the file is refused");
        let message = error.to_string();
        assert!(message.contains("schema version 0"), "{message}");
        assert!(message.contains("--data-dir"), "{message}");
    }

    fn user_event(id: &str, user: &str, timestamp: u64) -> pipeline_domain::event::UserEvent {
        pipeline_domain::event::UserEvent {
            event_id: id.to_owned(),
            user_id: user.to_owned(),
            event_type: "click".to_owned(),
            timestamp: serde_json::Number::from(timestamp),
            data: Default::default(),
        }
    }

    /// The `all` window's count and distinct users, and the memberships of every window.
    fn all_window(database: &Database) -> (i64, i64, usize) {
        let snapshot = database.snapshot().unwrap();
        let all = snapshot
            .aggregates
            .iter()
            .find(|row| row.scope == "all")
            .cloned()
            .unwrap();
        (all.count, all.distinct_users, snapshot.window_members)
    }

    fn total_count(database: &Database) -> i64 {
        database
            .snapshot()
            .unwrap()
            .aggregates
            .iter()
            .filter(|row| row.scope == "all")
            .map(|row| row.count)
            .sum()
    }

    #[tokio::test]
    async fn an_event_redelivered_in_another_batch_is_counted_once() {
        use pipeline_domain::stages::aggregate::aggregate;
        let dir = tempfile::tempdir().unwrap();
        let database = open(&dir);
        let first = [
            user_event("e1", "u1", 60_000),
            user_event("e2", "u2", 61_000),
        ];
        let second = [
            user_event("e2", "u2", 61_000),
            user_event("e3", "u3", 62_000),
        ];
        let applied = database
            .apply_once(aggregate("bat_first", &first).into())
            .await
            .unwrap();
        assert_eq!(applied, ApplyOutcome::Applied);
        let applied = database
            .apply_once(aggregate("bat_second", &second).into())
            .await
            .unwrap();
        assert_eq!(applied, ApplyOutcome::Applied);
        assert_eq!(total_count(&database), 3);
        let snapshot = database.snapshot().unwrap();
        assert_eq!(snapshot.applied_events, 3);
        let all = snapshot
            .aggregates
            .iter()
            .find(|row| row.scope == "all")
            .unwrap();
        assert_eq!(all.distinct_users, 3);
        // The same batch again is refused whole.
        let again = database
            .apply_once(aggregate("bat_second", &second).into())
            .await
            .unwrap();
        assert_eq!(again, ApplyOutcome::AlreadyApplied);
        assert_eq!(total_count(&database), 3);
    }

    #[tokio::test]
    async fn ids_are_applied_again_once_the_window_has_passed() {
        use pipeline_domain::stages::aggregate::aggregate;
        let dir = tempfile::tempdir().unwrap();
        let database = open(&dir);
        database.set_idempotency_window(std::time::Duration::from_millis(1));
        let events = [user_event("e1", "u1", 60_000)];
        let deltas = aggregate("bat_1", &events);
        database.apply_once(deltas.clone().into()).await.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let again = database.apply_once(deltas.into()).await.unwrap();
        assert_eq!(again, ApplyOutcome::Applied);
        assert_eq!(total_count(&database), 2);
    }

    /// The tables of schema version 3, as that version created them.
    const SCHEMA_3: &str = "
        CREATE TABLE events (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL, event_type TEXT NOT NULL, timestamp_ms REAL NOT NULL,
            dt TEXT NOT NULL, hour TEXT NOT NULL, risk_score REAL, risk_label TEXT,
            body TEXT NOT NULL);
        CREATE TABLE aggregates (scope TEXT NOT NULL, window_start INTEGER NOT NULL,
            event_count INTEGER NOT NULL, amount_sum REAL NOT NULL,
            distinct_users INTEGER NOT NULL, PRIMARY KEY (scope, window_start)) WITHOUT ROWID;
        CREATE TABLE window_members (scope TEXT NOT NULL, window_start INTEGER NOT NULL,
            user_id TEXT NOT NULL, PRIMARY KEY (scope, window_start, user_id)) WITHOUT ROWID;
        CREATE TABLE applied_batches (batch_id TEXT PRIMARY KEY,
            applied_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE applied_events (event_id TEXT PRIMARY KEY,
            applied_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE profiles (user_id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE sent_notifications (id TEXT PRIMARY KEY,
            sent_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE search_documents (id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE, text_digest INTEGER NOT NULL);
        CREATE VIRTUAL TABLE search_index USING fts5(text, content = '',
            contentless_delete = 1);
    ";

    /// A file of `version` holding: `e1` stored, indexed and applied; `e2` stored and
    /// applied; `e3` indexed only (its document id 7, so ids are kept, not renumbered).
    fn old_file(path: &Path, version: i64) {
        let connection = Connection::open(path).unwrap();
        let schema = if version == 2 {
            SCHEMA_3.replace(
                "CREATE TABLE applied_events (event_id TEXT PRIMARY KEY,
            applied_at INTEGER NOT NULL) WITHOUT ROWID;",
                "",
            )
        } else {
            SCHEMA_3.to_owned()
        };
        assert_eq!(schema == SCHEMA_3, version == 3);
        connection
            .execute_batch(&format!("{schema} PRAGMA user_version = {version};"))
            .unwrap();
        for (id, event_id) in [(1, "e1"), (2, "e2")] {
            connection
                .execute(
                    "INSERT INTO events (id, event_id, user_id, event_type, timestamp_ms, dt, \
                     hour, body) VALUES (?1, ?2, 'u1', 'click', 60000, '1970-01-01', '00', ?3)",
                    params![id, event_id, format!("{{\"id\":\"{event_id}\"}}")],
                )
                .unwrap();
        }
        let now = now_millis();
        if version == 3 {
            for event_id in ["e1", "e2"] {
                connection
                    .execute(
                        "INSERT INTO applied_events (event_id, applied_at) VALUES (?1, ?2)",
                        params![event_id, now],
                    )
                    .unwrap();
            }
        }
        for (id, event_id, text) in [(3, "e1", "login android"), (7, "e3", "purchase windows")] {
            connection
                .execute(
                    "INSERT INTO search_documents (id, event_id, text_digest) VALUES (?1, ?2, ?3)",
                    params![id, event_id, text_digest(text)],
                )
                .unwrap();
            connection
                .execute(
                    "INSERT INTO search_index (rowid, text) VALUES (?1, ?2)",
                    params![id, text],
                )
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_file_of_schema_version_3_keeps_its_events_claims_and_documents() {
        use pipeline_domain::stages::aggregate::aggregate;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipeline.db");
        old_file(&path, 3);
        let database = Database::open(&path).expect("a version 3 file opens");
        let snapshot = database.snapshot().unwrap();
        assert_eq!(snapshot.events.keys().collect::<Vec<_>>(), vec!["e1", "e2"]);
        assert_eq!(snapshot.events["e2"], serde_json::json!({"id": "e2"}));
        assert_eq!(snapshot.applied_events, 2);
        assert_eq!(snapshot.search_documents, 2);
        assert_eq!(database.search("android", 10).unwrap(), vec!["e1"]);
        assert_eq!(database.search("windows", 10).unwrap(), vec!["e3"]);

        // The claims moved: e1 and e2 are not counted again, e4 is.
        let events = [
            user_event("e1", "u1", 60_000),
            user_event("e2", "u1", 60_000),
            user_event("e4", "u2", 61_000),
        ];
        database
            .apply_once(aggregate("bat_after", &events).into())
            .await
            .unwrap();
        assert_eq!(total_count(&database), 1);

        // The documents moved with their ids: the same text is left alone, new text replaces
        // the words of its event only.
        database
            .index(&[
                document("e1", "login android"),
                document("e3", "refund tablet"),
            ])
            .await
            .unwrap();
        assert_eq!(database.search("android", 10).unwrap(), vec!["e1"]);
        assert!(database.search("windows", 10).unwrap().is_empty());
        assert_eq!(database.search("tablet", 10).unwrap(), vec!["e3"]);
        let snapshot = database.snapshot().unwrap();
        assert_eq!(snapshot.search_documents, 2);
        assert_eq!(snapshot.applied_events, 3);
        assert_eq!(snapshot.events.len(), 2);

        // Opened again, the file is of the current version and holds one row per id.
        drop(database);
        let connection = Connection::open(&path).unwrap();
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let (rows, ids): (i64, i64) = connection
            .query_row(
                "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM event_keys",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((rows, ids), (4, 4));
    }

    /// Turns a file this version made back into one of version 4: aggregates keyed by
    /// scope first, and a `window_members` row per membership.
    fn as_version_4(path: &Path) {
        let connection = Connection::open(path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE window_members (scope TEXT NOT NULL, window_start INTEGER NOT NULL,
                     user_id TEXT NOT NULL, PRIMARY KEY (scope, window_start, user_id)) WITHOUT ROWID;
                 INSERT INTO window_members SELECT w.scope, w.window_start, j.value
                     FROM window_users w, json_each(w.users) j;
                 DROP TABLE window_users;
                 CREATE TABLE aggregates_4 (scope TEXT NOT NULL, window_start INTEGER NOT NULL,
                     event_count INTEGER NOT NULL, amount_sum REAL NOT NULL,
                     distinct_users INTEGER NOT NULL, PRIMARY KEY (scope, window_start))
                     WITHOUT ROWID;
                 INSERT INTO aggregates_4 SELECT * FROM aggregates;
                 DROP TABLE aggregates;
                 ALTER TABLE aggregates_4 RENAME TO aggregates;
                 PRAGMA user_version = 4;",
            )
            .unwrap();
    }

    #[tokio::test]
    async fn a_file_of_schema_version_4_keeps_its_window_memberships() {
        use pipeline_domain::stages::aggregate::aggregate;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipeline.db");
        let database = Database::open(&path).unwrap();
        let events = [
            user_event("e1", "u2", 60_000),
            user_event("e2", "u1", 61_000),
        ];
        database
            .apply_once(aggregate("bat_1", &events).into())
            .await
            .unwrap();
        assert_eq!(all_window(&database), (2, 2, 4));
        drop(database);
        as_version_4(&path);

        let database = Database::open(&path).expect("a version 4 file opens");
        assert_eq!(all_window(&database), (2, 2, 4));
        // u1 is known to the window already; u0 and u3 are new to it, and sort around u1 and u2.
        let events = [
            user_event("e3", "u1", 62_000),
            user_event("e4", "u3", 63_000),
            user_event("e5", "u0", 64_000),
        ];
        database
            .apply_once(aggregate("bat_2", &events).into())
            .await
            .unwrap();
        assert_eq!(all_window(&database), (5, 4, 8));
        drop(database);
        let connection = Connection::open(&path).unwrap();
        let (version, users): (i64, String) = connection
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version), users FROM window_users \
                 WHERE scope = 'all'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(users, r#"["u0","u1","u2","u3"]"#);
        let aggregates: String = connection
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'aggregates'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(
            aggregates.contains("PRIMARY KEY (window_start, scope)"),
            "{aggregates}"
        );
    }

    #[tokio::test]
    async fn a_file_of_schema_version_5_keeps_its_pending_deltas() {
        use pipeline_domain::stages::aggregate::aggregate;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipeline.db");
        let database = Database::open(&path).unwrap();
        let events = [user_event("e1", "u1", 60_000)];
        database
            .apply_once(aggregate("bat_1", &events).into())
            .await
            .unwrap();
        drop(database);
        // Version 5 kept a row per pending counter and membership; a process that stopped
        // before its fold left them: here two more events of u2 and u1 in the same window.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DROP TABLE pending_deltas;
                 CREATE TABLE pending_counters (id INTEGER PRIMARY KEY, scope TEXT NOT NULL,
                     window_start INTEGER NOT NULL, event_count INTEGER NOT NULL,
                     amount_sum REAL NOT NULL);
                 CREATE TABLE pending_members (id INTEGER PRIMARY KEY, scope TEXT NOT NULL,
                     window_start INTEGER NOT NULL, user_id TEXT NOT NULL);
                 INSERT INTO pending_counters (scope, window_start, event_count, amount_sum)
                     VALUES ('all', 60000, 2, 7.5), ('user:u2', 60000, 1, 7.5),
                     ('user:u1', 60000, 1, 0);
                 INSERT INTO pending_members (scope, window_start, user_id)
                     VALUES ('all', 60000, 'u2'), ('all', 60000, 'u1');
                 PRAGMA user_version = 5;",
            )
            .unwrap();

        let database = Database::open(&path).expect("a version 5 file opens");
        let snapshot = database.snapshot().unwrap();
        let row = |scope: &str| {
            snapshot
                .aggregates
                .iter()
                .find(|row| row.scope == scope)
                .map(|row| (row.count, row.amount_sum, row.distinct_users))
        };
        assert_eq!(row("all"), Some((3, 7.5, 2)));
        assert_eq!(row("user:u1"), Some((2, 0.0, 0)));
        assert_eq!(row("user:u2"), Some((1, 7.5, 0)));
        drop(database);
        let connection = Connection::open(&path).unwrap();
        let (version, old_tables): (i64, i64) = connection
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version), \
                 (SELECT COUNT(*) FROM sqlite_master WHERE name IN ('pending_counters', 'pending_members'))",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((version, old_tables), (SCHEMA_VERSION, 0));
    }

    #[test]
    fn a_file_of_schema_version_2_opens_without_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipeline.db");
        old_file(&path, 2);
        let database = Database::open(&path).expect("a version 2 file opens");
        let snapshot = database.snapshot().unwrap();
        assert_eq!(snapshot.applied_events, 0);
        assert_eq!(snapshot.search_documents, 2);
        assert_eq!(snapshot.events.len(), 2);
    }

    #[tokio::test]
    async fn event_ids_claimed_in_a_group_that_failed_are_claimed_once_when_it_runs_again() {
        use pipeline_domain::stages::aggregate::aggregate;
        let dir = tempfile::tempdir().unwrap();
        let database = open(&dir);
        let first = [
            user_event("e1", "u1", 60_000),
            user_event("e2", "u2", 60_000),
        ];
        let second = [
            user_event("e2", "u2", 60_000),
            user_event("e3", "u3", 60_000),
        ];
        let hold = database.write("hold the writer", |_, _| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            Ok(())
        });
        let bad = database.write("write to a missing table", |connection, _| {
            connection.execute("INSERT INTO no_such_table VALUES (1)", [])
        });
        let (held, applied_first, failed, applied_second) = tokio::join!(
            hold,
            database.apply_once(aggregate("bat_first", &first).into()),
            bad,
            database.apply_once(aggregate("bat_second", &second).into()),
        );
        held.unwrap();
        assert!(failed.is_err());
        assert_eq!(applied_first.unwrap(), ApplyOutcome::Applied);
        assert_eq!(applied_second.unwrap(), ApplyOutcome::Applied);
        assert_eq!(total_count(&database), 3);
        assert_eq!(database.snapshot().unwrap().applied_events, 3);
    }

    #[tokio::test]
    async fn pending_deltas_fold_into_distinct_users_counted_once_and_a_closed_file_holds_none() {
        use pipeline_domain::stages::aggregate::aggregate;
        let dir = tempfile::tempdir().unwrap();
        let database = open(&dir);
        database
            .apply_once(aggregate("bat_1", &[user_event("e1", "u1", 60_000)]).into())
            .await
            .unwrap();
        assert_eq!(all_window(&database), (1, 1, 2));
        // u1 again, after its membership was folded, and u2 twice while both are pending.
        for (batch, events) in [
            ("bat_2", vec![user_event("e2", "u1", 61_000)]),
            ("bat_3", vec![user_event("e3", "u2", 62_000)]),
            ("bat_4", vec![user_event("e4", "u2", 63_000)]),
        ] {
            database
                .apply_once(aggregate(batch, &events).into())
                .await
                .unwrap();
        }
        assert_eq!(all_window(&database), (4, 2, 4));
        database
            .apply_once(aggregate("bat_5", &[user_event("e5", "u3", 64_000)]).into())
            .await
            .unwrap();
        drop(database);
        let connection = Connection::open(dir.path().join("pipeline.db")).unwrap();
        let pending: i64 = connection
            .query_row("SELECT COUNT(*) FROM pending_deltas", [], |row| row.get(0))
            .unwrap();
        assert_eq!(pending, 0);
        let (count, distinct): (i64, i64) = connection
            .query_row(
                "SELECT event_count, distinct_users FROM aggregates WHERE scope = 'all'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((count, distinct), (5, 3));
    }

    #[tokio::test]
    async fn the_writer_folds_once_enough_memberships_are_pending() {
        use pipeline_domain::stages::aggregate::aggregate;
        let dir = tempfile::tempdir().unwrap();
        let database = open(&dir);
        database.fold_after_members.store(3, Ordering::Relaxed);
        let file = Connection::open(dir.path().join("pipeline.db")).unwrap();
        let pending = || -> i64 {
            file.query_row(aggregates::PENDING_MEMBERS, [], |row| row.get(0))
                .unwrap()
        };
        database
            .apply_once(aggregate("bat_1", &[user_event("e1", "u1", 60_000)]).into())
            .await
            .unwrap();
        assert_eq!(pending(), 2);
        database
            .apply_once(aggregate("bat_2", &[user_event("e2", "u2", 60_000)]).into())
            .await
            .unwrap();
        assert_eq!(pending(), 0);
        let distinct: i64 = file
            .query_row(
                "SELECT distinct_users FROM aggregates WHERE scope = 'all'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(distinct, 2);
    }

    #[tokio::test]
    async fn ids_claimed_before_the_file_was_reopened_are_not_claimed_again() {
        use pipeline_domain::stages::aggregate::aggregate;
        let dir = tempfile::tempdir().unwrap();
        let events = [user_event("e1", "u1", 60_000)];
        {
            let database = open(&dir);
            database
                .apply_once(aggregate("bat_1", &events).into())
                .await
                .unwrap();
        }
        // Another process, or a later run: its writer reads the ids the file holds first.
        let database = open(&dir);
        database
            .apply_once(aggregate("bat_2", &events).into())
            .await
            .unwrap();
        assert_eq!(total_count(&database), 1);
        assert_eq!(database.snapshot().unwrap().applied_events, 1);
    }
}
