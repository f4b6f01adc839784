//! What the guard tells handlers about the caller: [`AuthenticatedAgent`], inserted into
//! the request extensions and extracted by axum.

use aims_core::{SpiffeId, WorkloadId};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use std::sync::Arc;

use crate::GuardError;
use crate::token::AccessTokenInfo;

/// An inbound authentication mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// Mutual TLS with an X509-SVID client certificate (draft-ietf-wimse-mutual-tls).
    Mtls,
    /// `Workload-Identity-Token` + `Workload-Proof-Token` (draft-ietf-wimse-wpt).
    WitWpt,
    /// `Workload-Identity-Token` + WIMSE HTTP message signature
    /// (draft-ietf-wimse-http-signature).
    WitHttpSig,
    /// `Authorization: DPoP <RFC 9068 access token>` + `DPoP` proof (RFC 9449).
    Dpop,
    /// `Authorization: Bearer <JWT-SVID>`.
    JwtSvid,
    /// `Authorization: Bearer <access token>` (RFC 6750): an RFC 9068 JWT or an opaque
    /// token introspected (RFC 7662); a certificate-bound token (`cnf.x5t#S256`,
    /// RFC 8705) only with the matching client certificate on [`crate::tls::serve`].
    Bearer,
}

impl Mechanism {
    /// Every mechanism, in the order the guard looks for credentials.
    pub const ALL: [Mechanism; 6] = [
        Mechanism::WitWpt,
        Mechanism::WitHttpSig,
        Mechanism::Dpop,
        Mechanism::Bearer,
        Mechanism::JwtSvid,
        Mechanism::Mtls,
    ];

    /// A stable name for logs and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Mtls => "mtls",
            Mechanism::WitWpt => "wit-wpt",
            Mechanism::WitHttpSig => "wit-httpsig",
            Mechanism::Dpop => "dpop",
            Mechanism::JwtSvid => "jwt-svid",
            Mechanism::Bearer => "bearer",
        }
    }
}

/// The key the credential is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundKey {
    /// RFC 7638 JWK SHA-256 thumbprint (the WIT's `cnf.jwk`, or the DPoP key = `cnf.jkt`).
    JwkThumbprint(String),
    /// base64url SHA-256 of the client certificate's SubjectPublicKeyInfo (mTLS).
    SpkiSha256(String),
    /// base64url SHA-256 of the client certificate's DER (`cnf.x5t#S256`, RFC 8705).
    CertificateSha256(String),
}

/// Who an authenticated caller is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AgentId {
    /// A workload identifier (a SPIFFE ID or a WIMSE URI): what every mechanism yields
    /// for an agent with a workload identity.
    Workload(WorkloadId),
    /// An access token's `client_id` that is not a workload identifier: a client the
    /// authorization server registered without one. Accepted only with
    /// [`GuardConfigBuilder::plain_client_ids`](crate::GuardConfigBuilder::plain_client_ids).
    Client(String),
}

impl AgentId {
    /// The identifier as a string (the workload identifier, or the client id).
    pub fn as_str(&self) -> &str {
        match self {
            AgentId::Workload(w) => w.as_str(),
            AgentId::Client(c) => c,
        }
    }

    /// The workload identifier, when the agent has one.
    pub fn as_workload(&self) -> Option<&WorkloadId> {
        match self {
            AgentId::Workload(w) => Some(w),
            AgentId::Client(_) => None,
        }
    }
}

impl std::fmt::Display for AgentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<WorkloadId> for AgentId {
    fn from(id: WorkloadId) -> Self {
        AgentId::Workload(id)
    }
}

/// A caller the guard authenticated. Handlers take it as an extractor (rejects with 401
/// when absent) or as `Option<AuthenticatedAgent>` on routes where auth is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedAgent {
    pub(crate) id: AgentId,
    pub(crate) mechanism: Mechanism,
    pub(crate) expires_at: i64,
    pub(crate) bound_key: Option<BoundKey>,
    pub(crate) delegated_subject: Option<String>,
    pub(crate) access_token: Option<Arc<AccessTokenInfo>>,
}

impl AuthenticatedAgent {
    /// The caller's identifier: its workload identifier, or (only with
    /// [`GuardConfigBuilder::plain_client_ids`](crate::GuardConfigBuilder::plain_client_ids))
    /// the plain `client_id` of its access token.
    pub fn id(&self) -> &AgentId {
        &self.id
    }

    /// The caller's workload identifier, when it has one.
    pub fn workload_id(&self) -> Option<&WorkloadId> {
        self.id.as_workload()
    }

    /// The caller's SPIFFE ID, when its identifier is one.
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        self.id.as_workload().and_then(WorkloadId::as_spiffe)
    }

    /// How the caller authenticated.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// When the presented credential expires (Unix seconds): the WIT's, access
    /// token's, JWT-SVID's `exp`, or the client certificate's `notAfter`.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The key the credential is bound to (`None` for a JWT-SVID bearer token).
    pub fn bound_key(&self) -> Option<&BoundKey> {
        self.bound_key.as_ref()
    }

    /// The subject the agent acts for: the access token's `sub` when it differs from
    /// the agent (`client_id`). The `act` chain is in [`AuthenticatedAgent::access_token`].
    pub fn delegated_subject(&self) -> Option<&str> {
        self.delegated_subject.as_deref()
    }

    /// The access token the agent presented (DPoP and Bearer mechanisms): scope,
    /// authorization details, `acr`, `auth_time`, `act` chain.
    pub fn access_token(&self) -> Option<&AccessTokenInfo> {
        self.access_token.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthenticatedAgent {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthenticatedAgent>()
            .cloned()
            .ok_or_else(|| {
                crate::response::problem(&GuardError::MissingCredentials).into_response()
            })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthenticatedAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AuthenticatedAgent>().cloned())
    }
}
