#!/usr/bin/env node
// Makes key-signed Sigstore bundles with independent implementations, for relo to read.
//
// Usage: NODE_PATH=<node_modules> node make_bundle.mjs OUT_DIR SUBJECT_NAME SUBJECT_SHA256
//
// For each of ECDSA P-256 and Ed25519, generates a key with Node's crypto, signs an in-toto
// Statement v1 about SUBJECT_NAME over the DSSE pre-authentication encoding of
// @sigstore/core, builds the bundle with @sigstore/bundle (`toDSSEBundle`, `bundleToJSON`,
// as sigstore-js does for a key-signed bundle) and checks it with @sigstore/verify. Writes
// OUT_DIR/<algorithm>/ with `bundle.json`, `public.pem` (SPKI PEM) and `keyid`; the key hint
// is relo's key id, the lowercase hex SHA-256 of the SPKI DER.
//
// Prints one line per bundle; exits 3 if a module is missing.

import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const INSTALL =
  'scripts/test.sh (npm install --prefix target/interop/node @sigstore/verify@4 @sigstore/bundle, ' +
  'then NODE_PATH=target/interop/node/node_modules)';
const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

// ES modules ignore NODE_PATH; CommonJS resolution (which these packages use) honours it.
const require = createRequire(import.meta.url);
let bundles;
let core;
let sigstore;
try {
  bundles = require('@sigstore/bundle');
  core = require('@sigstore/core');
  sigstore = require('@sigstore/verify');
} catch (error) {
  if (error.code !== 'MODULE_NOT_FOUND') throw error;
  console.error(`missing npm package (${error.message.split('\n')[0]}); install with: ${INSTALL}`);
  process.exit(3);
}

function main() {
  if (process.argv.length !== 5) {
    console.error('usage: make_bundle.mjs OUT_DIR SUBJECT_NAME SUBJECT_SHA256');
    return 2;
  }
  const [out, name, sha256] = process.argv.slice(2);
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name, digest: { sha256 } }],
    predicateType: 'https://relo.dev/attestation/interop/v1',
    predicate: { signer: '@sigstore/bundle', note: 'made outside relo' },
  };
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  const pae = core.dsse.preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload);

  const keys = {
    p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    ed25519: generateKeyPairSync('ed25519'),
  };
  for (const [algorithm, { publicKey, privateKey }] of Object.entries(keys)) {
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const keyid = createHash('sha256').update(der).digest('hex');
    // ECDSA: DER signature over SHA-256; Ed25519: over the message itself.
    const signature = sign(algorithm === 'p256' ? 'sha256' : null, pae, privateKey);
    const bundle = bundles.toDSSEBundle({
      artifact: payload,
      artifactType: IN_TOTO_PAYLOAD_TYPE,
      signature,
      keyHint: keyid,
    });

    // The library's own verifier accepts what it built, with the key alone.
    const root = {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [],
      certificateAuthorities: [],
      ctlogs: [],
      timestampAuthorities: [],
    };
    const trust = sigstore.toTrustMaterial(root, { [keyid]: { rawBytes: der, keyDetails: 0 } });
    const verifier = new sigstore.Verifier(trust, {
      tlogThreshold: 0,
      ctlogThreshold: 0,
      timestampThreshold: 0,
    });
    verifier.verify(sigstore.toSignedEntity(bundle));

    const dir = join(out, algorithm);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'bundle.json'), JSON.stringify(bundles.bundleToJSON(bundle), null, 2));
    writeFileSync(join(dir, 'public.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'keyid'), keyid);
    console.log(`${algorithm}: @sigstore/bundle built a bundle signed by key ${keyid.slice(0, 16)}…`);
  }
  return 0;
}

process.exit(main());
