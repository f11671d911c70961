//! Everything a handler needs, built once per cold start and shared by every invocation.

use std::path::Path;
use std::sync::Arc;

use pipeline_adapters::config::{DEFAULT_INLINE_LIMIT_BYTES, DEFAULT_PART_EVENTS};
use pipeline_adapters::local::LocalBackend;
use pipeline_adapters::model::OnnxRiskModel;
use pipeline_adapters::{BackendKind, Config, ConfigError};
use pipeline_domain::ports::{
    AggregateTable, BatchStaging, DataLake, EventTable, Notifier, ObjectSource, ProfileTable,
    RiskModel, SearchIndex,
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

/// Loads the risk model once: the file at `path` (with its card beside it), or the model
/// embedded in the binary. A model that fails its checks fails the start.
pub fn load_model(path: Option<&Path>) -> Result<Arc<dyn RiskModel>, ConfigError> {
    let loaded = match path {
        Some(path) => OnnxRiskModel::from_path(path),
        None => OnnxRiskModel::embedded(),
    };
    let model = loaded.map_err(|error| ConfigError {
        variable: "PIPELINE_MODEL_PATH".to_owned(),
        message: match path {
            Some(path) => format!("{}: {error}", path.display()),
            None => format!("the embedded model: {error}"),
        },
    })?;
    Ok(Arc::new(model))
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
    pub model: Arc<dyn RiskModel>,
    pub profile_cache: ProfileCache,
    pub clock: Clock,
    /// Where batches too large for a state's payload wait between stages.
    pub staging: Arc<dyn BatchStaging>,
    /// Most events in one part of a batch (`PIPELINE_PART_EVENTS`).
    pub part_events: usize,
    /// Largest JSON kept inline in a stage's output (`PIPELINE_INLINE_LIMIT_BYTES`).
    pub inline_limit_bytes: usize,
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
        let model = load_model(config.model_path.as_deref())?;
        let backend =
            LocalBackend::open(&config.data_dir, &config.objects_dir).map_err(|error| {
                ConfigError {
                    variable: "PIPELINE_DATA_DIR".to_owned(),
                    message: error.to_string(),
                }
            })?;
        backend
            .database
            .set_idempotency_window(std::time::Duration::from_secs(
                config.idempotency_window_seconds,
            ));
        let mut deps = Self::local(&backend, model, config.profile_cache_ttl_seconds, clock);
        deps.part_events = config.part_events;
        deps.inline_limit_bytes = config.inline_limit_bytes;
        Ok(deps)
    }

    /// The embedded backend's ports, with `model` for inference.
    pub fn local(
        backend: &LocalBackend,
        model: Arc<dyn RiskModel>,
        profile_cache_ttl_seconds: u64,
        clock: Clock,
    ) -> Self {
        Self {
            objects: backend.objects.clone(),
            profiles: backend.database.clone(),
            events: backend.database.clone(),
            aggregates: backend.database.clone(),
            lake: backend.lake.clone(),
            notifier: backend.outbox.clone(),
            search: backend.database.clone(),
            model,
            profile_cache: ProfileCache::new(
                profile_cache_ttl_seconds as i64 * 1000,
                PROFILE_CACHE_ENTRIES,
            ),
            clock,
            staging: backend.lake.clone(),
            part_events: DEFAULT_PART_EVENTS,
            inline_limit_bytes: DEFAULT_INLINE_LIMIT_BYTES,
        }
    }
}
