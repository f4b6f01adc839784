//! The resource-server toolkit: RFC 9728 metadata, JWKS cache (RFC 8414 discovery, key
//! rotation, single flight), RFC 7662 introspection, Bearer / DPoP / certificate-bound
//! tokens, RFC 6750 scope and RFC 9470 step-up challenges, audit events. The
//! authorization server is a minimal axum app on 127.0.0.1:0 with keys the test holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aims_crypto::{Algorithm, Jwks, Signer, SigningKey};
use aims_guard::audit::Decision;
use aims_guard::{
    AccessTokenIssuer, AgentId, AuthenticatedAgent, FetchError, Guard, GuardConfig,
    GuardConfigBuilder, GuardLayer, Introspector, JwksCache, Mechanism, ProtectedResourceMetadata,
};
use aims_jose::StaticKeys;
use aims_jose::access_token::{
    self, AccessTokenClaims, Actor, AuthorizationDetail, Confirmation, Scope,
};
use aims_jose::client_assertion;
use aims_jose::dpop::create_proof;
use axum::extract::State;
use axum::routing::{any, get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};

use crate::common::{AGENT, AUTHORITY, Env, client, problem_code, serve};
use crate::mtls::{SVC, start_tls, svid, tls_client};

const RESOURCE: &str = "https://svc-b.example.test/api";
const RS_CLIENT: &str = "spiffe://example.org/svc-b";

/// The test authorization server.
#[derive(Clone)]
struct As {
    issuer: Arc<Mutex<String>>,
    metadata_issuer: Arc<Mutex<Option<String>>>,
    jwks: Arc<Mutex<Jwks>>,
    jwks_hits: Arc<AtomicUsize>,
    /// How long the JWKS and introspection endpoints take to answer.
    jwks_delay: Duration,
    introspection: Arc<Mutex<HashMap<String, Value>>>,
    introspection_hits: Arc<AtomicUsize>,
    rs_key: Arc<StaticKeys>,
    clock: Arc<dyn aims_core::Clock>,
}

async fn as_metadata(State(s): State<As>) -> Json<Value> {
    let issuer = s.issuer.lock().unwrap().clone();
    let advertised = s
        .metadata_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or(issuer.clone());
    Json(json!({
        "issuer": advertised,
        "jwks_uri": format!("{issuer}/jwks"),
        "introspection_endpoint": format!("{issuer}/introspect"),
    }))
}

async fn as_jwks(State(s): State<As>) -> Json<Jwks> {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(s.jwks_delay).await;
    Json(s.jwks.lock().unwrap().clone())
}

