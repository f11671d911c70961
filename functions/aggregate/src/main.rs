//! The `aggregate` Lambda function: wiring only; the handler lives in `pipeline-handlers`.

use pipeline_handlers::Stage;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pipeline_handlers::lambda::serve(Stage::Aggregate).await
}
