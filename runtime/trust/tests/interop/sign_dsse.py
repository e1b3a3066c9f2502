#!/usr/bin/env python3
"""Makes DSSE envelopes with independent implementations, for relo to verify.

Usage: sign_dsse.py OUT_DIR SUBJECT_NAME SUBJECT_SHA256

For each of ECDSA P-256 and Ed25519, generates a key with pyca/cryptography, builds an in-toto
Statement v1 about SUBJECT_NAME with in-toto-attestation, and signs it into a DSSE envelope with
securesystemslib. Writes OUT_DIR/<algorithm>/ with `envelope.json`, `public.pem` (SPKI PEM) and
`keyid`. The key id given to securesystemslib, and so written in the signature, is relo's: the
lowercase hex SHA-256 of the SPKI DER (securesystemslib's own default key id is another).

Prints one line per envelope; exits 3 if a module is missing.
"""

import hashlib
import json
import sys
from pathlib import Path

INSTALL = (
    "scripts/test.sh (a virtual environment in target/interop/venv, exported as RELO_PYTHON), "
    "or: python3 -m pip install 'securesystemslib[crypto]' in-toto-attestation"
)

try:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from google.protobuf import json_format
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner, SSlibKey
except ImportError as error:
    print(f"missing Python module {error.name!r}; install with: {INSTALL}", file=sys.stderr)
    sys.exit(3)

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def statement(name: str, sha256: str) -> bytes:
    subject = ResourceDescriptor(name=name, digest={"sha256": sha256}).pb
    made = Statement(
        [subject],
        "https://relo.dev/attestation/interop/v1",
        {"signer": "securesystemslib", "note": "made outside relo"},
    )
    made.validate()
    return json_format.MessageToJson(made.pb).encode()


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    out, name, sha256 = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    payload = statement(name, sha256)
    keys = {
        "p256": (ec.generate_private_key(ec.SECP256R1()), "ecdsa-sha2-nistp256"),
        "ed25519": (Ed25519PrivateKey.generate(), "ed25519"),
    }
    for algorithm, (private, scheme) in keys.items():
        public = private.public_key()
        spki = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        keyid = hashlib.sha256(spki).hexdigest()
        signer = CryptoSigner(private, SSlibKey.from_crypto(public, keyid=keyid, scheme=scheme))

        envelope = Envelope(payload=payload, payload_type=IN_TOTO_PAYLOAD_TYPE, signatures={})
        envelope.sign(signer)
        envelope.verify([signer.public_key], 1)

        case = out / algorithm
        case.mkdir(parents=True)
        (case / "envelope.json").write_text(json.dumps(envelope.to_dict(), indent=2))
        pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        (case / "public.pem").write_bytes(pem)
        (case / "keyid").write_text(keyid)
        print(f"{algorithm}: securesystemslib signed with {scheme} key {keyid[:16]}…")
    return 0


if __name__ == "__main__":
    sys.exit(main())
