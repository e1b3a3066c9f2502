//! Path patterns, and request paths normalised before they are matched.

use std::fmt;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

/// Which paths a rule names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathPattern {
    /// Exactly this path.
    Exact(String),
    /// This directory and everything below it; written `/api/*`, stored as `/api/`.
    Prefix(String),
}

impl PathPattern {
    /// Parses an absolute path, optionally ending in `/*`.
    pub fn parse(pattern: &str) -> Option<Self> {
        if !pattern.starts_with('/') || pattern.contains(['?', '#', '\\']) {
            return None;
        }
        let (body, prefix) = match pattern.strip_suffix('*') {
            Some(body) if body.ends_with('/') => (body, true),
            Some(_) => return None,
            None => (pattern, false),
        };
        if body.contains('*') || normalise_path(body).as_deref() != Some(body) {
            return None;
        }
        Some(if prefix {
            Self::Prefix(body.to_owned())
        } else {
            Self::Exact(body.to_owned())
        })
    }

    /// Whether a normalised request path is named by this pattern.
    pub fn matches(&self, normalised: &str) -> bool {
        match self {
            Self::Exact(path) => path == normalised,
            Self::Prefix(prefix) => normalised.starts_with(prefix.as_str()),
        }
    }

    /// The paths both patterns name, if any.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        match (self, other) {
            (Self::Exact(a), Self::Exact(b)) => (a == b).then(|| self.clone()),
            (Self::Exact(path), prefix @ Self::Prefix(_))
            | (prefix @ Self::Prefix(_), Self::Exact(path)) => {
                prefix.matches(path).then(|| Self::Exact(path.clone()))
            }
            (Self::Prefix(a), Self::Prefix(b)) => {
                if a.starts_with(b.as_str()) {
                    Some(self.clone())
                } else if b.starts_with(a.as_str()) {
                    Some(other.clone())
                } else {
                    None
                }
            }
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(path) => f.write_str(path),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// Decodes percent-escapes and removes `.` and `..` segments (RFC 3986 §5.2.4), so
/// `/api/%2e%2e/admin` and `/api/../admin` both become `/admin`. `None` for a path that
/// is not absolute, decodes to invalid UTF-8, or holds a NUL or a backslash: such a
/// path is never matched.
pub fn normalise_path(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let decoded = percent_decode_str(path).decode_utf8().ok()?;
    if decoded.contains(['\0', '\\']) {
        return None;
    }
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = decoded.split('/').skip(1).peekable();
    let mut trailing_slash = false;
    while let Some(segment) = parts.next() {
        let last = parts.peek().is_none();
        match segment {
            "." => trailing_slash = last,
            ".." => {
                segments.pop();
                trailing_slash = last;
            }
            other => {
                segments.push(other);
                trailing_slash = false;
            }
        }
    }
    let mut normalised = String::with_capacity(decoded.len());
    for segment in &segments {
        normalised.push('/');
        normalised.push_str(segment);
    }
    if trailing_slash || normalised.is_empty() {
        normalised.push('/');
    }
    Some(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table() {
        let cases = [
            ("/", Some("/")),
            ("/api/tags", Some("/api/tags")),
            ("/api/tags/", Some("/api/tags/")),
            ("/api/./tags", Some("/api/tags")),
            ("/api/../admin", Some("/admin")),
            ("/api/%2e%2e/admin", Some("/admin")),
            ("/api/%2E%2E/admin", Some("/admin")),
            ("/api/..%2fadmin", Some("/admin")),
            ("/api/x/..", Some("/api/")),
            ("/../../etc/passwd", Some("/etc/passwd")),
            ("/a%20b", Some("/a b")),
            ("/a%00b", None),
            ("/a%5cb", None),
            ("/a%ff", None),
            ("relative", None),
        ];
        for (path, expected) in cases {
            assert_eq!(normalise_path(path).as_deref(), expected, "{path}");
        }
    }
}
