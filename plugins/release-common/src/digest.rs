//! `sha256:<64 lowercase hex>` digests: of images, of chart listings.

use std::fmt;

use relo_sdk::StepError;
use sha2::{Digest as _, Sha256};

/// The only algorithm accepted, with its separator.
const PREFIX: &str = "sha256:";

/// A SHA-256 digest, written `sha256:<64 lowercase hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sha256Digest {
    hex: String,
}

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_bytes(Sha256::digest(bytes).into())
    }

    /// The digest with these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            hex: hex::encode(bytes),
        }
    }

    /// Checks `value`, given in the input field `field`.
    ///
    /// # Errors
    ///
    /// `invalid-input` naming the field and why the value is not a digest: a tag
    /// (`latest`, `1.4.0`, `repo:tag`), a whole reference (`repo@sha256:…`), another
    /// algorithm, a missing prefix, the wrong length, upper case or a non-hex character.
    pub fn parse(field: &str, value: &str) -> Result<Self, StepError> {
        Self::check(value).map_err(|why| StepError::invalid_input(format!("`{field}` {why}")))
    }

    /// The same check as [`Sha256Digest::parse`], with the reason as plain text that
    /// starts with the value.
    ///
    /// # Errors
    ///
    /// Why `value` is not a digest.
    pub fn check(value: &str) -> Result<Self, String> {
        let expected = "expected sha256:<64 lowercase hex>";
        if value.is_empty() {
            return Err(format!("is empty; {expected}"));
        }
        if let Some((name, digest)) = value.split_once('@') {
            return Err(format!(
                "`{value}` is an image reference; give only its digest `{digest}`, not \
                 `{name}@`"
            ));
        }
        let Some(hex) = value.strip_prefix(PREFIX) else {
            return Err(not_prefixed(value, expected));
        };
        let length = hex.chars().count();
        if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{value}` has {bad:?} after `sha256:`, which is not a hex digit; {expected}"
            ));
        }
        if length != 64 {
            return Err(format!(
                "`{value}` has {length} hex digits after `sha256:`, not 64; {expected}"
            ));
        }
        if hex.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("`{value}` has upper-case hex digits; {expected}"));
        }
        Ok(Self {
            hex: hex.to_owned(),
        })
    }

    /// The 64 lowercase hex digits, without `sha256:`.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The 32 bytes.
    pub fn bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        // `hex` is 64 checked hex digits by construction, so this cannot fail.
        let _ = hex::decode_to_slice(&self.hex, &mut bytes);
        bytes
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.hex)
    }
}

/// Why a value without `sha256:` is not a digest.
fn not_prefixed(value: &str, expected: &str) -> String {
    let hex_only = |text: &str| !text.is_empty() && text.chars().all(|c| c.is_ascii_hexdigit());
    if hex_only(value) && value.len() == 64 {
        return format!("`{value}` lacks the `sha256:` prefix; {expected}");
    }
    match value.rsplit_once(':') {
        Some((algorithm, digest))
            if hex_only(digest)
                && digest.len() >= 32
                && !algorithm.is_empty()
                && algorithm
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) =>
        {
            format!("`{value}` is a `{algorithm}` digest; only sha256 is accepted, {expected}")
        }
        Some(_) => format!(
            "`{value}` is a tagged image reference, not a digest: a tag is mutable and can \
             be moved to other content; {expected}"
        ),
        None => format!(
            "`{value}` is a tag, not a digest: a tag is mutable and can be moved to other \
             content; {expected}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn why(value: &str) -> String {
        match Sha256Digest::check(value) {
            Ok(digest) => format!("accepted {digest}"),
            Err(why) => why,
        }
    }

    #[test]
    fn a_digest_round_trips() {
        let digest = Sha256Digest::check(&format!("sha256:{HEX}"));
        assert_eq!(digest.as_ref().map(Sha256Digest::hex), Ok(HEX));
        assert_eq!(
            digest.map(|d| Sha256Digest::from_bytes(d.bytes()).to_string()),
            Ok(format!("sha256:{HEX}"))
        );
        assert_eq!(
            Sha256Digest::of(b"relo").hex(),
            "3fd4fad2a628fb1374f8bbfe48e60e60747a1ff6d7ef5354677cd5a469b1d6b3"
        );
    }

    #[test]
    fn tags_are_named_as_tags() {
        assert!(why("latest").starts_with("`latest` is a tag, not a digest"));
        assert!(why("1.4.0").starts_with("`1.4.0` is a tag, not a digest"));
        assert!(
            why("registry.example.com/acme/checkout:1.4.0")
                .starts_with("`registry.example.com/acme/checkout:1.4.0` is a tagged image")
        );
    }

    #[test]
    fn every_malformation_has_its_reason() {
        assert!(why("").starts_with("is empty"));
        assert!(why(HEX).contains("lacks the `sha256:` prefix"));
        assert!(why(&format!("sha512:{HEX}{HEX}")).contains("is a `sha512` digest"));
        assert!(why(&format!("acme/checkout@sha256:{HEX}")).contains("is an image reference"));
        assert!(why("sha256:abc").contains("has 3 hex digits after `sha256:`, not 64"));
        assert!(why(&format!("sha256:{}", HEX.to_uppercase())).contains("upper-case"));
        let bad = format!("sha256:{}g", &HEX[1..]);
        assert!(
            why(&bad).contains("has 'g' after `sha256:`"),
            "{}",
            why(&bad)
        );
        assert_eq!(
            Sha256Digest::parse("digest", "latest").map(|d| d.to_string()),
            Err(StepError::invalid_input(
                "`digest` `latest` is a tag, not a digest: a tag is mutable and can be moved \
                 to other content; expected sha256:<64 lowercase hex>"
            ))
        );
    }
}
