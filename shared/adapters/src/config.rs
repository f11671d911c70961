//! Configuration, read once at start. A bad value fails at start and names the variable.

use std::path::PathBuf;

use thiserror::Error;

/// The default of `PIPELINE_PART_EVENTS`. The local run of a 1,000,000-event upload peaked
/// at 267 to 270 MiB with parts of 4,000 events, and at 258 to 315 MiB with parts of 5,000
/// once the stages ran faster (the Map runs four parts at once; `docs/benchmarks.md`, "A
/// 1,000,000-event S3 upload"). The parts' references are listed in one state, which bounds
/// an upload to about 480 parts: 1.9 million events with this default.
pub const DEFAULT_PART_EVENTS: usize = 4_000;
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
    /// upload) is cut into parts that go through the stages separately (default 5000).
    pub part_events: usize,
    /// `PIPELINE_INLINE_LIMIT_BYTES`: a batch whose JSON is larger than this travels by
    /// reference through the data lake's `staging/` prefix instead of inside the state's
    /// payload, which Step Functions limits to 256 KiB (default 16384).
    pub inline_limit_bytes: usize,
    /// `PIPELINE_IDEMPOTENCY_WINDOW_SECONDS`: how long a batch id or event id, once applied
    /// to the aggregates, keeps the same id from being applied again (default 604800, seven
    /// days: longer than SQS keeps a message by default and than Kinesis keeps a record).
    pub idempotency_window_seconds: u64,
    /// What the AWS backend writes to: table, bucket, topic and search names.
    pub aws: AwsResources,
}

/// The AWS resources the `aws` backend uses, each from its own variable. The defaults are
/// the names `pipeline bootstrap --backend aws` creates; the deployment templates set every
/// variable to the resources they create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsResources {
    /// `PIPELINE_EVENTS_TABLE`: processed events, key `eventId` (default `pipeline-events`).
    pub events_table: String,
    /// `PIPELINE_AGGREGATES_TABLE`: counters, key `scope` + `windowStart`, and window
    /// memberships, key `scope` + `member` (default `pipeline-aggregates`).
    pub aggregates_table: String,
    /// `PIPELINE_IDEMPOTENCY_TABLE`: applied batch and event ids and sent notifications, key
    /// `id`, expiring through the `expiresAt` TTL attribute (default `pipeline-idempotency`).
    pub idempotency_table: String,
    /// `PIPELINE_PROFILES_TABLE`: user profiles, key `userId` (default `pipeline-profiles`).
    pub profiles_table: String,
    /// `PIPELINE_LAKE_BUCKET`: the data lake, staged batches and quarantine (default
    /// `pipeline-lake`).
    pub lake_bucket: String,
    /// `PIPELINE_TOPIC_ARN`: the alerts topic. When unset, the topic named
    /// `PIPELINE_TOPIC_NAME` (default `pipeline-alerts`) is looked up at start.
    pub topic_arn: Option<String>,
    pub topic_name: String,
    /// `PIPELINE_SEARCH_URL`: the OpenSearch or Elasticsearch endpoint; unset means the
    /// deployment has no search index and documents are not indexed.
    pub search_url: Option<String>,
    /// `PIPELINE_SEARCH_INDEX`: the index name (default `pipeline-events`).
    pub search_index: String,
    /// `PIPELINE_SEARCH_SIGNING`: `none` (default), `es` (Amazon OpenSearch Service) or
    /// `aoss` (OpenSearch Serverless): the SigV4 service name requests are signed for.
    pub search_signing: Option<String>,
}

impl AwsResources {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let named = |variable: &str, default: &str| {
            non_empty(lookup(variable)).map_or_else(|| default.to_owned(), |v| v.trim().to_owned())
        };
        let search_signing = match non_empty(lookup("PIPELINE_SEARCH_SIGNING"))
            .as_deref()
            .map(str::trim)
        {
            None | Some("none") => None,
            Some(service @ ("es" | "aoss")) => Some(service.to_owned()),
            Some(other) => {
                return Err(ConfigError {
                    variable: "PIPELINE_SEARCH_SIGNING".to_owned(),
                    message: format!("{other:?} is not a signing mode; use none, es or aoss"),
                });
            }
        };
        let lake_bucket = named("PIPELINE_LAKE_BUCKET", "pipeline-lake");
        if lake_bucket.len() < 3 || lake_bucket.len() > 63 {
            return Err(ConfigError {
                variable: "PIPELINE_LAKE_BUCKET".to_owned(),
                message: format!("{lake_bucket:?} is not a bucket name (3 to 63 characters)"),
            });
        }
        Ok(Self {
            events_table: named("PIPELINE_EVENTS_TABLE", "pipeline-events"),
            aggregates_table: named("PIPELINE_AGGREGATES_TABLE", "pipeline-aggregates"),
            idempotency_table: named("PIPELINE_IDEMPOTENCY_TABLE", "pipeline-idempotency"),
            profiles_table: named("PIPELINE_PROFILES_TABLE", "pipeline-profiles"),
            lake_bucket,
            topic_arn: non_empty(lookup("PIPELINE_TOPIC_ARN")).map(|v| v.trim().to_owned()),
            topic_name: named("PIPELINE_TOPIC_NAME", "pipeline-alerts"),
            search_url: non_empty(lookup("PIPELINE_SEARCH_URL")).map(|v| v.trim().to_owned()),
            search_index: named("PIPELINE_SEARCH_INDEX", "pipeline-events"),
            search_signing,
        })
    }
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
        let aws = AwsResources::from_lookup(&lookup)?;
        Ok(Self {
            aws,
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
        assert_eq!(config.part_events, 4_000);
        assert_eq!(config.inline_limit_bytes, 16_384);
        assert_eq!(config.idempotency_window_seconds, 604_800);
        assert_eq!(config.aws.events_table, "pipeline-events");
        assert_eq!(config.aws.lake_bucket, "pipeline-lake");
        assert_eq!(config.aws.topic_arn, None);
        assert_eq!(config.aws.search_url, None);
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
        let error = config(&[("PIPELINE_SEARCH_SIGNING", "yes")]).unwrap_err();
        assert_eq!(error.variable, "PIPELINE_SEARCH_SIGNING");
        let error = config(&[("PIPELINE_LAKE_BUCKET", "l")]).unwrap_err();
        assert_eq!(error.variable, "PIPELINE_LAKE_BUCKET");
    }
}
