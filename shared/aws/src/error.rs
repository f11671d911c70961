//! Classification of SDK failures: what may pass on retry (`TransientError` at the edge) and
//! what will not (`StorageError`).
//!
//! Transient: the request never got an answer (dispatch failure, time-out, a broken
//! response), the service answered 429 or 5xx, or its error code is one of the throttling
//! and capacity codes the services document. Everything else (validation, access denied,
//! a missing table or bucket) is permanent: retrying the same request cannot help.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use pipeline_domain::StorageError;

/// Error codes that mean "slow down" or "try again" in DynamoDB, S3, SNS and STS.
const TRANSIENT_CODES: [&str; 14] = [
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalServerError",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// Whether an error code names a throttling or temporary service condition.
pub fn is_transient_code(code: &str) -> bool {
    TRANSIENT_CODES.contains(&code)
}

/// Whether an HTTP status may pass on retry.
pub fn is_transient_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// Turns any SDK failure into a classified [`StorageError`] for `operation`.
pub fn classify<E>(operation: impl Into<String>, error: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let operation = operation.into();
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(context) => {
            let code_says = context.err().code().is_some_and(is_transient_code);
            code_says || is_transient_status(context.raw().status().as_u16())
        }
        _ => false,
    };
    let message = describe(&error);
    if transient {
        StorageError::transient(operation, message)
    } else {
        StorageError::permanent(operation, message)
    }
}

/// The error code and message the service gave, or the whole error chain for failures
/// that never reached it.
fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(context) = error {
        let service = context.err();
        return match (service.code(), service.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => service.to_string(),
        };
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_transient_and_client_errors_are_not() {
        for code in [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "SlowDown",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in [
            "ValidationException",
            "AccessDeniedException",
            "ResourceNotFoundException",
            "NoSuchBucket",
        ] {
            assert!(!is_transient_code(code), "{code}");
        }
        assert!(is_transient_status(429));
        assert!(is_transient_status(503));
        assert!(!is_transient_status(400));
        assert!(!is_transient_status(403));
    }
}
