//! YAML text into a located value tree, with YAML 1.2 core-schema scalars.
//!
//! Built on `saphyr-parser`'s event stream, so nesting is tracked here (and refused past
//! [`MAX_DEPTH`]) and aliases are expanded under a node budget: a "billion laughs" file
//! stops with `too-many-aliases` instead of eating the machine.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use crate::decode::{Cx, Path};
use crate::diagnostic::Code;
use crate::source::MAX_DEPTH;
use crate::tree::{Entry, Kind, Node};

/// Nodes that aliases may add to a document, all aliases together.
pub const MAX_ALIAS_NODES: usize = 10_000;

enum Frame {
    Seq {
        items: Vec<Node>,
        start: usize,
        anchor: usize,
    },
    Map {
        entries: Vec<Entry>,
        seen: HashSet<String>,
        key: Option<(String, Range<usize>)>,
        start: usize,
        anchor: usize,
    },
}

struct Builder<'c, 'a> {
    cx: &'c mut Cx<'a>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    alias_nodes: usize,
    /// Depth of a complex (non-scalar) mapping key being skipped.
    skipping: usize,
    root: Option<Node>,
    root_was_empty: bool,
}

/// Parses one YAML document; `None` when it could not be parsed (the problem is reported).
pub(crate) fn parse(cx: &mut Cx<'_>, text: &str) -> Option<Node> {
    let mut builder = Builder {
        cx,
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_nodes: 0,
        skipping: 0,
        root: None,
        root_was_empty: false,
    };
    let mut documents = 0usize;
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(pair) => pair,
            Err(error) => {
                let marker = error.marker();
                let mut at = builder.cx.offset_of(marker.line(), marker.col());
                let info = error.info();
                if info.contains("tab")
                    && let Some(tab) = indenting_tab(text, at)
                {
                    at = tab;
                }
                let code = if info.contains("tab") {
                    Code::TabIndent
                } else if info.contains("recursion limit") {
                    Code::TooDeep
                } else {
                    Code::Syntax
                };
                let message = match code {
                    Code::TooDeep => "values are nested too deeply".to_owned(),
                    Code::TabIndent => "a tab is used for indentation".to_owned(),
                    _ => format!("invalid YAML: {info}"),
                };
                let diagnostic = builder.cx.error(code, at..at + 1, &Path::root(), message);
                if code == Code::TabIndent {
                    diagnostic.hint = Some("indent with spaces; YAML does not allow tabs".into());
                }
                return None;
            }
        };
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    let range = builder.cx.span(span);
                    builder.cx.error(
                        Code::MultipleDocuments,
                        range,
                        &Path::root(),
                        "the file holds more than one YAML document",
                    );
                    return None;
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let range = builder.cx.span(span);
                builder.scalar(&value, style, anchor, tag.as_deref(), range)?;
            }
            Event::Alias(id) => {
                let range = builder.cx.span(span);
                builder.alias(id, range)?;
            }
            Event::SequenceStart(anchor, tag) => {
                let range = builder.cx.span(span);
                builder.open(false, anchor, tag.as_deref(), range)?;
            }
            Event::MappingStart(anchor, tag) => {
                let range = builder.cx.span(span);
                builder.open(true, anchor, tag.as_deref(), range)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let range = builder.cx.span(span);
                builder.close(range)?;
            }
        }
    }
    if builder.root_was_empty {
        let file = builder.cx.file().to_owned();
        builder.cx.push(crate::source::empty_file(&file));
        return None;
    }
    match builder.root {
        Some(root) => Some(root),
        None => {
            let file = builder.cx.file().to_owned();
            builder.cx.push(crate::source::empty_file(&file));
            None
        }
    }
}

