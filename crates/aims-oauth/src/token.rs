//! The token endpoint (RFC 6749 §3.2) and the access tokens it issues.
//!
//! Grants today: `client_credentials`. Every token is short-lived, audience-bound by the
//! RFC 8707 `resource` parameter (checked against the client's registered resources:
//! `invalid_target`), carries the granted `scope` and RFC 9396 `authorization_details`,
//! and is sender-constrained when the client proves a key: DPoP (`cnf.jkt`, RFC 9449) or
//! its TLS client certificate (`cnf.x5t#S256`, RFC 8705).
//!
//! JWT access tokens follow RFC 9068: `typ` `at+jwt`, `client_id` = the agent's
//! SPIFFE/WIMSE ID when its credential proved one, `sub` = the agent (no user is
//! involved in client credentials). Opaque tokens are random handles whose claims the
//! store keeps under their SHA-256, served by introspection.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aims_core::Clock;
use aims_crypto::{Jwks, Signer, random_token, sha256_b64url};
use aims_guard::{NonceIssuer, ReplayCache};
use aims_jose::access_token::{self, AccessTokenClaims, AuthorizationDetail, Confirmation, Scope};
use aims_jose::{Audience, JoseError, KeyResolver, dpop};
use aims_store::{GrantKind, NewGrant, Store};
use serde::Serialize;

use crate::authn::{AuthenticatedClient, ClientAuthenticator, ClientDirectory, TlsPeer};
use crate::client::{GrantType, TokenFormat, is_resource_indicator};
use crate::form::Params;
use crate::rar::RarTypes;
use crate::verified::VerifiedTokens;
use crate::{ErrorCode, Issuer, OAuthError};

/// Where the current token-signing key and the published key set come from (the server's
/// key manager, rotating with overlap).
pub trait TokenKeys: Send + Sync {
    /// The key that signs new tokens.
    fn signer(&self) -> Option<Arc<dyn Signer>>;
    /// [`TokenKeys::signer`] with the end of its key's validity (`not_after`, Unix
    /// seconds), read together: a JWT it signs must expire by then, or relying parties
    /// could meet the token after the key has left the JWKS. Default: no end.
    fn signer_until(&self) -> Option<(Arc<dyn Signer>, Option<i64>)> {
        self.signer().map(|s| (s, None))
    }
    /// Every key a resource server may meet (next, current, previous), public parts.
    fn jwks(&self) -> Jwks;
    /// The same keys, parsed, under the scope of the issuer identifier: to verify this
    /// server's own tokens (introspection, revocation).
    fn verifier(&self) -> Arc<dyn KeyResolver>;
}

/// What the HTTP layer passes in for one token request.
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest<'a> {
    /// The form parameters.
    pub params: &'a Params,
    /// The verified TLS client certificate, if any.
    pub tls: Option<&'a TlsPeer>,
    /// The credentials of an `Authorization: Basic` header, if one was sent (parse it
    /// with [`crate::secret::BasicCredentials::parse`]).
    pub basic_auth: Option<&'a crate::secret::BasicCredentials>,
    /// The `DPoP` header, if exactly one was sent.
    pub dpop: Option<&'a str>,
    /// `OAuth-Client-Attestation` and `OAuth-Client-Attestation-PoP`, if sent
    /// (`spiffe_wit`).
    pub attestation: Option<ClientAttestation<'a>>,
}

/// The two headers of attestation-based client authentication.
#[derive(Debug, Clone, Copy)]
pub struct ClientAttestation<'a> {
    /// The WIT-SVID.
    pub attestation: &'a str,
    /// The proof of possession of its `cnf` key.
    pub pop: &'a str,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer` or `DPoP`.
    pub token_type: &'static str,
    /// Seconds until expiry.
    pub expires_in: i64,
    /// The granted scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 9396 granted details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Vec<AuthorizationDetail>>,
    /// Refresh token, when issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// An error of the token endpoint, with the `DPoP-Nonce` to send when the client must
/// retry with a nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// The OAuth error.
    pub error: OAuthError,
    /// A fresh `DPoP-Nonce` value to return with the error.
    pub dpop_nonce: Option<String>,
}

impl From<OAuthError> for TokenError {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            dpop_nonce: None,
        }
    }
}

