//! Signing keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use zeroize::Zeroizing;

use crate::{Algorithm, CryptoError, Jwk, KeyType, VerifyingKey, b64};

/// Something that signs with one key and one algorithm.
///
/// The in-memory [`SigningKey`] implements it; a KMS, HSM or TPM backend can too.
/// Implementations must never expose private key material.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The JWS algorithm of every signature this signer makes.
    fn algorithm(&self) -> Algorithm;
    /// The public key as a JWK, with `kid` and `alg` set.
    fn public_jwk(&self) -> &Jwk;
    /// Signs `message`; ECDSA signatures are in the fixed-width JWS form.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// The key id (the JWK's `kid`).
    fn kid(&self) -> &str {
        self.public_jwk().kid.as_deref().unwrap_or_default()
    }
}

impl<S: Signer + ?Sized> Signer for Arc<S> {
    fn algorithm(&self) -> Algorithm {
        (**self).algorithm()
    }
    fn public_jwk(&self) -> &Jwk {
        (**self).public_jwk()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        (**self).sign(message)
    }
}

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// An in-memory private key (ES256, ES384 or EdDSA).
///
/// The private key lives inside aws-lc-rs, which cleanses it when the key is dropped;
/// [`SigningKey::to_pkcs8`] returns a [`Zeroizing`] copy. `Debug` shows only the
/// algorithm and `kid`.
pub struct SigningKey {
    alg: Algorithm,
    pair: Pair,
    jwk: Jwk,
    verifying: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.jwk.kid)
            .finish_non_exhaustive()
    }
}

fn ec_signing_alg(alg: Algorithm) -> Option<&'static signature::EcdsaSigningAlgorithm> {
    match alg {
        Algorithm::ES256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::ES384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    }
}

impl SigningKey {
    /// Generates a fresh key. The `kid` is the key's RFC 7638 thumbprint.
    pub fn generate(alg: Algorithm) -> Result<Self, CryptoError> {
        let pair = match alg {
            Algorithm::EdDSA => {
                Pair::Ed(Ed25519KeyPair::generate().map_err(|_| CryptoError::Internal)?)
            }
            other => {
                let sa = ec_signing_alg(other).ok_or(CryptoError::VerifyOnly(other.name()))?;
                Pair::Ec(EcdsaKeyPair::generate(sa).map_err(|_| CryptoError::Internal)?)
            }
        };
        Self::from_pair(alg, pair, None)
    }

    /// Loads a PKCS#8 (v1 or v2) DER private key.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self, CryptoError> {
        let pair = match alg {
            Algorithm::EdDSA => Pair::Ed(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|_| CryptoError::InvalidKey("not an Ed25519 PKCS#8 key"))?,
            ),
            other => {
                let sa = ec_signing_alg(other).ok_or(CryptoError::VerifyOnly(other.name()))?;
                Pair::Ec(
                    EcdsaKeyPair::from_pkcs8(sa, der)
                        .map_err(|_| CryptoError::InvalidKey("not a PKCS#8 key for this curve"))?,
                )
            }
        };
        Self::from_pair(alg, pair, None)
    }

    /// Loads a private JWK (with `d`). The algorithm comes from `kty`/`crv`.
    pub fn from_private_jwk(jwk: &Jwk) -> Result<Self, CryptoError> {
        let d = jwk
            .extra
            .get("d")
            .and_then(|v| v.as_str())
            .and_then(b64::decode_url)
            .map(Zeroizing::new)
            .ok_or(CryptoError::InvalidKey("private JWK needs a base64url `d`"))?;
        let (alg, pair) = match jwk.key_type()? {
            KeyType::Ed25519 => {
                // The public part must be the seed's: a JWK carrying another key's `x`
                // would otherwise load under a `kid` that names the wrong key.
                let x = jwk
                    .x
                    .as_deref()
                    .and_then(b64::decode_url)
                    .ok_or(CryptoError::InvalidKey("OKP JWK needs x"))?;
                (
                    Algorithm::EdDSA,
                    Pair::Ed(
                        Ed25519KeyPair::from_seed_and_public_key(&d, &x).map_err(|_| {
                            CryptoError::InvalidKey("Ed25519 seed and public key do not match")
                        })?,
                    ),
                )
            }
            kt @ (KeyType::P256 | KeyType::P384) => {
                let alg = if kt == KeyType::P256 {
                    Algorithm::ES256
                } else {
                    Algorithm::ES384
                };
                let sa = ec_signing_alg(alg).ok_or(CryptoError::Internal)?;
                let x = jwk.x.as_deref().and_then(b64::decode_url);
                let y = jwk.y.as_deref().and_then(b64::decode_url);
                let (Some(x), Some(y)) = (x, y) else {
                    return Err(CryptoError::InvalidKey("EC JWK needs x and y"));
                };
                let mut point = vec![0x04];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (
                    alg,
                    Pair::Ec(
                        EcdsaKeyPair::from_private_key_and_public_key(sa, &d, &point)
                            .map_err(|_| CryptoError::InvalidKey("inconsistent EC private key"))?,
                    ),
                )
            }
            _ => {
                return Err(CryptoError::InvalidKey(
                    "AIMS signs only with P-256, P-384 or Ed25519",
                ));
            }
        };
        Self::from_pair(alg, pair, jwk.kid.clone())
    }

    fn from_pair(alg: Algorithm, pair: Pair, kid: Option<String>) -> Result<Self, CryptoError> {
        let mut jwk = match &pair {
            Pair::Ec(p) => {
                let point = p.public_key().as_ref();
                let len = (point.len().saturating_sub(1)) / 2;
                let (x, y) = point
                    .get(1..1 + len)
                    .zip(point.get(1 + len..))
                    .ok_or(CryptoError::Internal)?;
                Jwk {
                    kty: "EC".into(),
                    crv: Some(
                        if alg == Algorithm::ES256 {
                            "P-256"
                        } else {
                            "P-384"
                        }
                        .into(),
                    ),
                    x: Some(b64::encode_url(x)),
                    y: Some(b64::encode_url(y)),
                    ..Jwk::default()
                }
            }
            Pair::Ed(p) => Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(b64::encode_url(p.public_key().as_ref())),
                ..Jwk::default()
            },
        };
        jwk.alg = Some(alg.name().into());
        jwk.kid = Some(match kid {
            Some(k) => k,
            None => jwk.thumbprint()?,
        });
        jwk.extra = BTreeMap::new();
        let verifying = VerifyingKey::from_jwk(&jwk)?;
        Ok(Self {
            alg,
            pair,
            jwk,
            verifying,
        })
    }

    /// Replaces the `kid` (the default is the RFC 7638 thumbprint).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.jwk.kid = Some(kid.into());
        self
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The private key as PKCS#8 v1 DER (RFC 5208; RFC 8410 for Ed25519), zeroized on drop.
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let doc = match &self.pair {
            Pair::Ec(p) => p.to_pkcs8v1(),
            // v1 (RFC 8410 section 7, as `openssl genpkey` writes): OpenSSL 3.0 and
            // pyca/cryptography refuse the v2 form with the embedded public key.
            Pair::Ed(p) => p.to_pkcs8v1(),
        }
        .map_err(|_| CryptoError::Internal)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// The raw public key: the uncompressed SEC1 point for EC, 32 bytes for Ed25519.
    pub fn public_key_bytes(&self) -> &[u8] {
        match &self.pair {
            Pair::Ec(p) => p.public_key().as_ref(),
            Pair::Ed(p) => p.public_key().as_ref(),
        }
    }
}

