//! Configuration, read once at start. A bad value fails at start and names the variable.

use std::path::PathBuf;

use thiserror::Error;

/// The default of `PIPELINE_PART_EVENTS`.
pub const DEFAULT_PART_EVENTS: usize = 10_000;
/// The default of `PIPELINE_INLINE_LIMIT_BYTES`.
pub const DEFAULT_INLINE_LIMIT_BYTES: usize = 16_384;

/// Which adapters back the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// The embedded default: everything under the data directory.
    Local,
    /// AWS services through the SDK.
    Aws,
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

/// Everything the handlers need to build their ports.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `PIPELINE_BACKEND`: `local` (default) or `aws`.
    pub backend: BackendKind,
    /// `PIPELINE_DATA_DIR`: where the local backend keeps its data (default `.pipeline`).
    pub data_dir: PathBuf,
    /// `PIPELINE_OBJECTS_DIR`: where the local backend finds S3 source objects, as
    /// `<dir>/<bucket>/<key>` (default `<data dir>/objects`).
    pub objects_dir: PathBuf,
    /// `PIPELINE_PROFILE_CACHE_TTL_SECONDS`: how long a warm container trusts a cached profile
    /// (default 300).
    pub profile_cache_ttl_seconds: u64,
    /// `PIPELINE_MODEL_PATH`: the risk model file; unset means no model is configured.
    pub model_path: Option<PathBuf>,
    /// `PIPELINE_PART_EVENTS`: most events in one part of a batch; a larger batch (an S3
    /// upload) is cut into parts that go through the stages separately (default 10000).
    pub part_events: usize,
    /// `PIPELINE_INLINE_LIMIT_BYTES`: a batch whose JSON is larger than this travels by
    /// reference through the data lake's `staging/` prefix instead of inside the state's
    /// payload, which Step Functions limits to 256 KiB (default 16384).
    pub inline_limit_bytes: usize,
    /// `PIPELINE_IDEMPOTENCY_WINDOW_SECONDS`: how long a batch id or event id, once applied
    /// to the aggregates, keeps the same id from being applied again (default 604800, seven
    /// days: longer than SQS keeps a message by default and than Kinesis keeps a record).
    pub idempotency_window_seconds: u64,
}

/// The default of `PIPELINE_IDEMPOTENCY_WINDOW_SECONDS`.
pub const DEFAULT_IDEMPOTENCY_WINDOW_SECONDS: u64 = 7 * 24 * 3600;

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let backend = match lookup("PIPELINE_BACKEND").as_deref().map(str::trim) {
            None | Some("") | Some("local") => BackendKind::Local,
            Some("aws") => BackendKind::Aws,
            Some(other) => {
                return Err(ConfigError {
                    variable: "PIPELINE_BACKEND".to_owned(),
                    message: format!("{other:?} is not a backend; use \"local\" or \"aws\""),
                });
            }
        };
        let data_dir = non_empty(lookup("PIPELINE_DATA_DIR"))
            .map_or_else(|| PathBuf::from(".pipeline"), PathBuf::from);
        let objects_dir = non_empty(lookup("PIPELINE_OBJECTS_DIR"))
            .map_or_else(|| data_dir.join("objects"), PathBuf::from);
        let profile_cache_ttl_seconds =
            match non_empty(lookup("PIPELINE_PROFILE_CACHE_TTL_SECONDS")) {
                None => 300,
                Some(text) => text.trim().parse().map_err(|_| ConfigError {
                    variable: "PIPELINE_PROFILE_CACHE_TTL_SECONDS".to_owned(),
                    message: format!("{text:?} is not a whole number of seconds"),
                })?,
            };
        let model_path = non_empty(lookup("PIPELINE_MODEL_PATH")).map(PathBuf::from);
        let part_events = positive(&lookup, "PIPELINE_PART_EVENTS", DEFAULT_PART_EVENTS)?;
        let inline_limit_bytes = positive(
            &lookup,
            "PIPELINE_INLINE_LIMIT_BYTES",
            DEFAULT_INLINE_LIMIT_BYTES,
        )?;
        let idempotency_window_seconds = positive(
            &lookup,
            "PIPELINE_IDEMPOTENCY_WINDOW_SECONDS",
            DEFAULT_IDEMPOTENCY_WINDOW_SECONDS as usize,
        )? as u64;
        if inline_limit_bytes > 65_536 {
            return Err(ConfigError {
                variable: "PIPELINE_INLINE_LIMIT_BYTES".to_owned(),
                message: format!(
                    "{inline_limit_bytes} is over 65536: several inline batches share one state payload, which is limited to 256 KiB"
                ),
            });
        }
        Ok(Self {
            backend,
            data_dir,
            objects_dir,
            profile_cache_ttl_seconds,
            model_path,
            part_events,
            inline_limit_bytes,
            idempotency_window_seconds,
        })
    }
}

/// A whole number of at least 1 from `variable`, or `default` when it is unset.
fn positive(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &str,
    default: usize,
) -> Result<usize, ConfigError> {
    match non_empty(lookup(variable)) {
        None => Ok(default),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(value) if value > 0 => Ok(value),
            _ => Err(ConfigError {
                variable: variable.to_owned(),
                message: format!("{text:?} is not a whole number of at least 1"),
            }),
        },
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_backend_under_dot_pipeline() {
        let config = config(&[]).unwrap();
        assert_eq!(config.backend, BackendKind::Local);
        assert_eq!(config.data_dir, PathBuf::from(".pipeline"));
        assert_eq!(config.objects_dir, PathBuf::from(".pipeline/objects"));
        assert_eq!(config.profile_cache_ttl_seconds, 300);
        assert_eq!(config.model_path, None);
        assert_eq!(config.part_events, 10_000);
        assert_eq!(config.inline_limit_bytes, 16_384);
        assert_eq!(config.idempotency_window_seconds, 604_800);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let error = config(&[("PIPELINE_BACKEND", "cloud")]).unwrap_err();
        assert_eq!(error.variable, "PIPELINE_BACKEND");
        let error = config(&[("PIPELINE_PROFILE_CACHE_TTL_SECONDS", "soon")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("PIPELINE_PROFILE_CACHE_TTL_SECONDS: ")
        );
        let error = config(&[("PIPELINE_IDEMPOTENCY_WINDOW_SECONDS", "a week")]).unwrap_err();
        assert_eq!(error.variable, "PIPELINE_IDEMPOTENCY_WINDOW_SECONDS");
        let error = config(&[("PIPELINE_PART_EVENTS", "0")]).unwrap_err();
        assert_eq!(error.variable, "PIPELINE_PART_EVENTS");
        let error = config(&[("PIPELINE_INLINE_LIMIT_BYTES", "300000")]).unwrap_err();
        assert_eq!(error.variable, "PIPELINE_INLINE_LIMIT_BYTES");
    }
}
