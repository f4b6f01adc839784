//! The OAuth 2.0 authorization server's HTTP endpoints, on the plain HTTP listener.
//!
//! Thin handlers: each one parses the request (form body, `DPoP` header, `Authorization:
//! Basic` presence, `Accept`), calls [`aims_oauth::token::TokenService`] and maps the
//! result to the response its RFC names.
//!
//! | Route | Standard | Answer |
//! |---|---|---|
//! | `GET /.well-known/oauth-authorization-server[/issuer path]` | RFC 8414 | metadata |
//! | `GET [/issuer path]/.well-known/openid-configuration` | OIDC Discovery | the same document |
//! | `GET /oauth/jwks` | RFC 7517 | the token-signing keys (next, current, previous) |
//! | `POST /oauth/token` | RFC 6749 §3.2, §4.4; RFC 9449 | token or error; `Cache-Control: no-store`; `DPoP-Nonce` |
//! | `POST /oauth/introspect` | RFC 7662, RFC 9701 | JSON, or a signed JWT with `Accept: application/token-introspection+jwt` |
//! | `POST /oauth/revoke` | RFC 7009 | 200 |
//! | `GET\|POST /oauth/authorize` | RFC 6749 §4.1, RFC 7636, RFC 9126 §4, RFC 9207 | the login or consent page; errors: an HTML page (400) when the client or redirect URI is not trusted, else a 303 to the redirect URI with `error`, `state`, `iss` |
//! | `POST /oauth/login`, `POST /oauth/consent` | (forms of those pages) | the consent page; a 303 with `code`, `state`, `iss` |
//! | `POST /oauth/par` | RFC 9126 | 201 `{"request_uri","expires_in"}`, client-authenticated like the token endpoint |
//!
//! When the issuer has a path (`https://as.example/tenant`), every endpoint is also
//! served under it, so a proxy may forward the path as is.
//!
//! Client authentication served: `private_key_jwt`, `spiffe_jwt` and `spiffe_wit`
//! (`OAuth-Client-Attestation` + `-PoP` headers) everywhere; with `[oauth] mtls_listen`
//! also `spiffe_x509`, RFC 8705 `tls_client_auth` and `self_signed_tls_client_auth`, on
//! the mTLS listener only ([`mtls_router`]: the token, introspection, revocation and PAR
//! endpoints, advertised as `mtls_endpoint_aliases`). That listener presents the
//! server's SVID and requests a client certificate without trusting it: the handlers
//! pass the unverified chain as [`aims_oauth::authn::TlsPeer`] and the method verifies
//! it per request. The plain listener never has a client certificate, so the
//! certificate methods always fail there (`invalid_client`). `private_key_jwt` clients
//! register their keys inline (`jwks`) or by `jwks_uri` (fetched with a bounded client,
//! cached, refetched on an unknown `kid`). With `[oauth] allow_client_secrets = true`,
//! also the legacy `client_secret_basic` (RFC 6749 §2.3.1) and `client_secret_post`,
//! advertised only then.
//!
//! Every token issuance and every refused token request is an audit event
//! ([`aims_guard::AuditEvent`], target `aims::audit`).
//!
//! Grants served: `client_credentials`, `authorization_code` (PKCE S256 required),
//! `refresh_token` (rotation, reuse revokes the family) and, when
//! `[oauth.trusted_issuers]` are configured, the RFC 7523 JWT bearer grant. The front
//! channel (sessions, CSRF, pages) is in `oauth_pages.rs`.

use std::sync::{Arc, Mutex, PoisonError};

use aims_core::Clock;
use aims_crypto::{Jwks, Signer};
use aims_guard::{AuditEvent, AuditSink, Decision, NonceIssuer, ReplayCache, correlation_id};
use aims_jose::{KeyResolver, StaticKeys};
use aims_oauth::authn::TlsPeer;
use aims_oauth::budget::AddressBudget;
use aims_oauth::client::{AuthMethod, GrantType};
use aims_oauth::introspect::{INTROSPECTION_JWT_MEDIA_TYPE, Revocation, TokenQuery};
use aims_oauth::jwks_uri::JwksUriCache;
use aims_oauth::metadata::{MtlsEndpointAliases, ServerMetadata, paths};
use aims_oauth::rar::RarTypes;
use aims_oauth::secret::BasicCredentials;
use aims_oauth::token::{Issued, TokenError, TokenKeys, TokenRequest, TokenService};
use aims_oauth::{ErrorCode, Issuer, OAuthError, Params, StoreClients};
use aims_store::KeyState;
use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::ServerError;
use crate::config::ReplayBackend;
use crate::keys::{KeyManager, KeySet, OAUTH_TOKEN_ALG};
use crate::listen::ClientCertificate;
use crate::state::AppState;

