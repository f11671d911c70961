//! `pipeline demo`: synthetic events from every supported source through every stage.

use std::collections::BTreeMap;
use std::time::Instant;

use pipeline_adapters::Config;
use pipeline_adapters::local::LocalBackend;
use pipeline_domain::event::SourceKind;
use pipeline_domain::stages::enrich::UserProfile;
use pipeline_domain::synth::{SplitMix64, SynthConfig, generate, wrap_as};
use pipeline_handlers::chain::run_chain;
use pipeline_handlers::deps::{load_model, system_clock};
use pipeline_handlers::{Dependencies, ErrorName};
use serde_json::Value;

/// The sources the demo rotates through, one per batch.
const DEMO_SOURCES: [SourceKind; 6] = [
    SourceKind::ApiGatewayHttp,
    SourceKind::ApiGatewayRest,
    SourceKind::Sqs,
    SourceKind::Sns,
    SourceKind::Kinesis,
    SourceKind::Direct,
];

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How many synthetic events to generate.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Events per batch (one Lambda invocation per stage per batch).
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Share of events made invalid on purpose.
    #[arg(long, default_value_t = 0.03)]
    invalid_ratio: f64,
    /// Seed of the generator: the same seed gives the same events.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Default)]
struct Totals {
    batches: usize,
    failed_batches: usize,
    accepted: u64,
    rejected: u64,
    duplicates: u64,
    lake_objects: u64,
    notifications: u64,
    reasons: BTreeMap<String, u64>,
    per_source: BTreeMap<&'static str, (u64, u64)>,
    high_risk: u64,
    model_version: String,
}

pub async fn run(config: &Config, args: DemoArgs) -> Result<(), String> {
    if args.batch_size == 0 {
        return Err("--batch-size must be at least 1".to_owned());
    }
    let backend = LocalBackend::open(&config.data_dir, &config.objects_dir)
        .map_err(|error| error.to_string())?;
    let synth = SynthConfig {
        seed: args.seed,
        invalid_ratio: args.invalid_ratio,
        ..SynthConfig::default()
    };
    backend
        .database
        .put_profiles(&synthetic_profiles(&synth))
        .map_err(|error| error.to_string())?;
    let model = load_model(config.model_path.as_deref())
        .map_err(|error| format!("ConfigError: {error}"))?;
    let deps = Dependencies::local(
        &backend,
        model,
        config.profile_cache_ttl_seconds,
        system_clock(),
    );
    let events = generate(&synth, args.events);

    println!(
        "Running {} synthetic events in batches of {} through validate -> enrich -> aggregate + inference -> store",
        args.events, args.batch_size
    );
    println!(
        "(stages chained in-process; the Step Functions interpreter is not part of this build yet)"
    );
    let started = Instant::now();
    let mut totals = Totals::default();
    for (number, chunk) in events.chunks(args.batch_size).enumerate() {
        let kind = DEMO_SOURCES[number % DEMO_SOURCES.len()];
        let event = wrap_as(kind, chunk, number).unwrap_or_else(|| Value::Array(chunk.to_vec()));
        totals.batches += 1;
        let entry = totals.per_source.entry(kind.as_str()).or_default();
        match run_chain(&deps, event, &format!("demo-{number}")).await {
            Ok(outcome) => {
                let accepted = outcome.validate["counts"]["accepted"].as_u64().unwrap_or(0);
                let rejected = outcome.validate["counts"]["rejected"].as_u64().unwrap_or(0);
                entry.0 += accepted;
                entry.1 += rejected;
                totals.accepted += accepted;
                totals.rejected += rejected;
                totals.duplicates += outcome.validate["counts"]["duplicates"]
                    .as_u64()
                    .unwrap_or(0);
                totals.lake_objects +=
                    outcome.store["lakeObjects"].as_array().map_or(0, Vec::len) as u64;
                totals.notifications += outcome.store["notificationsSent"].as_u64().unwrap_or(0);
                for record in outcome.validate["rejected"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    for error in record["errors"].as_array().into_iter().flatten() {
                        let pointer = error["pointer"].as_str().unwrap_or_default();
                        let label = if pointer.is_empty() {
                            "(record)".to_owned()
                        } else {
                            pointer.to_owned()
                        };
                        *totals.reasons.entry(label).or_default() += 1;
                    }
                }
                totals.high_risk += outcome.inference["highRisk"].as_u64().unwrap_or(0);
                if totals.model_version.is_empty() {
                    totals.model_version = outcome.inference["modelVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                }
            }
            Err(error) if error.name == ErrorName::ValidationError => {
                totals.failed_batches += 1;
                entry.1 += chunk.len() as u64;
                totals.rejected += chunk.len() as u64;
            }
            Err(error) => return Err(format!("batch {number} ({kind}) failed: {error}")),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    print_summary(config, &backend, &totals, args.events, elapsed)
}

fn print_summary(
    config: &Config,
    backend: &LocalBackend,
    totals: &Totals,
    events: usize,
    elapsed: f64,
) -> Result<(), String> {
    let counts = backend
        .database
        .counts()
        .map_err(|error| error.to_string())?;
    println!();
    println!("{:<18} {:>10} {:>10}", "source", "accepted", "rejected");
    for (source, (accepted, rejected)) in &totals.per_source {
        println!("{source:<18} {accepted:>10} {rejected:>10}");
    }
    println!(
        "{:<18} {:>10} {:>10}",
        "total", totals.accepted, totals.rejected
    );
    println!();
    println!(
        "batches: {} ({} with no valid record)",
        totals.batches, totals.failed_batches
    );
    println!("duplicates dropped within batches: {}", totals.duplicates);
    if !totals.reasons.is_empty() {
        let mut reasons: Vec<(&String, &u64)> = totals.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = reasons
            .iter()
            .take(5)
            .map(|(field, count)| format!("{field} ({count})"))
            .collect();
        println!("top rejection fields: {}", top.join(", "));
    }
    println!(
        "high-risk events: {} (model {})",
        totals.high_risk, totals.model_version
    );
    println!();
    println!(
        "events table:      {} events in {}",
        counts.events,
        config.data_dir.join("pipeline.db").display()
    );
    println!(
        "aggregates table:  {} window rows from {} batches",
        counts.aggregates, counts.applied_batches
    );
    println!("search index:      {} documents", counts.search_documents);
    println!(
        "data lake:         {} objects written under {}",
        totals.lake_objects,
        backend.lake.root().display()
    );
    println!(
        "notifications:     {} sent to {}",
        totals.notifications,
        backend.outbox.path().display()
    );
    println!();
    println!(
        "{events} events in {elapsed:.2} s: {:.0} events/s",
        events as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

/// Profiles for most synthetic users, so enrichment finds some and misses others.
fn synthetic_profiles(synth: &SynthConfig) -> Vec<UserProfile> {
    let mut random = SplitMix64::new(synth.seed ^ 0x5EED);
    let segments = ["new", "regular", "vip"];
    let countries = ["DE", "FR", "US", "GB", "ES", "NL"];
    let mut profiles = Vec::new();
    for user in 0..synth.users {
        if random.below(10) >= 8 {
            continue;
        }
        profiles.push(UserProfile {
            user_id: format!("user-{user:05}"),
            segment: segments[random.below(3) as usize].to_owned(),
            country: countries[random.below(6) as usize].to_owned(),
            signup_timestamp: synth.start_millis as i64 - random.below(1_000) as i64 * 86_400_000,
            average_amount: 20.0 + random.below(8_000) as f64 / 100.0,
            known_devices: vec!["Windows 10/Chrome".to_owned(), "iPhone/Safari".to_owned()],
        });
    }
    profiles
}
