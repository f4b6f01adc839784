//! Token introspection (RFC 7662, with RFC 9701 JWT responses) and revocation (RFC 7009).
//!
//! Who may introspect: an authenticated client, for tokens issued to it or whose
//! audience is one of its registered resources (the resource servers). Anything else,
//! like an unknown, expired, revoked or foreign token, is `{"active": false}` and nothing
//! more, so introspection cannot be used to probe tokens (RFC 7662 §4).
//!
//! Revocation: the client that holds a token may revoke it. An opaque token or refresh
//! token is revoked in the store; a JWT access token's `jti` is recorded as revoked, so
//! introspection answers inactive from then on (resource servers that validate JWTs
//! locally learn of it through Shared Signals, and the token is short-lived). Unknown
//! tokens are answered 200 like known ones (RFC 7009 §2.2).

use std::sync::Arc;

use aims_crypto::sha256_b64url;
use aims_jose::access_token::{self, AccessTokenClaims};
use aims_jose::{HeaderSpec, sign};
use aims_store::{GrantKind, GrantState, NewGrant, StoreError};
use serde_json::{Map, Value};

use crate::OAuthError;
use crate::authn::{AuthenticatedClient, ClientDirectory};
use crate::client::AuthMethod;
use crate::token::{TokenRequest, TokenService};
use crate::verified::Verified;

/// RFC 9701 `typ` of a JWT introspection response.
pub const INTROSPECTION_JWT_TYP: &str = "token-introspection+jwt";
/// RFC 9701 media type.
pub const INTROSPECTION_JWT_MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// Who asked about a token and what it learned, for the audit log (never the token).
#[derive(Debug)]
pub struct TokenQuery {
    /// The authenticated caller.
    pub caller: AuthenticatedClient,
    active: Option<Active>,
}

impl TokenQuery {
    /// The claims of the token when it was active and the caller may see it.
    pub fn active_claims(&self) -> Option<&AccessTokenClaims> {
        self.active.as_ref().map(Active::claims)
    }
}

/// What a revocation request did (RFC 7009 answers 200 whatever it did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// Nothing: the token was unknown, invalid, already revoked or not the caller's.
    Nothing,
    /// One access token.
    AccessToken,
    /// A refresh token, with its family and the access tokens issued from it.
    RefreshFamily,
}

impl Revoked {
    /// The remediation, as the audit log names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nothing => "none (token unknown, invalid, already revoked or not the caller's)",
            Self::AccessToken => "access token revoked",
            Self::RefreshFamily => "refresh token family revoked",
        }
    }
}

/// A revocation: the caller, what was revoked, and the token's subject and audiences
/// when it was the caller's.
#[derive(Debug)]
pub struct Revocation {
    /// The authenticated caller.
    pub caller: AuthenticatedClient,
    /// What was revoked.
    pub revoked: Revoked,
    /// The revoked token's subject (`sub`), when known.
    pub subject: Option<String>,
    /// The revoked access token's audiences, when known.
    pub audience: Vec<String>,
}

/// The store handle under which a JWT access token's revocation is recorded.
pub(crate) fn jwt_handle(jti: &str) -> String {
    sha256_b64url(format!("at-jti:{jti}"))
}

impl<D: ClientDirectory> TokenService<D> {
    /// RFC 7662: the introspection response for the request's `token`, as JSON.
    pub async fn introspect(&self, req: TokenRequest<'_>) -> Result<Value, OAuthError> {
        let (text, _) = self.introspect_json(req).await?;
        serde_json::from_str(&text).map_err(|e| OAuthError::server_error("introspection", &e))
    }

    /// RFC 7662: the introspection response for the request's `token`, serialised (the
    /// form the HTTP handler sends; for a token introspected before, it is the text
    /// serialised then), and who asked about what.
    pub async fn introspect_json(
        &self,
        req: TokenRequest<'_>,
    ) -> Result<(Arc<str>, TokenQuery), OAuthError> {
        let caller = self.authenticate_introspector(&req).await?;
        let token = req.params.require("token")?;
        let active = self.active(&caller, token).await?;
        let body = active
            .as_ref()
            .map_or_else(|| Arc::from(INACTIVE), |a| a.body().clone());
        Ok((body, TokenQuery { caller, active }))
    }

    /// RFC 9701: the introspection response as a signed JWT for the calling resource
    /// server, and who asked about what.
    pub async fn introspect_jwt(
        &self,
        req: TokenRequest<'_>,
    ) -> Result<(String, TokenQuery), OAuthError> {
        let caller = self.authenticate_introspector(&req).await?;
        let token = req.params.require("token")?;
        let active = self.active(&caller, token).await?;
        let body = match &active {
            Some(active) => introspection_body(active.claims()),
            None => serde_json::json!({ "active": false }),
        };
        let payload = serde_json::json!({
            "iss": self.issuer().as_str(),
            "aud": caller.client.id(),
            "iat": self.clock_now(),
            "token_introspection": body,
        });
        let signer = self
            .keys()
            .signer()
            .ok_or_else(|| OAuthError::server_error("introspection signing", &"no key"))?;
        let jwt = sign(
            &HeaderSpec {
                typ: Some(INTROSPECTION_JWT_TYP),
                kid: true,
                jwk: false,
            },
            &payload,
            signer.as_ref(),
        )
        .map_err(|e| OAuthError::server_error("introspection signing", &e))?;
        Ok((jwt, TokenQuery { caller, active }))
    }

