//! The relo home: `relo.toml`, the store it names, and the evidence key files.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use relo_manifest::{KeyRef, OperatorConfig, parse_operator};
use relo_store::Store;
use relo_trust::{KeyFileSigner, PublicKey};

/// The config file in the home.
pub const CONFIG_FILE: &str = "relo.toml";

/// The evidence key when `relo.toml` has no `[evidence] signer`.
pub const DEFAULT_EVIDENCE_KEY: &str = "keys/evidence.key";

/// A relo home and its parsed config (none when `relo.toml` does not exist).
#[derive(Debug)]
pub struct Home {
    /// The folder.
    pub path: PathBuf,
    /// `relo.toml`, if present.
    pub config: Option<OperatorConfig>,
}

impl Home {
    /// Reads the home's `relo.toml` if there is one; an invalid one is an error.
    pub fn load(path: &Path) -> anyhow::Result<Home> {
        let file = path.join(CONFIG_FILE);
        let config = match std::fs::read(&file) {
            Ok(bytes) => {
                let name = file.display().to_string();
                let config = parse_operator(&name, &bytes).map_err(|diagnostics| {
                    anyhow::anyhow!(
                        "{name} is invalid ({} problems; run `relo validate {name}`):\n{}",
                        diagnostics.len(),
                        diagnostics.render()
                    )
                })?;
                Some(config)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", file.display())),
        };
        Ok(Home {
            path: path.to_owned(),
            config,
        })
    }

    /// Opens the store: `RELO_DATABASE_URL`, else `[store] url`, else `sqlite://relo.db`
    /// in the home.
    pub async fn store(&self) -> anyhow::Result<Store> {
        let configured = self
            .config
            .as_ref()
            .and_then(|c| c.store.as_ref())
            .map(|s| s.url.as_str());
        Store::open(&self.path, configured)
            .await
            .context("cannot open the store")
    }

    /// The evidence private key file: `[evidence] signer` relative to the home, or
    /// `keys/evidence.key`.
    pub fn evidence_key_path(&self) -> anyhow::Result<PathBuf> {
        match self.config.as_ref().and_then(|c| c.evidence.as_ref()) {
            None => Ok(self.path.join(DEFAULT_EVIDENCE_KEY)),
            Some(evidence) => match &evidence.signer {
                KeyRef::File(file) => Ok(self.path.join(file)),
                KeyRef::VaultTransit(name) => bail!(
                    "[evidence] signer is vault-transit:{name}; this relo signs evidence only \
                     with a key file"
                ),
            },
        }
    }

    /// The public key file beside the evidence key: `STEM.pub` for `STEM.key`, else the
    /// key path with `.pub` appended.
    pub fn evidence_public_path(&self) -> anyhow::Result<PathBuf> {
        Ok(public_path(&self.evidence_key_path()?))
    }

    /// Loads the evidence signer (an Ed25519 PKCS#8 PEM file, not readable by others).
    pub fn evidence_signer(&self) -> anyhow::Result<KeyFileSigner> {
        let path = self.evidence_key_path()?;
        if !path.exists() {
            bail!(
                "there is no evidence key at {}: make one with `relo key generate --type \
                 ed25519 --out {}`",
                path.display(),
                public_path(&path).with_extension("").display()
            );
        }
        let signer = KeyFileSigner::load(&path)
            .with_context(|| format!("cannot load the evidence key {}", path.display()))?;
        use relo_trust::Signer as _;
        if signer.algorithm() != relo_trust::KeyAlgorithm::Ed25519 {
            bail!(
                "the evidence key {} is {}; checkpoints are signed with Ed25519 keys (`relo key generate --type ed25519`)",
                path.display(),
                signer.algorithm()
            );
        }
        Ok(signer)
    }

    /// The evidence public key: from the `.pub` file beside the key if there is one
    /// (an auditor needs no private key), else from the private key.
    pub fn evidence_public_key(&self) -> anyhow::Result<PublicKey> {
        let public = self.evidence_public_path()?;
        if public.exists() {
            return PublicKey::from_pem_file(&public).with_context(|| {
                format!("cannot read the evidence public key {}", public.display())
            });
        }
        use relo_trust::Signer as _;
        Ok(self.evidence_signer()?.public_key().clone())
    }

    /// The folder of retired evidence public keys and their index.
    pub fn retired_dir(&self) -> anyhow::Result<PathBuf> {
        let key = self.evidence_key_path()?;
        let dir = key.parent().unwrap_or(&self.path);
        Ok(dir.join("evidence-retired"))
    }
}

/// `STEM.pub` for `STEM.key`; `PATH.pub` otherwise.
pub fn public_path(key: &Path) -> PathBuf {
    if key.extension().is_some_and(|e| e == "key") {
        key.with_extension("pub")
    } else {
        let mut name = key.as_os_str().to_owned();
        name.push(".pub");
        PathBuf::from(name)
    }
}

/// Whether `file` would be inside `home` (both resolved as far as they exist).
pub fn is_inside(file: &Path, home: &Path) -> bool {
    let resolve = |path: &Path| -> PathBuf {
        let absolute = if path.is_absolute() {
            path.to_owned()
        } else {
            std::env::current_dir().map_or_else(|_| path.to_owned(), |cwd| cwd.join(path))
        };
        // Canonicalise the longest existing ancestor, then re-append the rest.
        let mut existing = absolute.as_path();
        let mut rest = Vec::new();
        loop {
            if let Ok(canonical) = existing.canonicalize() {
                let mut out = canonical;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return out;
            }
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    existing = parent;
                }
                _ => return absolute,
            }
        }
    };
    resolve(file).starts_with(resolve(home))
}
