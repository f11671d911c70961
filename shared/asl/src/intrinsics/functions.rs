//! Evaluation of intrinsic function calls. Arguments of the wrong kind raise
//! `States.IntrinsicFailure` with a cause naming the function and the argument.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use sha2::Digest;

use super::{Argument, FormatPiece, Function, IntrinsicCall};
use crate::context::Environment;
use crate::error::StateError;
use crate::random::SplitMix64;

/// The longest string `States.Base64Encode`, `States.Base64Decode` and `States.Hash` accept.
const MAXIMUM_TEXT_CHARACTERS: usize = 10_000;
/// The longest array `States.ArrayRange` may build.
const MAXIMUM_RANGE_ITEMS: usize = 1_000;

/// Evaluates `call`; `field` names the template field that holds it, for error causes.
pub(crate) fn evaluate_call(
    call: &IntrinsicCall,
    environment: &Environment<'_>,
    field: &str,
) -> Result<Value, StateError> {
    let mut values = Vec::with_capacity(call.arguments.len());
    for argument in &call.arguments {
        values.push(match argument {
            Argument::Literal(value) => value.clone(),
            Argument::Text(text) => Value::String(text.value.clone()),
            Argument::Path(path) => environment.resolve_required(path, field)?,
            Argument::Call(inner) => evaluate_call(inner, environment, field)?,
        });
    }
    let arguments = Arguments {
        function: call.function,
        values,
    };
    match call.function {
        Function::Format => format(call, &arguments),
        Function::StringToJson => {
            let text = arguments.string(0)?;
            serde_json::from_str(text).map_err(|error| {
                arguments.failure(format!("the argument is not JSON text: {error}"))
            })
        }
        Function::JsonToString => Ok(Value::String(arguments.value(0).to_string())),
        Function::Array => Ok(Value::Array(arguments.values)),
        Function::ArrayPartition => array_partition(&arguments),
        Function::ArrayContains => {
            let items = arguments.array(0)?;
            Ok(Value::Bool(items.contains(arguments.value(1))))
        }
        Function::ArrayRange => array_range(&arguments),
        Function::ArrayGetItem => {
            let items = arguments.array(0)?;
            let index = arguments.integer(1)?;
            usize::try_from(index)
                .ok()
                .and_then(|position| items.get(position))
                .cloned()
                .ok_or_else(|| {
                    arguments.failure(format!(
                        "the index {index} is outside an array of {} items",
                        items.len()
                    ))
                })
        }
        Function::ArrayLength => Ok(Value::from(arguments.array(0)?.len())),
        Function::ArrayUnique => {
            let mut unique: Vec<Value> = Vec::new();
            for item in arguments.array(0)? {
                if !unique.contains(item) {
                    unique.push(item.clone());
                }
            }
            Ok(Value::Array(unique))
        }
        Function::Base64Encode => {
            let text = arguments.limited_string(0)?;
            Ok(Value::String(BASE64.encode(text.as_bytes())))
        }
        Function::Base64Decode => {
            let text = arguments.limited_string(0)?;
            let bytes = BASE64.decode(text.as_bytes()).map_err(|error| {
                arguments.failure(format!("the argument is not Base64: {error}"))
            })?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| arguments.failure("the decoded bytes are not UTF-8 text"))
        }
        Function::Hash => hash(&arguments),
        Function::JsonMerge => json_merge(&arguments),
        Function::MathRandom => math_random(&arguments, environment),
        Function::MathAdd => {
            let sum = arguments.int32(0)? + arguments.int32(1)?;
            Ok(Value::from(sum))
        }
        Function::StringSplit => {
            let text = arguments.string(0)?;
            let delimiters: Vec<char> = arguments.string(1)?.chars().collect();
            let parts = text
                .split(|character| delimiters.contains(&character))
                .filter(|part| !part.is_empty())
                .map(|part| Value::String(part.to_string()))
                .collect();
            Ok(Value::Array(parts))
        }
        Function::Uuid => Ok(Value::String(environment.with_random(SplitMix64::uuid_v4))),
    }
}

struct Arguments {
    function: Function,
    values: Vec<Value>,
}

impl Arguments {
    fn failure(&self, message: impl AsRef<str>) -> StateError {
        StateError::intrinsic(format!(
            "Invalid arguments in {}: {}",
            self.function.name(),
            message.as_ref()
        ))
    }

    fn kind_failure(&self, position: usize, expected: &str) -> StateError {
        let found = self.values.get(position).map_or("nothing", kind_of);
        self.failure(format!(
            "argument {} must be {expected}, but it is {found}",
            position + 1
        ))
    }

    fn value(&self, position: usize) -> &Value {
        self.values.get(position).unwrap_or(&Value::Null)
    }

    fn string(&self, position: usize) -> Result<&str, StateError> {
        match self.values.get(position) {
            Some(Value::String(text)) => Ok(text),
            _ => Err(self.kind_failure(position, "a string")),
        }
    }

    fn limited_string(&self, position: usize) -> Result<&str, StateError> {
        let text = self.string(position)?;
        if text.chars().count() > MAXIMUM_TEXT_CHARACTERS {
            return Err(self.failure(format!(
                "argument {} is longer than {MAXIMUM_TEXT_CHARACTERS} characters",
                position + 1
            )));
        }
        Ok(text)
    }

    fn array(&self, position: usize) -> Result<&Vec<Value>, StateError> {
        match self.values.get(position) {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(self.kind_failure(position, "an array")),
        }
    }