#[path = "oauth_pages.rs"]
mod pages;

/// The largest request body the endpoints read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The window of the front channel's per-address budgets
/// (`[oauth] login_attempts_per_address`, `authorization_requests_per_address`).
const ADDRESS_WINDOW_SECS: u32 = 600;

/// How often the DPoP nonce changes (the previous one stays accepted one interval more).
pub const DPOP_NONCE_INTERVAL: i64 = 300;

const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");
const REQUEST_ID: HeaderName = HeaderName::from_static(aims_guard::REQUEST_ID_HEADER);

/// [`TokenKeys`] over the [`KeyManager`]: the current `oauth_token` key signs; next,
/// current and previous are published and verify.
pub struct OAuthKeys {
    keys: Arc<KeyManager>,
    scope: String,
    /// The verifier of the last key set seen (rebuilt only when the set changes).
    cache: Mutex<Option<(Arc<KeySet>, Arc<StaticKeys>)>>,
}

impl std::fmt::Debug for OAuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthKeys")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl OAuthKeys {
    /// Keys of `keys`, verified under the scope of `issuer`.
    pub fn new(keys: Arc<KeyManager>, issuer: &Issuer) -> Self {
        Self {
            keys,
            scope: issuer.as_str().to_owned(),
            cache: Mutex::new(None),
        }
    }

    fn jwks_of(set: &KeySet) -> Jwks {
        let rank = |s: KeyState| match s {
            KeyState::Current => 0,
            KeyState::Next => 1,
            KeyState::Previous => 2,
            KeyState::Retired => 3,
        };
        let mut held: Vec<_> = set.keys(aims_store::KeyKind::OAuthToken).iter().collect();
        held.sort_by_key(|k| rank(k.info.state));
        let keys = held
            .into_iter()
            .map(|k| {
                let mut jwk = k.key.public_jwk().clone();
                jwk.kid = Some(k.key.kid().to_owned());
                jwk.alg = Some(k.key.algorithm().name().to_owned());
                jwk.use_ = Some("sig".to_owned());
                jwk
            })
            .collect();
        Jwks { keys }
    }
}

impl TokenKeys for OAuthKeys {
    fn signer(&self) -> Option<Arc<dyn Signer>> {
        self.signer_until().map(|(s, _)| s)
    }

    fn signer_until(&self) -> Option<(Arc<dyn Signer>, Option<i64>)> {
        let set = self.keys.current()?;
        let key = set.oauth().filter(|k| k.info.signs_at(self.keys.now()))?;
        Some((
            Arc::clone(&key.key) as Arc<dyn Signer>,
            Some(key.info.not_after),
        ))
    }

    fn jwks(&self) -> Jwks {
        self.keys
            .current()
            .map(|s| Self::jwks_of(&s))
            .unwrap_or(Jwks { keys: Vec::new() })
    }

    fn verifier(&self) -> Arc<dyn KeyResolver> {
        let Some(set) = self.keys.current() else {
            return Arc::new(StaticKeys::new());
        };
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, keys)) = cache.as_ref()
            && Arc::ptr_eq(seen, &set)
        {
            return Arc::clone(keys) as Arc<dyn KeyResolver>;
        }
        let mut keys = StaticKeys::new();
        keys.add_jwks(self.scope.clone(), &Self::jwks_of(&set));
        let keys = Arc::new(keys);
        *cache = Some((set, Arc::clone(&keys)));
        keys
    }
}

/// The authorization server: the token service, its metadata, the audit sink.
pub struct OAuthServer {
    service: TokenService<StoreClients>,
    mtls_base: Option<Issuer>,
    metadata: Bytes,
    require_dpop_nonce: bool,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    pages: pages::Pages,
}

impl std::fmt::Debug for OAuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthServer")
            .field("issuer", self.service.issuer())
            .finish_non_exhaustive()
    }
}

