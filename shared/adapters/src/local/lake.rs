//! The data lake as a folder: `<data dir>/lake/<key>`, written atomically.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use pipeline_domain::StorageError;
use pipeline_domain::ports::{BatchStaging, DataLake};
use pipeline_domain::stages::store::StoredEvent;

use super::io_error;
use crate::parquet::encode_events;

pub struct FolderLake {
    root: PathBuf,
}

impl FolderLake {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// Writes to a temporary file beside the target, then renames it over the target, so
    /// readers see the old object or the new one, never half of one. Each write has its own
    /// temporary file, so concurrent writers of one key (in this process or another) never
    /// rename each other's.
    fn write(&self, key: &str, body: &[u8]) -> Result<(), StorageError> {
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let path = self.root.join(key);
        let operation = || format!("write lake object {key}");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| io_error(operation(), error))?;
        }
        let mut temporary = path.clone().into_os_string();
        temporary.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, body).map_err(|error| io_error(operation(), error))?;
        std::fs::rename(&temporary, &path).map_err(|error| io_error(operation(), error))
    }
}

#[async_trait]
impl DataLake for FolderLake {
    async fn put_events(&self, key: &str, events: &[StoredEvent]) -> Result<(), StorageError> {
        let body = encode_events(events)
            .map_err(|error| StorageError::permanent(format!("encode Parquet for {key}"), error))?;
        self.write(key, &body)
    }

    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), StorageError> {
        self.write(key, &body)
    }
}

/// Staged batches live in the lake under their `staging/` keys, as they do in the S3 bucket.
#[async_trait]
impl BatchStaging for FolderLake {
    async fn put_staged(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
        self.write(key, &body)
    }

    async fn get_staged(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        std::fs::read(self.root.join(key))
            .map_err(|error| io_error(format!("read staged object {key}"), error))
    }

    async fn delete_staged(&self, prefix: &str) -> Result<usize, StorageError> {
        let path = self.root.join(prefix);
        let operation = || format!("delete staged objects under {prefix}");
        if !path.exists() {
            return Ok(0);
        }
        if path.is_file() {
            std::fs::remove_file(&path).map_err(|error| io_error(operation(), error))?;
            return Ok(1);
        }
        let count = std::fs::read_dir(&path)
            .map_err(|error| io_error(operation(), error))?
            .count();
        std::fs::remove_dir_all(&path).map_err(|error| io_error(operation(), error))?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writes_of_one_key_all_succeed_and_leave_one_whole_object() {
        let dir = tempfile::tempdir().unwrap();
        let lake = std::sync::Arc::new(FolderLake::new(dir.path().to_path_buf()));
        let writers: Vec<_> = (0..8)
            .map(|writer| {
                let lake = lake.clone();
                std::thread::spawn(move || {
                    for round in 0..50 {
                        let body = format!("writer {writer} round {round}\n").repeat(100);
                        lake.write("rejected/dt=2023-11-14/bat_same.jsonl", body.as_bytes())
                            .expect("every write succeeds");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let text =
            std::fs::read_to_string(dir.path().join("rejected/dt=2023-11-14/bat_same.jsonl"))
                .unwrap();
        let first = text.lines().next().unwrap();
        assert!(
            text.lines().all(|line| line == first),
            "one writer's object, whole"
        );
        let leftovers = std::fs::read_dir(dir.path().join("rejected/dt=2023-11-14"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 1, "no temporary files are left behind");
    }
}
