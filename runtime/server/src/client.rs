//! Who is on the other end: a request's client address and the key of its rate-limit
//! buckets (THREATS.md T2, T10).
//!
//! The client is the TCP peer (`ConnectInfo`). Only when the peer is one of the
//! operator's trusted proxies (`relo serve --trusted-proxy CIDR`) is `X-Forwarded-For`
//! read: the client is then the right-most address in it that is not itself a trusted
//! proxy. From anyone else the header is ignored, so a client cannot pick its own bucket.
//! An IPv6 client is limited by its /64, the block one subscriber usually holds.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use relo_manifest::Cidr;

/// The header a reverse proxy appends the address it received a request from to.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// A request's client address (IPv4-mapped IPv6 addresses shown as IPv4), or `None`
/// when the router was served without `ConnectInfo` (then every such client is one
/// `unknown` client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// The client of a request from `peer` with `headers`, believing `X-Forwarded-For`
    /// only from a peer inside one of `trusted` (see the module's documentation).
    pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> ClientAddr {
        let Some(peer) = peer.map(|ip| ip.to_canonical()) else {
            return ClientAddr(None);
        };
        let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
        if !is_trusted(peer) {
            return ClientAddr(Some(peer));
        }
        let mut client = peer;
        for hop in forwarded_hops(headers).into_iter().rev() {
            // A hop that does not parse: nothing left of it can be believed, so the
            // trusted proxy that passed it on stands for the client.
            let Some(hop) = hop else { break };
            client = hop;
            if !is_trusted(hop) {
                break;
            }
        }
        ClientAddr(Some(client))
    }

    /// The key of the client's rate-limit buckets and refusal counts: an IPv4 address,
    /// an IPv6 address's /64 (`2001:db8:1:2::/64`), or `unknown`.
    pub fn bucket(&self) -> String {
        match self.0 {
            None => "unknown".to_owned(),
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => {
                let prefix = u128::from(ip) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        }
    }

    /// The TCP peer's address of a request: its client when no proxy is trusted.
    pub(crate) fn peer(extensions: &Extensions) -> Option<IpAddr> {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or_else(|| {
                ClientAddr(ClientAddr::peer(&parts.extensions).map(|ip| ip.to_canonical()))
            }))
    }
}

/// Every address of every `X-Forwarded-For` header, left to right; `None` for one that
/// is not an address (an `address:port` form is read as its address).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(FORWARDED_FOR)
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(parse_hop).collect(),
            Err(_) => vec![None],
        })
        .collect()
}

fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|address| address.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn resolve(peer: &str, forwarded: &[&str], trusted: &[&str]) -> String {
        let trusted: Vec<Cidr> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        ClientAddr::resolve(ip(peer), &headers(forwarded), &trusted).to_string()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        assert_eq!(resolve("192.0.2.9", &["198.51.100.1"], &[]), "192.0.2.9");
        assert_eq!(
            resolve("192.0.2.9", &["198.51.100.1"], &["10.0.0.0/8"]),
            "192.0.2.9"
        );
        assert_eq!(
            resolve("10.0.0.2", &["198.51.100.1"], &["10.0.0.0/8"]),
            "198.51.100.1"
        );
        // No header from a trusted proxy: the proxy is the client.
        assert_eq!(resolve("10.0.0.2", &[], &["10.0.0.0/8"]), "10.0.0.2");
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = ["10.0.0.0/8", "fd00::/8"];
        // A client's own forged hops are left of the one the proxy appended.
        assert_eq!(
            resolve(
                "10.0.0.2",
                &["203.0.113.7, 198.51.100.1, 10.0.0.5"],
                &trusted
            ),
            "198.51.100.1"
        );
        // Several headers read as one list, in order.
        assert_eq!(
            resolve("10.0.0.2", &["203.0.113.7", "198.51.100.1:4711"], &trusted),
            "198.51.100.1"
        );
        // Every hop a trusted proxy: the left-most.
        assert_eq!(
            resolve("10.0.0.2", &["10.1.1.1, fd00::1"], &trusted),
            "10.1.1.1"
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            resolve("10.0.0.2", &["203.0.113.7, not-an-ip, 10.0.0.5"], &trusted),
            "10.0.0.5"
        );
        assert_eq!(
            resolve("::ffff:10.0.0.2", &["[2001:db8::1]:443"], &trusted),
            "2001:db8::1"
        );
    }

    #[test]
    fn an_ipv6_client_is_bucketed_by_its_slash_64() {
        let v6 = |text: &str| ClientAddr(ip(text)).bucket();
        assert_eq!(v6("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(v6("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(v6("2001:db8:1:3::1"), v6("2001:db8:1:2::1"));
        assert_eq!(ClientAddr(ip("192.0.2.1")).bucket(), "192.0.2.1");
        assert_eq!(ClientAddr(None).bucket(), "unknown");
        assert_eq!(ClientAddr(None).to_string(), "unknown");
    }
}
