//! Runs source events through the state machine, several at once, and adds up what happened.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use pipeline_adapters::Config;
use pipeline_asl::{Execution, ExecutionFailure, ExecutionOptions};
use pipeline_handlers::Dependencies;
use pipeline_handlers::carried::staging_prefix;
use pipeline_handlers::deps::{Backend, OutputPlaces};
use pipeline_handlers::orchestrator::Orchestrator;
use serde_json::Value;

/// One execution to run: where its input came from, the input, and how many events it holds
/// (for the progress bar; 0 when unknown).
pub struct Input {
    pub label: String,
    pub event: Value,
    pub events: u64,
    /// The size of `event` in bytes of compact JSON, when it was measured already
    /// ([`ExecutionOptions::input_bytes`]).
    pub input_bytes: Option<usize>,
}

/// The end of one execution.
pub struct Finished {
    pub label: String,
    pub execution: Execution,
}

/// Runs every input through `orchestrator`, at most `concurrency` at a time, calling
/// `on_finished` in completion order. Staged batches are removed once every execution has
/// ended: two executions of the same events (a batch delivered again while the first
/// delivery runs) have the same batch ids, so the same staged objects, and the first to end
/// must not take them from the other.
pub async fn run_all(
    orchestrator: Arc<Orchestrator>,
    deps: Arc<Dependencies>,
    inputs: impl Iterator<Item = Input>,
    concurrency: usize,
    progress: &ProgressBar,
    mut on_finished: impl FnMut(Finished),
) {
    let started = chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string();
    let mut finished = futures_util::stream::iter(inputs.enumerate().map(|(number, input)| {
        let orchestrator = orchestrator.clone();
        let name = format!("local-{started}-{number:06}");
        tokio::spawn(async move {
            let options = ExecutionOptions {
                name,
                input_bytes: input.input_bytes,
                ..ExecutionOptions::default()
            };
            let execution = orchestrator.execute(input.event, &options).await;
            (input.label, input.events, execution)
        })
    }))
    .buffer_unordered(concurrency.max(1));
    let mut staged_batches = std::collections::BTreeSet::new();
    while let Some(joined) = finished.next().await {
        match joined {
            Ok((label, events, execution)) => {
                progress.inc(events);
                if let Ok(output) = &execution.result {
                    staged_batches.extend(batch_ids_of(output));
                }
                on_finished(Finished { label, execution });
            }
            Err(error) => on_finished(Finished {
                label: "(execution task)".to_owned(),
                execution: Execution {
                    result: Err(ExecutionFailure {
                        error: "States.Runtime".to_owned(),
                        cause: format!("the execution's task ended abnormally: {error}"),
                        state: None,
                    }),
                    history: Vec::new(),
                    largest_payload_bytes: 0,
                },
            }),
        }
    }
    remove_staged(&deps, staged_batches).await;
}

/// The batch and part ids an execution's output names.
fn batch_ids_of(output: &Value) -> Vec<String> {
    let mut batches: Vec<String> = output["batchId"]
        .as_str()
        .map(str::to_owned)
        .into_iter()
        .collect();
    for part in output["parts"].as_array().into_iter().flatten() {
        batches.extend(part["batchId"].as_str().map(str::to_owned));
    }
    batches
}

/// Staged objects are scratch: removed as S3's lifecycle rule would remove them.
async fn remove_staged(deps: &Dependencies, batches: impl IntoIterator<Item = String>) {
    for batch in batches {
        // Scratch that stays behind is only disk space; the run's outcome does not depend on it.
        let _ = deps.staging.delete_staged(&staging_prefix(&batch)).await;
    }
}

/// Removes the staged objects of the batch and parts an execution's output names.
pub async fn remove_staged_of(deps: &Dependencies, output: &Value) {
    remove_staged(deps, batch_ids_of(output)).await;
}

/// Runs `inputs` with a progress bar over `total` units (`unit` names them), then prints the
/// summary. Fails when any execution failed.
pub async fn run_and_report(
    config: &Config,
    backend: &Backend,
    inputs: Vec<Input>,
    concurrency: usize,
    total: u64,
    unit: &str,
) -> Result<(), String> {
    let (deps, orchestrator) = crate::orchestrator_over(config, backend, concurrency)?;
    let progress = progress_bar(total, unit);
    let started = Instant::now();
    let mut report = Report::default();
    run_all(
        orchestrator,
        deps,
        inputs.into_iter(),
        concurrency,
        &progress,
        |finished| report.add(&finished),
    )
    .await;
    let settled = backend.settle();
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    settled.map_err(|error| error.to_string())?;
    report.print(&backend.places(), elapsed);
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} executions failed", report.failed.len()))
    }
}

/// A progress bar over `total` events, drawn on standard error when it is a terminal.
pub fn progress_bar(total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}} left)"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// What a run did, added up over its executions.
#[derive(Default)]
pub struct Report {
    pub executions: u64,
    pub processed: u64,
    pub quarantined: u64,
    pub failed: Vec<(String, String, String)>,
    pub per_source: BTreeMap<String, SourceTotals>,
    pub reasons: BTreeMap<String, u64>,
    pub events_written: u64,
    pub lake_objects: u64,
    pub quarantine_objects: Vec<String>,
    pub documents_indexed: u64,
    pub aggregates_applied: u64,
    pub aggregates_already_applied: u64,
    pub high_risk: u64,
    pub notifications: u64,
    pub largest_payload_bytes: usize,
    pub first_lake_object: Option<String>,
}

#[derive(Default, Clone, Copy)]
pub struct SourceTotals {
    pub executions: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub skipped: u64,
    pub duplicates: u64,
}

