// A live MCP session with the MCP TypeScript SDK's own client, unchanged, against an MCP
// server (Streamable HTTP transport) whose endpoint is guarded by aims-guard:
//
//   POST /mcp without a token -> 401 with `WWW-Authenticate: Bearer ... resource_metadata=`
//   -> the SDK's auth() (RFC 9728 metadata -> RFC 8414 metadata -> client_credentials
//   with the SDK's `PrivateKeyJwtProvider` and `resource` = the MCP server URL)
//   -> the same POST again with `Authorization: Bearer` -> initialize, tools/list,
//   tools/call.
//
// Run by crates/aims-server/tests/it/interop_oauth.rs, which checks what each side saw.
// Usage: node mcp_session.mjs --input FILE, where FILE is JSON
// {issuer, client_id, private_key_pem, scope, mcp_server_url}.
// Prints one JSON object; exit 3 when the SDK is missing.
import { readFileSync } from 'node:fs';

let Client, StreamableHTTPClientTransport, PrivateKeyJwtProvider;
try {
  ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
  ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
  ({ PrivateKeyJwtProvider } = await import('@modelcontextprotocol/sdk/client/auth-extensions.js'));
} catch (e) {
  console.error(`library not importable: ${e.message}`);
  process.exit(3);
}

const args = process.argv.slice(2);
const at = args.indexOf('--input');
if (at < 0 || !args[at + 1]) {
  console.error('usage: node mcp_session.mjs --input FILE');
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(args[at + 1], 'utf8'));
const out = {
  mcp_sdk_version: JSON.parse(
    readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url), 'utf8'),
  ).version,
};
const errorOf = (e) => ({ name: e?.constructor?.name, code: e?.code, message: String(e?.message ?? e) });

// Every HTTP exchange the SDK makes (it uses the global fetch): method, URL, status, and
// the scheme of the Authorization header it sent (never the token itself).
const exchanges = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = String(input instanceof Request ? input.url : input);
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  const res = await realFetch(input, init);
  exchanges.push({
    method: init?.method ?? (input instanceof Request ? input.method : 'GET'),
    url,
    status: res.status,
    auth_scheme: headers.get('authorization')?.split(' ')[0] ?? null,
    www_authenticate: res.headers.get('www-authenticate'),
  });
  return res;
};

const provider = new PrivateKeyJwtProvider({
  clientId: cfg.client_id,
  privateKey: cfg.private_key_pem,
  algorithm: 'ES256',
  scope: cfg.scope,
  expectedIssuer: cfg.issuer,
});
const client = new Client({ name: 'aims-interop', version: '0.0.0' });
const transport = new StreamableHTTPClientTransport(new URL(cfg.mcp_server_url), { authProvider: provider });
try {
  await client.connect(transport);
  out.server_info = client.getServerVersion();
  out.session_id = transport.sessionId ?? null;
  out.tools = (await client.listTools()).tools.map((t) => t.name);
  out.call = await client.callTool({ name: 'whoami', arguments: {} });
} catch (e) {
  out.failed = errorOf(e);
} finally {
  await client.close().catch(() => {});
  globalThis.fetch = realFetch;
}
out.access_token = provider.tokens()?.access_token ?? null;
out.exchanges = exchanges;
console.log(JSON.stringify(out));
