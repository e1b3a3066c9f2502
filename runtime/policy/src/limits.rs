//! Resource limits of one step and the names of the limits a step can exceed.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The resources one step may use. The orchestrator computes these from the plugin's
/// requests capped by the operator's ceilings; the sandbox enforces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Fuel (roughly, wasm instructions) the step may consume.
    pub fuel: u64,
    /// Bytes of linear memory the step may hold at once, across all its memories.
    pub memory_bytes: u64,
    /// Table elements the step may hold at once, across all its tables.
    pub table_elements: u64,
    /// Wall-clock time from instantiation to the step's result.
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    /// Bytes of output JSON the step may return.
    pub output_bytes: u64,
    /// Bytes of log lines, stdout and stderr the step may write, together.
    pub log_bytes: u64,
    /// Outgoing requests the step may make (allowed or denied).
    pub egress_requests: u64,
    /// Bytes the step may send and receive over egress, bodies included.
    pub egress_bytes: u64,
    /// Host calls the host may refuse (secrets, reveal, signer, egress) before the step
    /// ends with the limit `host-calls`.
    #[serde(default = "default_host_calls")]
    pub host_calls: u64,
    /// Bytes of regular files (apparent sizes: a sparse file counts whole) the run's
    /// workspace may hold after a read-write step.
    #[serde(default = "default_workspace_bytes")]
    pub workspace_bytes: u64,
    /// Directories and files the run's workspace may hold after a read-write step.
    #[serde(default = "default_workspace_files")]
    pub workspace_files: u64,
}

/// The workspace's bytes unless the manifest asks otherwise: 64 MiB.
pub const DEFAULT_WORKSPACE_BYTES: u64 = 64 * 1024 * 1024;
/// The workspace's directories and files unless the manifest asks otherwise.
pub const DEFAULT_WORKSPACE_FILES: u64 = 10_000;

fn default_workspace_bytes() -> u64 {
    DEFAULT_WORKSPACE_BYTES
}

fn default_workspace_files() -> u64 {
    DEFAULT_WORKSPACE_FILES
}

/// Refused host calls a step may make unless its manifest asks otherwise.
pub const DEFAULT_HOST_CALLS: u64 = 64;

fn default_host_calls() -> u64 {
    DEFAULT_HOST_CALLS
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 1_000_000_000,
            memory_bytes: 64 * 1024 * 1024,
            table_elements: 100_000,
            timeout: Duration::from_secs(30),
            output_bytes: 1024 * 1024,
            log_bytes: 1024 * 1024,
            egress_requests: 100,
            egress_bytes: 16 * 1024 * 1024,
            host_calls: DEFAULT_HOST_CALLS,
            workspace_bytes: DEFAULT_WORKSPACE_BYTES,
            workspace_files: DEFAULT_WORKSPACE_FILES,
        }
    }
}

/// The limit a step ran into. Its [`code`](LimitKind::code) is stable and machine-readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitKind {
    /// The step used all its fuel.
    Fuel,
    /// The step asked for more linear memory or table space than allowed.
    Memory,
    /// The step ran past its wall-clock timeout.
    Timeout,
    /// The step returned more output than allowed.
    Output,
    /// The step wrote more log, stdout and stderr than allowed.
    Log,
    /// The step made more outgoing requests than allowed.
    EgressRequests,
    /// The step sent or received more egress bytes than allowed.
    EgressBytes,
    /// The host refused more of the step's host calls than allowed.
    HostCalls,
    /// The step held more host-side resources (wasi:http fields, requests, streams, ...)
    /// at once than the host allows one step.
    HostResources,
    /// The run's workspace held more bytes or entries than allowed after a step.
    Workspace,
}

impl LimitKind {
    /// The stable name of this limit: `fuel`, `memory`, `timeout`, `output`, `log`,
    /// `egress-requests`, `egress-bytes`, `host-calls`, `host-resources` or `workspace`.
    pub fn code(self) -> &'static str {
        match self {
            LimitKind::Fuel => "fuel",
            LimitKind::Memory => "memory",
            LimitKind::Timeout => "timeout",
            LimitKind::Output => "output",
            LimitKind::Log => "log",
            LimitKind::EgressRequests => "egress-requests",
            LimitKind::EgressBytes => "egress-bytes",
            LimitKind::HostCalls => "host-calls",
            LimitKind::HostResources => "host-resources",
            LimitKind::Workspace => "workspace",
        }
    }
}

impl Limits {
    /// Each limit the smaller of the two: what a request capped by a ceiling gets.
    pub fn min(&self, other: &Limits) -> Limits {
        Limits {
            fuel: self.fuel.min(other.fuel),
            memory_bytes: self.memory_bytes.min(other.memory_bytes),
            table_elements: self.table_elements.min(other.table_elements),
            timeout: self.timeout.min(other.timeout),
            output_bytes: self.output_bytes.min(other.output_bytes),
            log_bytes: self.log_bytes.min(other.log_bytes),
            egress_requests: self.egress_requests.min(other.egress_requests),
            egress_bytes: self.egress_bytes.min(other.egress_bytes),
            host_calls: self.host_calls.min(other.host_calls),
            workspace_bytes: self.workspace_bytes.min(other.workspace_bytes),
            workspace_files: self.workspace_files.min(other.workspace_files),
        }
    }

    /// Whether no limit of `self` exceeds the same limit of `other`.
    pub fn within(&self, other: &Limits) -> bool {
        self.min(other) == *self
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_codes_are_stable() {
        let codes: Vec<_> = [
            LimitKind::Fuel,
            LimitKind::Memory,
            LimitKind::Timeout,
            LimitKind::Output,
            LimitKind::Log,
            LimitKind::EgressRequests,
            LimitKind::EgressBytes,
            LimitKind::HostCalls,
            LimitKind::HostResources,
            LimitKind::Workspace,
        ]
        .iter()
        .map(|kind| kind.code())
        .collect();
        assert_eq!(
            codes,
            [
                "fuel",
                "memory",
                "timeout",
                "output",
                "log",
                "egress-requests",
                "egress-bytes",
                "host-calls",
                "host-resources",
                "workspace"
            ]
        );
    }

    #[test]
    fn limits_serialise_timeout_in_milliseconds() {
        let json = serde_json::to_value(Limits::default()).expect("limits serialise");
        assert_eq!(json["timeout"], 30_000);
    }

    #[test]
    fn limits_stored_before_host_calls_read_with_the_default() {
        let mut json = serde_json::to_value(Limits::default()).expect("limits serialise");
        json.as_object_mut()
            .expect("an object")
            .remove("host_calls");
        let limits: Limits = serde_json::from_value(json).expect("old limits parse");
        assert_eq!(limits.host_calls, DEFAULT_HOST_CALLS);
    }
}