    /// RFC 7009: revokes the request's `token` if the calling client holds it.
    pub async fn revoke(&self, req: TokenRequest<'_>) -> Result<Revocation, OAuthError> {
        let caller = self.authenticate_caller(&req).await?;
        let token = req.params.require("token")?;
        let (revoked, subject, audience) = self.revoke_held(&caller, token).await?;
        Ok(Revocation {
            caller,
            revoked,
            subject,
            audience,
        })
    }

    /// Revokes `token` if `caller` holds it: what was revoked, its subject and audiences.
    async fn revoke_held(
        &self,
        caller: &AuthenticatedClient,
        token: &str,
    ) -> Result<(Revoked, Option<String>, Vec<String>), OAuthError> {
        const NOTHING: (Revoked, Option<String>, Vec<String>) =
            (Revoked::Nothing, None, Vec::new());
        let now = self.clock_now();
        if looks_like_jwt(token) {
            let Some(verified) = self.verified_jwt(token) else {
                return Ok(NOTHING);
            };
            let claims = &verified.claims;
            if !holds(caller, claims) {
                return Ok(NOTHING);
            }
            let grant = NewGrant {
                handle: jwt_handle(&claims.jti),
                kind: GrantKind::AccessToken,
                client_id: caller.client.id().to_owned(),
                subject: Some(claims.sub.clone()),
                family: claims.jti.clone(),
                expires_at: claims.exp.max(now.saturating_add(1)),
                created_at: now,
                data: "{}".to_owned(),
            };
            match self.store().put_grant(&grant).await {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(OAuthError::server_error("revoke", &e)),
            }
            let newly = self
                .store()
                .revoke_grant(&grant.handle)
                .await
                .map_err(|e| OAuthError::server_error("revoke", &e))?;
            self.verified().mark_revoked(token);
            let revoked = if newly {
                Revoked::AccessToken
            } else {
                Revoked::Nothing
            };
            let subject = Some(claims.sub.clone());
            let audience = claims.aud.iter().map(str::to_owned).collect();
            return Ok((revoked, subject, audience));
        }
        let handle = sha256_b64url(token);
        match self.store().get_grant(&handle).await {
            Ok(g) if g.client_id == caller.client.id() => {
                let done = if g.kind == GrantKind::RefreshToken {
                    // A refresh token takes its whole family (and the access tokens
                    // issued from it) with it.
                    self.store()
                        .revoke_family(&g.family)
                        .await
                        .map(|n| (n > 0).then_some(Revoked::RefreshFamily))
                } else {
                    self.store()
                        .revoke_grant(&handle)
                        .await
                        .map(|newly| newly.then_some(Revoked::AccessToken))
                };
                self.verified().revocations_changed();
                let revoked = done
                    .map_err(|e| OAuthError::server_error("revoke", &e))?
                    .unwrap_or(Revoked::Nothing);
                Ok((revoked, g.subject, Vec::new()))
            }
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(NOTHING),
            Err(e) => Err(OAuthError::server_error("revoke", &e)),
        }
    }

    async fn authenticate_caller(
        &self,
        req: &TokenRequest<'_>,
    ) -> Result<AuthenticatedClient, OAuthError> {
        self.authenticator().authenticate(req, self.clients()).await
    }

    /// The caller of the introspection endpoint: RFC 7662 §2.1 requires authorization
    /// there (against token scanning), so a public client naming itself is refused.
    /// (Revocation keeps public clients: RFC 7009 §2.1 lets them revoke their tokens.)
    async fn authenticate_introspector(
        &self,
        req: &TokenRequest<'_>,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let caller = self.authenticate_caller(req).await?;
        if caller.method == AuthMethod::None {
            return Err(OAuthError::invalid_client(
                "introspection needs client authentication; a public client cannot introspect",
            ));
        }
        Ok(caller)
    }

