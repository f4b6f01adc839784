//! JWS compact serialization (RFC 7515 section 7.1) with the header rules every AIMS
//! profile shares:
//!
//! - `alg` must be a known asymmetric algorithm: `none` ([`JoseError::AlgNone`]) and
//!   `HS*` ([`JoseError::SymmetricAlgorithm`]) are refused before anything else;
//! - `jku` and `x5u` are refused: AIMS never fetches keys named by a token;
//! - `crit` is refused: AIMS implements no JWS extension (RFC 7515 section 4.1.11);
//! - each part must be unpadded base64url and header and payload JSON objects.
//!
//! Profiles then check `typ`, their algorithm allow-list, pick the key (never from the
//! token, except DPoP's `jwk` and a WIT's `cnf`), verify once, and check claims.

use aims_crypto::{Algorithm, Jwk, Signer, VerifyingKey, b64};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::JoseError;

/// Default upper bound on the size of a token AIMS will parse.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A parsed, not yet verified, protected header.
#[derive(Debug, Clone)]
pub struct Header {
    /// The algorithm (always asymmetric).
    pub alg: Algorithm,
    /// `typ`, if present.
    pub typ: Option<String>,
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `jwk`, if present (only DPoP proofs may use it).
    pub jwk: Option<Jwk>,
    /// Every member name of the header, for profiles that restrict the set.
    pub names: Vec<String>,
    /// The whole header object.
    pub raw: Map<String, Value>,
}

impl Header {
    /// Whether `typ` equals `expected` by RFC 7515 section 4.1.9 rules: media type
    /// names compare case-insensitively and `application/` may be omitted.
    pub fn typ_is(&self, expected: &str) -> bool {
        self.typ.as_deref().is_some_and(|t| {
            let t = match t.get(..12) {
                Some(p) if p.eq_ignore_ascii_case("application/") => t.get(12..).unwrap_or(""),
                _ => t,
            };
            t.eq_ignore_ascii_case(expected)
        })
    }

    /// Fails with [`JoseError::WrongType`] unless [`Header::typ_is`] holds.
    pub fn require_typ(&self, expected: &'static str) -> Result<(), JoseError> {
        if self.typ_is(expected) {
            Ok(())
        } else {
            Err(JoseError::WrongType {
                expected,
                found: self.typ.clone(),
            })
        }
    }

    /// Fails with [`JoseError::AlgorithmNotAllowed`] unless `alg` is in `allowed`.
    pub fn require_alg(
        &self,
        allowed: &[Algorithm],
        profile: &'static str,
    ) -> Result<(), JoseError> {
        if allowed.contains(&self.alg) {
            Ok(())
        } else {
            Err(JoseError::AlgorithmNotAllowed {
                alg: self.alg,
                profile,
            })
        }
    }

    /// Fails with [`JoseError::ForbiddenHeader`] if a member outside `allowed` is present.
    pub fn only_members(&self, allowed: &[&str]) -> Result<(), JoseError> {
        match self.names.iter().find(|n| !allowed.contains(&n.as_str())) {
            Some(n) => Err(JoseError::ForbiddenHeader(n.clone())),
            None => Ok(()),
        }
    }
}

/// A decoded JWS whose signature has not been checked yet.
#[derive(Debug, Clone)]
pub struct Jws<'a> {
    /// The protected header.
    pub header: Header,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    /// Splits and decodes `token`, applying the shared header rules.
    pub fn decode(token: &'a str) -> Result<Self, JoseError> {
        Self::decode_with_limit(token, MAX_TOKEN_BYTES)
    }

    /// As [`Jws::decode`], with a custom size limit.
    pub fn decode_with_limit(token: &'a str, limit: usize) -> Result<Self, JoseError> {
        if token.len() > limit {
            return Err(JoseError::TooLarge(limit));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Malformed("expected three dot-separated parts"));
        };
        let header_bytes =
            b64::decode_url(h).ok_or(JoseError::Malformed("header is not base64url"))?;
        let payload = b64::decode_url(p).ok_or(JoseError::Malformed("payload is not base64url"))?;
        let signature =
            b64::decode_url(s).ok_or(JoseError::Malformed("signature is not base64url"))?;
        let raw = crate::claims::take::header(&header_bytes)?;
        let header = parse_header(raw)?;
        let signing_input = token
            .get(..h.len() + 1 + p.len())
            .ok_or(JoseError::Malformed("bad signing input"))?;
        Ok(Self {
            header,
            signing_input,
            payload,
            signature,
        })
    }

    /// Verifies the signature with `key` (which must suit the header's `alg`).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), JoseError> {
        key.verify(
            self.header.alg,
            self.signing_input.as_bytes(),
            &self.signature,
        )
        .map_err(JoseError::from)
    }

    /// The claims, deserialized. Call only after [`Jws::verify`] unless you need the
    /// unverified subject to pick a trust anchor (and then trust nothing else).
    ///
    /// A payload that repeats a claim name is refused (RFC 7519 section 4), as in every
    /// profile: a plain JSON parse would silently keep the last value.
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, JoseError> {
        let map = crate::claims::take::claims_set(&self.payload)?;
        serde_json::from_value(Value::Object(map))
            .map_err(|_| JoseError::Malformed("claims do not have the expected shape"))
    }

    /// The raw payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The claims of `token` **without verifying anything**: only to *select* what the
    /// token must then be verified against (whose keys, which configured authority),
    /// never to trust a value. `None` for anything that is not a compact JWS with a JSON
    /// object payload without repeated names.
    pub fn unverified_claims(token: &str) -> Option<serde_json::Map<String, Value>> {
        let jws = Jws::decode(token).ok()?;
        crate::claims::take::claims_set(&jws.payload).ok()
    }
}

