//! Network ranges: `10.0.0.0/8`, `fd00::/8`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::{InvalidValue, string_value};

/// An IPv4 or IPv6 network in CIDR notation, with no bits set after the prefix
/// (`10.0.0.0/8`, not `10.1.2.3/8`). A bare address is a single-address network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    address: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network address.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `address` is in this network (an IPv4 address is never in an IPv6
    /// network, or the other way round).
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => mask(
                u128::from(u32::from(network)),
                u128::from(u32::from(address)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                mask(u128::from(network), u128::from(address), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the top `prefix` of `width` bits agree.
fn mask(network: u128, address: u128, width: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix);
    (network >> shift) == (address >> shift)
}

impl FromStr for Cidr {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let invalid = || {
            InvalidValue::new(format!("`{text}` is not a valid network"))
                .with_hint("write an address and a prefix length, e.g. `10.0.0.0/8` or `fd00::/8`")
        };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let width: u8 = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(prefix) if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) => {
                prefix
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= width)
                    .ok_or_else(|| {
                        InvalidValue::new(format!(
                            "`{text}`: the prefix length must be at most {width}"
                        ))
                    })?
            }
            Some(_) => return Err(invalid()),
        };
        let bits = match address {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        let host_bits = u32::from(width - prefix);
        let host_mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        if bits & host_mask != 0 {
            let network = bits & !host_mask;
            let network = match address {
                IpAddr::V4(_) => IpAddr::from(u32::try_from(network).unwrap_or(0).to_be_bytes()),
                IpAddr::V6(_) => IpAddr::from(network.to_be_bytes()),
            };
            return Err(InvalidValue::new(format!(
                "`{text}` has bits set after the /{prefix} prefix"
            ))
            .with_hint(format!("did you mean `{network}/{prefix}`?")));
        }
        Ok(Cidr { address, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

string_value!(
    Cidr,
    "An IPv4 or IPv6 network in CIDR notation, e.g. `10.0.0.0/8` or `fd00::/8`."
);
crate::decode::decode_from_str!(Cidr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_networks() {
        let net: Cidr = "127.0.0.0/8".parse().unwrap();
        assert!(net.contains("127.1.2.3".parse().unwrap()));
        assert!(!net.contains("128.0.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let v6: Cidr = "fc00::/7".parse().unwrap();
        assert!(v6.contains("fd00::1".parse().unwrap()));
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!("::/0".parse::<Cidr>().is_ok());
    }

    #[test]
    fn refuses_bad_networks() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "fd00::/129",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let error = "10.1.2.3/8".parse::<Cidr>().unwrap_err();
        assert_eq!(error.hint(), Some("did you mean `10.0.0.0/8`?"));
        let error = "fd00::1/8".parse::<Cidr>().unwrap_err();
        assert_eq!(error.hint(), Some("did you mean `fd00::/8`?"));
    }
}
