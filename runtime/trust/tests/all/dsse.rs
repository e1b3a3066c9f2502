use relo_trust::{Envelope, KeyAlgorithm, PrivateKey, Signer, TrustError, pae};

use crate::{ALGORITHMS, key};

const TYPE: &str = "application/vnd.relo.test+json";

#[test]
fn pae_matches_the_specification_example() {
    // DSSE protocol.md, "Test Vectors".
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    // Lengths are bytes, not characters.
    assert_eq!(pae("é", "€".as_bytes()), "DSSEv1 2 é 3 €".as_bytes());
}

#[test]
fn sign_and_verify_round_trip_through_json() {
    for algorithm in ALGORITHMS {
        let signer = key(algorithm);
        let envelope = Envelope::sign(TYPE, b"{\"hello\":1}".to_vec(), &[&signer]).unwrap();
        assert_eq!(envelope.signatures.len(), 1);
        assert_eq!(envelope.signatures[0].key_id, signer.key_id());
        signer
            .public_key()
            .verify(&envelope.pae(), &envelope.signatures[0].sig)
            .unwrap();

        let parsed = Envelope::from_json(envelope.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, envelope);
        let parsed = Envelope::from_json(envelope.to_json_pretty().as_bytes()).unwrap();
        let verified = parsed.verify(&[signer.public_key().clone()], 1).unwrap();
        assert_eq!(verified, [signer.key_id()]);
    }
}

#[test]
fn json_has_the_standard_field_names_and_padded_base64() {
    let signer = key(KeyAlgorithm::Ed25519);
    let envelope = Envelope::sign(TYPE, b"ab".to_vec(), &[&signer]).unwrap();
    let json: serde_json::Value = serde_json::from_str(&envelope.to_json()).unwrap();
    let object = json.as_object().unwrap();
    let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["payload", "payloadType", "signatures"]);
    assert_eq!(json["payload"], "YWI=");
    assert_eq!(json["payloadType"], TYPE);
    assert_eq!(json["signatures"][0]["keyid"], signer.key_id());
    let sig = json["signatures"][0]["sig"].as_str().unwrap();
    assert_eq!(sig.len(), 88, "64 bytes, standard base64 with padding");
    assert!(sig.ends_with("=="));
}

#[test]
fn url_safe_and_unpadded_base64_are_read() {
    let signer = key(KeyAlgorithm::EcdsaP256);
    let envelope = Envelope::sign(TYPE, vec![0xfb, 0xff, 0xfe], &[&signer]).unwrap();
    let json = envelope.to_json().replace("\"+//+\"", "\"-__-\"");
    assert!(json.contains("\"-__-\""), "{json}");
    let parsed = Envelope::from_json(json.as_bytes()).unwrap();
    assert_eq!(parsed.payload, [0xfb, 0xff, 0xfe]);
    parsed.verify(&[signer.public_key().clone()], 1).unwrap();
}

#[test]
fn tampered_payload_or_type_fails_naming_the_key() {
    for algorithm in ALGORITHMS {
        let signer = key(algorithm);
        let trusted = [signer.public_key().clone()];
        let envelope = Envelope::sign(TYPE, b"release 1.2.3".to_vec(), &[&signer]).unwrap();

        let mut payload = envelope.clone();
        payload.payload[8] = b'9';
        let error = payload.verify(&trusted, 1).unwrap_err();
        assert!(
            matches!(&error, TrustError::BadSignature { key_id } if key_id == signer.key_id()),
            "{error:?}"
        );
        assert!(error.to_string().contains(signer.key_id()));

        let mut payload_type = envelope.clone();
        payload_type.payload_type = "application/vnd.other".to_owned();
        assert_eq!(
            payload_type.verify(&trusted, 1).unwrap_err().code(),
            "bad-signature"
        );
    }
}

#[test]
fn tampered_or_truncated_signature_fails() {
    for algorithm in ALGORITHMS {
        let signer = key(algorithm);
        let trusted = [signer.public_key().clone()];
        let envelope = Envelope::sign(TYPE, b"x".to_vec(), &[&signer]).unwrap();

        let mut flipped = envelope.clone();
        let last = flipped.signatures[0].sig.len() - 1;
        flipped.signatures[0].sig[last] ^= 0x01;
        assert_eq!(
            flipped.verify(&trusted, 1).unwrap_err().code(),
            "bad-signature"
        );

        let mut truncated = envelope.clone();
        truncated.signatures[0].sig.truncate(10);
        assert_eq!(
            truncated.verify(&trusted, 1).unwrap_err().code(),
            "bad-signature"
        );
    }
}

#[test]
fn signature_by_a_key_that_is_not_trusted_fails() {
    let signer = key(KeyAlgorithm::EcdsaP256);
    let stranger = key(KeyAlgorithm::EcdsaP256);
    let envelope = Envelope::sign(TYPE, b"x".to_vec(), &[&signer]).unwrap();

    // Unknown keyid: never tried, so nobody trusted signed.
    let error = envelope
        .verify(&[stranger.public_key().clone()], 1)
        .unwrap_err();
    assert!(
        matches!(&error, TrustError::UntrustedSigner { key_ids } if key_ids == &[signer.key_id()]),
        "{error:?}"
    );
    assert_eq!(error.code(), "untrusted-signer");
    assert!(error.to_string().contains(signer.key_id()));
}

