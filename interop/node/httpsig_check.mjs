#!/usr/bin/env node
// RFC 9421 interoperability check with the npm package `http-message-signatures`.
//
//   node httpsig_check.mjs verify CASE.json       verify a request signed elsewhere (by AIMS)
//   node httpsig_check.mjs sign CASE.json         sign a request for another verifier (AIMS)
//   node httpsig_check.mjs components CASE.json   the library's value of each derived component
//
// CASE.json has the shapes described in ../python/httpsig_check.py; here the public key
// is taken from `public_jwk` (and checked to be the key of `public_key_pem`).
//
// `verify` uses the library's httpbis.verifyMessage with createVerifier: required
// parameters `required_params` (default `created`, `keyid`, `alg`), required fields
// `covered`, the key for `keyid` (any signature when `keyid` is null), and a strict
// `true` result (the library answers `null` when no key matched). The library has no
// Content-Digest support, so this script checks the body against the (signed)
// Content-Digest itself with node:crypto. `sign` uses httpbis.signMessage with
// createSigner; Content-Digest (sha-256) is added first by this script when covered.
//
// Prints one JSON object on stdout. Exit codes: 0 verified or signed, 1 rejected or
// failed (`error` says why), 2 bad usage, 3 the package is not installed
// (`npm ci --prefix interop/node`).

import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_MISSING = 3;
const PACKAGE = 'http-message-signatures';

/** Field lines [[name, value], ...] as the library's header object (repeats as arrays). */
function headerObject(pairs) {
  const headers = {};
  for (const [name, value] of pairs) {
    const key = name.toLowerCase();
    if (key in headers) {
      headers[key] = [].concat(headers[key], value);
    } else {
      headers[key] = value;
    }
  }
  return headers;
}

/** The library's header object back to field lines. */
function headerPairs(headers) {
  const pairs = [];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of [].concat(value)) {
      pairs.push([name, String(v)]);
    }
  }
  return pairs;
}

const DIGESTS = { 'sha-256': 'sha256', 'sha-512': 'sha512' };

/** Checks every member of a Content-Digest value (RFC 9530) against the body. */
function checkContentDigest(value, body) {
  const members = [].concat(value).join(', ').split(',').map((m) => m.trim()).filter(Boolean);
  if (members.length === 0) {
    throw new Error('empty Content-Digest');
  }
  for (const member of members) {
    const m = /^([a-z0-9-]+)=:([A-Za-z0-9+/=]*):$/.exec(member);
    if (!m || !(m[1] in DIGESTS)) {
      throw new Error(`unsupported Content-Digest member ${member}`);
    }
    const expected = createHash(DIGESTS[m[1]]).update(body).digest('base64');
    if (expected !== m[2]) {
      throw new Error(`Content-Digest ${m[1]} does not match the body`);
    }
  }
}

/** The component name of an identifier, serialized (`"@query-param";name="q"`) or bare. */
function componentName(id) {
  return id.startsWith('"') ? id.slice(1, id.indexOf('"', 1)) : id.split(';')[0];
}

async function verify(hms, c) {
  const publicKey = createPublicKey({ key: c.public_jwk, format: 'jwk' });
  const fromPem = createPublicKey(c.public_key_pem);
  if (!publicKey.equals(fromPem)) {
    throw new Error('public_jwk and public_key_pem are different keys');
  }
  const verifier = hms.createVerifier(publicKey, c.alg);
  const seen = [];
  const request = { method: c.method, url: c.url, headers: headerObject(c.headers) };
  const result = await hms.httpbis.verifyMessage(
    {
      keyLookup: async (params) => {
        seen.push(params);
        const match = c.keyid == null || params.keyid === c.keyid;
        return match ? { id: c.keyid ?? undefined, algs: [c.alg], verify: verifier } : null;
      },
      requiredParams: c.required_params ?? ['created', 'keyid', 'alg'],
      // The library compares bare names only (its own "@method" vs "@method;req" caveat).
      requiredFields: c.covered.map(componentName),
      tolerance: 5,
    },
    request,
  );
  if (result !== true) {
    throw new Error(`verifyMessage returned ${result}`);
  }
  let bodyVerified = false;
  if (c.covered.map(componentName).includes('content-digest')) {
    checkContentDigest(request.headers['content-digest'], Buffer.from(c.body, 'utf8'));
    bodyVerified = true;
  }
  return { verified: result, keyids: seen.map((p) => p.keyid), body_verified: bodyVerified };
}

async function sign(hms, c) {
  const headers = headerObject(c.headers);
  if (c.covered.map(componentName).includes('content-digest') && !('content-digest' in headers)) {
    const digest = createHash('sha256').update(Buffer.from(c.body, 'utf8')).digest('base64');
    headers['content-digest'] = `sha-256=:${digest}:`;
  }
  const key = hms.createSigner(createPrivateKey(c.private_key_pem), c.alg, c.keyid);
  const signed = await hms.httpbis.signMessage(
    { key, name: c.label, fields: c.covered, params: ['created', 'keyid', 'alg'] },
    { method: c.method, url: c.url, headers },
  );
  return { headers: headerPairs(signed.headers) };
}

function components(hms, c) {
  const values = c.requests.map((r) => {
    const row = {};
    const request = { method: r.method, url: r.url, headers: headerObject(r.headers) };
    for (const component of c.components) {
      try {
        const base = hms.httpbis.createSignatureBase({ fields: [component] }, request);
        row[component] = { value: base[0][1].join(', ') };
      } catch (e) {
        row[component] = { error: `${e && e.name}: ${e && e.message}` };
      }
    }
    return row;
  });
  return { values };
}

const MODES = { verify, sign, components };

async function main() {
  const [mode, path] = process.argv.slice(2);
  if (process.argv.length !== 4 || !(mode in MODES)) {
    process.stderr.write('usage: node httpsig_check.mjs verify|sign|components CASE.json\n');
    return EXIT_USAGE;
  }
  const out = { library: PACKAGE, mode, ok: false, node: process.version };
  let hms;
  try {
    hms = (await import(PACKAGE)).default;
  } catch (e) {
    if (e && e.code === 'ERR_MODULE_NOT_FOUND') {
      out.error = `the npm package \`${PACKAGE}\` is not installed (npm ci --prefix interop/node)`;
      out.missing = PACKAGE;
      process.stdout.write(`${JSON.stringify(out)}\n`);
      return EXIT_MISSING;
    }
    throw e;
  }
  const pkgUrl = new URL(`./node_modules/${PACKAGE}/package.json`, import.meta.url);
  out.version = JSON.parse(readFileSync(pkgUrl, 'utf8')).version;
  try {
    const c = JSON.parse(readFileSync(path, 'utf8'));
    Object.assign(out, await MODES[mode](hms, c));
  } catch (e) {
    out.error = `${e && e.name}: ${e && e.message}`;
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return EXIT_FAILED;
  }
  out.ok = true;
  process.stdout.write(`${JSON.stringify(out)}\n`);
  return EXIT_OK;
}

process.exitCode = await main();
