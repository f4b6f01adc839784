//! A token service over a temporary SQLite store, with clients held in memory.

use std::collections::HashMap;
use std::sync::Arc;

use aims_core::{Clock, ManualClock};
use aims_crypto::{Algorithm, Jwks, Signer, SigningKey};
use aims_guard::{NonceIssuer, ReplayCache};
use aims_jose::{KeyResolver, StaticKeys};
use aims_oauth::authn::{ClientAuthenticator, ClientDirectory};
use aims_oauth::client::Client;
use aims_oauth::rar::RarTypes;
use aims_oauth::token::{TokenKeys, TokenRequest, TokenService};
use aims_oauth::{Issuer, OAuthError, Params};
use aims_pki::TrustStore;
use aims_store::Store;

pub const ISSUER: &str = "https://as.example.test";
pub const API: &str = "https://api.example.test/";
pub const REDIRECT: &str = "https://app.example.test/cb";
pub const T0: i64 = 1_800_000_000;

#[derive(Clone, Default)]
pub struct Clients(pub HashMap<String, Arc<Client>>);

impl ClientDirectory for Clients {
    async fn get(&self, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        Ok(self.0.get(id).cloned())
    }
}

pub struct Keys {
    key: Arc<SigningKey>,
    verifier: Arc<StaticKeys>,
}

impl TokenKeys for Keys {
    fn signer(&self) -> Option<Arc<dyn Signer>> {
        Some(self.key.clone())
    }
    fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.key.public_jwk().clone()],
        }
    }
    fn verifier(&self) -> Arc<dyn KeyResolver> {
        self.verifier.clone()
    }
}

pub struct Harness {
    pub svc: TokenService<Clients>,
    pub clock: Arc<ManualClock>,
    /// The store behind the service (another node sharing it would write here).
    pub store: Arc<Store>,
    _dir: tempfile::TempDir,
}

pub fn client(json: serde_json::Value) -> (String, Arc<Client>) {
    let c = Client::from_json(&json.to_string()).unwrap();
    (c.id().to_owned(), Arc::new(c))
}

/// A public client (PKCE, no authentication) allowed the code flow and refresh tokens.
pub fn public_client() -> serde_json::Value {
    serde_json::json!({
        "client_id": "app",
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "api:read api:write",
        "resources": [API],
        "redirect_uris": [REDIRECT]
    })
}

/// The client id of the resource server every harness registers: it may introspect
/// tokens for [`API`] and authenticates with `private_key_jwt` (RFC 7662 §2.1: the
/// introspection endpoint needs an authenticated caller).
pub const INTROSPECTOR: &str = "rs";

static INTROSPECTOR_KEY: std::sync::LazyLock<SigningKey> =
    std::sync::LazyLock::new(|| SigningKey::generate(Algorithm::ES256).unwrap());

fn introspector_client() -> serde_json::Value {
    serde_json::json!({
        "client_id": INTROSPECTOR,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": Jwks { keys: vec![INTROSPECTOR_KEY.public_jwk().clone()] },
        "grant_types": ["client_credentials"],
        "introspect_resources": [API]
    })
}

/// [`INTROSPECTOR`]'s introspection request for `token`, with a fresh assertion made at
/// `now`.
pub fn introspection(now: i64, token: &str) -> Params {
    let claims =
        aims_jose::client_assertion::ClientAssertionClaims::new(INTROSPECTOR, ISSUER, now, 60)
            .unwrap();
    let assertion = aims_jose::client_assertion::create(&claims, &*INTROSPECTOR_KEY).unwrap();
    Params::from_pairs([
        (
            "client_assertion_type",
            aims_jose::client_assertion::ASSERTION_TYPE,
        ),
        ("client_assertion", assertion.as_str()),
        ("token", token),
    ])
}

pub async fn harness(clients: Vec<serde_json::Value>) -> Harness {
    harness_with(clients, |s| s).await
}

pub async fn harness_with(
    clients: Vec<serde_json::Value>,
    adjust: impl FnOnce(TokenService<Clients>) -> TokenService<Clients>,
) -> Harness {
    harness_full(clients, Arc::new(TrustStore::new()), adjust).await
}

pub async fn harness_full(
    clients: Vec<serde_json::Value>,
    trust: Arc<TrustStore>,
    adjust: impl FnOnce(TokenService<Clients>) -> TokenService<Clients>,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("as.db").display());
    let store = Arc::new(Store::connect(&url).await.unwrap());
    // The user the approvals of these tests name (refreshes check it is still active).
    store
        .create_user(
            "alice",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "{}",
            T0,
        )
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let key = Arc::new(SigningKey::generate(Algorithm::ES256).unwrap());
    let mut verifier = StaticKeys::new();
    verifier.add_jwks(
        ISSUER,
        &Jwks {
            keys: vec![key.public_jwk().clone()],
        },
    );
    let keys = Arc::new(Keys {
        key,
        verifier: Arc::new(verifier),
    });
    let issuer = Issuer::parse(ISSUER).unwrap();
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let replay = ReplayCache::store(store.clone());
    let authn = ClientAuthenticator::new(issuer.clone(), dyn_clock.clone(), trust, replay.clone());
    let svc = TokenService::new(
        issuer,
        dyn_clock.clone(),
        Clients(
            clients
                .into_iter()
                .chain([introspector_client()])
                .map(client)
                .collect(),
        ),
        authn,
        keys,
        store.clone(),
        replay,
        Arc::new(NonceIssuer::new(dyn_clock, 60).unwrap()),
        RarTypes::default(),
    );
    Harness {
        svc: adjust(svc),
        clock,
        store,
        _dir: dir,
    }
}

/// A DPoP proof by `key` for `POST` to the endpoint at `path` of [`ISSUER`], made at
/// [`T0`], with `nonce` if given.
pub fn post_proof(key: &SigningKey, path: &str, nonce: Option<&str>) -> String {
    aims_jose::dpop::create_proof(key, "POST", &format!("{ISSUER}{path}"), None, nonce, T0).unwrap()
}

/// A request of `params`, with the DPoP proof `dpop` if given.
pub fn req_with_proof<'a>(params: &'a Params, dpop: Option<&'a str>) -> TokenRequest<'a> {
    TokenRequest {
        params,
        tls: None,
        basic_auth: None,
        dpop,
        attestation: None,
    }
}

pub fn req(params: &Params) -> TokenRequest<'_> {
    TokenRequest {
        params,
        tls: None,
        basic_auth: None,
        dpop: None,
        attestation: None,
    }
}
