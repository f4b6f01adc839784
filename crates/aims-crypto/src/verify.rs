//! Public keys for signature verification, parsed once and reused.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};

use crate::{Algorithm, CryptoError, Jwk, KeyType, b64};

/// A public key ready to verify JWS signatures.
///
/// Built from a JWK (or raw key bytes); the expensive point decoding happens once here,
/// not on every verification. The key is bound to its family: a P-256 key verifies
/// only ES256, an Ed25519 key only EdDSA, an RSA key the RS* and PS* algorithms.
#[derive(Clone)]
pub struct VerifyingKey {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    /// EC and Ed25519 keys verify exactly one algorithm.
    Single {
        alg: Algorithm,
        key: ParsedPublicKey,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        /// The JWK's `alg`, when it names one: then only that algorithm is verified.
        only: Option<Algorithm>,
    },
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("key_type", &self.key_type().name())
            .finish()
    }
}

fn ec_alg(
    kt: KeyType,
) -> Option<(
    Algorithm,
    &'static signature::EcdsaVerificationAlgorithm,
    usize,
)> {
    match kt {
        KeyType::P256 => Some((Algorithm::ES256, &signature::ECDSA_P256_SHA256_FIXED, 32)),
        KeyType::P384 => Some((Algorithm::ES384, &signature::ECDSA_P384_SHA384_FIXED, 48)),
        KeyType::P521 => Some((Algorithm::ES512, &signature::ECDSA_P521_SHA512_FIXED, 66)),
        KeyType::Ed25519 | KeyType::Rsa => None,
    }
}

fn field(v: &Option<String>) -> Result<Vec<u8>, CryptoError> {
    let s = v
        .as_deref()
        .ok_or(CryptoError::InvalidKey("a required member is missing"))?;
    b64::decode_url(s).ok_or(CryptoError::InvalidKey("member is not base64url"))
}

impl VerifyingKey {
    /// Parses a public JWK. Private members are refused: a verifier must never be
    /// handed a private key, and a token must never carry one.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, CryptoError> {
        if jwk.has_private_members() {
            return Err(CryptoError::PrivateMembersInPublicJwk);
        }
        let kt = jwk.key_type()?;
        // RFC 7517 §4.4 / RFC 8725 §3.1: a key published for one algorithm is used with
        // that algorithm only.
        let declared = match jwk.alg.as_deref() {
            None => None,
            Some(name) => {
                let a = Algorithm::from_name(name)
                    .map_err(|_| CryptoError::InvalidKey("`alg` names no signature algorithm"))?;
                if a.key_type() != kt {
                    return Err(CryptoError::InvalidKey("`alg` does not suit the key type"));
                }
                Some(a)
            }
        };
        match kt {
            KeyType::P256 | KeyType::P384 | KeyType::P521 => {
                let (alg, valg, len) = ec_alg(kt).ok_or(CryptoError::Internal)?;
                let x = field(&jwk.x)?;
                let y = field(&jwk.y)?;
                if x.len() != len || y.len() != len {
                    return Err(CryptoError::InvalidKey(
                        "EC coordinate has the wrong length",
                    ));
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let key = ParsedPublicKey::new(valg, &point)
                    .map_err(|_| CryptoError::InvalidKey("EC point is not on the curve"))?;
                Ok(Self {
                    inner: Inner::Single { alg, key },
                })
            }
            KeyType::Ed25519 => {
                let x = field(&jwk.x)?;
                Self::from_ed25519_bytes(&x)
            }
            KeyType::Rsa => {
                let n = field(&jwk.n)?;
                let e = field(&jwk.e)?;
                if n.first() == Some(&0) || e.first() == Some(&0) || e.is_empty() {
                    return Err(CryptoError::InvalidKey("RSA integers must be minimal"));
                }
                let bits = n.len() * 8;
                if !(2048..=8192).contains(&bits) {
                    return Err(CryptoError::InvalidKey(
                        "RSA modulus must be 2048 to 8192 bits",
                    ));
                }
                Ok(Self {
                    inner: Inner::Rsa {
                        n,
                        e,
                        only: declared,
                    },
                })
            }
        }
    }

