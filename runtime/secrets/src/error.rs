//! The one error type of this crate. No variant ever holds a secret value.

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Nothing is stored at the path, or the field or version does not exist.
    #[error("no secret at {reference}: {reason}")]
    NotFound {
        /// `path#field[@version]`.
        reference: String,
        /// What is missing.
        reason: String,
    },
    /// The provider refused the read (HTTP 403 from Vault: the token's policy does not
    /// cover the path, or the token is expired or revoked).
    #[error("reading {reference} was denied by the provider")]
    Denied {
        /// `path#field[@version]`.
        reference: String,
    },
    /// The provider cannot be reached or answered something unusable.
    #[error("the secret provider is unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The step reads a logical name that `relo.toml` binds to no path.
    #[error("the secret `{name}` is not bound to a path in relo.toml ([secrets.bindings])")]
    Unbound {
        /// The logical name.
        name: String,
    },
    /// The provider's configuration or a file it reads is not usable.
    #[error("{0}")]
    Config(String),
    /// The Vault address is plain `http://` to a host that is not loopback: the token and
    /// every secret would cross the network in clear.
    #[error(
        "the Vault address `{address}` is plain http:// to a host that is not loopback: \
         use https:// (plain http:// is allowed for 127.0.0.0/8, ::1 and localhost only)"
    )]
    Insecure {
        /// The address as configured.
        address: String,
    },
}

impl SecretError {
    /// The stable machine code, e.g. `secret-not-found`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "secret-not-found",
            Self::Denied { .. } => "secret-denied",
            Self::Unavailable { .. } => "provider-unavailable",
            Self::Unbound { .. } => "secret-unbound",
            Self::Config(_) => "provider-config",
            Self::Insecure { .. } => "vault-insecure",
        }
    }
}
