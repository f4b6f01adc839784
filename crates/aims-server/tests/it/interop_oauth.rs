//! Interoperability of the OAuth 2.0 authorization server with widely used clients,
//! unchanged, against the real server in-process (issue 5):
//!
//! - Python **Authlib** (`interop/python/oauth_authlib_check.py`): metadata,
//!   client_credentials with `private_key_jwt` (`PrivateKeyJWT`) and `resource`,
//!   introspection and revocation; and what Authlib's defaults do (asserted here).
//! - npm **oauth4webapi** and the **MCP TypeScript SDK**'s OAuth client
//!   (`interop/node/oauth_check.mjs`): RFC 8414 discovery with the issuer check,
//!   private_key_jwt, a DPoP-bound token, introspection; and the SDK's `auth()` flow
//!   from an MCP server URL through RFC 9728 protected resource metadata (served here by
//!   aims-guard's [`ProtectedResourceMetadata`]) to a token for that resource.
//! - A live **MCP session** (`interop/node/mcp_session.mjs`): the SDK's `Client` over its
//!   Streamable HTTP transport against an MCP endpoint guarded by aims-guard; the SDK
//!   follows the guard's 401 challenge (`resource_metadata`) to a token and then
//!   initializes, lists tools and calls one with it.
//!
//! The scripts print what the libraries got; every access token is verified here with
//! the served JWKS (`iss`, `aud` = the requested resource, `client_id`), so a server
//! misbehaving fails the test. `bash scripts/interop-setup` installs the libraries;
//! without them the tests print a notice and pass, except under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aims_core::TrustDomain;

use aims_crypto::{Algorithm, Jwks, Signer as _, SigningKey, b64};
use aims_guard::{
    AccessTokenIssuer, AuthenticatedAgent, Guard, GuardConfig, GuardLayer, JwksCache, Mechanism,
    ProtectedResourceMetadata,
};
use aims_jose::StaticKeys;
use aims_jose::access_token::{self, AccessTokenClaims};
use aims_server::api::{AuthMethod, ClientMetadata, GrantType, TokenFormat};
use aims_server::testkit::{self, TestServer};
use serde_json::{Value, json};

use crate::common::system_clock;
use crate::interop_python::{python_command, run, unavailable};

const API: &str = "https://api.example.test/";
const SCOPE: &str = "api:read";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

