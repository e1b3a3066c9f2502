//! Host patterns: exact names, `*.suffix` wildcards at a label boundary, IP literals.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Which hosts a rule names. Names are stored normalised: lower case, no trailing dot,
/// internationalised names in punycode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostPattern {
    /// Exactly this name.
    Name(String),
    /// Any name strictly below this suffix: `*.example.com` matches `a.example.com` and
    /// `a.b.example.com`, never `example.com`, `evil-example.com` or
    /// `example.com.evil.net`.
    Subdomains(String),
    /// Exactly this IP address.
    Ip(IpAddr),
}

/// A host as requested, normalised for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestHost {
    /// A DNS name, normalised.
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

/// Normalises a DNS name: punycode for non-ASCII labels, lower case, no trailing dot.
/// `None` for names that are not valid hostnames.
pub(crate) fn normalise_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.ends_with('.') {
        return None;
    }
    let ascii = idna::domain_to_ascii(name).ok()?;
    let valid = !ascii.is_empty()
        && ascii.len() <= 253
        && ascii.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then_some(ascii)
}

impl RequestHost {
    /// Normalises a requested host (brackets around IPv6 literals allowed).
    pub fn parse(host: &str) -> Option<Self> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(Self::Ip(ip));
        }
        normalise_name(host).map(Self::Name)
    }
}

impl HostPattern {
    /// Parses `name`, `*.suffix` or an IP literal (`[v6]` or bare).
    pub fn parse(pattern: &str) -> Option<Self> {
        if let Some(suffix) = pattern.strip_prefix("*.") {
            let suffix = normalise_name(suffix)?;
            // A wildcard needs at least two labels below it: `*.com` is not a pattern.
            return (suffix.contains('.')).then_some(Self::Subdomains(suffix));
        }
        if pattern.contains('*') {
            return None;
        }
        match RequestHost::parse(pattern)? {
            RequestHost::Ip(ip) => Some(Self::Ip(ip)),
            RequestHost::Name(name) => Some(Self::Name(name)),
        }
    }

    /// Whether the requested host is one this pattern names.
    pub fn matches(&self, host: &RequestHost) -> bool {
        match (self, host) {
            (Self::Name(name), RequestHost::Name(requested)) => name == requested,
            (Self::Subdomains(suffix), RequestHost::Name(requested)) => is_below(requested, suffix),
            (Self::Ip(ip), RequestHost::Ip(requested)) => ip == requested,
            _ => false,
        }
    }

    /// The hosts both patterns name, if any.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        match (self, other) {
            (Self::Name(a), Self::Name(b)) => (a == b).then(|| self.clone()),
            (Self::Ip(a), Self::Ip(b)) => (a == b).then(|| self.clone()),
            (Self::Name(name), Self::Subdomains(suffix))
            | (Self::Subdomains(suffix), Self::Name(name)) => {
                is_below(name, suffix).then(|| Self::Name(name.clone()))
            }
            (Self::Subdomains(a), Self::Subdomains(b)) => {
                if a == b || is_below(a, b) {
                    Some(Self::Subdomains(a.clone()))
                } else if is_below(b, a) {
                    Some(Self::Subdomains(b.clone()))
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// Whether `name` is strictly below `suffix` at a label boundary.
fn is_below(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Subdomains(suffix) => write!(f, "*.{suffix}"),
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}
