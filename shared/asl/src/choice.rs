//! Choice rules: their compiled form and their evaluation. A comparison whose value is of the
//! wrong type is false (Step Functions does the same); a `Variable` that matches nothing is a
//! `States.Runtime` error, except for `IsPresent`.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;
use std::cmp::Ordering;

use crate::context::Environment;
use crate::error::StateError;
use crate::path::DataPath;

/// A top-level rule of a Choice state.
#[derive(Debug, Clone)]
pub(crate) struct ChoiceRule {
    pub(crate) condition: Condition,
    pub(crate) next: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Test(Box<Comparison>),
}

/// A test of the value at `variable`.
#[derive(Debug, Clone)]
pub(crate) struct Comparison {
    pub(crate) variable: DataPath,
    pub(crate) test: Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeTest {
    Null,
    Present,
    Numeric,
    String,
    Boolean,
    Timestamp,
}

/// What a comparison compares the variable with: a literal or the value at another path.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Literal(Value),
    Path(DataPath),
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    Compare {
        kind: ValueKind,
        relation: Relation,
        operand: Operand,
    },
    /// `StringMatches`: `None` is a `*` wildcard, `Some(c)` a literal character.
    Matches(Vec<Option<char>>),
    Type {
        test: TypeTest,
        expected: bool,
    },
}

/// A comparison operator's name, read into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    Compare {
        kind: ValueKind,
        relation: Relation,
        is_path: bool,
    },
    Matches,
    Type(TypeTest),
}

/// Reads an operator name such as `NumericLessThanEqualsPath`; `None` if it is not one.
pub(crate) fn parse_operator(name: &str) -> Option<Operator> {
    let type_tests = [
        ("IsNull", TypeTest::Null),
        ("IsPresent", TypeTest::Present),
        ("IsNumeric", TypeTest::Numeric),
        ("IsString", TypeTest::String),
        ("IsBoolean", TypeTest::Boolean),
        ("IsTimestamp", TypeTest::Timestamp),
    ];
    if let Some((_, test)) = type_tests.iter().find(|(known, _)| *known == name) {
        return Some(Operator::Type(*test));
    }
    if name == "StringMatches" {
        return Some(Operator::Matches);
    }
    let (base, is_path) = match name.strip_suffix("Path") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let kinds = [
        ("String", ValueKind::String),
        ("Numeric", ValueKind::Numeric),
        ("Boolean", ValueKind::Boolean),
        ("Timestamp", ValueKind::Timestamp),
    ];
    let (prefix, kind) = kinds.iter().find(|(prefix, _)| base.starts_with(prefix))?;
    let relation = match &base[prefix.len()..] {
        "Equals" => Relation::Equals,
        "LessThan" => Relation::LessThan,
        "GreaterThan" => Relation::GreaterThan,
        "LessThanEquals" => Relation::LessThanEquals,
        "GreaterThanEquals" => Relation::GreaterThanEquals,
        _ => return None,
    };
    if *kind == ValueKind::Boolean && relation != Relation::Equals {
        return None;
    }
    Some(Operator::Compare {
        kind: *kind,
        relation,
        is_path,
    })
}

/// Reads a `StringMatches` pattern: `*` matches any run of characters, `\*` is a literal
/// star and `\\` a literal backslash.
pub(crate) fn parse_pattern(pattern: &str) -> Vec<Option<char>> {
    let mut pieces = Vec::with_capacity(pattern.len());
    let mut characters = pattern.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\\' => match characters.peek() {
                Some(&escaped @ ('*' | '\\')) => {
                    characters.next();
                    pieces.push(Some(escaped));
                }
                _ => pieces.push(Some('\\')),
            },
            '*' => pieces.push(None),
            other => pieces.push(Some(other)),
        }
    }
    pieces
}

/// Parses a timestamp as the States Language wants it: RFC 3339 with an uppercase `T`
/// between date and time and an uppercase `Z` (or a numeric offset).
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    if text.as_bytes().get(10) != Some(&b'T') || text.contains(['t', 'z']) {
        return None;
    }
    DateTime::parse_from_rfc3339(text).ok()
}

/// The `Next` of the first rule that holds, if any.
pub(crate) fn choose<'r>(
    rules: &'r [ChoiceRule],
    environment: &Environment<'_>,
) -> Result<Option<&'r str>, StateError> {
    for rule in rules {
        if holds(&rule.condition, environment)? {
            return Ok(Some(&rule.next));
        }
    }
    Ok(None)
}

