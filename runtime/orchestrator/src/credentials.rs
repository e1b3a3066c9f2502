//! Per-step credentials: the secrets a step was granted, read through a Vault token made
//! for that step alone, and the signing keys it may use.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use relo_manifest::{KeyRef, OperatorConfig, SecretsProvider};
use relo_policy::Grant;
use relo_sandbox::StepCredentials;
use relo_secrets::{
    FileProvider, ScopedToken, SecretError, SecretPath, StepSecrets, TransitSigner, VaultAuth,
    VaultProvider, vault_login,
};
use relo_trust::{KeyFileSigner, Signer};

/// The file the `file` secrets provider reads, in the relo home.
pub const SECRETS_FILE: &str = "secrets.json";

/// Where a process's secrets come from.
#[derive(Debug, Clone)]
pub enum SecretBackend {
    /// Vault or OpenBao: each step reads with a child token scoped to its own secrets.
    Vault(Arc<VaultProvider>),
    /// A local file, for development: every step reads it directly.
    File(Arc<FileProvider>),
}

/// Why credentials could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The secret provider refused or failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A signing key could not be loaded.
    #[error("signing key `{name}`: {source}")]
    SigningKey {
        /// The logical key name.
        name: String,
        /// Why.
        source: relo_trust::TrustError,
    },
    /// `relo.toml` is missing something the configured provider needs.
    #[error("relo.toml: {0}")]
    Config(String),
    /// A `[signing.keys]` key is also a person's or a trusted plugin signer's key, which
    /// would let any plugin granted it forge that identity's approvals or attestations.
    #[error(
        "signing-key-reuse: [signing.keys] {name} (key {key_id}) is also the key of {owner}; \
         give steps a key of their own"
    )]
    SigningKeyReuse {
        /// The logical key name.
        name: String,
        /// The key's id.
        key_id: String,
        /// Whose key it also is: `person NAME` or `[[trust.signers]] PATH`.
        owner: String,
    },
}

impl CredentialError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            CredentialError::Secret(error) => error.code(),
            CredentialError::SigningKey { .. } => "signing-key",
            CredentialError::Config(_) => "config",
            CredentialError::SigningKeyReuse { .. } => "signing-key-reuse",
        }
    }
}

/// Credentials issued to one step. [`IssuedCredentials::finish`] revokes the step's
/// Vault token when the step ends; a token not revoked still dies after its TTL (the
/// step's timeout).
pub struct IssuedCredentials {
    /// What the sandbox gets.
    pub credentials: StepCredentials,
    scoped: Option<Arc<ScopedToken>>,
}

impl std::fmt::Debug for IssuedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredentials")
            .field("credentials", &self.credentials)
            .field("scoped", &self.scoped.is_some())
            .finish()
    }
}

impl IssuedCredentials {
    /// The step's own Vault token, if it has one.
    pub fn scoped_token(&self) -> Option<&Arc<ScopedToken>> {
        self.scoped.as_ref()
    }

    /// Revokes the step's Vault token (and its policy). Call it when the step ends.
    pub async fn finish(self) {
        if let Some(token) = self.scoped {
            token.revoke().await;
        }
    }
}

/// Whose identity key `key_id` is, if any: a person's in `[[people]]` or a trusted plugin
/// signer's in `[[trust.signers]]` (key files relative to `home`; a file that does not
/// load is left to the trust policy, which refuses it).
fn identity_key_owner(config: &OperatorConfig, home: &Path, key_id: &str) -> Option<String> {
    let is_it = |path: &str| {
        relo_trust::PublicKey::from_pem_file(home.join(path))
            .is_ok_and(|key| key.key_id() == key_id)
    };
    let person = config.people.iter().find_map(|person| {
        person
            .keys
            .iter()
            .any(|path| is_it(path))
            .then(|| format!("person {}", person.name.as_str()))
    });
    person.or_else(|| {
        config
            .trust
            .signers
            .iter()
            .find(|signer| is_it(&signer.key))
            .map(|signer| format!("[[trust.signers]] {}", signer.key))
    })
}

