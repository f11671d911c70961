//! Notifications as a JSON Lines outbox, each id sent once.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pipeline_domain::StorageError;
use pipeline_domain::ports::Notifier;
use pipeline_domain::stages::store::Notification;

use super::{Database, io_error};

pub struct Outbox {
    path: PathBuf,
    database: Arc<Database>,
    append: Mutex<()>,
}

impl Outbox {
    pub fn new(path: PathBuf, database: Arc<Database>) -> Self {
        Self {
            path,
            database,
            append: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[async_trait]
impl Notifier for Outbox {
    /// Appends the notifications not sent before, then records their ids. A crash between the
    /// two sends again on retry: delivery is at least once, like SNS.
    async fn publish(&self, notifications: &[Notification]) -> Result<usize, StorageError> {
        let ids: Vec<&str> = notifications.iter().map(|n| n.id.as_str()).collect();
        let unsent = self.database.unsent_notifications(&ids)?;
        let fresh: Vec<&Notification> = notifications
            .iter()
            .filter(|n| unsent.contains(&n.id))
            .collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        let operation = || format!("append to outbox {}", self.path.display());
        let mut lines = Vec::new();
        for notification in &fresh {
            serde_json::to_writer(&mut lines, notification)
                .map_err(|error| StorageError::permanent(operation(), error))?;
            lines.push(b'\n');
        }
        {
            let _guard = self
                .append
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(parent) = self.path.parent() {
                std::fs::create_dir_all(parent).map_err(|error| io_error(operation(), error))?;
            }
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|error| io_error(operation(), error))?;
            file.write_all(&lines)
                .map_err(|error| io_error(operation(), error))?;
        }
        let sent: Vec<String> = fresh.iter().map(|n| n.id.clone()).collect();
        self.database.record_notifications(sent).await?;
        Ok(fresh.len())
    }
}
