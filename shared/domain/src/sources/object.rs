//! S3 objects as a stream of records: JSON Lines or one JSON array, optionally gzip.
//!
//! Objects are read through the [`ObjectSource`] port and never held whole in memory: records
//! are cut from the stream one at a time, and a record over [`MAX_RECORD_BYTES`] is skipped
//! over (only its size is kept) so a single huge line cannot exhaust memory.

use std::io::{self, BufRead, BufReader, Read};

use aws_lambda_events::s3::S3Event;
use flate2::bufread::MultiGzDecoder;
use serde_json::Value;

use super::{DecodeError, Decoded, Payload, SkippedRecord, SourceRecord, parse_shape};
use crate::event::{SourceKind, SourceRef};
use crate::ports::ObjectSource;
use crate::schema::MAX_RECORD_BYTES;

/// The objects an S3 notification names, opened one after the other as their records are read.
///
/// Records that do not create an object are reported as skipped, in their place in the order.
pub struct S3Records<'a> {
    objects: &'a dyn ObjectSource,
    pending: std::vec::IntoIter<Result<(String, String), (String, String)>>,
    current: Option<(String, ObjectRecords)>,
    next_index: usize,
}

/// One item of a record stream: a record to check, or one skipped on purpose.
#[derive(Debug, Clone, PartialEq)]
pub enum Streamed {
    Record(SourceRecord),
    Skipped(SkippedRecord),
}

impl<'a> S3Records<'a> {
    /// Reads the notification; no object is opened yet.
    pub(super) fn new(event: &Value, objects: &'a dyn ObjectSource) -> Result<Self, DecodeError> {
        let event: S3Event = parse_shape(SourceKind::S3, event)?;
        let malformed = |message: &str| DecodeError::Malformed {
            kind: SourceKind::S3,
            message: message.to_owned(),
        };
        let mut pending = Vec::with_capacity(event.records.len());
        for record in event.records {
            let bucket = record
                .s3
                .bucket
                .name
                .ok_or_else(|| malformed("s3.bucket.name is missing"))?;
            let key = match (record.s3.object.url_decoded_key, record.s3.object.key) {
                (Some(decoded), _) => decoded,
                (None, Some(key)) => decode_object_key(&key),
                (None, None) => return Err(malformed("s3.object.key is missing")),
            };
            let event_name = record.event_name.unwrap_or_default();
            if !event_name.is_empty() && !event_name.starts_with("ObjectCreated") {
                pending.push(Err((format!("{bucket}/{key}"), event_name)));
            } else {
                pending.push(Ok((bucket, key)));
            }
        }
        Ok(Self {
            objects,
            pending: pending.into_iter(),
            current: None,
            next_index: 0,
        })
    }

    fn next_ref(&mut self, id: String) -> SourceRef {
        let source = SourceRef {
            kind: SourceKind::S3,
            id,
            index: self.next_index,
        };
        self.next_index += 1;
        source
    }
}

impl Iterator for S3Records<'_> {
    type Item = Result<Streamed, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((object, records)) = &mut self.current {
                if let Some(record) = records.next() {
                    let id = format!("{object}#{}", record.number);
                    let source = self.next_ref(id);
                    return Some(Ok(Streamed::Record(SourceRecord {
                        source,
                        payload: record.payload,
                    })));
                }
                self.current = None;
            }
            match self.pending.next()? {
                Err((object, event_name)) => {
                    let source = self.next_ref(object);
                    return Some(Ok(Streamed::Skipped(SkippedRecord {
                        source,
                        reason: format!("{event_name} does not create an object"),
                    })));
                }
                Ok((bucket, key)) => match self.objects.open(&bucket, &key) {
                    Ok(reader) => {
                        self.current =
                            Some((format!("{bucket}/{key}"), ObjectRecords::new(reader)));
                    }
                    Err(error) => return Some(Err(error.into())),
                },
            }
        }
    }
}

pub(super) fn decode_s3(event: &Value, objects: &dyn ObjectSource) -> Result<Decoded, DecodeError> {
    let mut decoded = Decoded {
        kind: SourceKind::S3,
        records: Vec::new(),
        skipped: Vec::new(),
        batch_id: None,
    };
    for item in S3Records::new(event, objects)? {
        match item? {
            Streamed::Record(record) => decoded.records.push(record),
            Streamed::Skipped(skipped) => decoded.skipped.push(skipped),
        }
    }
    Ok(decoded)
}

/// Keys in S3 notifications are URL-encoded, with `+` for spaces.
pub fn decode_object_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        match bytes[position] {
            b'+' => decoded.push(b' '),
            b'%' if position + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[position + 1..position + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        decoded.push(byte);
                        position += 2;
                    }
                    None => decoded.push(b'%'),
                }
            }
            other => decoded.push(other),
        }
        position += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// One record cut from an object, numbered from 1 (the line, or the element of the array).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRecord {
    pub number: usize,
    pub payload: Payload,
}

enum Format {
    Lines,
    Array { finished: bool },
}

/// An iterator over the records of one object.
pub struct ObjectRecords {
    reader: Box<dyn BufRead + Send>,
    format: Format,
    number: usize,
    failed: bool,
}

