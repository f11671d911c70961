//! Finding a topic's ARN from its name, for configurations that name the topic only.

use pipeline_domain::StorageError;

use crate::error::classify;

/// The ARN of the topic called `name` in the client's account and region (the ARN's last
/// `:` segment is the name), or `None` when there is none. ListTopics is paged, a hundred
/// topics a page; every page is read until the name is found.
pub async fn topic_arn_by_name(
    client: &aws_sdk_sns::Client,
    name: &str,
) -> Result<Option<String>, StorageError> {
    let mut pages = client.list_topics().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| classify(format!("find the SNS topic {name}"), error))?;
        let found = page
            .topics()
            .iter()
            .filter_map(|topic| topic.topic_arn())
            .find(|arn| arn.rsplit(':').next() == Some(name));
        if let Some(arn) = found {
            return Ok(Some(arn.to_owned()));
        }
    }
    Ok(None)
}
