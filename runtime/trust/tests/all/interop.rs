//! Independent implementations: PyPI `securesystemslib` and `in-toto-attestation` read our
//! envelopes and statements (and we verify the envelopes they make), and openssl reads our
//! keys and signatures (and we read its).
//!
//! These tools must be installed: `scripts/test.sh` puts the Python packages in a virtual
//! environment under `target/interop` and exports `RELO_PYTHON` (otherwise `python3` is
//! used, with `python3 -m pip install 'securesystemslib[crypto]' in-toto-attestation`);
//! openssl is Debian's. A missing tool fails the test, naming what to install.
//! `RELO_SKIP_INTEROP=1` skips them.

use std::path::Path;
use std::process::{Command, Output};

use relo_trust::{
    Envelope, IN_TOTO_PAYLOAD_TYPE, KeyAlgorithm, PrivateKey, PublicKey, Statement, Subject,
};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::{key, run_interop};

const PIP_INSTALL: &str = "run `scripts/test.sh` (it installs them into target/interop/venv and \
     exports RELO_PYTHON), or `python3 -m pip install 'securesystemslib[crypto]' in-toto-attestation`";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/verify_dsse.py");
const SIGN_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/sign_dsse.py");

/// The Python that has the verifiers: `RELO_PYTHON` (set by `scripts/test.sh`), else `python3`.
pub(crate) fn python() -> std::ffi::OsString {
    std::env::var_os("RELO_PYTHON")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Whether `RELO_SKIP_INTEROP=1` asks to skip the checks with independent tools.
pub(crate) fn skipped(what: &str) -> bool {
    let skip = relo_test_env::skip_requested("INTEROP");
    if skip {
        eprintln!("skipping the {what} interop check");
    }
    skip
}

fn statement() -> Statement {
    Statement::new(
        vec![Subject::sha256(
            "acme/publish-release",
            hex::encode(Sha256::digest(b"plugin.wasm bytes")),
        )],
        "https://relo.dev/attestation/plugin/v1",
        json!({"manifest": {"plugin": {"name": "acme/publish-release", "version": "0.1.0"}}}),
    )
}

fn write_case(dir: &Path, name: &str, envelope: &Envelope, public: &PublicKey, expect: &str) {
    let case = dir.join(name);
    std::fs::create_dir(&case).expect("case folder");
    let files = [
        ("envelope.json", envelope.to_json_pretty()),
        ("public.pem", public.to_pem()),
        ("keyid", public.key_id().to_owned()),
        ("expect", expect.to_owned()),
    ];
    for (name, contents) in files {
        std::fs::write(case.join(name), contents).expect("case file");
    }
}

#[test]
fn securesystemslib_verifies_and_in_toto_attestation_validates_our_envelopes() {
    if skipped("securesystemslib / in-toto-attestation") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cases = 0;
    for algorithm in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
        let signer = key(algorithm);
        let public = signer.public_key();
        let envelope = statement().sign(&[&signer]).unwrap();
        write_case(
            dir.path(),
            &format!("{algorithm}"),
            &envelope,
            public,
            "valid",
        );

        let mut tampered_payload = envelope.clone();
        let at = tampered_payload.payload.len() - 5;
        tampered_payload.payload[at] ^= 0x01;
        let name = format!("{algorithm}-tampered-payload");
        write_case(dir.path(), &name, &tampered_payload, public, "reject");

        let mut tampered_signature = envelope.clone();
        tampered_signature.signatures[0].sig[20] ^= 0x01;
        let name = format!("{algorithm}-tampered-signature");
        write_case(dir.path(), &name, &tampered_signature, public, "reject");

        let impostor = key(algorithm);
        let mut forged = statement().sign(&[&impostor]).unwrap();
        forged.signatures[0].key_id = public.key_id().to_owned();
        let name = format!("{algorithm}-signed-by-another-key");
        write_case(dir.path(), &name, &forged, public, "reject");

        let mut no_subject = serde_json::to_value(statement()).unwrap();
        no_subject["subject"] = json!([]);
        let payload = relo_trust::canonical_json(&no_subject).unwrap();
        let invalid = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, payload, &[&signer]).unwrap();
        let name = format!("{algorithm}-statement-without-subject");
        write_case(dir.path(), &name, &invalid, public, "invalid-statement");
        cases += 5;
    }

    let mut command = Command::new(python());
    command.arg(SCRIPT).arg(dir.path());
    let stdout = run_interop(command, PIP_INSTALL);
    assert_eq!(stdout.lines().count(), cases, "{stdout}");
}

