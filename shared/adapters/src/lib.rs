//! Adapters for the pipeline's ports.
//!
//! `local` is the embedded default: tables in SQLite, the data lake and source objects as
//! folders keyed exactly like S3, notifications as a JSON Lines outbox, search in SQLite FTS5.
//! `config` reads the backend choice once, at start, from the environment.

pub mod config;
pub mod local;
pub mod model;
pub mod parquet;

pub use config::{AwsResources, BackendKind, Config, ConfigError};
