//! The key layer of AIMS: the only crate that calls `aws-lc-rs` directly.
//!
//! - [`Algorithm`]: the closed set of JWS algorithms AIMS knows. Every member is
//!   asymmetric, so an HMAC algorithm can never be used on a public-key path.
//! - [`Signer`]: sign + public JWK + algorithm; [`SigningKey`] is the in-memory
//!   implementation (ES256 default, ES384, EdDSA). A KMS or HSM can implement the trait.
//! - [`VerifyingKey`]: a public key parsed once from a JWK, then used for many
//!   verifications (ES256/384/512, EdDSA, RS256/384/512, PS256/384/512).
//! - [`Jwk`], [`Jwks`], RFC 7638 thumbprints, and [`KeyRing`] for rotation.
//! - [`Kek`]: a key-encryption key (AES-256-GCM) sealing stored private keys.
//!
//! Private keys are held by aws-lc-rs (which cleanses them when freed); any exported
//! PKCS#8 copy is [`zeroize::Zeroizing`]. No `Debug` impl prints private material.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aead;
mod alg;
pub mod b64;
mod error;
mod jwk;
mod rotation;
mod sign;
mod util;
mod verify;

pub use aead::Kek;
pub use alg::{Algorithm, KeyType};
pub use error::CryptoError;
pub use jwk::{Jwk, Jwks};
pub use rotation::KeyRing;
pub use sign::{Signer, SigningKey};
pub use util::{
    ct_eq, random_bytes, random_token, sha256, sha256_b64url, sha256_reader, sha512, unique_id,
};
pub use verify::VerifyingKey;
