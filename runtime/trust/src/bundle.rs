//! Sigstore bundles (v0.3) that carry a key-signed DSSE envelope.

use serde::{Deserialize as _, Serialize};
use serde_json::{Map, Value};

use crate::{Envelope, TrustError};

/// The media type of a Sigstore bundle v0.3, the one relo writes.
pub const SIGSTORE_BUNDLE_V03_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The older spelling of the same v0.3 media type, still accepted when reading.
const SIGSTORE_BUNDLE_V03_LEGACY_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.bundle+json;version=0.3";

/// A Sigstore bundle v0.3 whose signer is a public key named by a hint (no certificate,
/// no transparency-log entry, no timestamp) and whose content is a DSSE envelope.
///
/// This is the form Sigstore clients verify with a public key they were given (for
/// example `@sigstore/verify` with its log and timestamp thresholds at 0):
///
/// ```json
/// {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
///  "verificationMaterial": {"publicKey": {"hint": "<key id>"}, "tlogEntries": []},
///  "dsseEnvelope": {"payload": "<base64>", "payloadType": "application/vnd.in-toto+json",
///                   "signatures": [{"sig": "<base64>", "keyid": "<key id>"}]}}
/// ```
///
/// The bundle adds no cryptography: verify [`SigstoreBundle::envelope`] with
/// [`Envelope::verify`] or [`Envelope::verify_statement`]. The hint, like the
/// signature's `keyid`, is not signed; relo sets both to the signing key's
/// [id](crate::PublicKey::key_id) and trusts neither on its own.
///
/// ```
/// use relo_trust::{KeyAlgorithm, PrivateKey, SigstoreBundle, Statement, Subject};
///
/// let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
/// let statement = Statement::new(
///     vec![Subject::sha256("app.tar.gz", "a".repeat(64))],
///     "https://relo.dev/attestation/plugin/v1",
///     serde_json::json!({}),
/// );
/// let envelope = statement.sign(&[&key])?;
/// let json = SigstoreBundle::from_envelope(&envelope, key.key_id()).to_json();
///
/// let bundle = SigstoreBundle::from_json(json.as_bytes())?;
/// assert_eq!(bundle.hint(), key.key_id());
/// let verified = bundle.envelope().verify_statement(&[key.public_key().clone()], 1)?;
/// assert_eq!(verified.statement, statement);
/// # Ok::<(), relo_trust::TrustError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigstoreBundle {
    envelope: Envelope,
    hint: String,
}

impl SigstoreBundle {
    /// Wraps a DSSE envelope, naming its signer's key by `hint` (relo uses the key id).
    ///
    /// A Sigstore bundle carries exactly one signature: Sigstore clients, and
    /// [`SigstoreBundle::from_json`], refuse a bundle of an envelope with none or several,
    /// so wrap only an envelope signed by one key.
    pub fn from_envelope(envelope: &Envelope, hint: &str) -> Self {
        Self {
            envelope: envelope.clone(),
            hint: hint.to_owned(),
        }
    }

    /// The DSSE envelope, to verify with [`Envelope::verify`] or
    /// [`Envelope::verify_statement`].
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The public-key hint of the verification material (unsigned; relo writes the key id).
    pub fn hint(&self) -> &str {
        &self.hint
    }

    /// The DSSE envelope, taking the bundle apart.
    pub fn into_envelope(self) -> Envelope {
        self.envelope
    }

    /// The JSON form (protobuf JSON field names), indented.
    pub fn to_json(&self) -> String {
        let wire = WireBundle {
            media_type: SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
            verification_material: WireMaterial {
                public_key: WireHint { hint: &self.hint },
                tlog_entries: &[],
            },
            dsse_envelope: &self.envelope,
        };
        serde_json::to_string_pretty(&wire).expect("a bundle has only strings and lists")
    }

