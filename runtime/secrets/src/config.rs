//! How relo logs in to Vault, from `relo.toml`'s `[secrets]`.

use std::path::Path;

use relo_manifest::{SecretsConfig, VaultAuth as AuthConfig};
use zeroize::Zeroizing;

use crate::{SecretError, VaultAuth};

/// The environment variable whose token overrides `[secrets] auth`.
pub const VAULT_TOKEN_ENV: &str = "RELO_VAULT_TOKEN";

/// The Vault address and login of `[secrets]` (provider `vault`): `RELO_VAULT_TOKEN` if
/// set, else the token file or the AppRole id files, read relative to `home`.
pub fn vault_login(
    secrets: &SecretsConfig,
    home: &Path,
) -> Result<(String, VaultAuth), SecretError> {
    let read = |file: &str| -> Result<Zeroizing<String>, SecretError> {
        let path = home.join(file);
        std::fs::read_to_string(&path)
            .map(|text| Zeroizing::new(text.trim().to_owned()))
            .map_err(|e| SecretError::Config(format!("cannot read {}: {e}", path.display())))
    };
    let address = secrets
        .address
        .as_ref()
        .ok_or_else(|| {
            SecretError::Config("[secrets] provider = \"vault\" needs `address`".into())
        })?
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let auth = match (std::env::var(VAULT_TOKEN_ENV), &secrets.auth) {
        (Ok(token), _) if !token.is_empty() => VaultAuth::Token(Zeroizing::new(token)),
        (_, Some(AuthConfig::TokenFile(file))) => VaultAuth::Token(read(file)?),
        (_, Some(AuthConfig::AppRole(role))) => VaultAuth::AppRole {
            role_id: read(&role.role_id_file)?.to_string(),
            secret_id: read(&role.secret_id_file)?,
            mount: "approle".to_owned(),
        },
        (_, None) => {
            return Err(SecretError::Config(format!(
                "[secrets] provider = \"vault\" needs `auth` (a token file or AppRole), or {VAULT_TOKEN_ENV}"
            )));
        }
    };
    Ok((address, auth))
}

impl Clone for VaultAuth {
    fn clone(&self) -> Self {
        match self {
            Self::Token(token) => Self::Token(token.clone()),
            Self::AppRole {
                role_id,
                secret_id,
                mount,
            } => Self::AppRole {
                role_id: role_id.clone(),
                secret_id: secret_id.clone(),
                mount: mount.clone(),
            },
        }
    }
}
