//! Issue 6 acceptance: a resource server guarded by aims-guard, with access tokens of a
//! real AIMS authorization server and decisions of the AIMS PDP (in process, and over
//! HTTP from the PDP `aims serve` serves on its mTLS listener).
//!
//! Tokens: the client_credentials token comes from the AS's token endpoint. The
//! delegated token (`sub` = the user) is minted with the AS's current `oauth_token`
//! signing key taken through the testkit, because this branch has no JWT bearer grant
//! wired in `aims serve` yet; the guard validates both with the AS's JWKS.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aims_core::{Clock as _, SpiffeId, SystemClock};
use aims_crypto::{Algorithm, Jwks, Signer as _, SigningKey};
use aims_guard::audit::Decision;
use aims_guard::authz::{Enforcer, HttpPdp, ResourceSpec};
use aims_guard::{
    AccessTokenIssuer, AuthenticatedAgent, CollectingSink, Guard, GuardConfig, GuardLayer,
    JwksCache, LocalPdp, Mechanism, PolicyDecisionPoint,
};
use aims_jose::access_token::{self, AccessTokenClaims, Scope};
use aims_jose::client_assertion::{self, ASSERTION_TYPE, ClientAssertionClaims};
use aims_pki::TrustStore;
use aims_pki::tls::Authorizer;
use aims_server::api::{AuthMethod, ClientMetadata, GrantType, TokenFormat};
use aims_server::testkit::{self, TestServer};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::common::system_clock;

const AGENT: &str = "spiffe://example.org/agent/x";
const RESOURCE: &str = "https://docs.example.test";
const PDP_ID: &str = "https://pdp.example.test";

const SCHEMA: &str = r#"
entity User;
entity Agent;
entity Document { owner: String, readers: Set<String> };
type DocContext = { user?: String, scope?: Set<String> };
action read appliesTo { principal: [Agent], resource: [Document], context: DocContext };
"#;

const POLICIES: &str = r#"
// The agent reads a document for a user who owns it or may read it, with docs:read.
@id("agent-reads-for-reader")
permit (principal == Agent::"spiffe://example.org/agent/x", action == Action::"read", resource is Document)
when {
  context has user && context has scope && context.scope.contains("docs:read") &&
  (resource.owner == context.user || resource.readers.contains(context.user))
};

// No autonomous reads: a document is read only on behalf of a user.
@id("documents-need-a-user")
forbid (principal is Agent, action == Action::"read", resource is Document)
unless { context has user };
"#;

const ENTITIES: &str = r#"[
  { "uid": { "type": "Agent", "id": "spiffe://example.org/agent/x" }, "attrs": {}, "parents": [] },
  { "uid": { "type": "User", "id": "alice" }, "attrs": {}, "parents": [] },
  { "uid": { "type": "Document", "id": "d1" }, "attrs": { "owner": "alice", "readers": ["bob"] }, "parents": [] }
]"#;

fn write_policies(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("schema.cedarschema"), SCHEMA).unwrap();
    std::fs::write(dir.join("policies.cedar"), POLICIES).unwrap();
    std::fs::write(dir.join("entities.json"), ENTITIES).unwrap();
}

struct Env {
    ts: TestServer,
    issuer: String,
    agent_key: SigningKey,
    policy_dir: tempfile::TempDir,
}

async fn start(serve_pdp: bool) -> Env {
    start_with_callers(serve_pdp, &[]).await
}

