//! Token-type confusion at a resource server: an axum app guarded by aims-guard, whose
//! access-token keys come from the running AIMS server's JWKS (RFC 8414 discovery through
//! `JwksCache`). Only an AIMS access token (`typ` `at+jwt`) for this resource, with the
//! scope the route needs, passes; JWT-SVIDs, WITs and ID-token-shaped JWTs signed by the
//! server's own keys, tokens for another resource, and replayed DPoP proofs do not.

use std::sync::Arc;

use aims_core::{SpiffeId, SystemClock, TrustDomain, WorkloadId};
use aims_crypto::{Algorithm, Signer as _, SigningKey};
use aims_guard::{
    AccessTokenIssuer, AuthenticatedAgent, Guard, GuardConfig, GuardLayer, JwksCache, Mechanism,
};
use aims_jose::dpop::create_proof;
use aims_jose::{HeaderSpec, jwt_svid, sign, wit};
use axum::Router;
use axum::routing::get;
use serde_json::Value;

use crate::oauth::{As, pkjwt_client, start};

/// aims-guard takes the token's `client_id` as the calling agent's workload identifier,
/// so these clients are named by SPIFFE IDs.
const AGENT_RS: &str = "spiffe://example.org/agent/rs";
const AGENT_DP: &str = "spiffe://example.org/agent/dp";
const API: &str = "https://api.example.test/";
const OTHER: &str = "https://other.example.test/";
/// The resource server's public origin (DPoP `htu`).
const RS_ORIGIN: &str = "https://api.example.test";

async fn whoami(agent: AuthenticatedAgent) -> String {
    format!(
        "{} {}",
        agent.mechanism().as_str(),
        agent.delegated_subject().unwrap_or("-")
    )
}

