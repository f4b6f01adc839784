use aims_crypto::{Algorithm, CryptoError};

/// Why a token was rejected (or could not be made). Each validation rule of each
/// profile maps to one variant, so callers and tests can tell rules apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// Not a JWS compact serialization (three base64url parts, JSON header and claims).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The token is larger than the configured limit.
    #[error("token exceeds {0} bytes")]
    TooLarge(usize),
    /// `alg` is `none` (RFC 8725 section 3.1).
    #[error("unsecured tokens (alg=none) are rejected")]
    AlgNone,
    /// `alg` is an HMAC algorithm on a public-key path (RFC 8725 section 3.1).
    #[error("symmetric algorithm {0} is not accepted")]
    SymmetricAlgorithm(String),
    /// `alg` is not a JWS algorithm AIMS knows.
    #[error("unsupported algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// `alg` is known but not in this profile's allow-list.
    #[error("algorithm {alg} is not allowed for {profile}")]
    AlgorithmNotAllowed {
        /// The token's algorithm.
        alg: Algorithm,
        /// The token profile.
        profile: &'static str,
    },
    /// A header parameter this profile forbids (`jku`, `x5u`, or any other not allowed).
    #[error("header parameter `{0}` is not allowed")]
    ForbiddenHeader(String),
    /// `crit` names extensions AIMS does not understand (RFC 7515 section 4.1.11).
    #[error("unsupported critical header extension")]
    UnknownCrit,
    /// `typ` is missing or not this profile's media type (RFC 8725 section 3.11).
    #[error("wrong token type: expected `{expected}`, found {found:?}")]
    WrongType {
        /// The expected `typ`.
        expected: &'static str,
        /// What the token carried.
        found: Option<String>,
    },
    /// The profile requires `kid`.
    #[error("missing `kid` header")]
    MissingKid,
    /// No trusted key matches the token (unknown `kid`, or no keys for the issuer).
    #[error("no trusted key for this token")]
    UnknownKey,
    /// The key cannot verify this token's algorithm, or is otherwise unusable.
    #[error("key rejected: {0}")]
    Key(CryptoError),
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// A required claim is absent.
    #[error("missing required claim `{0}`")]
    MissingClaim(&'static str),
    /// A claim is present but malformed or has a wrong value.
    #[error("invalid claim `{claim}`: {reason}")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A claim this profile forbids is present.
    #[error("claim `{0}` is not allowed")]
    ForbiddenClaim(&'static str),
    /// `exp` has passed.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The current time.
        now: i64,
    },
    /// `nbf` is in the future.
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The current time.
        now: i64,
    },
    /// `iat` is in the future.
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The current time.
        now: i64,
    },
    /// `iat` is older than the accepted window.
    #[error("token issued too long ago at {iat} (now {now})")]
    TooOld {
        /// The token's `iat`.
        iat: i64,
        /// The current time.
        now: i64,
    },
    /// `exp` is further away than this profile accepts.
    #[error("token lifetime too long: expires {exp}, at most {max} seconds allowed")]
    LifetimeTooLong {
        /// The token's `exp`.
        exp: i64,
        /// The maximum accepted lifetime from now, in seconds.
        max: i64,
    },
    /// `aud` does not contain an accepted audience.
    #[error("audience not accepted")]
    AudienceMismatch,
    /// `iss` is not the expected issuer.
    #[error("issuer not accepted")]
    IssuerMismatch,
    /// The subject is not accepted (e.g. not a SPIFFE ID of a trusted trust domain).
    #[error("subject not accepted: {0}")]
    SubjectRejected(&'static str),
    /// A binding claim does not match the request (`htm`, `htu`, `ath`, `wth`, `tth`,
    /// `oth`, `nonce`, `cnf`).
    #[error("`{0}` does not match the request")]
    BindingMismatch(&'static str),
    /// The `jti` was seen before within its validity window.
    #[error("token replayed (jti already used)")]
    Replayed,
    /// The replay cache is full of unexpired entries; the token is refused (fail
    /// closed) rather than a live entry forgotten. A capacity problem, not an attack
    /// signal by itself.
    #[error("replay cache full; token refused")]
    ReplayCacheFull,
    /// The server requires a fresh nonce (RFC 9449 `use_dpop_nonce`).
    #[error("a server-provided nonce is required")]
    NonceRequired,
    /// Signing failed or another internal error.
    #[error("internal error: {0}")]
    Internal(CryptoError),
}

impl From<CryptoError> for JoseError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::BadSignature => JoseError::BadSignature,
            CryptoError::Internal => JoseError::Internal(e),
            other => JoseError::Key(other),
        }
    }
}
