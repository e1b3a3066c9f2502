#!/usr/bin/env python3
"""Checks relo's DSSE envelopes and in-toto Statements with independent implementations.

Usage: verify_dsse.py CASES_DIR

Each folder in CASES_DIR holds `envelope.json`, `public.pem` (SPKI PEM), `keyid` and
`expect`, one of:
  valid              securesystemslib must verify the envelope with the key, and
                     in-toto-attestation must validate the Statement in its payload;
  reject             securesystemslib must refuse the envelope (it was tampered with);
  invalid-statement  the signature verifies, but in-toto-attestation must refuse the
                     Statement.
The key id is also recomputed here (SHA-256 of the SPKI DER) and must equal `keyid`.

Prints one line per case; exits 1 if any case went the other way, 3 if a module is missing.
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
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_public_key,
    )
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey
except ImportError as error:
    print(f"missing Python module {error.name!r}; install with: {INSTALL}", file=sys.stderr)
    sys.exit(3)

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def validate_statement(payload: bytes) -> statement_pb2.Statement:
    proto = json_format.Parse(payload, statement_pb2.Statement())
    Statement.copy_from_pb(proto).validate()
    return proto


def check(case: Path) -> bool:
    expect = (case / "expect").read_text().strip()
    keyid = (case / "keyid").read_text().strip()
    public = load_pem_public_key((case / "public.pem").read_bytes())

    spki = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if hashlib.sha256(spki).hexdigest() != keyid:
        print(f"{case.name}: key id {keyid} is not the SHA-256 of the SPKI DER")
        return False

    key = SSlibKey.from_crypto(public, keyid=keyid)
    envelope = Envelope.from_dict(json.loads((case / "envelope.json").read_text()))
    try:
        envelope.verify([key], 1)
    except VerificationError as error:
        if expect == "reject":
            print(f"{case.name}: securesystemslib rejected the envelope, as expected ({error})")
            return True
        print(f"{case.name}: securesystemslib REJECTED the envelope: {error}")
        return False
    if expect == "reject":
        print(f"{case.name}: securesystemslib ACCEPTED a tampered envelope")
        return False

    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        print(f"{case.name}: payloadType is {envelope.payload_type!r}")
        return False
    try:
        proto = validate_statement(envelope.payload)
    except (ValueError, json_format.ParseError) as error:
        if expect == "invalid-statement":
            print(
                f"{case.name}: securesystemslib verified the signature; in-toto-attestation "
                f"rejected the Statement, as expected ({error})"
            )
            return True
        print(f"{case.name}: in-toto-attestation REJECTED the Statement: {error}")
        return False
    if expect == "invalid-statement":
        print(f"{case.name}: in-toto-attestation ACCEPTED an invalid Statement")
        return False

    print(
        f"{case.name}: securesystemslib verified the {key.scheme} signature by key "
        f"{keyid[:16]}…; in-toto-attestation validated the Statement "
        f"({len(proto.subject)} subject, predicateType {proto.predicate_type})"
    )
    return True


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    cases = sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir())
    if not cases:
        print("no cases", file=sys.stderr)
        return 2
    results = [check(case) for case in cases]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
