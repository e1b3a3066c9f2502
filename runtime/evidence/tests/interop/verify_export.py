#!/usr/bin/env python3
"""Checks relo's exported evidence and SLSA provenance with independent implementations.

Usage: verify_export.py CASES_DIR

Each folder in CASES_DIR holds `envelope.json`, `public.pem` (SPKI PEM of the Ed25519 key
that signed both the envelope and the checkpoint note), `keyid` and `expect`, one of:
  evidence      securesystemslib verifies the envelope, in-toto-attestation validates the
                Statement, and the evidence predicate checks out here, recomputed from
                scratch: every entry's hash (SHA-256 of the JCS preimage) and chain link,
                every RFC 6962 inclusion proof against the checkpoint root, the checkpoint
                note's Ed25519 signature and key id, and the subjects;
  provenance    as above for the Statement, then the predicate parses strictly into
                in-toto-attestation's SLSA provenance v1 protobuf, each resolved dependency
                validates as a ResourceDescriptor, and the required fields are present;
  bad-evidence  the envelope and the Statement are valid, but the evidence check must fail;
  reject        securesystemslib must refuse the envelope.

Prints one line per case; exits 1 if any case went the other way, 3 if a module is missing.
"""

import base64
import hashlib
import json
import sys
from pathlib import Path

INSTALL = (
    "scripts/test.sh (a virtual environment in target/interop/venv, exported as RELO_PYTHON), "
    "or: python3 -m pip install 'securesystemslib[crypto]' in-toto-attestation"
)

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_public_key,
    )
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey
except ImportError as error:
    print(f"missing Python module {error.name!r}; install with: {INSTALL}", file=sys.stderr)
    sys.exit(3)

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
EVIDENCE_TYPE = "https://relo.dev/attestation/evidence/v1"
PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://relo.dev/workflow-run/v1"
GENESIS = "0" * 64


class Bad(Exception):
    """The evidence does not check out."""


def jcs(value) -> bytes:
    # RFC 8785 for what entries hold (strings, integers, objects, arrays, booleans, null):
    # members sorted, no whitespace, strings escaped as JSON requires and no more.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def entry_hash(entry: dict) -> str:
    preimage = {
        k: entry[k]
        for k in ("body", "kind", "prev_hash", "scope", "scope_seq", "seq", "step_id", "time")
    }
    return sha256(jcs(preimage)).hex()


def verify_inclusion(leaf_data: bytes, index: int, size: int, path: list, root: bytes) -> bool:
    # RFC 9162 section 2.1.3.2.
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = sha256(b"\x00" + leaf_data)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def check_note(note: str, public, origin: str):
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise Bad("the checkpoint note has no blank line")
    body += "\n"
    lines = body.split("\n")
    if len(lines) != 4 or lines[0] != origin:
        raise Bad(f"the checkpoint body is not `{origin}`, size, root: {body!r}")
    size, root = int(lines[1]), base64.b64decode(lines[2], validate=True)
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    verified = False
    for line in signatures.splitlines():
        dash, name, blob = line.split(" ")
        if dash != "\u2014":
            raise Bad(f"not a signature line: {line!r}")
        blob = base64.b64decode(blob, validate=True)
        key_id = sha256(name.encode() + b"\n" + b"\x01" + raw)[:4]
        if blob[:4] != key_id:
            continue
        try:
            public.verify(blob[4:], body.encode())
        except InvalidSignature as error:
            raise Bad(f"the checkpoint signature by {name} does not verify") from error
        verified = True
    if not verified:
        raise Bad("the checkpoint note has no signature by the evidence key")
    return size, root


def digest_of(value: str) -> str:
    return value[len("sha256:"):] if value.startswith("sha256:") else value


def expected_subjects(run_id: str, entries: list) -> list:
    plugins, outputs, seen = [], [], set()
    for e in entries:
        body = e["body"]
        if e["kind"] == "step.started" and body.get("digest"):
            d = digest_of(body["digest"])
            if d not in {p[1] for p in plugins}:
                name = body.get("plugin")
                if isinstance(name, dict):
                    name = name.get("name")
                name = name or body.get("plugin_name")
                plugins.append((f"plugin:{name or d}", d))
        elif e["kind"] == "step.finished" and body.get("output_sha256"):
            d = digest_of(body["output_sha256"])
            name = f"output:{e['step_id'] or 'seq-' + str(e['seq'])}"
            if (name, d) not in seen:
                seen.add((name, d))
                outputs.append((name, d))
    subjects = [{"name": n, "digest": {"sha256": d}} for n, d in plugins + outputs]
    if not subjects:
        subjects = [{"name": f"run:{run_id}", "digest": {"sha256": sha256(jcs(entries)).hex()}}]
    return subjects


