//! One top-level value of a YAML mapping, read carefully, with the byte range it occupies.
//!
//! The release files this reads (`Chart.yaml`, `values.yaml`) are block mappings whose
//! interesting keys (`version`, `appVersion`, `image`) hold one-line scalars. Rather than
//! a whole YAML parser, [`top_level_scalar`] reads exactly that, and refuses with a
//! precise message whatever it would otherwise have to guess about: the key set twice, a
//! nested mapping, a block or multi-line scalar, an anchor, alias or tag, escapes inside
//! double quotes, a document that is a list or a second document. Plain, single-quoted
//! and double-quoted values are read as YAML reads them, and a comment after the value
//! is not part of it. Because it also returns where the value's characters are, a file
//! can be rewritten with [`replace_scalar`] keeping every other byte.

use std::ops::Range;

/// How a scalar is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `key: value`
    Plain,
    /// `key: 'value'`
    SingleQuoted,
    /// `key: "value"`
    DoubleQuoted,
}

/// A top-level scalar of a YAML text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar {
    /// The value as YAML reads it (quotes removed, `''` read as `'`).
    pub value: String,
    /// Where the value's characters are in the text, inside the quotes if quoted.
    pub span: Range<usize>,
    /// How it is written.
    pub style: Style,
    /// The line it is on, from 1.
    pub line: usize,
}

/// The value of the top-level key `key` of the block mapping `text`, or `None` if the
/// mapping has no such key.
///
/// # Errors
///
/// A sentence naming the line and what this reader refuses there: see the module's
/// documentation. Other keys may hold anything, as long as the document is one block
/// mapping.
pub fn top_level_scalar(text: &str, key: &str) -> Result<Option<Scalar>, String> {
    let lines = lines(text);
    let mut found: Option<Scalar> = None;
    let mut content = false;
    for (index, &(start, line)) in lines.iter().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with([' ', '\t']) {
            continue;
        }
        if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            if content {
                return Err(format!(
                    "line {number} starts a second YAML document; expected one"
                ));
            }
            let rest = line.get(3..).unwrap_or_default().trim_start();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(format!(
                    "line {number}: the document is not a block mapping"
                ));
            }
            continue;
        }
        if line == "..." || (!content && line.starts_with('%')) {
            continue;
        }
        content = true;
        if line.starts_with(['-', '[', '{', '?']) {
            return Err(format!(
                "line {number}: the document is not a block mapping of `key: value` lines"
            ));
        }
        let (this_key, value_at) =
            split_key(line).ok_or_else(|| format!("line {number} is not a `key: value` line"))?;
        if this_key != key {
            continue;
        }
        if let Some(previous) = &found {
            return Err(format!(
                "`{key}` is set twice, on lines {} and {number}",
                previous.line
            ));
        }
        let rest = line.get(value_at..).unwrap_or_default();
        let scalar = scalar(rest, start + value_at, key, number)?;
        if let Some(next) = continuation(&lines, index) {
            return Err(format!(
                "`{key}` on line {number} continues on line {next}; expected its value on one line"
            ));
        }
        found = Some(scalar);
    }
    Ok(found)
}

/// The text with `scalar`'s value replaced by `value`, written in the same style; every
/// other byte is kept.
///
/// # Errors
///
/// Why `value` cannot be written in that style (a quote or backslash in a double-quoted
/// value; a value a plain scalar cannot hold), or if `scalar` is not from `text`.
pub fn replace_scalar(text: &str, scalar: &Scalar, value: &str) -> Result<String, String> {
    let written = match scalar.style {
        Style::DoubleQuoted if value.contains(['"', '\\']) => {
            return Err(format!(
                "`{value}` has a quote or backslash; it cannot replace a double-quoted value"
            ));
        }
        Style::DoubleQuoted => value.to_owned(),
        Style::SingleQuoted => value.replace('\'', "''"),
        Style::Plain => {
            let plain = !value.is_empty()
                && !value.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c))
                && !value.contains(": ")
                && !value.contains(" #")
                && !value.ends_with([':', ' '])
                && !value.chars().any(char::is_control);
            if !plain {
                return Err(format!("`{value}` cannot be written as a plain YAML value"));
            }
            value.to_owned()
        }
    };
    let (Some(before), Some(after)) = (text.get(..scalar.span.start), text.get(scalar.span.end..))
    else {
        return Err("the value's position is not in this text".to_owned());
    };
    Ok(format!("{before}{written}{after}"))
}