fn parse_header(raw: Map<String, Value>) -> Result<Header, JoseError> {
    let alg_name = raw
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JoseError::Malformed("header has no string `alg`"))?;
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(JoseError::AlgNone);
    }
    if alg_name.starts_with("HS") {
        return Err(JoseError::SymmetricAlgorithm(
            alg_name.chars().take(16).collect(),
        ));
    }
    let alg = Algorithm::from_name(alg_name)
        .map_err(|_| JoseError::UnsupportedAlgorithm(alg_name.chars().take(32).collect()))?;
    for forbidden in ["jku", "x5u"] {
        if raw.contains_key(forbidden) {
            return Err(JoseError::ForbiddenHeader(forbidden.into()));
        }
    }
    if raw.contains_key("crit") {
        return Err(JoseError::UnknownCrit);
    }
    let string = |name: &'static str| -> Result<Option<String>, JoseError> {
        match raw.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(JoseError::Malformed("header member has the wrong type")),
        }
    };
    let typ = string("typ")?;
    let kid = string("kid")?;
    let jwk = match raw.get("jwk") {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<Jwk>(v.clone())
                .map_err(|_| JoseError::Malformed("`jwk` header is not a JWK"))?,
        ),
    };
    let names = raw.keys().cloned().collect();
    Ok(Header {
        alg,
        typ,
        kid,
        jwk,
        names,
        raw,
    })
}

/// The header members a token creator chooses; `alg` always comes from the signer.
#[derive(Debug, Clone, Default)]
pub struct HeaderSpec<'a> {
    /// `typ`.
    pub typ: Option<&'a str>,
    /// Whether to put the signer's `kid` in the header.
    pub kid: bool,
    /// Whether to embed the signer's public JWK (DPoP).
    pub jwk: bool,
}