impl Builder<'_, '_> {
    fn scalar(
        &mut self,
        value: &str,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        span: Range<usize>,
    ) -> Option<()> {
        if self.skipping > 0 {
            return Some(());
        }
        if let Some(Frame::Map {
            key: key @ None, ..
        }) = self.stack.last_mut()
        {
            *key = Some((value.to_owned(), span));
            return Some(());
        }
        let kind = match tag {
            Some(tag) if tag.is_yaml_core_schema() && tag.suffix == "str" => {
                Kind::Str(value.to_owned())
            }
            Some(tag) => {
                self.unsupported_tag(tag, span.clone());
                Kind::Str(value.to_owned())
            }
            None if style == ScalarStyle::Plain => resolve_plain(value),
            None => Kind::Str(value.to_owned()),
        };
        if self.stack.is_empty() && kind == Kind::Null && value.is_empty() {
            self.root_was_empty = true;
        }
        self.finish(Node::new(kind, span), anchor);
        Some(())
    }

    fn alias(&mut self, id: usize, span: Range<usize>) -> Option<()> {
        if self.skipping > 0 {
            return Some(());
        }
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            self.cx.error(
                Code::WrongType,
                span,
                &self.path(),
                "an alias cannot be a mapping key",
            );
            self.skipping = 0;
            return None;
        }
        let Some((node, count)) = self.anchors.get(&id) else {
            self.cx.error(
                Code::Syntax,
                span,
                &self.path(),
                "alias to an unknown anchor",
            );
            return None;
        };
        self.alias_nodes += count;
        if self.alias_nodes > MAX_ALIAS_NODES {
            self.cx
                .error(
                    Code::TooManyAliases,
                    span,
                    &self.path(),
                    format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                )
                .hint = Some("write the repeated values out, or use fewer aliases".into());
            return None;
        }
        let node = Node::new(node.kind.clone(), span);
        self.finish(node, 0);
        Some(())
    }

    fn open(
        &mut self,
        map: bool,
        anchor: usize,
        tag: Option<&Tag>,
        span: Range<usize>,
    ) -> Option<()> {
        if self.skipping > 0 {
            self.skipping += 1;
            return Some(());
        }
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            self.cx.error(
                Code::WrongType,
                span,
                &self.path(),
                "mapping keys must be plain strings, not lists or mappings",
            );
            self.skipping = 1;
            return Some(());
        }
        if let Some(tag) = tag {
            self.unsupported_tag(tag, span.clone());
        }
        if self.stack.len() >= MAX_DEPTH {
            self.cx
                .error(
                    Code::TooDeep,
                    span,
                    &self.path(),
                    format!("values are nested more than {MAX_DEPTH} levels deep"),
                )
                .hint = Some("flatten the structure".into());
            return None;
        }
        self.stack.push(if map {
            Frame::Map {
                entries: Vec::new(),
                seen: HashSet::new(),
                key: None,
                start: span.start,
                anchor,
            }
        } else {
            Frame::Seq {
                items: Vec::new(),
                start: span.start,
                anchor,
            }
        });
        Some(())
    }

    fn close(&mut self, span: Range<usize>) -> Option<()> {
        if self.skipping > 0 {
            self.skipping -= 1;
            if self.skipping == 0 {
                // The complex key was skipped; its value still follows: give it a key
                // no field has, so it is not reported again.
                if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                    *key = Some(("\u{0}complex-key".into(), span));
                }
            }
            return Some(());
        }
        let frame = self.stack.pop()?;
        let end = span.end;
        let (node, anchor) = match frame {
            Frame::Seq {
                items,
                start,
                anchor,
            } => (Node::new(Kind::Seq(items), start..end.max(start)), anchor),
            Frame::Map {
                entries,
                start,
                anchor,
                ..
            } => (Node::new(Kind::Map(entries), start..end.max(start)), anchor),
        };
        self.finish(node, anchor);
        Some(())
    }

    /// A value is complete: remember its anchor and attach it to its parent.
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            let count = node.count();
            self.anchors.insert(anchor, (node.clone(), count));
        }
        let path = self.path();
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, seen, key, ..
            }) => {
                let Some((name, key_span)) = key.take() else {
                    return;
                };
                if name == "\u{0}complex-key" {
                    return;
                }
                if seen.insert(name.clone()) {
                    entries.push(Entry {
                        key: name,
                        key_span,
                        value: node,
                    });
                } else {
                    self.cx.error(
                        Code::DuplicateKey,
                        key_span,
                        &path,
                        format!("the key `{name}` appears twice in this mapping"),
                    );
                }
            }
        }
    }

    fn unsupported_tag(&mut self, tag: &Tag, span: Range<usize>) {
        let path = self.path();
        let shown = if tag.is_yaml_core_schema() {
            format!("!!{}", tag.suffix)
        } else {
            tag.to_string()
        };
        self.cx
            .error(
                Code::UnsupportedTag,
                span,
                &path,
                format!("the YAML tag `{shown}` is not supported"),
            )
            .hint = Some("remove the tag; quote the value to make it a string".into());
    }

    /// The field path of the value being read now.
    fn path(&self) -> Path {
        let mut path = Path::root();
        for frame in &self.stack {
            path = match frame {
                Frame::Seq { items, .. } => path.index(items.len()),
                Frame::Map { key, .. } => match key {
                    Some((name, _)) => path.field(name),
                    None => path,
                },
            };
        }
        path
    }
}

