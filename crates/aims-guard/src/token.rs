//! Access tokens at the resource server: what the guard learned from a token
//! ([`AccessTokenInfo`]), and where it learns it (local RFC 9068 validation with a key
//! resolver or [`crate::JwksCache`], or RFC 7662 introspection).

use std::sync::Arc;

use aims_jose::access_token::{
    self, Actor, AuthorizationDetail, Confirmation, Scope, ValidatedAccessToken,
};
use aims_jose::{JoseError, Jws};

use crate::config::AccessTokenIssuer;
use crate::introspection::Introspection;
use crate::{FetchError, GuardError};

/// How the guard validated an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// Locally, as an RFC 9068 JWT.
    Jwt,
    /// By RFC 7662 introspection.
    Introspection,
}

/// The OAuth scheme a token was presented with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScheme {
    /// `Authorization: Bearer` (RFC 6750), possibly certificate-bound (RFC 8705).
    Bearer,
    /// `Authorization: DPoP` (RFC 9449).
    Dpop,
}

impl TokenScheme {
    /// The `WWW-Authenticate` scheme name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScheme::Bearer => "Bearer",
            TokenScheme::Dpop => "DPoP",
        }
    }
}

/// What a validated access token says: the agent (`client_id`), the user it acts for
/// (`sub`), what it may do (`scope`, `authorization_details`), how the user
/// authenticated (`acr`, `auth_time`) and the delegation chain (`act`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessTokenInfo {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) subject: String,
    pub(crate) scope: Scope,
    pub(crate) authorization_details: Vec<AuthorizationDetail>,
    pub(crate) acr: Option<String>,
    pub(crate) auth_time: Option<i64>,
    pub(crate) actors: Vec<Actor>,
    pub(crate) cnf: Option<Confirmation>,
    pub(crate) expires_at: Option<i64>,
    pub(crate) source: TokenSource,
}

// `AuthorizationDetail` and `Actor` hold `serde_json` values, whose equality is total.
impl Eq for AccessTokenInfo {}

impl AccessTokenInfo {
    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The client the token was issued to: the agent.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The token's subject (the user when delegated, else the agent).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject when it is not the agent itself.
    pub fn delegated_subject(&self) -> Option<&str> {
        (self.subject != self.client_id).then_some(self.subject.as_str())
    }

    /// Granted scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// RFC 9396 authorization details (empty when absent).
    pub fn authorization_details(&self) -> &[AuthorizationDetail] {
        &self.authorization_details
    }

    /// Authentication context class of the user authentication.
    pub fn acr(&self) -> Option<&str> {
        self.acr.as_deref()
    }

    /// When the user authenticated (Unix seconds).
    pub fn auth_time(&self) -> Option<i64> {
        self.auth_time
    }

    /// RFC 8693 actor chain, current actor first.
    pub fn actors(&self) -> &[Actor] {
        &self.actors
    }

    /// The confirmation the token is bound by, if sender-constrained.
    pub fn confirmation(&self) -> Option<&Confirmation> {
        self.cnf.as_ref()
    }

    /// Expiry (Unix seconds), when known.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// How it was validated.
    pub fn source(&self) -> TokenSource {
        self.source
    }

    fn from_jwt(at: ValidatedAccessToken) -> Self {
        let c = at.claims;
        Self {
            issuer: c.iss,
            client_id: c.client_id,
            subject: c.sub,
            scope: c.scope,
            authorization_details: c.authorization_details.unwrap_or_default(),
            acr: c.acr,
            auth_time: c.auth_time,
            actors: c.act,
            cnf: c.cnf,
            expires_at: Some(c.exp),
            source: TokenSource::Jwt,
        }
    }
}

fn invalid(scheme: TokenScheme, e: JoseError) -> GuardError {
    match scheme {
        TokenScheme::Dpop => GuardError::AccessToken(e),
        TokenScheme::Bearer => GuardError::BearerToken(e),
    }
}

