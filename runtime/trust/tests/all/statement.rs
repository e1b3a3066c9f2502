use relo_trust::{
    Envelope, IN_TOTO_PAYLOAD_TYPE, KeyAlgorithm, STATEMENT_TYPE_V1, Statement, Subject,
    TrustError, canonical_json,
};
use serde_json::json;

use crate::{ALGORITHMS, key};

const DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn statement() -> Statement {
    Statement::new(
        vec![Subject::sha256("acme/publish-release", DIGEST)],
        "https://relo.dev/attestation/plugin/v1",
        json!({"manifest": {"plugin": {"name": "acme/publish-release", "version": "0.1.0"}}}),
    )
}

#[test]
fn json_uses_the_specification_field_names() {
    let value = serde_json::to_value(statement()).unwrap();
    assert_eq!(
        value,
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "acme/publish-release", "digest": {"sha256": DIGEST}}],
            "predicateType": "https://relo.dev/attestation/plugin/v1",
            "predicate": {"manifest": {"plugin": {"name": "acme/publish-release", "version": "0.1.0"}}},
        })
    );
    assert_eq!(statement().subject[0].sha256_digest(), Some(DIGEST));
}

#[test]
fn signed_statement_round_trips_for_both_algorithms() {
    for algorithm in ALGORITHMS {
        let signer = key(algorithm);
        let envelope = statement().sign(&[&signer]).unwrap();
        assert_eq!(envelope.payload_type, IN_TOTO_PAYLOAD_TYPE);
        // The payload is the canonical JSON of the statement.
        let value: serde_json::Value = serde_json::from_slice(&envelope.payload).unwrap();
        assert_eq!(canonical_json(&value).unwrap(), envelope.payload);

        let parsed = Envelope::from_json(envelope.to_json().as_bytes()).unwrap();
        let verified = parsed
            .verify_statement(&[signer.public_key().clone()], 1)
            .unwrap();
        assert_eq!(verified.statement, statement());
        assert_eq!(verified.key_ids, [signer.key_id()]);
    }
}

#[test]
fn a_signed_payload_of_another_type_is_refused() {
    let signer = key(KeyAlgorithm::Ed25519);
    let payload = statement().to_canonical_json().unwrap();
    let envelope = Envelope::sign("application/json", payload, &[&signer]).unwrap();
    let error = envelope
        .verify_statement(&[signer.public_key().clone()], 1)
        .unwrap_err();
    assert!(
        matches!(&error, TrustError::PayloadTypeMismatch { found, .. } if found == "application/json")
    );
    assert_eq!(error.code(), "payload-type-mismatch");
}

#[test]
fn a_signed_statement_of_another_version_or_not_json_is_refused() {
    let signer = key(KeyAlgorithm::Ed25519);
    let trusted = [signer.public_key().clone()];

    let mut v01 = serde_json::to_value(statement()).unwrap();
    v01["_type"] = json!("https://in-toto.io/Statement/v0.1");
    let payload = canonical_json(&v01).unwrap();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, payload, &[&signer]).unwrap();
    let error = envelope.verify_statement(&trusted, 1).unwrap_err();
    assert_eq!(error.code(), "malformed-statement");
    assert!(error.to_string().contains("_type"), "{error}");

    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{not json".to_vec(), &[&signer]).unwrap();
    assert_eq!(
        envelope.verify_statement(&trusted, 1).unwrap_err().code(),
        "malformed-statement"
    );
}

#[test]
fn the_signature_is_checked_before_the_statement() {
    let signer = key(KeyAlgorithm::EcdsaP256);
    let mut envelope = statement().sign(&[&signer]).unwrap();
    envelope.payload = b"{not json".to_vec();
    let error = envelope
        .verify_statement(&[signer.public_key().clone()], 1)
        .unwrap_err();
    assert_eq!(error.code(), "bad-signature");
}

#[test]
fn validation_enforces_the_v1_rules() {
    let signer = key(KeyAlgorithm::Ed25519);
    let cases: Vec<(&str, Statement)> = vec![
        (
            "_type",
            Statement {
                statement_type: "x".into(),
                ..statement()
            },
        ),
        (
            "at least one subject",
            Statement {
                subject: vec![],
                ..statement()
            },
        ),
        (
            "no digest",
            Statement {
                subject: vec![Subject {
                    name: "a".into(),
                    digest: Default::default(),
                }],
                ..statement()
            },
        ),
        (
            "malformed sha256",
            Statement {
                subject: vec![Subject::sha256("a", "abc")],
                ..statement()
            },
        ),
        (
            "malformed sha256",
            Statement {
                subject: vec![Subject::sha256("a", DIGEST.to_uppercase())],
                ..statement()
            },
        ),
        (
            "predicateType",
            Statement {
                predicate_type: String::new(),
                ..statement()
            },
        ),
        (
            "object",
            Statement {
                predicate: json!([1]),
                ..statement()
            },
        ),
    ];
    for (needle, bad) in cases {
        let error = bad.validate().unwrap_err();
        assert_eq!(error.code(), "malformed-statement");
        assert!(error.to_string().contains(needle), "{needle}: {error}");
        assert_eq!(
            bad.sign(&[&signer]).unwrap_err().code(),
            "malformed-statement"
        );
    }
    assert_eq!(statement().statement_type, STATEMENT_TYPE_V1);
    statement().validate().unwrap();
}

#[test]
fn unknown_fields_are_ignored_as_the_specification_asks() {
    let signer = key(KeyAlgorithm::Ed25519);
    let mut value = serde_json::to_value(statement()).unwrap();
    value["subject"][0]["annotations"] = json!({"note": "x"});
    value["future"] = json!(true);
    let envelope = Envelope::sign(
        IN_TOTO_PAYLOAD_TYPE,
        canonical_json(&value).unwrap(),
        &[&signer],
    )
    .unwrap();
    let verified = envelope
        .verify_statement(&[signer.public_key().clone()], 1)
        .unwrap();
    assert_eq!(verified.statement, statement());
}