async fn as_introspect(
    State(s): State<As>,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Json<Value>, axum::http::StatusCode> {
    s.introspection_hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(s.jwks_delay).await;
    // private_key_jwt: the RS authenticates with an RFC 7523 assertion for our issuer.
    let issuer = s.issuer.lock().unwrap().clone();
    if f.get("client_assertion_type").map(String::as_str) != Some(client_assertion::ASSERTION_TYPE)
    {
        return Err(axum::http::StatusCode::UNAUTHORIZED);
    }
    client_assertion::Validator::new(s.clock.clone(), issuer)
        .validate_for_client(&f["client_assertion"], RS_CLIENT, s.rs_key.as_ref())
        .map_err(|_| axum::http::StatusCode::UNAUTHORIZED)?;
    let token = f.get("token").cloned().unwrap_or_default();
    let r = s.introspection.lock().unwrap().get(&token).cloned();
    Ok(Json(r.unwrap_or(json!({"active": false}))))
}

struct Fixture {
    env: Env,
    as_: As,
    issuer: String,
    signing: SigningKey,
    rs_key: Arc<SigningKey>,
}

impl Fixture {
    async fn new(jwks_delay: Duration) -> Self {
        let env = Env::new();
        let signing = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("k1");
        let rs_key = Arc::new(
            SigningKey::generate(Algorithm::ES256)
                .unwrap()
                .with_kid("rs-1"),
        );
        let mut rs_keys = StaticKeys::new();
        rs_keys.add_key(
            RS_CLIENT,
            Some("rs-1".into()),
            rs_key.verifying_key().clone(),
        );
        let as_ = As {
            issuer: Arc::default(),
            metadata_issuer: Arc::default(),
            jwks: Arc::new(Mutex::new(Jwks {
                keys: vec![signing.public_jwk().clone()],
            })),
            jwks_hits: Arc::default(),
            jwks_delay,
            introspection: Arc::default(),
            introspection_hits: Arc::default(),
            rs_key: Arc::new(rs_keys),
            clock: env.arc_clock(),
        };
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(as_metadata))
            .route("/jwks", get(as_jwks))
            .route("/introspect", post(as_introspect))
            .with_state(as_.clone());
        let addr = serve(app).await;
        let issuer = format!("http://{addr}");
        *as_.issuer.lock().unwrap() = issuer.clone();
        Self {
            env,
            as_,
            issuer,
            signing,
            rs_key,
        }
    }

    fn jwks_cache(&self) -> JwksCache {
        JwksCache::builder(&self.issuer, client())
            .clock(self.env.arc_clock())
            .build()
            .unwrap()
    }

    fn introspector(&self) -> Introspector {
        Introspector::builder(
            format!("{}/introspect", self.issuer),
            &self.issuer,
            RS_CLIENT,
            self.rs_key.clone(),
            client(),
        )
        .clock(self.env.arc_clock())
        .max_cache_ttl(300)
        .build()
        .unwrap()
    }

    /// A resource server that checks tokens by introspection: its introspector and the
    /// URL of its protected route.
    async fn introspecting_server(&self) -> (Introspector, String) {
        let introspector = self.introspector();
        let guard = self.guard(
            AccessTokenIssuer::new(&self.issuer, RESOURCE).introspection(introspector.clone()),
        );
        let addr = serve(rs_app(&guard)).await;
        (introspector, format!("http://{addr}/api/files"))
    }

    fn guard(&self, issuer: AccessTokenIssuer) -> Guard {
        self.guard_with(issuer, |b| b)
    }

    fn guard_with(
        &self,
        issuer: AccessTokenIssuer,
        adjust: impl FnOnce(GuardConfigBuilder) -> GuardConfigBuilder,
    ) -> Guard {
        let b = GuardConfig::builder(self.env.trust.clone())
            .clock(self.env.arc_clock())
            .authority(AUTHORITY)
            .trust_domain(self.env.td.clone())
            .enable(Mechanism::Bearer)
            .enable(Mechanism::Dpop)
            .enable(Mechanism::Mtls)
            .access_token_issuer(issuer)
            .resource_metadata(aims_guard::protected_resource_metadata_url(RESOURCE).unwrap())
            .audit_sink(Arc::new(self.env.audit.clone()));
        Guard::new(adjust(b).build().unwrap()).unwrap()
    }

    fn claims(&self, sub: &str) -> AccessTokenClaims {
        AccessTokenClaims::new(&self.issuer, sub, AGENT, RESOURCE, self.env.now(), 600).unwrap()
    }

    fn token(&self, c: &AccessTokenClaims, key: &SigningKey) -> String {
        access_token::issue(c, key).unwrap()
    }
}

async fn info(agent: AuthenticatedAgent) -> Json<Value> {
    let t = agent.access_token();
    Json(json!({
        "id": agent.id().as_str(),
        "workload": matches!(agent.id(), AgentId::Workload(_)),
        "mechanism": agent.mechanism().as_str(),
        "delegated": agent.delegated_subject(),
        "scope": t.map(|t| t.scope().to_string()),
        "acr": t.and_then(|t| t.acr()),
        "auth_time": t.and_then(|t| t.auth_time()),
        "actors": t.map(|t| t.actors().iter().map(|a| a.sub.clone()).collect::<Vec<_>>()),
        "details": t.map(|t| t.authorization_details().iter().map(|d| d.type_.clone()).collect::<Vec<_>>()),
        "bound": agent.bound_key().map(|k| format!("{k:?}")),
    }))
}