def check_evidence(statement: dict, public) -> str:
    if statement["predicateType"] != EVIDENCE_TYPE:
        raise Bad(f"predicateType {statement['predicateType']}")
    p = statement["predicate"]
    size, root = check_note(p["checkpoint"]["note"], public, p["origin"])
    if size != p["checkpoint"]["size"] or root.hex() != p["checkpoint"]["root"]:
        raise Bad("the predicate's checkpoint is not the signed one")
    entries, proofs = p["entries"], p["proofs"]
    if len(entries) != len(proofs) or not entries:
        raise Bad("not one proof per entry")
    prev = GENESIS
    for k, (e, proof) in enumerate(zip(entries, proofs)):
        if e["scope"] != p["run_id"] or e["scope_seq"] != k + 1:
            raise Bad(f"entry {e['seq']} is out of place in run {p['run_id']}")
        h = entry_hash(e)
        if h != e["hash"]:
            raise Bad(f"entry {e['seq']} ({e['kind']}) does not hash to its stored hash")
        if e["prev_hash"] != prev:
            raise Bad(f"entry {e['seq']} does not link to the previous entry of its run")
        prev = h
        path = [bytes.fromhex(x) for x in proof["path"]]
        if proof["seq"] != e["seq"] or proof["tree_size"] != size or not verify_inclusion(
            bytes.fromhex(h), e["seq"] - 1, size, path, root
        ):
            raise Bad(f"entry {e['seq']}'s inclusion proof does not lead to the checkpoint root")
    if statement["subject"] != expected_subjects(p["run_id"], entries):
        raise Bad("the subjects are not the digests the entries name")
    return (
        f"{len(entries)} entries of {p['run_id']} hashed, chained and proved in the "
        f"Ed25519-signed checkpoint of size {size}; {len(statement['subject'])} subjects match"
    )


def check_provenance(statement: dict) -> str:
    if statement["predicateType"] != PROVENANCE_TYPE:
        raise Bad(f"predicateType {statement['predicateType']}")
    proto = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    definition, details = proto.build_definition, proto.run_details
    if definition.build_type != BUILD_TYPE:
        raise Bad(f"buildType {definition.build_type}")
    if not details.builder.id:
        raise Bad("no builder id")
    for dependency in definition.resolved_dependencies:
        ResourceDescriptor.copy_from_pb(dependency).validate()
        if not dependency.uri.startswith("relo-plugin:") or "sha256" not in dependency.digest:
            raise Bad(f"resolved dependency {dependency.uri!r}")
    metadata = details.metadata
    if not metadata.invocation_id or not metadata.HasField("started_on"):
        raise Bad("no invocationId or startedOn")
    if metadata.finished_on.ToNanoseconds() < metadata.started_on.ToNanoseconds():
        raise Bad("finishedOn is before startedOn")
    return (
        f"SLSA provenance v1 parsed by in-toto-attestation's protobuf "
        f"({len(definition.resolved_dependencies)} resolvedDependencies, builder "
        f"{details.builder.id}, {metadata.started_on.ToJsonString()} to "
        f"{metadata.finished_on.ToJsonString()})"
    )


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
        proto = json_format.Parse(envelope.payload, statement_pb2.Statement())
        Statement.copy_from_pb(proto).validate()
    except (ValueError, json_format.ParseError) as error:
        print(f"{case.name}: in-toto-attestation REJECTED the Statement: {error}")
        return False
    statement = json.loads(envelope.payload)
    prefix = (
        f"{case.name}: securesystemslib verified the {key.scheme} signature; "
        f"in-toto-attestation validated the Statement ({len(proto.subject)} subjects)"
    )
    try:
        if expect == "provenance":
            detail = check_provenance(statement)
        else:
            detail = check_evidence(statement, public)
    except (Bad, ValueError, KeyError, TypeError, json_format.ParseError) as error:
        if expect == "bad-evidence":
            print(f"{prefix}; the evidence was refused, as expected: {error}")
            return True
        print(f"{prefix}; the predicate FAILED: {error}")
        return False
    if expect == "bad-evidence":
        print(f"{prefix}; tampered evidence was ACCEPTED")
        return False
    print(f"{prefix}; {detail}")
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