impl Signer for SigningKey {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
    fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.pair {
            Pair::Ec(p) => p
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError::Internal),
            Pair::Ed(p) => p
                .try_sign(message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError::Internal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signing_alg_round_trips() {
        for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
            let k = SigningKey::generate(alg).unwrap();
            let sig = k.sign(b"msg").unwrap();
            k.verifying_key().verify(alg, b"msg", &sig).unwrap();
            let vk = VerifyingKey::from_jwk(k.public_jwk()).unwrap();
            vk.verify(alg, b"msg", &sig).unwrap();
            assert!(vk.verify(alg, b"msh", &sig).is_err());
            assert_eq!(k.kid(), k.public_jwk().thumbprint().unwrap());
            assert_eq!(k.public_jwk().alg.as_deref(), Some(alg.name()));
            // PKCS#8 round trip keeps the key.
            let again = SigningKey::from_pkcs8(alg, &k.to_pkcs8().unwrap()).unwrap();
            assert_eq!(again.public_jwk(), k.public_jwk());
        }
    }

    #[test]
    fn ed25519_pkcs8_is_v1() {
        let k = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let der = k.to_pkcs8().unwrap();
        // SEQUENCE(46) { INTEGER 0, AlgorithmIdentifier(Ed25519), OCTET STRING(seed) }
        assert_eq!(der.len(), 48);
        assert_eq!(&der[..5], &[0x30, 0x2e, 0x02, 0x01, 0x00]);
    }

    #[test]
    fn rsa_is_verify_only() {
        for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::ES512] {
            assert_eq!(
                SigningKey::generate(alg).unwrap_err(),
                CryptoError::VerifyOnly(alg.name())
            );
        }
    }

    #[test]
    fn debug_hides_private_key() {
        let k = SigningKey::generate(Algorithm::ES256).unwrap();
        let pkcs8 = k.to_pkcs8().unwrap();
        let dbg = format!("{k:?}");
        assert!(dbg.contains("ES256"));
        assert!(!dbg.contains(&b64::encode_url(&pkcs8[..])));
    }

    #[test]
    fn rfc8037_appendix_a4_signature_is_reproduced() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        let k = SigningKey::from_private_jwk(&jwk).unwrap();
        assert_eq!(k.public_jwk().x, jwk.x);
        let sig = k
            .sign(b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc")
            .unwrap();
        assert_eq!(
            b64::encode_url(sig),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    #[test]
    fn private_jwk_with_wrong_public_part_is_refused() {
        let a = SigningKey::generate(Algorithm::ES256).unwrap();
        let b = SigningKey::generate(Algorithm::ES256).unwrap();
        let mut jwk = b.public_jwk().clone();
        // d of `a`, x/y of `b`: inconsistent.
        let pkcs8 = a.to_pkcs8().unwrap();
        let _ = pkcs8;
        jwk.extra
            .insert("d".into(), b64::encode_url([7u8; 32]).into());
        assert!(SigningKey::from_private_jwk(&jwk).is_err());
    }

    #[test]
    fn ed25519_private_jwk_must_match_its_x() {
        // RFC 8037 appendix A.1.
        let jwk = |x: &str| -> Jwk {
            serde_json::from_value(serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": x,
                "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
            }))
            .unwrap()
        };
        let k = SigningKey::from_private_jwk(&jwk("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
            .unwrap();
        assert_eq!(
            k.public_jwk().x.as_deref(),
            Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        );
        let other = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let x = other.public_jwk().x.clone().unwrap();
        assert_eq!(
            SigningKey::from_private_jwk(&jwk(&x)).unwrap_err(),
            CryptoError::InvalidKey("Ed25519 seed and public key do not match")
        );
        let mut no_x = jwk("");
        no_x.x = None;
        assert!(SigningKey::from_private_jwk(&no_x).is_err());
    }
}