/// The guarded resource server on a loopback port; its base URL.
async fn resource_server(a: &As) -> String {
    let cache = JwksCache::builder(&a.issuer, reqwest::Client::new())
        .build()
        .unwrap();
    let cfg = GuardConfig::builder(Arc::clone(a.ts.server.state().tls.trust_store()))
        .clock(Arc::new(SystemClock))
        .authority(RS_ORIGIN)
        .trust_domain(TrustDomain::new("example.org").unwrap())
        .enable(Mechanism::Bearer)
        .enable(Mechanism::Dpop)
        .access_token_issuer(AccessTokenIssuer::new(&a.issuer, API).jwks(cache))
        .build()
        .unwrap();
    let guard = Guard::new(cfg).unwrap();
    let layer = GuardLayer::new(guard).require_scopes(["api:read"]);
    let app = Router::new().route("/api", get(whoami).layer(layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn call(rs: &str, auth: &str, dpop: Option<&str>) -> u16 {
    call_full(rs, auth, dpop).await.0
}

/// Status and `DPoP-Nonce` of a request to `/api`.
async fn call_full(rs: &str, auth: &str, dpop: Option<&str>) -> (u16, Option<String>) {
    let mut req = reqwest::Client::new()
        .get(format!("{rs}/api"))
        .header("authorization", auth);
    if let Some(p) = dpop {
        req = req.header("dpop", p);
    }
    let r = req.send().await.unwrap();
    let nonce = r
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), nonce)
}

async fn access_token(a: &As, client: &str, key: &SigningKey, resource: &str) -> String {
    let r = a
        .token(
            &a.assertion(client, key),
            &[("scope", "api:read"), ("resource", resource)],
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn only_aims_access_tokens_for_this_resource_pass_the_guard() {
    let a = start(|_| {}).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut client = pkjwt_client(AGENT_RS, &key);
    client.resources = vec![API.to_owned(), OTHER.to_owned()];
    a.ts.admin().create_client(&client).await.unwrap();
    let rs = resource_server(&a).await;
    let now = crate::common::now();

    // The right token: accepted.
    let at = access_token(&a, AGENT_RS, &key, API).await;
    assert_eq!(call(&rs, &format!("Bearer {at}"), None).await, 200);
    // No token.
    assert_eq!(call(&rs, "Bearer ", None).await, 401);

    // Audience confusion: an AIMS token for another resource.
    let other = access_token(&a, AGENT_RS, &key, OTHER).await;
    assert_eq!(call(&rs, &format!("Bearer {other}"), None).await, 401);

    let keys = a.ts.server.state().keys.current().unwrap();
    let id = SpiffeId::parse("spiffe://example.org/agent/rs").unwrap();
    // A JWT-SVID for this very audience, signed by the trust domain's JWT-SVID key.
    let svid = jwt_svid::create(
        &jwt_svid::JwtSvidClaims::new(id.clone(), API, now, 300),
        &*keys.jwt().unwrap().key,
    )
    .unwrap();
    assert_eq!(call(&rs, &format!("Bearer {svid}"), None).await, 401);
    // A WIT, signed by the trust domain's WIT key.
    let workload_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let wit = wit::create(
        &wit::WitClaims::new(WorkloadId::from(id), workload_key.public_jwk(), now, 300).unwrap(),
        &*keys.wit().unwrap().key,
    )
    .unwrap();
    assert_eq!(call(&rs, &format!("Bearer {wit}"), None).await, 401);
    // An ID-token-shaped JWT (typ JWT) signed by the AS's own token key, with every
    // access-token claim.
    let id_token = sign(
        &HeaderSpec {
            typ: Some("JWT"),
            kid: true,
            jwk: false,
        },
        &serde_json::json!({
            "iss": a.issuer, "sub": "alice", "aud": API, "client_id": AGENT_RS,
            "iat": now, "exp": now + 300, "jti": "id-token-1", "scope": "api:read",
            "nonce": "n-1", "auth_time": now,
        }),
        &*keys.oauth().unwrap().key,
    )
    .unwrap();
    assert_eq!(call(&rs, &format!("Bearer {id_token}"), None).await, 401);
    // The same claims as `at+jwt` but signed by a key the AS does not publish.
    let untrusted = SigningKey::generate(Algorithm::ES256).unwrap();
    let forged = sign(
        &HeaderSpec {
            typ: Some("at+jwt"),
            kid: true,
            jwk: false,
        },
        &serde_json::json!({
            "iss": a.issuer, "sub": "alice", "aud": API, "client_id": AGENT_RS,
            "iat": now, "exp": now + 300, "jti": "forged-1", "scope": "api:read",
        }),
        &untrusted,
    )
    .unwrap();
    assert_eq!(call(&rs, &format!("Bearer {forged}"), None).await, 401);
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn a_dpop_bound_token_with_a_replayed_proof_is_refused() {
    let a = start(|_| {}).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut client = pkjwt_client(AGENT_DP, &key);
    client.dpop_bound_access_tokens = true;
    a.ts.admin().create_client(&client).await.unwrap();
    let rs = resource_server(&a).await;
    let dpop_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let now = crate::common::now();
    let proof = create_proof(
        &dpop_key,
        "POST",
        &format!("{}/oauth/token", a.issuer),
        None,
        None,
        now,
    )
    .unwrap();
    let r = a
        .token(
            &a.assertion(AGENT_DP, &key),
            &[("scope", "api:read"), ("resource", API)],
            &[("dpop", &proof)],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let at = body["access_token"].as_str().unwrap().to_owned();
    let htu = format!("{RS_ORIGIN}/api");
    let auth = format!("DPoP {at}");
    // The resource server wants its nonce in proofs (RFC 9449 §9).
    let proof = create_proof(&dpop_key, "GET", &htu, Some(&at), None, now).unwrap();
    let (status, nonce) = call_full(&rs, &auth, Some(&proof)).await;
    assert_eq!(status, 401);
    let nonce = nonce.unwrap();
    let proof = create_proof(&dpop_key, "GET", &htu, Some(&at), Some(&nonce), now).unwrap();
    assert_eq!(call(&rs, &auth, Some(&proof)).await, 200);
    // The same proof again: a replay.
    assert_eq!(call(&rs, &auth, Some(&proof)).await, 401);
    // A DPoP-bound token presented as a plain Bearer token.
    assert_eq!(call(&rs, &format!("Bearer {at}"), None).await, 401);
    // A fresh proof by another key.
    let thief = SigningKey::generate(Algorithm::ES256).unwrap();
    let stolen = create_proof(&thief, "GET", &htu, Some(&at), Some(&nonce), now).unwrap();
    assert_eq!(call(&rs, &auth, Some(&stolen)).await, 401);
    a.ts.server.shutdown().await;
}
