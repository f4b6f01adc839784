//! Token formats and their rules: one module per token type, each with its own `typ`,
//! algorithm allow-list, required claims and time windows.
//!
//! Verification never takes a key from the token, except DPoP's `jwk` header (RFC 9449)
//! and a WIT's `cnf.jwk` (draft-ietf-wimse-workload-creds), both of which are then
//! bound to something the verifier already trusts. See [`jws`] for the header rules
//! every profile shares.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access_token;
pub mod attestation;
pub mod claims;
pub mod client_assertion;
pub mod dpop;
mod error;
pub mod jws;
pub mod jwt_grant;
pub mod jwt_svid;
pub mod keys;
pub mod replay;
pub mod set;
pub mod time;
pub mod wit;
pub mod wpt;

pub use claims::Audience;
pub use error::JoseError;
pub use jws::{HeaderSpec, Jws, sign};
pub use keys::{KeyResolver, StaticKeys};
