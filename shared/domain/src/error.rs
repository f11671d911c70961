//! Error classification shared by every port.

use thiserror::Error;

/// Whether retrying the same operation later may succeed.
///
/// The edge maps [`ErrorClass::Transient`] to the stable error name `TransientError`, which
/// the state machine's `Retry` matches on; permanent failures are not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttling, timeouts, a busy database, a 5xx from a service: try again later.
    Transient,
    /// Bad configuration, missing permissions, a missing object: retrying cannot help.
    Permanent,
}

/// A failure reported by a storage port, classified for retries.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{operation} failed: {message}")]
pub struct StorageError {
    pub class: ErrorClass,
    /// What was being done, for example `put events` or `open s3://bucket/key`.
    pub operation: String,
    pub message: String,
}

impl StorageError {
    pub fn transient(operation: impl Into<String>, message: impl ToString) -> Self {
        Self {
            class: ErrorClass::Transient,
            operation: operation.into(),
            message: message.to_string(),
        }
    }

    pub fn permanent(operation: impl Into<String>, message: impl ToString) -> Self {
        Self {
            class: ErrorClass::Permanent,
            operation: operation.into(),
            message: message.to_string(),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.class == ErrorClass::Transient
    }
}
