use crate::CryptoError;

/// JWS algorithms (RFC 7518 section 3, RFC 8037) known to AIMS. All are asymmetric:
/// `none` and `HS*` have no member here, so they can never be selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA P-256 SHA-256 (the default for everything AIMS signs).
    ES256,
    /// ECDSA P-384 SHA-384.
    ES384,
    /// ECDSA P-521 SHA-512 (verify-only).
    ES512,
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// RSASSA-PKCS1-v1_5 SHA-256 (verify-only).
    RS256,
    /// RSASSA-PKCS1-v1_5 SHA-384 (verify-only).
    RS384,
    /// RSASSA-PKCS1-v1_5 SHA-512 (verify-only).
    RS512,
    /// RSASSA-PSS SHA-256 (verify-only).
    PS256,
    /// RSASSA-PSS SHA-384 (verify-only).
    PS384,
    /// RSASSA-PSS SHA-512 (verify-only).
    PS512,
}

/// The key family an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
    /// Ed25519.
    Ed25519,
    /// RSA, 2048 to 8192 bits.
    Rsa,
}

impl KeyType {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::P256 => "EC P-256",
            KeyType::P384 => "EC P-384",
            KeyType::P521 => "EC P-521",
            KeyType::Ed25519 => "OKP Ed25519",
            KeyType::Rsa => "RSA",
        }
    }
}

impl Algorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];

    /// The JWS `alg` value.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
        }
    }

    /// Parses a JWS `alg` value (case-sensitive, RFC 7515 section 4.1.1).
    pub fn from_name(name: &str) -> Result<Self, CryptoError> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| CryptoError::UnsupportedAlgorithm(name.chars().take(32).collect()))
    }

    /// The key family the algorithm needs.
    pub fn key_type(self) -> KeyType {
        match self {
            Algorithm::ES256 => KeyType::P256,
            Algorithm::ES384 => KeyType::P384,
            Algorithm::ES512 => KeyType::P521,
            Algorithm::EdDSA => KeyType::Ed25519,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyType::Rsa,
        }
    }

    /// Whether AIMS can create keys and sign with this algorithm.
    pub fn can_sign(self) -> bool {
        matches!(self, Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}

impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_name(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_hmac_are_not_algorithms() {
        for bad in ["none", "None", "HS256", "HS384", "HS512", "es256", ""] {
            assert!(Algorithm::from_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Ok(a));
        }
    }

    #[test]
    fn only_ec_and_ed_sign() {
        let signing: Vec<_> = Algorithm::ALL
            .into_iter()
            .filter(|a| a.can_sign())
            .collect();
        assert_eq!(
            signing,
            [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA]
        );
    }
}
