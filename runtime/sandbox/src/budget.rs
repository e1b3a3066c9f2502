//! What a step can make the host do without being granted anything: refused host calls,
//! each of which writes evidence, and guest-chosen text that the host copies into notes,
//! evidence and traces. Both are bounded here.
//!
//! Refused calls (secrets, reveal, signer, egress) count against `[limits] host_calls`;
//! the call past the limit ends the step with the limit `host-calls`, recorded once with
//! the count, and writes no evidence of its own. Guest-chosen names are cut to
//! [`MAX_NAME_BYTES`], longer text to [`MAX_TEXT_BYTES`], and a cut is marked.

use std::sync::atomic::{AtomicU64, Ordering};

use relo_policy::LimitKind;

use crate::error::LimitExceeded;

/// The most bytes of a guest-chosen name (a secret, a key) the host keeps.
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// The most bytes of other guest-chosen text (a path, a host) the host keeps.
pub(crate) const MAX_TEXT_BYTES: usize = 2048;

/// The most host-side resources (wasi:http fields, requests, bodies, streams, pollables,
/// open files) one step may hold at once: they live in host memory, which the step's
/// memory limit does not see. Past it the step ends with the limit `host-resources`.
pub(crate) const MAX_HOST_RESOURCES: usize = 1024;
/// The most bytes one wasi:http header map may take on the host (wasmtime's own measure,
/// which counts its in-memory form; its default is 128 KiB); with [`MAX_HOST_RESOURCES`]
/// it bounds what header maps can cost a step to 64 MiB.
pub(crate) const MAX_FIELD_BYTES: usize = 64 * 1024;

/// The refused host calls of one step, shared by its host functions and its egress gate.
#[derive(Debug)]
pub(crate) struct RefusedCalls {
    count: AtomicU64,
    limit: u64,
}

impl RefusedCalls {
    /// A budget of `limit` refused calls.
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            count: AtomicU64::new(0),
            limit,
        }
    }

    /// Counts one refused call; past the budget, the limit that must end the step (the
    /// caller then records nothing for this call).
    pub(crate) fn charge(&self) -> Result<(), LimitExceeded> {
        let refused = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if refused > self.limit {
            return Err(self.limit_at(refused));
        }
        Ok(())
    }

    /// The limit, once a call past the budget was made: the step must stop.
    pub(crate) fn exceeded(&self) -> Option<LimitExceeded> {
        let refused = self.count.load(Ordering::Acquire);
        (refused > self.limit).then(|| self.limit_at(refused))
    }

    fn limit_at(&self, refused: u64) -> LimitExceeded {
        LimitExceeded {
            kind: LimitKind::HostCalls,
            allowed: self.limit,
            requested: refused,
        }
    }
}

/// `text` cut to at most `max` bytes (at a character boundary), with a marker that says
/// how many bytes were cut.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    bounded_owned(text.to_owned(), max)
}

/// [`bounded`] that takes ownership: `text` itself, with no copy, when it is short.
pub(crate) fn bounded_owned(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("…[truncated {cut} bytes]"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_past_the_budget_is_the_limit() {
        let calls = RefusedCalls::new(2);
        assert!(calls.charge().is_ok());
        assert!(calls.charge().is_ok());
        assert_eq!(calls.exceeded(), None);
        let limit = calls
            .charge()
            .expect_err("the third refusal is past the budget");
        assert_eq!(
            (limit.kind, limit.allowed, limit.requested),
            (LimitKind::HostCalls, 2, 3)
        );
        assert_eq!(calls.exceeded(), Some(limit));
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_marked() {
        assert_eq!(bounded("short", 8), "short");
        assert_eq!(bounded("abcdefghij", 4), "abcd…[truncated 6 bytes]");
        // 'é' is two bytes: a cut inside it moves back to its start.
        assert_eq!(bounded("aé", 2), "a…[truncated 2 bytes]");
    }
}
