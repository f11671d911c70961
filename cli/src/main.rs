//! `pipeline`: run the pipeline's stages locally, on the embedded backend.

mod demo;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pipeline_adapters::Config;
use pipeline_adapters::local::LocalBackend;
use pipeline_domain::stages::enrich::UserProfile;
use pipeline_handlers::deps::system_clock;
use pipeline_handlers::logging::init_json_logs_to_stderr;
use pipeline_handlers::{Dependencies, Stage, invoke};
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pipeline",
    version,
    about = "Run the serverless pipeline's stages locally."
)]
struct Cli {
    /// Where the embedded backend keeps its data (default: $PIPELINE_DATA_DIR, else .pipeline).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Where S3 source objects are read from, as <dir>/<bucket>/<key>
    /// (default: $PIPELINE_OBJECTS_DIR, else <data dir>/objects).
    #[arg(long, global = true)]
    objects_dir: Option<PathBuf>,
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
    /// Generate synthetic events and run them through every stage, with a summary.
    Demo(demo::DemoArgs),
    /// Load user profiles (a JSON array or JSON Lines of profiles) into the profiles table.
    ImportProfiles {
        /// The profiles file.
        file: PathBuf,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
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
    match cli.command {
        Command::Invoke { stage, event } => {
            let event = read_event(&event)?;
            let deps = Dependencies::from_config(&config, system_clock())
                .map_err(|error| format!("ConfigError: {error}"))?;
            let request_id = format!("local-{}", chrono::Utc::now().timestamp_millis());
            let output = invoke(stage, &deps, event, &request_id)
                .await
                .map_err(|error| error.to_string())?;
            let text = serde_json::to_string_pretty(&output).map_err(|error| error.to_string())?;
            println!("{text}");
            Ok(())
        }
        Command::Demo(args) => demo::run(&config, args).await,
        Command::ImportProfiles { file } => {
            let profiles = read_profiles(&file)?;
            let backend = LocalBackend::open(&config.data_dir, &config.objects_dir)
                .map_err(|error| error.to_string())?;
            let count = backend
                .database
                .put_profiles(&profiles)
                .map_err(|error| error.to_string())?;
            println!(
                "Imported {count} profiles into {}.",
                config.data_dir.join("pipeline.db").display()
            );
            Ok(())
        }
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