#[test]
fn signature_claiming_a_trusted_keyid_but_made_by_another_key_fails() {
    let trusted_key = key(KeyAlgorithm::Ed25519);
    let attacker = key(KeyAlgorithm::Ed25519);
    let mut envelope = Envelope::sign(TYPE, b"x".to_vec(), &[&attacker]).unwrap();
    envelope.signatures[0].key_id = trusted_key.key_id().to_owned();
    let error = envelope
        .verify(&[trusted_key.public_key().clone()], 1)
        .unwrap_err();
    assert!(
        matches!(&error, TrustError::BadSignature { key_id } if key_id == trusted_key.key_id())
    );
}

#[test]
fn unknown_keyids_are_ignored_beside_a_trusted_signature() {
    let signer = key(KeyAlgorithm::Ed25519);
    let stranger = key(KeyAlgorithm::EcdsaP256);
    let mut envelope = Envelope::sign(TYPE, b"x".to_vec(), &[&stranger, &signer]).unwrap();
    envelope.signatures.push(relo_trust::EnvelopeSignature {
        key_id: String::new(),
        sig: vec![1, 2, 3],
    });
    let verified = envelope.verify(&[signer.public_key().clone()], 1).unwrap();
    assert_eq!(verified, [signer.key_id()]);
}

#[test]
fn threshold_counts_distinct_trusted_keys() {
    let a = key(KeyAlgorithm::Ed25519);
    let b = key(KeyAlgorithm::EcdsaP256);
    let c = key(KeyAlgorithm::Ed25519);
    let trusted = [
        a.public_key().clone(),
        b.public_key().clone(),
        c.public_key().clone(),
    ];

    let two = Envelope::sign(TYPE, b"x".to_vec(), &[&a, &b]).unwrap();
    assert_eq!(two.verify(&trusted, 2).unwrap(), [a.key_id(), b.key_id()]);
    let error = two.verify(&trusted, 3).unwrap_err();
    assert!(
        matches!(
            error,
            TrustError::ThresholdNotMet {
                verified: 2,
                threshold: 3
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.code(), "threshold-not-met");

    // The same signature twice is one key.
    let mut repeated = Envelope::sign(TYPE, b"x".to_vec(), &[&a]).unwrap();
    repeated.signatures.push(repeated.signatures[0].clone());
    let error = repeated.verify(&trusted, 2).unwrap_err();
    assert!(matches!(
        error,
        TrustError::ThresholdNotMet {
            verified: 1,
            threshold: 2
        }
    ));

    // A bad signature by a trusted key fails even when the others meet the threshold.
    let mut one_bad = Envelope::sign(TYPE, b"x".to_vec(), &[&a, &b, &c]).unwrap();
    one_bad.signatures[2].sig[0] ^= 0xff;
    let error = one_bad.verify(&trusted, 2).unwrap_err();
    assert!(matches!(&error, TrustError::BadSignature { key_id } if key_id == c.key_id()));
}

#[test]
fn unsigned_envelopes_and_zero_thresholds_are_refused() {
    let signer = key(KeyAlgorithm::Ed25519);
    let mut envelope = Envelope::sign(TYPE, b"x".to_vec(), &[&signer]).unwrap();
    let trusted = [signer.public_key().clone()];
    assert!(matches!(
        envelope.verify(&trusted, 0),
        Err(TrustError::InvalidThreshold)
    ));
    envelope.signatures.clear();
    let error = envelope.verify(&trusted, 1).unwrap_err();
    assert!(matches!(error, TrustError::Unsigned));
    assert_eq!(error.code(), "unsigned");
    assert!(matches!(
        Envelope::sign(TYPE, b"x".to_vec(), &[]),
        Err(TrustError::Unsigned)
    ));
}

#[test]
fn the_same_key_cannot_sign_twice() {
    let signer = key(KeyAlgorithm::Ed25519);
    let again = PrivateKey::from_pem(&signer.to_pem().unwrap()).unwrap();
    let error = Envelope::sign(TYPE, b"x".to_vec(), &[&signer, &again]).unwrap_err();
    assert!(matches!(&error, TrustError::DuplicateSigner { key_id } if key_id == signer.key_id()));
}

#[test]
fn malformed_json_is_a_typed_error() {
    for json in [
        "",
        "[]",
        r#"{"payload":"YWI=","payloadType":"t"}"#,
        r#"{"payload":"not base64!","payloadType":"t","signatures":[]}"#,
        r#"{"payload":"YWI=","payloadType":"t","signatures":[],"extra":1}"#,
        r#"{"payload":"YWI=","payloadType":"t","signatures":[{"keyid":"k","sig":"YWI=","x":1}]}"#,
    ] {
        let error = Envelope::from_json(json.as_bytes()).unwrap_err();
        assert_eq!(error.code(), "malformed-envelope", "{json}: {error}");
    }
}

/// A signer that is not a key in memory, as a Vault Transit signer will be.
struct CountingSigner {
    key: PrivateKey,
    calls: std::sync::atomic::AtomicUsize,
}

impl Signer for CountingSigner {
    fn public_key(&self) -> &relo_trust::PublicKey {
        self.key.public_key()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TrustError> {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.key.sign(message))
    }
    fn sign_prehashed_sha256(&self, digest: &[u8; 32]) -> Result<Vec<u8>, TrustError> {
        self.key.sign_prehashed_sha256(digest)
    }
}

#[test]
fn any_signer_implementation_can_sign_an_envelope() {
    let signer = CountingSigner {
        key: key(KeyAlgorithm::EcdsaP256),
        calls: Default::default(),
    };
    let envelope = Envelope::sign(TYPE, b"x".to_vec(), &[&signer]).unwrap();
    assert_eq!(signer.calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(signer.algorithm(), KeyAlgorithm::EcdsaP256);
    envelope.verify(&[signer.public_key().clone()], 1).unwrap();
}