/// [`start`], with `[pdp] callers`.
async fn start_with_callers(serve_pdp: bool, callers: &[&str]) -> Env {
    let policy_dir = tempfile::tempdir().unwrap();
    write_policies(policy_dir.path());
    let dir = policy_dir.path().to_owned();
    let callers: Vec<String> = callers.iter().map(|c| (*c).to_owned()).collect();
    let ts = testkit::start_with("example.org", system_clock(), move |c| {
        if serve_pdp {
            c.pdp.enabled = true;
            c.pdp.policy_dir = Some(dir);
            c.pdp.listen = Some("127.0.0.1:0".parse().unwrap());
            c.pdp.base_url = Some(PDP_ID.into());
            c.pdp.callers = callers;
        }
    })
    .await
    .unwrap();
    let issuer = ts.server.endpoints().oauth_issuer.clone().unwrap();
    let agent_key = SigningKey::generate(Algorithm::ES256).unwrap();
    ts.admin()
        .create_client(&ClientMetadata {
            client_id: AGENT.to_owned(),
            client_name: None,
            token_endpoint_auth_method: AuthMethod::PrivateKeyJwt,
            jwks: Some(Jwks {
                keys: vec![agent_key.public_jwk().clone()],
            }),
            jwks_uri: None,
            spiffe_id: None,
            tls_client_auth_san_uri: None,
            grant_types: vec![GrantType::ClientCredentials],
            scope: "docs:read docs:write".to_owned(),
            resources: vec![RESOURCE.to_owned(), PDP_ID.to_owned()],
            introspect_resources: Vec::new(),
            redirect_uris: vec![],
            authorization_details_types: vec![],
            access_token_lifetime: None,
            refresh_token_lifetime: None,
            dpop_bound_access_tokens: false,
            tls_client_certificate_bound_access_tokens: false,
            access_token_format: TokenFormat::Jwt,
            client_secret_hash: None,
        })
        .await
        .unwrap();
    Env {
        ts,
        issuer,
        agent_key,
        policy_dir,
    }
}

impl Env {
    /// A client_credentials token from the AS's token endpoint (`sub` = the agent).
    async fn client_credentials(&self, scope: &str, resource: &str) -> String {
        let claims =
            ClientAssertionClaims::new(AGENT, &self.issuer, SystemClock.now(), 60).unwrap();
        let assertion = client_assertion::create(&claims, &self.agent_key).unwrap();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion.as_str()),
                ("scope", scope),
                ("resource", resource),
            ])
            .finish();
        let r = reqwest::Client::new()
            .post(format!("{}/oauth/token", self.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// A token for the agent acting for `user`, signed with the AS's current key.
    fn delegated(&self, user: &str, scope: &str) -> String {
        let keys = self.ts.server.state().keys.current().unwrap();
        let key = keys.oauth().unwrap().key.clone();
        let mut claims =
            AccessTokenClaims::new(&self.issuer, user, AGENT, RESOURCE, SystemClock.now(), 300)
                .unwrap();
        claims.scope = Scope::parse(scope).unwrap();
        access_token::issue(&claims, key.as_ref()).unwrap()
    }

    /// The protected app: `GET /docs/{id}` needs `read` on `Document::"{id}"`.
    fn app(&self, pdp: Arc<dyn PolicyDecisionPoint>, audit: &CollectingSink) -> Router {
        let jwks = JwksCache::builder(&self.issuer, reqwest::Client::new())
            .build()
            .unwrap();
        let cfg = GuardConfig::builder(Arc::new(TrustStore::new()))
            .authority(RESOURCE)
            .enable(Mechanism::Bearer)
            .access_token_issuer(AccessTokenIssuer::new(&self.issuer, RESOURCE).jwks(jwks))
            .audit_sink(Arc::new(audit.clone()))
            .build()
            .unwrap();
        let guard = Guard::new(cfg).unwrap();
        let enforcer = Enforcer::builder(pdp).build();
        let route = enforcer
            .route()
            .action("read")
            .resource(ResourceSpec::last_segment("Document"));
        Router::new().route(
            "/docs/{id}",
            get(|a: AuthenticatedAgent| async move { a.id().as_str().to_owned() })
                .layer(GuardLayer::new(guard).authorize(route)),
        )
    }
}

async fn call(app: &Router, path: &str, token: &str) -> (u16, Value) {
    let req = http::Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned())),
    )
}

