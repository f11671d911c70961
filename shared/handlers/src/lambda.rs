//! The Lambda entry point shared by the five function binaries.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use pipeline_adapters::Config;
use serde_json::Value;
use tracing::error;

use crate::deps::{Dependencies, system_clock};
use crate::logging::init_json_logs;
use crate::stage::Stage;

/// Sets up logs, reads the configuration and builds the ports once, then serves invocations
/// of `stage` until the runtime stops. A bad configuration fails the cold start.
pub async fn serve(stage: Stage) -> Result<(), lambda_runtime::Error> {
    init_json_logs();
    let config = Config::from_env().inspect_err(|failure| {
        error!(errorType = "ConfigError", reason = %failure, "The configuration is invalid.");
    })?;
    let deps = Dependencies::from_config(&config, system_clock()).inspect_err(|failure| {
        error!(errorType = "ConfigError", reason = %failure, "The dependencies could not be built.");
    })?;
    pipeline_domain::schema::warm_up();
    let deps = Arc::new(deps);
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
