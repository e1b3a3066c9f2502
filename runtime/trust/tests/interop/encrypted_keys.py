#!/usr/bin/env python3
"""Checks relo's passphrase-encrypted private keys against an independent implementation
of cosign's format (go-securesystemslib `encrypted` inside an ENCRYPTED SIGSTORE PRIVATE
KEY PEM): scrypt from hashlib, NaCl secretbox from PyNaCl, keys from `cryptography`.

Usage:
  encrypted_keys.py check DIR   (a) decrypts every relo-*.key in DIR with the passphrase
                                in DIR/passphrase and checks that its public key is the
                                one in the matching relo-*.pub, and that a wrong passphrase
                                does not open it; (b) generates an Ed25519 and a P-256 key,
                                writes them encrypted in cosign's format as py-*.key (mode
                                0600) with py-*.pub beside them.
  encrypted_keys.py verify DIR  checks every py-*.sig: a signature over DIR/message by the
                                key in the matching py-*.pub.

Prints one line per check; exits 1 if one fails, 3 if a module is missing.
"""

import base64
import hashlib
import json
import os
import sys
from pathlib import Path

INSTALL = "python3 -m pip install pynacl cryptography"

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox
except ImportError as error:
    print(f"missing Python module {error.name!r}; install with: {INSTALL}", file=sys.stderr)
    sys.exit(3)

LABEL = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_LABEL = "ENCRYPTED COSIGN PRIVATE KEY"
SCRYPT = {"N": 32768, "r": 8, "p": 1}


def scrypt_key(passphrase: bytes, salt: bytes, params: dict) -> bytes:
    return hashlib.scrypt(
        passphrase,
        salt=salt,
        n=params["N"],
        r=params["r"],
        p=params["p"],
        dklen=32,
        maxmem=128 * 1024 * 1024,
    )


def pem_decode(text: str) -> tuple[str, bytes]:
    lines = [line.strip() for line in text.strip().splitlines()]
    begin, end = lines[0], lines[-1]
    if not (begin.startswith("-----BEGIN ") and begin.endswith("-----")):
        raise ValueError(f"not a PEM: {begin!r}")
    label = begin[len("-----BEGIN ") : -len("-----")]
    if end != f"-----END {label}-----":
        raise ValueError(f"PEM footer {end!r} does not match {label!r}")
    return label, base64.b64decode("".join(lines[1:-1]), validate=True)


def pem_encode(label: str, body: bytes) -> str:
    b64 = base64.b64encode(body).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def decrypt(pem: str, passphrase: bytes) -> bytes:
    label, body = pem_decode(pem)
    if label != LABEL:
        raise ValueError(f"label {label!r}, expected {LABEL!r}")
    sealed = json.loads(body)
    kdf, cipher = sealed["kdf"], sealed["cipher"]
    if kdf["name"] != "scrypt" or kdf["params"] != SCRYPT:
        raise ValueError(f"unexpected kdf {kdf['name']} {kdf['params']}")
    if cipher["name"] != "nacl/secretbox":
        raise ValueError(f"unexpected cipher {cipher['name']}")
    salt = base64.b64decode(kdf["salt"], validate=True)
    nonce = base64.b64decode(cipher["nonce"], validate=True)
    if len(salt) != 32 or len(nonce) != 24:
        raise ValueError(f"salt {len(salt)} bytes, nonce {len(nonce)} bytes")
    key = scrypt_key(passphrase, salt, kdf["params"])
    ciphertext = base64.b64decode(sealed["ciphertext"], validate=True)
    return SecretBox(key).decrypt(ciphertext, nonce)


def encrypt(der: bytes, passphrase: bytes, label: str) -> str:
    salt, nonce = os.urandom(32), os.urandom(24)
    ciphertext = SecretBox(scrypt_key(passphrase, salt, SCRYPT)).encrypt(der, nonce).ciphertext
    sealed = {
        "kdf": {"name": "scrypt", "params": SCRYPT, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    # Compact, in the order Go's encoding/json writes it, as cosign does.
    return pem_encode(label, json.dumps(sealed, separators=(",", ":")).encode())


def spki_der(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check(folder: Path) -> bool:
    passphrase = (folder / "passphrase").read_bytes()
    ok = True
    keys = sorted(folder.glob("relo-*.key"))
    if not keys:
        print("FAIL no relo-*.key to check")
        return False
    for path in keys:
        try:
            der = decrypt(path.read_text(), passphrase)
            private = serialization.load_der_private_key(der, password=None)
            public_pem = path.with_suffix(".pub").read_bytes()
            expected = spki_der(serialization.load_pem_public_key(public_pem))
            if spki_der(private.public_key()) != expected:
                raise ValueError("the decrypted key's public key differs from the .pub file")
            try:
                decrypt(path.read_text(), passphrase + b"!")
                raise ValueError("a wrong passphrase opened the key")
            except CryptoError:
                pass
            print(f"ok   {path.name}: decrypted, {type(private).__name__}, public key matches")
        except Exception as error:  # noqa: BLE001 - report every case
            ok = False
            print(f"FAIL {path.name}: {type(error).__name__}: {error}")

    generated = [
        ("ed25519", ed25519.Ed25519PrivateKey.generate(), LABEL),
        ("p256", ec.generate_private_key(ec.SECP256R1()), LABEL),
        ("p256-legacy-label", ec.generate_private_key(ec.SECP256R1()), LEGACY_LABEL),
    ]
    for name, private, label in generated:
        der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        pem = encrypt(der, passphrase, label)
        key_path = folder / f"py-{name}.key"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(pem)
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (folder / f"py-{name}.pub").write_bytes(public_pem)
        print(f"made {key_path.name} ({label})")
    return ok


def verify(folder: Path) -> bool:
    message = (folder / "message").read_bytes()
    ok = True
    signatures = sorted(folder.glob("py-*.sig"))
    if not signatures:
        print("FAIL no py-*.sig to verify")
        return False
    for path in signatures:
        public = serialization.load_pem_public_key(path.with_suffix(".pub").read_bytes())
        signature = path.read_bytes()
        try:
            if isinstance(public, ed25519.Ed25519PublicKey):
                public.verify(signature, message)
            else:
                public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            print(f"ok   {path.name}: verifies")
        except InvalidSignature:
            ok = False
            print(f"FAIL {path.name}: does not verify")
    return ok


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "verify"):
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(sys.argv[2])
    ok = check(folder) if sys.argv[1] == "check" else verify(folder)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
