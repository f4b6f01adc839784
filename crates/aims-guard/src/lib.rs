//! The AIMS guard: a tower layer that authenticates the callers of a service and records
//! an audit event for every decision.
//!
//! | Mechanism | Credentials | Rules from |
//! |---|---|---|
//! | [`Mechanism::Mtls`] | X509-SVID client certificate on [`tls::serve`] | aims-pki SPIFFE verifier (draft-ietf-wimse-mutual-tls) |
//! | [`Mechanism::WitWpt`] | `Workload-Identity-Token` + `Workload-Proof-Token` | aims-jose `wit`, `wpt` (draft-ietf-wimse-wpt) |
//! | [`Mechanism::WitHttpSig`] | `Workload-Identity-Token` + `Signature`/`Signature-Input` | aims-httpsig `wimse` (draft-ietf-wimse-http-signature) |
//! | [`Mechanism::Dpop`] | `Authorization: DPoP <at+jwt>` + `DPoP` | aims-jose `dpop`, `access_token` (RFC 9449, RFC 9068) |
//! | [`Mechanism::JwtSvid`] | `Authorization: Bearer <JWT-SVID>` | aims-jose `jwt_svid` |
//! | [`Mechanism::Bearer`] | `Authorization: Bearer <access token>` (+ client certificate when `cnf.x5t#S256`) | RFC 6750, RFC 9068 / RFC 7662, RFC 8705 |
//!
//! # Resource server toolkit
//!
//! Access tokens come from one authorization server ([`AccessTokenIssuer`]): RFC 9068
//! JWTs validated locally against a [`JwksCache`] (discovered via RFC 8414, refreshed on
//! TTL and unknown `kid`, rate-limited and single-flight) or static keys, and opaque
//! tokens by RFC 7662 [`Introspector`] (`private_key_jwt`, cache bounded by `exp`).
//! Routes add [`GuardLayer::require_scopes`] (403 `insufficient_scope`),
//! [`GuardLayer::require_acr`] / [`GuardLayer::max_age`] (RFC 9470 step-up) and
//! [`GuardLayer::require_dpop_bound`]; every Bearer/DPoP challenge carries the RFC 9728
//! `resource_metadata` URL, served by [`ProtectedResourceMetadata::router`].
//!
//! # Enforcement
//!
//! [`GuardLayer::authorize`] adds a policy decision after authentication (the AuthZEN
//! PEP, [`authz`]): an [`Enforcer`] over a [`PolicyDecisionPoint`] (remote
//! [`HttpPdp`], or `LocalPdp` in process with feature `pdp`), a per-route action and
//! resource, a short-lived decision cache with invalidation hooks. Deny: 403
//! `access-denied`; PDP failure: 503 `policy-unavailable`.
//!
//! # Use
//!
//! ```ignore
//! let cfg = GuardConfig::builder(trust_store)
//!     .authority("https://svc-b.example.test")
//!     .enable(Mechanism::WitWpt).enable(Mechanism::Mtls)
//!     .build()?;
//! let guard = Guard::new(cfg)?;
//! let app = Router::new()
//!     .route("/a", get(a).layer(GuardLayer::new(guard.clone()).require([Mechanism::Mtls])))
//!     .route("/b", get(b).layer(GuardLayer::new(guard).require([Mechanism::WitWpt])));
//! async fn a(agent: AuthenticatedAgent) -> String { agent.id().to_string() }
//! ```
//!
//! # Decisions
//!
//! - **Audience from configuration only.** WPT `aud`, `wimse-aud` and DPoP `htu` must be
//!   a configured public origin plus the request path. `Host` and `X-Forwarded-*` are
//!   never read, so verification works unchanged behind a TLS-terminating proxy.
//! - **One mechanism per request**, chosen by the credentials present in this order:
//!   WPT, HTTP signature, DPoP, Bearer JWT-SVID, mTLS; the first one the route accepts
//!   is verified, and its failure is final (no fallback to a weaker mechanism).
//!   With WPT, an `Authorization` token is bound through `ath` but not itself validated
//!   by the guard.
//! - **Statuses.** WIMSE failures answer 400 with an RFC 9457 problem (the drafts find
//!   no `WWW-Authenticate` scheme for 401). Missing credentials, DPoP and Bearer failures
//!   answer 401 with RFC 6750 / RFC 9449 challenges. Each rule has its own problem
//!   `type` ([`GuardError::code`]).
//! - **Replay** keys go to a [`ReplayCache`]: memory, or the shared store through a
//!   deferring guard ([`replay`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod agent;
pub mod audit;
pub mod authz;
mod config;
mod correlation;
mod error;
mod fetch;
mod guard;
pub mod introspection;
pub mod jwks;
pub mod keys;
mod layer;
mod nonce;
pub mod replay;
pub mod resource;
mod response;
pub mod tls;
mod token;

pub use agent::{AgentId, AuthenticatedAgent, BoundKey, Mechanism};
pub use audit::{AuditEvent, AuditSink, CollectingSink, Decision, LogSink};
#[cfg(feature = "pdp")]
pub use authz::LocalPdp;
pub use authz::{
    ActionSpec, AuthzDecision, AuthzRequest, AuthzRoute, Enforcer, HttpPdp, PdpUnavailable,
    PolicyDecisionPoint, ResourceSpec,
};
pub use config::{
    AccessTokenIssuer, ConfigError, DEFAULT_BODY_LIMIT, DEFAULT_NONCE_INTERVAL,
    DEFAULT_RESPONSE_BODY_LIMIT, GuardConfig, GuardConfigBuilder, ResponseSigning,
};
pub use correlation::correlation_id;
pub use error::{GuardError, PROBLEM_TYPE_BASE};
pub use fetch::{DEFAULT_MAX_RESPONSE_BYTES, FetchError, as_http_client};
pub use guard::{
    DPOP_HEADER, DPOP_NONCE_HEADER, Guard, PeerIdentity, TXN_TOKEN_HEADER, WPT_HEADER,
};
pub use introspection::{Introspection, Introspector};
pub use jwks::JwksCache;
pub use layer::{GuardLayer, GuardService, REQUEST_ID_HEADER};
pub use nonce::{NonceIssuer, SHARED_NONCE_SCOPE};
pub use replay::ReplayCache;
pub use resource::{ProtectedResourceMetadata, protected_resource_metadata_url};
pub use response::PROBLEM_CONTENT_TYPE;
pub use token::{AccessTokenInfo, TokenScheme, TokenSource};