/// Signs `claims` with `signer` into a JWS compact serialization.
pub fn sign<C: Serialize + ?Sized>(
    spec: &HeaderSpec<'_>,
    claims: &C,
    signer: &dyn Signer,
) -> Result<String, JoseError> {
    let mut header = Map::new();
    header.insert(
        "alg".into(),
        Value::String(signer.algorithm().name().into()),
    );
    if let Some(t) = spec.typ {
        header.insert("typ".into(), Value::String(t.into()));
    }
    if spec.kid {
        header.insert("kid".into(), Value::String(signer.kid().into()));
    }
    if spec.jwk {
        let mut jwk = signer.public_jwk().to_public();
        jwk.kid = None;
        let v = serde_json::to_value(jwk).map_err(|_| JoseError::Malformed("cannot encode jwk"))?;
        header.insert("jwk".into(), v);
    }
    let h =
        serde_json::to_vec(&header).map_err(|_| JoseError::Malformed("cannot encode header"))?;
    let p = serde_json::to_vec(claims).map_err(|_| JoseError::Malformed("cannot encode claims"))?;
    let mut out = b64::encode_url(h);
    out.push('.');
    out.push_str(&b64::encode_url(p));
    let sig = signer.sign(out.as_bytes()).map_err(JoseError::Internal)?;
    out.push('.');
    out.push_str(&b64::encode_url(sig));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aims_crypto::SigningKey;

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.{}",
            b64::encode_url(header),
            b64::encode_url(payload),
            b64::encode_url([0u8; 64])
        )
    }

    #[test]
    fn shared_header_rules() {
        let cases = [
            (r#"{"alg":"none"}"#, JoseError::AlgNone),
            (
                r#"{"alg":"HS256"}"#,
                JoseError::SymmetricAlgorithm("HS256".into()),
            ),
            (
                r#"{"alg":"XX1"}"#,
                JoseError::UnsupportedAlgorithm("XX1".into()),
            ),
            (
                r#"{"alg":"ES256","jku":"https://x"}"#,
                JoseError::ForbiddenHeader("jku".into()),
            ),
            (
                r#"{"alg":"ES256","x5u":"https://x"}"#,
                JoseError::ForbiddenHeader("x5u".into()),
            ),
            (
                r#"{"alg":"ES256","crit":["exp"],"exp":1}"#,
                JoseError::UnknownCrit,
            ),
            (
                r#"{"typ":"JWT"}"#,
                JoseError::Malformed("header has no string `alg`"),
            ),
            (
                r#"{"alg":"ES256","kid":5}"#,
                JoseError::Malformed("header member has the wrong type"),
            ),
            (
                r#"[1]"#,
                JoseError::Malformed("header is not a JSON object"),
            ),
            (
                r#"{"alg":"ES256","typ":"JWT","typ":"at+jwt"}"#,
                JoseError::Malformed("duplicate header parameter name"),
            ),
            (
                r#"{"alg":"none","alg":"ES256"}"#,
                JoseError::Malformed("duplicate header parameter name"),
            ),
        ];
        for (h, want) in cases {
            assert_eq!(Jws::decode(&token(h, "{}")).unwrap_err(), want, "{h}");
        }
    }

    #[test]
    fn claims_refuse_duplicate_names() {
        let jws_token = token(r#"{"alg":"ES256"}"#, r#"{"sub":"a","sub":"b"}"#);
        let jws = Jws::decode(&jws_token).unwrap();
        assert_eq!(
            jws.claims::<Value>().unwrap_err(),
            JoseError::Malformed("duplicate claim name")
        );
        let ok = token(r#"{"alg":"ES256"}"#, r#"{"sub":"a"}"#);
        assert_eq!(
            Jws::decode(&ok).unwrap().claims::<Value>().unwrap()["sub"],
            "a"
        );
    }

    #[test]
    fn unverified_claims_selects_only_well_formed_objects() {
        let ok = token(r#"{"alg":"ES256"}"#, r#"{"aud":"https://a","exp":5}"#);
        let c = Jws::unverified_claims(&ok).unwrap();
        assert_eq!(
            (c["aud"].as_str(), c["exp"].as_i64()),
            (Some("https://a"), Some(5))
        );
        for bad in [
            token(r#"{"alg":"ES256"}"#, r#"{"aud":"a","aud":"b"}"#),
            token(r#"{"alg":"ES256"}"#, r#"["aud"]"#),
            token(r#"{"alg":"none"}"#, r#"{"aud":"a"}"#),
            "not a token".to_owned(),
        ] {
            assert!(Jws::unverified_claims(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn structure_rules() {
        assert!(matches!(Jws::decode("a.b"), Err(JoseError::Malformed(_))));
        assert!(matches!(
            Jws::decode("a.b.c.d"),
            Err(JoseError::Malformed(_))
        ));
        assert!(matches!(
            Jws::decode("a=.b.c"),
            Err(JoseError::Malformed(_))
        ));
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            Jws::decode(&big).unwrap_err(),
            JoseError::TooLarge(MAX_TOKEN_BYTES)
        );
    }

    #[test]
    fn typ_comparison_follows_rfc7515() {
        let k = SigningKey::generate(Algorithm::ES256).unwrap();
        for (typ, ok) in [
            ("dpop+jwt", true),
            ("application/dpop+jwt", true),
            ("DPoP+JWT", true),
            ("jwt", false),
        ] {
            let t = sign(
                &HeaderSpec {
                    typ: Some(typ),
                    ..Default::default()
                },
                &serde_json::json!({}),
                &k,
            )
            .unwrap();
            assert_eq!(
                Jws::decode(&t).unwrap().header.typ_is("dpop+jwt"),
                ok,
                "{typ}"
            );
        }
    }

    #[test]
    fn sign_then_verify_and_tamper() {
        let k = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let t = sign(
            &HeaderSpec {
                typ: Some("JWT"),
                kid: true,
                jwk: true,
            },
            &serde_json::json!({"a":1}),
            &k,
        )
        .unwrap();
        let jws = Jws::decode(&t).unwrap();
        assert_eq!(jws.header.kid.as_deref(), Some(k.kid()));
        assert!(!jws.header.jwk.as_ref().unwrap().has_private_members());
        jws.verify(k.verifying_key()).unwrap();
        let other = SigningKey::generate(Algorithm::EdDSA).unwrap();
        assert_eq!(
            jws.verify(other.verifying_key()).unwrap_err(),
            JoseError::BadSignature
        );
        let p256 = SigningKey::generate(Algorithm::ES256).unwrap();
        assert!(matches!(
            jws.verify(p256.verifying_key()).unwrap_err(),
            JoseError::Key(_)
        ));
        // Changing one payload character breaks the signature.
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = b64::encode_url(br#"{"a":2}"#);
        parts[1] = &forged;
        let forged = parts.join(".");
        assert_eq!(
            Jws::decode(&forged)
                .unwrap()
                .verify(k.verifying_key())
                .unwrap_err(),
            JoseError::BadSignature
        );
    }
}
