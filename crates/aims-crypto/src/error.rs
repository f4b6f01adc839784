/// Errors of the key layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The algorithm name is not one AIMS supports (this includes `none` and every HMAC).
    #[error("unsupported algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// The algorithm can verify but AIMS does not sign with it (RSA is verify-only).
    #[error("algorithm {0} is verify-only in AIMS")]
    VerifyOnly(&'static str),
    /// The key cannot be used with the requested algorithm (e.g. a P-256 key for ES384).
    #[error("key of type {key} cannot be used with algorithm {alg}")]
    KeyAlgorithmMismatch {
        /// Key type and curve.
        key: &'static str,
        /// Requested algorithm.
        alg: &'static str,
    },
    /// The JWK is malformed or describes an unsupported key.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A public JWK carried private key members.
    #[error("JWK contains private key material")]
    PrivateMembersInPublicJwk,
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Sealed data could not be opened: another key-encryption key, other associated
    /// data, or the data was altered or truncated (deliberately not told apart).
    #[error("sealed data could not be opened")]
    Unseal,
    /// The system random number generator or the signing primitive failed.
    #[error("cryptographic operation failed")]
    Internal,
}