/// Each line's start offset and its text without the line break (`\n` or `\r\n`); a
/// leading byte-order mark is skipped.
fn lines(text: &str) -> Vec<(usize, &str)> {
    let mut start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut lines = Vec::new();
    for piece in text.get(start..).unwrap_or_default().split_inclusive('\n') {
        let line = piece.strip_suffix('\n').unwrap_or(piece);
        let line = line.strip_suffix('\r').unwrap_or(line);
        lines.push((start, line));
        start += piece.len();
    }
    lines
}

/// The key of a `key: value` line and the offset just after its `:`.
fn split_key(line: &str) -> Option<(String, usize)> {
    let ends_key = |after: &str| after.is_empty() || after.starts_with([' ', '\t']);
    if let Some(quote @ ('"' | '\'')) = line.chars().next() {
        let (key, length) = quoted(line, quote).ok()??;
        let rest = line.get(length..)?.trim_start_matches([' ', '\t']);
        let after = rest.strip_prefix(':')?;
        return ends_key(after).then(|| (key, line.len() - after.len()));
    }
    let mut search = 0;
    loop {
        let colon = search + line.get(search..)?.find(':')?;
        let after = line.get(colon + 1..)?;
        if ends_key(after) {
            let key = line.get(..colon)?.trim_end();
            return (!key.is_empty()).then(|| (key.to_owned(), colon + 1));
        }
        search = colon + 1;
    }
}

/// Reads a quoted scalar at the start of `text`: its value and the length of the
/// quoted text with its quotes. `Ok(None)` if it does not end on this line; `Err` for an
/// escape in double quotes.
fn quoted(text: &str, quote: char) -> Result<Option<(String, usize)>, ()> {
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((at, c)) = chars.next() {
        if c == quote {
            if quote == '\'' && chars.peek().is_some_and(|&(_, next)| next == '\'') {
                chars.next();
                value.push('\'');
                continue;
            }
            return Ok(Some((value, at + 1)));
        }
        if c == '\\' && quote == '"' {
            return Err(());
        }
        value.push(c);
    }
    Ok(None)
}

/// Reads the value after `key:` (`rest`, which starts at `offset` in the text).
fn scalar(rest: &str, offset: usize, key: &str, number: usize) -> Result<Scalar, String> {
    let value = rest.trim_start_matches([' ', '\t']);
    let base = offset + (rest.len() - value.len());
    let at = |what: &str| format!("`{key}` on line {number} {what}");
    let Some(first) = value.chars().next().filter(|&c| c != '#') else {
        return Err(at(
            "has no value on its line (a nested mapping, a list, or nothing); expected a single value",
        ));
    };
    match first {
        '"' | '\'' => {
            let (decoded, length) = match quoted(value, first) {
                Err(()) => {
                    return Err(at(
                        "has an escape sequence in double quotes; write the value without one",
                    ));
                }
                Ok(None) => return Err(at("has a quoted value that does not end on its line")),
                Ok(Some(found)) => found,
            };
            let after = value.get(length..).unwrap_or_default();
            let trimmed = after.trim_start_matches([' ', '\t']);
            if !trimmed.is_empty() && (!trimmed.starts_with('#') || trimmed.len() == after.len()) {
                return Err(at("has text after its closing quote"));
            }
            Ok(Scalar {
                value: decoded,
                span: base + 1..base + length - 1,
                style: if first == '"' {
                    Style::DoubleQuoted
                } else {
                    Style::SingleQuoted
                },
                line: number,
            })
        }
        '|' | '>' => Err(at(
            "is a block scalar (`|` or `>`); expected the value on one line",
        )),
        '[' | '{' => Err(at("is a flow collection, not a single value")),
        '&' | '*' | '!' => Err(at(
            "uses a YAML anchor, alias or tag; write the plain value",
        )),
        '@' | '`' => Err(at("starts with a reserved character; quote the value")),
        _ => {
            let end = [" #", "\t#"]
                .iter()
                .filter_map(|comment| value.find(comment))
                .min()
                .unwrap_or(value.len());
            let plain = value.get(..end).unwrap_or_default().trim_end();
            if plain.contains(": ") || plain.contains(":\t") {
                return Err(at("has `: ` in an unquoted value; quote the value"));
            }
            Ok(Scalar {
                value: plain.to_owned(),
                span: base..base + plain.len(),
                style: Style::Plain,
                line: number,
            })
        }
    }
}

