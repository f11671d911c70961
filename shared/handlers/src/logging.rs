//! Structured JSON logs through `tracing`.
//!
//! Each line is one JSON object with the message, the level, the target and the fields of
//! the current invocation span (`requestId`, `stage`, `batchId`), as CloudWatch Logs Insights
//! expects. `RUST_LOG` filters, `info` by default.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber, writing to standard output (Lambda sends it to CloudWatch).
pub fn init_json_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .without_time()
        .with_ansi(false)
        .try_init();
}

/// Installs the JSON subscriber on standard error, for the command line, whose standard
/// output carries results. Quiet (`error`: handler errors are printed as one line anyway) unless `RUST_LOG` says otherwise.
pub fn init_json_logs_to_stderr() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