    /// The token if it is active and the caller may see it.
    async fn active(
        &self,
        caller: &AuthenticatedClient,
        token: &str,
    ) -> Result<Option<Active>, OAuthError> {
        let now = self.clock_now();
        if looks_like_jwt(token) {
            let Some(verified) = self.verified_jwt(token) else {
                return Ok(None);
            };
            if !may_see(caller, &verified.claims) {
                return Ok(None);
            }
            let cache = self.verified();
            let revoked = match cache.known_revocation(&verified) {
                Some(known) => known,
                None => {
                    let epoch = cache.epoch();
                    let revoked = match self
                        .store()
                        .get_grant(&jwt_handle(&verified.claims.jti))
                        .await
                    {
                        Ok(g) => g.state == GrantState::Revoked,
                        Err(StoreError::NotFound(_)) => false,
                        Err(e) => return Err(OAuthError::server_error("introspection", &e)),
                    };
                    cache.set_revocation(&verified, revoked, epoch);
                    revoked
                }
            };
            if revoked {
                return Ok(None);
            }
            return Ok(Some(Active::Jwt(verified)));
        }
        let grant = match self.store().get_grant(&sha256_b64url(token)).await {
            Ok(g) => g,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(OAuthError::server_error("introspection", &e)),
        };
        if grant.kind != GrantKind::AccessToken
            || grant.state != GrantState::Active
            || grant.expires_at <= now
        {
            return Ok(None);
        }
        let claims: AccessTokenClaims = serde_json::from_str(&grant.data)
            .map_err(|e| OAuthError::server_error("stored token", &e))?;
        if !may_see(caller, &claims) {
            return Ok(None);
        }
        let body = serialize_body(&claims)?;
        Ok(Some(Active::Opaque {
            body,
            claims: Box::new(claims),
        }))
    }

    /// A JWT access token of this server, verified (signature, `typ`, `alg`, `iss`,
    /// time; its audience is checked against the caller by [`may_see`]), from the cache
    /// of verified tokens when it was verified before.
    fn verified_jwt(&self, token: &str) -> Option<Arc<Verified>> {
        let keys = self.keys().verifier();
        let issuer = self.issuer().as_str();
        let now = self.clock_now();
        if let Some(hit) = self.verified().get(token, issuer, now, keys.as_ref()) {
            return Some(hit);
        }
        // The audience is the token's own, read unverified and then verified with the
        // signature: who may see the token is decided on the verified claims.
        let own_aud = unverified_aud(token);
        let first = own_aud.first()?.clone();
        let mut validator =
            access_token::Validator::new(self.clock().clone(), issuer, first).leeway(0);
        for a in own_aud.into_iter().skip(1) {
            validator = validator.audience(a);
        }
        match validator.validate(token, keys.as_ref()) {
            Ok(v) => {
                let body = serialize_body(&v.claims).ok()?;
                let verified = Arc::new(Verified::new(v.claims, v.alg, v.kid, body));
                self.verified().insert(token, verified.clone(), now);
                Some(verified)
            }
            Err(e) => {
                tracing::debug!(error = %e, "introspected JWT not valid");
                None
            }
        }
    }
}

/// An active token as introspection reports it.
#[derive(Debug)]
enum Active {
    /// A JWT access token (from the cache of verified tokens).
    Jwt(Arc<Verified>),
    /// An opaque token, from the store.
    Opaque {
        body: Arc<str>,
        claims: Box<AccessTokenClaims>,
    },
}

impl Active {
    fn body(&self) -> &Arc<str> {
        match self {
            Self::Jwt(v) => &v.body,
            Self::Opaque { body, .. } => body,
        }
    }

    fn claims(&self) -> &AccessTokenClaims {
        match self {
            Self::Jwt(v) => &v.claims,
            Self::Opaque { claims, .. } => claims,
        }
    }
}

/// The body for an inactive (or unknown, or foreign) token: nothing else (RFC 7662 §2.2).
const INACTIVE: &str = r#"{"active":false}"#;

fn serialize_body(claims: &AccessTokenClaims) -> Result<Arc<str>, OAuthError> {
    serde_json::to_string(&introspection_body(claims))
        .map(Arc::from)
        .map_err(|e| OAuthError::server_error("introspection", &e))
}

fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

fn unverified_aud(token: &str) -> Vec<String> {
    match aims_jose::Jws::unverified_claims(token).and_then(|mut c| c.remove("aud")) {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) => a
            .into_iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the caller holds the token (it was issued to it).
fn holds(caller: &AuthenticatedClient, claims: &AccessTokenClaims) -> bool {
    claims.client_id == caller.token_client_id() || claims.client_id == caller.client.id()
}

/// Whether the caller may introspect the token: its holder, or a resource server
/// registered for one of its audiences (`introspect_resources`). Being allowed to ask
/// tokens for an audience is not enough: that would let every agent of an API read the
/// other agents' tokens.
fn may_see(caller: &AuthenticatedClient, claims: &AccessTokenClaims) -> bool {
    holds(caller, claims)
        || caller
            .client
            .metadata()
            .introspect_resources
            .iter()
            .any(|r| claims.aud.iter().any(|a| a == r))
}

/// RFC 7662 §2.2 response members from the token's claims.
fn introspection_body(claims: &AccessTokenClaims) -> Value {
    let mut body = match serde_json::to_value(claims) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    body.insert("active".into(), Value::Bool(true));
    let token_type = if claims.cnf.as_ref().is_some_and(|c| c.jkt.is_some()) {
        "DPoP"
    } else {
        "Bearer"
    };
    body.insert("token_type".into(), Value::String(token_type.into()));
    Value::Object(body)
}

impl<D: ClientDirectory> TokenService<D> {
    pub(crate) fn clock_now(&self) -> i64 {
        self.clock().now()
    }
}