fn node_command() -> String {
    std::env::var("AIMS_INTEROP_NODE").unwrap_or_else(|_| "node".into())
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = b64::encode_std(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// The authorization server under test.
struct As {
    ts: TestServer,
    issuer: String,
}

impl As {
    async fn start() -> Self {
        let ts = testkit::start_with("example.org", system_clock(), |c| {
            c.oauth.scopes = vec!["api:read".into(), "api:write".into()];
        })
        .await
        .unwrap();
        let issuer = ts.server.endpoints().oauth_issuer.clone().unwrap();
        Self { ts, issuer }
    }

    /// Registers a private_key_jwt client for `resources`; its ES256 key (kid `kid`).
    async fn client(&self, id: &str, kid: &str, resources: &[&str]) -> SigningKey {
        let key = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid(kid);
        let meta = ClientMetadata {
            client_id: id.to_owned(),
            client_name: None,
            token_endpoint_auth_method: AuthMethod::PrivateKeyJwt,
            jwks: Some(Jwks {
                keys: vec![key.public_jwk().clone()],
            }),
            jwks_uri: None,
            spiffe_id: None,
            tls_client_auth_san_uri: None,
            grant_types: vec![GrantType::ClientCredentials],
            scope: "api:read api:write".to_owned(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            introspect_resources: Vec::new(),
            redirect_uris: vec![],
            authorization_details_types: vec![],
            access_token_lifetime: None,
            refresh_token_lifetime: None,
            dpop_bound_access_tokens: false,
            tls_client_certificate_bound_access_tokens: false,
            access_token_format: TokenFormat::Jwt,
            client_secret_hash: None,
        };
        self.ts.admin().create_client(&meta).await.unwrap();
        key
    }

    /// The script's input file: issuer, client, PKCS#8 key, resource, scope, `extra`.
    fn input(&self, id: &str, kid: &str, key: &SigningKey, extra: Value) -> PathBuf {
        let mut v = json!({
            "issuer": self.issuer,
            "client_id": id,
            "kid": kid,
            "private_key_pem": pem("PRIVATE KEY", &key.to_pkcs8().unwrap()),
            "resource": API,
            "scope": SCOPE,
        });
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        let name: String = id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = self.ts.dir.path().join(format!("{name}.input.json"));
        std::fs::write(&path, v.to_string()).unwrap();
        path
    }

    /// An access token verified with the served JWKS for `audience`, with its issuer
    /// and client checked.
    async fn verify(&self, token: &str, audience: &str, client_id: &str) -> AccessTokenClaims {
        let url = format!("{}/oauth/jwks", self.issuer);
        let jwks: Jwks = reqwest::get(url).await.unwrap().json().await.unwrap();
        let mut keys = StaticKeys::new();
        keys.add_jwks(self.issuer.clone(), &jwks);
        let claims = access_token::Validator::new(system_clock(), &self.issuer, audience)
            .validate(token, &keys)
            .unwrap_or_else(|e| panic!("access token refused for {audience}: {e}"))
            .claims;
        assert_eq!(claims.iss, self.issuer);
        assert!(claims.aud.iter().eq([audience]), "aud {:?}", claims.aud);
        assert_eq!(claims.client_id, client_id);
        assert_eq!(claims.scope.to_string(), SCOPE);
        claims
    }
}

/// Runs `program script --input input`; `None` (after [`unavailable`]) when the script
/// says its library is missing (exit 3) or the runtime is absent.
async fn run_script(program: String, script: PathBuf, input: PathBuf, what: &str) -> Option<Value> {
    let mut cmd = Command::new(&program);
    cmd.arg(&script)
        .arg("--input")
        .arg(&input)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let done = tokio::task::spawn_blocking(move || run(cmd, Duration::from_secs(120)))
        .await
        .unwrap();
    let done = match done {
        Ok(d) => d,
        Err(e) => {
            unavailable(&format!("cannot run {program}: {e}"));
            return None;
        }
    };
    match done.code {
        Some(0) => {}
        Some(3) => {
            unavailable(&format!("{what} is not importable by {program}"));
            return None;
        }
        code => panic!(
            "{} failed ({code:?})\n--- stdout\n{}\n--- stderr\n{}",
            script.display(),
            done.stdout,
            done.stderr
        ),
    }
    Some(serde_json::from_str(&done.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON from {} ({e})\n--- stdout\n{}\n--- stderr\n{}",
            script.display(),
            done.stdout,
            done.stderr
        )
    }))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[tokio::test]
async fn authlib_private_key_jwt_tokens_introspection_and_its_defaults() {
    let a = As::start().await;
    let key = a.client("authlib-agent", "authlib-1", &[API]).await;
    let input = a.input("authlib-agent", "authlib-1", &key, json!({}));
    let Some(out) = run_script(
        python_command(),
        interop_dir().join("python/oauth_authlib_check.py"),
        input,
        "the Python package `authlib`",
    )
    .await
    else {
        return;
    };

    // Metadata as Authlib read it.
    let m = &out["metadata"];
    assert_eq!(m["issuer"], a.issuer.as_str());
    assert_eq!(m["token_endpoint"], format!("{}/oauth/token", a.issuer));
    assert_eq!(
        m["introspection_endpoint"],
        format!("{}/oauth/introspect", a.issuer)
    );

    // Authlib's default audience is the token endpoint URL: refused (rfc7523bis).
    let d = &out["default_audience"];
    assert_eq!(d["outcome"], "refused", "{out}");
    assert_eq!(d["error"], "invalid_client");
    assert!(s(&d["description"]).contains("aud"), "{d}");
    // Its default lifetime, exp = iat + 3600 s, is above AIMS's 300 s maximum.
    let d = &out["default_lifetime"];
    assert_eq!(d["outcome"], "refused", "{out}");
    assert_eq!(d["error"], "invalid_client");
    assert!(s(&d["description"]).contains("lifetime"), "{d}");

    // The working configuration: two tokens for the resource.
    let tokens = out["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    let mut jtis = Vec::new();
    for t in tokens {
        assert_eq!(t["token_type"], "Bearer");
        assert_eq!(t["scope"], SCOPE);
        assert_eq!(t["expires_in"], 300);
        let c = a.verify(s(&t["access_token"]), API, "authlib-agent").await;
        assert_eq!(c.sub, "authlib-agent");
        jtis.push(c.jti);
    }
    assert_ne!(jtis[0], jtis[1]);

    // exp through `claims` makes Authlib reuse its first jti: the replay is refused.
    let r = out["claims_jti_reuse"].as_array().unwrap();
    assert_eq!(r[0]["outcome"], "token", "{out}");
    assert_eq!(r[1]["outcome"], "refused", "{out}");
    assert_eq!(r[1]["error"], "invalid_client");
    assert!(
        s(&r[1]["description"]).contains("jti already used")
            || s(&r[1]["description"]).contains("replay"),
        "{}",
        r[1]
    );

    // Introspection, revocation, introspection.
    let i = &out["introspection"];
    assert_eq!(i["before"]["status"], 200);
    let b = &i["before"]["body"];
    assert_eq!(b["active"], true, "{i}");
    assert_eq!(b["iss"], a.issuer.as_str());
    assert_eq!(b["client_id"], "authlib-agent");
    assert_eq!(b["jti"], jtis[0].as_str());
    assert!(b["aud"] == API || b["aud"] == json!([API]), "{b}");
    assert_eq!(i["revoke_status"], 200);
    assert_eq!(i["after"]["status"], 200);
    assert_eq!(i["after"]["body"], json!({"active": false}));
}

#[tokio::test]
async fn oauth4webapi_and_mcp_sdk_discovery_private_key_jwt_dpop() {
    let a = As::start().await;

    // An MCP server's protected resource metadata (RFC 9728), as aims-guard serves it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rs = listener.local_addr().unwrap();
    let mcp_url = format!("http://{rs}/mcp");
    let mut prm = ProtectedResourceMetadata::new(mcp_url.clone()).unwrap();
    prm.authorization_servers = vec![a.issuer.clone()];
    prm.scopes_supported = vec![SCOPE.to_owned()];
    let app: axum::Router = prm.router();
    let rs_task = tokio::spawn(async move { axum::serve(listener, app).await });

    let key = a.client("node-agent", "node-1", &[API, &mcp_url]).await;
    let input = a.input(
        "node-agent",
        "node-1",
        &key,
        json!({ "mcp_server_url": mcp_url }),
    );
    let out = run_script(
        node_command(),
        interop_dir().join("node/oauth_check.mjs"),
        input,
        "npm `oauth4webapi` or `@modelcontextprotocol/sdk` (interop/node/node_modules)",
    )
    .await;
    rs_task.abort();
    let Some(out) = out else { return };

    // oauth4webapi: discovery (its issuer check passed), and refused for another issuer.
    assert_eq!(out["discovery"]["issuer"], a.issuer.as_str());
    assert_eq!(
        out["discovery"]["token_endpoint"],
        format!("{}/oauth/token", a.issuer)
    );
    assert_eq!(out["discovery_wrong_issuer"]["outcome"], "refused", "{out}");

    let t = &out["o4w_token"];
    assert!(s(&t["token_type"]).eq_ignore_ascii_case("bearer"), "{t}");
    assert_eq!(t["scope"], SCOPE);
    let c = a.verify(s(&t["access_token"]), API, "node-agent").await;
    assert!(c.cnf.is_none());

    let t = &out["o4w_dpop_token"];
    assert!(s(&t["token_type"]).eq_ignore_ascii_case("dpop"), "{t}");
    let c = a.verify(s(&t["access_token"]), API, "node-agent").await;
    assert_eq!(
        c.cnf.as_ref().and_then(|c| c.jkt.as_deref()),
        Some(s(&t["jkt"]))
    );

    let i = &out["o4w_introspection"];
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], "node-agent");
    assert_eq!(i["iss"], a.issuer.as_str());
    assert!(i["aud"] == API || i["aud"] == json!([API]), "{i}");

    // MCP SDK: the discovery functions, then auth() end to end.
    let d = &out["mcp_discovery"];
    assert_eq!(d["resource"], mcp_url.as_str());
    assert_eq!(d["authorization_servers"], json!([a.issuer]));
    assert_eq!(d["as_issuer"], a.issuer.as_str());
    let m = &out["mcp_auth"];
    assert_eq!(m["result"], "AUTHORIZED", "{m}");
    assert_eq!(m["request"]["grant_type"], "client_credentials");
    assert_eq!(m["request"]["resource"], mcp_url.as_str());
    assert_eq!(m["assertion"]["payload"]["aud"], a.issuer.as_str());
    assert_eq!(m["assertion"]["header"]["alg"], "ES256");
    assert!(s(&m["token_type"]).eq_ignore_ascii_case("bearer"), "{m}");
    a.verify(s(&m["access_token"]), &mcp_url, "node-agent")
        .await;
}

/// A minimal MCP server on the Streamable HTTP transport (JSON responses, no SSE
/// stream): enough for the SDK's client to initialize, list tools and call one. Every
/// request it sees has passed aims-guard.
struct McpServer {
    session: String,
    /// The JSON-RPC methods received, in order.
    methods: std::sync::Mutex<Vec<String>>,
}

async fn mcp_endpoint(
    axum::extract::State(server): axum::extract::State<Arc<McpServer>>,
    agent: AuthenticatedAgent,
    headers: axum::http::HeaderMap,
    axum::Json(msg): axum::Json<Value>,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::IntoResponse;

    let method = msg["method"].as_str().unwrap_or_default().to_owned();
    server.methods.lock().unwrap().push(method.clone());
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
    if method != "initialize" && session != Some(server.session.as_str()) {
        return (StatusCode::BAD_REQUEST, "missing or unknown Mcp-Session-Id").into_response();
    }
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response(); // a notification
    };
    let result = match method.as_str() {
        "initialize" => json!({
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "aims-guarded-mcp", "version": "0.0.0" },
        }),
        "tools/list" => json!({ "tools": [{
            "name": "whoami",
            "description": "The calling agent and its token's scope, as aims-guard saw them",
            "inputSchema": { "type": "object" },
        }]}),
        "tools/call" if msg["params"]["name"] == "whoami" => {
            let scope = agent
                .access_token()
                .map(|t| t.scope().to_string())
                .unwrap_or_default();
            json!({ "content": [{ "type": "text", "text": format!("{} {scope}", agent.id()) }] })
        }
        _ => {
            let error = json!({ "code": -32601, "message": "method not found" });
            return axum::Json(json!({ "jsonrpc": "2.0", "id": id, "error": error }))
                .into_response();
        }
    };
    let mut response =
        axum::Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response();
    if method == "initialize" {
        response.headers_mut().insert(
            "mcp-session-id",
            HeaderValue::from_str(&server.session).unwrap(),
        );
    }
    response
}

