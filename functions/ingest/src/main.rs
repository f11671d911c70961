//! The `ingest` Lambda function: the whole pipeline for a direct SQS, Kinesis or DynamoDB
//! Streams trigger, answering with a partial batch response. Wiring only; the handler lives
//! in `pipeline-handlers`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pipeline_handlers::lambda::serve_direct().await
}
