// Drives the AIMS OAuth 2.0 authorization server with two npm clients, unchanged:
//
// - `oauth4webapi` (panva): RFC 8414 discovery with its issuer check, client_credentials
//   with private_key_jwt (its default assertion: aud = the issuer, exp = iat + 60 s),
//   a DPoP-bound token (RFC 9449), RFC 7662 introspection;
// - `@modelcontextprotocol/sdk` (the MCP TypeScript SDK), client side only: its `auth()`
//   driver with the SDK's own `PrivateKeyJwtProvider` (client_credentials +
//   private_key_jwt), starting from the MCP server URL: RFC 9728 protected resource
//   metadata of the resource (served by aims-guard's `ProtectedResourceMetadata`) ->
//   `authorization_servers[0]` -> RFC 8414 AS metadata -> token request with `resource`
//   = the metadata's `resource`. Plus the SDK's discovery functions on their own.
//
// Run by crates/aims-server/tests/it/interop_oauth.rs, which verifies the printed tokens
// with the server's JWKS. Usage: node oauth_check.mjs --input FILE, where FILE is JSON
// {issuer, client_id, private_key_pem, kid, resource, scope, mcp_server_url}.
// Prints one JSON object; exit 3 when a library is missing.
import { createHash, createPrivateKey, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';

let oauth, mcpAuth, mcpExt;
try {
  oauth = await import('oauth4webapi');
  mcpAuth = await import('@modelcontextprotocol/sdk/client/auth.js');
  mcpExt = await import('@modelcontextprotocol/sdk/client/auth-extensions.js');
} catch (e) {
  console.error(`library not importable: ${e.message}`);
  process.exit(3);
}

const args = process.argv.slice(2);
const at = args.indexOf('--input');
if (at < 0 || !args[at + 1]) {
  console.error('usage: node oauth_check.mjs --input FILE');
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(args[at + 1], 'utf8'));
const version = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
const out = {
  oauth4webapi_version: version('oauth4webapi'),
  mcp_sdk_version: version('@modelcontextprotocol/sdk'),
};
const insecure = { [oauth.allowInsecureRequests]: true }; // plain http on loopback

const errorOf = (e) => ({
  name: e?.constructor?.name,
  code: e?.code,
  error: e?.error ?? e?.cause?.error,
  message: String(e?.message ?? e),
});

// RFC 7638 thumbprint of a public EC JWK.
const thumbprint = (jwk) =>
  createHash('sha256')
    .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
    .digest('base64url');

const privateKey = await webcrypto.subtle.importKey(
  'pkcs8',
  createPrivateKey(cfg.private_key_pem).export({ format: 'der', type: 'pkcs8' }),
  { name: 'ECDSA', namedCurve: 'P-256' },
  false,
  ['sign'],
);

// --- oauth4webapi ---------------------------------------------------------------------
{
  const issuer = new URL(cfg.issuer);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
  out.discovery = {
    issuer: as.issuer,
    token_endpoint: as.token_endpoint,
    introspection_endpoint: as.introspection_endpoint,
  };
  // The issuer check: the same document, expected under another issuer (the same
  // server named localhost), is refused.
  try {
    const other = new URL(cfg.issuer.replace('127.0.0.1', 'localhost'));
    await oauth.processDiscoveryResponse(
      other,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
    out.discovery_wrong_issuer = { outcome: 'accepted' };
  } catch (e) {
    out.discovery_wrong_issuer = { outcome: 'refused', ...errorOf(e) };
  }

  const client = { client_id: cfg.client_id };
  const clientAuth = oauth.PrivateKeyJwt({ key: privateKey, kid: cfg.kid });
  const params = () => new URLSearchParams({ scope: cfg.scope, resource: cfg.resource });

  const bearer = await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(as, client, clientAuth, params(), insecure),
  );
  out.o4w_token = {
    access_token: bearer.access_token,
    token_type: bearer.token_type,
    scope: bearer.scope,
    expires_in: bearer.expires_in,
  };

  // DPoP (RFC 9449): a fresh ES256 key; one retry if the server asks for a nonce.
  const dpopKeys = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(client, dpopKeys);
  let dpopResult;
  for (let attempt = 0; ; attempt++) {
    try {
      dpopResult = await oauth.processClientCredentialsResponse(
        as,
        client,
        await oauth.clientCredentialsGrantRequest(as, client, clientAuth, params(), { DPoP, ...insecure }),
      );
      break;
    } catch (e) {
      if (attempt === 0 && oauth.isDPoPNonceError(e)) continue;
      throw e;
    }
  }
  const jwk = await webcrypto.subtle.exportKey('jwk', dpopKeys.publicKey);
  out.o4w_dpop_token = {
    access_token: dpopResult.access_token,
    token_type: dpopResult.token_type,
    jkt: thumbprint(jwk),
  };

  const intro = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, clientAuth, bearer.access_token, insecure),
  );
  out.o4w_introspection = intro;
}

// --- MCP TypeScript SDK -----------------------------------------------------------------
{
  const serverUrl = cfg.mcp_server_url;
  // The discovery functions alone.
  const prm = await mcpAuth.discoverOAuthProtectedResourceMetadata(serverUrl);
  const asMeta = await mcpAuth.discoverAuthorizationServerMetadata(prm.authorization_servers[0]);
  out.mcp_discovery = {
    resource: prm.resource,
    authorization_servers: prm.authorization_servers,
    as_issuer: asMeta?.issuer,
    as_token_endpoint: asMeta?.token_endpoint,
  };

  // The whole client_credentials flow as an MCP client runs it (auth() is what the
  // SDK's transports call on a 401), with the SDK's private_key_jwt provider.
  const pem = cfg.private_key_pem;
  const provider = new mcpExt.PrivateKeyJwtProvider({
    clientId: cfg.client_id,
    privateKey: pem,
    algorithm: 'ES256',
    scope: cfg.scope,
    expectedIssuer: cfg.issuer,
  });
  // Observe what the SDK sends (the fetch it uses is the global one).
  const sent = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (init?.method === 'POST' && init.body) sent.push({ url, body: String(init.body) });
    return realFetch(input, init);
  };
  let result;
  try {
    result = await mcpAuth.auth(provider, { serverUrl });
  } catch (e) {
    result = { failed: errorOf(e) };
  } finally {
    globalThis.fetch = realFetch;
  }
  const tokens = provider.tokens();
  const tokenRequest = sent.find((s) => s.url === asMeta?.token_endpoint);
  const form = tokenRequest ? new URLSearchParams(tokenRequest.body) : undefined;
  let assertion;
  if (form?.get('client_assertion')) {
    const [h, p] = form.get('client_assertion').split('.');
    assertion = {
      header: JSON.parse(Buffer.from(h, 'base64url').toString()),
      payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
    };
  }
  out.mcp_auth = {
    result,
    access_token: tokens?.access_token,
    token_type: tokens?.token_type,
    scope: tokens?.scope,
    request: form && {
      grant_type: form.get('grant_type'),
      resource: form.get('resource'),
      scope: form.get('scope'),
      client_assertion_type: form.get('client_assertion_type'),
    },
    assertion,
  };
}

console.log(JSON.stringify(out));