/// `/api` (any token), `/api/files` (scope files:read), `/api/admin` (acr + max_age),
/// `/api/dpop` (DPoP-bound only), plus the RFC 9728 document.
fn rs_app(guard: &Guard) -> Router {
    let layer = GuardLayer::new(guard.clone());
    let mut meta = ProtectedResourceMetadata::new(RESOURCE).unwrap();
    meta.authorization_servers = vec!["https://as.example.test".into()];
    meta.scopes_supported = vec!["files:read".into()];
    meta.tls_client_certificate_bound_access_tokens = Some(true);
    meta.resource_name = Some("svc-b".into());
    Router::new()
        .route("/api", any(info).layer(layer.clone()))
        .route(
            "/api/files",
            any(info).layer(layer.clone().require_scopes(["files:read"])),
        )
        .route(
            "/api/admin",
            any(info).layer(layer.clone().require_acr(["urn:loa:3"]).max_age(300)),
        )
        .route("/api/dpop", any(info).layer(layer.require_dpop_bound()))
        .merge(meta.router())
}

fn www(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

const PRM: &str =
    "resource_metadata=\"https://svc-b.example.test/.well-known/oauth-protected-resource/api\"";

#[tokio::test]
async fn metadata_is_served_at_the_well_known_path() {
    let f = Fixture::new(Duration::ZERO).await;
    let guard = f.guard(AccessTokenIssuer::new(&f.issuer, RESOURCE).jwks(f.jwks_cache()));
    let addr = serve(rs_app(&guard)).await;
    let r = client()
        .get(format!(
            "http://{addr}/.well-known/oauth-protected-resource/api"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["resource"], RESOURCE,
        "resource equals the identifier exactly"
    );
    assert_eq!(v["bearer_methods_supported"], json!(["header"]));
    assert_eq!(v["tls_client_certificate_bound_access_tokens"], true);
    assert!(v["dpop_signing_alg_values_supported"].as_array().is_some());
    // Not at the path-less well-known URL (that would be another resource).
    let r = client()
        .get(format!(
            "http://{addr}/.well-known/oauth-protected-resource"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Not a resource identifier: query, fragment, plain http to a remote host.
    assert!(ProtectedResourceMetadata::new("https://svc-b.example.test/api?x=1").is_err());
    assert!(ProtectedResourceMetadata::new("http://svc-b.example.test/api").is_err());
}

#[tokio::test]
async fn jwks_cache_follows_rotation_and_single_flights() {
    let f = Fixture::new(Duration::from_millis(200)).await;
    let cache = f.jwks_cache();
    let guard = f.guard(AccessTokenIssuer::new(&f.issuer, RESOURCE).jwks(cache.clone()));
    let addr = serve(rs_app(&guard)).await;
    let url = format!("http://{addr}/api");

    // First use: discovery, one JWKS fetch, token accepted as Bearer.
    let t1 = f.token(&f.claims(AGENT), &f.signing);
    let r = client().get(&url).bearer_auth(&t1).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(f.as_.jwks_hits.load(Ordering::SeqCst), 1);
    assert_eq!(cache.kids(), vec!["k1".to_owned()]);

    // The AS rotates (k1 and k2 published, k2 signs).
    let k2 = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("k2");
    f.as_
        .jwks
        .lock()
        .unwrap()
        .keys
        .push(k2.public_jwk().clone());
    // Within the refresh interval an unknown kid does not trigger a fetch: refused.
    let t2 = f.token(&f.claims(AGENT), &k2);
    let r = client().get(&url).bearer_auth(&t2).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(problem_code(r).await, "access-token-unknown-key");
    assert_eq!(f.as_.jwks_hits.load(Ordering::SeqCst), 1);

    // Later: a burst of k2 tokens makes one fetch, and all are accepted.
    f.env.clock.advance(31);
    let t2 = f.token(&f.claims(AGENT), &k2);
    let burst = (0..8).map(|_| client().get(&url).bearer_auth(&t2).send());
    for r in futures_join(burst).await {
        assert_eq!(r.unwrap().status(), 200);
    }
    assert_eq!(f.as_.jwks_hits.load(Ordering::SeqCst), 2, "single flight");
    assert_eq!(cache.kids(), vec!["k1".to_owned(), "k2".to_owned()]);

    // A burst of made-up kids: one fetch, all refused.
    f.env.clock.advance(31);
    let mut tokens = Vec::new();
    for i in 0..8 {
        let rogue = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid(format!("rogue-{i}"));
        tokens.push(f.token(&f.claims(AGENT), &rogue));
    }
    let burst = tokens
        .iter()
        .map(|t| client().get(&url).bearer_auth(t).send());
    for r in futures_join(burst).await {
        assert_eq!(r.unwrap().status(), 401);
    }
    assert_eq!(f.as_.jwks_hits.load(Ordering::SeqCst), 3, "single flight");

    // k1 retired by the AS: after the TTL the background refresh drops it.
    f.as_.jwks.lock().unwrap().keys.remove(0);
    f.env.clock.advance(aims_guard::jwks::DEFAULT_JWKS_TTL);
    let t1 = f.token(&f.claims(AGENT), &f.signing);
    let r = client().get(&url).bearer_auth(&t1).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "stale keys keep serving during the refresh"
    );
    for _ in 0..50 {
        if cache.kids() == vec!["k2".to_owned()] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache.kids(), vec!["k2".to_owned()]);
    let r = client().get(&url).bearer_auth(&t1).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

async fn futures_join<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn metadata_issuer_mismatch_is_refused() {
    let f = Fixture::new(Duration::ZERO).await;
    *f.as_.metadata_issuer.lock().unwrap() = Some(format!("{}/", f.issuer));
    let cache = f.jwks_cache();
    assert_eq!(
        cache.refresh().await.unwrap_err(),
        FetchError::IssuerMismatch
    );
    assert!(cache.kids().is_empty());
    // Through the guard: no keys, fail closed with 503.
    let guard = f.guard(AccessTokenIssuer::new(&f.issuer, RESOURCE).jwks(cache));
    let addr = serve(rs_app(&guard)).await;
    let t = f.token(&f.claims(AGENT), &f.signing);
    let r = client()
        .get(format!("http://{addr}/api"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(problem_code(r).await, "token-source-unavailable");
    // A jwks_uri that is plain http to a remote host is refused at build time.
    assert!(matches!(
        JwksCache::builder("https://as.example.test", client())
            .jwks_uri("http://as.example.test/jwks")
            .build(),
        Err(FetchError::InsecureUrl(_))
    ));
}

/// Concurrent requests with one token not yet cached make one introspection call: the
/// others wait for its answer (single flight).
#[tokio::test]
async fn concurrent_misses_for_one_token_introspect_once() {
    let f = Fixture::new(Duration::from_millis(200)).await;
    let (introspector, url) = f.introspecting_server().await;
    let now = f.env.now();
    f.as_.introspection.lock().unwrap().insert(
        "opaque-burst".into(),
        json!({"active": true, "client_id": AGENT, "scope": "files:read",
               "aud": RESOURCE, "iss": f.issuer, "exp": now + 30}),
    );
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let r = client().get(&url).bearer_auth("opaque-burst").send().await;
                r.unwrap().status()
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(f.as_.introspection_hits.load(Ordering::SeqCst), 1);
    assert_eq!(introspector.request_count(), 1);
}

#[tokio::test]
async fn introspection_active_inactive_and_cache() {
    let f = Fixture::new(Duration::ZERO).await;
    let (introspector, url) = f.introspecting_server().await;
    let now = f.env.now();
    {
        let mut m = f.as_.introspection.lock().unwrap();
        m.insert(
            "opaque-active".into(),
            json!({"active": true, "client_id": AGENT, "sub": "user:alice", "scope": "files:read",
                   "aud": RESOURCE, "iss": f.issuer, "exp": now + 30, "token_type": "Bearer",
                   "act": {"sub": "spiffe://example.org/orchestrator"}}),
        );
        m.insert(
            "opaque-other-aud".into(),
            json!({"active": true, "client_id": AGENT, "aud": "https://elsewhere.test", "exp": now + 30}),
        );
    }
    let get = |t: &'static str| client().get(&url).bearer_auth(t).send();

    let r = get("opaque-active").await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], AGENT);
    assert_eq!(v["delegated"], "user:alice");
    assert_eq!(v["actors"], json!(["spiffe://example.org/orchestrator"]));
    assert_eq!(introspector.request_count(), 1);

    // Cached: no second call within exp.
    f.env.clock.advance(10);
    assert_eq!(get("opaque-active").await.unwrap().status(), 200);
    assert_eq!(f.as_.introspection_hits.load(Ordering::SeqCst), 1);
    // Forgotten (a revocation signal): asked again, then cached again.
    introspector.forget("opaque-active");
    assert_eq!(get("opaque-active").await.unwrap().status(), 200);
    assert_eq!(f.as_.introspection_hits.load(Ordering::SeqCst), 2);
    introspector.forget_all();
    assert_eq!(get("opaque-active").await.unwrap().status(), 200);
    assert_eq!(get("opaque-active").await.unwrap().status(), 200);
    assert_eq!(f.as_.introspection_hits.load(Ordering::SeqCst), 3);

    // Inactive: invalid_token.
    let r = get("opaque-unknown").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        www(&r).starts_with("Bearer error=\"invalid_token\""),
        "{}",
        www(&r)
    );
    assert!(www(&r).contains(PRM));
    assert_eq!(problem_code(r).await, "access-token-inactive");

    // Another audience: refused.
    let r = get("opaque-other-aud").await.unwrap();
    assert_eq!(problem_code(r).await, "access-token-audience-mismatch");

    // The cache entry ends at the token's exp (before the 300 s max TTL): asked again,
    // and the expired token is refused.
    f.env.clock.advance(21 + aims_jose::time::DEFAULT_LEEWAY);
    let hits = f.as_.introspection_hits.load(Ordering::SeqCst);
    let r = get("opaque-active").await.unwrap();
    assert_eq!(f.as_.introspection_hits.load(Ordering::SeqCst), hits + 1);
    assert_eq!(problem_code(r).await, "access-token-expired");
}

#[tokio::test]
async fn bearer_dpop_and_bound_tokens() {
    let f = Fixture::new(Duration::ZERO).await;
    let guard = f.guard(AccessTokenIssuer::new(&f.issuer, RESOURCE).jwks(f.jwks_cache()));
    let addr = serve(rs_app(&guard)).await;
    let url = format!("http://{addr}/api");

    // No credentials: challenge without error code, with resource_metadata.
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let w = www(&r);
    assert!(w.contains(&format!("Bearer {PRM}")), "{w}");
    assert!(w.contains("DPoP algs="), "{w}");
    assert!(!w.contains("error="), "{w}");

    // Bearer, delegated, with act and authorization_details.
    let mut c = f.claims("user:alice");
    c.scope = Scope::parse("files:read").unwrap();
    c.act = vec![Actor::new("spiffe://example.org/orchestrator")];
    c.authorization_details = Some(vec![AuthorizationDetail::new("payment_initiation")]);
    let t = f.token(&c, &f.signing);
    let r = client().get(&url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["mechanism"], "bearer");
    assert_eq!(v["id"], AGENT);
    assert_eq!(v["delegated"], "user:alice");
    assert_eq!(v["scope"], "files:read");
    assert_eq!(v["details"], json!(["payment_initiation"]));
    assert_eq!(v["actors"], json!(["spiffe://example.org/orchestrator"]));
    let e = f.env.audit.events().last().unwrap().clone();
    assert_eq!(e.decision, Decision::Allow);
    assert_eq!(e.agent, AGENT);
    assert_eq!(e.delegated_subject.as_deref(), Some("user:alice"));
    assert_eq!(
        e.actors,
        vec!["spiffe://example.org/orchestrator".to_owned()]
    );

    // A DPoP-bound token presented as Bearer: refused.
    let dpop_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut c = f.claims(AGENT);
    c.cnf = Some(Confirmation::dpop(dpop_key.public_jwk()).unwrap());
    let bound = f.token(&c, &f.signing);
    let r = client().get(&url).bearer_auth(&bound).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(www(&r).starts_with("Bearer error=\"invalid_token\""));
    assert_eq!(problem_code(r).await, "access-token-bound-as-bearer");

    // The same token with DPoP and a matching proof: accepted.
    let htu = format!("{AUTHORITY}/api");
    let nonce = guard.dpop_nonce();
    let proof = create_proof(
        &dpop_key,
        "GET",
        &htu,
        Some(&bound),
        Some(&nonce),
        f.env.now(),
    )
    .unwrap();
    let r = client()
        .get(&url)
        .header("authorization", format!("DPoP {bound}"))
        .header("dpop", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["mechanism"], "dpop");

    // A proof by another key: refused.
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let proof = create_proof(&other, "GET", &htu, Some(&bound), Some(&nonce), f.env.now()).unwrap();
    let r = client()
        .get(&url)
        .header("authorization", format!("DPoP {bound}"))
        .header("dpop", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let w = www(&r);
    assert!(
        w.starts_with("DPoP error=\"invalid_token\"") && w.contains(PRM),
        "{w}"
    );
    assert_eq!(problem_code(r).await, "dpop-binding-mismatch");

    // A DPoP-only route refuses a plain Bearer token with a DPoP challenge.
    let plain = f.token(&f.claims(AGENT), &f.signing);
    let r = client()
        .get(format!("http://{addr}/api/dpop"))
        .bearer_auth(&plain)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(www(&r).starts_with("DPoP "), "{}", www(&r));
    assert_eq!(problem_code(r).await, "mechanism-not-accepted");
}

/// An access token whose `client_id` is not a workload identifier (a client registered
/// without a SPIFFE or WIMSE ID): refused by default, as Bearer and with DPoP; accepted
/// with `plain_client_ids`, the agent being that client id.
#[tokio::test]
async fn plain_client_ids_only_when_configured() {
    const PLAIN: &str = "reporting-agent";
    let f = Fixture::new(Duration::ZERO).await;
    let issuer = || AccessTokenIssuer::new(&f.issuer, RESOURCE).jwks(f.jwks_cache());
    let mut c = f.claims("user:alice");
    c.client_id = PLAIN.to_owned();
    let plain = f.token(&c, &f.signing);
    let dpop_key = SigningKey::generate(Algorithm::ES256).unwrap();
    c.cnf = Some(Confirmation::dpop(dpop_key.public_jwk()).unwrap());
    let bound = f.token(&c, &f.signing);
    // The DPoP-bound token with a fresh proof for `guard`.
    let with_dpop = |url: &str, guard: &Guard| {
        let proof = create_proof(
            &dpop_key,
            "GET",
            &format!("{AUTHORITY}/api"),
            Some(&bound),
            Some(&guard.dpop_nonce()),
            f.env.now(),
        )
        .unwrap();
        client()
            .get(url)
            .header("authorization", format!("DPoP {bound}"))
            .header("dpop", proof)
            .send()
    };

    let strict = f.guard(issuer());
    let url = format!("http://{}/api", serve(rs_app(&strict)).await);
    let r = client().get(&url).bearer_auth(&plain).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        www(&r).starts_with("Bearer error=\"invalid_token\""),
        "{}",
        www(&r)
    );
    assert_eq!(problem_code(r).await, "access-token-invalid-claim");
    let r = with_dpop(&url, &strict).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(problem_code(r).await, "access-token-client-id");
    let e = f.env.audit.events().last().unwrap().clone();
    assert_eq!(
        e.decision,
        Decision::Deny {
            reason: "access-token-client-id".into()
        }
    );

    let open = f.guard_with(issuer(), |b| b.plain_client_ids(true));
    let url = format!("http://{}/api", serve(rs_app(&open)).await);
    let r = client().get(&url).bearer_auth(&plain).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["id"].as_str(), v["delegated"].as_str()),
        (Some(PLAIN), Some("user:alice"))
    );
    let e = f.env.audit.events().last().unwrap().clone();
    assert_eq!((e.decision, e.agent.as_str()), (Decision::Allow, PLAIN));
    let r = with_dpop(&url, &open).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["mechanism"].as_str(), v["workload"].as_bool()),
        (Some("dpop"), Some(false))
    );
    // A workload identifier stays one.
    let t = f.token(&f.claims("user:alice"), &f.signing);
    let r = client().get(&url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["workload"], true);
}

