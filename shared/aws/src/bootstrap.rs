//! `pipeline bootstrap --backend aws`: creates, idempotently, the tables, bucket and topic
//! that the configuration names, at the configured endpoint. Against moto or LocalStack
//! this makes a local run possible; in an account the templates create the same resources.

use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use pipeline_adapters::AwsResources;
use pipeline_domain::StorageError;
use serde::Serialize;

use crate::AwsClients;
use crate::error::classify;

/// What bootstrapping found or made, one line per resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provisioned {
    pub kind: &'static str,
    pub name: String,
    /// True when this run created it, false when it was there already.
    pub created: bool,
}

/// The report of one bootstrap, and the topic's ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    pub resources: Vec<Provisioned>,
    pub topic_arn: String,
}

/// A table's key: the partition key, and the sort key if it has one (all strings).
struct TableKey {
    partition: &'static str,
    sort: Option<&'static str>,
}

/// Creates every resource `names` lists that does not exist yet.
pub async fn bootstrap(
    clients: &AwsClients,
    names: &AwsResources,
) -> Result<Bootstrap, StorageError> {
    let mut resources = Vec::new();
    let tables = [
        (
            &names.events_table,
            TableKey {
                partition: "eventId",
                sort: None,
            },
            false,
        ),
        (
            &names.aggregates_table,
            TableKey {
                partition: "pk",
                sort: Some("sk"),
            },
            false,
        ),
        (
            &names.idempotency_table,
            TableKey {
                partition: "id",
                sort: None,
            },
            true,
        ),
        (
            &names.profiles_table,
            TableKey {
                partition: "userId",
                sort: None,
            },
            false,
        ),
    ];
    for (name, key, expires) in tables {
        let created = create_table(&clients.dynamodb, name, &key).await?;
        if expires && created {
            enable_ttl(&clients.dynamodb, name).await?;
        }
        resources.push(Provisioned {
            kind: "table",
            name: name.clone(),
            created,
        });
    }
    let created = create_bucket(clients, &names.lake_bucket).await?;
    resources.push(Provisioned {
        kind: "bucket",
        name: names.lake_bucket.clone(),
        created,
    });
    let (topic_arn, created) = create_topic(clients, names).await?;
    resources.push(Provisioned {
        kind: "topic",
        name: topic_arn.clone(),
        created,
    });
    Ok(Bootstrap {
        resources,
        topic_arn,
    })
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    key: &TableKey,
) -> Result<bool, StorageError> {
    let operation = || format!("create table {name}");
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|error| StorageError::permanent(operation(), error))
    };
    let element = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|error| StorageError::permanent(operation(), error))
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(key.partition)?)
        .key_schema(element(key.partition, KeyType::Hash)?);
    if let Some(sort) = key.sort {
        request = request
            .attribute_definitions(attribute(sort)?)
            .key_schema(element(sort, KeyType::Range)?);
    }
    match request.send().await {
        Ok(_) => Ok(true),
        Err(error)
            if matches!(
                error.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) =>
        {
            Ok(false)
        }
        Err(error) => Err(classify(operation(), error)),
    }
}

async fn enable_ttl(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), StorageError> {
    let operation = || format!("enable TTL on table {name}");
    let specification = TimeToLiveSpecification::builder()
        .attribute_name("expiresAt")
        .enabled(true)
        .build()
        .map_err(|error| StorageError::permanent(operation(), error))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(specification)
        .send()
        .await
        .map_err(|error| classify(operation(), error))?;
    Ok(())
}

/// S3 in us-east-1 answers a repeated `CreateBucket` of one's own bucket with success, so
/// whether the bucket is new is asked with `HeadBucket` first.
async fn create_bucket(clients: &AwsClients, name: &str) -> Result<bool, StorageError> {
    if clients.s3.head_bucket().bucket(name).send().await.is_ok() {
        return Ok(false);
    }
    let mut request = clients.s3.create_bucket().bucket(name);
    // us-east-1 is the one region that takes no location constraint.
    if let Some(region) = clients
        .config
        .region()
        .map(|region| region.as_ref().to_owned())
        && region != "us-east-1"
    {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(true),
        Err(error)
            if matches!(
                error.as_service_error(),
                Some(CreateBucketError::BucketAlreadyOwnedByYou(_))
            ) =>
        {
            Ok(false)
        }
        Err(error) => Err(classify(format!("create bucket {name}"), error)),
    }
}

/// SNS's `CreateTopic` is idempotent by name and returns the ARN either way, so whether the
/// topic is new is read from the topic list first.
async fn create_topic(
    clients: &AwsClients,
    names: &AwsResources,
) -> Result<(String, bool), StorageError> {
    let existing = crate::sns::topic_arn_by_name(&clients.sns, &names.topic_name).await?;
    let output = clients
        .sns
        .create_topic()
        .name(&names.topic_name)
        .send()
        .await
        .map_err(|error| classify(format!("create topic {}", names.topic_name), error))?;
    let arn = output.topic_arn.ok_or_else(|| {
        StorageError::permanent("create topic", "the answer carried no topic ARN")
    })?;
    Ok((arn, existing.is_none()))
}
