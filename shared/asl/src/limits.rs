//! The payload size limit: Step Functions refuses any state input or output, and any task
//! result, whose UTF-8 JSON text is larger than 256 KiB (262,144 bytes).

use serde_json::Value;
use std::io;

use crate::error::{StateError, names};

/// The Step Functions payload limit, in bytes.
pub const DEFAULT_PAYLOAD_LIMIT_BYTES: usize = 262_144;

/// An `io::Write` that only counts the bytes written to it.
struct CountingWriter {
    bytes: usize,
}

impl io::Write for CountingWriter {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.bytes += buffer.len();
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The size of `value` as compact UTF-8 JSON, counted without building the string.
pub fn serialized_size(value: &Value) -> usize {
    let mut counter = CountingWriter { bytes: 0 };
    // Writing a `Value` cannot fail: its keys are strings and the writer never fails.
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.bytes,
        Err(_) => usize::MAX,
    }
}

/// Which payload of a state is being measured, for the error's cause.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PayloadKind {
    /// The state's input, as it entered.
    Input,
    /// The input after `InputPath` and `Parameters` (or a Map iteration's `ItemSelector`).
    EffectiveInput,
    /// What a task (or the branches of a Parallel, or the iterations of a Map) returned.
    Result,
    /// The state's output, after `ResultSelector`, `ResultPath` and `OutputPath`.
    Output,
}

/// The `States.DataLimitExceeded` error for a payload of `size` bytes over `limit`.
pub(crate) fn data_limit_error(
    state: &str,
    kind: PayloadKind,
    size: usize,
    limit: usize,
) -> StateError {
    let what = match kind {
        PayloadKind::Input => "received an input",
        PayloadKind::EffectiveInput => "built an input (after InputPath and Parameters)",
        PayloadKind::Result => "returned a result",
        PayloadKind::Output => "produced an output",
    };
    StateError::new(
        names::DATA_LIMIT_EXCEEDED,
        format!(
            "The state/task '{state}' {what} with a size exceeding the maximum number of bytes \
             service limit. ({size} bytes, the limit is {limit} bytes)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_compact_utf8_bytes() {
        let value = json!({"a": [1, "é"]});
        assert_eq!(serialized_size(&value), value.to_string().len());
        assert_eq!(serialized_size(&json!("é")), 4);
    }
}
