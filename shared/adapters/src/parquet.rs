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

/// Files of fewer events are written without dictionary encoding. Each column's dictionary
/// has a fixed cost (its hash table, its page) that a small file does not earn back: the
/// demo's files of about 90 events were the same size either way (31.13 and 31.18 MB in all)
/// and encoded a third faster without (`cargo bench -p pipeline-adapters --bench storage`,
/// `encode_parquet`), while files of about 2,500 events were 7 % larger without.
pub const DICTIONARY_MIN_EVENTS: usize = 1_000;

/// Encodes events as a Snappy-compressed Parquet file.
pub fn encode_events(events: &[StoredEvent]) -> Result<Vec<u8>, String> {
    let batch = record_batch(events)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(events.len() >= DICTIONARY_MIN_EVENTS)
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
    // Each column borrows its strings from the events: the builder copies them once.
    let strings = |value: &dyn for<'e> Fn(&'e StoredEvent<'_>) -> Option<&'e str>| -> ArrayRef {
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
        scores.append_option(stored.risk.map(|risk| risk.score));
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|e| Some(&e.enriched.event.event_id)),
        strings(&|e| Some(&e.enriched.event.user_id)),
        strings(&|e| Some(&e.enriched.event.event_type)),
        Arc::new(timestamps.finish()),
        Arc::new(times.finish()),
        strings(&|e| Some(e.enriched.event.data.json())),
        strings(&|e| Some(e.enriched.source.kind.as_str())),
        strings(&|e| Some(&e.enriched.source.id)),
        strings(&|e| Some(&e.enriched.processed_at)),
        strings(&|e| e.enriched.device.as_ref().map(|d| d.category.as_str())),
        strings(&|e| e.enriched.device.as_ref().map(|d| d.os.as_str())),
        strings(&|e| e.enriched.device.as_ref().map(|d| d.browser.as_str())),
        strings(&|e| e.enriched.profile.as_ref().map(|p| p.segment.as_str())),
        strings(&|e| e.enriched.profile.as_ref().map(|p| p.country.as_str())),
        Arc::new(scores.finish()),
        strings(&|e| {
            e.risk.map(|r| match r.label {
                RiskLabel::High => "high",
                RiskLabel::Low => "low",
            })
        }),
        strings(&|e| e.risk.map(|r| r.model_version.as_str())),
    ];
    RecordBatch::try_new(events_schema(), columns).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use pipeline_domain::stages::enrich::EnrichedEvent;
    use pipeline_domain::stages::store::join_scores;

    use super::*;

    /// `count` enriched events made from the store stage's fixture, each with its own id.
    fn enriched_events(count: usize) -> Vec<EnrichedEvent> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/pipeline/store-input.json"
        );
        let input: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("the fixture")).unwrap();
        let events: Vec<EnrichedEvent> = serde_json::from_value(input["events"].clone()).unwrap();
        (0..count)
            .map(|number| {
                let mut enriched = events[number % events.len()].clone();
                enriched.event.event_id = format!("evt_{number}");
                enriched
            })
            .collect()
    }

    fn stored(events: &[EnrichedEvent]) -> Vec<StoredEvent<'_>> {
        join_scores(events, &[]).unwrap()
    }

    /// The rows of a file and whether any of its columns is dictionary encoded.
    fn read(body: Vec<u8>) -> (i64, bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.parquet");
        std::fs::write(&path, body).unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let metadata = reader.metadata();
        let dictionary = metadata.row_groups().iter().any(|group| {
            group.columns().iter().any(|column| {
                column.dictionary_page_offset().is_some()
                    || column
                        .encodings()
                        .any(|encoding| encoding == Encoding::RLE_DICTIONARY)
            })
        });
        (metadata.file_metadata().num_rows(), dictionary)
    }

    #[test]
    fn small_files_are_written_plain_and_large_ones_with_dictionaries() {
        let small = enriched_events(DICTIONARY_MIN_EVENTS - 1);
        let small = stored(&small);
        assert_eq!(
            read(encode_events(&small).unwrap()),
            (small.len() as i64, false)
        );
        let large = enriched_events(DICTIONARY_MIN_EVENTS);
        let large = stored(&large);
        assert_eq!(
            read(encode_events(&large).unwrap()),
            (large.len() as i64, true)
        );
    }
}