/// Client authentication methods served on every listener.
pub const AUTH_METHODS: [AuthMethod; 3] = [
    AuthMethod::PrivateKeyJwt,
    AuthMethod::SpiffeJwt,
    AuthMethod::SpiffeWit,
];

/// Legacy secret methods, served and advertised only with `[oauth] allow_client_secrets`.
pub const SECRET_AUTH_METHODS: [AuthMethod; 2] =
    [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost];
/// Client authentication methods added by the mTLS listener (`[oauth] mtls_listen`).
pub const MTLS_AUTH_METHODS: [AuthMethod; 3] = [
    AuthMethod::TlsClientAuth,
    AuthMethod::SelfSignedTlsClientAuth,
    AuthMethod::SpiffeX509,
];

/// Grant types served (plus the JWT bearer grant when trusted issuers are configured).
pub const GRANT_TYPES: [GrantType; 3] = [
    GrantType::ClientCredentials,
    GrantType::AuthorizationCode,
    GrantType::RefreshToken,
];

impl OAuthServer {
    /// The authorization server of `state` under `issuer`; `mtls_base` is the URL of
    /// the mTLS listener, when there is one (RFC 8705 endpoint aliases).
    pub fn new(
        state: &AppState,
        issuer: Issuer,
        mtls_base: Option<&str>,
    ) -> Result<Self, ServerError> {
        let mtls_base = mtls_base
            .map(Issuer::parse)
            .transpose()
            .map_err(|e| ServerError::Workload(format!("[oauth] mtls_base_url: {e}")))?;
        let cfg = &state.config.oauth;
        let clock = Arc::clone(&state.clock);
        let store = Arc::new(state.store.clone());
        let replay = match cfg.replay {
            ReplayBackend::Store => ReplayCache::store(Arc::clone(&store)),
            ReplayBackend::Memory => ReplayCache::memory(cfg.replay_memory_entries),
        };
        let nonces = Arc::new(NonceIssuer::new(Arc::clone(&clock), DPOP_NONCE_INTERVAL)?);
        let rar = RarTypes::new(cfg.authorization_details_types.clone());
        let mut grant_types = GRANT_TYPES.to_vec();
        let mut grant_keys = StaticKeys::new();
        let mut grant_issuers = Vec::new();
        for (name, t) in &cfg.trusted_issuers {
            let jwks = t.load_jwks().map_err(|e| {
                ServerError::Workload(format!("[oauth.trusted_issuers.{name}]: {e}"))
            })?;
            grant_keys.add_jwks(t.issuer.clone(), &jwks);
            grant_issuers.push(t.issuer.clone());
        }
        if !grant_issuers.is_empty() {
            grant_types.push(GrantType::JwtBearer);
        }
        let mut auth_methods = AUTH_METHODS.to_vec();
        if cfg.allow_client_secrets {
            auth_methods.extend_from_slice(&SECRET_AUTH_METHODS);
        }
        if mtls_base.is_some() {
            auth_methods.extend(MTLS_AUTH_METHODS);
        }
        let mut metadata = ServerMetadata::new(
            &issuer,
            &auth_methods,
            &grant_types,
            OAUTH_TOKEN_ALG.name(),
            rar.names(),
            cfg.scopes.clone(),
        );
        metadata.require_pushed_authorization_requests = cfg.require_pushed_authorization_requests;
        // Only what is served: certificate-bound tokens and the aliases need the mTLS
        // listener.
        metadata.tls_client_certificate_bound_access_tokens = mtls_base.is_some();
        metadata.mtls_endpoint_aliases = mtls_base.as_ref().map(MtlsEndpointAliases::new);
        let metadata = serde_json::to_vec(&metadata)
            .map_err(|e| ServerError::Workload(format!("OAuth metadata: {e}")))?;
        let mut authn = aims_oauth::authn::ClientAuthenticator::new(
            issuer.clone(),
            Arc::clone(&clock),
            Arc::clone(state.tls.trust_store()),
            replay.clone(),
        )
        .allow_client_secrets(cfg.allow_client_secrets)
        .jwks_uri_cache(JwksUriCache::new(
            aims_oauth::jwks_uri::http_client()
                .map_err(|e| ServerError::Workload(format!("jwks_uri HTTP client: {e}")))?,
            Arc::clone(&clock),
            cfg.allow_http_jwks_uri,
        ));
        if let Some(path) = &cfg.tls_client_auth_ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                ServerError::Workload(format!(
                    "[oauth] tls_client_auth_ca_file: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            let roots = aims_pki::ClientCaRoots::from_pem(&pem).map_err(|e| {
                ServerError::Workload(format!(
                    "[oauth] tls_client_auth_ca_file {}: {e} (expected PEM CERTIFICATE blocks of the CAs)",
                    path.display()
                ))
            })?;
            authn = authn.tls_client_auth_cas(Arc::new(roots));
        }
        let keys = Arc::new(OAuthKeys::new(Arc::clone(&state.keys), &issuer));
        let users = aims_oauth::users::UserStore::new(Arc::clone(&store))
            .map_err(|e| ServerError::Workload(format!("user store: {e}")))?;
        let throttle = aims_oauth::throttle::LoginThrottle::new(
            aims_oauth::throttle::LoginPolicy {
                max_failures: cfg.login_max_failures,
                lockout_secs: i64::from(cfg.login_lockout_seconds),
                // A first lock longer than the default cap is the cap.
                max_lockout_secs: i64::from(cfg.login_lockout_seconds)
                    .max(aims_oauth::throttle::LoginPolicy::default().max_lockout_secs),
                ..aims_oauth::throttle::LoginPolicy::default()
            },
            Arc::clone(&store),
        );
        let budgets = pages::AddressBudgets {
            logins: AddressBudget::new(cfg.login_attempts_per_address, ADDRESS_WINDOW_SECS),
            requests: AddressBudget::new(
                cfg.authorization_requests_per_address,
                ADDRESS_WINDOW_SECS,
            ),
        };
        let pages = pages::Pages::new(
            users,
            throttle,
            budgets,
            Arc::clone(&store),
            issuer.as_str().starts_with("https://"),
            cfg.require_pushed_authorization_requests,
        );
        let mut service = TokenService::new(
            issuer,
            Arc::clone(&clock),
            StoreClients::new(Arc::clone(&store)),
            authn,
            keys,
            store,
            replay,
            nonces,
            rar,
        )
        .require_dpop_nonce(cfg.require_dpop_nonce);
        if !grant_issuers.is_empty() {
            service = service.jwt_grant_issuers(grant_issuers, Arc::new(grant_keys));
        }
        if let Some(base) = &mtls_base {
            service = service.mtls_token_endpoint(base.endpoint(paths::TOKEN));
        }
        Ok(Self {
            service,
            mtls_base,
            metadata: Bytes::from(metadata),
            require_dpop_nonce: cfg.require_dpop_nonce,
            audit: Arc::new(aims_guard::LogSink),
            clock,
            pages,
        })
    }

    /// Replaces the audit sink (tests collect events).
    pub fn with_audit(mut self, audit: Arc<dyn AuditSink>) -> Self {
        self.audit = audit;
        self
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &Issuer {
        self.service.issuer()
    }

    /// The mTLS listener's URL, when there is one.
    pub fn mtls_base(&self) -> Option<&Issuer> {
        self.mtls_base.as_ref()
    }

    /// The token service.
    pub fn service(&self) -> &TokenService<StoreClients> {
        &self.service
    }
}