/// One issuance, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The registered client.
    pub client_id: String,
    /// The agent (token `client_id`).
    pub agent: String,
    /// The delegated user, if any.
    pub subject: Option<String>,
    /// The grant type.
    pub grant_type: &'static str,
    /// The audiences.
    pub audience: Vec<String>,
    /// The granted scope.
    pub scope: String,
    /// The token's `jti` (never the token).
    pub jti: String,
    /// How the token is bound (`dpop`, `mtls`, `bearer`).
    pub binding: &'static str,
    /// How the client authenticated (its `token_endpoint_auth_method`).
    pub auth_method: &'static str,
}

/// The authorization server's token logic.
pub struct TokenService<D> {
    issuer: Issuer,
    clock: Arc<dyn Clock>,
    clients: D,
    authn: ClientAuthenticator,
    keys: Arc<dyn TokenKeys>,
    store: Arc<Store>,
    dpop_replay: ReplayCache,
    nonces: Arc<NonceIssuer>,
    require_dpop_nonce: bool,
    rar: RarTypes,
    grant_issuers: Option<(Vec<String>, Arc<dyn KeyResolver>)>,
    mtls_token_endpoint: Option<String>,
    verified: Arc<VerifiedTokens>,
}

impl<D> std::fmt::Debug for TokenService<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl<D: ClientDirectory> TokenService<D> {
    /// A token service.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        issuer: Issuer,
        clock: Arc<dyn Clock>,
        clients: D,
        authn: ClientAuthenticator,
        keys: Arc<dyn TokenKeys>,
        store: Arc<Store>,
        dpop_replay: ReplayCache,
        nonces: Arc<NonceIssuer>,
        rar: RarTypes,
    ) -> Self {
        Self {
            issuer,
            clock,
            clients,
            authn,
            keys,
            store,
            dpop_replay,
            nonces,
            require_dpop_nonce: false,
            rar,
            grant_issuers: None,
            mtls_token_endpoint: None,
            verified: Arc::new(VerifiedTokens::new(
                crate::verified::DEFAULT_CAPACITY,
                crate::verified::REVOCATION_RECHECK,
            )),
        }
    }

    /// Sizes the cache of verified access tokens used by introspection: at most
    /// `capacity` tokens (0: none are remembered), and a store answer "not revoked"
    /// trusted for `revocation_recheck`.
    pub fn introspection_cache(mut self, capacity: usize, revocation_recheck: Duration) -> Self {
        self.verified = Arc::new(VerifiedTokens::new(capacity, revocation_recheck));
        self
    }

    pub(crate) fn verified(&self) -> &VerifiedTokens {
        &self.verified
    }

    /// The token endpoint's RFC 8705 §5 mTLS alias: a DPoP proof's `htu` may name it
    /// as well as the issuer's token endpoint.
    pub fn mtls_token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.mtls_token_endpoint = Some(url.into());
        self
    }

    /// Trusts these issuers' JWTs as authorization grants (RFC 7523 §2.1); their keys
    /// are looked up in `keys` under the issuer identifier.
    pub fn jwt_grant_issuers(mut self, issuers: Vec<String>, keys: Arc<dyn KeyResolver>) -> Self {
        self.grant_issuers = Some((issuers, keys));
        self
    }

    /// Requires server-provided nonces in DPoP proofs (RFC 9449 §8).
    pub fn require_dpop_nonce(mut self, yes: bool) -> Self {
        self.require_dpop_nonce = yes;
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The client directory.
    pub fn clients(&self) -> &D {
        &self.clients
    }

    /// The client authenticator.
    pub fn authenticator(&self) -> &ClientAuthenticator {
        &self.authn
    }

    /// The token keys.
    pub fn keys(&self) -> &Arc<dyn TokenKeys> {
        &self.keys
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn rar(&self) -> &RarTypes {
        &self.rar
    }

    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The published key set.
    pub fn jwks(&self) -> Jwks {
        self.keys.jwks()
    }

    /// The DPoP nonce to send in `DPoP-Nonce`. When nonces are required it is first
    /// recorded in the store (when it changed since: a cheap comparison otherwise), so
    /// that every node sharing the store accepts it (RFC 9449 §8 nonces behind a load
    /// balancer); a failure to record it is logged, the nonce still works on this node.
    pub async fn dpop_nonce(&self) -> String {
        if self.require_dpop_nonce
            && let Err(e) = self.nonces.publish(&self.store, self.issuer.as_str()).await
        {
            tracing::warn!(error = %e, "could not record the DPoP nonce in the store; other nodes refuse it until a retry succeeds");
        }
        self.nonces.current()
    }

    /// Handles a token request.
    pub async fn token(
        &self,
        req: TokenRequest<'_>,
    ) -> Result<(TokenResponse, Issued), TokenError> {
        let params = req.params;
        let grant = params.require("grant_type")?;
        let grant = GrantType::parse(grant).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {grant} is not supported"),
            )
        })?;
        let client = self.authn.authenticate(&req, &self.clients).await?;
        if !client.client.may_use(grant) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("this client may not use {}", grant.as_str()),
            )
            .into());
        }
        match grant {
            GrantType::ClientCredentials => self.client_credentials(&client, &req).await,
            GrantType::AuthorizationCode => self.authorization_code(&client, &req).await,
            GrantType::RefreshToken => self.refresh_token(&client, &req).await,
            GrantType::JwtBearer => self.jwt_bearer(&client, &req).await,
            other => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {} is not served yet", other.as_str()),
            )
            .into()),
        }
    }

    async fn client_credentials(
        &self,
        client: &AuthenticatedClient,
        req: &TokenRequest<'_>,
    ) -> Result<(TokenResponse, Issued), TokenError> {
        let scope = granted_scope(client, req.params.get("scope"))?;
        let audience = audience(client, &req.params.get_all("resource"))?;
        let details = self.rar.parse(
            req.params.get("authorization_details"),
            &client.client.metadata().authorization_details_types,
        )?;
        let jkt = self.dpop_proof(req.dpop).await?;
        if client.client.requires_dpop() && jkt.is_none() {
            return Err(OAuthError::invalid_request(
                "this client's tokens must be DPoP-bound: send a DPoP proof",
            )
            .into());
        }
        let agent = client.token_client_id().to_owned();
        self.issue(
            client,
            Grant {
                agent,
                subject: None,
                audience,
                scope,
                details,
                jkt,
                grant: GrantType::ClientCredentials,
                family: None,
                refresh: None,
                auth_time: None,
                acr: None,
                spends: None,
            },
        )
        .await
    }

    /// RFC 7523 §2.1: a trusted issuer's assertion about a user, for an access token
    /// whose `sub` is that user and `client_id` the agent. No refresh token: the client
    /// presents a fresh assertion instead.
    async fn jwt_bearer(
        &self,
        client: &AuthenticatedClient,
        req: &TokenRequest<'_>,
    ) -> Result<(TokenResponse, Issued), TokenError> {
        let assertion = req.params.require("assertion")?;
        let Some((issuers, keys)) = &self.grant_issuers else {
            // RFC 6749 §5.2: with no trusted issuer the grant type is not supported here.
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "this server trusts no assertion issuers",
            )
            .into());
        };
        // The assertion's `jti` is recorded only once the whole request holds, so a
        // refused request (a bad scope or resource, a DPoP nonce to fetch) does not use
        // the assertion up.
        let (guard, pending) = self.dpop_replay.begin_deferred();
        let grant = aims_jose::jwt_grant::Validator::new(
            self.clock.clone(),
            [
                self.issuer.as_str().to_owned(),
                self.issuer.endpoint(crate::metadata::paths::TOKEN),
            ],
            issuers.iter().cloned(),
        )
        .replay_guard(guard)
        .validate(assertion, keys.as_ref())
        .map_err(|e| {
            OAuthError::new(ErrorCode::InvalidGrant, format!("assertion rejected: {e}"))
        })?;
        // An assertion that names the client it was issued to is for that client only.
        if let Some(named) = grant.extra.get("client_id")
            && named.as_str() != Some(client.client.id())
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "assertion rejected: it was issued to another client (client_id)",
            )
            .into());
        }
        let scope = granted_scope(client, req.params.get("scope"))?;
        let audience = audience(client, &req.params.get_all("resource"))?;
        let details = self.rar.parse(
            req.params.get("authorization_details"),
            &client.client.metadata().authorization_details_types,
        )?;
        let jkt = self.dpop_proof(req.dpop).await?;
        if client.client.requires_dpop() && jkt.is_none() {
            return Err(OAuthError::invalid_request(
                "this client's tokens must be DPoP-bound: send a DPoP proof",
            )
            .into());
        }
        pending
            .commit(self.clock.now())
            .await
            .map_err(|f| match f {
                aims_guard::replay::ReplayFailure::Replayed => TokenError::from(OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "assertion rejected: jti already used",
                )),
                aims_guard::replay::ReplayFailure::Unavailable => {
                    TokenError::from(OAuthError::server_error("replay cache", &"unavailable"))
                }
            })?;
        let acr = grant
            .extra
            .get("acr")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let auth_time = grant
            .extra
            .get("auth_time")
            .and_then(serde_json::Value::as_i64);
        self.issue(
            client,
            Grant {
                agent: client.token_client_id().to_owned(),
                subject: Some(grant.sub),
                audience,
                scope,
                details,
                jkt,
                grant: GrantType::JwtBearer,
                family: None,
                refresh: None,
                auth_time,
                acr,
                spends: None,
            },
        )
        .await
    }

    /// Validates `proof` for the endpoint at `path` (or, when it names it, that
    /// endpoint's mTLS alias); `shared` is one more nonce to accept (handed out by
    /// another node).
    fn validate_dpop(
        &self,
        proof: &str,
        shared: Option<String>,
        path: &str,
    ) -> (
        aims_guard::replay::PendingReplay,
        Result<dpop::ValidatedDpop, JoseError>,
    ) {
        let attempt = |htu: &str| {
            let (guard, pending) = self.dpop_replay.begin();
            let mut validator = dpop::Validator::new(self.clock.clone(), guard);
            if self.require_dpop_nonce {
                let nonces = self.nonces.clone();
                let shared = shared.clone();
                validator = validator
                    .require_nonce(move |n| nonces.accepts(n) || shared.as_deref() == Some(n));
            }
            let result = validator.validate(proof, &dpop::DpopRequest::new("POST", htu));
            (pending, result)
        };
        let first = attempt(&self.issuer.endpoint(path));
        // The proof may name the mTLS alias instead (the request came through it). The
        // first attempt recorded nothing: the `jti` is recorded after the `htu` check.
        // The aliases share the token endpoint's base (RFC 8705 §5).
        let alias = self.mtls_token_endpoint.as_deref().and_then(|t| {
            t.strip_suffix(crate::metadata::paths::TOKEN)
                .map(|base| format!("{base}{path}"))
        });
        match (&first.1, alias) {
            (Err(JoseError::BindingMismatch("htu")), Some(alias)) => attempt(&alias),
            _ => first,
        }
    }

    /// Validates the DPoP proof of a token request; `Ok(Some(jkt))` when one was sent.
    pub(crate) async fn dpop_proof(
        &self,
        proof: Option<&str>,
    ) -> Result<Option<String>, TokenError> {
        self.dpop_proof_at(proof, crate::metadata::paths::TOKEN)
            .await
    }

    /// [`TokenService::dpop_proof`] for the endpoint at `path` (the token endpoint, or
    /// PAR: RFC 9449 §10.1).
    pub(crate) async fn dpop_proof_at(
        &self,
        proof: Option<&str>,
        path: &str,
    ) -> Result<Option<String>, TokenError> {
        let Some(proof) = proof else {
            return Ok(None);
        };
        let (mut pending, mut result) = self.validate_dpop(proof, None, path);
        // Not this node's nonce: maybe another node's (nothing was recorded yet).
        if self.require_dpop_nonce
            && matches!(result, Err(JoseError::BindingMismatch("nonce")))
            && let Some(shared) = self
                .nonces
                .shared(&self.store, self.issuer.as_str(), proof)
                .await
                .map_err(|e| OAuthError::server_error("DPoP nonce", &e))?
        {
            (pending, result) = self.validate_dpop(proof, Some(shared), path);
        }
        match result {
            Ok(v) => {
                pending.commit(self.clock.now()).await.map_err(|_| {
                    OAuthError::new(ErrorCode::InvalidDpopProof, "DPoP proof replayed")
                })?;
                Ok(Some(v.jkt().to_owned()))
            }
            Err(JoseError::NonceRequired | JoseError::BindingMismatch("nonce")) => {
                Err(TokenError {
                    error: OAuthError::new(
                        ErrorCode::UseDpopNonce,
                        "the authorization server requires a DPoP nonce",
                    ),
                    dpop_nonce: Some(self.dpop_nonce().await),
                })
            }
            Err(e) => Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                format!("DPoP proof rejected: {e}"),
            )
            .into()),
        }
    }

    pub(crate) async fn issue(
        &self,
        client: &AuthenticatedClient,
        grant: Grant,
    ) -> Result<(TokenResponse, Issued), TokenError> {
        let Grant {
            agent,
            subject,
            audience,
            scope,
            details,
            jkt,
            grant,
            family,
            refresh,
            auth_time,
            acr,
            spends,
        } = grant;
        let now = self.clock.now();
        let format = client.client.metadata().access_token_format;
        // A JWT's signing key, taken first: the token must expire while it is published.
        let signer = match format {
            TokenFormat::Jwt => Some(self.keys.signer_until().ok_or_else(|| {
                OAuthError::server_error("token signing", &"no current signing key")
            })?),
            TokenFormat::Opaque => None,
        };
        let mut lifetime = client.client.access_token_lifetime();
        if let Some((_, Some(not_after))) = &signer {
            lifetime = lifetime.min(not_after.saturating_sub(now)).max(1);
        }
        let first_aud = audience.first().cloned().unwrap_or_default();
        let mut claims = AccessTokenClaims::new(
            self.issuer.as_str(),
            subject.clone().unwrap_or_else(|| agent.clone()),
            agent.clone(),
            first_aud,
            now,
            lifetime,
        )
        .map_err(|e| OAuthError::server_error("access token claims", &e))?;
        if audience.len() > 1 {
            claims.aud = Audience::Many(audience.clone());
        }
        claims.scope = scope.clone();
        claims.authorization_details = details.clone();
        claims.auth_time = auth_time;
        claims.acr = acr.clone();
        let binding = match (&jkt, &client.cert_thumbprint) {
            (Some(jkt), _) => {
                claims.cnf = Some(Confirmation {
                    jkt: Some(jkt.clone()),
                    ..Confirmation::default()
                });
                "dpop"
            }
            // Set only when the token is to be bound (see `authn`): the client
            // authenticated with this certificate, or asked for bound tokens.
            (None, Some(x5t)) => {
                claims.cnf = Some(Confirmation {
                    x5t_s256: Some(x5t.clone()),
                    ..Confirmation::default()
                });
                "mtls"
            }
            _ => "bearer",
        };
        // What the store keeps of this issuance, written in one transaction (with the use
        // of the code or refresh token it spends, if any).
        let mut records = Vec::new();
        let access_token = match signer {
            Some((signer, _)) => access_token::issue(&claims, signer.as_ref())
                .map_err(|e| OAuthError::server_error("token signing", &e))?,
            None => {
                let token = random_token().map_err(|e| OAuthError::server_error("random", &e))?;
                let data = serde_json::to_string(&claims)
                    .map_err(|e| OAuthError::server_error("token claims", &e))?;
                records.push(NewGrant {
                    handle: sha256_b64url(&token),
                    kind: GrantKind::AccessToken,
                    client_id: client.client.id().to_owned(),
                    subject: subject.clone(),
                    family: family.clone().unwrap_or_else(|| claims.jti.clone()),
                    expires_at: claims.exp,
                    created_at: now,
                    data,
                });
                token
            }
        };
        if let (Some(family), TokenFormat::Jwt) = (&family, format) {
            // So that revoking the family (a reused code or refresh token) makes this
            // JWT inactive at introspection too.
            records.push(NewGrant {
                handle: crate::introspect::jwt_handle(&claims.jti),
                kind: GrantKind::AccessToken,
                client_id: client.client.id().to_owned(),
                subject: subject.clone(),
                family: family.clone(),
                expires_at: claims.exp,
                created_at: now,
                data: "{}".to_owned(),
            });
        }
        let refresh_token = match (refresh, &family) {
            (Some(data), Some(family)) => {
                let (token, record) =
                    self.refresh_grant(client, family, subject.clone(), &data, now)?;
                records.push(record);
                Some(token)
            }
            _ => None,
        };
        match spends {
            Some(spent) => {
                let outcome = self
                    .store
                    .consume_grant_and_put(&spent.handle, spent.kind, now, &records)
                    .await
                    .map_err(|e| OAuthError::server_error(spent.kind.as_str(), &e))?;
                self.used_up(outcome, spent.kind).await?;
            }
            None if records.is_empty() => {}
            None => self
                .store
                .put_grants(&records)
                .await
                .map_err(|e| OAuthError::server_error("store tokens", &e))?,
        }
        let scope_str = scope.iter().collect::<Vec<_>>().join(" ");
        let issued = Issued {
            client_id: client.client.id().to_owned(),
            agent,
            subject,
            grant_type: grant.as_str(),
            audience,
            scope: scope_str.clone(),
            jti: claims.jti.clone(),
            binding,
            auth_method: client.method.as_str(),
        };
        Ok((
            TokenResponse {
                access_token,
                token_type: if jkt.is_some() { "DPoP" } else { "Bearer" },
                expires_in: lifetime,
                scope: (!scope_str.is_empty()).then_some(scope_str),
                authorization_details: details,
                refresh_token,
            },
            issued,
        ))
    }
}

