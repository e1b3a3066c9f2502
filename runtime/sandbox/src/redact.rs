//! Redaction: every secret value a step touched is replaced by `[REDACTED:NAME]` in what
//! the host keeps of the step (log lines, stdout, stderr, failure messages), and a step
//! output that contains one is refused.
//!
//! Only the literal value is known to the host: an encoded, split or transformed value
//! (base64, hex, reversed, one character per line) passes. Granting `reveal` trusts the
//! step with the value; redaction is the seat belt, not the lock.

use std::sync::{Arc, Mutex, PoisonError};

use zeroize::Zeroizing;

/// A secret's logical name and its value.
type Known = (String, Zeroizing<String>);

/// The secret values one step touched, by logical name. Cheap to clone (shared).
#[derive(Clone, Default)]
pub(crate) struct Redactor(Arc<Mutex<Vec<Known>>>);

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").finish_non_exhaustive()
    }
}

impl Redactor {
    /// Remembers `value` as the secret `name`. Empty values are ignored (they would
    /// match everywhere).
    pub(crate) fn add(&self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut values = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !values.iter().any(|(_, known)| known.as_str() == value) {
            values.push((name.to_owned(), Zeroizing::new(value.to_owned())));
            // Longest first, so a value containing another is replaced whole.
            values.sort_by_key(|(_, known)| std::cmp::Reverse(known.len()));
        }
    }

    /// The name of a secret whose value occurs in `text`.
    pub(crate) fn find_in(&self, text: &str) -> Option<String> {
        let values = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        values
            .iter()
            .find(|(_, value)| text.contains(value.as_str()))
            .map(|(name, _)| name.clone())
    }

    /// `text` with every known value replaced by `[REDACTED:NAME]`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let values = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = text.to_owned();
        for (name, value) in values.iter() {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[REDACTED:{name}]"));
            }
        }
        out
    }

    /// [`Redactor::redact`] that takes ownership: `text` itself, with no copy, when it
    /// holds no known value (the common case on the hot path of refusals).
    pub(crate) fn redact_owned(&self, text: String) -> String {
        if self.find_in(&text).is_none() {
            return text;
        }
        self.redact(&text)
    }

    /// Guest-chosen `text` as the host keeps it in notes, evidence and traces: redacted,
    /// then cut to `max` bytes with a marker (no copy when there is nothing to do).
    pub(crate) fn shown(&self, text: String, max: usize) -> String {
        crate::budget::bounded_owned(self.redact_owned(text), max)
    }

    /// `bytes` with every known value replaced, byte-wise (captured output need not be
    /// UTF-8).
    pub(crate) fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let values = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = bytes.to_vec();
        for (name, value) in values.iter() {
            let needle = value.as_bytes();
            if out.windows(needle.len()).any(|w| w == needle) {
                out = replace_bytes(&out, needle, format!("[REDACTED:{name}]").as_bytes());
            }
        }
        out
    }

    /// Whether no value was touched.
    pub(crate) fn is_empty(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence_longest_first() {
        let redactor = Redactor::default();
        redactor.add("short", "abc");
        redactor.add("long", "abcdef");
        redactor.add("empty", "");
        assert_eq!(
            redactor.redact("x abcdef y abc z"),
            "x [REDACTED:long] y [REDACTED:short] z"
        );
        assert_eq!(
            redactor.redact_bytes(b"\xff abc \xfe"),
            b"\xff [REDACTED:short] \xfe".to_vec()
        );
        assert_eq!(redactor.find_in("..abcdef.."), Some("long".into()));
        assert_eq!(redactor.find_in("nothing"), None);
    }
}