impl ObjectRecords {
    /// Wraps a raw object stream, recognising gzip by its magic bytes and the format by its
    /// first non-blank byte (`[` for a JSON array, anything else for JSON Lines).
    pub fn new(raw: Box<dyn Read + Send>) -> Self {
        let mut buffered = BufReader::with_capacity(64 * 1024, raw);
        let gzip = matches!(buffered.fill_buf(), Ok(head) if head.starts_with(&[0x1f, 0x8b]));
        let mut reader: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                64 * 1024,
                MultiGzDecoder::new(buffered),
            ))
        } else {
            Box::new(buffered)
        };
        let format = match first_non_blank(&mut reader) {
            Ok(Some(b'[')) => {
                reader.consume(1);
                Format::Array { finished: false }
            }
            _ => Format::Lines,
        };
        Self {
            reader,
            format,
            number: 0,
            failed: false,
        }
    }

    fn next_line(&mut self) -> io::Result<Option<Payload>> {
        loop {
            let mut line = BoundedBuffer::default();
            let mut read_any = false;
            let mut ended_by_newline = false;
            loop {
                let available = self.reader.fill_buf()?;
                if available.is_empty() {
                    break;
                }
                read_any = true;
                if let Some(end) = available.iter().position(|byte| *byte == b'\n') {
                    line.extend(&available[..end]);
                    self.reader.consume(end + 1);
                    ended_by_newline = true;
                    break;
                }
                let length = available.len();
                line.extend(available);
                self.reader.consume(length);
            }
            if !read_any {
                return Ok(None);
            }
            self.number += 1;
            let payload = line.into_payload();
            if !is_blank(&payload) {
                return Ok(Some(payload));
            }
            if !ended_by_newline {
                return Ok(None);
            }
        }
    }

    fn next_element(&mut self) -> io::Result<Option<Payload>> {
        // Skip blanks and the comma between elements; stop at the closing bracket.
        loop {
            match first_non_blank(&mut self.reader)? {
                None => {
                    self.number += 1;
                    return Ok(Some(Payload::Undecodable {
                        pointer: String::new(),
                        reason: "the JSON array ends without its closing bracket".to_owned(),
                    }));
                }
                Some(b',') => self.reader.consume(1),
                Some(b']') => {
                    self.reader.consume(1);
                    return Ok(None);
                }
                Some(_) => break,
            }
        }
        self.number += 1;
        let mut element = BoundedBuffer::default();
        let mut scanner = ElementScanner::default();
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                return Ok(Some(Payload::Undecodable {
                    pointer: String::new(),
                    reason: "the JSON array ends in the middle of an element".to_owned(),
                }));
            }
            match scanner.find_end(available) {
                Some(end) => {
                    element.extend(&available[..end]);
                    self.reader.consume(end);
                    return Ok(Some(element.into_payload()));
                }
                None => {
                    let length = available.len();
                    element.extend(available);
                    self.reader.consume(length);
                }
            }
        }
    }
}

impl Iterator for ObjectRecords {
    type Item = ObjectRecord;

    fn next(&mut self) -> Option<ObjectRecord> {
        if self.failed {
            return None;
        }
        let result = match &mut self.format {
            Format::Lines => self.next_line(),
            Format::Array { finished: true } => Ok(None),
            Format::Array { finished: false } => {
                let result = self.next_element();
                if matches!(
                    result,
                    Ok(None) | Ok(Some(Payload::Undecodable { .. })) | Err(_)
                ) {
                    self.format = Format::Array { finished: true };
                }
                result
            }
        };
        match result {
            Ok(Some(payload)) => Some(ObjectRecord {
                number: self.number,
                payload,
            }),
            Ok(None) => None,
            Err(error) => {
                // A read or decompression failure ends the object; what was read is kept.
                self.failed = true;
                Some(ObjectRecord {
                    number: self.number + 1,
                    payload: Payload::Undecodable {
                        pointer: String::new(),
                        reason: format!("the object could not be read further: {error}"),
                    },
                })
            }
        }
    }
}

/// Collects a record's bytes up to the size limit, counting (not keeping) the rest.
#[derive(Default)]
struct BoundedBuffer {
    bytes: Vec<u8>,
    total: usize,
}

impl BoundedBuffer {
    fn extend(&mut self, chunk: &[u8]) {
        self.total += chunk.len();
        if self.total <= MAX_RECORD_BYTES {
            self.bytes.extend_from_slice(chunk);
        } else if !self.bytes.is_empty() {
            self.bytes = Vec::new();
        }
    }

    fn into_payload(self) -> Payload {
        if self.total > MAX_RECORD_BYTES {
            Payload::Oversized { bytes: self.total }
        } else {
            let mut bytes = self.bytes;
            while bytes.last().is_some_and(u8::is_ascii_whitespace) {
                bytes.pop();
            }
            Payload::Bytes(bytes)
        }
    }
}

fn is_blank(payload: &Payload) -> bool {
    matches!(payload, Payload::Bytes(bytes) if bytes.iter().all(u8::is_ascii_whitespace))
}

/// Peeks at the next non-blank byte without consuming it; blanks before it are consumed.
fn first_non_blank(reader: &mut Box<dyn BufRead + Send>) -> io::Result<Option<u8>> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(None);
        }
        match available
            .iter()
            .position(|byte| !byte.is_ascii_whitespace())
        {
            Some(at) => {
                let byte = available[at];
                reader.consume(at);
                return Ok(Some(byte));
            }
            None => {
                let length = available.len();
                reader.consume(length);
            }
        }
    }
}

/// Finds where one JSON value inside an array ends, across buffer boundaries.
#[derive(Default)]
struct ElementScanner {
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl ElementScanner {
    /// The offset in `chunk` just past the element, when the element ends in this chunk.
    fn find_end(&mut self, chunk: &[u8]) -> Option<usize> {
        for (offset, byte) in chunk.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if *byte == b'\\' {
                    self.escaped = true;
                } else if *byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => self.depth -= 1,
                b',' | b']' if self.depth == 0 => return Some(offset),
                _ => {}
            }
        }
        None
    }
}
