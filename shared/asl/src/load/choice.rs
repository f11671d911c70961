//! Choice states and their rules: each top-level rule has a `Next`, nested ones (inside
//! `And`, `Or`, `Not`) do not, and every rule holds exactly one test or combination.

use serde_json::Value;

use super::common;
use super::fields::{self, Fields};
use crate::choice::{self, ChoiceRule, Comparison, Condition, Operand, Operator, Test, ValueKind};
use crate::error::LoadError;
use crate::model::ChoiceState;
use crate::path::DataPath;

pub(crate) fn choice_state(fields: &Fields<'_>) -> Result<ChoiceState, LoadError> {
    fields.allow_only(
        &[
            "Type",
            "Comment",
            "QueryLanguage",
            "Choices",
            "Default",
            "InputPath",
            "OutputPath",
        ],
        "a Choice state",
    )?;
    let items = fields
        .array("Choices")?
        .ok_or_else(|| fields.error("Choices", "is required"))?;
    if items.is_empty() {
        return Err(fields.error("Choices", "must hold at least one rule"));
    }
    let mut rules = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        let rule = Fields::of(fields.state(), &format!("Choices[{position}]"), item)?;
        let condition = condition(&rule)?;
        let next = rule
            .string("Next")?
            .ok_or_else(|| rule.error("Next", "is required in a top-level Choice rule"))?;
        rules.push(ChoiceRule {
            condition,
            next: next.to_string(),
        });
    }
    Ok(ChoiceState {
        filters: common::filters(fields)?,
        rules,
        default: fields.string("Default")?.map(str::to_string),
    })
}

/// Reads one rule's condition. The caller checks `Next` for top-level rules.
fn condition(rule: &Fields<'_>) -> Result<Condition, LoadError> {
    let mut kinds = Vec::new();
    for key in rule.keys() {
        match key.as_str() {
            "Variable" | "Next" | "Comment" => {}
            "And" | "Or" | "Not" => kinds.push(key.as_str()),
            other if choice::parse_operator(other).is_some() => kinds.push(other),
            other => {
                let reason =
                    fields::refusal_reason(other).unwrap_or("is not a comparison operator");
                return Err(rule.error(other, reason));
            }
        }
    }
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => return Err(rule.error("", "must hold one comparison operator, or And, Or or Not")),
        [first, second, ..] => {
            return Err(rule.error(
                second,
                format!("cannot be given together with {first}: a rule holds one test"),
            ));
        }
    };
    match kind {
        "And" | "Or" | "Not" => combination(rule, kind),
        operator => comparison(rule, operator),
    }
}

fn combination(rule: &Fields<'_>, kind: &str) -> Result<Condition, LoadError> {
    if rule.has("Variable") {
        return Err(rule.error("Variable", format!("cannot be given with {kind}")));
    }
    if kind == "Not" {
        let inner = Fields::of(
            rule.state(),
            &rule.name("Not"),
            rule.get("Not").unwrap_or(&Value::Null),
        )?;
        return Ok(Condition::Not(Box::new(nested(&inner)?)));
    }
    let items = rule.array(kind)?.unwrap_or(&EMPTY);
    if items.is_empty() {
        return Err(rule.error(kind, "must hold at least one rule"));
    }
    let mut conditions = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        let inner = Fields::of(
            rule.state(),
            &rule.name(&format!("{kind}[{position}]")),
            item,
        )?;
        conditions.push(nested(&inner)?);
    }
    Ok(if kind == "And" {
        Condition::And(conditions)
    } else {
        Condition::Or(conditions)
    })
}

static EMPTY: Vec<Value> = Vec::new();

fn nested(rule: &Fields<'_>) -> Result<Condition, LoadError> {
    if rule.has("Next") {
        return Err(rule.error("Next", "is only allowed in a top-level Choice rule"));
    }
    condition(rule)
}

fn comparison(rule: &Fields<'_>, operator_name: &str) -> Result<Condition, LoadError> {
    let variable_text = rule.required_string("Variable")?;
    let variable =
        DataPath::parse(variable_text).map_err(|message| rule.error("Variable", message))?;
    let value = rule.get(operator_name).unwrap_or(&Value::Null);
    let wrong = |expected: &str| rule.error(operator_name, format!("must be {expected}"));
    let test = match choice::parse_operator(operator_name) {
        Some(Operator::Type(test)) => Test::Type {
            test,
            expected: value.as_bool().ok_or_else(|| wrong("true or false"))?,
        },
        Some(Operator::Matches) => Test::Matches(choice::parse_pattern(
            value.as_str().ok_or_else(|| wrong("a string"))?,
        )),
        Some(Operator::Compare {
            kind,
            relation,
            is_path,
        }) => {
            let operand = if is_path {
                let text = value.as_str().ok_or_else(|| wrong("a path"))?;
                Operand::Path(
                    DataPath::parse(text).map_err(|message| rule.error(operator_name, message))?,
                )
            } else {
                let fits = match kind {
                    ValueKind::String => value.is_string(),
                    ValueKind::Numeric => value.is_number(),
                    ValueKind::Boolean => value.is_boolean(),
                    ValueKind::Timestamp => {
                        value.as_str().and_then(choice::parse_timestamp).is_some()
                    }
                };
                if !fits {
                    return Err(wrong(match kind {
                        ValueKind::String => "a string",
                        ValueKind::Numeric => "a number",
                        ValueKind::Boolean => "true or false",
                        ValueKind::Timestamp => "a timestamp such as 2024-01-31T12:00:00Z",
                    }));
                }
                Operand::Literal(value.clone())
            };
            Test::Compare {
                kind,
                relation,
                operand,
            }
        }
        None => return Err(rule.error(operator_name, "is not a comparison operator")),
    };
    Ok(Condition::Test(Box::new(Comparison { variable, test })))
}
