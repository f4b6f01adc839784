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

use aims_crypto::sha256_b64url;
use aims_jose::access_token::{self, AccessTokenClaims};
use aims_jose::{HeaderSpec, JoseError, sign};
use aims_store::{GrantKind, GrantState, NewGrant, StoreError};
use serde_json::{Map, Value};

use crate::authn::{AuthenticatedClient, ClientDirectory};
use crate::token::{TokenRequest, TokenService};
use crate::{OAuthError, authn::unverified_claim};

/// RFC 9701 `typ` of a JWT introspection response.
pub const INTROSPECTION_JWT_TYP: &str = "token-introspection+jwt";
/// RFC 9701 media type.
pub const INTROSPECTION_JWT_MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// The store handle under which a JWT access token's revocation is recorded.
pub(crate) fn jwt_handle(jti: &str) -> String {
    sha256_b64url(format!("at-jti:{jti}"))
}

impl<D: ClientDirectory> TokenService<D> {
    /// RFC 7662: the introspection response for the request's `token`, as JSON.
    pub async fn introspect(&self, req: TokenRequest<'_>) -> Result<Value, OAuthError> {
        let caller = self.authenticate_caller(&req).await?;
        let token = req.params.require("token")?;
        Ok(match self.active_claims(&caller, token).await? {
            Some(claims) => introspection_body(&claims),
            None => serde_json::json!({ "active": false }),
        })
    }

    /// RFC 9701: the introspection response as a signed JWT for the calling resource
    /// server.
    pub async fn introspect_jwt(&self, req: TokenRequest<'_>) -> Result<String, OAuthError> {
        let caller = self.authenticate_caller(&req).await?;
        let token = req.params.require("token")?;
        let body = match self.active_claims(&caller, token).await? {
            Some(claims) => introspection_body(&claims),
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
        sign(
            &HeaderSpec {
                typ: Some(INTROSPECTION_JWT_TYP),
                kid: true,
                jwk: false,
            },
            &payload,
            signer.as_ref(),
        )
        .map_err(|e| OAuthError::server_error("introspection signing", &e))
    }

    /// RFC 7009: revokes the request's `token` if the calling client holds it.
    pub async fn revoke(&self, req: TokenRequest<'_>) -> Result<(), OAuthError> {
        let caller = self.authenticate_caller(&req).await?;
        let token = req.params.require("token")?;
        let now = self.clock_now();
        if looks_like_jwt(token) {
            let Some(claims) = self.verify_own_jwt(token, None) else {
                return Ok(());
            };
            if !holds(&caller, &claims) {
                return Ok(());
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
            self.store()
                .revoke_grant(&grant.handle)
                .await
                .map_err(|e| OAuthError::server_error("revoke", &e))?;
            return Ok(());
        }
        let handle = sha256_b64url(token);
        match self.store().get_grant(&handle).await {
            Ok(g) if g.client_id == caller.client.id() => {
                let done = if g.kind == GrantKind::RefreshToken {
                    // A refresh token takes its whole family (and the access tokens
                    // issued from it) with it.
                    self.store().revoke_family(&g.family).await.map(|_| ())
                } else {
                    self.store().revoke_grant(&handle).await.map(|_| ())
                };
                done.map_err(|e| OAuthError::server_error("revoke", &e))
            }
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(OAuthError::server_error("revoke", &e)),
        }
    }

    async fn authenticate_caller(
        &self,
        req: &TokenRequest<'_>,
    ) -> Result<AuthenticatedClient, OAuthError> {
        self.authenticator().authenticate(req, self.clients()).await
    }

    /// The claims of `token` if it is active and the caller may see it.
    async fn active_claims(
        &self,
        caller: &AuthenticatedClient,
        token: &str,
    ) -> Result<Option<AccessTokenClaims>, OAuthError> {
        let now = self.clock_now();
        if looks_like_jwt(token) {
            let Some(claims) = self.verify_own_jwt(token, Some(caller)) else {
                return Ok(None);
            };
            match self.store().get_grant(&jwt_handle(&claims.jti)).await {
                Ok(g) if g.state == GrantState::Revoked => return Ok(None),
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(OAuthError::server_error("introspection", &e)),
            }
            return Ok(Some(claims));
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
        Ok(may_see(caller, &claims).then_some(claims))
    }

    /// Verifies a JWT access token of this server (signature, `iss`, time) for an
    /// audience the caller may see (`None`: the holder's own check follows).
    fn verify_own_jwt(
        &self,
        token: &str,
        caller: Option<&AuthenticatedClient>,
    ) -> Option<AccessTokenClaims> {
        let keys = self.keys().verifier();
        // Audiences: the caller's registered resources, or (for the token's holder, and
        // for revocation) the token's own audience, read unverified and then verified.
        let own_aud = unverified_aud(token);
        let mut audiences: Vec<String> = caller
            .map(|c| c.client.metadata().resources.clone())
            .unwrap_or_default();
        if let Some(caller) = caller {
            if unverified_claim(token, "client_id").as_deref() == Some(caller.token_client_id()) {
                audiences.extend(own_aud);
            }
        } else {
            audiences.extend(own_aud);
        }
        let first = audiences.first()?.clone();
        let mut validator =
            access_token::Validator::new(self.clock().clone(), self.issuer().as_str(), first);
        for a in audiences.into_iter().skip(1) {
            validator = validator.audience(a);
        }
        match validator.validate(token, keys.as_ref()) {
            Ok(v) => Some(v.claims),
            Err(JoseError::Expired { .. }) => None,
            Err(e) => {
                tracing::debug!(error = %e, "introspected JWT not valid");
                None
            }
        }
    }
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

/// Whether the caller may introspect the token: its holder, or a resource server it is
/// for.
fn may_see(caller: &AuthenticatedClient, claims: &AccessTokenClaims) -> bool {
    holds(caller, claims)
        || caller
            .client
            .metadata()
            .resources
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