/// What one issuance grants.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) agent: String,
    pub(crate) subject: Option<String>,
    pub(crate) audience: Vec<String>,
    pub(crate) scope: Scope,
    pub(crate) details: Option<Vec<AuthorizationDetail>>,
    pub(crate) jkt: Option<String>,
    pub(crate) grant: GrantType,
    /// The code/refresh family the tokens join (revoked together).
    pub(crate) family: Option<String>,
    /// Issue a refresh token carrying this.
    pub(crate) refresh: Option<crate::code::RefreshData>,
    pub(crate) auth_time: Option<i64>,
    pub(crate) acr: Option<String>,
    /// The single-use grant (a code, a refresh token) this issuance uses up: it is
    /// consumed in the same transaction that stores what is issued, or nothing is issued.
    pub(crate) spends: Option<Spent>,
}

/// A single-use grant, by its handle.
#[derive(Debug, Clone)]
pub(crate) struct Spent {
    pub(crate) handle: String,
    pub(crate) kind: GrantKind,
}

/// The granted scope: the requested scopes, each allowed to the client; without a
/// `scope` parameter, everything the client may have (RFC 6749 §3.3 default).
pub(crate) fn granted_scope(
    client: &AuthenticatedClient,
    requested: Option<&str>,
) -> Result<Scope, OAuthError> {
    let allowed = client.client.allowed_scopes();
    let wanted: BTreeSet<&str> = match requested {
        Some(s) => s.split(' ').filter(|t| !t.is_empty()).collect(),
        None => allowed.iter().map(String::as_str).collect(),
    };
    if let Some(bad) = wanted.iter().find(|s| !allowed.contains(**s)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope {bad} is not allowed for this client"),
        ));
    }
    Scope::from_tokens(wanted).map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))
}