/// The authorization server's routes (at the root, and under the issuer's path if it has
/// one).
pub fn router(server: Arc<OAuthServer>) -> Router {
    let issuer = server.issuer().clone();
    let endpoints = || -> Router<Arc<OAuthServer>> {
        Router::new()
            .route(paths::JWKS, get(jwks))
            .route(paths::TOKEN, post(token))
            .route(paths::INTROSPECT, post(introspect))
            .route(paths::REVOKE, post(revoke))
            .route(
                paths::AUTHORIZE,
                get(pages::authorize).post(pages::authorize),
            )
            .route(pages::LOGIN, post(pages::login))
            .route(pages::CONSENT, post(pages::consent))
            .route(pages::LOGOUT, post(pages::logout))
            .route(paths::PAR, post(par))
            .route("/.well-known/openid-configuration", get(metadata))
    };
    let mut app = endpoints().route("/.well-known/oauth-authorization-server", get(metadata));
    let path = issuer_path(&issuer);
    if !path.is_empty() {
        app = app
            .route(&issuer.metadata_path(), get(metadata))
            .nest(&path, endpoints());
    }
    app.with_state(server)
}

/// The routes of the mTLS listener (RFC 8705 §5 aliases): token, introspection,
/// revocation and PAR, at the root and under the path of `base` if it has one. Serve it
/// only with [`crate::listen::PeerInfo::UnverifiedChain`].
pub fn mtls_router(server: Arc<OAuthServer>, base: &Issuer) -> Router {
    let endpoints = || -> Router<Arc<OAuthServer>> {
        Router::new()
            .route(paths::TOKEN, post(token))
            .route(paths::INTROSPECT, post(introspect))
            .route(paths::REVOKE, post(revoke))
            .route(paths::PAR, post(par))
    };
    let mut app = endpoints();
    let path = issuer_path(base);
    if !path.is_empty() {
        app = app.nest(&path, endpoints());
    }
    app.with_state(server)
}

