//! Problems found in a file: a stable code, where it is, and a sentence a person understands.

use std::fmt;

use serde::Serialize;

/// The stable, machine-readable name of a problem. Its [`as_str`](Code::as_str) form is
/// kebab-case and never changes once released; tools and tests match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// The file is not valid YAML or TOML.
    Syntax,
    /// A YAML line is indented with a tab.
    TabIndent,
    /// The file is not UTF-8.
    NotUtf8,
    /// The file holds nothing but whitespace and comments.
    EmptyFile,
    /// Values are nested deeper than the parser allows.
    TooDeep,
    /// The file is larger than the parser accepts.
    TooLarge,
    /// YAML aliases expand to more nodes than allowed.
    TooManyAliases,
    /// A YAML file holds more than one document.
    MultipleDocuments,
    /// A YAML tag other than `!!str` is used.
    UnsupportedTag,
    /// A mapping or table has the same key twice.
    DuplicateKey,
    /// The version of the file's format is not one this build reads.
    UnsupportedVersion,
    /// A key the format does not define.
    UnknownField,
    /// A value of the wrong type (a number where a string belongs, ...).
    WrongType,
    /// A required key is absent.
    MissingField,
    /// A value of the right type that is not valid (a bad duration, URL pattern, ...).
    InvalidValue,
    /// A number outside the allowed range.
    OutOfRange,
    /// Two keys that exclude each other are both present.
    ConflictingFields,
    /// Two steps share an id.
    DuplicateStepId,
    /// `needs` or an expression names a step that does not exist.
    UnknownStep,
    /// Steps need each other in a cycle.
    Cycle,
    /// An expression names a parameter that is not declared.
    UnknownParam,
    /// An expression reads the outputs of a step that is not upstream of its user.
    NotUpstream,
    /// A `${{ … }}` expression does not parse.
    BadExpression,
    /// A role that relo does not know.
    UnknownRole,
    /// Two people share a name.
    DuplicatePerson,
    /// A name that should be one of `[[people]]` is not.
    UnknownPerson,
    /// A plugin names an endpoint the operator config does not bind.
    UnboundEndpoint,
    /// A plugin declares a secret the operator config does not bind for it.
    UnboundSecret,
    /// A plugin asks for a signing key the operator config does not define.
    UnboundKey,
    /// The kind of a file (plugin, workflow, operator) could not be told.
    UnknownKind,
    /// The file could not be read.
    Unreadable,
}

impl Code {
    /// The stable kebab-case name of this code, e.g. `unknown-field`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "syntax",
            Code::TabIndent => "tab-indent",
            Code::NotUtf8 => "not-utf8",
            Code::EmptyFile => "empty-file",
            Code::TooDeep => "too-deep",
            Code::TooLarge => "too-large",
            Code::TooManyAliases => "too-many-aliases",
            Code::MultipleDocuments => "multiple-documents",
            Code::UnsupportedTag => "unsupported-tag",
            Code::DuplicateKey => "duplicate-key",
            Code::UnsupportedVersion => "unsupported-version",
            Code::UnknownField => "unknown-field",
            Code::WrongType => "wrong-type",
            Code::MissingField => "missing-field",
            Code::InvalidValue => "invalid-value",
            Code::OutOfRange => "out-of-range",
            Code::ConflictingFields => "conflicting-fields",
            Code::DuplicateStepId => "duplicate-step-id",
            Code::UnknownStep => "unknown-step",
            Code::Cycle => "cycle",
            Code::UnknownParam => "unknown-param",
            Code::NotUpstream => "not-upstream",
            Code::BadExpression => "bad-expression",
            Code::UnknownRole => "unknown-role",
            Code::DuplicatePerson => "duplicate-person",
            Code::UnknownPerson => "unknown-person",
            Code::UnboundEndpoint => "unbound-endpoint",
            Code::UnboundSecret => "unbound-secret",
            Code::UnboundKey => "unbound-key",
            Code::UnknownKind => "unknown-kind",
            Code::Unreadable => "unreadable",
        }
    }

    /// Every code, in declaration order (for documentation and tests).
    pub const ALL: &'static [Code] = &[
        Code::Syntax,
        Code::TabIndent,
        Code::NotUtf8,
        Code::EmptyFile,
        Code::TooDeep,
        Code::TooLarge,
        Code::TooManyAliases,
        Code::MultipleDocuments,
        Code::UnsupportedTag,
        Code::DuplicateKey,
        Code::UnsupportedVersion,
        Code::UnknownField,
        Code::WrongType,
        Code::MissingField,
        Code::InvalidValue,
        Code::OutOfRange,
        Code::ConflictingFields,
        Code::DuplicateStepId,
        Code::UnknownStep,
        Code::Cycle,
        Code::UnknownParam,
        Code::NotUpstream,
        Code::BadExpression,
        Code::UnknownRole,
        Code::DuplicatePerson,
        Code::UnknownPerson,
        Code::UnboundEndpoint,
        Code::UnboundSecret,
        Code::UnboundKey,
        Code::UnknownKind,
        Code::Unreadable,
    ];
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in a file something is: 1-based line and column (in characters), and the byte
/// range in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The line, from 1.
    pub line: u32,
    /// The column in characters, from 1.
    pub column: u32,
    /// The byte offset of the start in the file.
    pub offset: usize,
    /// The length in bytes (0 for a point).
    pub length: usize,
    /// The text of the line, to show under the message.
    pub(crate) snippet: Option<String>,
}