    /// Reads the JSON form, strictly: the v0.3 media type (either spelling), a public-key
    /// hint as the verification material with no transparency-log entries or timestamps
    /// (relo would not check them), a `dsseEnvelope` with exactly one signature, and no
    /// unknown fields. Anything else is [`TrustError::MalformedAttestation`], saying what
    /// is wrong.
    pub fn from_json(json: &[u8]) -> Result<Self, TrustError> {
        let value: Value = serde_json::from_slice(json)
            .map_err(|e| malformed(format!("a Sigstore bundle must be JSON: {e}")))?;
        let Value::Object(bundle) = value else {
            return Err(malformed("a Sigstore bundle must be a JSON object"));
        };
        only_fields(
            &bundle,
            "the bundle",
            &[
                "mediaType",
                "verificationMaterial",
                "dsseEnvelope",
                "messageSignature",
            ],
        )?;

        match bundle.get("mediaType") {
            None => return Err(malformed("the bundle has no mediaType")),
            Some(Value::String(media_type))
                if media_type == SIGSTORE_BUNDLE_V03_MEDIA_TYPE
                    || media_type == SIGSTORE_BUNDLE_V03_LEGACY_MEDIA_TYPE => {}
            Some(other) => {
                return Err(malformed(format!(
                    "mediaType is {other}, expected \"{SIGSTORE_BUNDLE_V03_MEDIA_TYPE}\""
                )));
            }
        }

        let envelope = match (bundle.get("dsseEnvelope"), bundle.get("messageSignature")) {
            (Some(_), Some(_)) => {
                return Err(malformed(
                    "the bundle holds both a dsseEnvelope and a messageSignature; it may hold one",
                ));
            }
            (None, Some(_)) => {
                return Err(malformed(
                    "the bundle holds a messageSignature (a signature over an artifact digest), \
                     not a dsseEnvelope; relo reads only bundles of a DSSE envelope",
                ));
            }
            (None, None) => return Err(malformed("the bundle has no dsseEnvelope")),
            (Some(envelope), None) => {
                let envelope = Envelope::deserialize(envelope)
                    .map_err(|e| malformed(format!("dsseEnvelope: {e}")))?;
                check_one_signature(&envelope)?;
                envelope
            }
        };

        let hint = read_material(bundle.get("verificationMaterial"))?;
        Ok(Self { envelope, hint })
    }
}

/// Checks `verificationMaterial` and returns its public-key hint.
fn read_material(material: Option<&Value>) -> Result<String, TrustError> {
    let Some(material) = material else {
        return Err(malformed("the bundle has no verificationMaterial"));
    };
    let Value::Object(material) = material else {
        return Err(malformed("verificationMaterial must be a JSON object"));
    };
    only_fields(
        material,
        "verificationMaterial",
        &[
            "publicKey",
            "tlogEntries",
            "timestampVerificationData",
            "certificate",
            "x509CertificateChain",
        ],
    )?;
    if let Some(which) = ["certificate", "x509CertificateChain"]
        .into_iter()
        .find(|field| material.contains_key(*field))
    {
        return Err(malformed(format!(
            "verificationMaterial names its signer by an X.509 {which} (keyless signing); \
             relo reads only key-signed bundles, whose verificationMaterial is a publicKey hint"
        )));
    }

    match material.get("tlogEntries") {
        None => {}
        Some(Value::Array(entries)) if entries.is_empty() => {}
        Some(Value::Array(entries)) => {
            return Err(malformed(format!(
                "verificationMaterial has {} transparency-log entries; relo verifies \
                 key-signed bundles by their signature alone and would not check them",
                entries.len()
            )));
        }
        Some(_) => return Err(malformed("verificationMaterial.tlogEntries must be a list")),
    }

    match material.get("timestampVerificationData") {
        None => {}
        Some(Value::Object(data)) => {
            only_fields(
                data,
                "verificationMaterial.timestampVerificationData",
                &["rfc3161Timestamps"],
            )?;
            match data.get("rfc3161Timestamps") {
                None => {}
                Some(Value::Array(stamps)) if stamps.is_empty() => {}
                Some(Value::Array(stamps)) => {
                    return Err(malformed(format!(
                        "verificationMaterial has {} RFC 3161 timestamps; relo verifies \
                         key-signed bundles by their signature alone and would not check them",
                        stamps.len()
                    )));
                }
                Some(_) => {
                    return Err(malformed(
                        "verificationMaterial.timestampVerificationData.rfc3161Timestamps \
                         must be a list",
                    ));
                }
            }
        }
        Some(_) => {
            return Err(malformed(
                "verificationMaterial.timestampVerificationData must be a JSON object",
            ));
        }
    }

    let Some(public_key) = material.get("publicKey") else {
        return Err(malformed(
            "verificationMaterial has no publicKey; relo reads only key-signed bundles",
        ));
    };
    let Value::Object(public_key) = public_key else {
        return Err(malformed(
            "verificationMaterial.publicKey must be a JSON object",
        ));
    };
    only_fields(public_key, "verificationMaterial.publicKey", &["hint"])?;
    match public_key.get("hint") {
        // Protobuf JSON leaves out an empty string.
        None => Ok(String::new()),
        Some(Value::String(hint)) => Ok(hint.clone()),
        Some(_) => Err(malformed(
            "verificationMaterial.publicKey.hint must be a string",
        )),
    }
}

fn check_one_signature(envelope: &Envelope) -> Result<(), TrustError> {
    match envelope.signatures.len() {
        1 => Ok(()),
        n => Err(malformed(format!(
            "the DSSE envelope has {n} signatures; a Sigstore bundle carries exactly one"
        ))),
    }
}