#[tokio::test]
async fn certificate_bound_token_over_mtls() {
    let f = Fixture::new(Duration::ZERO).await;
    let guard = f.guard(AccessTokenIssuer::new(&f.issuer, RESOURCE).jwks(f.jwks_cache()));
    let identity = Arc::new(aims_guard::tls::ServerIdentity::new(&svid(&f.env, SVC)).unwrap());
    let (addr, _stop, _task) = start_tls(&f.env, identity, rs_app(&guard)).await;
    let url = format!("https://{addr}/api");
    let agent_svid = svid(&f.env, AGENT);
    let other_svid = svid(&f.env, AGENT);
    let mut c = f.claims(AGENT);
    c.cnf = Some(Confirmation::certificate(agent_svid.leaf()));
    assert_eq!(
        c.cnf.as_ref().unwrap().x5t_s256.as_deref(),
        Some(agent_svid.x5t_s256().as_str())
    );
    let t = f.token(&c, &f.signing);

    let r = tls_client(&f.env, Some(&agent_svid), SVC)
        .get(&url)
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["mechanism"], "bearer");
    assert!(
        v["bound"]
            .as_str()
            .unwrap()
            .starts_with("CertificateSha256")
    );

    // Same SPIFFE ID, another certificate: refused.
    let r = tls_client(&f.env, Some(&other_svid), SVC)
        .get(&url)
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(problem_code(r).await, "certificate-binding-mismatch");

    // No client certificate: refused.
    let r = tls_client(&f.env, None, SVC)
        .get(&url)
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(problem_code(r).await, "certificate-binding-mismatch");
}

