//! Handler errors and their stable names.
//!
//! The name is what a Lambda invocation reports as `errorType`, and what the state machine's
//! `Retry` and `Catch` match on, so names never change once published.

use pipeline_adapters::ConfigError;
use pipeline_domain::sources::DecodeError;
use pipeline_domain::stages::inference::ModelError;
use pipeline_domain::stages::store::StoreError;
use pipeline_domain::stages::validate::NoValidRecord;
use pipeline_domain::{ErrorClass, StorageError};
use thiserror::Error;

/// The stable error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorName {
    /// The input has no valid record or is not a recognised event: do not retry; the state
    /// machine routes it to the rejected-records path.
    ValidationError,
    /// A stage received a payload that is not its documented input: a wiring fault.
    InvalidStageInput,
    /// A dependency failed in a way that may pass: retry with backoff.
    TransientError,
    /// A dependency failed in a way that will not pass by retrying.
    StorageError,
    /// The function is not configured correctly (environment, missing model).
    ConfigError,
    /// The risk model refused the input or returned something impossible.
    ModelError,
}

impl ErrorName {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorName::ValidationError => "ValidationError",
            ErrorName::InvalidStageInput => "InvalidStageInput",
            ErrorName::TransientError => "TransientError",
            ErrorName::StorageError => "StorageError",
            ErrorName::ConfigError => "ConfigError",
            ErrorName::ModelError => "ModelError",
        }
    }
}

/// A failed invocation: a stable name and a sentence saying what and why.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{}: {message}", name.as_str())]
pub struct HandlerError {
    pub name: ErrorName,
    pub message: String,
}

impl HandlerError {
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        Self {
            name,
            message: message.into(),
        }
    }
}

impl From<StorageError> for HandlerError {
    fn from(error: StorageError) -> Self {
        let name = match error.class {
            ErrorClass::Transient => ErrorName::TransientError,
            ErrorClass::Permanent => ErrorName::StorageError,
        };
        Self::new(name, error.to_string())
    }
}

impl From<DecodeError> for HandlerError {
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::Object(storage) => storage.into(),
            other => Self::new(ErrorName::ValidationError, other.to_string()),
        }
    }
}

impl From<NoValidRecord> for HandlerError {
    fn from(error: NoValidRecord) -> Self {
        Self::new(ErrorName::ValidationError, error.to_string())
    }
}

impl From<ConfigError> for HandlerError {
    fn from(error: ConfigError) -> Self {
        Self::new(ErrorName::ConfigError, error.to_string())
    }
}

impl From<ModelError> for HandlerError {
    fn from(error: ModelError) -> Self {
        let name = match error {
            ModelError::FeatureMismatch { .. } => ErrorName::ConfigError,
            _ => ErrorName::ModelError,
        };
        Self::new(name, error.to_string())
    }
}

impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Storage(storage) => storage.into(),
            StoreError::Inconsistent(message) => Self::new(ErrorName::InvalidStageInput, message),
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.name.as_str().to_owned(),
            error_message: error.message,
        }
    }
}