fn only_fields(object: &Map<String, Value>, what: &str, known: &[&str]) -> Result<(), TrustError> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(unknown) => Err(malformed(format!(
            "{what} has an unknown field `{unknown}`"
        ))),
        None => Ok(()),
    }
}

fn malformed(reason: impl Into<String>) -> TrustError {
    TrustError::MalformedAttestation {
        reason: reason.into(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireBundle<'a> {
    media_type: &'a str,
    verification_material: WireMaterial<'a>,
    dsse_envelope: &'a Envelope,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireMaterial<'a> {
    public_key: WireHint<'a>,
    tlog_entries: &'a [Value],
}

#[derive(Serialize)]
struct WireHint<'a> {
    hint: &'a str,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{KeyAlgorithm, PrivateKey, Statement, Subject};

    fn signed(algorithm: KeyAlgorithm) -> (PrivateKey, Envelope) {
        let key = PrivateKey::generate(algorithm);
        let statement = Statement::new(
            vec![Subject::sha256("app.tar.gz", "b".repeat(64))],
            "https://relo.dev/attestation/plugin/v1",
            json!({"plugin": {"name": "acme/publish-release"}}),
        );
        let envelope = statement.sign(&[&key]).unwrap();
        (key, envelope)
    }

    fn bundle_json() -> (PrivateKey, Value) {
        let (key, envelope) = signed(KeyAlgorithm::EcdsaP256);
        let bundle = SigstoreBundle::from_envelope(&envelope, key.key_id());
        let value = serde_json::from_str(&bundle.to_json()).unwrap();
        (key, value)
    }

    fn refusal(value: &Value) -> String {
        let error = SigstoreBundle::from_json(value.to_string().as_bytes()).unwrap_err();
        assert_eq!(error.code(), "malformed-attestation", "{error}");
        error.to_string()
    }

    #[test]
    fn writes_the_v03_key_based_shape() {
        let (key, envelope) = signed(KeyAlgorithm::Ed25519);
        let bundle = SigstoreBundle::from_envelope(&envelope, key.key_id());
        let value: Value = serde_json::from_str(&bundle.to_json()).unwrap();
        assert_eq!(
            value,
            json!({
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {
                    "publicKey": {"hint": key.key_id()},
                    "tlogEntries": [],
                },
                "dsseEnvelope": serde_json::to_value(&envelope).unwrap(),
            })
        );
        assert_eq!(
            value["dsseEnvelope"]["signatures"][0]["keyid"],
            key.key_id()
        );
    }

    #[test]
    fn reads_back_what_it_writes_and_the_envelope_verifies() {
        for algorithm in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let (key, envelope) = signed(algorithm);
            let bundle = SigstoreBundle::from_envelope(&envelope, key.key_id());
            let read = SigstoreBundle::from_json(bundle.to_json().as_bytes()).unwrap();
            assert_eq!(read, bundle);
            assert_eq!(read.hint(), key.key_id());
            assert_eq!(read.envelope(), &envelope);
            let trusted = [key.public_key().clone()];
            read.envelope().verify_statement(&trusted, 1).unwrap();

            let mut tampered = read.into_envelope();
            tampered.payload[3] ^= 1;
            let error = tampered.verify(&trusted, 1).unwrap_err();
            assert_eq!(error.code(), "bad-signature");
        }
    }

    #[test]
    fn reads_the_shape_sigstore_clients_write() {
        // Protobuf JSON leaves out empty lists, and sigstore-js writes an empty
        // timestampVerificationData; the older media type spelling names the same version.
        let (key, mut value) = bundle_json();
        value["verificationMaterial"] = json!({
            "publicKey": {"hint": key.key_id()},
            "timestampVerificationData": {},
        });
        SigstoreBundle::from_json(value.to_string().as_bytes()).unwrap();
        value["verificationMaterial"]["timestampVerificationData"] =
            json!({"rfc3161Timestamps": []});
        value["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.3");
        SigstoreBundle::from_json(value.to_string().as_bytes()).unwrap();
        value["verificationMaterial"]["publicKey"] = json!({});
        let bundle = SigstoreBundle::from_json(value.to_string().as_bytes()).unwrap();
        assert_eq!(bundle.hint(), "");
    }

    #[test]
    fn refuses_other_media_types() {
        let (_, mut value) = bundle_json();
        for media_type in [
            json!("application/vnd.dev.sigstore.bundle+json;version=0.2"),
            json!("application/vnd.dev.sigstore.bundle.v0.4+json"),
            json!("application/vnd.in-toto+json"),
            json!(3),
        ] {
            value["mediaType"] = media_type.clone();
            let message = refusal(&value);
            assert!(message.contains("mediaType is"), "{message}");
            assert!(message.contains(&media_type.to_string()), "{message}");
        }
        value.as_object_mut().unwrap().remove("mediaType");
        assert!(refusal(&value).contains("no mediaType"));
    }

    #[test]
    fn refuses_a_bundle_without_a_dsse_envelope() {
        let (_, mut value) = bundle_json();
        let envelope = value
            .as_object_mut()
            .unwrap()
            .remove("dsseEnvelope")
            .unwrap();
        assert!(refusal(&value).contains("no dsseEnvelope"));

        let message_signature = json!({
            "messageDigest": {"algorithm": "SHA2_256", "digest": "AAAA"},
            "signature": "AAAA",
        });
        value["messageSignature"] = message_signature;
        let message = refusal(&value);
        assert!(message.contains("holds a messageSignature"), "{message}");

        value["dsseEnvelope"] = envelope;
        assert!(refusal(&value).contains("both a dsseEnvelope and a messageSignature"));
    }

    #[test]
    fn refuses_keyless_and_logged_bundles() {
        let (_, value) = bundle_json();
        for (field, contents, expected) in [
            (
                "certificate",
                json!({"rawBytes": "AAAA"}),
                "X.509 certificate",
            ),
            (
                "x509CertificateChain",
                json!({"certificates": [{"rawBytes": "AAAA"}]}),
                "X.509 x509CertificateChain",
            ),
            (
                "tlogEntries",
                json!([{"logIndex": "1"}]),
                "1 transparency-log entries",
            ),
            ("tlogEntries", json!({}), "tlogEntries must be a list"),
            (
                "timestampVerificationData",
                json!({"rfc3161Timestamps": [{"signedTimestamp": "AAAA"}]}),
                "1 RFC 3161 timestamps",
            ),
        ] {
            let mut changed = value.clone();
            changed["verificationMaterial"][field] = contents;
            let message = refusal(&changed);
            assert!(message.contains(expected), "{field}: {message}");
        }

        let mut keyless = value.clone();
        keyless["verificationMaterial"]
            .as_object_mut()
            .unwrap()
            .remove("publicKey");
        assert!(refusal(&keyless).contains("no publicKey"));
        let mut no_material = value;
        no_material
            .as_object_mut()
            .unwrap()
            .remove("verificationMaterial");
        assert!(refusal(&no_material).contains("no verificationMaterial"));
    }

    #[test]
    fn refuses_unknown_fields_and_bad_envelopes() {
        let (_, value) = bundle_json();
        let mut extra = value.clone();
        extra["signature"] = json!("x");
        assert!(refusal(&extra).contains("the bundle has an unknown field `signature`"));
        let mut extra = value.clone();
        extra["verificationMaterial"]["publicKey"]["rawBytes"] = json!("AAAA");
        assert!(refusal(&extra).contains("publicKey has an unknown field `rawBytes`"));

        let mut bad_base64 = value.clone();
        bad_base64["dsseEnvelope"]["payload"] = json!("not base64!");
        assert!(refusal(&bad_base64).contains("dsseEnvelope: invalid base64"));

        let mut two = value.clone();
        let signature = two["dsseEnvelope"]["signatures"][0].clone();
        two["dsseEnvelope"]["signatures"] = json!([signature.clone(), signature]);
        assert!(refusal(&two).contains("2 signatures"));
        let mut none = value;
        none["dsseEnvelope"]["signatures"] = json!([]);
        assert!(refusal(&none).contains("0 signatures"));

        assert!(refusal(&json!([1])).contains("JSON object"));
        let error = SigstoreBundle::from_json(b"{").unwrap_err();
        assert_eq!(error.code(), "malformed-attestation");
        assert!(error.to_string().contains("must be JSON"), "{error}");
    }

    #[test]
    fn a_bundle_of_other_than_one_signature_does_not_read_back() {
        let (key, mut envelope) = signed(KeyAlgorithm::EcdsaP256);
        let other = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let two = Envelope::sign(
            envelope.payload_type.clone(),
            envelope.payload.clone(),
            &[&key, &other],
        )
        .unwrap();
        let json = SigstoreBundle::from_envelope(&two, key.key_id()).to_json();
        let error = SigstoreBundle::from_json(json.as_bytes()).unwrap_err();
        assert_eq!(error.code(), "malformed-attestation");
        envelope.signatures.clear();
        let json = SigstoreBundle::from_envelope(&envelope, key.key_id()).to_json();
        assert!(SigstoreBundle::from_json(json.as_bytes()).is_err());
    }
}
