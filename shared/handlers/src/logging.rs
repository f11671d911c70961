//! Structured JSON logs through `tracing`.
//!
//! Each line is one JSON object with the message, the level, the target and the fields of
//! the current invocation span (`requestId`, `stage`, `batchId`), as CloudWatch Logs Insights
//! expects. `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the JSON subscriber for a Lambda function: standard output (which Lambda sends
/// to CloudWatch), `info` by default.
pub fn init_json_logs() {
    install(std::io::stdout, "info");
}

/// Installs the JSON subscriber for the command line: standard error, because standard
/// output carries results, and `error` by default, because handler errors are printed as
/// one line anyway.
pub fn init_json_logs_to_stderr() {
    install(std::io::stderr, "error");
}

fn install<W>(writer: W, default_filter: &str)
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
}
