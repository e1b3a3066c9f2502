//! The relo home: `relo.toml`, the store it names, and the evidence key files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use relo_evidence::{Witness, default_witness_path};
use relo_manifest::{
    Diagnostics, KeyRef, OperatorConfig, SecretsProvider, WitnessRef, parse_operator,
};
use relo_secrets::{TransitSigner, vault_login};
use relo_store::Store;
use relo_trust::{KeyAlgorithm, KeyFileSigner, PublicKey, Signer};

/// The config file in the home.
pub const CONFIG_FILE: &str = "relo.toml";

/// The evidence key when `relo.toml` has no `[evidence] signer`.
pub const DEFAULT_EVIDENCE_KEY: &str = "keys/evidence.key";

/// Where the evidence key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceKey {
    /// A private key file.
    File(PathBuf),
    /// A Vault Transit key of this name.
    VaultTransit(String),
}

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

    /// The store, sealing each evidence batch it appends with `signer` (the evidence
    /// key) and trusting the seals of every evidence key of the ring (the active one and
    /// the retired ones). Every command that appends evidence or cuts a checkpoint uses
    /// it: once a log has seals, an entry appended without one stops the next sealed
    /// append as tampering.
    pub async fn sealed_store(&self, signer: Arc<dyn Signer>) -> anyhow::Result<Store> {
        self.seal(self.store().await?, signer).await
    }

    /// The store for a command that appends evidence (an approval, a plugin added or
    /// blocked): sealed with the evidence key ([`Home::sealed_store`]).
    ///
    /// A home whose evidence key file does not exist (made by hand, without `relo
    /// init`) gets the store unsealed; `relo evidence verify` then reports the entries
    /// no seal or checkpoint covers.
    pub async fn evidence_store(&self) -> anyhow::Result<Store> {
        if let EvidenceKey::File(path) = self.evidence_key()
            && !path.exists()
        {
            return self.store().await;
        }
        let signer: Arc<dyn Signer> = self.evidence_signer()?.into();
        self.sealed_store(signer).await
    }

    /// `store`, sealing with `signer` ([`Home::sealed_store`]).
    pub async fn seal(&self, store: Store, signer: Arc<dyn Signer>) -> anyhow::Result<Store> {
        let origin = store.evidence_origin().await?;
        let keys = crate::evidence::key_ring(self, &origin)?;
        Ok(store.sealed(relo_store::EvidenceSeal {
            signer,
            origin,
            keys,
        }))
    }

    /// Where the evidence key is: `[evidence] signer`, default `keys/evidence.key`.
    pub fn evidence_key(&self) -> EvidenceKey {
        match self.config.as_ref().and_then(|c| c.evidence.as_ref()) {
            None => EvidenceKey::File(self.path.join(DEFAULT_EVIDENCE_KEY)),
            Some(evidence) => match &evidence.signer {
                KeyRef::File(file) => EvidenceKey::File(self.path.join(file)),
                KeyRef::VaultTransit(name) => EvidenceKey::VaultTransit(name.clone()),
            },
        }
    }

    /// The evidence private key file; an error for a Vault Transit key, which has none.
    pub fn evidence_key_path(&self) -> anyhow::Result<PathBuf> {
        match self.evidence_key() {
            EvidenceKey::File(path) => Ok(path),
            EvidenceKey::VaultTransit(name) => bail!(
                "[evidence] signer is vault-transit:{name}: the key lives in Vault; rotate it \
                 there (`transit/keys/{name}/rotate`) and point [evidence] signer at the new key"
            ),
        }
    }

    /// The evidence public key file: `STEM.pub` beside a key file, or
    /// `keys/vault-transit-NAME.pub` for a Transit key (written the first time relo signs
    /// with it, so auditors verify without access to Vault).
    pub fn evidence_public_path(&self) -> anyhow::Result<PathBuf> {
        Ok(match self.evidence_key() {
            EvidenceKey::File(path) => public_path(&path),
            EvidenceKey::VaultTransit(name) => self
                .path
                .join("keys")
                .join(format!("vault-transit-{name}.pub")),
        })
    }

    /// Loads the evidence signer: an Ed25519 key file (not readable by others, maybe
    /// passphrase-encrypted), or an Ed25519 Vault Transit key reached with `[secrets]`'s
    /// Vault login, whose public key is then exported beside the keys.
    pub fn evidence_signer(&self) -> anyhow::Result<Box<dyn Signer>> {
        let signer: Box<dyn Signer> = match self.evidence_key() {
            EvidenceKey::File(path) => {
                if !path.exists() {
                    bail!(
                        "there is no evidence key at {}: make one with `relo key generate --type \
                         ed25519 --out {}`",
                        path.display(),
                        public_path(&path).with_extension("").display()
                    );
                }
                Box::new(
                    KeyFileSigner::load(&path).with_context(|| {
                        format!("cannot load the evidence key {}", path.display())
                    })?,
                )
            }
            EvidenceKey::VaultTransit(name) => {
                let secrets = self
                    .config
                    .as_ref()
                    .and_then(|c| c.secrets.as_ref())
                    .filter(|s| s.provider == SecretsProvider::Vault)
                    .with_context(|| {
                        format!(
                            "[evidence] signer = \"vault-transit:{name}\" needs [secrets] provider = \"vault\""
                        )
                    })?;
                let (address, auth) = vault_login(secrets, &self.path)?;
                let signer = TransitSigner::connect(&address, auth, "transit", &name)
                    .with_context(|| {
                        format!("cannot use the Vault Transit key {name} at {address}")
                    })?;
                Box::new(signer)
            }
        };
        if signer.algorithm() != KeyAlgorithm::Ed25519 {
            bail!(
                "the evidence key is {}; checkpoints are signed with Ed25519 keys (`relo key generate --type ed25519`, or a Transit key of type ed25519)",
                signer.algorithm()
            );
        }
        if matches!(self.evidence_key(), EvidenceKey::VaultTransit(_)) {
            self.export_public_key(signer.as_ref())?;
        }
        Ok(signer)
    }

    /// Writes a Transit key's public half to [`Home::evidence_public_path`] if it is not
    /// there; refuses if a different key is there (the Transit key was rotated: retire
    /// the old public key first).
    fn export_public_key(&self, signer: &dyn Signer) -> anyhow::Result<()> {
        let path = self.evidence_public_path()?;
        if path.exists() {
            let existing = PublicKey::from_pem_file(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if existing.key_id() != signer.key_id() {
                bail!(
                    "{} holds key {}, but Vault's key is {} now: move the old file into \
                     keys/evidence-retired/ (it still verifies old checkpoints) and run again",
                    path.display(),
                    existing.key_id(),
                    signer.key_id()
                );
            }
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, signer.public_key().to_pem())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The evidence public key: from its `.pub` file if there is one (an auditor needs
    /// neither the private key nor Vault), else from the signer.
    pub fn evidence_public_key(&self) -> anyhow::Result<PublicKey> {
        let public = self.evidence_public_path()?;
        if public.exists() {
            return PublicKey::from_pem_file(&public).with_context(|| {
                format!("cannot read the evidence public key {}", public.display())
            });
        }
        Ok(self.evidence_signer()?.public_key().clone())
    }

    /// The evidence witness of the log `origin`: `[evidence] witness`, else
    /// `$XDG_STATE_HOME/relo/witnesses/<origin>` ([`default_witness_path`]). A witness
    /// inside the home is refused: whoever can change the home could rewrite it too.
    pub fn witness(&self, origin: &str) -> anyhow::Result<Witness> {
        let configured = self
            .config
            .as_ref()
            .and_then(|c| c.evidence.as_ref())
            .and_then(|e| e.witness.as_ref());
        let path = match configured {
            Some(WitnessRef::File(path)) => PathBuf::from(path),
            None => default_witness_path(origin)?,
        };
        if is_inside(&path, &self.path) {
            bail!(
                "the evidence witness {} is inside the relo home {}: keep it where whoever can \
                 change the home cannot ([evidence] witness = \"file:PATH\")",
                path.display(),
                self.path.display()
            );
        }
        Ok(Witness::new(path))
    }

    /// The folder of retired evidence public keys and their index.
    pub fn retired_dir(&self) -> anyhow::Result<PathBuf> {
        let public = self.evidence_public_path()?;
        let dir = public.parent().unwrap_or(&self.path);
        Ok(dir.join("evidence-retired"))
    }
}

/// Reads `path` and parses it with `parse` (a relo-manifest parser), every problem of
/// the file rendered in the error. Returns the parsed value and the bytes read.
pub fn read_parsed<T>(
    path: &Path,
    parse: fn(&str, &[u8]) -> Result<T, Diagnostics>,
) -> anyhow::Result<(T, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    let parsed = parse(&name, &bytes).map_err(|diagnostics| {
        anyhow::anyhow!(
            "{name} is invalid ({} problems):\n{}",
            diagnostics.len(),
            diagnostics.render()
        )
    })?;
    Ok((parsed, bytes))
}

/// Appends a checkpoint just cut (its signed note) to `witness`.
pub fn append_to_witness(witness: &Witness, note: &str) -> anyhow::Result<()> {
    witness.append(note).context(
        "the checkpoint is stored, but the witness was not written; the next checkpoint \
         (`relo evidence checkpoint`) is witnessed again",
    )
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
