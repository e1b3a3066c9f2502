//! Signing with keys the operator holds. Key material never enters the sandbox.
//!
//! ```
//! use relo_sdk::{StepError, signer};
//!
//! # fn example(artifact_sha256: &str) -> Result<String, StepError> {
//! let signature = signer::sign_digest("release", artifact_sha256)?;
//! # Ok(signature)
//! # }
//! ```

use std::fmt;

use crate::__private::bindings::relo::plugin::signer as wit;
use crate::StepError;

/// Signs a SHA-256 digest (64 lowercase hex characters) with the key the operator bound
/// to the logical name `key`, and returns the signature in cosign's format (base64 of an
/// ASN.1 DER ECDSA P-256 signature over the digest, prehashed, so it verifies against the
/// artifact itself).
///
/// # Errors
///
/// [`SignerError::NotGranted`] if the grant does not allow `key`, and
/// [`SignerError::Unavailable`] if the key's backend cannot sign now.
pub fn sign_digest(key: &str, sha256_hex: &str) -> Result<String, SignerError> {
    Ok(wit::sign_digest(key, sha256_hex)?)
}

/// Why a signature could not be made. The text comes from the host and says why.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SignerError {
    /// The grant does not allow this key name.
    NotGranted(String),
    /// The key is allowed, but its backend could not sign now.
    Unavailable(String),
}

impl SignerError {
    /// A stable machine code: `not-granted` or `unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotGranted(_) => "not-granted",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// The host's message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::NotGranted(message) | Self::Unavailable(message) => message,
        }
    }
}

impl fmt::Display for SignerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotGranted(message) => write!(f, "signing key not granted: {message}"),
            Self::Unavailable(message) => write!(f, "signer unavailable: {message}"),
        }
    }
}

impl std::error::Error for SignerError {}

impl From<wit::Error> for SignerError {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::NotGranted(message) => Self::NotGranted(message),
            wit::Error::Unavailable(message) => Self::Unavailable(message),
        }
    }
}

impl From<SignerError> for StepError {
    fn from(error: SignerError) -> Self {
        match error {
            SignerError::NotGranted(_) => Self::Denied(error.to_string()),
            SignerError::Unavailable(_) => Self::Failed(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_granted_becomes_denied() {
        let error = StepError::from(SignerError::NotGranted("release".to_owned()));
        assert_eq!(error, StepError::denied("signing key not granted: release"));
        assert_eq!(
            SignerError::Unavailable(String::new()).kind(),
            "unavailable"
        );
    }
}
