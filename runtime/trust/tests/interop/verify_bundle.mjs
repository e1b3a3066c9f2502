#!/usr/bin/env node
// Checks relo's Sigstore bundles with an independent implementation: npm @sigstore/verify.
//
// Usage: NODE_PATH=<node_modules> node verify_bundle.mjs CASES_DIR
//
// Each folder in CASES_DIR holds `bundle.json` (a Sigstore bundle v0.3 of a DSSE envelope
// around an in-toto Statement), `public.pem` (the signer's SPKI PEM), `digest` (the lowercase
// hex SHA-256 of the artifact the verifier holds) and `expect`, one of:
//   valid         @sigstore/verify must verify the bundle with the key alone (no
//                 transparency log, certificate or timestamp: thresholds 0), and the
//                 Statement's subject must carry `digest`;
//   reject        @sigstore/verify must refuse the bundle (it was tampered with);
//   wrong-digest  the signature verifies, but no subject carries `digest`: the artifact is
//                 another one. @sigstore/verify does not compare subjects with the artifact,
//                 so this script does, as any caller must.
//
// The bundle's public-key hint is looked up among the trusted keys; only the case's key is
// trusted, under the hint relo writes (the key id, hex SHA-256 of the SPKI DER).
//
// Prints one line per case; exits 1 if any case went the other way, 3 if a module is missing.

import { createHash, createPublicKey } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const INSTALL =
  'scripts/test.sh (npm install --prefix target/interop/node @sigstore/verify@4 @sigstore/bundle, ' +
  'then NODE_PATH=target/interop/node/node_modules)';
const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

// ES modules ignore NODE_PATH; CommonJS resolution (which these packages use) honours it.
const require = createRequire(import.meta.url);
let sigstore;
let bundles;
try {
  sigstore = require('@sigstore/verify');
  bundles = require('@sigstore/bundle');
} catch (error) {
  if (error.code !== 'MODULE_NOT_FOUND') throw error;
  console.error(`missing npm package (${error.message.split('\n')[0]}); install with: ${INSTALL}`);
  process.exit(3);
}

function read(caseDir, name) {
  return readFileSync(join(caseDir, name), 'utf8');
}

// A verifier that trusts exactly one public key, under `keyId`, and requires no
// transparency-log entry, SCT or timestamp: key-based verification.
function verifierFor(publicPem, keyId) {
  const der = createPublicKey(publicPem).export({ type: 'spki', format: 'der' });
  const computed = createHash('sha256').update(der).digest('hex');
  if (computed !== keyId) {
    throw new Error(`key id ${keyId} is not the SHA-256 of the SPKI DER (${computed})`);
  }
  const root = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
  // keyDetails is not read for key-based verification: the key type comes from the DER.
  const keys = { [keyId]: { rawBytes: der, keyDetails: 0 } };
  const trust = sigstore.toTrustMaterial(root, keys);
  return new sigstore.Verifier(trust, {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
}

function check(caseDir, name) {
  const expect = read(caseDir, 'expect').trim();
  const digest = read(caseDir, 'digest').trim();
  const json = JSON.parse(read(caseDir, 'bundle.json'));
  const hint = json.verificationMaterial?.publicKey?.hint ?? '';
  const verifier = verifierFor(read(caseDir, 'public.pem'), read(caseDir, 'keyid').trim());

  let bundle;
  let signer;
  try {
    bundle = bundles.bundleFromJSON(json);
    signer = verifier.verify(sigstore.toSignedEntity(bundle));
  } catch (error) {
    if (expect === 'reject') {
      console.log(`${name}: @sigstore/verify rejected the bundle, as expected (${error.message})`);
      return true;
    }
    console.log(`${name}: @sigstore/verify REJECTED the bundle: ${error.code ?? ''} ${error.message}`);
    return false;
  }
  if (expect === 'reject') {
    console.log(`${name}: @sigstore/verify ACCEPTED a tampered bundle`);
    return false;
  }

  // The library verified the signature over the envelope; what it is about is ours to check.
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    console.log(`${name}: payloadType is ${JSON.stringify(envelope.payloadType)}`);
    return false;
  }
  const statement = JSON.parse(envelope.payload.toString('utf8'));
  if (statement._type !== 'https://in-toto.io/Statement/v1') {
    console.log(`${name}: _type is ${JSON.stringify(statement._type)}`);
    return false;
  }
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  const matches = subjects.some((subject) => subject?.digest?.sha256 === digest);
  if (!matches) {
    if (expect === 'wrong-digest') {
      console.log(
        `${name}: @sigstore/verify verified the signature; no subject has the artifact's ` +
          `sha256 ${digest.slice(0, 16)}…, refused as expected`,
      );
      return true;
    }
    console.log(`${name}: no subject has the artifact's sha256 ${digest}`);
    return false;
  }
  if (expect === 'wrong-digest') {
    console.log(`${name}: a subject has a digest it should not have`);
    return false;
  }
  console.log(
    `${name}: @sigstore/verify verified the ${signer.key.asymmetricKeyType} signature by ` +
      `hint ${hint.slice(0, 16)}…; subject sha256 ${digest.slice(0, 16)}… matches ` +
      `(predicateType ${statement.predicateType})`,
  );
  return true;
}

function main() {
  if (process.argv.length !== 3) {
    console.error('usage: verify_bundle.mjs CASES_DIR');
    return 2;
  }
  const dir = process.argv[2];
  const cases = readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory())
    .sort();
  if (cases.length === 0) {
    console.error('no cases');
    return 2;
  }
  let ok = true;
  for (const name of cases) {
    try {
      ok = check(join(dir, name), name) && ok;
    } catch (error) {
      console.log(`${name}: ${error.message}`);
      ok = false;
    }
  }
  return ok ? 0 : 1;
}

process.exit(main());
