//! The AWS backend (`PIPELINE_BACKEND=aws`): the pipeline's ports over DynamoDB, S3, SNS and
//! OpenSearch, through the official AWS SDK for Rust.
//!
//! Clients are built once per cold start ([`AwsClients::load`]) from the standard AWS
//! configuration, so `AWS_ENDPOINT_URL` (or a per-service `AWS_ENDPOINT_URL_<SERVICE>`)
//! points them at any endpoint: the tests run them against `moto` on 127.0.0.1. Each
//! adapter keeps request building, the calls and the classification of failures apart, and
//! every failure reaches the domain as a [`StorageError`](pipeline_domain::StorageError)
//! classified for the state machine's `Retry` (see [`error`]).

pub mod backend;
pub mod backoff;
pub mod bootstrap;
pub mod clients;
pub mod dynamodb;
pub mod error;
pub mod ledger;
pub mod opensearch;
pub mod s3;
pub mod sns;

pub use backend::AwsBackend;
pub use clients::AwsClients;