fn holds(condition: &Condition, environment: &Environment<'_>) -> Result<bool, StateError> {
    match condition {
        Condition::And(conditions) => {
            for inner in conditions {
                if !holds(inner, environment)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Condition::Or(conditions) => {
            for inner in conditions {
                if holds(inner, environment)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Condition::Not(inner) => Ok(!holds(inner, environment)?),
        Condition::Test(comparison) => {
            let Comparison { variable, test } = comparison.as_ref();
            let value = environment.resolve(variable);
            if let Test::Type {
                test: TypeTest::Present,
                expected,
            } = test
            {
                return Ok(value.is_some() == *expected);
            }
            let Some(value) = value else {
                return Err(invalid_path(environment, variable));
            };
            evaluate_test(test, &value, environment)
        }
    }
}

fn invalid_path(environment: &Environment<'_>, path: &DataPath) -> StateError {
    StateError::runtime(format!(
        "{} Invalid path '{}': The choice state's condition path references an invalid value.",
        environment.error_prefix(),
        path.text()
    ))
}

fn evaluate_test(
    test: &Test,
    value: &Value,
    environment: &Environment<'_>,
) -> Result<bool, StateError> {
    match test {
        Test::Type { test, expected } => {
            let is = match test {
                TypeTest::Null => value.is_null(),
                TypeTest::Present => true,
                TypeTest::Numeric => value.is_number(),
                TypeTest::String => value.is_string(),
                TypeTest::Boolean => value.is_boolean(),
                TypeTest::Timestamp => value.as_str().and_then(parse_timestamp).is_some(),
            };
            Ok(is == *expected)
        }
        Test::Matches(pattern) => Ok(value
            .as_str()
            .is_some_and(|text| glob_matches(pattern, text))),
        Test::Compare {
            kind,
            relation,
            operand,
        } => {
            let other = match operand {
                Operand::Literal(literal) => literal.clone(),
                Operand::Path(path) => environment
                    .resolve(path)
                    .ok_or_else(|| invalid_path(environment, path))?,
            };
            Ok(compare(*kind, value, &other)
                .is_some_and(|ordering| relation_holds(*relation, ordering)))
        }
    }
}

fn relation_holds(relation: Relation, ordering: Ordering) -> bool {
    match relation {
        Relation::Equals => ordering == Ordering::Equal,
        Relation::LessThan => ordering == Ordering::Less,
        Relation::GreaterThan => ordering == Ordering::Greater,
        Relation::LessThanEquals => ordering != Ordering::Greater,
        Relation::GreaterThanEquals => ordering != Ordering::Less,
    }
}

/// Orders two values of `kind`; `None` when either is not of that kind.
fn compare(kind: ValueKind, left: &Value, right: &Value) -> Option<Ordering> {
    match kind {
        // Java compares strings by UTF-16 code units; so does this.
        ValueKind::String => Some(
            left.as_str()?
                .encode_utf16()
                .cmp(right.as_str()?.encode_utf16()),
        ),
        ValueKind::Numeric => left.as_f64()?.partial_cmp(&right.as_f64()?),
        ValueKind::Boolean => (left.as_bool()? == right.as_bool()?)
            .then_some(Ordering::Equal)
            .or(Some(Ordering::Less)),
        ValueKind::Timestamp => {
            let left = parse_timestamp(left.as_str()?)?;
            let right = parse_timestamp(right.as_str()?)?;
            Some(left.cmp(&right))
        }
    }
}

/// Matches `text` against a pattern of literal characters and `*` wildcards.
fn glob_matches(pattern: &[Option<char>], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut pattern_index, mut text_index) = (0usize, 0usize);
    let mut last_star: Option<(usize, usize)> = None;
    while text_index < text.len() {
        match pattern.get(pattern_index) {
            Some(None) => {
                last_star = Some((pattern_index, text_index));
                pattern_index += 1;
            }
            Some(Some(character)) if *character == text[text_index] => {
                pattern_index += 1;
                text_index += 1;
            }
            _ => match last_star {
                Some((star, matched)) => {
                    pattern_index = star + 1;
                    text_index = matched + 1;
                    last_star = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[pattern_index.min(pattern.len())..]
        .iter()
        .all(Option::is_none)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        assert_eq!(
            parse_operator("NumericLessThanEqualsPath"),
            Some(Operator::Compare {
                kind: ValueKind::Numeric,
                relation: Relation::LessThanEquals,
                is_path: true
            })
        );
        assert_eq!(
            parse_operator("IsTimestamp"),
            Some(Operator::Type(TypeTest::Timestamp))
        );
        assert_eq!(parse_operator("BooleanLessThan"), None);
        assert_eq!(parse_operator("StringMatchesPath"), None);
        assert_eq!(parse_operator("NumericEqual"), None);
    }

    #[test]
    fn wildcard_patterns() {
        let pattern = parse_pattern("log-*.txt");
        assert!(glob_matches(&pattern, "log-2024.txt"));
        assert!(glob_matches(&pattern, "log-.txt"));
        assert!(!glob_matches(&pattern, "log-2024.txt.gz"));
        let escaped = parse_pattern("a\\*b*");
        assert!(glob_matches(&escaped, "a*bcd"));
        assert!(!glob_matches(&escaped, "axbcd"));
        assert!(glob_matches(&parse_pattern("*"), ""));
        assert!(glob_matches(&parse_pattern("*a*a"), "banana"));
        assert!(glob_matches(&parse_pattern("c:\\\\dir"), "c:\\dir"));
    }

    #[test]
    fn timestamps_follow_the_rfc_3339_profile() {
        assert!(parse_timestamp("2024-01-02T03:04:05Z").is_some());
        assert!(parse_timestamp("2024-01-02T03:04:05.123+02:00").is_some());
        assert!(parse_timestamp("2024-01-02t03:04:05Z").is_none());
        assert!(parse_timestamp("2024-01-02T03:04:05z").is_none());
        assert!(parse_timestamp("2024-01-02 03:04:05Z").is_none());
        assert!(parse_timestamp("yesterday").is_none());
    }
}