    /// An Ed25519 public key from its 32 raw bytes.
    pub fn from_ed25519_bytes(x: &[u8]) -> Result<Self, CryptoError> {
        if x.len() != 32 {
            return Err(CryptoError::InvalidKey("Ed25519 key must be 32 bytes"));
        }
        let key = ParsedPublicKey::new(&signature::ED25519, x)
            .map_err(|_| CryptoError::InvalidKey("invalid Ed25519 key"))?;
        Ok(Self {
            inner: Inner::Single {
                alg: Algorithm::EdDSA,
                key,
            },
        })
    }

    /// The key family.
    pub fn key_type(&self) -> KeyType {
        match &self.inner {
            Inner::Single { alg, .. } => alg.key_type(),
            Inner::Rsa { .. } => KeyType::Rsa,
        }
    }

    /// Whether this key can verify `alg`.
    pub fn supports(&self, alg: Algorithm) -> bool {
        match &self.inner {
            Inner::Rsa { only: Some(a), .. } => *a == alg,
            _ => alg.key_type() == self.key_type(),
        }
    }

    /// Verifies a JWS signature (`message` is the JWS signing input; ECDSA signatures
    /// are the fixed-width `r || s` form of RFC 7518 section 3.4).
    pub fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        match &self.inner {
            Inner::Single { alg: own, key } => {
                if *own != alg {
                    return Err(self.mismatch(alg));
                }
                key.verify_sig(message, sig)
                    .map_err(|_| CryptoError::BadSignature)
            }
            Inner::Rsa { n, e, only } => {
                if only.is_some_and(|a| a != alg) {
                    return Err(self.mismatch(alg));
                }
                let params = match alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return Err(self.mismatch(alg)),
                };
                RsaPublicKeyComponents {
                    n: n.as_slice(),
                    e: e.as_slice(),
                }
                .verify(params, message, sig)
                .map_err(|_| CryptoError::BadSignature)
            }
        }
    }

    fn mismatch(&self, alg: Algorithm) -> CryptoError {
        CryptoError::KeyAlgorithmMismatch {
            key: self.key_type().name(),
            alg: alg.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc8037_public() -> Jwk {
        serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap()
    }

    #[test]
    fn rfc8037_appendix_a4_signature_verifies() {
        let key = VerifyingKey::from_jwk(&rfc8037_public()).unwrap();
        let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let sig = b64::decode_url("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg").unwrap();
        key.verify(Algorithm::EdDSA, input, &sig).unwrap();
        // Tampered input fails.
        assert_eq!(
            key.verify(
                Algorithm::EdDSA,
                b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmd",
                &sig
            ),
            Err(CryptoError::BadSignature)
        );
        // Wrong algorithm for the key is refused before any verification.
        assert!(matches!(
            key.verify(Algorithm::ES256, input, &sig),
            Err(CryptoError::KeyAlgorithmMismatch { .. })
        ));
    }

    #[test]
    fn private_jwk_is_refused() {
        let mut jwk = rfc8037_public();
        jwk.extra.insert(
            "d".into(),
            "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A".into(),
        );
        assert_eq!(
            VerifyingKey::from_jwk(&jwk).unwrap_err(),
            CryptoError::PrivateMembersInPublicJwk
        );
    }

    #[test]
    fn off_curve_point_is_refused() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDB"}"#,
        )
        .unwrap();
        assert!(matches!(
            VerifyingKey::from_jwk(&jwk),
            Err(CryptoError::InvalidKey(_))
        ));
    }

    #[test]
    fn short_rsa_key_is_refused() {
        let jwk: Jwk = serde_json::from_str(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#).unwrap();
        assert!(matches!(
            VerifyingKey::from_jwk(&jwk),
            Err(CryptoError::InvalidKey(_))
        ));
    }

    #[test]
    fn oct_key_is_refused() {
        let jwk: Jwk = serde_json::from_str(r#"{"kty":"oct"}"#).unwrap();
        assert!(matches!(
            VerifyingKey::from_jwk(&jwk),
            Err(CryptoError::InvalidKey(_))
        ));
    }
}
