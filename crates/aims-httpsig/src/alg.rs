//! HTTP signature algorithms (RFC 9421 section 3.3) and their JWS equivalents.

use aims_crypto::Algorithm;

use crate::HttpSigError;

/// The RFC 9421 algorithms AIMS implements, all asymmetric.
///
/// Each has the exact semantics of a JWS algorithm (RFC 9421 section 3.3 defines them so),
/// which is how they reach `aims-crypto`: `ecdsa-p256-sha256` is ES256 with the
/// fixed-width `r || s` signature, `rsa-pss-sha512` is PS512 (salt length 64), and so on.
///
/// `hmac-sha256` (section 3.3.3) is deliberately absent: AIMS never accepts symmetric
/// keys, so [`SignatureAlgorithm::from_name`] refuses it like any unknown name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// `ed25519` (section 3.3.6) = JWS `EdDSA`.
    Ed25519,
    /// `ecdsa-p256-sha256` (section 3.3.4) = JWS `ES256`.
    EcdsaP256Sha256,
    /// `ecdsa-p384-sha384` (section 3.3.5) = JWS `ES384`.
    EcdsaP384Sha384,
    /// `rsa-pss-sha512` (section 3.3.1) = JWS `PS512`; verify-only.
    RsaPssSha512,
    /// `rsa-v1_5-sha256` (section 3.3.2) = JWS `RS256`; verify-only.
    RsaV15Sha256,
}

impl SignatureAlgorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [SignatureAlgorithm; 5] = [
        SignatureAlgorithm::Ed25519,
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::EcdsaP384Sha384,
        SignatureAlgorithm::RsaPssSha512,
        SignatureAlgorithm::RsaV15Sha256,
    ];

    /// The registered name (the value of the `alg` parameter).
    pub fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Ed25519 => "ed25519",
            SignatureAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SignatureAlgorithm::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            SignatureAlgorithm::RsaPssSha512 => "rsa-pss-sha512",
            SignatureAlgorithm::RsaV15Sha256 => "rsa-v1_5-sha256",
        }
    }

    /// Parses an `alg` value (exact match). `hmac-sha256` and unknown names fail with
    /// [`HttpSigError::UnsupportedAlgorithm`].
    pub fn from_name(name: &str) -> Result<Self, HttpSigError> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| HttpSigError::UnsupportedAlgorithm(name.chars().take(32).collect()))
    }

    /// The JWS algorithm with the same semantics.
    pub fn jws(self) -> Algorithm {
        match self {
            SignatureAlgorithm::Ed25519 => Algorithm::EdDSA,
            SignatureAlgorithm::EcdsaP256Sha256 => Algorithm::ES256,
            SignatureAlgorithm::EcdsaP384Sha384 => Algorithm::ES384,
            SignatureAlgorithm::RsaPssSha512 => Algorithm::PS512,
            SignatureAlgorithm::RsaV15Sha256 => Algorithm::RS256,
        }
    }

    /// The RFC 9421 algorithm for a JWS algorithm, if one is registered.
    pub fn from_jws(alg: Algorithm) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.jws() == alg)
    }
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_hmac_is_refused() {
        for a in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::from_name(a.name()), Ok(a));
            assert_eq!(SignatureAlgorithm::from_jws(a.jws()), Some(a));
        }
        for bad in ["hmac-sha256", "ED25519", "rsa-pss-sha256", ""] {
            assert!(matches!(
                SignatureAlgorithm::from_name(bad),
                Err(HttpSigError::UnsupportedAlgorithm(_))
            ));
        }
        assert_eq!(SignatureAlgorithm::from_jws(Algorithm::ES512), None);
    }
}
