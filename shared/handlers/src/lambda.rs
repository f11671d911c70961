//! The Lambda entry point shared by the five function binaries.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use pipeline_adapters::Config;
use pipeline_asl::ExecutionOptions;
use serde_json::Value;
use tracing::error;

use crate::deps::{Dependencies, system_clock};
use crate::direct::process_direct;
use crate::logging::init_json_logs;
use crate::orchestrator::Orchestrator;
use crate::stage::Stage;

/// Sets up the allocator and logs, reads the configuration and builds the ports once. A bad
/// configuration fails the cold start.
async fn cold_start() -> Result<Arc<Dependencies>, lambda_runtime::Error> {
    crate::allocator::configure();
    init_json_logs();
    let config = Config::from_env().inspect_err(|failure| {
        error!(errorType = "ConfigError", reason = %failure, "The configuration is invalid.");
    })?;
    let (deps, _backend) = Dependencies::connect(&config, system_clock())
        .await
        .inspect_err(|failure| {
            error!(errorType = "ConfigError", reason = %failure, "The dependencies could not be built.");
        })?;
    pipeline_domain::schema::warm_up();
    Ok(Arc::new(deps))
}

/// Serves invocations of `stage` until the runtime stops.
pub async fn serve(stage: Stage) -> Result<(), lambda_runtime::Error> {
    let deps = cold_start().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move {
            crate::invoke::invoke(stage, &deps, event.payload, &event.context.request_id)
                .await
                .map_err(Diagnostic::from)
        }
    }))
    .await
}

/// Serves a direct trigger (an SQS, Kinesis or DynamoDB Streams event source mapping with
/// `ReportBatchItemFailures`): each batch runs through the pipeline's state machine
/// in-process, and the answer names the records to retry.
pub async fn serve_direct() -> Result<(), lambda_runtime::Error> {
    let deps = cold_start().await?;
    let orchestrator = Arc::new(Orchestrator::pipeline(deps.clone())?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let deps = deps.clone();
        let orchestrator = orchestrator.clone();
        async move {
            let options = ExecutionOptions {
                name: event.context.request_id.clone(),
                ..ExecutionOptions::default()
            };
            process_direct(&orchestrator, &deps, event.payload, &options)
                .await
                .map_err(Diagnostic::from)
        }
    }))
    .await
}
