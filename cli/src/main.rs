//! `pipeline`: run the serverless pipeline locally, on the embedded backend, through the
//! same state machine definition that is deployed.

mod demo;
mod generate;
mod runner;
mod serve;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use pipeline_adapters::{BackendKind, Config};
use pipeline_asl::ExecutionOptions;
use pipeline_domain::event::SourceKind;
use pipeline_domain::stages::enrich::UserProfile;
use pipeline_domain::synth::{SynthConfig, generate};
use pipeline_handlers::deps::{Backend, load_model, system_clock};
use pipeline_handlers::direct::process_direct;
use pipeline_handlers::logging::init_json_logs_to_stderr;
use pipeline_handlers::orchestrator::Orchestrator;
use pipeline_handlers::{Dependencies, Stage, invoke};
use serde_json::Value;

use crate::runner::{Input, run_and_report};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pipeline",
    version,
    about = "Run the serverless pipeline locally: one function, the whole state machine, or an HTTP endpoint."
)]
struct Cli {
    /// Where the embedded backend keeps its data (default: $PIPELINE_DATA_DIR, else .pipeline).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Where S3 source objects are read from, as <dir>/<bucket>/<key>
    /// (default: $PIPELINE_OBJECTS_DIR, else <data dir>/objects).
    #[arg(long, global = true)]
    objects_dir: Option<PathBuf>,
    /// Where the pipeline's tables, data lake and notifications live: `local` (the embedded
    /// default under the data directory) or `aws` (DynamoDB, S3 and SNS at the endpoint the
    /// standard AWS configuration names, such as AWS_ENDPOINT_URL). Default:
    /// $PIPELINE_BACKEND, else local.
    #[arg(long, global = true, value_parser = ["local", "aws"])]
    backend: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one function's handler in-process on an event and print its JSON output.
    Invoke {
        /// validate, enrich, aggregate, inference or store.
        stage: Stage,
        /// The event file, or - for standard input.
        #[arg(long)]
        event: String,
    },
    /// Handle an SQS, Kinesis or DynamoDB Streams event as the `ingest` function does when
    /// triggered directly: the whole pipeline in-process, then print the partial batch
    /// response (the records Lambda would retry).
    Trigger {
        /// The event file, or - for standard input.
        #[arg(long)]
        event: String,
    },
    /// Run source events (files, or folders of .json files) through the state machine, or
    /// run any ASL definition on one input with --definition and --input.
    Run(RunArgs),
    /// Generate synthetic events and run them through the state machine, with a summary.
    Demo(demo::DemoArgs),
    /// Write synthetic source events as files, to run later with `pipeline run`.
    Generate {
        /// How many events.
        #[arg(long, default_value_t = 1_000)]
        events: usize,
        /// The source shape: apigateway-http, apigateway-rest, sqs, sns, kinesis, s3,
        /// dynamodb-stream, eventbridge or direct.
        #[arg(long)]
        source: SourceKind,
        /// The folder to write to.
        #[arg(long)]
        out: PathBuf,
        /// Events per source event.
        #[arg(long, default_value_t = 100)]
        batch_size: usize,
        /// Share of events made invalid on purpose.
        #[arg(long, default_value_t = 0.03)]
        invalid_ratio: f64,
        /// Seed of the generator.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Serve a local HTTP endpoint that accepts what API Gateway would and runs the state
    /// machine on each request.
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
    },
    /// Create, if they do not exist, the tables, bucket and topic the configuration names, at
    /// the configured AWS endpoint (`--backend aws`); the embedded backend needs nothing.
    Bootstrap,
    /// Load user profiles (a JSON array or JSON Lines of profiles) into the profiles table.
    ImportProfiles {
        /// The profiles file.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Source event files, or folders searched for .json files.
    paths: Vec<PathBuf>,
    /// An ASL definition to run instead of the pipeline's (Tasks must name the pipeline's
    /// functions); needs --input.
    #[arg(long, requires = "input")]
    definition: Option<PathBuf>,
    /// The execution input for --definition.
    #[arg(long, requires = "definition")]
    input: Option<PathBuf>,
    /// Executions run at once (default: four per core).
    #[arg(long)]
    concurrency: Option<usize>,
}

#[tokio::main]
async fn main() -> ExitCode {
    pipeline_handlers::allocator::configure();
    init_json_logs_to_stderr();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let mut config = Config::from_env().map_err(|error| format!("ConfigError: {error}"))?;
    if let Some(data_dir) = cli.data_dir {
        if std::env::var_os("PIPELINE_OBJECTS_DIR").is_none() {
            config.objects_dir = data_dir.join("objects");
        }
        config.data_dir = data_dir;
    }
    if let Some(objects_dir) = cli.objects_dir {
        config.objects_dir = objects_dir;
    }
    match cli.backend.as_deref() {
        Some("aws") => config.backend = BackendKind::Aws,
        Some(_) => config.backend = BackendKind::Local,
        None => {}
    }
    match cli.command {
        Command::Invoke { stage, event } => {
            let event = read_event(&event)?;
            let (deps, _backend) = connect(&config).await?;
            let request_id = format!("local-{}", chrono::Utc::now().timestamp_millis());
            let output = invoke(stage, &deps, event, &request_id)
                .await
                .map_err(|error| error.to_string())?;
            print_json(&output)
        }
        Command::Trigger { event } => {
            let event = read_event(&event)?;
            let (deps, _backend) = connect(&config).await?;
            let deps = Arc::new(deps);
            let orchestrator =
                Orchestrator::pipeline(deps.clone()).map_err(|error| error.to_string())?;
            let options = ExecutionOptions {
                name: format!("trigger-{}", chrono::Utc::now().timestamp_millis()),
                ..ExecutionOptions::default()
            };
            let response = process_direct(&orchestrator, &deps, event, &options)
                .await
                .map_err(|error| error.to_string())?;
            print_json(&serde_json::to_value(response).map_err(|error| error.to_string())?)
        }
        Command::Run(args) => match (args.definition, args.input) {
            (Some(definition), Some(input)) => run_definition(&config, &definition, &input).await,
            _ => run_files(&config, &args.paths, args.concurrency).await,
        },
        Command::Demo(args) => demo::run(&config, args).await,
        Command::Generate {
            events,
            source,
            out,
            batch_size,
            invalid_ratio,
            seed,
        } => {
            if batch_size == 0 {
                return Err("--batch-size must be at least 1".to_owned());
            }
            std::fs::create_dir_all(&out)
                .map_err(|error| format!("cannot create {}: {error}", out.display()))?;
            let synth = SynthConfig {
                seed,
                invalid_ratio,
                ..SynthConfig::default()
            };
            let events = generate(&synth, events);
            let size = if source == SourceKind::Eventbridge {
                1
            } else {
                batch_size
            };
            let mut files = 0;
            for (number, chunk) in events.chunks(size).enumerate() {
                let event = generate::source_event(source, chunk, number, &config.objects_dir)?;
                generate::write_event(&out, source, number, &event)?;
                files += 1;
            }
            println!(
                "Wrote {} {source} events as {files} source events in {}.",
                events.len(),
                out.display()
            );
            if source == SourceKind::S3 {
                println!(
                    "The uploaded objects are under {} (pass --objects-dir to `pipeline run` if you move them).",
                    config.objects_dir.join(generate::UPLOAD_BUCKET).display()
                );
            }
            Ok(())
        }
        Command::Serve { addr } => {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
            // Requests run as they come; the budget is that of the demo's default.
            let (deps, orchestrator, _backend) =
                pipeline_orchestrator(&config, demo::default_concurrency()).await?;
            eprintln!(
                "Listening on http://{}: POST a JSON event or array of events to /events (Ctrl-C stops).",
                listener
                    .local_addr()
                    .map_or(addr, |address| address.to_string())
            );
            let shutdown = async {
                // Without a signal handler the server simply runs until the process is killed.
                let _ = tokio::signal::ctrl_c().await;
            };
            serve::serve(listener, serve::App::new(orchestrator, deps), shutdown).await;
            Ok(())
        }
        Command::Bootstrap => bootstrap(&config).await,
        Command::ImportProfiles { file } => {
            let profiles = read_profiles(&file)?;
            let backend = Backend::open(&config)
                .await
                .map_err(|error| format!("ConfigError: {error}"))?;
            let count = backend
                .put_profiles(&profiles)
                .await
                .map_err(|error| error.to_string())?;
            println!(
                "Imported {count} profiles into {}.",
                backend.places().tables
            );
            Ok(())
        }
    }
}

/// The ports that `config` names, and the backend behind them.
pub async fn connect(config: &Config) -> Result<(Dependencies, Backend), String> {
    Dependencies::connect(config, system_clock())
        .await
        .map_err(|error| format!("ConfigError: {error}"))
}

/// The ports that `config` names, the pipeline's state machine over them for `concurrency`
/// executions at once, and the backend.
pub async fn pipeline_orchestrator(
    config: &Config,
    concurrency: usize,
) -> Result<(Arc<Dependencies>, Arc<Orchestrator>, Backend), String> {
    let backend = Backend::open(config)
        .await
        .map_err(|error| format!("ConfigError: {error}"))?;
    let (deps, orchestrator) = orchestrator_over(config, &backend, concurrency)?;
    Ok((deps, orchestrator, backend))
}

/// How much staged data (by encoded size) the in-process state machine keeps in memory on
/// the embedded backend per execution running at once, and the largest value it keeps: a
/// demo execution's values (its enriched part of up to 1,000 events, its scores) with room
/// to spare. Beyond them, staged values are written to the lake's `staging/` prefix as a
/// deployed stage writes them to S3, so a long execution of large parts (an upload of a
/// million events in parts of 4,000) keeps its memory bounded. On the AWS backend every
/// staged value goes to S3, so that a local run exercises it.
///
/// The budget grows with the executions run at once: a fixed 8 MiB held the values of eight
/// demo executions, but with sixteen (`--concurrency 16`, the default on a machine of four
/// cores) some went to the lake, and the stages used 40 % more CPU (docs/benchmarks.md).
const KEPT_BYTES_PER_EXECUTION: usize = 1 << 20;
const KEPT_VALUE_BYTES: usize = 1 << 20;
/// The least budget, whatever the concurrency.
const KEPT_MIN_BYTES: usize = 8 << 20;

/// The in-memory budget for staged values when `concurrency` executions run at once.
fn kept_budget(concurrency: usize) -> usize {
    (KEPT_BYTES_PER_EXECUTION * concurrency).max(KEPT_MIN_BYTES)
}

/// The pipeline's state machine over the ports of an open backend, for `concurrency`
/// executions at once.
pub fn orchestrator_over(
    config: &Config,
    backend: &Backend,
    concurrency: usize,
) -> Result<(Arc<Dependencies>, Arc<Orchestrator>), String> {
    let model = load_model(config.model_path.as_deref())
        .map_err(|error| format!("ConfigError: {error}"))?;
    let mut deps = Dependencies::over(backend, config, model, system_clock());
    if let Backend::Local(_) = backend {
        deps = deps.keeping_staged_values(kept_budget(concurrency), KEPT_VALUE_BYTES);
    }
    let deps = Arc::new(deps);
    let orchestrator = Orchestrator::pipeline(deps.clone())
        .map_err(|error| format!("the pipeline's definition does not load: {error}"))?;
    Ok((deps, Arc::new(orchestrator)))
}

/// `pipeline bootstrap`: the AWS resources the configuration names, created if missing.
async fn bootstrap(config: &Config) -> Result<(), String> {
    if config.backend != BackendKind::Aws {
        println!(
            "The embedded backend creates its tables itself, under {}; `pipeline bootstrap --backend aws` provisions an AWS endpoint.",
            config.data_dir.display()
        );
        return Ok(());
    }
    let clients = pipeline_aws::AwsClients::load().await;
    let endpoint = clients
        .config
        .endpoint_url()
        .unwrap_or("the AWS account of the current credentials")
        .to_owned();
    let report = pipeline_aws::bootstrap::bootstrap(&clients, &config.aws)
        .await
        .map_err(|error| error.to_string())?;
    println!("Bootstrapped {endpoint}:");
    for resource in &report.resources {
        let state = if resource.created {
            "created"
        } else {
            "exists "
        };
        println!("  {state}  {:<6}  {}", resource.kind, resource.name);
    }
    if config.aws.topic_arn.is_none() {
        println!(
            "The topic is found by its name; set PIPELINE_TOPIC_ARN={} to skip the lookup.",
            report.topic_arn
        );
    }
    Ok(())
}

/// `pipeline run --definition FILE --input FILE`: one execution of any definition.
async fn run_definition(config: &Config, definition: &Path, input: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(definition)
        .map_err(|error| format!("cannot read {}: {error}", definition.display()))?;
    let input = read_event(&input.display().to_string())?;
    let (deps, _backend) = connect(config).await?;
    let orchestrator = Orchestrator::with_definition(&text, Arc::new(deps))
        .map_err(|error| format!("{}: {error}", definition.display()))?;
    let options = ExecutionOptions {
        name: format!("local-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%3f")),
        ..ExecutionOptions::default()
    };
    let execution = orchestrator.execute(input, &options).await;
    match execution.result {
        Ok(output) => print_json(&output),
        Err(failure) => Err(format!("{}: {}", failure.error, failure.cause)),
    }
}

