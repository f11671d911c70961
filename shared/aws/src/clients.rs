//! The SDK clients, built once per cold start and shared by every invocation (each keeps
//! its own connection pool, so warm invocations reuse connections).

use aws_config::{BehaviorVersion, SdkConfig};

/// One client per service, from one loaded configuration.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub config: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
}

impl AwsClients {
    /// Loads the standard AWS configuration (environment, profile files, the Lambda
    /// execution role's credentials) and builds every client from it.
    pub async fn load() -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::from_config(config)
    }

    /// Builds every client from an already loaded configuration.
    ///
    /// S3 uses path-style addressing whenever an endpoint URL is configured: local
    /// endpoints (moto, LocalStack) serve buckets under the path, not as host names.
    pub fn from_config(config: SdkConfig) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sns: aws_sdk_sns::Client::new(&config),
            config,
        }
    }
}