    fn integer(&self, position: usize) -> Result<i64, StateError> {
        let value = self.values.get(position);
        let integer = value.and_then(|value| match value {
            Value::Number(number) => number.as_i64().or_else(|| {
                number
                    .as_f64()
                    .filter(|float| float.fract() == 0.0 && float.abs() < 9.0e15)
                    .map(|float| float as i64)
            }),
            _ => None,
        });
        integer.ok_or_else(|| self.kind_failure(position, "an integer"))
    }

    fn int32(&self, position: usize) -> Result<i64, StateError> {
        let integer = self.integer(position)?;
        if i32::try_from(integer).is_err() {
            return Err(self.failure(format!(
                "argument {} must be between -2147483648 and 2147483647, but it is {integer}",
                position + 1
            )));
        }
        Ok(integer)
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn format(call: &IntrinsicCall, arguments: &Arguments) -> Result<Value, StateError> {
    let pieces = match call.arguments.first() {
        Some(Argument::Text(literal)) => literal.format_pieces.clone(),
        _ => split_placeholders(arguments.string(0)?),
    };
    let placeholders = pieces
        .iter()
        .filter(|piece| **piece == FormatPiece::Placeholder)
        .count();
    let values = arguments.values.get(1..).unwrap_or_default();
    if placeholders != values.len() {
        return Err(arguments.failure(format!(
            "the template has {placeholders} placeholder(s) but {} value(s) were given",
            values.len()
        )));
    }
    let mut text = String::new();
    let mut next_value = values.iter().enumerate();
    for piece in pieces {
        match piece {
            FormatPiece::Text(literal) => text.push_str(&literal),
            FormatPiece::Placeholder => {
                let Some((index, value)) = next_value.next() else {
                    break;
                };
                match value {
                    Value::String(inner) => text.push_str(inner),
                    Value::Number(_) | Value::Bool(_) | Value::Null => {
                        text.push_str(&value.to_string())
                    }
                    _ => {
                        return Err(
                            arguments.kind_failure(index + 1, "a string, number, boolean or null")
                        );
                    }
                }
            }
        }
    }
    Ok(Value::String(text))
}

/// Cuts a template read from the data (not a literal) at its `{}` placeholders.
fn split_placeholders(template: &str) -> Vec<FormatPiece> {
    let mut pieces = Vec::new();
    for (position, part) in template.split("{}").enumerate() {
        if position > 0 {
            pieces.push(FormatPiece::Placeholder);
        }
        pieces.push(FormatPiece::Text(part.to_string()));
    }
    pieces
}

fn array_partition(arguments: &Arguments) -> Result<Value, StateError> {
    let items = arguments.array(0)?;
    let size = arguments.integer(1)?;
    let size = usize::try_from(size)
        .ok()
        .filter(|size| *size > 0)
        .ok_or_else(|| {
            arguments.failure(format!(
                "the chunk size must be a positive integer, but it is {size}"
            ))
        })?;
    let chunks = items
        .chunks(size)
        .map(|chunk| Value::Array(chunk.to_vec()))
        .collect();
    Ok(Value::Array(chunks))
}

fn array_range(arguments: &Arguments) -> Result<Value, StateError> {
    let start = arguments.integer(0)?;
    let end = arguments.integer(1)?;
    let step = arguments.integer(2)?;
    if step == 0 {
        return Err(arguments.failure("the step must not be 0"));
    }
    let mut items = Vec::new();
    let mut current = start;
    while (step > 0 && current <= end) || (step < 0 && current >= end) {
        if items.len() == MAXIMUM_RANGE_ITEMS {
            return Err(arguments.failure(format!(
                "the range has more than {MAXIMUM_RANGE_ITEMS} items"
            )));
        }
        items.push(Value::from(current));
        let Some(next) = current.checked_add(step) else {
            break;
        };
        current = next;
    }
    Ok(Value::Array(items))
}

fn hash(arguments: &Arguments) -> Result<Value, StateError> {
    let data = arguments.limited_string(0)?.as_bytes();
    let digest: Vec<u8> = match arguments.string(1)? {
        "MD5" => md5::Md5::digest(data).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        other => {
            return Err(arguments.failure(format!(
                "the algorithm '{other}' is not one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"
            )));
        }
    };
    Ok(Value::String(
        digest.iter().map(|byte| format!("{byte:02x}")).collect(),
    ))
}

fn json_merge(arguments: &Arguments) -> Result<Value, StateError> {
    let (Some(Value::Object(first)), Some(Value::Object(second))) =
        (arguments.values.first(), arguments.values.get(1))
    else {
        let position = usize::from(matches!(arguments.values.first(), Some(Value::Object(_))));
        return Err(arguments.kind_failure(position, "an object"));
    };
    if arguments.values.get(2) != Some(&Value::Bool(false)) {
        return Err(
            arguments.failure("argument 3 must be false: only a shallow merge is supported")
        );
    }
    let mut merged: Map<String, Value> = first.clone();
    for (key, value) in second {
        merged.insert(key.clone(), value.clone());
    }
    Ok(Value::Object(merged))
}

fn math_random(arguments: &Arguments, environment: &Environment<'_>) -> Result<Value, StateError> {
    let start = arguments.int32(0)?;
    let end = arguments.int32(1)?;
    if end <= start {
        return Err(arguments.failure(format!(
            "the end ({end}) must be greater than the start ({start})"
        )));
    }
    let span = u64::try_from(end - start).unwrap_or(1);
    let offset = if arguments.values.len() == 3 {
        let seed = arguments.integer(2)?;
        SplitMix64::new(seed as u64).below(span)
    } else {
        environment.with_random(|generator| generator.below(span))
    };
    Ok(Value::from(start + offset as i64))
}
