//! Data lake objects: stored events encoded as one Parquet file per partition and batch.
//!
//! Partition columns (`dt`, `hour`) are in the object key, Hive-style, not in the file.

use std::sync::Arc;

use arrow_array::builder::{
    Float32Builder, Float64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use pipeline_domain::stages::inference::RiskLabel;
use pipeline_domain::stages::store::StoredEvent;

/// The columns of an events object, in order.
pub fn events_schema() -> Arc<Schema> {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("event_id", false),
        text("user_id", false),
        text("event_type", false),
        Field::new("timestamp_ms", DataType::Float64, false),
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        text("data", false),
        text("source_kind", false),
        text("source_id", false),
        text("processed_at", false),
        text("device_category", true),
        text("device_os", true),
        text("device_browser", true),
        text("profile_segment", true),
        text("profile_country", true),
        Field::new("risk_score", DataType::Float32, true),
        text("risk_label", true),
        text("model_version", true),
    ]))
}

/// Encodes events as a Snappy-compressed Parquet file.
pub fn encode_events(events: &[StoredEvent]) -> Result<Vec<u8>, String> {
    let batch = record_batch(events)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut body = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut body, batch.schema(), Some(properties))
        .map_err(|error| error.to_string())?;
    writer.write(&batch).map_err(|error| error.to_string())?;
    writer.close().map_err(|error| error.to_string())?;
    Ok(body)
}

fn record_batch(events: &[StoredEvent]) -> Result<RecordBatch, String> {
    let rows = events.len();
    let strings = |value: &dyn Fn(&StoredEvent) -> Option<String>| -> ArrayRef {
        let mut builder = StringBuilder::with_capacity(rows, rows * 16);
        for event in events {
            builder.append_option(value(event));
        }
        Arc::new(builder.finish())
    };
    let mut timestamps = Float64Builder::with_capacity(rows);
    let mut times = TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC");
    let mut scores = Float32Builder::with_capacity(rows);
    for stored in events {
        let millis = stored.enriched.event.timestamp_millis();
        timestamps.append_value(millis);
        times.append_value(millis.floor() as i64);
        scores.append_option(stored.risk.as_ref().map(|risk| risk.score));
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|e| Some(e.enriched.event.event_id.clone())),
        strings(&|e| Some(e.enriched.event.user_id.clone())),
        strings(&|e| Some(e.enriched.event.event_type.clone())),
        Arc::new(timestamps.finish()),
        Arc::new(times.finish()),
        strings(&|e| serde_json::to_string(&e.enriched.event.data).ok()),
        strings(&|e| Some(e.enriched.source.kind.as_str().to_owned())),
        strings(&|e| Some(e.enriched.source.id.clone())),
        strings(&|e| Some(e.enriched.processed_at.clone())),
        strings(&|e| e.enriched.device.as_ref().map(|d| d.category.clone())),
        strings(&|e| e.enriched.device.as_ref().map(|d| d.os.clone())),
        strings(&|e| e.enriched.device.as_ref().map(|d| d.browser.clone())),
        strings(&|e| e.enriched.profile.as_ref().map(|p| p.segment.clone())),
        strings(&|e| e.enriched.profile.as_ref().map(|p| p.country.clone())),
        Arc::new(scores.finish()),
        strings(&|e| {
            e.risk.as_ref().map(|r| match r.label {
                RiskLabel::High => "high".to_owned(),
                RiskLabel::Low => "low".to_owned(),
            })
        }),
        strings(&|e| e.risk.as_ref().map(|r| r.model_version.clone())),
    ];
    RecordBatch::try_new(events_schema(), columns).map_err(|error| error.to_string())
}
