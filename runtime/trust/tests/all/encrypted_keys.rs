//! Passphrase-encrypted private keys against an independent implementation of cosign's
//! format: `tests/interop/encrypted_keys.py` (hashlib's scrypt, PyNaCl's secretbox,
//! `cryptography`) opens keys relo encrypted, and relo loads, through `KeyFileSigner`,
//! keys it encrypted and signs with them, which it then verifies.
//!
//! The script needs `python3 -m pip install pynacl cryptography`; a missing module fails
//! the test, naming what to install. `RELO_PYTHON` names the interpreter (default
//! `python3`); `RELO_SKIP_INTEROP=1` skips the check.

use std::path::Path;
use std::process::Command;

use relo_trust::{KeyFileSigner, Passphrase, PublicKey, Signer as _, TrustError};

use crate::interop::{python, skipped};
use crate::{ALGORITHMS, key, run_interop};

const PIP_INSTALL: &str = "run `scripts/test.sh` (it installs PyNaCl and cryptography into \\
     target/interop/venv and exports RELO_PYTHON)";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/encrypted_keys.py"
);
const PASSPHRASE: &str = "correct horse battery staple 🐎";
const MESSAGE: &[u8] = b"release 1.2.3 of acme/publish-release";

/// Runs the script; returns its stdout, one line per check.
fn script(phase: &str, dir: &Path) -> String {
    let mut command = Command::new(python());
    command.arg(SCRIPT).arg(phase).arg(dir);
    run_interop(command, PIP_INSTALL)
}

fn passphrase() -> Result<Passphrase, TrustError> {
    Ok(Passphrase::new(PASSPHRASE))
}

#[test]
fn an_independent_implementation_reads_our_encrypted_keys_and_we_read_its() {
    if skipped("encrypted key") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    std::fs::write(at.join("passphrase"), PASSPHRASE).unwrap();
    std::fs::write(at.join("message"), MESSAGE).unwrap();

    // (a) Keys relo encrypted: the script decrypts them and compares the public keys.
    for algorithm in ALGORITHMS {
        let private = key(algorithm);
        let pem = private.to_encrypted_pem(PASSPHRASE.as_bytes()).unwrap();
        std::fs::write(at.join(format!("relo-{algorithm}.key")), pem.as_bytes()).unwrap();
        std::fs::write(
            at.join(format!("relo-{algorithm}.pub")),
            private.public_key().to_pem(),
        )
        .unwrap();
    }
    let checked = script("check", at);
    assert_eq!(
        checked.lines().filter(|l| l.starts_with("ok ")).count(),
        2,
        "{checked}"
    );

    // (b) Keys the script encrypted in cosign's format (one with the older PEM label):
    // relo loads them from their files and signs; the script verifies the signatures.
    let made = ["ed25519", "p256", "p256-legacy-label"];
    for name in made {
        let path = at.join(format!("py-{name}.key"));
        let signer = KeyFileSigner::load_with_passphrase(&path, passphrase)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let public = PublicKey::from_pem_file(at.join(format!("py-{name}.pub"))).unwrap();
        assert_eq!(signer.public_key(), &public, "{name}");
        let signature = signer.sign(MESSAGE).unwrap();
        public.verify(MESSAGE, &signature).unwrap();
        std::fs::write(at.join(format!("py-{name}.sig")), signature).unwrap();

        // The wrong passphrase is refused, naming the file.
        let error =
            KeyFileSigner::load_with_passphrase(&path, || Ok(Passphrase::new("nope"))).unwrap_err();
        assert_eq!(error.code(), "wrong-passphrase", "{error}");
        assert!(
            error.to_string().contains(&format!("py-{name}.key")),
            "{error}"
        );
    }
    let verified = script("verify", at);
    assert_eq!(
        verified.lines().filter(|l| l.starts_with("ok ")).count(),
        made.len(),
        "{verified}"
    );
}

#[test]
fn generated_encrypted_key_files_load_with_their_passphrase_only() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in ALGORITHMS {
        let paths = relo_trust::KeyPaths::from_stem(dir.path().join(format!("keys/{algorithm}")));
        let generated =
            relo_trust::generate_encrypted_key_files(algorithm, &paths, passphrase).unwrap();
        let pem = std::fs::read_to_string(&paths.private).unwrap();
        assert!(
            pem.starts_with(&format!(
                "-----BEGIN {}-----\n",
                relo_trust::ENCRYPTED_KEY_PEM_LABEL
            )),
            "{pem}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&paths.private)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let signer = KeyFileSigner::load_with_passphrase(&paths.private, passphrase).unwrap();
        assert_eq!(signer.key_id(), generated.key_id);
        assert_eq!(
            PublicKey::from_pem_file(&paths.public).unwrap().key_id(),
            generated.key_id
        );

        // A file that exists is refused before anyone is asked for a passphrase.
        let error = relo_trust::generate_encrypted_key_files(algorithm, &paths, || {
            panic!("asked for a passphrase although the key cannot be written")
        })
        .unwrap_err();
        assert_eq!(error.code(), "key-file-exists");

        // No passphrase source: the error is the source's.
        let error = KeyFileSigner::load_with_passphrase(&paths.private, || {
            Err(TrustError::PassphraseRequired {
                what: "test".to_owned(),
            })
        })
        .unwrap_err();
        assert_eq!(error.code(), "passphrase-required");
    }

    // An unencrypted key never asks.
    let paths = relo_trust::KeyPaths::from_stem(dir.path().join("plain"));
    relo_trust::generate_key_files(relo_trust::KeyAlgorithm::Ed25519, &paths).unwrap();
    KeyFileSigner::load_with_passphrase(&paths.private, || {
        panic!("asked for a passphrase for an unencrypted key")
    })
    .unwrap();

    // An empty passphrase is refused for a new key, and nothing is written.
    let paths = relo_trust::KeyPaths::from_stem(dir.path().join("empty"));
    let error =
        relo_trust::generate_encrypted_key_files(relo_trust::KeyAlgorithm::Ed25519, &paths, || {
            Ok(Passphrase::new(""))
        })
        .unwrap_err();
    assert_eq!(error.code(), "empty-passphrase");
    assert!(!paths.private.exists() && !paths.public.exists());
}
