//! Which resolved addresses egress may connect to.
//!
//! Every address a destination resolves to is checked here, after the grant allowed the
//! request and before any connection: internal networks are blocked whatever the grant
//! says, unless the operator lets a range through explicitly (`allowed_networks`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Ranges that are always blocked, with the name used in refusals.
const BUILTIN_BLOCKED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "this network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
    ("fd00:ec2::254/128", "cloud metadata"),
];

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{address} is in {range} ({name}), which egress may not reach")]
pub struct BlockedAddress {
    /// The address as checked (for an embedded IPv4 address, the embedded one).
    pub address: IpAddr,
    /// The blocked range it falls in.
    pub range: IpNet,
    /// What the range is.
    pub name: String,
}

/// The operator's network rules for egress: built-in blocks, extra blocks, and ranges let
/// through anyway. The default blocks the built-in internal ranges only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPolicy {
    /// More ranges to block (`extra_blocked_networks`).
    pub extra_blocked: Vec<IpNet>,
    /// Ranges allowed even though blocked (`allowed_networks`); the offline demo lists
    /// `127.0.0.0/8`.
    pub allowed: Vec<IpNet>,
}

impl NetworkPolicy {
    /// Decides whether egress may connect to `address`.
    ///
    /// IPv4 addresses embedded in IPv6 (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible,
    /// NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16`) are checked as the
    /// IPv4 address they carry, as well as themselves.
    pub fn check(&self, address: IpAddr) -> Result<(), BlockedAddress> {
        let mut candidates = vec![address];
        if let IpAddr::V6(v6) = address {
            candidates.extend(embedded_v4(v6).map(IpAddr::V4));
        }
        for candidate in candidates {
            if self.allowed.iter().any(|net| net.contains(&candidate)) {
                continue;
            }
            if let Some((range, name)) = blocked_range(candidate, &self.extra_blocked) {
                return Err(BlockedAddress {
                    address: candidate,
                    range,
                    name,
                });
            }
        }
        Ok(())
    }
}

fn blocked_range(address: IpAddr, extra: &[IpNet]) -> Option<(IpNet, String)> {
    let builtin = BUILTIN_BLOCKED.iter().filter_map(|(cidr, name)| {
        cidr.parse::<IpNet>()
            .ok()
            .map(|net| (net, (*name).to_owned()))
    });
    let extra = extra
        .iter()
        .map(|net| (*net, "blocked by the operator".to_owned()));
    builtin.chain(extra).find(|(net, _)| net.contains(&address))
}

/// The IPv4 address an IPv6 address carries, for the forms that reach IPv4 hosts.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = v6.segments();
    let octets = v6.octets();
    let tail = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    match segments {
        // IPv4-mapped and IPv4-compatible.
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail),
        // NAT64 well-known prefix, and the local-use prefix (RFC 8215).
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(tail),
        // 6to4 carries the IPv4 address in bits 16..48.
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        _ => None,
    }
}

impl fmt::Display for NetworkPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |nets: &[IpNet]| {
            nets.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "built-in internal ranges blocked; extra blocked: [{}]; allowed: [{}]",
            list(&self.extra_blocked),
            list(&self.allowed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(policy: &NetworkPolicy, address: &str) -> bool {
        policy.check(address.parse().expect("an address")).is_err()
    }

    #[test]
    fn builtin_blocks() {
        let policy = NetworkPolicy::default();
        let cases = [
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("100.127.255.254", true),
            ("100.128.0.1", false),
            ("0.0.0.0", true),
            ("0.1.2.3", true),
            ("224.0.0.251", true),
            ("255.255.255.255", true),
            ("8.8.8.8", false),
            ("93.184.216.34", false),
            ("::1", true),
            ("::", true),
            ("fc00::1", true),
            ("fd12:3456::1", true),
            ("fe80::1", true),
            ("ff02::1", true),
            ("fd00:ec2::254", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:8.8.8.8", false),
            ("::127.0.0.1", true),
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::a9fe:a9fe", true),
            ("64:ff9b::808:808", false),
            ("64:ff9b:1::a00:1", true),
            ("2002:7f00:1::", true),
            ("2002:0808:0808::", false),
            ("2606:4700::1111", false),
        ];
        for (address, expected) in cases {
            assert_eq!(blocked(&policy, address), expected, "{address}");
        }
    }

    #[test]
    fn operator_ranges() {
        let policy = NetworkPolicy {
            extra_blocked: vec!["203.0.113.0/24".parse().expect("cidr")],
            allowed: vec!["127.0.0.0/8".parse().expect("cidr")],
        };
        assert!(!blocked(&policy, "127.0.0.1"));
        assert!(!blocked(&policy, "::ffff:127.0.0.1"));
        assert!(blocked(&policy, "::1"), "allowing 127/8 does not allow ::1");
        assert!(blocked(&policy, "10.0.0.1"));
        assert!(blocked(&policy, "203.0.113.7"));
        let refusal = policy
            .check("203.0.113.7".parse().expect("ip"))
            .unwrap_err();
        assert_eq!(refusal.range.to_string(), "203.0.113.0/24");
    }
}
