//! The OAuth 2.0 authorization server served by the real server: metadata, token,
//! introspection, revocation, DPoP, SPIFFE client authentication, clients admin API.

use std::sync::Arc;

use aims_core::{Clock as _, SystemClock};
use aims_crypto::{Algorithm, Jwks, Signer as _, SigningKey, VerifyingKey};
use aims_jose::client_assertion::{
    self, ASSERTION_TYPE, ClientAssertionClaims, SPIFFE_ASSERTION_TYPE,
};
use aims_jose::{Jws, StaticKeys, access_token, dpop};
use aims_server::api::{AuthMethod, ClientMetadata, GrantType, TokenFormat};
use aims_server::testkit::{self, TestServer};
use serde_json::Value;

use crate::common::{exe_selector, spec, system_clock, uid_selector};

const API: &str = "https://api.example.test/";

/// A test authorization server and an HTTP client for it.
pub(crate) struct As {
    pub(crate) ts: TestServer,
    pub(crate) base: String,
    pub(crate) issuer: String,
    pub(crate) http: reqwest::Client,
}

pub(crate) async fn start(adjust: impl FnOnce(&mut aims_server::Config)) -> As {
    start_with_clock(system_clock(), adjust).await
}

/// [`start`] with the server's clock.
pub(crate) async fn start_with_clock(
    clock: Arc<dyn aims_core::Clock>,
    adjust: impl FnOnce(&mut aims_server::Config),
) -> As {
    let ts = testkit::start_with("example.org", clock, adjust)
        .await
        .unwrap();
    let base = format!("http://{}", ts.server.endpoints().http);
    let issuer = ts.server.endpoints().oauth_issuer.clone().unwrap();
    As {
        ts,
        base,
        issuer,
        http: reqwest::Client::new(),
    }
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn now() -> i64 {
    SystemClock.now()
}

/// A private_key_jwt client's metadata with `key`'s public JWK.
pub(crate) fn pkjwt_client(id: &str, key: &SigningKey) -> ClientMetadata {
    ClientMetadata {
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
        resources: vec![API.to_owned()],
        introspect_resources: Vec::new(),
        redirect_uris: vec![],
        authorization_details_types: vec![],
        access_token_lifetime: None,
        refresh_token_lifetime: None,
        dpop_bound_access_tokens: false,
        tls_client_certificate_bound_access_tokens: false,
        access_token_format: TokenFormat::Jwt,
        client_secret_hash: None,
    }
}

impl As {
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    pub(crate) fn assertion(&self, client_id: &str, key: &SigningKey) -> String {
        let claims = ClientAssertionClaims::new(client_id, &self.issuer, now(), 60).unwrap();
        client_assertion::create(&claims, key).unwrap()
    }

    /// A client_credentials request authenticated by `assertion`.
    pub(crate) async fn token(
        &self,
        assertion: &str,
        extra: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut pairs = vec![
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ];
        pairs.extend_from_slice(extra);
        self.post("/oauth/token", &pairs, headers).await
    }

    pub(crate) async fn jwks(&self) -> Jwks {
        self.get("/oauth/jwks").await.json().await.unwrap()
    }

    /// The access token's claims, verified with the served JWKS.
    pub(crate) async fn verify(
        &self,
        token: &str,
        audience: &str,
    ) -> access_token::AccessTokenClaims {
        let mut keys = StaticKeys::new();
        keys.add_jwks(self.issuer.clone(), &self.jwks().await);
        access_token::Validator::new(system_clock(), &self.issuer, audience)
            .validate(token, &keys)
            .unwrap()
            .claims
    }

    pub(crate) async fn introspect(&self, caller: &str, key: &SigningKey, token: &str) -> Value {
        let a = self.assertion(caller, key);
        let r = self
            .post(
                "/oauth/introspect",
                &[
                    ("token", token),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &a),
                ],
                &[],
            )
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

pub(crate) async fn error_of(r: reqwest::Response) -> (u16, String, reqwest::header::HeaderMap) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body: Value = r.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned(), headers)
}

