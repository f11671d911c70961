//! The embedded local default: every port under one data directory.
//!
//! ```text
//! <data dir>/pipeline.db                SQLite: events, aggregates, profiles, idempotency, search
//! <data dir>/lake/<key>                 the data lake, with exactly the S3 keys
//! <data dir>/outbox/notifications.jsonl notifications, one JSON object per line
//! <objects dir>/<bucket>/<key>          source objects for S3 events
//! ```

mod aggregates;
mod busy;
mod checkpoint;
mod database;
mod keys;
mod lake;
mod objects;
mod outbox;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use database::{Database, TableCounts, TableSnapshot};
pub use lake::FolderLake;
pub use objects::FolderObjects;
pub use outbox::Outbox;
use pipeline_domain::StorageError;

/// All local adapters, opened on one data directory.
#[derive(Clone)]
pub struct LocalBackend {
    pub data_dir: PathBuf,
    pub database: Arc<Database>,
    pub lake: Arc<FolderLake>,
    pub outbox: Arc<Outbox>,
    pub objects: Arc<FolderObjects>,
}

impl LocalBackend {
    /// Opens (creating if needed) the data directory and its database.
    pub fn open(data_dir: &Path, objects_dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            StorageError::permanent(
                format!("create data directory {}", data_dir.display()),
                error,
            )
        })?;
        let database = Arc::new(Database::open(&data_dir.join("pipeline.db"))?);
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            lake: Arc::new(FolderLake::new(data_dir.join("lake"))),
            outbox: Arc::new(Outbox::new(
                data_dir.join("outbox").join("notifications.jsonl"),
                database.clone(),
            )),
            objects: Arc::new(FolderObjects::new(objects_dir.to_path_buf())),
            database,
        })
    }
}

/// Classifies a file-system error: interruptions and time-outs may pass, the rest will not.
pub(crate) fn io_error(operation: String, error: std::io::Error) -> StorageError {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::Interrupted | ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            StorageError::transient(operation, error)
        }
        _ => StorageError::permanent(operation, error),
    }
}
