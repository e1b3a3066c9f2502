//! Version 1 of the three formats: the plugin manifest, the workflow and the operator
//! config. A later version gets its own module beside this one; files name their version
//! (`apiVersion: relo.dev/v1`, or `schema_version = 1` in TOML, where a missing version
//! means 1) and the version is detected before the matching module reads the file.

pub mod operator;
pub mod plugin;
pub mod workflow;

use std::ops::RangeInclusive;

use crate::decode::{Cx, Decode, Path};
use crate::diagnostic::Code;
use crate::tree::Node;
use crate::values::{ByteSize, DurationSpec};

/// Fuel a step may ask for or an operator may allow.
pub const FUEL_RANGE: RangeInclusive<u64> = 1..=10_000_000_000_000;
/// Linear memory, in bytes: from one wasm page to 4 GiB.
pub const MEMORY_RANGE: RangeInclusive<u64> = 64 * 1024..=4 * 1024 * 1024 * 1024;
/// Wall-clock timeouts, in milliseconds: up to 24 hours.
pub const TIMEOUT_RANGE_MS: RangeInclusive<u64> = 1..=24 * 60 * 60 * 1000;
/// Egress requests per step.
pub const EGRESS_REQUESTS_RANGE: RangeInclusive<u64> = 0..=1_000_000;
/// Refused host calls a step may make before it ends (`host_calls`).
pub const HOST_CALLS_RANGE: RangeInclusive<u64> = 0..=100_000;
/// The bytes a run's workspace may hold (`workspace`).
pub const WORKSPACE_RANGE: RangeInclusive<u64> = 0..=(16 << 30);
/// The directories and files a run's workspace may hold (`workspace_files`).
pub const WORKSPACE_FILES_RANGE: RangeInclusive<u64> = 1..=10_000_000;
/// Egress bytes per step: up to 16 GiB.
pub const EGRESS_BYTES_RANGE: RangeInclusive<u64> = 0..=16 * 1024 * 1024 * 1024;
/// Retries of one step.
pub const RETRIES_RANGE: RangeInclusive<u64> = 0..=10;
/// Steps in one workflow.
pub const MAX_STEPS: usize = 1_000;
/// Approvals an approval gate may require.
pub const QUORUM_RANGE: RangeInclusive<u64> = 1..=100;

/// Reads a size and checks its range.
pub(crate) fn size_in(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &Path,
    range: RangeInclusive<u64>,
) -> Option<ByteSize> {
    let size = ByteSize::decode(cx, node, path)?;
    if range.contains(&size.bytes()) {
        Some(size)
    } else {
        let (min, max) = (
            ByteSize::from_bytes(*range.start()),
            ByteSize::from_bytes(*range.end()),
        );
        cx.error(
            Code::OutOfRange,
            node.span.clone(),
            path,
            format!("{size} is out of range: allowed are {min} to {max}"),
        );
        None
    }
}

/// Reads a duration and checks its range (in milliseconds).
pub(crate) fn duration_in(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &Path,
    range: RangeInclusive<u64>,
) -> Option<DurationSpec> {
    let duration = DurationSpec::decode(cx, node, path)?;
    let millis = u64::try_from(duration.duration().as_millis()).unwrap_or(u64::MAX);
    if range.contains(&millis) {
        Some(duration)
    } else {
        let (min, max) = (
            DurationSpec::from_millis(*range.start()),
            DurationSpec::from_millis(*range.end()),
        );
        cx.error(
            Code::OutOfRange,
            node.span.clone(),
            path,
            format!("{duration} is out of range: allowed are {min} to {max}"),
        );
        None
    }
}

/// Reads an optional field with `read`; `Err(())` when present and invalid.
pub(crate) fn optional<T>(
    cx: &mut Cx<'_>,
    found: Option<(&Node, Path)>,
    read: impl FnOnce(&mut Cx<'_>, &Node, &Path) -> Option<T>,
) -> Result<Option<T>, ()> {
    match found {
        None => Ok(None),
        Some((node, path)) => read(cx, node, &path).map(Some).ok_or(()),
    }
}

/// Reports values listed twice in a list of strings (`what` names one, e.g. "method").
pub(crate) fn no_duplicates(cx: &mut Cx<'_>, node: &Node, path: &Path, what: &str) {
    let crate::tree::Kind::Seq(items) = &node.kind else {
        return;
    };
    let mut seen = std::collections::HashSet::new();
    for (index, item) in items.iter().enumerate() {
        if let Some(text) = item.as_str()
            && !seen.insert(text)
        {
            cx.error(
                Code::InvalidValue,
                item.span.clone(),
                &path.index(index),
                format!("{what} `{text}` is listed twice"),
            );
        }
    }
}

/// The keys each table of each format accepts, by JSON Schema definition name; a test
/// checks them against the generated schemas.
#[cfg(test)]
pub(crate) const TABLES: &[(&str, &[&str])] = &[
    ("PluginManifest", plugin::ROOT),
    ("PluginInfo", plugin::PLUGIN),
    ("PluginLimits", plugin::LIMITS),
    ("DeclaredEgress", plugin::EGRESS),
    ("DeclaredSecret", plugin::SECRET),
    ("InjectTable", plugin::INJECT),
    ("Filesystem", plugin::FILESYSTEM),
    ("SignerRequest", plugin::SIGNER),
    ("Workflow", workflow::ROOT),
    ("Param", workflow::PARAM),
    ("Concurrency", workflow::CONCURRENCY),
    ("Step", workflow::STEP),
    ("Approval", workflow::APPROVAL),
    ("OperatorConfig", operator::ROOT),
    ("Ceilings", operator::CEILINGS),
    ("Trust", operator::TRUST),
    ("TrustedSigner", operator::SIGNER),
    ("Person", operator::PERSON),
    ("Signing", operator::SIGNING),
    ("EvidenceConfig", operator::EVIDENCE),
    ("SecretsConfig", operator::SECRETS),
    ("AppRole", operator::APPROLE),
    ("StoreConfig", operator::STORE),
];