/// The line number of an indented line that would continue the value of the key on
/// line `index` (blank and comment lines do not count), if there is one.
fn continuation(lines: &[(usize, &str)], index: usize) -> Option<usize> {
    lines
        .iter()
        .enumerate()
        .skip(index + 1)
        .find(|(_, (_, line))| {
            let trimmed = line.trim();
            !trimmed.is_empty() && !trimmed.starts_with('#')
        })
        .filter(|(_, (_, line))| line.starts_with([' ', '\t']))
        .map(|(next, _)| next + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, key: &str) -> Result<Option<String>, String> {
        top_level_scalar(text, key).map(|found| found.map(|scalar| scalar.value))
    }

    const CHART: &str = "# The demo chart\n---\napiVersion: v2\nname: checkout\n\
                         description: \"A service: checkout\"\nversion: 1.4.0 # bumped\n\
                         appVersion: '1.4.0'\nmaintainers:\n  - name: version\n    version: 9\n";

    #[test]
    fn reads_plain_and_quoted_values_without_comments() {
        assert_eq!(value(CHART, "version"), Ok(Some("1.4.0".to_owned())));
        assert_eq!(value(CHART, "appVersion"), Ok(Some("1.4.0".to_owned())));
        assert_eq!(
            value(CHART, "description"),
            Ok(Some("A service: checkout".to_owned()))
        );
        assert_eq!(value(CHART, "kubeVersion"), Ok(None));
        assert_eq!(value("a: 'it''s'\n", "a"), Ok(Some("it's".to_owned())));
        assert_eq!(value("\u{feff}a: b\r\n", "a"), Ok(Some("b".to_owned())));
        assert_eq!(value("a:\tb:c#d\n", "a"), Ok(Some("b:c#d".to_owned())));
        assert_eq!(value("\"a\": x\n", "a"), Ok(Some("x".to_owned())));
    }

    #[test]
    fn nested_keys_of_the_same_name_are_not_top_level() {
        assert_eq!(value("image:\n  repository: x\n", "repository"), Ok(None));
    }

    #[test]
    fn refusals_name_the_line_and_the_reason() {
        for (text, key, why) in [
            ("a: 1\na: 2\n", "a", "`a` is set twice, on lines 1 and 2"),
            (
                "image:\n  repository: x\n",
                "image",
                "`image` on line 1 has no value on its line (a nested mapping, a list, or \
                 nothing); expected a single value",
            ),
            (
                "a: |\n  x\n",
                "a",
                "`a` on line 1 is a block scalar (`|` or `>`); expected the value on one line",
            ),
            (
                "a: x\n  y\n",
                "a",
                "`a` on line 1 continues on line 2; expected its value on one line",
            ),
            (
                "a: &anchor x\n",
                "a",
                "`a` on line 1 uses a YAML anchor, alias or tag; write the plain value",
            ),
            (
                "a: \"x\\ty\"\n",
                "a",
                "`a` on line 1 has an escape sequence in double quotes; write the value without one",
            ),
            (
                "a: 'x\n",
                "a",
                "`a` on line 1 has a quoted value that does not end on its line",
            ),
            (
                "a: 'x' y\n",
                "a",
                "`a` on line 1 has text after its closing quote",
            ),
            (
                "a: [1, 2]\n",
                "a",
                "`a` on line 1 is a flow collection, not a single value",
            ),
            (
                "a: b: c\n",
                "a",
                "`a` on line 1 has `: ` in an unquoted value; quote the value",
            ),
            (
                "- a\n",
                "a",
                "line 1: the document is not a block mapping of `key: value` lines",
            ),
            (
                "a: 1\n---\na: 2\n",
                "a",
                "line 2 starts a second YAML document; expected one",
            ),
            ("just text\n", "a", "line 1 is not a `key: value` line"),
        ] {
            assert_eq!(value(text, key), Err(why.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn replacement_keeps_every_other_byte_and_the_style() {
        let text = "# values\nimage: repo:1.0 # pinned later\r\nreplicas: 2\n";
        let found = top_level_scalar(text, "image").ok().flatten();
        let Some(found) = found else {
            panic!("image not found");
        };
        assert_eq!(found.style, Style::Plain);
        assert_eq!(
            replace_scalar(text, &found, "repo@sha256:ab"),
            Ok("# values\nimage: repo@sha256:ab # pinned later\r\nreplicas: 2\n".to_owned())
        );
        let quoted = "image: \"repo:1.0\"\n";
        let found = top_level_scalar(quoted, "image").ok().flatten();
        let Some(found) = found else {
            panic!("image not found");
        };
        assert_eq!(
            replace_scalar(quoted, &found, "repo@sha256:ab"),
            Ok("image: \"repo@sha256:ab\"\n".to_owned())
        );
        assert!(replace_scalar(quoted, &found, "a\"b").is_err());
        let plain = top_level_scalar("a: b\n", "a").ok().flatten();
        let Some(plain) = plain else {
            panic!("a not found");
        };
        assert!(replace_scalar("a: b\n", &plain, "x: y").is_err());
    }
}