/// The audiences (RFC 8707): each requested resource must be registered for the client;
/// without one, the client's single registered resource.
/// RFC 8707 §2.2: the audience of a token issued from a grant (a code or a refresh
/// token) that was approved for `granted`. No `resource` parameter: all of them; else
/// the ones named, each of which must be among them (`invalid_target`).
pub(crate) fn narrowed_audience(
    granted: &[String],
    requested: &[&str],
) -> Result<Vec<String>, OAuthError> {
    if requested.is_empty() {
        return Ok(granted.to_vec());
    }
    let mut out: Vec<String> = Vec::with_capacity(requested.len());
    for r in requested {
        if !granted.iter().any(|g| g == r) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("resource {r} was not part of the grant"),
            ));
        }
        if !out.iter().any(|o| o == r) {
            out.push((*r).to_owned());
        }
    }
    Ok(out)
}

pub(crate) fn audience(
    client: &AuthenticatedClient,
    requested: &[&str],
) -> Result<Vec<String>, OAuthError> {
    let registered = &client.client.metadata().resources;
    if requested.is_empty() {
        return match registered.as_slice() {
            [one] => Ok(vec![one.clone()]),
            _ => Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "name the resource the token is for (resource parameter)",
            )),
        };
    }
    for r in requested {
        if !is_resource_indicator(r) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("resource {r} must be an absolute URI without a fragment"),
            ));
        }
        if !registered.iter().any(|x| x == r) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("resource {r} is not allowed for this client"),
            ));
        }
    }
    Ok(requested.iter().map(|r| (*r).to_owned()).collect())
}
