//! The `Signer` trait, the key-file signer, and key-pair generation for `relo key generate`.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::{KeyAlgorithm, Passphrase, PrivateKey, PublicKey, TrustError};

/// Something that signs with one key: a private key file today, a Vault Transit key
/// later (relo-secrets implements it there, so the key never leaves Vault).
///
/// The trait is synchronous on purpose. Signing happens a few times per run (a
/// checkpoint, an attestation, an approval), never per host call, and a key-file
/// signature takes microseconds. A remote signer such as Vault Transit makes a blocking
/// HTTP call inside `sign`; async callers run it with `tokio::task::spawn_blocking`
/// (hold the signer in an `Arc<dyn Signer>`). Keeping it synchronous keeps this crate
/// free of an async runtime and lets `&[&dyn Signer]` be passed straight to
/// [`Envelope::sign`](crate::Envelope::sign).
///
/// Signatures have the formats of [`PublicKey::verify`]: raw Ed25519, or ASN.1 DER ECDSA
/// P-256 over SHA-256.
pub trait Signer: Send + Sync {
    /// The public key that verifies this signer's signatures.
    fn public_key(&self) -> &PublicKey;

    /// The key id of [`Signer::public_key`], written into every DSSE signature's `keyid`.
    fn key_id(&self) -> &str {
        self.public_key().key_id()
    }

    /// The algorithm of [`Signer::public_key`].
    fn algorithm(&self) -> KeyAlgorithm {
        self.public_key().algorithm()
    }

    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TrustError>;

    /// Signs a SHA-256 digest of a message computed elsewhere (for large artifacts, or a
    /// signer that only receives digests). For P-256 the result verifies against the
    /// original message with standard tools. Ed25519 hashes the message itself as part of
    /// signing, so Ed25519 signers return [`TrustError::PrehashUnsupported`].
    fn sign_prehashed_sha256(&self, digest: &[u8; 32]) -> Result<Vec<u8>, TrustError>;
}

impl Signer for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        PrivateKey::public_key(self)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TrustError> {
        Ok(PrivateKey::sign(self, message))
    }

    fn sign_prehashed_sha256(&self, digest: &[u8; 32]) -> Result<Vec<u8>, TrustError> {
        PrivateKey::sign_prehashed_sha256(self, digest)
    }
}

/// A [`Signer`] whose key was loaded from a PKCS#8 (or SEC1) private key PEM file, or
/// from one encrypted with a passphrase in cosign's format
/// (`ENCRYPTED SIGSTORE PRIVATE KEY`, see [`PrivateKey::from_encrypted_pem`]).
///
/// On unix, [`KeyFileSigner::load`] refuses a file that grants any permission to its
/// group or to others (like ssh does), naming the path and the mode.
pub struct KeyFileSigner {
    path: PathBuf,
    key: PrivateKey,
}

impl KeyFileSigner {
    /// Loads the private key at `path`.
    ///
    /// An encrypted key is decrypted with the passphrase of [`Passphrase::for_key`]:
    /// `RELO_KEY_PASSWORD`, else asked on the terminal, else
    /// [`TrustError::PassphraseRequired`]. A wrong one is [`TrustError::WrongPassphrase`]
    /// naming the file. The permission check is made on the opened file, so the file
    /// checked is the file read.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TrustError> {
        let path = path.as_ref();
        Self::load_with_passphrase(path, || Passphrase::for_key(path))
    }

    /// Loads the private key at `path` like [`KeyFileSigner::load`], taking the passphrase
    /// of an encrypted key from `passphrase`, which is called only if the key is
    /// encrypted.
    pub fn load_with_passphrase(
        path: impl AsRef<Path>,
        passphrase: impl FnOnce() -> Result<Passphrase, TrustError>,
    ) -> Result<Self, TrustError> {
        let path = path.as_ref();
        let read_error = |source| TrustError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(read_error)?;
        check_private_permissions(path, &file)?;
        let mut pem = Zeroizing::new(String::new());
        file.read_to_string(&mut pem).map_err(read_error)?;
        let key = if PrivateKey::is_encrypted_pem(&pem) {
            PrivateKey::from_encrypted_pem(&pem, passphrase()?.as_bytes())
        } else {
            PrivateKey::from_pem(&pem)
        };
        let key = key.map_err(|e| match e {
            TrustError::InvalidKey { what, reason } => TrustError::InvalidKey {
                what,
                reason: format!("{}: {reason}", path.display()),
            },
            TrustError::MalformedEncryptedKey { reason } => TrustError::MalformedEncryptedKey {
                reason: format!("{}: {reason}", path.display()),
            },
            TrustError::WrongPassphrase { path: None } => TrustError::WrongPassphrase {
                path: Some(path.to_owned()),
            },
            other => other,
        })?;
        Ok(Self {
            path: path.to_owned(),
            key,
        })
    }

    /// The file the key was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Signer for KeyFileSigner {
    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TrustError> {
        Ok(self.key.sign(message))
    }

    fn sign_prehashed_sha256(&self, digest: &[u8; 32]) -> Result<Vec<u8>, TrustError> {
        self.key.sign_prehashed_sha256(digest)
    }
}

