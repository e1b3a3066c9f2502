//! Evidence entries: a record numbered, chained to its scope's previous entry, and sealed
//! by a hash over RFC 8785 canonical JSON.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::event::{EvidenceEvent, EvidenceRecord};
use crate::merkle::Hash;

/// The `prev_hash` of the first entry of every scope: 64 zeros.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The largest integer RFC 8785 represents exactly (2^53 - 1). Entry numbers and body
/// integers must stay within it.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// One entry of the evidence log, as stored and as read back.
///
/// `hash` seals everything else ([`entry_hash`]); `prev_hash` links the entry to the
/// previous entry of the same scope; `seq` places it in the global log, whose entry
/// hashes are the leaves of the Merkle tree that checkpoints sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceEntry {
    /// Position in the global log, from 1, gapless.
    pub seq: u64,
    /// The chain: a run id or `control`.
    pub scope: String,
    /// Position in the scope's chain, from 1, gapless.
    pub scope_seq: u64,
    /// The step the entry concerns, if any.
    pub step_id: Option<String>,
    /// The event kind (`egress.denied`, `step.finished`, ...).
    pub kind: String,
    /// When it happened: RFC 3339 in UTC with nine fractional digits ([`rfc3339_utc`]).
    pub time: String,
    /// The event's fields, without its `kind` (a JSON object).
    pub body: Value,
    /// The hash of the previous entry of this scope, lowercase hex, or
    /// [`GENESIS_PREV_HASH`] for the first.
    pub prev_hash: String,
    /// This entry's hash ([`entry_hash`]), lowercase hex.
    pub hash: String,
}

impl EvidenceEntry {
    /// Everything the hash covers, borrowed.
    pub fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            seq: self.seq,
            scope: &self.scope,
            scope_seq: self.scope_seq,
            step_id: self.step_id.as_deref(),
            kind: &self.kind,
            time: &self.time,
            body: &self.body,
            prev_hash: &self.prev_hash,
        }
    }

    /// The body as a store holds it (JSON text) turned back into a value for an entry.
    ///
    /// Text that is not JSON becomes `null`. No legitimate body is `null` (bodies are
    /// objects), so such an entry never verifies: a mangled body is reported as changed
    /// rather than making the read fail.
    pub fn parse_stored_body(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or(Value::Null)
    }

    /// The body as JSON text in RFC 8785 canonical form (what a store keeps). Falls back
    /// to plain JSON for a body that has no canonical form (such an entry cannot verify).
    pub fn body_json(&self) -> String {
        body_text(&self.body)
    }

    /// The sandbox event this entry records, when its kind is one of [`EvidenceEvent`]'s.
    pub fn event(&self) -> Result<EvidenceEvent, serde_json::Error> {
        let mut body = self.body.clone();
        if let Value::Object(members) = &mut body {
            members.insert("kind".into(), Value::String(self.kind.clone()));
        }
        serde_json::from_value(body)
    }
}

/// The fields an entry's hash covers: everything but the hash itself, borrowed, so a
/// store can hash an entry inside its append transaction without copying it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntryFields<'a> {
    /// Position in the global log, from 1.
    pub seq: u64,
    /// The chain: a run id or `control`.
    pub scope: &'a str,
    /// Position in the scope's chain, from 1.
    pub scope_seq: u64,
    /// The step, if any.
    pub step_id: Option<&'a str>,
    /// The event kind.
    pub kind: &'a str,
    /// When it happened (RFC 3339).
    pub time: &'a str,
    /// The event's fields (a JSON object).
    pub body: &'a Value,
    /// The previous entry's hash in this scope, lowercase hex.
    pub prev_hash: &'a str,
}

/// Why an entry has no hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The body is not a JSON object.
    #[error("an evidence body must be a JSON object")]
    BodyNotObject,
    /// The body holds a number RFC 8785 cannot represent exactly.
    #[error("the evidence body has no canonical JSON form: {reason}")]
    NotCanonicalizable {
        /// What relo-trust's canonicalizer said.
        reason: String,
    },
    /// `seq` or `scope_seq` is 0 or above 2^53 - 1.
    #[error("{field} {value} is outside 1..=2^53-1")]
    NumberOutOfRange {
        /// `seq` or `scope_seq`.
        field: &'static str,
        /// The value.
        value: u64,
    },
}

impl EntryError {
    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BodyNotObject => "body-not-object",
            Self::NotCanonicalizable { .. } => "body-not-canonicalizable",
            Self::NumberOutOfRange { .. } => "entry-number-out-of-range",
        }
    }
}

