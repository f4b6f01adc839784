//! What the guard tells handlers about the caller: [`AuthenticatedAgent`], inserted into
//! the request extensions and extracted by axum.

use aims_core::{SpiffeId, WorkloadId};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::GuardError;

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
}

impl Mechanism {
    /// Every mechanism, in the order the guard looks for credentials.
    pub const ALL: [Mechanism; 5] = [
        Mechanism::WitWpt,
        Mechanism::WitHttpSig,
        Mechanism::Dpop,
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
}

/// A caller the guard authenticated. Handlers take it as an extractor (rejects with 401
/// when absent) or as `Option<AuthenticatedAgent>` on routes where auth is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedAgent {
    pub(crate) id: WorkloadId,
    pub(crate) mechanism: Mechanism,
    pub(crate) expires_at: i64,
    pub(crate) bound_key: Option<BoundKey>,
    pub(crate) delegated_subject: Option<String>,
}

impl AuthenticatedAgent {
    /// The caller's workload identifier.
    pub fn id(&self) -> &WorkloadId {
        &self.id
    }

    /// The caller's SPIFFE ID, when its identifier is one.
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        self.id.as_spiffe()
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
    /// the agent (`client_id`). The `act` chain is not exposed yet.
    pub fn delegated_subject(&self) -> Option<&str> {
        self.delegated_subject.as_deref()
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
