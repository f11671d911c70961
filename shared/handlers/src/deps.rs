//! Everything a handler needs, built once per cold start and shared by every invocation.

use std::path::Path;
use std::sync::Arc;

use pipeline_adapters::config::{DEFAULT_INLINE_LIMIT_BYTES, DEFAULT_PART_EVENTS};
use pipeline_adapters::local::LocalBackend;
use pipeline_adapters::model::OnnxRiskModel;
use pipeline_adapters::{BackendKind, Config, ConfigError};
use pipeline_aws::AwsBackend;
use pipeline_domain::StorageError;
use pipeline_domain::ports::IndexFailure;
use pipeline_domain::ports::{
    AggregateTable, BatchStaging, DataLake, EventTable, Notifier, ObjectSource, ProfileTable,
    RiskModel, SearchIndex,
};
use pipeline_domain::stages::enrich::ProfileCache;
use pipeline_domain::stages::enrich::UserProfile;
use pipeline_domain::stages::store::SearchDocument;

use crate::carried::StagingScope;
use crate::kept::KeptValues;

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
    /// Staged values kept in memory for the executions of a state machine running in this
    /// process; `None` for deployed functions, whose next stage runs elsewhere.
    pub kept: Option<Arc<KeptValues>>,
    /// Most events in one part of a batch (`PIPELINE_PART_EVENTS`).
    pub part_events: usize,
    /// Largest JSON kept inline in a stage's output (`PIPELINE_INLINE_LIMIT_BYTES`).
    pub inline_limit_bytes: usize,
}

impl Dependencies {
    /// Opens the backend that `config` names and builds every port over it. Failing here
    /// fails the cold start, with the variable to fix in the message.
    pub async fn connect(config: &Config, clock: Clock) -> Result<(Self, Backend), ConfigError> {
        let model = load_model(config.model_path.as_deref())?;
        let backend = Backend::open(config).await?;
        Ok((Self::over(&backend, config, model, clock), backend))
    }

    /// The ports of an open backend, with the sizes and limits `config` sets.
    pub fn over(
        backend: &Backend,
        config: &Config,
        model: Arc<dyn RiskModel>,
        clock: Clock,
    ) -> Self {
        let mut deps = match backend {
            Backend::Local(local) => {
                local
                    .database
                    .set_idempotency_window(std::time::Duration::from_secs(
                        config.idempotency_window_seconds,
                    ));
                Self::local(local, model, config.profile_cache_ttl_seconds, clock)
            }
            Backend::Aws(aws) => Self::aws(aws, model, config.profile_cache_ttl_seconds, clock),
        };
        deps.part_events = config.part_events;
        deps.inline_limit_bytes = config.inline_limit_bytes;
        deps
    }

    /// The AWS backend's ports, with `model` for inference.
    pub fn aws(
        backend: &AwsBackend,
        model: Arc<dyn RiskModel>,
        profile_cache_ttl_seconds: u64,
        clock: Clock,
    ) -> Self {
        Self {
            objects: backend.objects.clone(),
            profiles: backend.profiles.clone(),
            events: backend.events.clone(),
            aggregates: backend.aggregates.clone(),
            lake: backend.lake.clone(),
            notifier: backend.notifier.clone(),
            search: backend
                .search_index()
                .unwrap_or_else(|| Arc::new(NotIndexed)),
            model,
            profile_cache: ProfileCache::new(
                profile_cache_ttl_seconds as i64 * 1000,
                PROFILE_CACHE_ENTRIES,
            ),
            clock,
            staging: backend.lake.clone(),
            kept: None,
            part_events: DEFAULT_PART_EVENTS,
            inline_limit_bytes: DEFAULT_INLINE_LIMIT_BYTES,
        }
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
            kept: None,
            part_events: DEFAULT_PART_EVENTS,
            inline_limit_bytes: DEFAULT_INLINE_LIMIT_BYTES,
        }
    }

    /// Keeps staged values in memory for state machines run in this process, up to
    /// `budget_bytes` of their encoded size and none over `largest_bytes` ([`KeptValues`]).
    pub fn keeping_staged_values(mut self, budget_bytes: usize, largest_bytes: usize) -> Self {
        self.kept = Some(Arc::new(KeptValues::new(budget_bytes, largest_bytes)));
        self
    }

    /// Where an invocation stages: in memory for `execution` when values are kept and the
    /// invocation belongs to an execution in this process, else the staging store alone.
    pub fn staging_scope<'a>(&'a self, execution: Option<&'a str>) -> StagingScope<'a> {
        StagingScope {
            store: self.staging.as_ref(),
            kept: self.kept.as_deref().zip(execution),
        }
    }
}

