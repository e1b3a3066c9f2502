//! Where secret values come from, and how one step reads the secrets it was granted.
//!
//! A [`SecretProvider`] reads a field of a secret at a path ([`SecretPath`],
//! `kv/data/app#field@version` as bound in `relo.toml`), returning a [`SecretValue`]
//! that zeroes its memory on drop and carries its version. Providers: Vault/OpenBao KV v2
//! (token or AppRole login, a scoped child token per step) and a [`FileProvider`] for
//! local development. [`StepSecrets`] is what the sandbox holds for one step: the
//! provider it reads through and the step's bindings from logical names to paths.
//!
//! Values never leave this crate except through [`SecretValue::expose`]; they are not
//! `Debug`, not `Display` and not serialisable.

mod config;
mod error;
mod file;
mod step;
mod transit;
mod value;
mod vault;

pub use config::{VAULT_TOKEN_ENV, vault_login};
pub use error::SecretError;
pub use file::FileProvider;
pub use relo_manifest::SecretPath;
pub use step::StepSecrets;
pub use transit::TransitSigner;
pub use value::SecretValue;
pub use vault::{
    ScopedToken, ScopedTokenInfo, VAULT_TIMEOUT, VaultAuth, VaultHealth, VaultProvider,
};

/// A source of secret values.
#[async_trait::async_trait]
pub trait SecretProvider: Send + Sync + std::fmt::Debug {
    /// Reads the field `path.field()` of the secret at `path.path()`, at the pinned
    /// version if there is one, else the current one.
    async fn read(&self, path: &SecretPath) -> Result<SecretValue, SecretError>;

    /// The provider's kind as evidence names it: `vault` or `file`.
    fn kind(&self) -> &'static str;
}