/// The hash of an entry: SHA-256 of the RFC 8785 canonical JSON of the object
/// `{"body", "kind", "prev_hash", "scope", "scope_seq", "seq", "step_id", "time"}` (in
/// that order, which is the canonical one), `step_id` being `null` when absent.
///
/// This is exactly `SHA-256(relo_trust::canonical_json(object))`; it is written out
/// here without building the object so hashing stays cheap. Fails when the body is not
/// an object or holds integers beyond 2^53 - 1, or when `seq` or `scope_seq` is out of
/// range; bodies made by [`EntryContent::from_record`] never fail.
pub fn entry_hash(fields: &EntryFields<'_>) -> Result<Hash, EntryError> {
    let body = canonical_body(fields.body)?;
    hash_with_body(fields, &body)
}

/// The canonical JSON of a body, checked to be an object.
pub(crate) fn canonical_body(body: &Value) -> Result<Vec<u8>, EntryError> {
    if !body.is_object() {
        return Err(EntryError::BodyNotObject);
    }
    relo_trust::canonical_json(body).map_err(|e| EntryError::NotCanonicalizable {
        reason: e.to_string(),
    })
}

/// [`entry_hash`] with the body already canonicalized (the verifier re-hashes one body
/// under several numberings when it looks for a moved entry).
pub(crate) fn hash_with_body(
    fields: &EntryFields<'_>,
    canonical_body: &[u8],
) -> Result<Hash, EntryError> {
    for (field, value) in [("seq", fields.seq), ("scope_seq", fields.scope_seq)] {
        if value == 0 || value > MAX_SAFE_INTEGER {
            return Err(EntryError::NumberOutOfRange { field, value });
        }
    }
    let mut out = Vec::with_capacity(
        canonical_body.len()
            + fields.scope.len()
            + fields.kind.len()
            + fields.time.len()
            + fields.prev_hash.len()
            + fields.step_id.map_or(4, str::len)
            + 128,
    );
    out.extend_from_slice(b"{\"body\":");
    out.extend_from_slice(canonical_body);
    out.extend_from_slice(b",\"kind\":");
    write_json_string(fields.kind, &mut out);
    out.extend_from_slice(b",\"prev_hash\":");
    write_json_string(fields.prev_hash, &mut out);
    out.extend_from_slice(b",\"scope\":");
    write_json_string(fields.scope, &mut out);
    out.extend_from_slice(b",\"scope_seq\":");
    out.extend_from_slice(fields.scope_seq.to_string().as_bytes());
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(fields.seq.to_string().as_bytes());
    out.extend_from_slice(b",\"step_id\":");
    match fields.step_id {
        Some(step) => write_json_string(step, &mut out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"time\":");
    write_json_string(fields.time, &mut out);
    out.push(b'}');
    Ok(Sha256::digest(&out).into())
}

/// A string as RFC 8785 writes it: only `"`, `\` and control characters escaped, the
/// short escapes where JSON has them, `\u00xx` in lowercase hex otherwise.
fn write_json_string(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0x0f)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Lowercase hex of a hash.
pub fn hash_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

/// Parses exactly 64 lowercase hex digits. Anything else (uppercase included) is `None`:
/// a stored hash is compared as the text it must be.
pub fn parse_hash_hex(text: &str) -> Option<Hash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut hash = [0u8; 32];
    for (out, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
        *out = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(hash)
}

/// What an entry records, before the log numbers and chains it: the scope, step, kind,
/// time and body of an [`EvidenceRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryContent {
    /// The chain: a run id or `control`.
    pub scope: String,
    /// The step, if any.
    pub step_id: Option<String>,
    /// The event kind.
    pub kind: String,
    /// When it happened (RFC 3339, [`rfc3339_utc`]).
    pub time: String,
    /// The event's fields without `kind` (a JSON object).
    pub body: Value,
}

impl EntryContent {
    /// The content of a record: the scope's name (a run id or `control`), the step, the
    /// event's kind, the time in RFC 3339, and the event serialised without its `kind`
    /// tag (the kind is a field of its own, hashed once).
    ///
    /// Integers beyond ±(2^53 - 1) in the body (a guest can ask for `u64::MAX` bytes)
    /// are written as decimal strings, so every record has a hash.
    pub fn from_record(record: &EvidenceRecord) -> EntryContent {
        let kind = record.event.kind();
        let mut body = match serde_json::to_value(&record.event) {
            Ok(Value::Object(mut members)) => {
                members.remove("kind");
                Value::Object(members)
            }
            // The event types serialise to tagged objects; if that ever changes, the
            // failure itself is what gets recorded.
            Ok(other) => {
                let mut members = Map::new();
                members.insert("value".into(), other);
                Value::Object(members)
            }
            Err(error) => {
                let mut members = Map::new();
                members.insert("serialisation_error".into(), error.to_string().into());
                Value::Object(members)
            }
        };
        make_hashable(&mut body);
        EntryContent {
            scope: record.scope.to_string(),
            step_id: record.step_id.clone(),
            kind: kind.to_owned(),
            time: rfc3339_utc(record.time),
            body,
        }
    }

