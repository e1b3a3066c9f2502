//! Turning a located value tree into typed values while collecting every problem.
//!
//! Serde stops at the first error; this decoder does not. Each reader reports what is
//! wrong with its node (with the node's position and field path) and returns `None`, and
//! its caller carries on with the other fields. A file is accepted only when nothing at
//! all was reported.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Range, RangeInclusive};
use std::str::FromStr;

use crate::diagnostic::{Code, Diagnostic};
use crate::source::SourceMap;
use crate::tree::{Kind, Node};
use crate::values::InvalidValue;

/// A field path such as `steps[2].needs[0]` or `secrets.bindings."acme/x".token`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root() -> Self {
        Path(String::new())
    }

    pub(crate) fn field(&self, name: &str) -> Self {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let segment = if plain {
            name.to_owned()
        } else {
            format!("{name:?}")
        };
        if self.0.is_empty() {
            Path(segment)
        } else {
            Path(format!("{}.{segment}", self.0))
        }
    }

    pub(crate) fn index(&self, index: usize) -> Self {
        Path(format!("{}[{index}]", self.0))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The decoding context of one file: where positions come from, and the problems so far.
pub(crate) struct Cx<'a> {
    file: String,
    map: SourceMap<'a>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(file: &str, text: &'a str, base: usize) -> Self {
        Cx {
            file: file.to_owned(),
            map: SourceMap::new(text, base),
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn file(&self) -> &str {
        &self.file
    }

    pub(crate) fn offset_of(&self, line: usize, column: usize) -> usize {
        self.map.offset_of(line, column)
    }

    /// The source text of a byte range.
    pub(crate) fn slice(&self, span: Range<usize>) -> Option<&'a str> {
        self.map.slice(span)
    }

    /// Reports a problem and returns it, so a hint can be added.
    pub(crate) fn error(
        &mut self,
        code: Code,
        span: Range<usize>,
        path: &Path,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let at = self.map.locate(span);
        let diagnostic = Diagnostic::new(code, self.file.clone(), &at, path.as_str(), message);
        self.diagnostics.push(diagnostic);
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    pub(crate) fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.diagnostics.is_empty()
    }

    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }

    /// Reports a wrong type: "expected X, found Y".
    pub(crate) fn wrong_type(
        &mut self,
        node: &Node,
        path: &Path,
        expected: &str,
    ) -> &mut Diagnostic {
        let found = node.type_name();
        let scalar = matches!(
            node.kind,
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) | Kind::Datetime(_)
        );
        let diagnostic = self.error(
            Code::WrongType,
            node.span.clone(),
            path,
            format!("expected {expected}, found {found}"),
        );
        if expected.contains("string") && scalar {
            diagnostic.hint = Some("put the value in quotes".into());
        }
        diagnostic
    }

    /// Reads a mapping with the given known keys; every other key is reported.
    pub(crate) fn table<'n>(
        &mut self,
        node: &'n Node,
        path: &Path,
        what: &'static str,
        known: &'static [&'static str],
    ) -> Option<Fields<'n>> {
        let Some(entries) = node.entries() else {
            self.wrong_type(node, path, "a table (mapping)");
            return None;
        };
        for entry in entries {
            if !known.contains(&entry.key.as_str()) {
                self.unknown_field(
                    &entry.key,
                    entry.key_span.clone(),
                    &path.field(&entry.key),
                    what,
                    known,
                );
            }
        }
        Some(Fields {
            node,
            path: path.clone(),
            what,
        })
    }

    pub(crate) fn unknown_field(
        &mut self,
        key: &str,
        span: Range<usize>,
        path: &Path,
        what: &str,
        known: &[&str],
    ) {
        let hint = match suggest(key, known.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None if known.is_empty() => format!("{what} takes no keys"),
            None => format!(
                "{what} takes: {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.error(
            Code::UnknownField,
            span,
            path,
            format!("unknown field `{key}` in {what}"),
        )
        .hint = Some(hint);
    }

    /// Reads a string.
    pub(crate) fn string<'n>(&mut self, node: &'n Node, path: &Path) -> Option<&'n str> {
        match node.as_str() {
            Some(text) => Some(text),
            None => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }

    /// Reads a non-negative integer within `range`.
    pub(crate) fn uint(
        &mut self,
        node: &Node,
        path: &Path,
        range: RangeInclusive<u64>,
    ) -> Option<u64> {
        let Kind::Int(value) = node.kind else {
            self.wrong_type(node, path, "an integer");
            return None;
        };
        match u64::try_from(value) {
            Ok(value) if range.contains(&value) => Some(value),
            _ => {
                self.error(
                    Code::OutOfRange,
                    node.span.clone(),
                    path,
                    format!(
                        "{value} is out of range: allowed are {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    /// Reads a string and parses it; a parse failure is `invalid-value` with the
    /// parser's message and hint.
    pub(crate) fn parsed<T: FromStr<Err = InvalidValue>>(
        &mut self,
        node: &Node,
        path: &Path,
    ) -> Option<T> {
        let text = self.string(node, path)?;
        self.parse_text(text, node.span.clone(), path)
    }

    pub(crate) fn parse_text<T: FromStr<Err = InvalidValue>>(
        &mut self,
        text: &str,
        span: Range<usize>,
        path: &Path,
    ) -> Option<T> {
        match text.parse::<T>() {
            Ok(value) => Some(value),
            Err(error) => {
                let code = error.code();
                let hint = error.hint().map(str::to_owned);
                self.error(code, span, path, error.message().to_owned())
                    .hint = hint;
                None
            }
        }
    }

    /// Reads a list, each element with `item`. `Some` only when every element was read.
    pub(crate) fn list<T>(
        &mut self,
        node: &Node,
        path: &Path,
        mut item: impl FnMut(&mut Self, &Node, &Path) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Kind::Seq(items) = &node.kind else {
            self.wrong_type(node, path, "a list");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut complete = true;
        for (index, element) in items.iter().enumerate() {
            match item(self, element, &path.index(index)) {
                Some(value) => out.push(value),
                None => complete = false,
            }
        }
        complete.then_some(out)
    }

    /// Reads a mapping whose keys are parsed names and whose values are read with `value`.
    pub(crate) fn map<K, V>(
        &mut self,
        node: &Node,
        path: &Path,
        mut value: impl FnMut(&mut Self, &Node, &Path) -> Option<V>,
    ) -> Option<BTreeMap<K, V>>
    where
        K: FromStr<Err = InvalidValue> + Ord,
    {
        let Some(entries) = node.entries() else {
            self.wrong_type(node, path, "a table (mapping)");
            return None;
        };
        let mut out = BTreeMap::new();
        let mut complete = true;
        for entry in entries {
            let field = path.field(&entry.key);
            let key = self.parse_text::<K>(&entry.key, entry.key_span.clone(), &field);
            let decoded = value(self, &entry.value, &field);
            match (key, decoded) {
                (Some(key), Some(decoded)) => {
                    out.insert(key, decoded);
                }
                _ => complete = false,
            }
        }
        complete.then_some(out)
    }
}

/// A mapping being read; unknown keys are already reported.
pub(crate) struct Fields<'n> {
    node: &'n Node,
    path: Path,
    what: &'static str,
}

impl<'n> Fields<'n> {
    /// The value of an optional key, and its path.
    pub(crate) fn get(&self, name: &str) -> Option<(&'n Node, Path)> {
        self.node
            .get(name)
            .map(|node| (node, self.path.field(name)))
    }

    /// The value of a required key; its absence is reported.
    pub(crate) fn required(&self, cx: &mut Cx<'_>, name: &str) -> Option<(&'n Node, Path)> {
        let found = self.get(name);
        if found.is_none() {
            cx.error(
                Code::MissingField,
                self.header_span(),
                &self.path,
                format!("missing field `{name}` in {}", self.what),
            );
        }
        found
    }

    /// Reads an optional key with [`Decode`]: `Ok(None)` when absent, `Err(())` when
    /// present but invalid.
    pub(crate) fn opt<T: Decode>(&self, cx: &mut Cx<'_>, name: &str) -> Result<Option<T>, ()> {
        match self.get(name) {
            None => Ok(None),
            Some((node, path)) => T::decode(cx, node, &path).map(Some).ok_or(()),
        }
    }

    /// Reads a required key with [`Decode`].
    pub(crate) fn req<T: Decode>(&self, cx: &mut Cx<'_>, name: &str) -> Option<T> {
        let (node, path) = self.required(cx, name)?;
        T::decode(cx, node, &path)
    }

    pub(crate) fn node(&self) -> &'n Node {
        self.node
    }

    /// Where a problem with the table as a whole points: its first line.
    pub(crate) fn header_span(&self) -> Range<usize> {
        let span = self.node.span.clone();
        span.start..span.start
    }
}

/// A value that can be read from a node.
pub(crate) trait Decode: Sized {
    fn decode(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<Self>;
}

impl Decode for String {
    fn decode(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<Self> {
        cx.string(node, path).map(str::to_owned)
    }
}

impl Decode for bool {
    fn decode(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<Self> {
        match node.kind {
            Kind::Bool(value) => Some(value),
            _ => {
                cx.wrong_type(node, path, "a boolean (true or false)");
                None
            }
        }
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<Self> {
        cx.list(node, path, T::decode)
    }
}

/// `Decode` for a type read from a string with its `FromStr`.
macro_rules! decode_from_str {
    ($($ty:ty),* $(,)?) => {$(
        impl $crate::decode::Decode for $ty {
            fn decode(
                cx: &mut $crate::decode::Cx<'_>,
                node: &$crate::tree::Node,
                path: &$crate::decode::Path,
            ) -> Option<Self> {
                cx.parsed(node, path)
            }
        }
    )*};
}
pub(crate) use decode_from_str;

/// The known name closest to `name`, when it is close enough to be a likely typo.
pub(crate) fn suggest<'k>(name: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    known
        .into_iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edit distance where swapping two neighbouring characters counts as one edit (optimal
/// string alignment), so `ivna` is one edit from `ivan`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[i - 1][j] + 1)
                .min(table[i][j - 1] + 1)
                .min(table[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[i - 2][j - 2] + 1);
            }
            table[i][j] = best;
        }
    }
    table[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_unusual_keys() {
        let path = Path::root()
            .field("secrets")
            .field("bindings")
            .field("acme/x")
            .field("token");
        assert_eq!(path.as_str(), "secrets.bindings.\"acme/x\".token");
        assert_eq!(
            Path::root()
                .field("steps")
                .index(2)
                .field("needs")
                .index(0)
                .as_str(),
            "steps[2].needs[0]"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        let known = ["timeout", "retries", "needs"];
        assert_eq!(suggest("tiemout", known), Some("timeout"));
        assert_eq!(suggest("need", known), Some("needs"));
        assert_eq!(suggest("color", known), None);
        assert_eq!(suggest("ivna", ["ivan", "olga"]), Some("ivan"));
    }
}
