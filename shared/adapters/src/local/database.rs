//! The tables of the local backend in one SQLite file.
//!
//! Several processes may share the file (one per function under `cargo lambda watch`), so it
//! runs in WAL mode with a busy timeout; a database still busy after that is a transient error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use pipeline_domain::StorageError;
use pipeline_domain::ports::{
    AggregateTable, ApplyOutcome, EventTable, IndexFailure, ProfileTable, SearchIndex,
};
use pipeline_domain::stages::aggregate::AggregateDeltas;
use pipeline_domain::stages::enrich::UserProfile;
use pipeline_domain::stages::inference::RiskLabel;
use pipeline_domain::stages::store::{SearchDocument, StoredEvent};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde::Serialize;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
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
    PRIMARY KEY (scope, window_start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS window_members (
    scope TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (scope, window_start, user_id)
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
CREATE TABLE IF NOT EXISTS search_documents (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_index USING fts5(text, content='search_documents', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS search_documents_insert AFTER INSERT ON search_documents BEGIN
    INSERT INTO search_index(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS search_documents_delete AFTER DELETE ON search_documents BEGIN
    INSERT INTO search_index(search_index, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER IF NOT EXISTS search_documents_update AFTER UPDATE ON search_documents BEGIN
    INSERT INTO search_index(search_index, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO search_index(rowid, text) VALUES (new.id, new.text);
END;
";

/// The SQLite database behind the local tables and the search index.
pub struct Database {
    connection: Mutex<Connection>,
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

fn classify(operation: &str, error: rusqlite::Error) -> StorageError {
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
    tx.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
        row.get::<_, i64>(0)
    })
    .map(|count| count as usize)
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

impl Database {
    /// Opens or creates the database file and its tables.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let operation = format!("open database {}", path.display());
        let connection = Connection::open(path).map_err(|error| classify(&operation, error))?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|error| classify(&operation, error))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;",
            )
            .map_err(|error| classify(&operation, error))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(|error| classify(&operation, error))?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    /// Runs `work` in one transaction on the connection. Work is short and local, so it runs
    /// on the calling thread rather than a blocking pool.
    fn transaction<T>(
        &self,
        operation: &str,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StorageError> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let transaction = connection
            .transaction()
            .map_err(|error| classify(operation, error))?;
        let value = work(&transaction).map_err(|error| classify(operation, error))?;
        transaction
            .commit()
            .map_err(|error| classify(operation, error))?;
        Ok(value)
    }

    /// Inserts or replaces profiles (the local stand-in for loading the profiles table).
    pub fn put_profiles(&self, profiles: &[UserProfile]) -> Result<usize, StorageError> {
        self.transaction("put profiles", |tx| {
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
        self.transaction("read sent notifications", |tx| {
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
    pub fn record_notifications(&self, ids: &[&str]) -> Result<(), StorageError> {
        let sent_at = now_millis();
        self.transaction("record sent notifications", |tx| {
            let mut statement = tx.prepare_cached(
                "INSERT OR IGNORE INTO sent_notifications (id, sent_at) VALUES (?1, ?2)",
            )?;
            for id in ids {
                statement.execute(params![id, sent_at])?;
            }
            Ok(())
        })
    }

    /// Event ids whose document matches an FTS5 query, best first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        self.transaction("search", |tx| {
            let mut statement = tx.prepare_cached(
                "SELECT d.event_id FROM search_index JOIN search_documents d ON d.id = search_index.rowid \
                 WHERE search_index MATCH ?1 ORDER BY rank LIMIT ?2",
            )?;
            let rows = statement.query_map(params![query, limit as i64], |row| row.get(0))?;
            rows.collect()
        })
    }

    /// How many rows the main tables hold, cheaply, for summaries.
    pub fn counts(&self) -> Result<TableCounts, StorageError> {
        self.transaction("count rows", |tx| {
            let count = |table: &str| count_rows(tx, table);
            Ok(TableCounts {
                events: count("events")?,
                aggregates: count("aggregates")?,
                applied_batches: count("applied_batches")?,
                search_documents: count("search_documents")?,
            })
        })
    }

    /// The logical content of every table.
    pub fn snapshot(&self) -> Result<TableSnapshot, StorageError> {
        self.transaction("snapshot", |tx| {
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
            let count = |table: &str| count_rows(tx, table);
            let ids = |table: &str, column: &str| -> rusqlite::Result<Vec<String>> {
                let mut statement = tx.prepare(&format!("SELECT {column} FROM {table} ORDER BY {column}"))?;
                statement.query_map([], |row| row.get(0))?.collect()
            };
            Ok(TableSnapshot {
                events,
                aggregates,
                window_members: count("window_members")?,
                applied_batches: ids("applied_batches", "batch_id")?,
                sent_notifications: ids("sent_notifications", "id")?,
                search_documents: count("search_documents")?,
            })
        })
    }
}

#[async_trait]
impl EventTable for Database {
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), StorageError> {
        self.transaction("put events", |tx| {
            let mut statement = tx.prepare_cached(
                "INSERT OR REPLACE INTO events \
                 (event_id, user_id, event_type, timestamp_ms, dt, hour, risk_score, risk_label, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for stored in events {
                let event = &stored.enriched.event;
                let label = stored.risk.as_ref().map(|risk| match risk.label {
                    RiskLabel::High => "high",
                    RiskLabel::Low => "low",
                });
                statement.execute(params![
                    event.event_id,
                    event.user_id,
                    event.event_type,
                    event.timestamp_millis(),
                    stored.enriched.partition.dt,
                    stored.enriched.partition.hour,
                    stored.risk.as_ref().map(|risk| f64::from(risk.score)),
                    label,
                    serde_json::to_string(stored).unwrap_or_default(),
                ])?;
            }
            Ok(())
        })
    }
}

#[async_trait]
impl AggregateTable for Database {
    /// One transaction: the batch id is claimed first; if it was already there nothing else
    /// happens. Counters are added; a membership new to its window adds one distinct user.
    async fn apply_once(&self, deltas: &AggregateDeltas) -> Result<ApplyOutcome, StorageError> {
        let applied_at = now_millis();
        self.transaction("apply aggregate deltas", |tx| {
            let claimed = tx.execute(
                "INSERT OR IGNORE INTO applied_batches (batch_id, applied_at) VALUES (?1, ?2)",
                params![deltas.batch_id, applied_at],
            )?;
            if claimed == 0 {
                return Ok(ApplyOutcome::AlreadyApplied);
            }
            let mut add = tx.prepare_cached(
                "INSERT INTO aggregates (scope, window_start, event_count, amount_sum, distinct_users) \
                 VALUES (?1, ?2, ?3, ?4, 0) \
                 ON CONFLICT (scope, window_start) DO UPDATE SET \
                 event_count = event_count + excluded.event_count, amount_sum = amount_sum + excluded.amount_sum",
            )?;
            for counter in &deltas.counters {
                add.execute(params![counter.scope, counter.window_start, counter.count as i64, counter.amount_sum])?;
            }
            let mut member = tx.prepare_cached(
                "INSERT OR IGNORE INTO window_members (scope, window_start, user_id) VALUES (?1, ?2, ?3)",
            )?;
            let mut distinct = tx.prepare_cached(
                "INSERT INTO aggregates (scope, window_start, event_count, amount_sum, distinct_users) \
                 VALUES (?1, ?2, 0, 0, 1) \
                 ON CONFLICT (scope, window_start) DO UPDATE SET distinct_users = distinct_users + 1",
            )?;
            for entry in &deltas.members {
                if member.execute(params![entry.scope, entry.window_start, entry.user_id])? == 1 {
                    distinct.execute(params![entry.scope, entry.window_start])?;
                }
            }
            Ok(ApplyOutcome::Applied)
        })
    }
}

#[async_trait]
impl ProfileTable for Database {
    async fn get_profiles(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, UserProfile>, StorageError> {
        self.transaction("get profiles", |tx| {
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

/// The local index keeps each document's searchable text; the event itself is in the events
/// table under the same event id, so it is not stored twice.
#[async_trait]
impl SearchIndex for Database {
    async fn index(&self, documents: &[SearchDocument]) -> Result<Vec<IndexFailure>, StorageError> {
        self.transaction("index documents", |tx| {
            let mut statement = tx.prepare_cached(
                "INSERT INTO search_documents (event_id, text) VALUES (?1, ?2) \
                 ON CONFLICT (event_id) DO UPDATE SET text = excluded.text",
            )?;
            for document in documents {
                statement.execute(params![document.event_id, document.text])?;
            }
            Ok(Vec::new())
        })
    }
}