/// The client certificate of a request on the mTLS listener (none elsewhere).
type PeerCert = Option<Extension<ClientCertificate>>;

fn tls_peer(cert: PeerCert) -> Option<TlsPeer> {
    cert.and_then(|Extension(c)| TlsPeer::new(c.0.as_ref().clone()))
}

/// The issuer's path without a trailing `/` (empty for none).
fn issuer_path(issuer: &Issuer) -> String {
    let s = issuer.as_str();
    let after = s.split_once("://").map_or(s, |x| x.1);
    after
        .find('/')
        .and_then(|i| after.get(i..))
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned()
}

/// What the handlers read from one request.
struct Parsed {
    params: Params,
    /// `Authorization: Basic` credentials (`client_secret_basic`).
    basic_auth: Option<BasicCredentials>,
    dpop: Option<String>,
    /// `OAuth-Client-Attestation` and its PoP (`spiffe_wit`).
    attestation: Option<(String, String)>,
}

impl Parsed {
    /// The request for the token service: this body and these headers, and the client
    /// certificate when the mTLS listener has one.
    fn request<'a>(&'a self, tls: Option<&'a TlsPeer>) -> TokenRequest<'a> {
        TokenRequest {
            params: &self.params,
            tls,
            basic_auth: self.basic_auth.as_ref(),
            dpop: self.dpop.as_deref(),
            attestation: self.attestation.as_ref().map(|(a, p)| {
                aims_oauth::token::ClientAttestation {
                    attestation: a,
                    pop: p,
                }
            }),
        }
    }
}

/// At most one value of `name`, as ASCII.
fn single_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, OAuthError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(format!(
            "send at most one {name} header"
        )));
    }
    first
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| OAuthError::invalid_request(format!("{name} is not ASCII")))
        })
        .transpose()
}

/// Headers every answer of these endpoints carries.
fn base_headers(request_id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(REQUEST_ID, v);
    }
    h
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn is_basic(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..6))
        .is_some_and(|s| s.eq_ignore_ascii_case("basic "))
}

/// The credentials of an `Authorization: Basic` header (one header at most; a malformed
/// one is `invalid_client`). Other schemes are not client authentication here.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<BasicCredentials>, OAuthError> {
    if !is_basic(headers) {
        return Ok(None);
    }
    let value = single_header(headers, header::AUTHORIZATION.as_str())?.unwrap_or_default();
    BasicCredentials::parse(&value).map(Some)
}

/// Reads the form body and the headers the token logic needs.
async fn parse(headers: &HeaderMap, body: Body) -> Result<Parsed, OAuthError> {
    let basic_auth = basic_credentials(headers)?;
    let mut dpop = headers.get_all("dpop").iter();
    let first = dpop.next();
    if dpop.next().is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "send exactly one DPoP header",
        ));
    }
    let dpop = match first {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    OAuthError::new(ErrorCode::InvalidDpopProof, "the DPoP header is not ASCII")
                })?
                .to_owned(),
        ),
        None => None,
    };
    let attestation = match (
        single_header(headers, aims_jose::attestation::ATTESTATION_HEADER)?,
        single_header(headers, aims_jose::attestation::POP_HEADER)?,
    ) {
        (Some(a), Some(p)) => Some((a, p)),
        (None, None) => None,
        _ => {
            return Err(OAuthError::invalid_request(
                "OAuth-Client-Attestation and OAuth-Client-Attestation-PoP go together",
            ));
        }
    };
    if !is_form(headers) {
        return Err(OAuthError::invalid_request(
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            OAuthError::invalid_request(format!(
                "request body unreadable or larger than {MAX_BODY_BYTES} bytes"
            ))
        })?;
    let params = Params::parse(&bytes)?;
    Ok(Parsed {
        params,
        basic_auth,
        dpop,
        attestation,
    })
}

