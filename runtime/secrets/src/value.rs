//! A secret value: zeroed on drop, never printed.

use zeroize::Zeroizing;

/// The value of one secret field and its version. Its memory is zeroed on drop; it has
/// no `Debug`, `Display` or `Serialize`, so it cannot end up in a log line by accident.
pub struct SecretValue {
    value: Zeroizing<String>,
    version: Option<u64>,
}

impl SecretValue {
    /// A value read at `version` (`None` when the provider has no versions).
    pub fn new(value: impl Into<String>, version: Option<u64>) -> Self {
        Self {
            value: Zeroizing::new(value.into()),
            version,
        }
    }

    /// The value itself. Every caller is a place a secret leaves relo's hands: keep them few.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The provider's version of the secret, if it keeps versions.
    pub fn version(&self) -> Option<u64> {
        self.version
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &"[REDACTED]")
            .field("version", &self.version)
            .finish()
    }
}
