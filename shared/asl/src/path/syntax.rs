//! The syntax of a path, read the way Jayway reads it: a dotted name runs to the next `.`
//! or `[`, so names such as `detail-type` need no brackets. Plain name and index steps are
//! recognised; everything else (wildcards, descendants, slices, unions, filters) is kept as
//! written for `serde_json_path` to parse.

/// One segment of a path.
pub(super) enum Segment {
    Name(String),
    Index(i64),
    Other(String),
}

pub(super) fn bracket_name(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 4);
    quoted.push_str("['");
    for character in name.chars() {
        if character == '\'' || character == '\\' {
            quoted.push('\\');
        }
        quoted.push(character);
    }
    quoted.push_str("']");
    quoted
}

/// Splits a path into its segments.
pub(super) fn split_segments(text: &str) -> Result<Vec<Segment>, String> {
    let characters: Vec<char> = text.chars().collect();
    if characters.first() != Some(&'$') {
        return Err(format!("'{text}' is not a path: a path starts with '$'"));
    }
    let mut segments = Vec::new();
    let mut position = 1;
    while position < characters.len() {
        match characters[position] {
            '.' if characters.get(position + 1) == Some(&'.') => {
                let (rest, next) = read_dotted_or_bracket(text, &characters, position + 2)?;
                segments.push(Segment::Other(format!("..{rest}")));
                position = next;
            }
            '.' => {
                let (segment, next) = read_dotted(text, &characters, position + 1)?;
                segments.push(segment);
                position = next;
            }
            '[' => {
                let (segment, next) = read_bracket(text, &characters, position)?;
                segments.push(segment);
                position = next;
            }
            other => {
                return Err(format!(
                    "'{text}' is not a valid path: unexpected '{other}' at position {position}"
                ));
            }
        }
    }
    Ok(segments)
}

fn read_dotted(text: &str, characters: &[char], start: usize) -> Result<(Segment, usize), String> {
    if characters.get(start) == Some(&'*') {
        return Ok((Segment::Other(".*".to_string()), start + 1));
    }
    let end = (start..characters.len())
        .find(|&index| matches!(characters[index], '.' | '['))
        .unwrap_or(characters.len());
    let name: String = characters[start..end].iter().collect();
    if name.is_empty() {
        return Err(format!(
            "'{text}' is not a valid path: a '.' must be followed by a name"
        ));
    }
    if name.contains('(') || name.contains(')') {
        return Err(format!(
            "'{text}' is not a supported path: path functions such as '{name}' are not supported"
        ));
    }
    if name.contains(['\'', '"', ']', ' ']) {
        return Err(format!("'{text}' is not a valid path: bad name '{name}'"));
    }
    Ok((Segment::Name(name), end))
}

fn read_dotted_or_bracket(
    text: &str,
    characters: &[char],
    start: usize,
) -> Result<(String, usize), String> {
    if characters.get(start) == Some(&'[') {
        let end = matching_bracket(text, characters, start)?;
        return Ok((characters[start..=end].iter().collect(), end + 1));
    }
    match read_dotted(text, characters, start)? {
        (Segment::Name(name), next) => Ok((bracket_name(&name), next)),
        (Segment::Other(_), next) => Ok(("*".to_string(), next)),
        (Segment::Index(_), next) => Ok((String::new(), next)),
    }
}

fn read_bracket(text: &str, characters: &[char], start: usize) -> Result<(Segment, usize), String> {
    let end = matching_bracket(text, characters, start)?;
    let inner: String = characters[start + 1..end].iter().collect();
    let trimmed = inner.trim();
    if let Some(name) = single_quoted_name(trimmed) {
        return Ok((Segment::Name(name), end + 1));
    }
    if let Ok(index) = trimmed.parse::<i64>() {
        return Ok((Segment::Index(index), end + 1));
    }
    Ok((Segment::Other(format!("[{inner}]")), end + 1))
}

/// Finds the `]` closing the `[` at `start`, skipping quoted text and nested brackets.
fn matching_bracket(text: &str, characters: &[char], start: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut index = start;
    while index < characters.len() {
        let character = characters[index];
        match quote {
            Some(open) => {
                if character == '\\' {
                    index += 1;
                } else if character == open {
                    quote = None;
                }
            }
            None => match character {
                '\'' | '"' => quote = Some(character),
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(index);
                    }
                }
                _ => {}
            },
        }
        index += 1;
    }
    Err(format!(
        "'{text}' is not a valid path: a '[' is never closed"
    ))
}

/// Reads `'name'` or `"name"` (one quoted name, no union), undoing `\` escapes.
fn single_quoted_name(inner: &str) -> Option<String> {
    let quote = inner.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    if inner.len() < 2 || !inner.ends_with(quote) {
        return None;
    }
    let body = &inner[1..inner.len() - 1];
    let mut name = String::with_capacity(body.len());
    let mut escaped = false;
    for character in body.chars() {
        if escaped {
            name.push(character);
            escaped = false;
        } else if character == '\\' {
            escaped = true;
        } else if character == quote {
            return None;
        } else {
            name.push(character);
        }
    }
    (!escaped).then_some(name)
}