/// An OAuth error response (RFC 6749 §5.2): status by code, JSON body, `WWW-Authenticate`
/// on 401 only when the client used HTTP Basic.
fn error_response(
    e: &OAuthError,
    basic_auth: bool,
    nonce: Option<&str>,
    request_id: &str,
) -> Response {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut h = base_headers(request_id);
    if status == StatusCode::UNAUTHORIZED && basic_auth {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"aims\""),
        );
    }
    if let Some(n) = nonce.and_then(|n| HeaderValue::from_str(n).ok()) {
        h.insert(DPOP_NONCE, n);
    }
    (status, h, axum::Json(e.to_json())).into_response()
}

async fn metadata(State(s): State<Arc<OAuthServer>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.metadata.clone(),
    )
        .into_response()
}

async fn jwks(State(s): State<Arc<OAuthServer>>) -> Response {
    match serde_json::to_vec(&s.service.jwks()) {
        Ok(b) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "max-age=60"),
            ],
            b,
        )
            .into_response(),
        Err(e) => {
            let e = OAuthError::server_error("jwks", &e);
            error_response(&e, false, None, "jwks")
        }
    }
}

/// The client authentication a refused request attempted, as far as the request shows
/// it (for the audit event; an issuance records the method that succeeded).
/// The agent of a refused request's audit event. The client is not authenticated (or
/// the request failed after it was): the client id it claimed (form or HTTP Basic),
/// marked as such.
fn claimed_client(parsed: &Parsed) -> String {
    parsed
        .params
        .get("client_id")
        .or(parsed.basic_auth.as_ref().map(|b| b.client_id.as_str()))
        .map_or_else(
            || "unauthenticated".to_owned(),
            |c| format!("unverified:{c}"),
        )
}

fn mechanism(parsed: &Parsed) -> Option<&'static str> {
    match parsed.params.get("client_assertion_type") {
        Some(aims_jose::client_assertion::ASSERTION_TYPE) => Some("private_key_jwt"),
        Some(aims_jose::client_assertion::SPIFFE_ASSERTION_TYPE) => Some("spiffe_jwt"),
        _ if parsed.attestation.is_some() => Some("spiffe_wit"),
        _ if parsed.basic_auth.is_some() => Some("client_secret_basic"),
        _ if parsed.params.get("client_secret").is_some() => Some("client_secret_post"),
        _ => None,
    }
}

async fn token(
    State(s): State<Arc<OAuthServer>>,
    cert: PeerCert,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = tls_peer(cert);
    let request_id = correlation_id(&headers);
    let parsed = match parse(&headers, body).await {
        Ok(p) => p,
        Err(e) => {
            s.audit_refusal(None, &e, &request_id, false);
            return error_response(&e, is_basic(&headers), None, &request_id);
        }
    };
    let req = parsed.request(peer.as_ref());
    // A nonce goes out when the server requires them, or the client uses DPoP.
    let nonce_used = s.require_dpop_nonce || parsed.dpop.is_some();
    match s.service.token(req).await {
        Ok((resp, issued)) => {
            s.audit_issued(&issued, &request_id);
            let mut h = base_headers(&request_id);
            if nonce_used && let Ok(v) = HeaderValue::from_str(&s.service.dpop_nonce().await) {
                h.insert(DPOP_NONCE, v);
            }
            (StatusCode::OK, h, axum::Json(resp)).into_response()
        }
        Err(TokenError { error, dpop_nonce }) => {
            let nonce_sent = dpop_nonce.is_some();
            s.audit_refusal(Some(&parsed), &error, &request_id, nonce_sent);
            let nonce = match dpop_nonce {
                Some(n) => Some(n),
                None if nonce_used => Some(s.service.dpop_nonce().await),
                None => None,
            };
            error_response(
                &error,
                parsed.basic_auth.is_some(),
                nonce.as_deref(),
                &request_id,
            )
        }
    }
}

impl OAuthServer {
    /// The fields every audit event of the authorization server shares: now, the
    /// correlation id, risk `unknown`; no `act` chain, no policies, no remediation
    /// unless a site says otherwise.
    fn audit_base(&self, request_id: &str) -> AuditEvent {
        AuditEvent {
            agent: String::new(),
            mechanism: None,
            delegated_subject: None,
            actors: Vec::new(),
            resource: String::new(),
            action: String::new(),
            decision: Decision::Allow,
            time: self.clock.now(),
            correlation_id: request_id.to_owned(),
            risk_state: "unknown".to_owned(),
            remediation: "none".to_owned(),
            policies: Vec::new(),
        }
    }

