//! User profiles for enrichment: one item per user, key `userId`, the profile's fields as
//! attributes. Read with `BatchGetItem`; written by `pipeline import-profiles`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use pipeline_domain::StorageError;
use pipeline_domain::ports::ProfileTable;
use pipeline_domain::stages::enrich::UserProfile;
use serde_json::Value;
use tracing::warn;

use super::batch::{get_all, write_all};
use super::item::{from_item, to_item};
use crate::backoff::Backoff;

pub struct DynamoProfileTable {
    client: Client,
    table: String,
    backoff: Backoff,
}

impl DynamoProfileTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            backoff: Backoff::default(),
        }
    }

    /// Writes profiles, replacing any with the same user id; returns how many.
    pub async fn put_profiles(&self, profiles: &[UserProfile]) -> Result<usize, StorageError> {
        let requests = profiles
            .iter()
            .map(|profile| {
                let Ok(Value::Object(fields)) = serde_json::to_value(profile) else {
                    return Err(StorageError::permanent(
                        "encode a profile item",
                        "a profile did not encode as an object",
                    ));
                };
                let put = PutRequest::builder()
                    .set_item(Some(to_item(&fields)))
                    .build()
                    .map_err(|error| StorageError::permanent("build a profile write", error))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        write_all(&self.client, &self.table, requests, self.backoff).await?;
        Ok(profiles.len())
    }
}

#[async_trait]
impl ProfileTable for DynamoProfileTable {
    async fn get_profiles(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, UserProfile>, StorageError> {
        let mut unique: Vec<&String> = user_ids.iter().collect();
        unique.sort_unstable();
        unique.dedup();
        let keys = unique
            .into_iter()
            .map(|user_id| {
                HashMap::from([("userId".to_owned(), AttributeValue::S(user_id.clone()))])
            })
            .collect();
        let items = get_all(&self.client, &self.table, keys, self.backoff).await?;
        let mut found = HashMap::new();
        for item in items {
            let profile = from_item(&item).and_then(|fields| {
                serde_json::from_value::<UserProfile>(Value::Object(fields)).ok()
            });
            match profile {
                Some(profile) => {
                    found.insert(profile.user_id.clone(), profile);
                }
                // A malformed profile is treated as missing, as the local table does, and said.
                None => {
                    warn!(table = %self.table, "A profile item could not be read; it is ignored.")
                }
            }
        }
        Ok(found)
    }
}
