//! Everything a handler needs, built once per cold start and shared by every invocation.

use std::sync::Arc;

use pipeline_adapters::local::LocalBackend;
use pipeline_adapters::{BackendKind, Config, ConfigError};
use pipeline_domain::ports::{
    AggregateTable, DataLake, EventTable, Notifier, ObjectSource, ProfileTable, RiskModel,
    SearchIndex,
};
use pipeline_domain::stages::enrich::ProfileCache;

/// Most profiles one warm container keeps.
const PROFILE_CACHE_ENTRIES: usize = 100_000;

/// A source of the current time in milliseconds; fixed in tests so outputs are reproducible.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_millis())
}

/// The ports and shared state of every stage.
pub struct Dependencies {
    pub objects: Arc<dyn ObjectSource>,
    pub profiles: Arc<dyn ProfileTable>,
    pub events: Arc<dyn EventTable>,
    pub aggregates: Arc<dyn AggregateTable>,
    pub lake: Arc<dyn DataLake>,
    pub notifier: Arc<dyn Notifier>,
    pub search: Arc<dyn SearchIndex>,
    pub model: Option<Arc<dyn RiskModel>>,
    pub profile_cache: ProfileCache,
    pub clock: Clock,
}

impl Dependencies {
    /// Builds the ports that `config` names. Failing here fails the cold start, with the
    /// variable to fix in the message.
    pub fn from_config(config: &Config, clock: Clock) -> Result<Self, ConfigError> {
        if config.backend == BackendKind::Aws {
            return Err(ConfigError {
                variable: "PIPELINE_BACKEND".to_owned(),
                message: "the aws backend is not part of this build yet; use \"local\"".to_owned(),
            });
        }
        if let Some(path) = &config.model_path {
            return Err(ConfigError {
                variable: "PIPELINE_MODEL_PATH".to_owned(),
                message: format!(
                    "{} is set, but this build cannot load risk models yet; unset it",
                    path.display()
                ),
            });
        }
        let backend =
            LocalBackend::open(&config.data_dir, &config.objects_dir).map_err(|error| {
                ConfigError {
                    variable: "PIPELINE_DATA_DIR".to_owned(),
                    message: error.to_string(),
                }
            })?;
        Ok(Self::local(
            &backend,
            config.profile_cache_ttl_seconds,
            clock,
        ))
    }

    /// The embedded backend's ports.
    pub fn local(backend: &LocalBackend, profile_cache_ttl_seconds: u64, clock: Clock) -> Self {
        Self {
            objects: backend.objects.clone(),
            profiles: backend.database.clone(),
            events: backend.database.clone(),
            aggregates: backend.database.clone(),
            lake: backend.lake.clone(),
            notifier: backend.outbox.clone(),
            search: backend.database.clone(),
            model: None,
            profile_cache: ProfileCache::new(
                profile_cache_ttl_seconds as i64 * 1000,
                PROFILE_CACHE_ENTRIES,
            ),
            clock,
        }
    }
}