    /// An introspection answered: the caller is the agent; allowed when the token was
    /// active (its audiences are the resource, its user the delegated subject), denied
    /// (`inactive_token`) otherwise.
    fn audit_introspection(&self, query: &TokenQuery, request_id: &str) {
        if !self.audit.enabled() {
            return;
        }
        let claims = query.active_claims();
        let (resource, decision, delegated_subject) = match claims {
            Some(c) => (
                c.aud.iter().collect::<Vec<_>>().join(" "),
                Decision::Allow,
                (c.sub != c.client_id).then(|| c.sub.clone()),
            ),
            None => (
                paths::INTROSPECT.to_owned(),
                Decision::Deny {
                    reason: "inactive_token".to_owned(),
                },
                None,
            ),
        };
        self.audit.record(&AuditEvent {
            agent: query.caller.token_client_id().to_owned(),
            mechanism: Some(query.caller.method.as_str()),
            delegated_subject,
            resource,
            action: "introspect".to_owned(),
            decision,
            ..self.audit_base(request_id)
        });
    }

    /// A revocation request answered (RFC 7009: 200 whatever it did); the remediation
    /// names what was revoked.
    fn audit_revocation(&self, r: &Revocation, request_id: &str) {
        let agent = r.caller.token_client_id();
        tracing::info!(
            target: "aims::oauth",
            agent = %agent,
            revoked = r.revoked.as_str(),
            correlation_id = %request_id,
            "revocation request"
        );
        if !self.audit.enabled() {
            return;
        }
        let resource = if r.audience.is_empty() {
            paths::REVOKE.to_owned()
        } else {
            r.audience.join(" ")
        };
        self.audit.record(&AuditEvent {
            agent: agent.to_owned(),
            mechanism: Some(r.caller.method.as_str()),
            delegated_subject: r.subject.clone().filter(|s| s != agent),
            resource,
            action: "revoke".to_owned(),
            decision: Decision::Allow,
            remediation: r.revoked.as_str().to_owned(),
            ..self.audit_base(request_id)
        });
    }

    /// A refused introspection or revocation request (the caller's authentication
    /// failed, or the request was malformed).
    fn audit_token_endpoint_refusal(
        &self,
        parsed: &Parsed,
        e: &OAuthError,
        path: &str,
        action: &str,
        request_id: &str,
    ) {
        tracing::info!(
            target: "aims::oauth",
            error = e.code.as_str(),
            description = %e.description,
            correlation_id = %request_id,
            "{action} request refused"
        );
        if !self.audit.enabled() {
            return;
        }
        self.audit.record(&AuditEvent {
            agent: claimed_client(parsed),
            mechanism: mechanism(parsed),
            resource: path.to_owned(),
            action: action.to_owned(),
            decision: Decision::Deny {
                reason: e.code.as_str().to_owned(),
            },
            remediation: "reject".to_owned(),
            ..self.audit_base(request_id)
        });
    }

    fn audit_issued(&self, issued: &Issued, request_id: &str) {
        tracing::info!(
            target: "aims::oauth",
            client_id = %issued.client_id,
            agent = %issued.agent,
            jti = %issued.jti,
            binding = issued.binding,
            scope = %issued.scope,
            correlation_id = %request_id,
            "access token issued"
        );
        if !self.audit.enabled() {
            return;
        }
        self.audit.record(&AuditEvent {
            agent: issued.agent.clone(),
            mechanism: Some(issued.auth_method),
            delegated_subject: issued.subject.clone(),
            resource: issued.audience.join(" "),
            action: issued.grant_type.to_owned(),
            decision: Decision::Allow,
            ..self.audit_base(request_id)
        });
    }