impl fmt::Debug for KeyFileSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFileSigner")
            .field("path", &self.path)
            .field("algorithm", &self.key.algorithm())
            .field("key_id", &self.key.key_id())
            .finish_non_exhaustive()
    }
}

#[cfg(unix)]
fn check_private_permissions(path: &Path, file: &File) -> Result<(), TrustError> {
    use std::os::unix::fs::PermissionsExt as _;

    let metadata = file.metadata().map_err(|source| TrustError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TrustError::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_permissions(_path: &Path, _file: &File) -> Result<(), TrustError> {
    Ok(())
}

/// Where [`generate_key_files`] writes a key pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPaths {
    /// The private key PEM (mode 0600 on unix).
    pub private: PathBuf,
    /// The public key PEM.
    pub public: PathBuf,
}

impl KeyPaths {
    /// Two explicit paths.
    pub fn new(private: impl Into<PathBuf>, public: impl Into<PathBuf>) -> Self {
        Self {
            private: private.into(),
            public: public.into(),
        }
    }

    /// `STEM.key` and `STEM.pub`: `keys/acme` gives `keys/acme.key` and `keys/acme.pub`.
    pub fn from_stem(stem: impl AsRef<Path>) -> Self {
        let with_suffix = |suffix: &str| {
            let mut name = OsString::from(stem.as_ref().as_os_str());
            name.push(suffix);
            PathBuf::from(name)
        };
        Self {
            private: with_suffix(".key"),
            public: with_suffix(".pub"),
        }
    }
}

/// What [`generate_key_files`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The files written.
    pub paths: KeyPaths,
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// The key id of the public key.
    pub key_id: String,
}

/// Generates a key pair and writes it: the private key as PKCS#8 PEM with mode 0600
/// (on unix), the public key as SPKI PEM. This is `relo key generate --type ed25519|p256`.
///
/// Refuses with [`TrustError::KeyFileExists`] if either file exists (never overwrites;
/// the private file is created with `O_EXCL`), and creates missing parent folders. If the
/// public key cannot be written, the private key just written is removed again.
pub fn generate_key_files(
    algorithm: KeyAlgorithm,
    paths: &KeyPaths,
) -> Result<GeneratedKey, TrustError> {
    generate(
        algorithm,
        paths,
        None::<fn() -> Result<Passphrase, TrustError>>,
    )
}

/// Like [`generate_key_files`], but the private key is encrypted in cosign's format with
/// the passphrase `passphrase` returns ([`PrivateKey::to_encrypted_pem`]). This is
/// `relo key generate --encrypt`, which passes [`Passphrase::for_new_key`].
///
/// `passphrase` is called after the paths are checked, so nobody types a passphrase for
/// a key that cannot be written. An empty passphrase is refused
/// ([`TrustError::EmptyPassphrase`]).
pub fn generate_encrypted_key_files(
    algorithm: KeyAlgorithm,
    paths: &KeyPaths,
    passphrase: impl FnOnce() -> Result<Passphrase, TrustError>,
) -> Result<GeneratedKey, TrustError> {
    generate(algorithm, paths, Some(passphrase))
}

fn generate(
    algorithm: KeyAlgorithm,
    paths: &KeyPaths,
    passphrase: Option<impl FnOnce() -> Result<Passphrase, TrustError>>,
) -> Result<GeneratedKey, TrustError> {
    if paths.private == paths.public {
        return Err(TrustError::Write {
            path: paths.public.clone(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "the private and the public key would be the same file",
            ),
        });
    }
    for path in [&paths.private, &paths.public] {
        if path.symlink_metadata().is_ok() {
            return Err(TrustError::KeyFileExists { path: path.clone() });
        }
    }
    let key = PrivateKey::generate(algorithm);
    let private_pem = match passphrase {
        None => key.to_pem()?,
        Some(source) => {
            let passphrase = source()?;
            if passphrase.is_empty() {
                return Err(TrustError::EmptyPassphrase);
            }
            key.to_encrypted_pem(passphrase.as_bytes())?
        }
    };
    write_new(&paths.private, private_pem.as_bytes(), true)?;
    if let Err(e) = write_new(&paths.public, key.public_key().to_pem().as_bytes(), false) {
        // Best effort: the private key has no partner, so it must not be left behind.
        let _ = std::fs::remove_file(&paths.private);
        return Err(e);
    }
    Ok(GeneratedKey {
        paths: paths.clone(),
        algorithm,
        key_id: key.key_id().to_owned(),
    })
}

fn write_new(path: &Path, contents: &[u8], private: bool) -> Result<(), TrustError> {
    let write_error = |source: io::Error| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            TrustError::KeyFileExists {
                path: path.to_owned(),
            }
        } else {
            TrustError::Write {
                path: path.to_owned(),
                source,
            }
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(write_error)?;
    file.write_all(contents).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}
