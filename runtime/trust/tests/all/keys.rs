use relo_trust::{KeyAlgorithm, PrivateKey, PublicKey, Signer, TrustError};
use sha2::{Digest as _, Sha256};

use crate::{ALGORITHMS, key};

#[test]
fn pem_round_trips_keep_the_key_and_its_id() {
    for algorithm in ALGORITHMS {
        let private = key(algorithm);
        let pem = private.to_pem().unwrap();
        assert!(
            pem.starts_with(concat!("-----BEGIN ", "PRIVATE KEY-----\n")),
            "{algorithm}"
        );
        let reloaded = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(reloaded.public_key(), private.public_key());
        assert_eq!(reloaded.algorithm(), algorithm);

        let public_pem = private.public_key().to_pem();
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let public = PublicKey::from_pem(&public_pem).unwrap();
        assert_eq!(public.key_id(), private.key_id());
        assert_eq!(public.algorithm(), algorithm);
    }
}

#[test]
fn key_id_is_the_sha256_of_the_spki_der() {
    for algorithm in ALGORITHMS {
        let public = key(algorithm).public_key().clone();
        assert_eq!(
            public.key_id(),
            hex::encode(Sha256::digest(public.to_der()))
        );
        assert_eq!(public.key_id().len(), 64);
        assert!(
            public
                .key_id()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
    let ed = key(KeyAlgorithm::Ed25519);
    assert_eq!(ed.public_key().to_der().len(), 44);
    assert_eq!(ed.public_key().raw_bytes().len(), 32);
    let p256 = key(KeyAlgorithm::EcdsaP256);
    assert_eq!(p256.public_key().to_der().len(), 91, "uncompressed point");
    assert_eq!(p256.public_key().raw_bytes()[0], 0x04);
}

#[test]
fn signatures_verify_and_fail_on_another_message_or_key() {
    for algorithm in ALGORITHMS {
        let private = key(algorithm);
        let other = key(algorithm);
        let signature = private.sign(b"message");
        private.public_key().verify(b"message", &signature).unwrap();

        let error = private
            .public_key()
            .verify(b"messagE", &signature)
            .unwrap_err();
        assert!(
            matches!(&error, TrustError::BadSignature { key_id } if key_id == private.key_id())
        );
        let error = other
            .public_key()
            .verify(b"message", &signature)
            .unwrap_err();
        assert!(matches!(&error, TrustError::BadSignature { key_id } if key_id == other.key_id()));
        assert!(private.public_key().verify(b"message", b"garbage").is_err());
        assert!(private.public_key().verify(b"message", &[]).is_err());
    }
}

#[test]
fn p256_signatures_are_der_over_sha256() {
    let private = key(KeyAlgorithm::EcdsaP256);
    let signature = private.sign(b"artifact");
    assert_eq!(signature[0], 0x30, "an ASN.1 SEQUENCE");

    // A standard verifier, given only the public key PEM, the message and the DER bytes.
    use p256::ecdsa::signature::Verifier as _;
    use p256::pkcs8::DecodePublicKey as _;
    let verifying =
        p256::ecdsa::VerifyingKey::from_public_key_pem(&private.public_key().to_pem()).unwrap();
    let der = p256::ecdsa::DerSignature::from_bytes(&signature).unwrap();
    verifying.verify(b"artifact", &der).unwrap();

    // The fixed-size (r || s) form is not what relo exchanges.
    let fixed = p256::ecdsa::Signature::from_der(&signature)
        .unwrap()
        .to_bytes();
    assert!(private.public_key().verify(b"artifact", &fixed).is_err());
}

#[test]
fn prehashed_p256_signature_verifies_against_the_original_message() {
    let private = key(KeyAlgorithm::EcdsaP256);
    let message = b"a large artifact, hashed elsewhere";
    let digest: [u8; 32] = Sha256::digest(message).into();
    let signature = Signer::sign_prehashed_sha256(&private, &digest).unwrap();

    private.public_key().verify(message, &signature).unwrap();
    private
        .public_key()
        .verify_prehashed_sha256(&digest, &signature)
        .unwrap();

    use p256::ecdsa::signature::Verifier as _;
    let standard =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&private.public_key().raw_bytes()).unwrap();
    standard
        .verify(
            message,
            &p256::ecdsa::DerSignature::from_bytes(&signature).unwrap(),
        )
        .unwrap();
}

#[test]
fn ed25519_refuses_to_sign_a_prehashed_digest() {
    let private = key(KeyAlgorithm::Ed25519);
    let error = Signer::sign_prehashed_sha256(&private, &[0; 32]).unwrap_err();
    assert!(matches!(
        error,
        TrustError::PrehashUnsupported {
            algorithm: KeyAlgorithm::Ed25519
        }
    ));
    assert_eq!(error.code(), "prehash-unsupported");
    assert!(
        private
            .public_key()
            .verify_prehashed_sha256(&[0; 32], &[0; 64])
            .is_err()
    );
}

#[test]
fn debug_never_prints_secret_material() {
    for algorithm in ALGORITHMS {
        let private = key(algorithm);
        let pem = private.to_pem().unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let debug = format!("{private:?}");
        assert!(debug.contains(private.key_id()), "{debug}");
        assert!(!debug.contains(&body[body.len() - 20..]), "{debug}");
        assert!(!debug.to_lowercase().contains("secret"), "{debug}");
    }
}

#[test]
fn wrong_pem_labels_and_encrypted_keys_are_refused_with_a_reason() {
    let private = key(KeyAlgorithm::Ed25519);
    let public_pem = private.public_key().to_pem();
    let error = PrivateKey::from_pem(&public_pem).unwrap_err();
    assert!(error.to_string().contains("PUBLIC KEY"), "{error}");
    let error = PublicKey::from_pem(&private.to_pem().unwrap()).unwrap_err();
    assert!(error.to_string().contains("PRIVATE KEY"), "{error}");

    let encrypted = public_pem.replace("PUBLIC KEY", "ENCRYPTED PRIVATE KEY");
    let error = PrivateKey::from_pem(&encrypted).unwrap_err();
    assert!(error.to_string().contains("not supported"), "{error}");
    let cosign = private.to_encrypted_pem(b"pw").unwrap();
    let error = PrivateKey::from_pem(&cosign).unwrap_err();
    assert!(error.to_string().contains("passphrase"), "{error}");

    let error = PublicKey::from_pem("not a pem").unwrap_err();
    assert_eq!(error.code(), "invalid-key");
}

#[test]
fn sec1_p256_private_keys_are_accepted() {
    use p256::pkcs8::der::pem::LineEnding;
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap();
    assert!(sec1.starts_with(concat!("-----BEGIN EC ", "PRIVATE KEY-----")));
    let private = PrivateKey::from_pem(&sec1).unwrap();
    assert_eq!(private.algorithm(), KeyAlgorithm::EcdsaP256);
}

#[test]
fn algorithm_names() {
    assert_eq!(
        "ed25519".parse::<KeyAlgorithm>().unwrap(),
        KeyAlgorithm::Ed25519
    );
    assert_eq!(
        "p256".parse::<KeyAlgorithm>().unwrap(),
        KeyAlgorithm::EcdsaP256
    );
    assert_eq!(
        "ECDSA-P256".parse::<KeyAlgorithm>().unwrap(),
        KeyAlgorithm::EcdsaP256
    );
    let error = "rsa".parse::<KeyAlgorithm>().unwrap_err();
    assert_eq!(error.code(), "unsupported-key-algorithm");
    assert_eq!(KeyAlgorithm::EcdsaP256.to_string(), "p256");
    assert_eq!(
        serde_json::to_string(&KeyAlgorithm::Ed25519).unwrap(),
        "\"ed25519\""
    );
}
