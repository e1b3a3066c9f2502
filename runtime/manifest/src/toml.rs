//! TOML text into a located value tree, with the `toml` crate's spanned parser.

use toml::de::{DeTable, DeValue};

use crate::decode::{Cx, Path};
use crate::diagnostic::Code;
use crate::source::MAX_DEPTH;
use crate::tree::{Entry, Kind, Node};

/// Parses a TOML document; `None` when it could not be parsed (the problem is reported).
pub(crate) fn parse(cx: &mut Cx<'_>, text: &str) -> Option<Node> {
    let table = match DeTable::parse(text) {
        Ok(table) => table,
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            let message = error.message().trim().replace('\n', "; ");
            let (code, message) = if message.contains("recurs") {
                (Code::TooDeep, "values are nested too deeply".to_owned())
            } else if message.contains("duplicate key") {
                let key = cx.slice(span.clone()).unwrap_or_default().trim();
                (
                    Code::DuplicateKey,
                    format!("the key `{key}` appears twice in this table"),
                )
            } else {
                (Code::Syntax, format!("invalid TOML: {message}"))
            };
            cx.error(code, span, &Path::root(), message);
            return None;
        }
    };
    let span = table.span();
    let root = convert_table(cx, table.into_inner(), span, &Path::root(), 0)?;
    if root.entries().is_some_and(<[Entry]>::is_empty) {
        let file = cx.file().to_owned();
        cx.push(crate::source::empty_file(&file));
        return None;
    }
    Some(root)
}

fn convert_table(
    cx: &mut Cx<'_>,
    table: DeTable<'_>,
    span: std::ops::Range<usize>,
    path: &Path,
    depth: usize,
) -> Option<Node> {
    let mut entries = Vec::new();
    for (key, value) in table {
        let key_span = key.span();
        let key = key.into_inner().into_owned();
        let value_span = value.span();
        let field = path.field(&key);
        let value = convert(cx, value.into_inner(), value_span, &field, depth + 1)?;
        entries.push(Entry {
            key,
            key_span,
            value,
        });
    }
    Some(Node::new(Kind::Map(entries), span))
}

fn convert(
    cx: &mut Cx<'_>,
    value: DeValue<'_>,
    span: std::ops::Range<usize>,
    path: &Path,
    depth: usize,
) -> Option<Node> {
    if depth > MAX_DEPTH {
        cx.error(
            Code::TooDeep,
            span,
            path,
            format!("values are nested more than {MAX_DEPTH} levels deep"),
        );
        return None;
    }
    let kind = match value {
        DeValue::String(text) => Kind::Str(text.into_owned()),
        DeValue::Integer(integer) => {
            match i128::from_str_radix(integer.as_str(), integer.radix()) {
                Ok(value) => Kind::Int(value),
                Err(_) => {
                    cx.error(Code::OutOfRange, span, path, "the integer does not fit");
                    return None;
                }
            }
        }
        DeValue::Float(float) => match float.as_str().replace('_', "").parse::<f64>() {
            Ok(value) => Kind::Float(value),
            Err(_) => match float.as_str() {
                "inf" | "+inf" => Kind::Float(f64::INFINITY),
                "-inf" => Kind::Float(f64::NEG_INFINITY),
                _ => Kind::Float(f64::NAN),
            },
        },
        DeValue::Boolean(value) => Kind::Bool(value),
        DeValue::Datetime(datetime) => Kind::Datetime(datetime.to_string()),
        DeValue::Array(items) => {
            let mut out = Vec::new();
            for (index, item) in items.into_iter().enumerate() {
                let item_span = item.span();
                out.push(convert(
                    cx,
                    item.into_inner(),
                    item_span,
                    &path.index(index),
                    depth + 1,
                )?);
            }
            Kind::Seq(out)
        }
        DeValue::Table(table) => return convert_table(cx, table, span, path, depth),
    };
    Some(Node::new(kind, span))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Node {
        let mut cx = Cx::new("t.toml", text, 0);
        let node = parse(&mut cx, text);
        assert!(!cx.has_errors(), "{:?}", cx.into_diagnostics());
        node.unwrap()
    }

    #[test]
    fn converts_values_with_spans() {
        let text = "a = 0x10\nb = 1_000\n[t]\nc = \"x\"\n";
        let root = tree(text);
        assert_eq!(root.get("a").unwrap().kind, Kind::Int(16));
        assert_eq!(root.get("b").unwrap().kind, Kind::Int(1000));
        let c = root.get("t").unwrap().get("c").unwrap();
        assert_eq!(&text[c.span.clone()], "\"x\"");
    }
}