/// Whether `token` is a JWS compact serialisation with `typ` `at+jwt`: validated
/// locally; anything else goes to introspection when configured.
fn is_jwt_access_token(token: &str) -> bool {
    Jws::decode(token).is_ok_and(|j| j.header.typ_is(access_token::TYP))
}

impl AccessTokenIssuer {
    /// Validates `token` (presented with `scheme`) by the configured source.
    pub(crate) async fn validate(
        &self,
        token: &str,
        scheme: TokenScheme,
        clock: &Arc<dyn aims_core::Clock>,
        leeway: i64,
    ) -> Result<AccessTokenInfo, GuardError> {
        let local =
            self.keys.is_some() && (self.introspection.is_none() || is_jwt_access_token(token));
        if local {
            let keys = self.keys.as_ref().ok_or(GuardError::Internal)?;
            if let Some(jwks) = &self.jwks
                && let Err(e) = jwks.prepare(token).await
                && !jwks.is_loaded()
            {
                tracing::warn!(issuer = %self.issuer, error = %e, "no keys for access token validation");
                return Err(GuardError::TokenSourceUnavailable);
            }
            let at = access_token::Validator::new(
                clock.clone(),
                self.issuer.clone(),
                self.audience.clone(),
            )
            .leeway(leeway)
            .validate(token, keys.as_ref())
            .map_err(|e| invalid(scheme, e))?;
            return Ok(AccessTokenInfo::from_jwt(at));
        }
        let introspector = self
            .introspection
            .as_ref()
            .ok_or_else(|| invalid(scheme, JoseError::Malformed("not a JWT access token")))?;
        let r = introspector
            .introspect(token)
            .await
            .map_err(|e: FetchError| {
                tracing::warn!(issuer = %self.issuer, error = %e, "introspection failed");
                GuardError::TokenSourceUnavailable
            })?;
        self.check_introspection(&r, scheme, clock.now(), leeway)
    }

    fn check_introspection(
        &self,
        r: &Introspection,
        scheme: TokenScheme,
        now: i64,
        leeway: i64,
    ) -> Result<AccessTokenInfo, GuardError> {
        let err = |e| invalid(scheme, e);
        if !r.active {
            return Err(GuardError::TokenInactive(scheme));
        }
        if let Some(exp) = r.exp {
            aims_jose::time::check_exp(exp, now, leeway).map_err(err)?;
        }
        if let Some(nbf) = r.nbf {
            aims_jose::time::check_nbf(nbf, now, leeway).map_err(err)?;
        }
        if r.iss.as_deref().is_some_and(|iss| iss != self.issuer) {
            return Err(err(JoseError::IssuerMismatch));
        }
        // The RS accepts only tokens meant for it: `aud` is required.
        match &r.aud {
            Some(aud) if aud.contains(&self.audience) => {}
            Some(_) => return Err(err(JoseError::AudienceMismatch)),
            None => return Err(err(JoseError::MissingClaim("aud"))),
        }
        let client_id = r
            .client_id
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or(err(JoseError::MissingClaim("client_id")))?;
        let scope = match r.scope.as_deref() {
            None | Some("") => Scope::default(),
            Some(s) => Scope::parse(s).map_err(err)?,
        };
        if r.cnf
            .as_ref()
            .is_some_and(|c| c.jkt.is_none() && c.x5t_s256.is_none())
        {
            return Err(err(JoseError::InvalidClaim {
                claim: "cnf",
                reason: "no supported confirmation method (`jkt` or `x5t#S256`)",
            }));
        }
        let actors = r.actors().ok_or(err(JoseError::InvalidClaim {
            claim: "act",
            reason: "each actor must be an object with a non-empty string `sub`",
        }))?;
        Ok(AccessTokenInfo {
            issuer: self.issuer.clone(),
            subject: r
                .sub
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| client_id.clone()),
            client_id,
            scope,
            authorization_details: r.authorization_details.clone().unwrap_or_default(),
            acr: r.acr.clone(),
            auth_time: r.auth_time,
            actors,
            cnf: r.cnf.clone(),
            expires_at: r.exp,
            source: TokenSource::Introspection,
        })
    }
}
