//! The call syntax of intrinsic functions: nested calls, quoted strings with the escapes
//! `\'` `\{` `\}` `\\` (each backslash doubled in JSON), numbers, `true`, `false`, `null`,
//! and paths as arguments.

use serde_json::Value;

use super::{Argument, FUNCTIONS, FormatPiece, IntrinsicCall, StringLiteral};
use crate::path::DataPath;

/// Step Functions allows at most this many intrinsic calls nested inside one another.
const MAXIMUM_NESTING: usize = 10;

/// Parses a whole `.$` value as one intrinsic call.
pub(crate) fn parse_call(text: &str) -> Result<IntrinsicCall, String> {
    let mut parser = Parser {
        characters: text.chars().collect(),
        position: 0,
        text,
    };
    parser.skip_spaces();
    let call = parser.call(1)?;
    parser.skip_spaces();
    if parser.position != parser.characters.len() {
        return Err(parser.error("unexpected text after the closing ')'"));
    }
    Ok(call)
}

struct Parser<'t> {
    characters: Vec<char>,
    position: usize,
    text: &'t str,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> String {
        format!(
            "'{}' is not a valid intrinsic function call: {message} (at character {})",
            self.text,
            self.position + 1
        )
    }

    fn peek(&self) -> Option<char> {
        self.characters.get(self.position).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.position += 1;
        }
    }

    fn call(&mut self, depth: usize) -> Result<IntrinsicCall, String> {
        if depth > MAXIMUM_NESTING {
            return Err(self.error("intrinsic functions nest at most 10 deep"));
        }
        let start = self.position;
        while self
            .peek()
            .is_some_and(|character| character.is_ascii_alphanumeric() || character == '.')
        {
            self.position += 1;
        }
        let name: String = self.characters[start..self.position].iter().collect();
        let Some((_, function, minimum, maximum)) =
            FUNCTIONS.iter().find(|(known, _, _, _)| *known == name)
        else {
            return Err(format!("'{name}' is not a known intrinsic function"));
        };
        self.skip_spaces();
        if self.peek() != Some('(') {
            return Err(self.error("expected '(' after the function name"));
        }
        self.position += 1;
        let arguments = self.arguments(depth)?;
        if arguments.len() < *minimum || maximum.is_some_and(|maximum| arguments.len() > maximum) {
            let expected = match maximum {
                Some(maximum) if maximum == minimum => format!("{minimum}"),
                Some(maximum) => format!("{minimum} to {maximum}"),
                None => format!("at least {minimum}"),
            };
            return Err(format!(
                "{name} takes {expected} argument(s), but {} were given",
                arguments.len()
            ));
        }
        Ok(IntrinsicCall {
            function: *function,
            arguments,
        })
    }

    fn arguments(&mut self, depth: usize) -> Result<Vec<Argument>, String> {
        let mut arguments = Vec::new();
        self.skip_spaces();
        if self.peek() == Some(')') {
            self.position += 1;
            return Ok(arguments);
        }
        loop {
            self.skip_spaces();
            arguments.push(self.argument(depth)?);
            self.skip_spaces();
            match self.peek() {
                Some(',') => self.position += 1,
                Some(')') => {
                    self.position += 1;
                    return Ok(arguments);
                }
                _ => return Err(self.error("expected ',' or ')' after an argument")),
            }
        }
    }

    fn argument(&mut self, depth: usize) -> Result<Argument, String> {
        match self.peek() {
            Some('\'') => self.string().map(Argument::Text),
            Some('$') => self.path().map(Argument::Path),
            Some(character) if character == '-' || character.is_ascii_digit() => {
                self.number().map(Argument::Literal)
            }
            Some(character) if character.is_ascii_alphabetic() => {
                let rest: String = self.characters[self.position..].iter().collect();
                let words = [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ];
                for (word, value) in words {
                    let Some(after) = rest.strip_prefix(word) else {
                        continue;
                    };
                    let next = after.chars().next();
                    if !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.') {
                        self.position += word.len();
                        return Ok(Argument::Literal(value));
                    }
                }
                self.call(depth + 1).map(Argument::Call)
            }
            _ => Err(self.error(
                "expected an argument: a 'string', a number, true, false, null, a path or a call",
            )),
        }
    }

    fn string(&mut self) -> Result<StringLiteral, String> {
        self.position += 1;
        let mut value = String::new();
        let mut pieces = Vec::new();
        let mut text = String::new();
        loop {
            let Some(character) = self.peek() else {
                return Err(self.error("a quoted string is never closed"));
            };
            self.position += 1;
            match character {
                '\'' => break,
                '\\' => {
                    let escaped = self.peek();
                    match escaped {
                        Some(escaped @ ('\'' | '{' | '}' | '\\')) => {
                            self.position += 1;
                            value.push(escaped);
                            text.push(escaped);
                        }
                        _ => {
                            return Err(self.error(
                                "a backslash must escape one of ' { } \\ (write \\\\ for a backslash)",
                            ));
                        }
                    }
                }
                '{' if self.peek() == Some('}') => {
                    self.position += 1;
                    value.push_str("{}");
                    pieces.push(FormatPiece::Text(std::mem::take(&mut text)));
                    pieces.push(FormatPiece::Placeholder);
                }
                '{' | '}' => {
                    return Err(self.error("'{' and '}' are reserved: escape them as \\{ and \\}"));
                }
                other => {
                    value.push(other);
                    text.push(other);
                }
            }
        }
        pieces.push(FormatPiece::Text(text));
        Ok(StringLiteral {
            value,
            format_pieces: pieces,
        })
    }

    fn path(&mut self) -> Result<DataPath, String> {
        let start = self.position;
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        while let Some(character) = self.peek() {
            match quote {
                Some(open) if character == open => quote = None,
                Some(_) if character == '\\' => self.position += 1,
                Some(_) => {}
                None => match character {
                    '\'' | '"' => quote = Some(character),
                    '[' | '(' => depth += 1,
                    ']' | ')' if depth > 0 => depth -= 1,
                    ',' | ')' if depth == 0 => break,
                    _ => {}
                },
            }
            self.position += 1;
        }
        let end = self.position.min(self.characters.len());
        let text: String = self.characters[start..end].iter().collect();
        DataPath::parse(text.trim_end()).map_err(|error| self.error(&error))
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.position;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.position += 1;
        }
        let text: String = self.characters[start..self.position].iter().collect();
        match serde_json::from_str::<Value>(&text) {
            Ok(number @ Value::Number(_)) => Ok(number),
            _ => Err(self.error(&format!("'{text}' is not a number"))),
        }
    }
}