#[tokio::test]
async fn mcp_sdk_session_through_aims_guard() {
    const AGENT: &str = "spiffe://example.org/agent/mcp";
    let a = As::start().await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rs = listener.local_addr().unwrap();
    let origin = format!("http://{rs}");
    let mcp_url = format!("{origin}/mcp");
    let mut prm = ProtectedResourceMetadata::new(mcp_url.clone()).unwrap();
    prm.authorization_servers = vec![a.issuer.clone()];
    prm.scopes_supported = vec![SCOPE.to_owned()];
    let jwks = JwksCache::builder(&a.issuer, reqwest::Client::new())
        .build()
        .unwrap();
    let cfg = GuardConfig::builder(Arc::clone(a.ts.server.state().tls.trust_store()))
        .clock(system_clock())
        .authority(origin.as_str())
        .trust_domain(TrustDomain::new("example.org").unwrap())
        .enable(Mechanism::Bearer)
        .access_token_issuer(AccessTokenIssuer::new(&a.issuer, &mcp_url).jwks(jwks))
        .build()
        .unwrap();
    let layer = GuardLayer::new(Guard::new(cfg).unwrap())
        .require_scopes([SCOPE])
        .resource_metadata(prm.well_known_url())
        .unwrap();
    let server = Arc::new(McpServer {
        session: aims_crypto::random_token().unwrap(),
        methods: Default::default(),
    });
    let app = axum::Router::new()
        .route("/mcp", axum::routing::post(mcp_endpoint).layer(layer))
        .merge(prm.router())
        .with_state(Arc::clone(&server));
    let rs_task = tokio::spawn(async move { axum::serve(listener, app).await });

    let key = a.client(AGENT, "mcp-1", &[&mcp_url]).await;
    let input = a.input(AGENT, "mcp-1", &key, json!({ "mcp_server_url": mcp_url }));
    let out = run_script(
        node_command(),
        interop_dir().join("node/mcp_session.mjs"),
        input,
        "npm `@modelcontextprotocol/sdk` (interop/node/node_modules)",
    )
    .await;
    rs_task.abort();
    let Some(out) = out else { return };
    assert!(out.get("failed").is_none(), "{out}");

    // The session: initialize (with the session id the server chose), the tool list, the
    // tool's answer naming the agent aims-guard authenticated and the token's scope.
    assert_eq!(out["server_info"]["name"], "aims-guarded-mcp", "{out}");
    assert_eq!(out["session_id"], server.session.as_str());
    assert_eq!(out["tools"], json!(["whoami"]));
    assert_eq!(
        out["call"]["content"][0]["text"],
        format!("{AGENT} {SCOPE}"),
        "{out}"
    );
    let methods = server.methods.lock().unwrap().clone();
    assert_eq!(
        methods,
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "tools/call"
        ]
    );

    // How the SDK got there: its first POST had no token and drew the guard's challenge,
    // whose resource_metadata it followed to this AS; every later MCP request carried
    // the Bearer token, which is for this MCP server and this agent.
    let ex = out["exchanges"].as_array().unwrap();
    let first = &ex[0];
    assert_eq!(
        (s(&first["method"]), s(&first["url"]), &first["status"]),
        ("POST", mcp_url.as_str(), &json!(401)),
        "{out}"
    );
    assert!(first["auth_scheme"].is_null(), "{first}");
    let challenge = s(&first["www_authenticate"]);
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{}\"", prm.well_known_url())),
        "{challenge}"
    );
    let token_endpoint = format!("{}/oauth/token", a.issuer);
    assert!(
        ex.iter()
            .any(|e| e["url"] == token_endpoint.as_str() && e["status"] == 200),
        "{out}"
    );
    let mcp_calls: Vec<&Value> = ex[1..]
        .iter()
        .filter(|e| e["url"] == mcp_url.as_str())
        .collect();
    assert!(mcp_calls.len() >= 4, "{out}");
    for e in mcp_calls {
        assert_eq!(e["auth_scheme"], "Bearer", "{e}");
        assert!(
            e["status"] == 200 || e["status"] == 202 || e["method"] == "GET",
            "{e}"
        );
    }
    a.verify(s(&out["access_token"]), &mcp_url, AGENT).await;
}
