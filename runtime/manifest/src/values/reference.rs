//! Versions, digests and plugin references (`acme/deploy@0.1.0`, `acme/deploy@sha256:…`).

use std::fmt;
use std::str::FromStr;

use super::{InvalidValue, PluginName, string_value};

/// A semantic version (`1.2.3`, `1.0.0-rc.1`), as the `semver` crate reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SemVer(semver::Version);

impl SemVer {
    /// The parsed version.
    pub fn version(&self) -> &semver::Version {
        &self.0
    }
}

impl FromStr for SemVer {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        match semver::Version::parse(text) {
            Ok(version) => Ok(SemVer(version)),
            Err(error) => {
                let invalid =
                    InvalidValue::new(format!("`{text}` is not a semantic version: {error}"));
                if let Some(rest) = text.strip_prefix(['v', 'V'])
                    && semver::Version::parse(rest).is_ok()
                {
                    return Err(invalid.with_hint(format!("write `{rest}`, without the `v`")));
                }
                let parts = text.split('.').count();
                if (1..3).contains(&parts) && text.split('.').all(|p| p.parse::<u64>().is_ok()) {
                    let padded = format!("{text}{}", ".0".repeat(3 - parts));
                    return Err(invalid.with_hint(format!("write all three parts: `{padded}`")));
                }
                Err(invalid.with_hint("write MAJOR.MINOR.PATCH, e.g. `0.1.0`"))
            }
        }
    }
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

string_value!(
    SemVer,
    "A semantic version, e.g. `0.1.0` or `1.0.0-rc.1`.",
    pattern = r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
);

/// A SHA-256 digest: 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(String);

impl Sha256Digest {
    /// The 64 hex digits.
    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

impl FromStr for Sha256Digest {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            if hex.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(InvalidValue::new(format!(
                    "`{text}`: the digest must be lower-case hex"
                ))
                .with_hint(format!("write `sha256:{}`", hex.to_ascii_lowercase())));
            }
            Ok(Sha256Digest(hex.to_owned()))
        } else {
            Err(InvalidValue::new(format!(
                "`{text}` is not a SHA-256 digest: expected `sha256:` and 64 hex digits (found {})",
                hex.len()
            )))
        }
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

string_value!(
    Sha256Digest,
    "A SHA-256 digest: `sha256:` and 64 lower-case hex digits.",
    pattern = "^sha256:[0-9a-f]{64}$"
);

/// Which build of a plugin a reference names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginVersion {
    /// A released version, resolved through the store's index to a digest.
    Exact(SemVer),
    /// A digest, naming the component bytes directly.
    Digest(Sha256Digest),
}

/// What a step `uses`: `namespace/name@version` or `namespace/name@sha256:<64 hex>`.
///
/// ```
/// use relo_manifest::{PluginRef, PluginVersion};
///
/// let by_version: PluginRef = "acme/deploy@0.1.0".parse().unwrap();
/// assert_eq!(by_version.name().as_str(), "acme/deploy");
/// assert!(matches!(by_version.version(), PluginVersion::Exact(v) if v.to_string() == "0.1.0"));
/// assert!("acme/deploy".parse::<PluginRef>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginRef {
    name: PluginName,
    version: PluginVersion,
}

impl PluginRef {
    /// The plugin's name.
    pub fn name(&self) -> &PluginName {
        &self.name
    }

    /// The version or digest.
    pub fn version(&self) -> &PluginVersion {
        &self.version
    }
}

impl FromStr for PluginRef {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let Some((name, version)) = text.split_once('@') else {
            return Err(InvalidValue::new(format!(
                "`{text}` names no version: expected `namespace/name@version` or `namespace/name@sha256:<digest>`"
            ))
            .with_hint(format!("pin a version, e.g. `{text}@0.1.0`")));
        };
        let name: PluginName = name.parse()?;
        let version = if version.starts_with("sha256:") {
            PluginVersion::Digest(version.parse()?)
        } else if version.starts_with(['^', '~', '=', '>', '<', '*']) {
            return Err(InvalidValue::new(format!(
                "`{text}`: a step names one exact version, not a range"
            ))
            .with_hint("write the exact version, e.g. `@0.1.0`, or a digest"));
        } else {
            PluginVersion::Exact(version.parse()?)
        };
        Ok(PluginRef { name, version })
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            PluginVersion::Exact(version) => write!(f, "{}@{version}", self.name),
            PluginVersion::Digest(digest) => write!(f, "{}@{digest}", self.name),
        }
    }
}

string_value!(
    PluginRef,
    "A plugin reference: `namespace/name@version` or `namespace/name@sha256:<64 hex digits>`.",
    pattern = "^[a-z0-9-]+/[a-z0-9-]+@([0-9]+\\.[0-9]+\\.[0-9]+([-+][0-9A-Za-z.+-]+)?|sha256:[0-9a-f]{64})$"
);

crate::decode::decode_from_str!(SemVer, PluginRef);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!("0.1.0".parse::<SemVer>().is_ok());
        assert!("1.0.0-rc.1+build".parse::<SemVer>().is_ok());
        assert_eq!(
            "v1.2.3".parse::<SemVer>().unwrap_err().hint(),
            Some("write `1.2.3`, without the `v`")
        );
        assert_eq!(
            "1.2".parse::<SemVer>().unwrap_err().hint(),
            Some("write all three parts: `1.2.0`")
        );
    }

    #[test]
    fn references() {
        let digest = format!("acme/deploy@sha256:{}", "ab".repeat(32));
        let by_digest: PluginRef = digest.parse().unwrap();
        assert!(matches!(by_digest.version(), PluginVersion::Digest(_)));
        assert_eq!(by_digest.to_string(), digest);
        assert!("acme/deploy@sha256:abc".parse::<PluginRef>().is_err());
        assert!(
            format!("acme/deploy@sha256:{}", "AB".repeat(32))
                .parse::<PluginRef>()
                .is_err()
        );
        assert!("acme/deploy@^1.0".parse::<PluginRef>().is_err());
        assert!("deploy@1.0.0".parse::<PluginRef>().is_err());
        assert!("acme/deploy@latest".parse::<PluginRef>().is_err());
    }
}
