//! Source objects for S3 events, read from `<objects dir>/<bucket>/<key>` as a stream.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use pipeline_domain::StorageError;
use pipeline_domain::ports::ObjectSource;

use super::io_error;

pub struct FolderObjects {
    root: PathBuf,
}

impl FolderObjects {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The file behind `bucket/key`; keys that would leave the folder are refused.
    pub fn path_of(&self, bucket: &str, key: &str) -> Result<PathBuf, StorageError> {
        let operation = || format!("open s3://{bucket}/{key}");
        let relative = Path::new(bucket).join(key);
        let escapes = relative
            .components()
            .any(|part| !matches!(part, Component::Normal(_)));
        if bucket.is_empty() || key.is_empty() || escapes {
            return Err(StorageError::permanent(
                operation(),
                "the bucket or key is empty or leaves the objects folder",
            ));
        }
        Ok(self.root.join(relative))
    }
}

impl ObjectSource for FolderObjects {
    fn open(&self, bucket: &str, key: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        let path = self.path_of(bucket, key)?;
        let file = File::open(&path).map_err(|error| {
            io_error(
                format!("open s3://{bucket}/{key} at {}", path.display()),
                error,
            )
        })?;
        Ok(Box::new(file))
    }
}
