//! JSON Web Keys (RFC 7517) and thumbprints (RFC 7638).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{CryptoError, KeyType};

/// Members that only a private (or symmetric) JWK carries (RFC 7518 section 6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A JSON Web Key as it appears on the wire.
///
/// Members AIMS does not model are kept in `extra` so a key round-trips unchanged.
/// `Debug` prints only public members: a private JWK's `d` never reaches a log.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `EC`, `OKP` or `RSA`.
    pub kty: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use (`sig`, or SPIFFE bundle uses `x509-svid`, `jwt-svid`, `wit-svid`).
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Curve for `EC` and `OKP` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// X coordinate (EC) or public key (OKP), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Y coordinate (EC), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// X.509 certificate chain, standard base64 DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
    /// Any other member, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.kty)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("use", &self.use_)
            .field("crv", &self.crv)
            .field("x", &self.x)
            .field("has_private_members", &self.has_private_members())
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// Whether the key carries private or symmetric key members.
    pub fn has_private_members(&self) -> bool {
        PRIVATE_MEMBERS.iter().any(|m| self.extra.contains_key(*m))
    }

    /// The key family described by `kty` and `crv`.
    pub fn key_type(&self) -> Result<KeyType, CryptoError> {
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("EC", Some("P-256")) => Ok(KeyType::P256),
            ("EC", Some("P-384")) => Ok(KeyType::P384),
            ("EC", Some("P-521")) => Ok(KeyType::P521),
            ("OKP", Some("Ed25519")) => Ok(KeyType::Ed25519),
            ("RSA", _) => Ok(KeyType::Rsa),
            ("EC" | "OKP", _) => Err(CryptoError::InvalidKey("unsupported curve")),
            ("oct", _) => Err(CryptoError::InvalidKey("symmetric keys are not accepted")),
            _ => Err(CryptoError::InvalidKey("unsupported kty")),
        }
    }

    /// The same key with only the members RFC 7638 requires plus `kid`, `alg` and `use`.
    pub fn to_public(&self) -> Jwk {
        Jwk {
            kty: self.kty.clone(),
            kid: self.kid.clone(),
            alg: self.alg.clone(),
            use_: self.use_.clone(),
            crv: self.crv.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            n: self.n.clone(),
            e: self.e.clone(),
            x5c: self.x5c.clone(),
            extra: BTreeMap::new(),
        }
    }

    /// The RFC 7638 JWK SHA-256 thumbprint, base64url-encoded.
    ///
    /// The input is the JSON object of the required members in lexicographic order
    /// with no white space (RFC 7638 section 3.2); values are escaped by `serde_json`.
    pub fn thumbprint(&self) -> Result<String, CryptoError> {
        let missing = || CryptoError::InvalidKey("a required member is missing");
        let q = |s: &str| serde_json::to_string(s).map_err(|_| CryptoError::Internal);
        let canonical = match self.kty.as_str() {
            "EC" => format!(
                r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
                q(self.crv.as_deref().ok_or_else(missing)?)?,
                q(self.x.as_deref().ok_or_else(missing)?)?,
                q(self.y.as_deref().ok_or_else(missing)?)?
            ),
            "OKP" => format!(
                r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
                q(self.crv.as_deref().ok_or_else(missing)?)?,
                q(self.x.as_deref().ok_or_else(missing)?)?
            ),
            "RSA" => format!(
                r#"{{"e":{},"kty":"RSA","n":{}}}"#,
                q(self.e.as_deref().ok_or_else(missing)?)?,
                q(self.n.as_deref().ok_or_else(missing)?)?
            ),
            _ => return Err(CryptoError::InvalidKey("unsupported kty")),
        };
        Ok(crate::sha256_b64url(canonical))
    }
}

/// A JWK Set (RFC 7517 section 5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The keys whose `kid` equals `kid` (case-sensitive).
    pub fn find<'a>(&'a self, kid: &'a str) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.kid.as_deref() == Some(kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_section_3_1_vector() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint().unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn rfc8037_appendix_a3_thumbprint() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint().unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn rfc9449_section_6_1_jkt() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint().unwrap(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
    }

    #[test]
    fn private_members_are_detected_and_not_debug_printed() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#,
        )
        .unwrap();
        assert!(jwk.has_private_members());
        assert!(!format!("{jwk:?}").contains("nWGxne"));
        assert!(!jwk.to_public().has_private_members());
    }

    #[test]
    fn thumbprint_requires_members() {
        let jwk: Jwk = serde_json::from_str(r#"{"kty":"EC","crv":"P-256","x":"AA"}"#).unwrap();
        assert!(jwk.thumbprint().is_err());
        let oct: Jwk = serde_json::from_str(r#"{"kty":"oct","k":"AA"}"#).unwrap();
        assert!(oct.thumbprint().is_err());
        assert!(oct.key_type().is_err());
    }
}
