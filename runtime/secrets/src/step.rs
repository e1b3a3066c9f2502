//! One step's view of its secrets: the provider it reads through and its bindings.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{SecretError, SecretPath, SecretProvider, SecretValue};

/// The secrets one step may read: a provider (for Vault, one holding the step's own
/// scoped token) and the bindings of the step's logical names to paths.
#[derive(Debug, Clone)]
pub struct StepSecrets {
    provider: Arc<dyn SecretProvider>,
    bindings: BTreeMap<String, SecretPath>,
}

impl StepSecrets {
    /// Reads through `provider`, with `bindings` from logical names to paths.
    pub fn new(provider: Arc<dyn SecretProvider>, bindings: BTreeMap<String, SecretPath>) -> Self {
        Self { provider, bindings }
    }

    /// The path the logical name `name` is bound to.
    pub fn path(&self, name: &str) -> Option<&SecretPath> {
        self.bindings.get(name)
    }

    /// The provider's kind (`vault`, `file`).
    pub fn provider_kind(&self) -> &'static str {
        self.provider.kind()
    }

    /// Reads the secret bound to `name`, through the provider, now.
    pub async fn read(&self, name: &str) -> Result<SecretValue, SecretError> {
        let path = self
            .bindings
            .get(name)
            .ok_or_else(|| SecretError::Unbound {
                name: name.to_owned(),
            })?;
        self.provider.read(path).await
    }
}
