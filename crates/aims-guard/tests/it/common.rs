//! Shared fixtures: a trust domain with a CA and WIT/JWT-SVID keys, an access token
//! issuer, a guarded axum app on 127.0.0.1:0, and credential minting helpers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aims_core::{Clock, ManualClock, SpiffeId, SystemClock, TrustDomain, WorkloadId};
use aims_crypto::{Algorithm, Signer, SigningKey};
use aims_guard::{
    AuthenticatedAgent, CollectingSink, Guard, GuardConfig, GuardConfigBuilder, GuardLayer,
    Mechanism,
};
use aims_jose::access_token::{self, AccessTokenClaims, Confirmation};
use aims_jose::wit::{self, WitClaims};
use aims_jose::wpt::{self, WptClaims, WptRequest};
use aims_jose::{StaticKeys, jwt_svid};
use aims_pki::{CertificateAuthority, SpiffeBundle, TrustStore};
use axum::Router;
use axum::body::Bytes;
use axum::routing::{any, get};
use serde_json::{Value, json};

pub const AUTHORITY: &str = "https://svc-b.example.test";
pub const AT_ISSUER: &str = "https://as.example.test";
pub const AGENT: &str = "spiffe://example.org/agent-a";

pub fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub struct Env {
    pub clock: ManualClock,
    pub td: TrustDomain,
    pub ca: CertificateAuthority,
    pub trust: Arc<TrustStore>,
    pub wit_issuer: SigningKey,
    pub jwt_issuer: SigningKey,
    pub evil_issuer: SigningKey,
    pub at_issuer: SigningKey,
    pub audit: CollectingSink,
}

impl Env {
    pub fn new() -> Self {
        init();
        let clock = ManualClock::new(SystemClock.now());
        let td = TrustDomain::new("example.org").unwrap();
        let ca = CertificateAuthority::new_root(
            &td,
            Duration::from_secs(86_400),
            Arc::new(clock.clone()),
        )
        .unwrap();
        let wit_issuer = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("wit-1");
        let jwt_issuer = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("jwt-1");
        let mut bundle = ca.bundle().unwrap();
        bundle
            .add_wit_authority(wit_issuer.public_jwk().clone())
            .unwrap();
        bundle
            .add_jwt_authority(jwt_issuer.public_jwk().clone())
            .unwrap();
        // A second trust domain the store knows but the guard does not trust.
        let evil_td = TrustDomain::new("evil.org").unwrap();
        let evil_issuer = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("evil-1");
        let mut evil = SpiffeBundle::new(evil_td);
        evil.add_wit_authority(evil_issuer.public_jwk().clone())
            .unwrap();
        let trust = Arc::new(TrustStore::from_bundles([bundle, evil]));
        Self {
            clock,
            td,
            ca,
            trust,
            wit_issuer,
            jwt_issuer,
            evil_issuer,
            at_issuer: SigningKey::generate(Algorithm::ES256)
                .unwrap()
                .with_kid("at-1"),
            audit: CollectingSink::new(),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn arc_clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }

    /// Every mechanism, the public authority, trust in example.org only.
    pub fn config(&self) -> GuardConfigBuilder {
        let mut at_keys = StaticKeys::new();
        at_keys.add_key(
            AT_ISSUER,
            Some("at-1".into()),
            self.at_issuer.verifying_key().clone(),
        );
        let mut b = GuardConfig::builder(self.trust.clone())
            .clock(self.arc_clock())
            .authority(AUTHORITY)
            .trust_domain(self.td.clone())
            .access_tokens(AT_ISSUER, AUTHORITY, Arc::new(at_keys))
            .audit_sink(Arc::new(self.audit.clone()));
        for m in Mechanism::ALL {
            b = b.enable(m);
        }
        b
    }

    pub fn guard(&self) -> Guard {
        Guard::new(self.config().build().unwrap()).unwrap()
    }

    /// A workload key and a WIT for `id` valid `lifetime` seconds.
    pub fn wit_for(&self, id: &str, lifetime: i64) -> (Arc<SigningKey>, String) {
        let key = Arc::new(SigningKey::generate(Algorithm::ES256).unwrap());
        let wit = self.wit_with_key(id, &key, lifetime, &self.wit_issuer);
        (key, wit)
    }

    pub fn wit_with_key(
        &self,
        id: &str,
        key: &SigningKey,
        lifetime: i64,
        issuer: &SigningKey,
    ) -> String {
        let claims = WitClaims::new(
            WorkloadId::parse(id).unwrap(),
            key.public_jwk(),
            self.now(),
            lifetime,
        )
        .unwrap();
        wit::create(&claims, issuer).unwrap()
    }

    /// A WPT for `wit` with audience `aud` and optional access token.
    pub fn wpt(&self, key: &SigningKey, wit: &str, aud: &str, at: Option<&str>) -> String {
        let mut r = WptRequest::new(wit, aud);
        if let Some(t) = at {
            r = r.with_access_token(t);
        }
        wpt::create(&WptClaims::new(&r, self.now() + 60).unwrap(), key).unwrap()
    }

    pub fn access_token(&self, sub: &str, client_id: &str, dpop_key: &SigningKey) -> String {
        let mut c =
            AccessTokenClaims::new(AT_ISSUER, sub, client_id, AUTHORITY, self.now(), 600).unwrap();
        c.cnf = Some(Confirmation::dpop(dpop_key.public_jwk()).unwrap());
        access_token::issue(&c, &self.at_issuer).unwrap()
    }

    pub fn jwt_svid(&self, id: &str, aud: &str) -> String {
        let c = jwt_svid::JwtSvidClaims::new(SpiffeId::parse(id).unwrap(), aud, self.now(), 300);
        jwt_svid::create(&c, &self.jwt_issuer).unwrap()
    }
}

async fn whoami(agent: AuthenticatedAgent, body: Bytes) -> axum::Json<Value> {
    axum::Json(json!({
        "id": agent.id().as_str(),
        "spiffe": agent.spiffe_id().map(|s| s.as_str().to_owned()),
        "mechanism": agent.mechanism().as_str(),
        "delegated": agent.delegated_subject(),
        "expires_at": agent.expires_at(),
        "bound_key": agent.bound_key().is_some(),
        "body": String::from_utf8_lossy(&body),
    }))
}

async fn maybe(agent: Option<AuthenticatedAgent>) -> String {
    agent.map_or_else(|| "anonymous".to_owned(), |a| a.id().to_string())
}

/// `/whoami` (any enabled mechanism), `/mtls-only`, `/wpt-only`, `/optional`.
pub fn app(guard: &Guard) -> Router {
    let layer = GuardLayer::new(guard.clone());
    Router::new()
        .route("/whoami", any(whoami).layer(layer.clone()))
        .route("/other", any(whoami).layer(layer.clone()))
        .route(
            "/mtls-only",
            get(whoami).layer(layer.clone().require([Mechanism::Mtls])),
        )
        .route(
            "/wpt-only",
            get(whoami).layer(layer.clone().require([Mechanism::WitWpt])),
        )
        .route("/optional", get(maybe).layer(layer.optional()))
}

/// Serves `router` over plain HTTP on 127.0.0.1:0.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

pub fn client() -> reqwest::Client {
    init();
    reqwest::Client::builder().build().unwrap()
}

/// The problem `code` of an error response (asserts the media type).
pub async fn problem_code(r: reqwest::Response) -> String {
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "problem media type"
    );
    let v: Value = r.json().await.unwrap();
    assert!(
        v["type"]
            .as_str()
            .unwrap()
            .ends_with(v["code"].as_str().unwrap())
    );
    v["code"].as_str().unwrap().to_owned()
}
