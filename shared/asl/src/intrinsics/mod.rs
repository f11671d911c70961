//! Intrinsic functions (`States.Format(...)` and the others): the call syntax is parsed once
//! at load into a tree of calls and arguments; `functions` evaluates it.

mod functions;
mod parser;

pub(crate) use functions::evaluate_call;
pub(crate) use parser::parse_call;

use serde_json::Value;

use crate::path::DataPath;

/// The intrinsic functions of the JSONPath query language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

/// Each function with its name and its least and greatest number of arguments.
pub(super) const FUNCTIONS: [(&str, Function, usize, Option<usize>); 18] = [
    ("States.Format", Function::Format, 1, None),
    ("States.StringToJson", Function::StringToJson, 1, Some(1)),
    ("States.JsonToString", Function::JsonToString, 1, Some(1)),
    ("States.Array", Function::Array, 0, None),
    (
        "States.ArrayPartition",
        Function::ArrayPartition,
        2,
        Some(2),
    ),
    ("States.ArrayContains", Function::ArrayContains, 2, Some(2)),
    ("States.ArrayRange", Function::ArrayRange, 3, Some(3)),
    ("States.ArrayGetItem", Function::ArrayGetItem, 2, Some(2)),
    ("States.ArrayLength", Function::ArrayLength, 1, Some(1)),
    ("States.ArrayUnique", Function::ArrayUnique, 1, Some(1)),
    ("States.Base64Encode", Function::Base64Encode, 1, Some(1)),
    ("States.Base64Decode", Function::Base64Decode, 1, Some(1)),
    ("States.Hash", Function::Hash, 2, Some(2)),
    ("States.JsonMerge", Function::JsonMerge, 3, Some(3)),
    ("States.MathRandom", Function::MathRandom, 2, Some(3)),
    ("States.MathAdd", Function::MathAdd, 2, Some(2)),
    ("States.StringSplit", Function::StringSplit, 2, Some(2)),
    ("States.UUID", Function::Uuid, 0, Some(0)),
];

impl Function {
    pub(crate) fn name(self) -> &'static str {
        FUNCTIONS
            .iter()
            .find(|(_, function, _, _)| *function == self)
            .map_or("States.?", |(name, _, _, _)| name)
    }
}

/// A parsed call such as `States.Format('{} items', $.count)`.
#[derive(Debug, Clone)]
pub(crate) struct IntrinsicCall {
    pub(crate) function: Function,
    pub(crate) arguments: Vec<Argument>,
}

/// One argument of a call.
#[derive(Debug, Clone)]
pub(crate) enum Argument {
    /// A number, `true`, `false` or `null`.
    Literal(Value),
    /// A quoted string, with its `{}` placeholders located for `States.Format`.
    Text(StringLiteral),
    /// A path into the state's data (`$`) or the context object (`$$`).
    Path(DataPath),
    /// A nested call.
    Call(IntrinsicCall),
}

/// A quoted string argument, its escapes undone.
#[derive(Debug, Clone)]
pub(crate) struct StringLiteral {
    pub(crate) value: String,
    /// The string cut at its unescaped `{}` placeholders (escaped `\{` `\}` stay text).
    pub(crate) format_pieces: Vec<FormatPiece>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FormatPiece {
    Text(String),
    Placeholder,
}

/// True when a `.$` value should be read as an intrinsic call rather than a path.
pub(crate) fn looks_like_call(text: &str) -> bool {
    text.trim_start().starts_with("States.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_calls_and_literals() {
        let call = parse_call(
            "States.Format('{} and \\{\\} it\\'s', States.ArrayGetItem(States.StringSplit($.a, ','), 0), -1.5, true, null)",
        )
        .unwrap();
        assert_eq!(call.function, Function::Format);
        assert_eq!(call.arguments.len(), 5);
        let Argument::Text(template) = &call.arguments[0] else {
            panic!("not text")
        };
        assert_eq!(template.value, "{} and {} it's");
        assert_eq!(
            template.format_pieces,
            vec![
                FormatPiece::Text(String::new()),
                FormatPiece::Placeholder,
                FormatPiece::Text(" and {} it's".to_string())
            ]
        );
        assert!(matches!(call.arguments[1], Argument::Call(_)));
        assert!(
            matches!(&call.arguments[2], Argument::Literal(v) if v == &serde_json::json!(-1.5))
        );
    }

    #[test]
    fn paths_with_brackets_and_context_paths() {
        let call = parse_call("States.Array($.a[0,1], $['x,y'], $$.Execution.Id)").unwrap();
        assert_eq!(call.arguments.len(), 3);
    }

    #[test]
    fn refuses_bad_calls() {
        for text in [
            "States.Nope(1)",
            "States.ArrayLength()",
            "States.UUID(1)",
            "States.Format('a\\q')",
            "States.Format('a{b')",
            "States.Array(1",
            "States.Array(1) extra",
            "States.Array(@)",
        ] {
            assert!(parse_call(text).is_err(), "{text}");
        }
        let deep = format!("{}1{}", "States.Array(".repeat(11), ")".repeat(11));
        assert!(parse_call(&deep).is_err());
        let ten = format!("{}1{}", "States.Array(".repeat(10), ")".repeat(10));
        assert!(parse_call(&ten).is_ok());
    }

    #[test]
    fn random_text_never_panics() {
        let alphabet: Vec<char> = "States.Format(Array)'{}\\$.[],-1e ".chars().collect();
        let mut generator = crate::random::SplitMix64::new(5);
        for _ in 0..20_000 {
            let length = generator.below(30) as usize;
            let mut text = String::from(if generator.below(2) == 0 {
                "States.Format("
            } else {
                "States.Array("
            });
            for _ in 0..length {
                text.push(alphabet[generator.below(alphabet.len() as u64) as usize]);
            }
            let _ = parse_call(&text);
        }
    }
}