impl Located {
    /// The start of a file, for problems with the file as a whole.
    pub fn start_of_file() -> Self {
        Located {
            line: 1,
            column: 1,
            offset: 0,
            length: 0,
            snippet: None,
        }
    }
}

/// One problem in one file.
///
/// ```text
/// error[unknown-field]: unknown field `tiemout` in a step
///   --> release.yaml:7:5
///    |
///  7 |     tiemout: 60s
///    |     ^^^^^^^
///    = field: steps[2].tiemout
///    = hint: did you mean `timeout`?
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The stable code.
    pub code: Code,
    /// The file, as the caller named it.
    pub file: String,
    /// The line, from 1.
    pub line: u32,
    /// The column in characters, from 1.
    pub column: u32,
    /// The byte offset of the problem in the file.
    pub offset: usize,
    /// How many bytes the problem covers.
    pub length: usize,
    /// The field path, e.g. `steps[2].needs[0]`; empty for the whole file.
    pub path: String,
    /// What is wrong, in a sentence (lower case, no final period).
    pub message: String,
    /// How to fix it, when there is something useful to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip)]
    snippet: Option<String>,
}

impl Diagnostic {
    /// A problem at `at` in `file`.
    pub fn new(
        code: Code,
        file: impl Into<String>,
        at: &Located,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            file: file.into(),
            line: at.line,
            column: at.column,
            offset: at.offset,
            length: at.length,
            path: path.into(),
            message: message.into(),
            hint: None,
            snippet: at.snippet.clone(),
        }
    }

    /// A problem with the file as a whole (unreadable, too large, ...).
    pub fn whole_file(code: Code, file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic::new(code, file, &Located::start_of_file(), "", message)
    }

    /// The same problem with a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The problem as a compiler-style message: the code and message, the location, the
    /// source line with a caret under the problem, the field path and the hint.
    pub fn render(&self) -> String {
        let mut out = format!("error[{}]: {}\n", self.code, self.message);
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        out.push_str(&format!(
            "{pad}--> {}:{}:{}\n",
            self.file, self.line, self.column
        ));
        if let Some(line) = &self.snippet {
            let (shown, caret_at, caret_len) = caret(line, self.column, self.length);
            out.push_str(&format!("{pad} |\n"));
            out.push_str(&format!("{} | {}\n", self.line, shown).replace(" | \n", " |\n"));
            out.push_str(&format!(
                "{pad} | {}{}\n",
                " ".repeat(caret_at),
                "^".repeat(caret_len)
            ));
        }
        if !self.path.is_empty() {
            out.push_str(&format!("{pad} = field: {}\n", self.path));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("{pad} = hint: {hint}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Tabs shown as four spaces; the caret's start (display columns) and width.
fn caret(line: &str, column: u32, length: usize) -> (String, usize, usize) {
    let start_char = usize::try_from(column.saturating_sub(1)).unwrap_or(0);
    let mut shown = String::new();
    let mut caret_at = None;
    let mut caret_end = None;
    let mut bytes_seen = 0usize;
    let mut start_byte = None;
    for (index, ch) in line.chars().enumerate() {
        if index == start_char {
            caret_at = Some(shown.chars().count());
            start_byte = Some(bytes_seen);
        }
        if let Some(start) = start_byte
            && caret_end.is_none()
            && bytes_seen >= start + length.max(1)
        {
            caret_end = Some(shown.chars().count());
        }
        if ch == '\t' {
            shown.push_str("    ");
        } else if ch.is_control() {
            shown.push('\u{fffd}');
        } else {
            shown.push(ch);
        }
        bytes_seen += ch.len_utf8();
    }
    let width = shown.chars().count();
    let at = caret_at.unwrap_or(width);
    let end = caret_end.unwrap_or(width).max(at + 1);
    let shown = shown.trim_end().to_owned();
    window(&shown, at, end)
}

/// Long lines are cut to a window around the caret, marked with `…` at the cut ends.
fn window(shown: &str, at: usize, end: usize) -> (String, usize, usize) {
    const WIDTH: usize = 100;
    let chars: Vec<char> = shown.chars().collect();
    let caret_len = (end - at).min(WIDTH / 2);
    if chars.len() <= WIDTH {
        return (shown.to_owned(), at, caret_len);
    }
    let start = at
        .saturating_sub(WIDTH / 4)
        .min(chars.len().saturating_sub(WIDTH));
    let stop = (start + WIDTH).min(chars.len());
    let mut out = String::new();
    let mut caret_at = at - start;
    if start > 0 {
        out.push('…');
        caret_at += 1;
    }
    out.extend(&chars[start..stop]);
    if stop < chars.len() {
        out.push('…');
    }
    (out, caret_at, caret_len)
}

/// Every problem found in one file, in the order they appear in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {} problem{}", items.len(), if items.len() == 1 { "" } else { "s" })]
pub struct Diagnostics {
    file: String,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Problems in `file`, sorted by position (stable for equal positions).
    pub fn new(file: impl Into<String>, mut items: Vec<Diagnostic>) -> Self {
        items.sort_by_key(|d| (d.offset, d.line, d.column));
        Diagnostics {
            file: file.into(),
            items,
        }
    }

    /// The file they are about.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The problems.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// The problems, owned.
    pub fn into_items(self) -> Vec<Diagnostic> {
        self.items
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether any problem has this code.
    pub fn has(&self, code: Code) -> bool {
        self.items.iter().any(|d| d.code == code)
    }

    /// Every problem rendered, separated by blank lines.
    pub fn render(&self) -> String {
        let rendered: Vec<String> = self.items.iter().map(Diagnostic::render).collect();
        rendered.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kebab_case_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let name = code.as_str();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
            );
            assert!(seen.insert(name), "duplicate {name}");
            assert_eq!(serde_json::to_value(code).unwrap(), name);
        }
    }

    #[test]
    fn caret_sits_under_the_column_with_tabs_expanded() {
        let (shown, at, len) = caret("\tname: x", 2, 4);
        assert_eq!(shown, "    name: x");
        assert_eq!((at, len), (4, 4));
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let line = format!("{}x{}", "a".repeat(500), "b".repeat(500));
        let (shown, at, len) = caret(&line, 501, 1);
        assert!(shown.chars().count() <= 102, "{}", shown.len());
        assert_eq!(shown.chars().nth(at), Some('x'));
        assert_eq!(len, 1);
    }

    #[test]
    fn renders_like_a_compiler() {
        let at = Located {
            line: 3,
            column: 3,
            offset: 20,
            length: 7,
            snippet: Some("  tiemout: 1s".into()),
        };
        let d = Diagnostic::new(
            Code::UnknownField,
            "w.yaml",
            &at,
            "steps[0].tiemout",
            "unknown field `tiemout`",
        )
        .with_hint("did you mean `timeout`?");
        assert_eq!(
            d.render(),
            "error[unknown-field]: unknown field `tiemout`\n --> w.yaml:3:3\n  |\n3 |   tiemout: 1s\n  |   ^^^^^^^\n  = field: steps[0].tiemout\n  = hint: did you mean `timeout`?\n"
        );
    }
}