fn number(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

impl Report {
    /// Adds one execution's outcome.
    pub fn add(&mut self, finished: &Finished) {
        self.executions += 1;
        self.largest_payload_bytes = self
            .largest_payload_bytes
            .max(finished.execution.largest_payload_bytes);
        let output = match &finished.execution.result {
            Ok(output) => output,
            Err(failure) => {
                self.failed.push((
                    finished.label.clone(),
                    failure.error.clone(),
                    failure.cause.clone(),
                ));
                return;
            }
        };
        let source = output["sourceKind"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        let totals = self.per_source.entry(source).or_default();
        totals.executions += 1;
        if output["status"] == "quarantined" {
            self.quarantined += 1;
            totals.rejected += number(&output["rejected"]);
            self.add_store_report(output);
            return;
        }
        self.processed += 1;
        let counts = &output["counts"];
        totals.accepted += number(&counts["accepted"]);
        totals.rejected += number(&counts["rejected"]);
        totals.skipped += number(&counts["skipped"]);
        totals.duplicates += number(&counts["duplicates"]);
        for reason in output["rejectedReasons"].as_array().into_iter().flatten() {
            let field = reason["field"].as_str().unwrap_or("(record)").to_owned();
            *self.reasons.entry(field).or_default() += number(&reason["count"]);
        }
        for part in output["parts"].as_array().into_iter().flatten() {
            self.add_store_report(part);
        }
    }

    fn add_store_report(&mut self, report: &Value) {
        self.events_written += number(&report["eventsWritten"]);
        let lake_objects = report["lakeObjects"].as_array();
        self.lake_objects += lake_objects.map_or(0, |objects| objects.len() as u64);
        if self.first_lake_object.is_none() {
            self.first_lake_object = lake_objects
                .and_then(|objects| objects.first())
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        if let Some(key) = report["quarantineObject"].as_str() {
            self.quarantine_objects.push(key.to_owned());
        }
        self.documents_indexed += number(&report["documentsIndexed"]);
        match report["aggregates"].as_str() {
            Some("applied") => self.aggregates_applied += 1,
            Some("already-applied") => self.aggregates_already_applied += 1,
            _ => {}
        }
        self.high_risk += number(&report["highRiskEvents"]);
        self.notifications += number(&report["notificationsSent"]);
    }

    pub fn events_in(&self) -> u64 {
        self.per_source
            .values()
            .map(|totals| totals.accepted + totals.rejected + totals.duplicates)
            .sum()
    }

    /// Prints the summary table and where every output went.
    pub fn print(&self, places: &OutputPlaces, elapsed: Duration) {
        println!();
        println!(
            "{:<18} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "source", "batches", "accepted", "rejected", "skipped", "duplicates"
        );
        let mut total = SourceTotals::default();
        for (source, totals) in &self.per_source {
            println!(
                "{source:<18} {:>10} {:>10} {:>10} {:>10} {:>10}",
                totals.executions,
                totals.accepted,
                totals.rejected,
                totals.skipped,
                totals.duplicates
            );
            total.executions += totals.executions;
            total.accepted += totals.accepted;
            total.rejected += totals.rejected;
            total.skipped += totals.skipped;
            total.duplicates += totals.duplicates;
        }
        println!(
            "{:<18} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "total",
            total.executions,
            total.accepted,
            total.rejected,
            total.skipped,
            total.duplicates
        );
        println!();
        println!(
            "executions: {} processed, {} quarantined (no valid record), {} failed",
            self.processed,
            self.quarantined,
            self.failed.len()
        );
        if !self.reasons.is_empty() {
            let mut reasons: Vec<(&String, &u64)> = self.reasons.iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let top: Vec<String> = reasons
                .iter()
                .take(5)
                .map(|(field, count)| format!("{field} ({count})"))
                .collect();
            println!("top rejection fields: {}", top.join(", "));
        }
        println!(
            "alerts: {} high-risk events; {} notifications sent to {}",
            self.high_risk, self.notifications, places.notifications
        );
        println!();
        println!(
            "events table:   {} events written to {}",
            self.events_written, places.tables
        );
        println!(
            "aggregates:     {} parts applied, {} already applied before (replays)",
            self.aggregates_applied, self.aggregates_already_applied
        );
        println!(
            "search index:   {} documents indexed in {}",
            self.documents_indexed, places.search
        );
        println!(
            "data lake:      {} Parquet objects under {}{}",
            self.lake_objects,
            places.lake,
            self.first_lake_object
                .as_deref()
                .map(|key| format!(" (e.g. {key})"))
                .unwrap_or_default()
        );
        if !self.quarantine_objects.is_empty() {
            println!(
                "quarantine:     {} objects under {}/rejected/ (e.g. {})",
                self.quarantine_objects.len(),
                places.lake,
                self.quarantine_objects[0]
            );
        }
        println!(
            "largest state payload: {} bytes (Step Functions allows 262144)",
            self.largest_payload_bytes
        );
        for (label, error, cause) in self.failed.iter().take(10) {
            println!("FAILED {label}: {error}: {cause}");
        }
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let events = self.events_in();
        if let Some(peak) = peak_resident_mebibytes() {
            println!("peak memory: {peak:.0} MiB resident");
        }
        println!();
        println!(
            "{events} events in {:.2} s: {:.0} events/s",
            seconds,
            events as f64 / seconds
        );
    }
}

/// The process's peak resident set size, from `/proc/self/status` (Linux only).
fn peak_resident_mebibytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kibibytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kibibytes / 1024.0)
}
