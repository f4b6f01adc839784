//! The X.509 layer of AIMS: a trust-domain CA, X509-SVID validation, SPIFFE bundles and the
//! one place where rustls configurations are built.
//!
//! | Module | What | Specification |
//! |---|---|---|
//! | [`ca`] | root and intermediate CAs, X509-SVID issuance, persistence | X509-SVID §3–§4 (specs.md 2.7) |
//! | [`svid`] | [`X509Svid`] (PEM/DER parsing) and chain validation, one error per rule | X509-SVID §5 (specs.md 2.7) |
//! | [`bundle`] | SPIFFE bundle JSON, JWKS and PEM bundles, [`TrustStore`] | SPIFFE Trust Domain and Bundle §4, X509-SVID §6 (specs.md 2.9) |
//! | [`client_ca`] | an operator's CAs for client certificates outside SPIFFE | RFC 8705 §2.1 |
//! | [`tls`] | rustls verifiers and config builders for SPIFFE mTLS | draft-ietf-wimse-mutual-tls (specs.md 2.6) |
//! | [`pem`] | PEM helpers shared by the modules above | RFC 7468 |
//!
//! aws-lc-rs is the only crypto provider: rcgen, rustls and rustls-webpki are all built on it,
//! and private keys are generated and held by `aims-crypto`. `ring` is not compiled.
//!
//! Nothing in this crate panics on untrusted input: certificates, PEM, JSON bundles and TLS
//! peer chains are parsed with explicit errors.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::indexing_slicing)]

pub mod bundle;
pub mod ca;
pub mod client_ca;
pub mod keys;
pub mod pem;
pub mod svid;
pub mod tls;
mod x509;

pub use bundle::{BundleError, SpiffeBundle, TrustStore, certificate_jwk};
pub use ca::{CaError, CaOptions, CertificateAuthority};
pub use client_ca::{ClientCaError, ClientCaRoots};
pub use svid::{SvidError, SvidUsage, VerifiedSvid, X509Svid};
pub use tls::{Authorizer, ClientAuth, TlsError};

/// The RFC 8705 §3.1 certificate thumbprint `x5t#S256`: base64url (no padding) of the SHA-256
/// of the DER certificate. Used as `cnf.x5t#S256` to bind tokens to an mTLS client certificate.
pub fn x5t_s256(cert_der: &[u8]) -> String {
    aims_crypto::sha256_b64url(cert_der)
}

#[cfg(test)]
mod tests {
    #[test]
    fn x5t_s256_is_base64url_sha256() {
        // SHA-256 of the empty string, base64url without padding.
        assert_eq!(
            super::x5t_s256(b""),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}