#[test]
fn we_verify_envelopes_securesystemslib_signs() {
    if skipped("securesystemslib signing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let digest = hex::encode(Sha256::digest(b"release.tar.gz bytes"));
    let mut command = Command::new(python());
    command
        .arg(SIGN_SCRIPT)
        .arg(dir.path())
        .arg("release.tar.gz")
        .arg(&digest);
    run_interop(command, PIP_INSTALL);

    for (name, algorithm) in [
        ("p256", KeyAlgorithm::EcdsaP256),
        ("ed25519", KeyAlgorithm::Ed25519),
    ] {
        let case = dir.path().join(name);
        let read = |file: &str| std::fs::read(case.join(file)).expect(file);
        let public = PublicKey::from_pem(&String::from_utf8(read("public.pem")).unwrap()).unwrap();
        assert_eq!(public.algorithm(), algorithm, "{name}");
        let key_id = String::from_utf8(read("keyid")).unwrap();
        assert_eq!(
            public.key_id(),
            key_id,
            "{name}: the key id is the SPKI DER's SHA-256"
        );
        let envelope = Envelope::from_json(&read("envelope.json")).unwrap();
        let trusted = [public];

        let verified = envelope.verify_statement(&trusted, 1).unwrap();
        assert_eq!(verified.key_ids, [key_id.as_str()], "{name}");
        let subject = &verified.statement.subject[0];
        assert_eq!(subject.name, "release.tar.gz", "{name}");
        assert_eq!(subject.sha256_digest(), Some(digest.as_str()), "{name}");

        let mut tampered_payload = envelope.clone();
        let at = tampered_payload.payload.len() / 2;
        tampered_payload.payload[at] ^= 0x01;
        let mut tampered_signature = envelope.clone();
        let at = tampered_signature.signatures[0].sig.len() - 3;
        tampered_signature.signatures[0].sig[at] ^= 0x01;
        for (what, tampered) in [
            ("payload", tampered_payload),
            ("signature", tampered_signature),
        ] {
            let error = tampered.verify(&trusted, 1).unwrap_err();
            assert_eq!(
                error.code(),
                "bad-signature",
                "{name}, tampered {what}: {error}"
            );
            assert!(error.to_string().contains(&key_id), "{error}");
        }
    }
}

fn openssl(args: &[&str], dir: &Path) -> Output {
    let output = match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(e) => panic!("cannot run openssl ({e}); install it or set RELO_SKIP_INTEROP=1"),
    };
    assert!(
        output.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn openssl_reads_our_keys_and_verifies_our_signatures() {
    if skipped("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    std::fs::write(at.join("message"), b"release 1.2.3").unwrap();
    for algorithm in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
        let private = key(algorithm);
        std::fs::write(at.join("key.pem"), private.to_pem().unwrap().as_bytes()).unwrap();
        std::fs::write(at.join("pub.pem"), private.public_key().to_pem()).unwrap();

        // openssl derives the same public key PEM from our private key PEM.
        let derived = openssl(&["pkey", "-in", "key.pem", "-pubout"], at);
        assert_eq!(
            String::from_utf8(derived.stdout).unwrap(),
            private.public_key().to_pem()
        );

        let signature = private.sign(b"release 1.2.3");
        std::fs::write(at.join("sig"), &signature).unwrap();
        match algorithm {
            KeyAlgorithm::Ed25519 => {
                let args = "pkeyutl -verify -pubin -inkey pub.pem -rawin -in message -sigfile sig";
                openssl(&args.split(' ').collect::<Vec<_>>(), at);
            }
            KeyAlgorithm::EcdsaP256 => {
                let verify = [
                    "dgst",
                    "-sha256",
                    "-verify",
                    "pub.pem",
                    "-signature",
                    "sig",
                    "message",
                ];
                openssl(&verify, at);
                // The prehashed signature verifies against the message itself.
                let digest: [u8; 32] = Sha256::digest(b"release 1.2.3").into();
                let prehashed = private.sign_prehashed_sha256(&digest).unwrap();
                std::fs::write(at.join("sig"), &prehashed).unwrap();
                openssl(&verify, at);
            }
        }
        for file in ["key.pem", "pub.pem", "sig"] {
            std::fs::remove_file(at.join(file)).unwrap();
        }
    }
}

#[test]
fn we_read_openssl_keys_and_verify_its_signatures() {
    if skipped("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    std::fs::write(at.join("message"), b"cosign sign-blob format").unwrap();
    let generators: [(&str, KeyAlgorithm); 3] = [
        (
            "genpkey -algorithm ed25519 -out key.pem",
            KeyAlgorithm::Ed25519,
        ),
        (
            "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem",
            KeyAlgorithm::EcdsaP256,
        ),
        (
            "ecparam -name prime256v1 -genkey -noout -out key.pem",
            KeyAlgorithm::EcdsaP256,
        ),
    ];
    for (generate, algorithm) in generators {
        openssl(&generate.split(' ').collect::<Vec<_>>(), at);
        let pem = std::fs::read_to_string(at.join("key.pem")).unwrap();
        let private = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(private.algorithm(), algorithm, "{generate}");

        let der = openssl(
            &["pkey", "-in", "key.pem", "-pubout", "-outform", "DER"],
            at,
        )
        .stdout;
        assert_eq!(
            private.key_id(),
            hex::encode(Sha256::digest(&der)),
            "{generate}"
        );
        let public_pem = openssl(&["pkey", "-in", "key.pem", "-pubout"], at).stdout;
        let public = PublicKey::from_pem(std::str::from_utf8(&public_pem).unwrap()).unwrap();
        assert_eq!(public.key_id(), private.key_id());

        if algorithm == KeyAlgorithm::EcdsaP256 {
            let sign = [
                "dgst", "-sha256", "-sign", "key.pem", "-out", "sig", "message",
            ];
            openssl(&sign, at);
            let signature = std::fs::read(at.join("sig")).unwrap();
            public
                .verify(b"cosign sign-blob format", &signature)
                .unwrap();
            assert!(public.verify(b"another message", &signature).is_err());
            std::fs::remove_file(at.join("sig")).unwrap();
        }
        std::fs::remove_file(at.join("key.pem")).unwrap();
    }

    for (generate, expected) in [
        (
            "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out key.pem",
            "curve",
        ),
        (
            "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem",
            "1.2.840.113549.1.1.1",
        ),
    ] {
        openssl(&generate.split(' ').collect::<Vec<_>>(), at);
        let pem = std::fs::read_to_string(at.join("key.pem")).unwrap();
        let error = PrivateKey::from_pem(&pem).unwrap_err();
        assert_eq!(
            error.code(),
            "unsupported-key-algorithm",
            "{generate}: {error}"
        );
        assert!(error.to_string().contains(expected), "{error}");
        let public_pem = openssl(&["pkey", "-in", "key.pem", "-pubout"], at).stdout;
        let error = PublicKey::from_pem(std::str::from_utf8(&public_pem).unwrap()).unwrap_err();
        assert_eq!(error.code(), "unsupported-key-algorithm", "{error}");
        std::fs::remove_file(at.join("key.pem")).unwrap();
    }
}
