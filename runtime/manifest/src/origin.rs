//! Where a parsed file came from, so later checks (a plugin against a config, a run
//! against a workflow) can point at the line that caused a problem.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use crate::decode::Path;
use crate::diagnostic::{Code, Diagnostic, Located};
use crate::source::SourceMap;
use crate::tree::{Kind, Node};

/// The file a value was parsed from and the position of every field in it. Two values
/// are equal whatever their origins: an origin is not part of the value.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    file: String,
    source: Arc<str>,
    base: usize,
    spans: HashMap<String, Range<usize>>,
}

impl PartialEq for Origin {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Origin {
    pub(crate) fn new(file: &str, source: &str, base: usize, root: &Node) -> Self {
        let mut spans = HashMap::new();
        let mut stack = vec![(Path::root(), root)];
        while let Some((path, node)) = stack.pop() {
            match &node.kind {
                Kind::Seq(items) => {
                    for (index, item) in items.iter().enumerate() {
                        stack.push((path.index(index), item));
                    }
                }
                Kind::Map(entries) => {
                    for entry in entries {
                        stack.push((path.field(&entry.key), &entry.value));
                    }
                }
                _ => {}
            }
            spans.insert(path.as_str().to_owned(), node.span.clone());
        }
        Origin {
            file: file.to_owned(),
            source: Arc::from(source),
            base,
            spans,
        }
    }

    /// The file name, as the caller gave it (empty when the value was not parsed from a
    /// file).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Where the field at `path` (e.g. `egress[1].url`) is; the start of the file when
    /// the path is unknown.
    pub fn locate(&self, path: &str) -> Located {
        match self.spans.get(path) {
            Some(span) => SourceMap::new(&self.source, self.base).locate(span.clone()),
            None => Located::start_of_file(),
        }
    }

    /// A problem with the field at `path`.
    pub fn diagnostic(&self, code: Code, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, self.file.clone(), &self.locate(path), path, message)
    }
}
