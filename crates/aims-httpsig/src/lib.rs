//! HTTP Message Signatures (RFC 9421), `Content-Digest` (RFC 9530), and the WIMSE
//! workload-to-workload profile (draft-ietf-wimse-http-signature) on top of them.
//!
//! # Layers
//!
//! - **RFC 9421 core**: [`RequestMessage`], [`ResponseMessage`] and [`Message`] are
//!   borrowed views over `http` request/response parts; [`ComponentId`] and
//!   [`SignatureParams`] model `Signature-Input`; [`signature_base`] builds the signature
//!   base (section 2.5); [`sign`], [`find_signature`], [`verify_entry`] and
//!   [`verify_with_key`] create and check signatures with `aims-crypto` keys.
//! - **RFC 9530**: [`content_digest`] and [`verify_content_digest`] (`sha-256`,
//!   `sha-512`, constant-time comparison).
//! - **WIMSE profile** ([`wimse`]): sign a request or response with a WIT and its key;
//!   verify the WIT first, then the signature with the WIT's `cnf.jwk`, then every rule
//!   of the profile, each failure its own [`HttpSigError`] variant, mapped to 400 and an
//!   RFC 9457 problem document by [`HttpSigError::problem`].
//!
//! # Example (RFC 9421 core)
//!
//! ```
//! use aims_crypto::{Algorithm, SigningKey};
//! use aims_httpsig::{
//!     ComponentId, Message, Options, RequestMessage, SignatureParams, sign, verify_with_key,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::generate(Algorithm::EdDSA)?;
//! let mut request = http::Request::post("https://example.com/foo?x=1")
//!     .header("content-type", "application/json")
//!     .body(())?;
//! let params = SignatureParams::new([
//!     ComponentId::parse(r#""@method""#)?,
//!     ComponentId::parse(r#""@target-uri""#)?,
//!     ComponentId::field("Content-Type")?,
//! ])
//! .with_created(1_700_000_000)?
//! .with_keyid("my-key")?;
//! let signed = sign(
//!     &Message::Request(RequestMessage::from_request(&request)),
//!     "sig1",
//!     &params,
//!     &key,
//!     &Options::default(),
//! )?;
//! signed.apply(request.headers_mut())?;
//! assert!(signed.signature_input().starts_with(
//!     r#"sig1=("@method" "@target-uri" "content-type");created=1700000000;keyid="my-key""#
//! ));
//!
//! let entry = verify_with_key(
//!     &Message::Request(RequestMessage::from_request(&request)),
//!     "sig1",
//!     key.verifying_key(),
//!     Algorithm::EdDSA,
//!     &Options::default(),
//! )?;
//! assert_eq!(entry.params().keyid(), Some("my-key"));
//! # Ok(())
//! # }
//! ```
//!
//! The WIMSE profile's entry points are [`wimse::RequestSigner`],
//! [`wimse::RequestVerifier`], [`wimse::ResponseSigner`] and [`wimse::ResponseVerifier`].
//!
//! # Decisions
//!
//! - **Own code on `sfv`, not the `httpsig` crate.** The signature base is a few hundred
//!   lines; structured fields (parsing, canonical serialization) come from `sfv` 0.15,
//!   the established RFC 8941/9651 implementation. `httpsig` 0.0.26 is a 0.0.x,
//!   single-maintainer crate whose README says "work in progress"; depending on it
//!   would put a moving API under every signed request, pull in its own key handling
//!   next to `aims-crypto` (which must stay the only crate calling aws-lc-rs), and still
//!   leave the WIMSE rules, `;req` handling and precise errors to us. Owning the core
//!   keeps one error enum with a variant per rule and makes the RFC 9421 Appendix B and
//!   WIMSE vectors our own regression tests.
//! - **Algorithms**: `ed25519`, `ecdsa-p256-sha256`, `ecdsa-p384-sha384` sign and verify;
//!   `rsa-pss-sha512` and `rsa-v1_5-sha256` verify only (AIMS never signs with RSA).
//!   `hmac-sha256` is refused: AIMS never accepts symmetric keys, and `aims-crypto` has no
//!   HMAC by design, so RFC 9421 B.2.5 is checked only up to its signature base.
//! - **Unsupported component parameters are refused**, never ignored.
//! - **A repeated query parameter** named by `@query-param` is refused (which occurrence
//!   is meant is ambiguous); cover `@query` instead.
//! - **`@authority` and `@target-uri`** use the RFC 9110 section 4.2.3 normalization
//!   (lower-case host, default port removed); `@path`, `@query` and `@request-target`
//!   keep the encoding as received.
//! - **The signature base is US-ASCII**: a field value with other bytes must be covered
//!   with `;bs`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alg;
mod base;
mod component;
mod digest;
mod error;
mod message;
mod params;
mod query;
mod signature;
pub mod wimse;

pub use alg::SignatureAlgorithm;
pub use base::{FieldTypes, SfType, component_value, signature_base};
pub use component::{ComponentId, DerivedComponent};
pub use digest::{
    CONTENT_DIGEST, DigestAlgorithm, content_digest, verify_content_digest,
    verify_content_digest_value,
};
pub use error::{HttpSigError, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE, Problem};
pub use message::{Message, RequestMessage, ResponseMessage};
pub use params::SignatureParams;
pub use signature::{
    DEFAULT_MAX_HEADER_BYTES, Options, SIGNATURE, SIGNATURE_INPUT, SignatureEntry,
    SignatureHeaders, find_signature, sign, signature_labels, verify_entry, verify_with_key,
};