/// `pipeline run PATHS...`: every source event through the state machine, then a summary.
async fn run_files(
    config: &Config,
    paths: &[PathBuf],
    concurrency: Option<usize>,
) -> Result<(), String> {
    if paths.is_empty() {
        return Err(
            "name at least one event file or folder (or --definition and --input)".to_owned(),
        );
    }
    let mut files = Vec::new();
    for path in paths {
        collect_json_files(path, &mut files)?;
    }
    if files.is_empty() {
        return Err("no .json files in the paths given".to_owned());
    }
    let mut inputs = Vec::with_capacity(files.len());
    for file in &files {
        let label = file.display().to_string();
        let event = read_event(&label)?;
        inputs.push(Input {
            label,
            event,
            events: 1,
            input_bytes: None,
        });
    }
    println!(
        "Running {} source events through the state machine statemachine/pipeline.asl.json.",
        inputs.len()
    );
    let total = inputs.len() as u64;
    let concurrency = concurrency.unwrap_or_else(demo::default_concurrency);
    let backend = Backend::open(config)
        .await
        .map_err(|error| format!("ConfigError: {error}"))?;
    run_and_report(
        config,
        &backend,
        inputs,
        concurrency,
        total,
        "source events",
    )
    .await
}

/// `path` itself when it is a file, else every `.json` file below it, in name order.
fn collect_json_files(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    if path.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut children: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    children.sort();
    for child in children {
        if child.is_dir() {
            collect_json_files(&child, files)?;
        } else if child
            .extension()
            .is_some_and(|extension| extension == "json")
        {
            files.push(child);
        }
    }
    Ok(())
}

/// Prints `value` as pretty JSON. A reader that stops early (`| head`) is not an error.
fn print_json(value: &Value) -> Result<(), String> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value).map_err(|error| error.to_string())?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to standard output: {error}"))
        }
        _ => Ok(()),
    }
}

fn read_event(source: &str) -> Result<Value, String> {
    let text = if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| format!("cannot read standard input: {error}"))?;
        text
    } else {
        std::fs::read_to_string(source).map_err(|error| format!("cannot read {source}: {error}"))?
    };
    serde_json::from_str(&text)
        .map_err(|error| format!("ValidationError: {source} is not valid JSON: {error}"))
}

fn read_profiles(file: &PathBuf) -> Result<Vec<UserProfile>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    let parse_error = |line: usize, error: serde_json::Error| {
        format!("{} line {line}: not a profile: {error}", file.display())
    };
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(&text).map_err(|error| parse_error(error.line(), error));
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|error| parse_error(index + 1, error))
        })
        .collect()
}
