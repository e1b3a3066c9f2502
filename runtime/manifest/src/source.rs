//! The bytes of a file before any parser sees them: size cap, UTF-8, byte-order mark,
//! emptiness; and the map from byte offsets to lines and columns.

use std::ops::Range;

use crate::diagnostic::{Code, Diagnostic, Located};

/// Files larger than this are refused without being parsed.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Values nested deeper than this are refused (`too-deep`).
pub const MAX_DEPTH: usize = 64;

const BOM: &str = "\u{feff}";

/// Checks the raw bytes and returns the text to parse and the number of bytes skipped in
/// front of it (a byte-order mark).
pub(crate) fn gate<'a>(file: &str, bytes: &'a [u8]) -> Result<(&'a str, usize), Box<Diagnostic>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Box::new(
            Diagnostic::whole_file(
                Code::TooLarge,
                file,
                format!(
                    "the file is larger than {MAX_FILE_BYTES} bytes (4MiB), the most relo reads"
                ),
            )
            .with_hint("split it, or check that this is the file you meant"),
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let offset = error.valid_up_to();
            let prefix = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
            let map = SourceMap::new(prefix, 0);
            let mut at = map.locate(offset..offset + 1);
            at.length = error.error_len().unwrap_or(1);
            at.snippet = None;
            return Err(Box::new(
                Diagnostic::new(
                    Code::NotUtf8,
                    file,
                    &at,
                    "",
                    format!("the file is not UTF-8: invalid byte at offset {offset}"),
                )
                .with_hint("save the file as UTF-8"),
            ));
        }
    };
    let (text, skipped) = match text.strip_prefix(BOM) {
        Some(rest) => (rest, BOM.len()),
        None => (text, 0),
    };
    if text.trim().is_empty() {
        return Err(Box::new(empty_file(file)));
    }
    Ok((text, skipped))
}

/// The `empty-file` problem.
pub(crate) fn empty_file(file: &str) -> Diagnostic {
    Diagnostic::whole_file(
        Code::EmptyFile,
        file,
        "the file is empty: it holds only whitespace and comments",
    )
}

/// Line starts of a text, to turn byte offsets into lines and columns.
#[derive(Debug, Clone)]
pub(crate) struct SourceMap<'a> {
    text: &'a str,
    /// Bytes in the file before `text` (a byte-order mark).
    base: usize,
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(text: &'a str, base: usize) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(at, _)| at + 1));
        SourceMap {
            text,
            base,
            line_starts,
        }
    }

    /// The location of a byte range of the text (offsets are clamped to the text).
    pub(crate) fn locate(&self, span: Range<usize>) -> Located {
        let start = self.floor(span.start.min(self.text.len()));
        let end = self.floor(span.end.clamp(start, self.text.len()));
        let line_index = match self.line_starts.binary_search(&start) {
            Ok(index) => index,
            Err(index) => index.saturating_sub(1),
        };
        let line_start = self.line_starts[line_index];
        let line_end = self
            .line_starts
            .get(line_index + 1)
            .map_or(self.text.len(), |next| next - 1);
        let line_text = self.text[line_start..line_end].trim_end_matches('\r');
        let column = self.text[line_start..start].chars().count() + 1;
        Located {
            line: u32::try_from(line_index + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            offset: start + self.base,
            length: end - start,
            snippet: Some(line_text.to_owned()),
        }
    }

    /// The byte offset of a 1-based line and a 0-based character column (as YAML
    /// parsers report positions), clamped to the line.
    pub(crate) fn offset_of(&self, line: usize, column: usize) -> usize {
        let Some(&line_start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let line_end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        self.text[line_start..line_end]
            .char_indices()
            .nth(column)
            .map_or(line_end, |(at, _)| line_start + at)
    }

    /// The text of a byte range, if it is one.
    pub(crate) fn slice(&self, span: Range<usize>) -> Option<&'a str> {
        self.text.get(span)
    }

    fn floor(&self, mut at: usize) -> usize {
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_character_columns() {
        let map = SourceMap::new("a: 1\nbé: x\n", 0);
        let at = map.locate(9..10);
        assert_eq!((at.line, at.column), (2, 4));
        assert_eq!(at.snippet.as_deref(), Some("bé: x"));
        assert_eq!(map.offset_of(2, 3), 9);
    }

    #[test]
    fn non_utf8_names_the_offset() {
        let error = gate("x.toml", b"a = 1\nb = \"\xff\"\n").unwrap_err();
        assert_eq!(error.code, Code::NotUtf8);
        assert_eq!((error.line, error.column, error.offset), (2, 6, 11));
    }

    #[test]
    fn bom_is_skipped_and_counted() {
        let (text, skipped) = gate("x.toml", "\u{feff}a = 1".as_bytes()).unwrap();
        assert_eq!((text, skipped), ("a = 1", 3));
    }
}