/// Everything steps' credentials are made from: the secret backend, the bindings of
/// each plugin's logical names to paths, and the signing keys of `[signing.keys]`.
#[derive(Clone, Default)]
pub struct CredentialSource {
    backend: Option<SecretBackend>,
    bindings: BTreeMap<String, BTreeMap<String, SecretPath>>,
    signers: BTreeMap<String, Arc<dyn Signer>>,
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSource")
            .field("backend", &self.backend)
            .field("signers", &self.signers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl CredentialSource {
    /// A source with this backend, the bindings of `config` and these signers.
    pub fn new(
        backend: Option<SecretBackend>,
        config: &OperatorConfig,
        signers: BTreeMap<String, Arc<dyn Signer>>,
    ) -> Self {
        let bindings = config
            .secrets
            .as_ref()
            .map(|secrets| {
                secrets
                    .bindings
                    .iter()
                    .map(|(plugin, names)| {
                        let names = names
                            .iter()
                            .map(|(name, path)| (name.as_str().to_owned(), path.clone()))
                            .collect();
                        (plugin.as_str().to_owned(), names)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            backend,
            bindings,
            signers,
        }
    }

    /// Builds the source `relo.toml` describes: logs in to Vault (a token file or
    /// AppRole files, relative to `home`; `RELO_VAULT_TOKEN` overrides a token file) or
    /// opens `home/secrets.json`, and loads every signing key (key files, or Transit keys
    /// in the same Vault).
    pub async fn from_config(
        config: &OperatorConfig,
        home: &Path,
    ) -> Result<Self, CredentialError> {
        let mut vault: Option<(String, VaultAuth)> = None;
        let backend = match &config.secrets {
            None => None,
            Some(secrets) => match secrets.provider {
                SecretsProvider::File => Some(SecretBackend::File(Arc::new(FileProvider::open(
                    &home.join(SECRETS_FILE),
                )?))),
                SecretsProvider::Vault => {
                    let (address, auth) = vault_login(secrets, home)?;
                    let provider = VaultProvider::connect(&address, auth.clone()).await?;
                    vault = Some((address, auth));
                    Some(SecretBackend::Vault(Arc::new(provider)))
                }
            },
        };
        let mut signers: BTreeMap<String, Arc<dyn Signer>> = BTreeMap::new();
        for (name, key) in &config.signing.keys {
            let name = name.as_str().to_owned();
            let signer: Arc<dyn Signer> = match key {
                KeyRef::File(file) => {
                    Arc::new(KeyFileSigner::load(home.join(file)).map_err(|source| {
                        CredentialError::SigningKey {
                            name: name.clone(),
                            source,
                        }
                    })?)
                }
                KeyRef::VaultTransit(transit) => {
                    let Some((address, auth)) = &vault else {
                        return Err(CredentialError::Config(format!(
                            "[signing.keys] {name} = \"vault-transit:{transit}\" needs \
                             [secrets] provider = \"vault\""
                        )));
                    };
                    let (address, auth, transit) = (address.clone(), auth.clone(), transit.clone());
                    // Connecting blocks until Vault answers: off the async threads.
                    let signer = tokio::task::spawn_blocking(move || {
                        TransitSigner::connect(&address, auth, "transit", &transit)
                    })
                    .await
                    .map_err(|e| CredentialError::Config(format!("signing key `{name}`: {e}")))??;
                    Arc::new(signer)
                }
            };
            if let Some(owner) = identity_key_owner(config, home, signer.key_id()) {
                return Err(CredentialError::SigningKeyReuse {
                    key_id: signer.key_id().to_owned(),
                    name,
                    owner,
                });
            }
            signers.insert(name, signer);
        }
        Ok(Self::new(backend, config, signers))
    }

    /// Issues the credentials of one step of `plugin` with `grant`: the bindings of the
    /// secrets the grant allows (with Vault, behind a new token that may read exactly
    /// those paths and lives `timeout`, labelled `label`), and the signers of the key
    /// names the grant allows.
    pub async fn issue(
        &self,
        plugin: &str,
        grant: &Grant,
        timeout: Duration,
        label: &str,
    ) -> Result<IssuedCredentials, CredentialError> {
        let bindings: BTreeMap<String, SecretPath> = self
            .bindings
            .get(plugin)
            .map(|names| {
                names
                    .iter()
                    .filter(|(name, _)| grant.secrets.contains_key(name.as_str()))
                    .map(|(name, path)| (name.clone(), path.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let signers = self
            .signers
            .iter()
            .filter(|(name, _)| grant.signer_keys.contains(name.as_str()))
            .map(|(name, signer)| (name.clone(), Arc::clone(signer)))
            .collect();
        let (secrets, scoped) = match (&self.backend, bindings.is_empty()) {
            (None, _) | (_, true) => (None, None),
            (Some(SecretBackend::File(file)), false) => {
                let provider: Arc<dyn relo_secrets::SecretProvider> = file.clone();
                (Some(StepSecrets::new(provider, bindings)), None)
            }
            (Some(SecretBackend::Vault(vault)), false) => {
                let paths: Vec<SecretPath> = bindings.values().cloned().collect();
                let token = Arc::new(vault.scoped(&paths, timeout, label).await?);
                let provider: Arc<dyn relo_secrets::SecretProvider> = token.clone();
                (Some(StepSecrets::new(provider, bindings)), Some(token))
            }
        };
        Ok(IssuedCredentials {
            credentials: StepCredentials { secrets, signers },
            scoped,
        })
    }
}