/// The search port of a deployment without a search index (`PIPELINE_SEARCH_URL` unset):
/// documents are not indexed, and summaries say search is not configured.
pub struct NotIndexed;

#[async_trait::async_trait]
impl SearchIndex for NotIndexed {
    async fn index(
        &self,
        _documents: &[SearchDocument],
    ) -> Result<Vec<IndexFailure>, StorageError> {
        Ok(Vec::new())
    }
}

/// The storage behind the ports: the embedded default or AWS.
#[derive(Clone)]
pub enum Backend {
    Local(LocalBackend),
    Aws(Arc<AwsBackend>),
}

/// Where a run's outputs went, for summaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlaces {
    pub tables: String,
    pub lake: String,
    pub notifications: String,
    pub search: String,
}

impl Backend {
    /// Opens the backend `config` names: the data directory, or the AWS resources at the
    /// endpoint the standard AWS configuration gives.
    pub async fn open(config: &Config) -> Result<Self, ConfigError> {
        match config.backend {
            BackendKind::Local => LocalBackend::open(&config.data_dir, &config.objects_dir)
                .map(Backend::Local)
                .map_err(|error| ConfigError {
                    variable: "PIPELINE_DATA_DIR".to_owned(),
                    message: error.to_string(),
                }),
            BackendKind::Aws => Ok(Backend::Aws(Arc::new(AwsBackend::connect(config).await?))),
        }
    }

    /// Loads user profiles into the profiles table; returns how many.
    pub async fn put_profiles(&self, profiles: &[UserProfile]) -> Result<usize, StorageError> {
        match self {
            Backend::Local(local) => local.database.put_profiles(profiles),
            Backend::Aws(aws) => aws.profiles.put_profiles(profiles).await,
        }
    }

    /// Finishes the work the backend deferred, so that a run's time includes it: the
    /// embedded tables fold their pending aggregate deltas; AWS writes are never deferred.
    pub fn settle(&self) -> Result<(), StorageError> {
        match self {
            Backend::Local(local) => local.database.fold_pending(),
            Backend::Aws(_) => Ok(()),
        }
    }

    /// Where each output goes.
    pub fn places(&self) -> OutputPlaces {
        match self {
            Backend::Local(local) => OutputPlaces {
                tables: local.data_dir.join("pipeline.db").display().to_string(),
                lake: local.lake.root().display().to_string(),
                notifications: local.outbox.path().display().to_string(),
                search: format!("{} (FTS5)", local.data_dir.join("pipeline.db").display()),
            },
            Backend::Aws(aws) => {
                let names = &aws.resources;
                OutputPlaces {
                    tables: format!(
                        "DynamoDB {}, {}, {}",
                        names.events_table, names.aggregates_table, names.idempotency_table
                    ),
                    lake: format!("s3://{}", names.lake_bucket),
                    notifications: format!("SNS {}", aws.topic_arn),
                    search: match &names.search_url {
                        Some(url) => format!("{url} index {}", names.search_index),
                        None => "not configured (PIPELINE_SEARCH_URL)".to_owned(),
                    },
                }
            }
        }
    }
}
