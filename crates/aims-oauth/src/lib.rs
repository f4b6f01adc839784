//! The OAuth 2.0 authorization server logic of AIMS, for agents.
//!
//! Agents are OAuth clients that authenticate with their runtime credential (a JWT-SVID,
//! an X509-SVID over mTLS, or a key of their registered JWKS; never a static secret by
//! default) and receive short-lived, audience-bound, sender-constrained access tokens.
//!
//! This crate holds the rules and no HTTP types: the server's handlers parse the
//! request into [`Params`] (and the TLS peer, the `DPoP` header), call a service here,
//! and map [`OAuthError`] to the status and JSON body its RFC names.
//!
//! | Module | Standard |
//! |---|---|
//! | [`issuer`] | RFC 8414 §2 issuer identifier |
//! | [`metadata`] | RFC 8414 metadata |
//! | [`client`] | RFC 7591 client metadata, AIMS rules |
//! | [`authn`] | RFC 7523, draft-ietf-oauth-spiffe-client-auth, RFC 8705 |
//! | [`token`] | RFC 6749 §4.4, RFC 9068, RFC 8707, RFC 9449, RFC 8705, RFC 9396 |
//! | [`code`] | RFC 6749 §4.1 + RFC 7636 (S256 only), RFC 9126 PAR, RFC 9207 `iss`, refresh rotation with reuse detection |
//! | [`introspect`] | RFC 7662, RFC 9701, RFC 7009 |
//! | [`rar`] | RFC 9396 type schemas |
//! | [`jwks_uri`] | RFC 7591 `jwks_uri`: fetched, cached client keys |
//! | [`secret`] | RFC 6749 §2.3.1 legacy client secrets (off by default) |
#![forbid(unsafe_code)]

pub mod authn;
pub mod budget;
pub mod client;
pub mod code;
mod directory;
mod error;
pub mod form;
pub mod introspect;
pub mod issuer;
pub mod jwks_uri;
pub mod metadata;
pub mod rar;
pub mod secret;
pub mod throttle;
pub mod token;
pub mod users;
mod verified;

pub use directory::{CLIENT_CACHE_TTL, StoreClients};
pub use error::{ErrorCode, OAuthError};
pub use form::Params;
pub use issuer::{Issuer, IssuerError};
pub use verified::{DEFAULT_CAPACITY as VERIFIED_TOKEN_CAPACITY, REVOCATION_RECHECK};