    fn audit_refusal(
        &self,
        parsed: Option<&Parsed>,
        e: &OAuthError,
        request_id: &str,
        nonce_issued: bool,
    ) {
        let params = parsed.map(|p| &p.params);
        let agent = parsed.map_or_else(|| "unauthenticated".to_owned(), claimed_client);
        let resource = params
            .map(|p| p.get_all("resource").join(" "))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| paths::TOKEN.to_owned());
        let action = params
            .and_then(|p| p.get("grant_type"))
            .unwrap_or("token")
            .chars()
            .take(128)
            .collect();
        let remediation = if nonce_issued {
            "reject; new DPoP nonce issued"
        } else {
            "reject"
        };
        tracing::info!(
            target: "aims::oauth",
            error = e.code.as_str(),
            description = %e.description,
            correlation_id = %request_id,
            "token request refused"
        );
        self.audit.record(&AuditEvent {
            agent,
            mechanism: parsed.and_then(mechanism),
            resource,
            action,
            decision: Decision::Deny {
                reason: e.code.as_str().to_owned(),
            },
            remediation: remediation.to_owned(),
            ..self.audit_base(request_id)
        });
    }
}

fn wants_jwt(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|m| m.split(';').next())
        .any(|m| m.trim().eq_ignore_ascii_case(INTROSPECTION_JWT_MEDIA_TYPE))
}

async fn introspect(
    State(s): State<Arc<OAuthServer>>,
    cert: PeerCert,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = tls_peer(cert);
    let request_id = correlation_id(&headers);
    let parsed = match parse(&headers, body).await {
        Ok(p) => p,
        Err(e) => return error_response(&e, is_basic(&headers), None, &request_id),
    };
    let req = TokenRequest {
        dpop: None,
        ..parsed.request(peer.as_ref())
    };
    let h = base_headers(&request_id);
    let outcome = if wants_jwt(&headers) {
        s.service
            .introspect_jwt(req)
            .await
            .map(|(jwt, query)| (INTROSPECTION_JWT_MEDIA_TYPE, jwt, query))
    } else {
        s.service
            .introspect_json(req)
            .await
            .map(|(text, query)| ("application/json", String::from(&*text), query))
    };
    match outcome {
        Ok((media_type, body, query)) => {
            s.audit_introspection(&query, &request_id);
            (
                StatusCode::OK,
                h,
                [(header::CONTENT_TYPE, media_type)],
                body,
            )
                .into_response()
        }
        Err(e) => {
            s.audit_token_endpoint_refusal(
                &parsed,
                &e,
                paths::INTROSPECT,
                "introspect",
                &request_id,
            );
            error_response(&e, parsed.basic_auth.is_some(), None, &request_id)
        }
    }
}

async fn revoke(
    State(s): State<Arc<OAuthServer>>,
    cert: PeerCert,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = tls_peer(cert);
    let request_id = correlation_id(&headers);
    let parsed = match parse(&headers, body).await {
        Ok(p) => p,
        Err(e) => return error_response(&e, is_basic(&headers), None, &request_id),
    };
    let req = TokenRequest {
        dpop: None,
        ..parsed.request(peer.as_ref())
    };
    match s.service.revoke(req).await {
        Ok(revocation) => {
            s.audit_revocation(&revocation, &request_id);
            (StatusCode::OK, base_headers(&request_id)).into_response()
        }
        Err(e) => {
            s.audit_token_endpoint_refusal(&parsed, &e, paths::REVOKE, "revoke", &request_id);
            error_response(&e, parsed.basic_auth.is_some(), None, &request_id)
        }
    }
}

/// `POST /oauth/par` (RFC 9126 §2): the client authenticates as at the token endpoint.
async fn par(
    State(s): State<Arc<OAuthServer>>,
    cert: PeerCert,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = tls_peer(cert);
    let request_id = correlation_id(&headers);
    let parsed = match parse(&headers, body).await {
        Ok(p) => p,
        Err(e) => return error_response(&e, is_basic(&headers), None, &request_id),
    };
    let req = parsed.request(peer.as_ref());
    match s.service.push_authorization_request(req).await {
        Ok((request_uri, expires_in)) => (
            StatusCode::CREATED,
            base_headers(&request_id),
            axum::Json(serde_json::json!({
                "request_uri": request_uri,
                "expires_in": expires_in,
            })),
        )
            .into_response(),
        Err(e) => {
            tracing::info!(
                target: "aims::oauth",
                error = e.error.code.as_str(),
                description = %e.error.description,
                correlation_id = %request_id,
                "pushed authorization request refused"
            );
            error_response(
                &e.error,
                parsed.basic_auth.is_some(),
                e.dpop_nonce.as_deref(),
                &request_id,
            )
        }
    }
}