#[tokio::test]
async fn scope_and_step_up_challenges_and_audit() {
    let f = Fixture::new(Duration::ZERO).await;
    let guard = f.guard(AccessTokenIssuer::new(&f.issuer, RESOURCE).jwks(f.jwks_cache()));
    let addr = serve(rs_app(&guard)).await;
    let files = format!("http://{addr}/api/files");
    let admin = format!("http://{addr}/api/admin");

    // No credentials on a scoped route: the scope is hinted, no error code.
    let r = client().get(&files).send().await.unwrap();
    assert!(
        www(&r).contains("Bearer scope=\"files:read\""),
        "{}",
        www(&r)
    );
    assert!(!www(&r).contains("error="));

    // Insufficient scope: 403 with scope= and resource_metadata.
    let mut c = f.claims("user:alice");
    c.scope = Scope::parse("files:write").unwrap();
    let t = f.token(&c, &f.signing);
    let r = client().get(&files).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let w = www(&r);
    assert!(w.starts_with("Bearer error=\"insufficient_scope\""), "{w}");
    assert!(w.contains("scope=\"files:read\"") && w.contains(PRM), "{w}");
    assert_eq!(problem_code(r).await, "insufficient-scope");
    let e = f.env.audit.events().last().unwrap().clone();
    assert_eq!(e.agent, AGENT);
    assert_eq!(e.delegated_subject.as_deref(), Some("user:alice"));
    assert_eq!(e.resource, "/api/files");
    assert_eq!(e.action, "GET");
    assert_eq!(e.decision.reason(), "insufficient-scope");
    assert_eq!(
        e.remediation,
        "reject; token with the required scope needed"
    );
    assert!(!e.correlation_id.is_empty());
    assert_eq!(e.risk_state, "unknown");

    c.scope = Scope::parse("files:read files:write").unwrap();
    let t = f.token(&c, &f.signing);
    assert_eq!(
        client()
            .get(&files)
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Step-up: wrong acr.
    let now = f.env.now();
    let mut c = f.claims("user:alice");
    c.acr = Some("urn:loa:2".into());
    c.auth_time = Some(now - 10);
    let t = f.token(&c, &f.signing);
    let r = client().get(&admin).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let w = www(&r);
    assert!(
        w.starts_with("Bearer error=\"insufficient_user_authentication\""),
        "{w}"
    );
    assert!(
        w.contains("acr_values=\"urn:loa:3\"") && w.contains("max_age=\"300\""),
        "{w}"
    );
    assert!(w.contains(PRM), "{w}");
    assert_eq!(problem_code(r).await, "insufficient-user-authentication");
    let e = f.env.audit.events().last().unwrap().clone();
    assert_eq!(e.remediation, "reject; step-up required");
    assert_eq!(e.agent, AGENT);

    // Right acr, authentication too old.
    c.acr = Some("urn:loa:3".into());
    c.auth_time = Some(now - 600);
    let t = f.token(&c, &f.signing);
    let r = client().get(&admin).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(problem_code(r).await, "insufficient-user-authentication");

    // Right acr, recent authentication.
    c.auth_time = Some(now - 10);
    let t = f.token(&c, &f.signing);
    let r = client().get(&admin).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["acr"], "urn:loa:3");
    assert_eq!(v["auth_time"], now - 10);
    let e = f.env.audit.events().last().unwrap().clone();
    assert_eq!(e.decision, Decision::Allow);
    assert_eq!(e.remediation, "none");
}

#[tokio::test]
async fn a_routes_resource_metadata_is_checked_like_the_builders() {
    let f = Fixture::new(Duration::ZERO).await;
    let guard = f.guard(AccessTokenIssuer::new(&f.issuer, RESOURCE).jwks(f.jwks_cache()));
    let layer = GuardLayer::new(guard);
    for bad in [
        "http://svc-b.example.test/.well-known/oauth-protected-resource",
        "https://svc-b.example.test/x\", error=\"forged",
        "https://svc-b.example.test/x\\y",
        "not a url",
    ] {
        assert!(
            matches!(
                layer.clone().resource_metadata(bad),
                Err(aims_guard::ConfigError::InvalidResourceMetadata(u)) if u == bad
            ),
            "{bad}"
        );
    }
    let url = "https://svc-b.example.test/.well-known/oauth-protected-resource/other";
    let app = Router::new().route(
        "/other",
        any(info).layer(layer.resource_metadata(url).unwrap()),
    );
    let addr = serve(app).await;
    let r = client()
        .get(format!("http://{addr}/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        www(&r).contains(&format!("resource_metadata=\"{url}\"")),
        "{}",
        www(&r)
    );
}
