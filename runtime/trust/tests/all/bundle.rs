//! Sigstore bundles checked by an independent implementation: npm `@sigstore/verify` reads
//! our key-signed v0.3 bundles (Ed25519 and ECDSA P-256), refuses tampered copies, and
//! (in `tests/interop/verify_bundle.mjs`, since the library does not) compares the
//! Statement's subject with the artifact's digest. The other way round, we read and verify
//! the bundles `@sigstore/bundle` builds (`tests/interop/make_bundle.mjs`).
//!
//! The npm packages must be installed: `scripts/test.sh` puts them under
//! `target/interop/node` and exports `RELO_NODE_MODULES`, which becomes `NODE_PATH` here.
//! A missing Node.js or package fails the test, naming what to install;
//! `RELO_SKIP_INTEROP=1` skips it.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use relo_trust::{
    Envelope, KeyAlgorithm, PrivateKey, PublicKey, SigstoreBundle, Statement, Subject,
};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::interop::skipped;
use crate::{ALGORITHMS, key, run_interop};

const NPM_INSTALL: &str = "run `scripts/test.sh` (it installs @sigstore/verify and \
     @sigstore/bundle into target/interop/node and exports RELO_NODE_MODULES), or set \
     RELO_NODE_MODULES to a node_modules folder that has them";
const VERIFY_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/verify_bundle.mjs"
);
const MAKE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/make_bundle.mjs");
const ARTIFACT: &[u8] = b"acme-cli-1.2.3.tar.gz bytes";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn statement() -> Statement {
    Statement::new(
        vec![Subject::sha256(
            "acme-cli-1.2.3.tar.gz",
            sha256_hex(ARTIFACT),
        )],
        "https://slsa.dev/provenance/v1",
        json!({"buildDefinition": {"buildType": "https://relo.dev/release/v1"}}),
    )
}

fn write_case(dir: &Path, name: &str, envelope: &Envelope, public: &PublicKey, expect: &str) {
    write_case_with_digest(dir, name, envelope, public, expect, &sha256_hex(ARTIFACT));
}

fn write_case_with_digest(
    dir: &Path,
    name: &str,
    envelope: &Envelope,
    public: &PublicKey,
    expect: &str,
    digest: &str,
) {
    // relo's hint and keyid: the id of the key the verifier trusts.
    let bundle = SigstoreBundle::from_envelope(envelope, public.key_id());
    let json = bundle.to_json();

    // relo reads back the same file and agrees with the expected outcome.
    let read = SigstoreBundle::from_json(json.as_bytes()).expect("relo reads its bundle");
    let verified = read
        .envelope()
        .verify_statement(std::slice::from_ref(public), 1);
    match expect {
        "reject" => assert_eq!(verified.expect_err(name).code(), "bad-signature", "{name}"),
        _ => {
            let statement = verified.expect(name).statement;
            let found = statement.subject[0].sha256_digest() == Some(digest);
            assert_eq!(found, expect == "valid", "{name}");
        }
    }

    let case = dir.join(name);
    std::fs::create_dir(&case).expect("case folder");
    let files = [
        ("bundle.json", json),
        ("public.pem", public.to_pem()),
        ("keyid", public.key_id().to_owned()),
        ("digest", digest.to_owned()),
        ("expect", expect.to_owned()),
    ];
    for (name, contents) in files {
        std::fs::write(case.join(name), contents).expect("case file");
    }
}

/// Runs a Node script with `RELO_NODE_MODULES` as `NODE_PATH`; returns its stdout after
/// checking it succeeded.
fn run_node(script: &str, args: &[&OsStr]) -> String {
    let mut command = Command::new("node");
    command.arg(script).args(args);
    if let Some(modules) = std::env::var_os("RELO_NODE_MODULES").filter(|m| !m.is_empty()) {
        command.env("NODE_PATH", modules);
    }
    run_interop(command, NPM_INSTALL)
}

#[test]
fn sigstore_verify_accepts_our_bundles_and_refuses_tampered_ones() {
    if skipped("@sigstore/verify") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    let mut cases = Vec::new();
    for algorithm in ALGORITHMS {
        let signer: PrivateKey = key(algorithm);
        let public = signer.public_key();
        let envelope = statement().sign(&[&signer]).unwrap();
        let mut case = |name: &str, envelope: &Envelope, expect: &str| {
            let name = format!("{algorithm}-{name}");
            write_case(at, &name, envelope, public, expect);
            cases.push(name);
        };
        case("valid", &envelope, "valid");

        let mut tampered_payload = envelope.clone();
        let byte = tampered_payload.payload.len() - 5;
        tampered_payload.payload[byte] ^= 0x01;
        case("tampered-payload", &tampered_payload, "reject");

        // A real signature by the same key, over other bytes.
        let mut replaced = envelope.clone();
        replaced.signatures[0].sig = signer.sign(b"another release");
        case("signature-replaced", &replaced, "reject");

        // Signed by another key that claims to be the trusted one.
        let impostor = key(algorithm);
        let mut forged = statement().sign(&[&impostor]).unwrap();
        forged.signatures[0].key_id = public.key_id().to_owned();
        case("signed-by-another-key", &forged, "reject");

        // A genuine bundle about another artifact: only the digest check refuses it.
        let name = format!("{algorithm}-another-artifact");
        let other = sha256_hex(b"acme-cli-1.2.4.tar.gz bytes");
        write_case_with_digest(at, &name, &envelope, public, "wrong-digest", &other);
        cases.push(name);
    }

    let stdout = run_node(VERIFY_SCRIPT, &[at.as_os_str()]);
    for case in &cases {
        assert!(
            stdout
                .lines()
                .any(|line| line.starts_with(&format!("{case}: "))),
            "no result for {case}:\n{stdout}"
        );
    }
    assert_eq!(stdout.lines().count(), cases.len(), "{stdout}");
}

#[test]
fn we_read_and_verify_bundles_sigstore_js_builds() {
    if skipped("@sigstore/bundle") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let digest = sha256_hex(ARTIFACT);
    let args = [
        dir.path().as_os_str(),
        OsStr::new("acme-cli-1.2.3.tar.gz"),
        OsStr::new(&digest),
    ];
    run_node(MAKE_SCRIPT, &args);

    for (name, algorithm) in [
        ("p256", KeyAlgorithm::EcdsaP256),
        ("ed25519", KeyAlgorithm::Ed25519),
    ] {
        let case = dir.path().join(name);
        let read = |file: &str| std::fs::read(case.join(file)).expect(file);
        let public = PublicKey::from_pem(&String::from_utf8(read("public.pem")).unwrap()).unwrap();
        assert_eq!(public.algorithm(), algorithm, "{name}");
        let key_id = String::from_utf8(read("keyid")).unwrap();
        assert_eq!(public.key_id(), key_id, "{name}");

        // sigstore-js leaves out the empty tlogEntries and writes an empty
        // timestampVerificationData: the strict reader takes both.
        let bundle = SigstoreBundle::from_json(&read("bundle.json")).unwrap();
        assert_eq!(bundle.hint(), key_id, "{name}");
        let trusted = [public];
        let verified = bundle.envelope().verify_statement(&trusted, 1).unwrap();
        assert_eq!(verified.key_ids, [key_id.as_str()], "{name}");
        assert_eq!(
            verified.statement.subject[0].sha256_digest(),
            Some(digest.as_str()),
            "{name}"
        );

        let mut tampered = bundle.into_envelope();
        tampered.payload[20] ^= 0x01;
        let error = tampered.verify(&trusted, 1).unwrap_err();
        assert_eq!(error.code(), "bad-signature", "{name}: {error}");
    }
}