#[tokio::test]
async fn metadata_tokens_introspection_and_revocation() {
    let a = start(|c| c.oauth.scopes = vec!["api:read".into(), "api:write".into()]).await;
    let port = a.ts.server.endpoints().http.port();
    assert_eq!(a.issuer, format!("http://127.0.0.1:{port}"));

    // Metadata: both well-known documents, identical, with the issuer byte for byte.
    let m: Value = a
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    let oidc: Value = a
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m, oidc);
    assert_eq!(m["issuer"], a.issuer.as_str());
    assert_eq!(m["token_endpoint"], format!("{}/oauth/token", a.issuer));
    assert_eq!(m["jwks_uri"], format!("{}/oauth/jwks", a.issuer));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!(["client_credentials", "authorization_code", "refresh_token"])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!(["private_key_jwt", "spiffe_jwt", "spiffe_wit"])
    );
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["api:read", "api:write"])
    );
    assert_eq!(m["tls_client_certificate_bound_access_tokens"], false);
    assert_eq!(m["response_modes_supported"], serde_json::json!(["query"]));
    // Exactly the algorithms the token endpoint's DPoP validator accepts.
    assert_eq!(
        m["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "ES384", "EdDSA", "RS256", "PS256"])
    );

    // JWKS: kid, alg, use on every key; none of them in the SPIFFE bundle.
    let jwks = a.jwks().await;
    assert!(!jwks.keys.is_empty());
    for k in &jwks.keys {
        assert!(k.kid.is_some());
        assert_eq!(k.alg.as_deref(), Some("ES256"));
        assert_eq!(k.use_.as_deref(), Some("sig"));
    }
    let bundle = a.get("/bundle").await.text().await.unwrap();
    for k in &jwks.keys {
        assert!(
            !bundle.contains(k.kid.as_deref().unwrap()),
            "OAuth key in the bundle"
        );
    }
    let keys = a.ts.admin().keys().await.unwrap();
    assert!(
        keys.keys
            .iter()
            .any(|k| k.kind == "oauth_token" && k.state == "current")
    );

    // A private_key_jwt client.
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    a.ts.admin()
        .create_client(&pkjwt_client("agent-a", &key))
        .await
        .unwrap();

    let assertion = a.assertion("agent-a", &key);
    let r = a
        .token(
            &assertion,
            &[("scope", "api:read"), ("resource", API)],
            &[("x-request-id", "req-1")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-request-id"], "req-1");
    assert!(r.headers().get("dpop-nonce").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api:read");
    assert_eq!(body["expires_in"], 300);
    let at = body["access_token"].as_str().unwrap().to_owned();
    let claims = a.verify(&at, API).await;
    assert_eq!(claims.iss, a.issuer);
    assert_eq!(claims.client_id, "agent-a");
    assert!(claims.aud.iter().any(|x| x == API));
    assert!(claims.cnf.is_none());

    // The same assertion again: its jti was used.
    let (status, error, headers) = error_of(a.token(&assertion, &[], &[]).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(headers.get("www-authenticate").is_none());

    // aud other than the issuer alone.
    let claims =
        ClientAssertionClaims::new("agent-a", format!("{}/oauth/token", a.issuer), now(), 60)
            .unwrap();
    let other_aud = client_assertion::create(&claims, &key).unwrap();
    let (status, error, _) = error_of(a.token(&other_aud, &[], &[]).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));

    // Unknown resource, scope not allowed.
    let (status, error, _) = error_of(
        a.token(
            &a.assertion("agent-a", &key),
            &[("resource", "https://other.example/")],
            &[],
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_target"));
    let (status, error, _) = error_of(
        a.token(&a.assertion("agent-a", &key), &[("scope", "admin")], &[])
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_scope"));

    // Transport rules: form bodies only, one DPoP header, Basic gets a challenge.
    let r = a
        .http
        .post(format!("{}/oauth/token", a.base))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, error, _) = error_of(r).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    let (status, error, _) = error_of(
        a.token(
            &a.assertion("agent-a", &key),
            &[],
            &[("dpop", "a.b.c"), ("dpop", "d.e.f")],
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_dpop_proof"));
    let (status, error, headers) = error_of(
        a.post(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", "Basic YWdlbnQtYTpzZWNyZXQ=")],
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let (status, error, _) = error_of(
        a.post("/oauth/token", &[("grant_type", "password")], &[])
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "unsupported_grant_type"));

    // Introspection by the holder: JSON, then RFC 9701 JWT.
    let i = a.introspect("agent-a", &key, &at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], "agent-a");
    assert_eq!(i["iss"], a.issuer.as_str());
    assert_eq!(i["token_type"], "Bearer");
    let assertion = a.assertion("agent-a", &key);
    let r = a
        .post(
            "/oauth/introspect",
            &[
                ("token", &at),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
            &[("accept", "application/token-introspection+jwt")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/token-introspection+jwt"
    );
    let jwt = r.text().await.unwrap();
    let jws = Jws::decode(&jwt).unwrap();
    assert!(jws.header.typ_is("token-introspection+jwt"));
    let jwks = a.jwks().await;
    let signing = jwks.keys.iter().find(|k| k.kid == jws.header.kid).unwrap();
    jws.verify(&VerifyingKey::from_jwk(signing).unwrap())
        .unwrap();
    let payload: Value = jws.claims().unwrap();
    assert_eq!(payload["iss"], a.issuer.as_str());
    assert_eq!(payload["aud"], "agent-a");
    assert_eq!(payload["token_introspection"]["active"], true);

    // Garbage is inactive; a revoked token too.
    assert_eq!(
        a.introspect("agent-a", &key, "not-a-token").await["active"],
        false
    );
    let assertion = a.assertion("agent-a", &key);
    let r = a
        .post(
            "/oauth/revoke",
            &[
                ("token", &at),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(a.introspect("agent-a", &key, &at).await["active"], false);

    // Introspection without client authentication.
    let (status, error, _) =
        error_of(a.post("/oauth/introspect", &[("token", &at)], &[]).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));

    // The code flow's endpoints: an unknown client gets an HTML error page (no
    // redirect), an unauthenticated PAR request a 401 (tests in oauth_code.rs).
    let r = a
        .get("/oauth/authorize?response_type=code&client_id=x")
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let (status, error, _) = error_of(a.post("/oauth/par", &[("client_id", "x")], &[]).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));

    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn issuer_with_a_path_serves_the_path_variant() {
    let a = start(|c| {
        c.oauth.issuer = Some(toml::Spanned::new(0..0, "http://localhost:9/tenant".into()));
    })
    .await;
    assert_eq!(a.issuer, "http://localhost:9/tenant");
    for path in [
        "/.well-known/oauth-authorization-server/tenant",
        "/.well-known/oauth-authorization-server",
        "/tenant/.well-known/openid-configuration",
    ] {
        let r = a.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["issuer"], "http://localhost:9/tenant");
        assert_eq!(m["token_endpoint"], "http://localhost:9/tenant/oauth/token");
    }
    assert_eq!(a.get("/tenant/oauth/jwks").await.status(), 200);
    a.ts.server.shutdown().await;
}

/// RFC 9449 §8 nonces behind a load balancer: a nonce handed out by one node sharing
/// PostgreSQL is accepted by the other; an invented one is refused there.
#[tokio::test]
async fn dpop_nonces_of_one_node_are_accepted_by_another_sharing_postgresql() {
    let Some(url) = crate::oauth_code::pg_url() else {
        return;
    };
    let issuer = "http://localhost:9";
    let shared = |c: &mut aims_server::Config| {
        c.oauth.issuer = Some(toml::Spanned::new(0..0, issuer.into()));
        c.oauth.require_dpop_nonce = true;
        c.storage.url = Some(url.clone());
    };
    let one = start(shared).await;
    let two = start(shared).await;
    // A fresh client id: the database may hold earlier runs' clients.
    let id = format!("agent-pg-{}", aims_crypto::random_token().unwrap());
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut meta = pkjwt_client(&id, &key);
    meta.dpop_bound_access_tokens = true;
    one.ts.admin().create_client(&meta).await.unwrap();
    let htu = format!("{issuer}/oauth/token");
    let dpop_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let proof = |nonce: Option<&str>| {
        dpop::create_proof(&dpop_key, "POST", &htu, None, nonce, now()).unwrap()
    };
    let (status, error, headers) = error_of(
        one.token(&one.assertion(&id, &key), &[], &[("dpop", &proof(None))])
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "use_dpop_nonce"));
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();
    let (status, error, _) = error_of(
        two.token(
            &two.assertion(&id, &key),
            &[],
            &[("dpop", &proof(Some("an-invented-nonce")))],
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "use_dpop_nonce"));
    // Node one recorded its nonce before handing it out.
    let r = two
        .token(
            &two.assertion(&id, &key),
            &[],
            &[("dpop", &proof(Some(&nonce)))],
        )
        .await;
    assert_eq!(r.status(), 200, "node two refused node one's nonce");
    two.ts.server.shutdown().await;
    one.ts.server.shutdown().await;
}

#[tokio::test]
async fn dpop_bound_tokens_with_server_nonces() {
    let a = start(|c| c.oauth.require_dpop_nonce = true).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut meta = pkjwt_client("agent-d", &key);
    meta.dpop_bound_access_tokens = true;
    a.ts.admin().create_client(&meta).await.unwrap();
    let htu = format!("{}/oauth/token", a.issuer);
    let dpop_key = SigningKey::generate(Algorithm::ES256).unwrap();

    // Without a proof: refused (the client's tokens must be DPoP-bound).
    let (status, error, _) = error_of(a.token(&a.assertion("agent-d", &key), &[], &[]).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));

    // A proof without nonce: use_dpop_nonce, with the nonce to use.
    let proof = dpop::create_proof(&dpop_key, "POST", &htu, None, None, now()).unwrap();
    let (status, error, headers) = error_of(
        a.token(&a.assertion("agent-d", &key), &[], &[("dpop", &proof)])
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "use_dpop_nonce"));
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();

    let proof = dpop::create_proof(&dpop_key, "POST", &htu, None, Some(&nonce), now()).unwrap();
    let r = a
        .token(&a.assertion("agent-d", &key), &[], &[("dpop", &proof)])
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("dpop-nonce").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let at = body["access_token"].as_str().unwrap().to_owned();
    let claims = a.verify(&at, API).await;
    let jkt = dpop_key.public_jwk().thumbprint().unwrap();
    assert_eq!(
        claims.cnf.as_ref().and_then(|c| c.jkt.as_deref()),
        Some(jkt.as_str())
    );

    // The same proof again is a replay.
    let (status, error, _) = error_of(
        a.token(&a.assertion("agent-d", &key), &[], &[("dpop", &proof)])
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_dpop_proof"));

    let i = a.introspect("agent-d", &key, &at).await;
    assert_eq!(i["token_type"], "DPoP");
    assert_eq!(i["cnf"]["jkt"], jkt.as_str());
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn spiffe_jwt_client_gets_a_token_for_its_spiffe_id() {
    let a = start(|_| {}).await;
    let id = "spiffe://example.org/agent/oauth-it";
    let uid = uid_selector();
    let exe = exe_selector();
    a.ts.admin()
        .create_entry(&spec(id, &[uid.as_str(), exe.as_str()]))
        .await
        .unwrap();
    let mut meta = pkjwt_client("agent-s", &SigningKey::generate(Algorithm::ES256).unwrap());
    meta.token_endpoint_auth_method = AuthMethod::SpiffeJwt;
    meta.jwks = None;
    meta.spiffe_id = Some("spiffe://example.org/agent/*".into());
    a.ts.admin().create_client(&meta).await.unwrap();

    let wl = spiffe::WorkloadApiClient::connect_to(a.ts.workload_endpoint())
        .await
        .unwrap();
    let svid = wl
        .fetch_jwt_svid(
            [a.issuer.as_str()],
            Some(&spiffe::SpiffeId::new(id).unwrap()),
        )
        .await
        .unwrap();
    let r = a
        .post(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "agent-s"),
                ("client_assertion_type", SPIFFE_ASSERTION_TYPE),
                ("client_assertion", svid.token()),
                ("scope", "api:write"),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let claims = a.verify(body["access_token"].as_str().unwrap(), API).await;
    assert_eq!(claims.client_id, id);

    // A JWT-SVID for another audience is refused.
    let other = wl
        .fetch_jwt_svid(
            ["https://elsewhere.example"],
            Some(&spiffe::SpiffeId::new(id).unwrap()),
        )
        .await
        .unwrap();
    let (status, error, _) = error_of(
        a.post(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "agent-s"),
                ("client_assertion_type", SPIFFE_ASSERTION_TYPE),
                ("client_assertion", other.token()),
            ],
            &[],
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_revoked() {
    let a = start(|_| {}).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut meta = pkjwt_client("agent-o", &key);
    meta.access_token_format = TokenFormat::Opaque;
    a.ts.admin().create_client(&meta).await.unwrap();
    let r = a.token(&a.assertion("agent-o", &key), &[], &[]).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let at = body["access_token"].as_str().unwrap().to_owned();
    assert!(Jws::decode(&at).is_err(), "an opaque token is not a JWS");
    let i = a.introspect("agent-o", &key, &at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], "agent-o");
    assert_eq!(i["scope"], "api:read api:write");
    assert_eq!(i["aud"], API);
    let assertion = a.assertion("agent-o", &key);
    let r = a
        .post(
            "/oauth/revoke",
            &[
                ("token", &at),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(a.introspect("agent-o", &key, &at).await["active"], false);
    a.ts.server.shutdown().await;
}

/// Two server instances on one SQLite file (two nodes): an assertion used at one is
/// refused at the other.
#[tokio::test]
async fn assertion_jti_is_single_use_across_nodes() {
    let issuer = "http://localhost:9";
    let set_issuer = |c: &mut aims_server::Config| {
        c.oauth.issuer = Some(toml::Spanned::new(0..0, issuer.into()));
    };
    let a = start(set_issuer).await;
    let url = a.ts.server.state().config.storage_url();
    let b = start(|c| {
        set_issuer(c);
        c.storage.url = Some(url);
    })
    .await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    a.ts.admin()
        .create_client(&pkjwt_client("agent-n", &key))
        .await
        .unwrap();
    let assertion = a.assertion("agent-n", &key);
    assert_eq!(a.token(&assertion, &[], &[]).await.status(), 200);
    let (status, error, _) = error_of(b.token(&assertion, &[], &[]).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    // Node B itself works, and publishes the same keys.
    assert_eq!(
        b.token(&b.assertion("agent-n", &key), &[], &[])
            .await
            .status(),
        200
    );
    assert_eq!(
        serde_json::to_value(a.jwks().await).unwrap(),
        serde_json::to_value(b.jwks().await).unwrap()
    );
    b.ts.server.shutdown().await;
    a.ts.server.shutdown().await;

    // With `replay = "memory"` each node only knows its own jtis (single-node setups).
    let memory = |c: &mut aims_server::Config| {
        set_issuer(c);
        c.oauth.replay = aims_server::config::ReplayBackend::Memory;
    };
    let a = start(memory).await;
    let url = a.ts.server.state().config.storage_url();
    let b = start(|c| {
        memory(c);
        c.storage.url = Some(url);
    })
    .await;
    a.ts.admin()
        .create_client(&pkjwt_client("agent-m", &key))
        .await
        .unwrap();
    let assertion = a.assertion("agent-m", &key);
    assert_eq!(a.token(&assertion, &[], &[]).await.status(), 200);
    assert_eq!(a.token(&assertion, &[], &[]).await.status(), 401);
    assert_eq!(b.token(&assertion, &[], &[]).await.status(), 200);
    b.ts.server.shutdown().await;
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn oauth_can_be_disabled() {
    let a = testkit::start_with("example.org", system_clock(), |c| c.oauth.enabled = false)
        .await
        .unwrap();
    assert!(a.server.endpoints().oauth_issuer.is_none());
    let r = reqwest::get(format!(
        "http://{}/.well-known/oauth-authorization-server",
        a.server.endpoints().http
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    a.server.shutdown().await;
}

#[tokio::test]
async fn clients_admin_api_round_trip() {
    let ts = testkit::start_default("example.org").await.unwrap();
    let admin = ts.admin();
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    // A client id that needs percent-encoding in the path.
    let id = "spiffe://example.org/agent/x y";
    let mut meta = pkjwt_client(id, &key);
    let created = admin.create_client(&meta).await.unwrap();
    assert_eq!(created.revision, 1);
    assert_eq!(created.metadata, meta);
    let dup = admin.create_client(&meta).await.unwrap_err();
    assert_eq!(dup.status(), Some(409));
    assert_eq!(admin.get_client(id).await.unwrap().metadata, meta);
    assert_eq!(admin.list_clients().await.unwrap().len(), 1);

    meta.scope = "api:read".into();
    let updated = admin.update_client(&meta, Some(1)).await.unwrap();
    assert_eq!(updated.revision, 2);
    assert_eq!(updated.metadata.scope, "api:read");
    let stale = admin.update_client(&meta, Some(1)).await.unwrap_err();
    assert_eq!(stale.status(), Some(409));

    // Rules: Client::new's, and the server's (no private keys, no secrets).
    let mut bad = pkjwt_client("bad", &key);
    bad.grant_types.clear();
    let e = admin.create_client(&bad).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    let mut private = pkjwt_client("private", &key);
    private.jwks.as_mut().unwrap().keys[0]
        .extra
        .insert("d".into(), Value::String("AAAA".into()));
    let e = admin.create_client(&private).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(e.to_string().contains("private key"), "{e}");

    admin.delete_client(id).await.unwrap();
    assert_eq!(admin.get_client(id).await.unwrap_err().status(), Some(404));
    assert_eq!(
        admin.delete_client(id).await.unwrap_err().status(),
        Some(404)
    );
    ts.server.shutdown().await;
}

/// A third-party OAuth client library (the `oauth2` crate, over our reqwest) gets a
/// token with client_credentials + private_key_jwt.
#[tokio::test]
async fn oauth2_crate_client_credentials_exchange() {
    use oauth2::TokenResponse as _;

    let a = start(|_| {}).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    a.ts.admin()
        .create_client(&pkjwt_client("agent-lib", &key))
        .await
        .unwrap();
    let client = oauth2::basic::BasicClient::new(oauth2::ClientId::new("agent-lib".into()))
        .set_auth_type(oauth2::AuthType::RequestBody)
        .set_token_uri(oauth2::TokenUrl::new(format!("{}/oauth/token", a.base)).unwrap());
    let http = a.http.clone();
    let send = move |req: oauth2::HttpRequest| {
        let http = http.clone();
        async move {
            let resp = http.execute(reqwest::Request::try_from(req)?).await?;
            let mut out = http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                out = out.header(k, v);
            }
            let body = resp.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(out.body(body).unwrap())
        }
    };
    let assertion = a.assertion("agent-lib", &key);
    let token = client
        .exchange_client_credentials()
        .add_scope(oauth2::Scope::new("api:read".into()))
        .add_extra_param("client_assertion_type", ASSERTION_TYPE)
        .add_extra_param("client_assertion", assertion.clone())
        .add_extra_param("resource", API)
        .request_async(&send)
        .await
        .unwrap();
    assert_eq!(*token.token_type(), oauth2::basic::BasicTokenType::Bearer);
    assert_eq!(
        token
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["api:read".to_owned()])
    );
    let claims = a.verify(token.access_token().secret(), API).await;
    assert_eq!(claims.client_id, "agent-lib");

    // The library surfaces our RFC 6749 error body.
    let err = client
        .exchange_client_credentials()
        .add_extra_param("client_assertion_type", ASSERTION_TYPE)
        .add_extra_param("client_assertion", assertion)
        .request_async(&send)
        .await
        .unwrap_err();
    match err {
        oauth2::RequestTokenError::ServerResponse(r) => {
            assert_eq!(
                *r.error(),
                oauth2::basic::BasicErrorResponseType::InvalidClient
            );
        }
        other => panic!("unexpected error: {other:?}"),
    }
    a.ts.server.shutdown().await;
}

/// A `MakeWriter` into a shared buffer (the audit events, as the log shows them).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Captures this thread's log lines at INFO and above until the guard drops.
fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

/// Every issuance and every refused token request is an audit event (the current-thread
/// test runtime runs the server's tasks on this thread, under this subscriber).
#[tokio::test]
async fn token_requests_are_audited() {
    let (captured, _guard) = capture_logs();

    let a = start(|_| {}).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    a.ts.admin()
        .create_client(&pkjwt_client("agent-au", &key))
        .await
        .unwrap();
    let assertion = a.assertion("agent-au", &key);
    let r = a
        .token(
            &assertion,
            &[("client_id", "agent-au")],
            &[("x-request-id", "audit-ok")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = a
        .token(
            &assertion,
            &[("client_id", "agent-au")],
            &[("x-request-id", "audit-replay")],
        )
        .await;
    assert_eq!(r.status(), 401);
    a.ts.server.shutdown().await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let events: Vec<&str> = log.lines().filter(|l| l.contains("aims::audit")).collect();
    let allow = events
        .iter()
        .find(|l| l.contains("correlation_id=audit-ok"))
        .unwrap_or_else(|| panic!("no audit event for the issuance:\n{log}"));
    for part in [
        "agent=agent-au",
        "mechanism=\"private_key_jwt\"",
        "delegated_subject=\"none\"",
        "resource=https://api.example.test/",
        "action=client_credentials",
        "decision=\"allow\"",
        "risk_state=unknown",
        "remediation=none",
    ] {
        assert!(allow.contains(part), "{part} missing in {allow}");
    }
    let deny = events
        .iter()
        .find(|l| l.contains("correlation_id=audit-replay"))
        .unwrap_or_else(|| panic!("no audit event for the refusal:\n{log}"));
    for part in [
        "agent=unverified:agent-au",
        "decision=\"deny\"",
        "reason=\"invalid_client\"",
        "remediation=reject",
    ] {
        assert!(deny.contains(part), "{part} missing in {deny}");
    }
    assert!(
        !log.contains(&assertion),
        "the assertion must not be logged"
    );
}

/// OAuth token keys rotate like the JWT keys: the next key is in the JWKS before it signs,
/// the previous one stays until its tokens expired; none of them is in the bundle.
/// The audit event names how the client authenticated, or tried to, whatever the method
/// (here a legacy secret in HTTP Basic, which carries no assertion type).
#[tokio::test]
async fn the_audit_mechanism_is_the_client_authentication_method() {
    let (captured, _guard) = capture_logs();

    let a = start(|c| c.oauth.allow_client_secrets = true).await;
    let dummy = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut m = pkjwt_client("legacy-au", &dummy);
    m.jwks = None;
    m.token_endpoint_auth_method = AuthMethod::ClientSecretBasic;
    let created = a.ts.admin().create_client(&m).await.unwrap();
    let secret = created.client_secret.unwrap().expose().to_owned();
    let basic = format!(
        "Basic {}",
        aims_crypto::b64::encode_std(format!("legacy-au:{secret}"))
    );
    let r = a
        .post(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", &basic), ("x-request-id", "audit-basic")],
        )
        .await;
    assert_eq!(r.status(), 200);
    // A refusal names the method the request attempted.
    let wrong = format!(
        "Basic {}",
        aims_crypto::b64::encode_std("legacy-au:not-the-secret")
    );
    let r = a
        .post(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[
                ("authorization", &wrong),
                ("x-request-id", "audit-basic-bad"),
            ],
        )
        .await;
    assert_eq!(r.status(), 401);
    a.ts.server.shutdown().await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The refusal names the client the Basic credentials claimed, marked unverified.
    for (id, decision, agent) in [
        ("audit-basic", "allow", "legacy-au"),
        ("audit-basic-bad", "deny", "unverified:legacy-au"),
    ] {
        let event = log
            .lines()
            .find(|l| l.contains("aims::audit") && l.contains(&format!("correlation_id={id} ")))
            .unwrap_or_else(|| panic!("no audit event {id}:\n{log}"));
        assert!(
            event.contains("mechanism=\"client_secret_basic\"")
                && event.contains(&format!("decision=\"{decision}\""))
                && event.contains(&format!(" agent={agent} ")),
            "{event}"
        );
    }
}

/// Introspection and revocation are audit events too: the caller as the agent, the
/// token's audiences as the resource, allow for an active token and deny
/// (`inactive_token`) for any other, the revocation as the remediation, a refused
/// caller as a deny.
#[tokio::test]
async fn introspection_and_revocation_are_audited() {
    let (captured, _guard) = capture_logs();

    let a = start(|_| {}).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    a.ts.admin()
        .create_client(&pkjwt_client("agent-ai", &key))
        .await
        .unwrap();
    let r = a
        .token(
            &a.assertion("agent-ai", &key),
            &[("client_id", "agent-ai")],
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    let at = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = |path: &'static str, id: &'static str, authenticated: bool| {
        let assertion = a.assertion("agent-ai", &key);
        let at = at.clone();
        let a = &a;
        async move {
            let mut form = vec![("token", at.as_str())];
            if authenticated {
                form.push(("client_assertion_type", ASSERTION_TYPE));
                form.push(("client_assertion", assertion.as_str()));
            }
            a.post(path, &form, &[("x-request-id", id)]).await.status()
        }
    };
    assert_eq!(call("/oauth/introspect", "au-intro", true).await, 200);
    assert_eq!(call("/oauth/revoke", "au-revoke", true).await, 200);
    assert_eq!(call("/oauth/revoke", "au-revoke-again", true).await, 200);
    assert_eq!(
        call("/oauth/introspect", "au-intro-inactive", true).await,
        200
    );
    assert_eq!(call("/oauth/introspect", "au-intro-anon", false).await, 401);
    assert_eq!(call("/oauth/revoke", "au-revoke-anon", false).await, 401);
    a.ts.server.shutdown().await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let event = |id: &str| {
        log.lines()
            .find(|l| l.contains("aims::audit") && l.contains(&format!("correlation_id={id} ")))
            .unwrap_or_else(|| panic!("no audit event {id}:\n{log}"))
            .to_owned()
    };
    let expect: [(&str, &[&str]); 6] = [
        (
            "au-intro",
            &[
                "agent=agent-ai",
                "mechanism=\"private_key_jwt\"",
                "resource=https://api.example.test/",
                "action=introspect",
                "decision=\"allow\"",
                "remediation=none",
            ],
        ),
        (
            "au-revoke",
            &[
                "agent=agent-ai",
                "resource=https://api.example.test/",
                "action=revoke",
                "decision=\"allow\"",
                "remediation=access token revoked ",
            ],
        ),
        (
            "au-revoke-again",
            &[
                "action=revoke",
                "decision=\"allow\"",
                "remediation=none (token",
            ],
        ),
        (
            "au-intro-inactive",
            &[
                "agent=agent-ai",
                "resource=/oauth/introspect",
                "decision=\"deny\"",
                "reason=\"inactive_token\"",
            ],
        ),
        (
            "au-intro-anon",
            &[
                "agent=unauthenticated",
                "action=introspect",
                "reason=\"invalid_client\"",
                "remediation=reject",
            ],
        ),
        (
            "au-revoke-anon",
            &[
                "agent=unauthenticated",
                "action=revoke",
                "reason=\"invalid_client\"",
                "remediation=reject",
            ],
        ),
    ];
    for (id, parts) in expect {
        let e = event(id);
        for part in parts {
            assert!(e.contains(part), "{part} missing in {e}");
        }
    }
    assert!(!log.contains(&at), "the access token must not be logged");
}

#[tokio::test]
async fn token_keys_rotate_with_overlap() {
    use aims_server::config::Seconds;

    let t0 = now();
    let clock = aims_core::ManualClock::new(t0);
    let ts = testkit::start_with("example.org", Arc::new(clock.clone()), |c| {
        c.bundle.refresh_hint = Seconds(60);
        c.storage.poll_interval = Seconds(5);
        c.jwt.rotation_period = toml::Spanned::new(0..0, Seconds(600));
        c.ca.ttl = toml::Spanned::new(0..0, Seconds(6000));
    })
    .await
    .unwrap();
    let issuer = ts.server.endpoints().oauth_issuer.clone().unwrap();
    let a = As {
        base: format!("http://{}", ts.server.endpoints().http),
        issuer: issuer.clone(),
        http: reqwest::Client::new(),
        ts,
    };
    let state = a.ts.server.state().clone();
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut client = pkjwt_client("agent-r", &key);
    // Longer than a key stays published after its handover (one rotation period).
    client.access_token_lifetime = Some(3600);
    a.ts.admin().create_client(&client).await.unwrap();
    let token_at = |iat: i64| {
        let claims = ClientAssertionClaims::new("agent-r", &issuer, iat, 60).unwrap();
        client_assertion::create(&claims, &key).unwrap()
    };
    let kid_of = |t: &str| Jws::decode(t).unwrap().header.kid.clone().unwrap();
    let kids = |j: &Jwks| {
        let mut v: Vec<String> = j.keys.iter().filter_map(|k| k.kid.clone()).collect();
        v.sort();
        v
    };
    let issue = |iat: i64| {
        let assertion = token_at(iat);
        let a = &a;
        async move {
            let r = a.token(&assertion, &[], &[]).await;
            assert_eq!(r.status(), 200);
            let b: Value = r.json().await.unwrap();
            b["access_token"].as_str().unwrap().to_owned()
        }
    };

    let first = issue(t0).await;
    let ka = kid_of(&first);
    assert_eq!(kids(&a.jwks().await), std::slice::from_ref(&ka));

    // Staged: published, not signing.
    clock.set(t0 + 600);
    state.sync().await.unwrap();
    let published = kids(&a.jwks().await);
    assert_eq!(published.len(), 2);
    let kb = published.iter().find(|k| **k != ka).unwrap().clone();
    let staged = issue(t0 + 600).await;
    assert_eq!(kid_of(&staged), ka, "the next key must not sign yet");
    // Its lifetime is cut to the end of key a's validity (published until then), not
    // the client's 3600 s: a relying party never meets it after a left the JWKS.
    let exp = Jws::unverified_claims(&staged).unwrap()["exp"]
        .as_i64()
        .unwrap();
    // Key a, made at t0: valid for its prepublication (a refresh hint and a poll
    // interval) plus two rotation periods.
    let a_not_after = t0 + 65 + 2 * 600;
    assert!(
        exp <= a_not_after,
        "exp {exp} after the key's end {a_not_after}"
    );
    assert!(
        exp > t0 + 600 + 600,
        "cut to the key's end, not shorter: {exp}"
    );
    let expires_in = a
        .token(&token_at(t0 + 600), &[], &[])
        .await
        .json::<Value>()
        .await
        .unwrap()["expires_in"]
        .as_i64()
        .unwrap();
    assert_eq!(
        expires_in,
        a_not_after - (t0 + 600),
        "expires_in matches exp"
    );

    // One refresh hint later: b signs, a stays published and still verifies.
    clock.set(t0 + 665);
    state.sync().await.unwrap();
    assert_eq!(kid_of(&issue(t0 + 665).await), kb);
    assert_eq!(kids(&a.jwks().await).len(), 2);
    let assertion = token_at(t0 + 666);
    let r = a
        .post(
            "/oauth/introspect",
            &[
                ("token", &staged),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
            &[],
        )
        .await;
    let i: Value = r.json().await.unwrap();
    assert_eq!(i["active"], true, "a token of the previous key: {i}");

    let bundle = a.get("/bundle").await.text().await.unwrap();
    assert!(!bundle.contains(&ka) && !bundle.contains(&kb));
    a.ts.server.shutdown().await;
}

/// A key set that could not be refreshed (no sync since, as with the database down)
/// may still hold a Current key past its end: nothing is signed with it (server_error),
/// and once the schedule runs again tokens are issued by the new key.
#[tokio::test]
async fn no_token_is_signed_by_a_key_past_its_end() {
    use aims_server::config::Seconds;

    let t0 = now();
    let clock = aims_core::ManualClock::new(t0);
    let ts = testkit::start_with("example.org", Arc::new(clock.clone()), |c| {
        c.bundle.refresh_hint = Seconds(60);
        c.jwt.rotation_period = toml::Spanned::new(0..0, Seconds(600));
        c.ca.ttl = toml::Spanned::new(0..0, Seconds(6000));
        // No background sync during the test: the test decides when keys are reloaded.
        c.storage.poll_interval = Seconds(3600);
    })
    .await
    .unwrap();
    let issuer = ts.server.endpoints().oauth_issuer.clone().unwrap();
    let a = As {
        base: format!("http://{}", ts.server.endpoints().http),
        issuer: issuer.clone(),
        http: reqwest::Client::new(),
        ts,
    };
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    a.ts.admin()
        .create_client(&pkjwt_client("agent-x", &key))
        .await
        .unwrap();
    let request = |iat: i64| {
        let claims = ClientAssertionClaims::new("agent-x", &issuer, iat, 60).unwrap();
        let assertion = client_assertion::create(&claims, &key).unwrap();
        let a = &a;
        async move { a.token(&assertion, &[], &[]).await }
    };
    let id = "spiffe://example.org/agent/expiry-it";
    a.ts.admin()
        .create_entry(&spec(
            id,
            &[uid_selector().as_str(), exe_selector().as_str()],
        ))
        .await
        .unwrap();
    let wl = spiffe::WorkloadApiClient::connect_to(a.ts.workload_endpoint())
        .await
        .unwrap();
    let spiffe_id = spiffe::SpiffeId::new(id).unwrap();
    let jwt_svid = || wl.fetch_jwt_svid(["aud"], Some(&spiffe_id));
    assert_eq!(request(t0).await.status(), 200);
    assert!(jwt_svid().await.is_ok());
    // The first keys end at t0 + 60 + 3600 + 2 × 600 (refresh hint, poll interval, two
    // rotation periods); no sync has run since t0.
    clock.set(t0 + 4900);
    let r = request(t0 + 4900).await;
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
    assert!(
        jwt_svid().await.is_err(),
        "no JWT-SVID from a key past its end"
    );
    a.ts.server.state().sync().await.unwrap();
    assert_eq!(request(t0 + 4900).await.status(), 200);
    assert!(jwt_svid().await.is_ok());
    a.ts.server.shutdown().await;
}