    /// The body as canonical JSON text, for a store's `body` column.
    pub fn body_json(&self) -> String {
        body_text(&self.body)
    }

    /// The fields to hash for this content at a position in the log.
    pub fn fields<'a>(&'a self, seq: u64, scope_seq: u64, prev_hash: &'a str) -> EntryFields<'a> {
        EntryFields {
            seq,
            scope: &self.scope,
            scope_seq,
            step_id: self.step_id.as_deref(),
            kind: &self.kind,
            time: &self.time,
            body: &self.body,
            prev_hash,
        }
    }
}

fn body_text(body: &Value) -> String {
    match relo_trust::canonical_json(body).map(String::from_utf8) {
        Ok(Ok(text)) => text,
        _ => body.to_string(),
    }
}

/// Replaces integers RFC 8785 cannot hold exactly with their decimal strings.
fn make_hashable(value: &mut Value) {
    match value {
        Value::Number(number) => {
            let too_large = number.as_u64().is_some_and(|n| n > MAX_SAFE_INTEGER)
                || number
                    .as_i64()
                    .is_some_and(|n| n.unsigned_abs() > MAX_SAFE_INTEGER);
            if too_large {
                *value = Value::String(number.to_string());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(make_hashable),
        Value::Object(members) => members.values_mut().for_each(make_hashable),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// Numbers and links entries in memory: the next `seq`, and per scope the last
/// `scope_seq` and hash. A store does the same inside its append transaction; this is
/// for tests, tools and embedding.
#[derive(Debug, Clone, Default)]
pub struct EntryChain {
    next_seq: u64,
    heads: HashMap<String, (u64, String)>,
}

impl EntryChain {
    /// An empty log.
    pub fn new() -> Self {
        Self {
            next_seq: 1,
            heads: HashMap::new(),
        }
    }

    /// Continues a log whose last entry is `last_seq`, with each scope's last
    /// `(scope, scope_seq, hash)`.
    pub fn resume<'a>(
        last_seq: u64,
        heads: impl IntoIterator<Item = (&'a str, u64, &'a str)>,
    ) -> Self {
        Self {
            next_seq: last_seq.saturating_add(1),
            heads: heads
                .into_iter()
                .map(|(scope, scope_seq, hash)| (scope.to_owned(), (scope_seq, hash.to_owned())))
                .collect(),
        }
    }

    /// The number of entries appended so far (including those before a resume).
    pub fn len(&self) -> u64 {
        self.next_seq.saturating_sub(1)
    }

    /// Whether nothing has been appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Numbers, links and hashes `content` as the next entry.
    pub fn append(&mut self, content: EntryContent) -> Result<EvidenceEntry, EntryError> {
        let (last_scope_seq, prev_hash) = self
            .heads
            .get(&content.scope)
            .cloned()
            .unwrap_or_else(|| (0, GENESIS_PREV_HASH.to_owned()));
        let seq = self.next_seq;
        let scope_seq = last_scope_seq + 1;
        let hash = hash_hex(&entry_hash(&content.fields(seq, scope_seq, &prev_hash))?);
        self.next_seq += 1;
        self.heads
            .insert(content.scope.clone(), (scope_seq, hash.clone()));
        Ok(EvidenceEntry {
            seq,
            scope: content.scope,
            scope_seq,
            step_id: content.step_id,
            kind: content.kind,
            time: content.time,
            body: content.body,
            prev_hash,
            hash,
        })
    }
}

/// Formats `time` as RFC 3339 in UTC with nine fractional digits, e.g.
/// `2026-05-28T20:26:40.000000005Z`: fixed width, so text order is time order. Times
/// outside the years 0000-9999 are clamped to them.
pub fn rfc3339_utc(time: SystemTime) -> String {
    const MIN_SECS: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX_SECS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            after.subsec_nanos(),
        ),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => (-whole, 0),
                n => (-whole - 1, 1_000_000_000 - n),
            }
        }
    };
    let (secs, nanos) = if secs < MIN_SECS {
        (MIN_SECS, 0)
    } else if secs > MAX_SECS {
        (MAX_SECS, 999_999_999)
    } else {
        (secs, nanos)
    };
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = date_of_day(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date `days` days after 1970-01-01.
///
/// Counts in 400-year cycles (146,097 days) starting on a 1 March, so the leap day is
/// the last day of each counted year.
fn date_of_day(days: i64) -> (i64, i64, i64) {
    let from_march_0000 = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let cycle = from_march_0000.div_euclid(146_097);
    let day_of_cycle = from_march_0000.rem_euclid(146_097);
    let year_of_cycle = (day_of_cycle - day_of_cycle / 1_460 + day_of_cycle / 36_524
        - day_of_cycle / 146_096)
        / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = cycle * 400 + year_of_cycle + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::event::Scope;

    fn sample() -> EvidenceEntry {
        let mut chain = EntryChain::new();
        chain
            .append(EntryContent {
                scope: "run-1".into(),
                step_id: Some("deploy".into()),
                kind: "secret.denied".into(),
                time: "2026-05-28T20:26:40.000000005Z".into(),
                body: json!({"name": "token", "code": "secret-not-declared", "reason": "no"}),
            })
            .expect("hashable")
    }

    #[test]
    fn the_hash_is_sha256_of_the_canonical_object() {
        let entry = sample();
        let object = json!({
            "seq": entry.seq, "scope": entry.scope, "scope_seq": entry.scope_seq,
            "step_id": entry.step_id, "kind": entry.kind, "time": entry.time,
            "body": entry.body, "prev_hash": entry.prev_hash,
        });
        let canonical = relo_trust::canonical_json(&object).expect("canonical");
        assert_eq!(entry.hash, hex::encode(Sha256::digest(&canonical)));
        assert_eq!(entry.prev_hash, GENESIS_PREV_HASH);
    }

    #[test]
    fn a_known_entry_has_a_known_hash() {
        // Pinned so that a change to the preimage is a deliberate, documented one.
        let body = json!({"name": "token"});
        let fields = EntryFields {
            seq: 1,
            scope: "run-1",
            scope_seq: 1,
            step_id: None,
            kind: "secret.read",
            time: "2026-01-01T00:00:00.000000000Z",
            body: &body,
            prev_hash: GENESIS_PREV_HASH,
        };
        let preimage = concat!(
            r#"{"body":{"name":"token"},"kind":"secret.read","#,
            r#""prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","#,
            r#""scope":"run-1","scope_seq":1,"seq":1,"step_id":null,"#,
            r#""time":"2026-01-01T00:00:00.000000000Z"}"#
        );
        let expected: Hash = Sha256::digest(preimage.as_bytes()).into();
        assert_eq!(entry_hash(&fields), Ok(expected));
    }

    #[test]
    fn unhashable_entries_are_refused_with_a_reason() {
        let mut entry = sample();
        entry.body = json!([1]);
        assert_eq!(entry_hash(&entry.fields()), Err(EntryError::BodyNotObject));
        entry.body = json!({"n": 1u64 << 60});
        assert_eq!(
            entry_hash(&entry.fields()).map_err(|e| e.code()),
            Err("body-not-canonicalizable")
        );
        entry.body = json!({});
        entry.seq = 0;
        assert_eq!(
            entry_hash(&entry.fields()),
            Err(EntryError::NumberOutOfRange {
                field: "seq",
                value: 0
            })
        );
        entry.seq = 1 << 53;
        assert!(entry_hash(&entry.fields()).is_err());
    }

    #[test]
    fn a_record_becomes_content_without_its_kind_and_with_huge_numbers_as_text() {
        let record = EvidenceRecord {
            scope: Scope::Run("run-9".into()),
            step_id: Some("build".into()),
            time: UNIX_EPOCH + Duration::new(1_780_000_000, 5),
            event: EvidenceEvent::LimitExceeded {
                limit: "memory".into(),
                allowed: 1 << 20,
                requested: u64::MAX,
            },
        };
        let content = EntryContent::from_record(&record);
        assert_eq!(content.scope, "run-9");
        assert_eq!(content.kind, "limit.exceeded");
        assert_eq!(content.time, "2026-05-28T20:26:40.000000005Z");
        assert_eq!(
            content.body,
            json!({"limit": "memory", "allowed": 1 << 20, "requested": u64::MAX.to_string()})
        );
        assert_eq!(
            content.body_json(),
            r#"{"allowed":1048576,"limit":"memory","requested":"18446744073709551615"}"#
        );
        let control = EvidenceRecord::new(
            Scope::Control,
            None,
            EvidenceEvent::SecretRead {
                name: "a".into(),
                reference: "kv/data/app#token".into(),
                version: Some(1),
            },
        );
        let mut chain = EntryChain::new();
        let entry = chain
            .append(EntryContent::from_record(&control))
            .expect("hashable");
        assert_eq!(entry.scope, "control");
        assert_eq!(entry.event().expect("an event"), control.event);
    }

    #[test]
    fn the_chain_numbers_globally_and_per_scope() {
        let mut chain = EntryChain::new();
        let mut append = |scope: &str| {
            chain
                .append(EntryContent {
                    scope: scope.into(),
                    step_id: None,
                    kind: "k".into(),
                    time: "t".into(),
                    body: json!({}),
                })
                .expect("hashable")
        };
        let a1 = append("a");
        let b1 = append("b");
        let a2 = append("a");
        assert_eq!((a1.seq, a1.scope_seq), (1, 1));
        assert_eq!((b1.seq, b1.scope_seq), (2, 1));
        assert_eq!((a2.seq, a2.scope_seq), (3, 2));
        assert_eq!(a2.prev_hash, a1.hash);
        assert_eq!(b1.prev_hash, GENESIS_PREV_HASH);
        let mut resumed = EntryChain::resume(3, [("a", 2, a2.hash.as_str())]);
        let a3 = resumed
            .append(EntryContent {
                scope: "a".into(),
                step_id: None,
                kind: "k".into(),
                time: "t".into(),
                body: json!({}),
            })
            .expect("hashable");
        assert_eq!((a3.seq, a3.scope_seq), (4, 3));
        assert_eq!(a3.prev_hash, a2.hash);
    }

    #[test]
    fn a_stored_body_that_is_not_json_reads_as_null() {
        assert_eq!(
            EvidenceEntry::parse_stored_body("{\"a\":1}"),
            json!({"a": 1})
        );
        assert_eq!(EvidenceEntry::parse_stored_body("{\"a\":"), Value::Null);
    }

    #[test]
    fn hex_hashes_are_lowercase_and_64_digits() {
        let hash = [0xabu8; 32];
        assert_eq!(parse_hash_hex(&hash_hex(&hash)), Some(hash));
        assert_eq!(parse_hash_hex(&hash_hex(&hash).to_uppercase()), None);
        assert_eq!(parse_hash_hex("ab"), None);
        assert_eq!(parse_hash_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn formats_known_instants() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000000Z"),
            (951_782_400, 0, "2000-02-29T00:00:00.000000000Z"),
            (1_709_251_199, 999_999_999, "2024-02-29T23:59:59.999999999Z"),
            (4_102_444_800, 1, "2100-01-01T00:00:00.000000001Z"),
            (253_402_300_799, 7, "9999-12-31T23:59:59.000000007Z"),
        ];
        for (secs, nanos, expected) in cases {
            assert_eq!(
                rfc3339_utc(UNIX_EPOCH + Duration::new(secs, nanos)),
                expected
            );
        }
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::new(1, 250_000_000)),
            "1969-12-31T23:59:58.750000000Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::new(300_000_000_000, 0)),
            "9999-12-31T23:59:59.999999999Z"
        );
    }

    proptest! {
        #[test]
        fn the_fast_preimage_is_the_canonical_json_of_the_object(
            scope in "\\PC{0,12}|[\u{0}-\u{1f}\"\\\\a]{0,6}",
            step in proptest::option::of("\\PC{0,8}|[\u{0}-\u{1f}\u{7f}\u{2028}\u{e000}\u{1f600}]{0,4}"),
            kind in "[a-z.]{1,12}",
            time in "\\PC{0,30}",
            body_key in "\\PC{0,6}",
            body_value in "\\PC{0,10}",
            number in 0u64..=MAX_SAFE_INTEGER,
            seq in 1u64..=MAX_SAFE_INTEGER,
            scope_seq in 1u64..=MAX_SAFE_INTEGER,
            prev in "[0-9a-f]{64}",
        ) {
            let body = json!({ body_key: body_value, "n": number, "f": 0.5 });
            let fields = EntryFields {
                seq, scope: &scope, scope_seq, step_id: step.as_deref(), kind: &kind,
                time: &time, body: &body, prev_hash: &prev,
            };
            let object = json!({
                "seq": seq, "scope": scope, "scope_seq": scope_seq, "step_id": step,
                "kind": kind, "time": time, "body": body, "prev_hash": prev,
            });
            let canonical = relo_trust::canonical_json(&object).expect("canonical");
            let expected: Hash = Sha256::digest(&canonical).into();
            prop_assert_eq!(entry_hash(&fields), Ok(expected));
        }
    }
}