impl Cx<'_> {
    fn span(&self, span: Span) -> Range<usize> {
        let start = self.offset_of(span.start.line(), span.start.col());
        let end = self.offset_of(span.end.line(), span.end.col());
        start..end.max(start)
    }
}

/// The first tab used for indentation at or after the line holding `from`: where a
/// tab error really is (the scanner notices it a token later).
fn indenting_tab(text: &str, from: usize) -> Option<usize> {
    let line_start = text[..from.min(text.len())]
        .rfind('\n')
        .map_or(0, |at| at + 1);
    let mut offset = line_start;
    for line in text[line_start..].split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(tab) = line[..indent].find('\t') {
            return Some(offset + tab);
        }
        offset += line.len();
    }
    None
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> Kind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Kind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(value) = i128::from_str_radix(hex, 16) {
            return Kind::Int(value);
        }
    } else if let Some(octal) = text.strip_prefix("0o") {
        if let Ok(value) = i128::from_str_radix(octal, 8) {
            return Kind::Int(value);
        }
    } else if is_decimal_int(text) {
        if let Ok(value) = text.parse::<i128>() {
            return Kind::Int(value);
        }
    } else if is_float(text)
        && let Ok(value) = text.parse::<f64>()
    {
        return Kind::Float(value);
    }
    Kind::Str(text.to_owned())
}

fn is_decimal_int(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (!whole.is_empty() || !fraction.is_empty())
                && whole.bytes().all(|b| b.is_ascii_digit())
                && fraction.bytes().all(|b| b.is_ascii_digit())
                && !(whole.is_empty() && fraction.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|exp| {
        let digits = exp.strip_prefix(['-', '+']).unwrap_or(exp);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_follow_the_core_schema() {
        assert_eq!(resolve_plain("~"), Kind::Null);
        assert_eq!(resolve_plain("true"), Kind::Bool(true));
        assert_eq!(resolve_plain("yes"), Kind::Str("yes".into()));
        assert_eq!(resolve_plain("-12"), Kind::Int(-12));
        assert_eq!(resolve_plain("0x1f"), Kind::Int(31));
        assert_eq!(resolve_plain("1.5"), Kind::Float(1.5));
        assert_eq!(resolve_plain("1e3"), Kind::Float(1000.0));
        assert_eq!(resolve_plain("1.2.3"), Kind::Str("1.2.3".into()));
        assert_eq!(resolve_plain("60s"), Kind::Str("60s".into()));
        assert_eq!(resolve_plain("."), Kind::Str(".".into()));
    }
}
