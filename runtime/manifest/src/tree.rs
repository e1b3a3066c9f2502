//! A value tree in which every node knows where it came from: YAML and TOML both parse
//! into it, and one decoder walks it, collecting every problem.

use std::ops::Range;

/// One value and its byte range in the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub span: Range<usize>,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    /// A TOML date or time, kept as written.
    Datetime(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A key of a mapping or table and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value: Node,
}

impl Node {
    pub(crate) fn new(kind: Kind, span: Range<usize>) -> Self {
        Node { kind, span }
    }

    /// The type as a message names it: "a string", "an integer", ...
    pub(crate) fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "nothing (null)",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number with a fraction",
            Kind::Str(_) => "a string",
            Kind::Datetime(_) => "a date-time",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a table (mapping)",
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(text) => Some(text),
            _ => None,
        }
    }

    pub(crate) fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key` when this is a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| &entry.value)
    }

    /// How many nodes this tree holds (itself included).
    pub(crate) fn count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            count += 1;
            match &node.kind {
                Kind::Seq(items) => stack.extend(items),
                Kind::Map(entries) => stack.extend(entries.iter().map(|entry| &entry.value)),
                _ => {}
            }
        }
        count
    }
}
