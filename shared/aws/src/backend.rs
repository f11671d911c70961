//! Every AWS adapter, built once per cold start from the configuration.

use std::sync::Arc;
use std::time::Duration;

use pipeline_adapters::{AwsResources, Config, ConfigError};
use pipeline_domain::ports::SearchIndex;
use tracing::warn;

use crate::AwsClients;
use crate::dynamodb::{
    DynamoAggregateTable, DynamoEventTable, DynamoProfileTable, IdempotencyTable,
};
use crate::opensearch::{OpenSearchIndex, OpenSearchSettings, Signing};
use crate::s3::{S3Lake, S3Objects};
use crate::sns::{SnsNotifier, topic_arn_by_name};

/// The AWS backend's adapters, and where each output goes.
pub struct AwsBackend {
    pub clients: AwsClients,
    pub resources: AwsResources,
    pub topic_arn: String,
    pub events: Arc<DynamoEventTable>,
    pub aggregates: Arc<DynamoAggregateTable>,
    pub profiles: Arc<DynamoProfileTable>,
    pub lake: Arc<S3Lake>,
    pub objects: Arc<S3Objects>,
    pub notifier: Arc<SnsNotifier>,
    /// The OpenSearch index when `PIPELINE_SEARCH_URL` names one.
    pub search: Option<Arc<OpenSearchIndex>>,
}

impl AwsBackend {
    /// Loads the standard AWS configuration and builds every adapter.
    pub async fn connect(config: &Config) -> Result<Self, ConfigError> {
        Self::with_clients(AwsClients::load().await, config).await
    }

    /// Builds every adapter over `clients`. The alerts topic is looked up by name when its
    /// ARN is not configured, which fails the start if it does not exist.
    pub async fn with_clients(clients: AwsClients, config: &Config) -> Result<Self, ConfigError> {
        let resources = config.aws.clone();
        let topic_arn = match &resources.topic_arn {
            Some(arn) => arn.clone(),
            None => topic_arn_by_name(&clients.sns, &resources.topic_name)
                .await
                .map_err(|error| ConfigError {
                    variable: "PIPELINE_TOPIC_NAME".to_owned(),
                    message: error.to_string(),
                })?
                .ok_or_else(|| ConfigError {
                    variable: "PIPELINE_TOPIC_NAME".to_owned(),
                    message: format!(
                        "no topic named {:?} at the configured endpoint; set PIPELINE_TOPIC_ARN or run `pipeline bootstrap --backend aws`",
                        resources.topic_name
                    ),
                })?,
        };
        let claims = IdempotencyTable::new(
            clients.dynamodb.clone(),
            &resources.idempotency_table,
            Duration::from_secs(config.idempotency_window_seconds),
        );
        let objects = S3Objects::new(&clients.config).map_err(|error| ConfigError {
            variable: "PIPELINE_BACKEND".to_owned(),
            message: error.to_string(),
        })?;
        let search = match &resources.search_url {
            Some(url) => Some(Arc::new(OpenSearchIndex::new(search_settings(
                &clients, &resources, url,
            ))?)),
            None => {
                warn!("PIPELINE_SEARCH_URL is not set: events are not indexed for search.");
                None
            }
        };
        Ok(Self {
            events: Arc::new(DynamoEventTable::new(
                clients.dynamodb.clone(),
                &resources.events_table,
            )),
            aggregates: Arc::new(DynamoAggregateTable::new(
                clients.dynamodb.clone(),
                &resources.aggregates_table,
                claims.clone(),
            )),
            profiles: Arc::new(DynamoProfileTable::new(
                clients.dynamodb.clone(),
                &resources.profiles_table,
            )),
            lake: Arc::new(S3Lake::new(clients.s3.clone(), &resources.lake_bucket)),
            objects: Arc::new(objects),
            notifier: Arc::new(SnsNotifier::new(
                clients.sns.clone(),
                topic_arn.clone(),
                Arc::new(claims),
            )),
            search,
            topic_arn,
            resources,
            clients,
        })
    }

    /// The search port: OpenSearch, or no index when none is configured.
    pub fn search_index(&self) -> Option<Arc<dyn SearchIndex>> {
        self.search
            .clone()
            .map(|index| index as Arc<dyn SearchIndex>)
    }
}

fn search_settings(
    clients: &AwsClients,
    resources: &AwsResources,
    url: &str,
) -> OpenSearchSettings {
    let signing = resources.search_signing.as_ref().and_then(|service| {
        let region = clients.config.region()?.as_ref().to_owned();
        let credentials = clients.config.credentials_provider()?;
        Some(Signing {
            service: service.clone(),
            region,
            credentials,
        })
    });
    OpenSearchSettings {
        signing,
        ..OpenSearchSettings::new(url, &resources.search_index)
    }
}