/// The three acceptance cases against `pdp`, with the audit events that explain them.
async fn acceptance(env: &Env, pdp: Arc<dyn PolicyDecisionPoint>) {
    let audit = CollectingSink::new();
    let app = env.app(pdp, &audit);

    // Acting for alice (owner), with docs:read: permitted.
    let t = env.delegated("alice", "docs:read");
    let (status, body) = call(&app, "/docs/d1", &t).await;
    assert_eq!(status, 200, "{body}");
    // Acting for carol (not a reader): denied by default.
    let t = env.delegated("carol", "docs:read");
    assert_eq!(call(&app, "/docs/d1", &t).await.0, 403);
    // Without the user's delegation (client_credentials, sub = agent): the forbid.
    let t = env.client_credentials("docs:read", RESOURCE).await;
    let (status, body) = call(&app, "/docs/d1", &t).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "access-denied");
    let text = body.to_string();
    assert!(
        !text.contains("documents-need-a-user") && !text.contains("forbid"),
        "no policy text or id on the wire: {text}"
    );
    // For alice, but with a scope the policy does not grant.
    let t = env.delegated("alice", "docs:write");
    assert_eq!(call(&app, "/docs/d1", &t).await.0, 403);

    let events = audit.events();
    assert_eq!(events.len(), 4);
    let e = &events[0];
    assert_eq!(e.agent, AGENT);
    assert_eq!(e.delegated_subject.as_deref(), Some("alice"));
    assert_eq!(e.resource, "Document:d1");
    assert_eq!(e.action, "read");
    assert_eq!(e.decision, Decision::Allow);
    assert_eq!(e.policies, ["agent-reads-for-reader"]);
    assert_eq!(e.risk_state, "unknown");
    assert!(!e.correlation_id.is_empty() && e.time > 0);
    let denied = |i: usize| {
        let e = &events[i];
        assert_eq!(
            e.decision,
            Decision::Deny {
                reason: "access-denied".into()
            }
        );
        assert_eq!(e.remediation, "reject; not permitted by policy");
        e.policies.clone()
    };
    assert!(denied(1).is_empty(), "default deny: no determining policy");
    assert_eq!(denied(2), ["documents-need-a-user"]);
    assert_eq!(events[2].delegated_subject, None);
    assert!(denied(3).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_pdp_enforces_delegation_and_scope() {
    let env = start(false).await;
    let pdp = aims_pdp::Pdp::from_dir(env.policy_dir.path()).unwrap();
    acceptance(&env, Arc::new(LocalPdp(Arc::new(pdp)))).await;
    env.ts.server.shutdown().await;
}

/// A reqwest client presenting an X509-SVID `id` issued by the test server's CA and
/// trusting only the server's SVID.
fn mtls_client(ts: &TestServer, id: &str) -> reqwest::Client {
    let state = ts.server.state();
    let keys = state.keys.current().unwrap();
    let svid = keys
        .ca()
        .unwrap()
        .ca
        .issue_x509_svid(&SpiffeId::parse(id).unwrap(), Duration::from_secs(600), &[])
        .unwrap();
    let trust = Arc::new(TrustStore::from_bundles([(**keys.bundle()).clone()]));
    let tls = aims_pki::tls::client_config(
        Some(&svid),
        trust,
        Authorizer::Exact(vec![state.tls.spiffe_id().clone()]),
    )
    .unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

/// A client of `ts`'s mTLS listeners without a certificate (server-authenticated TLS).
fn anonymous_client(ts: &TestServer) -> reqwest::Client {
    let state = ts.server.state();
    let keys = state.keys.current().unwrap();
    let trust = Arc::new(TrustStore::from_bundles([(**keys.bundle()).clone()]));
    let tls = aims_pki::tls::client_config(
        None,
        trust,
        Authorizer::Exact(vec![state.tls.spiffe_id().clone()]),
    )
    .unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_pdp_over_mtls_enforces_the_same_decisions() {
    let env = start(true).await;
    let addr = env.ts.server.endpoints().pdp.unwrap();
    assert_eq!(
        env.ts.server.endpoints().pdp_base_url.as_deref(),
        Some(PDP_ID)
    );
    let url = format!("https://{addr}");
    let pdp = HttpPdp::new(&url, mtls_client(&env.ts, "spiffe://example.org/pep/docs")).unwrap();
    acceptance(&env, Arc::new(pdp)).await;
    env.ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_pdp_authenticates_its_callers() {
    let env = start(true).await;
    let addr = env.ts.server.endpoints().pdp.unwrap();
    let url = format!("https://{addr}/access/v1/evaluation");
    let body = serde_json::json!({
        "subject": {"type": "Agent", "id": AGENT},
        "action": {"name": "read"},
        "resource": {"type": "Document", "id": "d1"},
        "context": {"user": "alice", "scope": ["docs:read"]}
    });
    // No client certificate (server-authenticated TLS only).
    let anonymous = anonymous_client(&env.ts);
    let post = |c: &reqwest::Client, token: Option<&str>| {
        let mut r = c.post(&url).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(post(&anonymous, None).await.unwrap().status(), 401);
    // A token of this AS for the PDP: admitted, with the determining policies.
    let t = env.client_credentials("docs:read", PDP_ID).await;
    let r = post(&anonymous, Some(&t)).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["decision"], true);
    assert_eq!(
        v["context"]["reason_admin"]["policies"],
        serde_json::json!(["agent-reads-for-reader"])
    );
    // A token for another audience: refused.
    let t = env.client_credentials("docs:read", RESOURCE).await;
    assert_eq!(post(&anonymous, Some(&t)).await.unwrap().status(), 401);
    // An SVID of the trust domain: admitted.
    let pep = mtls_client(&env.ts, "spiffe://example.org/pep/docs");
    assert_eq!(post(&pep, None).await.unwrap().status(), 200);
    // The metadata document names the configured identifier.
    let m: Value = anonymous
        .get(format!("https://{addr}/.well-known/authzen-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["policy_decision_point"], PDP_ID);
    env.ts.server.shutdown().await;
}

/// With `[pdp] callers`, only the listed PEPs may ask: another workload of the trust
/// domain (an agent) is refused over mTLS, and so is an access token whose client is
/// not listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_callers_may_ask_the_pdp() {
    let env = start_with_callers(true, &["spiffe://example.org/pep/*"]).await;
    let addr = env.ts.server.endpoints().pdp.unwrap();
    let url = format!("https://{addr}/access/v1/evaluation");
    let body = serde_json::json!({
        "subject": {"type": "Agent", "id": AGENT},
        "action": {"name": "read"},
        "resource": {"type": "Document", "id": "d1"},
        "context": {"user": "alice", "scope": ["docs:read"]}
    });
    let post = |c: reqwest::Client, token: Option<String>| {
        let mut r = c.post(&url).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let pep = mtls_client(&env.ts, "spiffe://example.org/pep/docs");
    assert_eq!(post(pep, None).await.unwrap().status(), 200);
    let agent = mtls_client(&env.ts, "spiffe://example.org/agent/planner");
    let r = post(agent, None).await.unwrap();
    assert_eq!(r.status(), 403);
    // The agent's access token for the PDP (its client_id is not a listed SPIFFE ID).
    let t = env.client_credentials("docs:read", PDP_ID).await;
    assert_eq!(
        post(anonymous_client(&env.ts), Some(t))
            .await
            .unwrap()
            .status(),
        403
    );
    env.ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_pdp_fails_closed() {
    let env = start(false).await;
    // Nothing listens there: connection refused.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let pdp = HttpPdp::new(&dead, reqwest::Client::new()).unwrap();
    let audit = CollectingSink::new();
    let app = env.app(Arc::new(pdp), &audit);
    let t = env.delegated("alice", "docs:read");
    let (status, body) = call(&app, "/docs/d1", &t).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "policy-unavailable");
    assert_eq!(
        audit.events()[0].decision,
        Decision::Deny {
            reason: "policy-unavailable".into()
        }
    );
    env.ts.server.shutdown().await;
}
