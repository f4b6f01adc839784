//! JWT-SVID: the SPIFFE JWT identity document (spiffe/spiffe `standards/JWT-SVID.md`).
//!
//! # Rules
//!
//! | Rule | Error |
//! |---|---|
//! | shared JWS rules ([`crate::jws`]): no `alg=none`, no `HS*`, no `jku`/`x5u`, no `crit` | [`JoseError::AlgNone`], [`JoseError::SymmetricAlgorithm`], [`JoseError::ForbiddenHeader`], [`JoseError::UnknownCrit`] |
//! | header members only `alg`, `kid`, `typ` (JWT-SVID section 2) | [`JoseError::ForbiddenHeader`] |
//! | `typ`, if present, exactly `JWT` or `JOSE` | [`JoseError::WrongType`] |
//! | `alg` in [`ALLOWED_ALGORITHMS`] (RS/ES/PS 256-512; no EdDSA) | [`JoseError::AlgorithmNotAllowed`] |
//! | `kid` present and non-empty | [`JoseError::MissingKid`] |
//! | `sub` present, a SPIFFE ID, not a trust domain's root ID, of an accepted trust domain | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`], [`JoseError::SubjectRejected`] |
//! | the key is looked up under the trust domain of `sub` and `kid` | [`JoseError::UnknownKey`] |
//! | signature | [`JoseError::BadSignature`] |
//! | `exp` present and not passed; optional maximum lifetime | [`JoseError::MissingClaim`], [`JoseError::Expired`], [`JoseError::LifetimeTooLong`] |
//! | `nbf`, `iat` checked when present | [`JoseError::NotYetValid`], [`JoseError::IssuedInFuture`] |
//! | `aud` present, non-empty, contains an accepted audience (optionally as its only value) | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`], [`JoseError::AudienceMismatch`] |
//!
//! # Decisions
//!
//! - **`kid` is required.** The specification makes it optional, but SPIRE always sets it
//!   and go-spiffe rejects a JWT-SVID without one; requiring it means a trust domain with
//!   several keys never has to try them in turn.
//! - **`typ` is compared exactly**, as go-spiffe does: the specification lists the two
//!   values, so `jwt` or `application/jwt` are refused.
//! - **The trust domain of the unverified `sub` only selects the key set.** Nothing else
//!   in the claims is used before the signature has been verified with a key of that
//!   trust domain, so a token cannot claim a subject in a trust domain whose keys did
//!   not sign it.
//! - **Single audience.** The specification strongly recommends one audience;
//!   draft-ietf-oauth-spiffe-client-auth (via rfc7523bis) requires the authorization
//!   server's issuer as the sole value. [`Validator::require_single_audience`] enforces
//!   that; it is off by default.

#![deny(clippy::indexing_slicing, clippy::string_slice)]

use std::sync::Arc;

use aims_core::{Clock, SpiffeId, TrustDomain};
use aims_crypto::{Algorithm, Signer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::JoseError;
use crate::claims::{Audience, take};
use crate::jws::{HeaderSpec, Jws, MAX_TOKEN_BYTES, sign};
use crate::keys::KeyResolver;
use crate::time::{self, DEFAULT_LEEWAY};

/// The profile name used in [`JoseError::AlgorithmNotAllowed`].
pub const PROFILE: &str = "JWT-SVID";

/// The algorithms JWT-SVID section 3 allows.
pub const ALLOWED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// The only header members a JWT-SVID may carry.
pub const ALLOWED_HEADERS: [&str; 3] = ["alg", "kid", "typ"];

/// The accepted `typ` values (compared exactly).
pub const TYP_VALUES: [&str; 2] = ["JWT", "JOSE"];

/// The `typ` AIMS writes.
pub const TYP: &str = "JWT";

/// Claims names with their own field in [`JwtSvidClaims`].
const OWN_CLAIMS: [&str; 6] = ["sub", "aud", "exp", "iat", "nbf", "jti"];

/// The claims of a JWT-SVID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwtSvidClaims {
    /// The workload's SPIFFE ID (never a trust domain's root ID).
    pub sub: SpiffeId,
    /// The audience(s); one is strongly recommended.
    pub aud: Audience,
    /// Expiration time (NumericDate).
    pub exp: i64,
    /// Issued-at time, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not-before time, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token id, if present (JWT-SVID validators need not track it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Every other claim, unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl JwtSvidClaims {
    /// Claims for `sub` towards `aud`, issued at `iat` and valid for `lifetime` seconds.
    pub fn new(sub: SpiffeId, aud: impl Into<String>, iat: i64, lifetime: i64) -> Self {
        Self {
            sub,
            aud: Audience::One(aud.into()),
            exp: iat.saturating_add(lifetime),
            iat: Some(iat),
            nbf: None,
            jti: None,
            extra: Map::new(),
        }
    }
}

/// Signs a JWT-SVID with `typ: JWT` and the signer's `kid`.
///
/// The signer's algorithm must be in [`ALLOWED_ALGORITHMS`] (AIMS signs ES256 or ES384),
/// its `kid` non-empty, `sub` not a root ID, `aud` non-empty, and `extra` must not repeat
/// a claim that has its own field.
pub fn create(claims: &JwtSvidClaims, signer: &dyn Signer) -> Result<String, JoseError> {
    let alg = signer.algorithm();
    if !ALLOWED_ALGORITHMS.contains(&alg) {
        return Err(JoseError::AlgorithmNotAllowed {
            alg,
            profile: PROFILE,
        });
    }
    if signer.kid().is_empty() {
        return Err(JoseError::MissingKid);
    }
    if claims.sub.is_root() {
        return Err(JoseError::SubjectRejected(
            "a trust domain's root ID names no workload",
        ));
    }
    if claims.aud.is_empty() {
        return Err(JoseError::InvalidClaim {
            claim: "aud",
            reason: "must not be empty",
        });
    }
    take::no_shadowing(&claims.extra, &OWN_CLAIMS)?;
    sign(
        &HeaderSpec {
            typ: Some(TYP),
            kid: true,
            jwk: false,
        },
        claims,
        signer,
    )
}

/// A JWT-SVID that passed every check of its [`Validator`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedJwtSvid {
    /// The claims.
    pub claims: JwtSvidClaims,
    /// The algorithm it was signed with.
    pub alg: Algorithm,
    /// The key id it was verified with.
    pub kid: String,
}

impl ValidatedJwtSvid {
    /// The authenticated workload.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.claims.sub
    }
}

/// Validates JWT-SVIDs for one or more audiences (see the [module rules](self)).
#[derive(Debug, Clone)]
pub struct Validator {
    clock: Arc<dyn Clock>,
    leeway: i64,
    audiences: Vec<String>,
    trust_domains: Option<Vec<TrustDomain>>,
    single_audience: bool,
    max_lifetime: Option<i64>,
    max_token_bytes: usize,
}

impl Validator {
    /// A validator accepting tokens for `audience`, with the default leeway and every
    /// trust domain the key resolver knows.
    pub fn new(clock: Arc<dyn Clock>, audience: impl Into<String>) -> Self {
        Self {
            clock,
            leeway: DEFAULT_LEEWAY,
            audiences: vec![audience.into()],
            trust_domains: None,
            single_audience: false,
            max_lifetime: None,
            max_token_bytes: MAX_TOKEN_BYTES,
        }
    }

    /// Also accepts tokens for `audience`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock-skew allowance in seconds (negative values count as zero).
    pub fn leeway(mut self, secs: i64) -> Self {
        self.leeway = secs.max(0);
        self
    }

    /// Accepts subjects of `td` only (may be called several times). Without it, any
    /// trust domain the key resolver has keys for is accepted.
    pub fn trust_domain(mut self, td: TrustDomain) -> Self {
        self.trust_domains.get_or_insert_with(Vec::new).push(td);
        self
    }

    /// Requires `aud` to hold exactly one value (one of the accepted audiences), as
    /// OAuth SPIFFE client authentication does.
    pub fn require_single_audience(mut self, yes: bool) -> Self {
        self.single_audience = yes;
        self
    }

    /// Refuses tokens expiring more than `secs` seconds from now.
    pub fn max_lifetime(mut self, secs: i64) -> Self {
        self.max_lifetime = Some(secs);
        self
    }

    /// Refuses tokens longer than `bytes` (default [`MAX_TOKEN_BYTES`]).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Validates `token`, taking the key from `keys` under the trust domain of `sub`.
    pub fn validate(
        &self,
        token: &str,
        keys: &dyn KeyResolver,
    ) -> Result<ValidatedJwtSvid, JoseError> {
        let jws = Jws::decode_with_limit(token, self.max_token_bytes)?;
        let h = &jws.header;
        h.only_members(&ALLOWED_HEADERS)?;
        if let Some(t) = &h.typ
            && !TYP_VALUES.contains(&t.as_str())
        {
            return Err(JoseError::WrongType {
                expected: "JWT or JOSE",
                found: Some(t.clone()),
            });
        }
        h.require_alg(&ALLOWED_ALGORITHMS, PROFILE)?;
        let kid = h
            .kid
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or(JoseError::MissingKid)?;

        // The unverified subject selects the trust domain whose keys must have signed.
        let mut claims = take::claims_set(jws.payload())?;
        let sub = take::required(take::string(&mut claims, "sub")?, "sub")?;
        let sub = SpiffeId::parse(&sub).map_err(|_| JoseError::InvalidClaim {
            claim: "sub",
            reason: "not a valid SPIFFE ID",
        })?;
        if sub.is_root() {
            return Err(JoseError::SubjectRejected(
                "a trust domain's root ID names no workload",
            ));
        }
        if let Some(tds) = &self.trust_domains
            && !tds.contains(sub.trust_domain())
        {
            return Err(JoseError::SubjectRejected("trust domain not accepted"));
        }
        let key = keys.resolve(sub.trust_domain().as_str(), Some(kid), h.alg)?;
        jws.verify(&key)?;

        let now = self.clock.now();
        let exp = take::required(take::numeric_date(&mut claims, "exp")?, "exp")?;
        time::check_exp(exp, now, self.leeway)?;
        if let Some(max) = self.max_lifetime {
            time::check_max_lifetime(exp, now, max, self.leeway)?;
        }
        let nbf = take::numeric_date(&mut claims, "nbf")?;
        if let Some(nbf) = nbf {
            time::check_nbf(nbf, now, self.leeway)?;
        }
        let iat = take::numeric_date(&mut claims, "iat")?;
        if let Some(iat) = iat {
            time::check_iat_window(iat, now, i64::MAX, self.leeway)?;
        }
        let aud = take::required(take::audience(&mut claims)?, "aud")?;
        if aud.is_empty() {
            return Err(JoseError::InvalidClaim {
                claim: "aud",
                reason: "must not be empty",
            });
        }
        if !aud.contains_any(&self.audiences) || (self.single_audience && aud.len() != 1) {
            return Err(JoseError::AudienceMismatch);
        }
        let jti = take::string(&mut claims, "jti")?;
        Ok(ValidatedJwtSvid {
            claims: JwtSvidClaims {
                sub,
                aud,
                exp,
                iat,
                nbf,
                jti,
                extra: claims,
            },
            alg: h.alg,
            kid: kid.to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::claims::take::{sign_raw, sign_text};
    use crate::keys::StaticKeys;
    use aims_core::ManualClock;
    use aims_crypto::{SigningKey, b64};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const TD: &str = "example.org";
    const AUD: &str = "spiffe://example.org/api";
    const SUB: &str = "spiffe://example.org/agent/billing";

    struct Fx {
        key: SigningKey,
        keys: StaticKeys,
        clock: ManualClock,
        v: Validator,
    }

    fn fx() -> Fx {
        let key = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("k1");
        let mut keys = StaticKeys::new();
        keys.add_key(TD, Some("k1".into()), key.verifying_key().clone());
        let clock = ManualClock::new(NOW);
        let v = Validator::new(Arc::new(clock.clone()), AUD);
        Fx {
            key,
            keys,
            clock,
            v,
        }
    }

    fn header() -> Value {
        json!({"alg": "ES256", "kid": "k1", "typ": "JWT"})
    }

    fn claims() -> Value {
        json!({"sub": SUB, "aud": [AUD], "exp": NOW + 300, "iat": NOW, "jti": "j1", "x": 1})
    }

    fn set(mut v: Value, k: &str, x: Value) -> Value {
        v.as_object_mut().unwrap().insert(k.into(), x);
        v
    }

    fn unset(mut v: Value, k: &str) -> Value {
        v.as_object_mut().unwrap().remove(k);
        v
    }

    impl Fx {
        fn run(&self, h: Value, c: Value) -> Result<ValidatedJwtSvid, JoseError> {
            self.v.validate(&sign_raw(&h, &c, &self.key), &self.keys)
        }
    }

    /// A token with header `h` and a signature that is not checked (the header is
    /// refused before verification).
    fn unsigned(h: &str) -> String {
        format!(
            "{}.{}.{}",
            b64::encode_url(h),
            b64::encode_url(claims().to_string()),
            b64::encode_url([1u8; 64])
        )
    }

    #[test]
    fn valid_twin_passes() {
        let f = fx();
        let ok = f.run(header(), claims()).unwrap();
        assert_eq!(ok.spiffe_id().as_str(), SUB);
        assert_eq!(ok.claims.exp, NOW + 300);
        assert_eq!(ok.claims.iat, Some(NOW));
        assert_eq!(ok.claims.jti.as_deref(), Some("j1"));
        assert_eq!(ok.claims.extra.get("x"), Some(&json!(1)));
        assert_eq!(ok.kid, "k1");
        assert_eq!(ok.alg, Algorithm::ES256);
        // `typ` is optional, and `JOSE` is the other accepted value.
        f.run(unset(header(), "typ"), claims()).unwrap();
        f.run(set(header(), "typ", json!("JOSE")), claims())
            .unwrap();
        // A single string audience is fine.
        f.run(header(), set(claims(), "aud", json!(AUD))).unwrap();
    }

    #[test]
    fn create_then_validate() {
        let f = fx();
        let c = JwtSvidClaims::new(SpiffeId::parse(SUB).unwrap(), AUD, NOW, 300);
        let t = create(&c, &f.key).unwrap();
        let jws = Jws::decode(&t).unwrap();
        assert_eq!(jws.header.typ.as_deref(), Some("JWT"));
        assert_eq!(jws.header.kid.as_deref(), Some("k1"));
        assert_eq!(f.v.validate(&t, &f.keys).unwrap().claims, c);
    }

    #[test]
    fn create_refuses_bad_input() {
        let f = fx();
        let ok = JwtSvidClaims::new(SpiffeId::parse(SUB).unwrap(), AUD, NOW, 300);
        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        assert_eq!(
            create(&ok, &ed).unwrap_err(),
            JoseError::AlgorithmNotAllowed {
                alg: Algorithm::EdDSA,
                profile: PROFILE
            }
        );
        let no_kid = SigningKey::generate(Algorithm::ES256).unwrap().with_kid("");
        assert_eq!(create(&ok, &no_kid).unwrap_err(), JoseError::MissingKid);
        let root = JwtSvidClaims::new(
            SpiffeId::parse("spiffe://example.org").unwrap(),
            AUD,
            NOW,
            300,
        );
        assert!(matches!(
            create(&root, &f.key),
            Err(JoseError::SubjectRejected(_))
        ));
        let mut empty = ok.clone();
        empty.aud = Audience::Many(vec![]);
        assert!(matches!(
            create(&empty, &f.key),
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
        let mut shadow = ok;
        shadow.extra.insert("exp".into(), json!(1));
        assert!(matches!(
            create(&shadow, &f.key),
            Err(JoseError::InvalidClaim { claim: "extra", .. })
        ));
    }

    #[test]
    fn rejects_alg_none() {
        let f = fx();
        let t = format!(
            "{}.{}.",
            b64::encode_url(r#"{"alg":"none"}"#),
            b64::encode_url(claims().to_string())
        );
        assert_eq!(f.v.validate(&t, &f.keys).unwrap_err(), JoseError::AlgNone);
    }

    #[test]
    fn rejects_hs256_before_verification() {
        let f = fx();
        let t = unsigned(r#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#);
        assert_eq!(
            f.v.validate(&t, &f.keys).unwrap_err(),
            JoseError::SymmetricAlgorithm("HS256".into())
        );
    }

    #[test]
    fn rejects_jku_x5u_crit() {
        let f = fx();
        for (extra, want) in [
            (
                r#""jku":"https://evil.example/jwks""#,
                JoseError::ForbiddenHeader("jku".into()),
            ),
            (
                r#""x5u":"https://evil.example/cert""#,
                JoseError::ForbiddenHeader("x5u".into()),
            ),
            (r#""crit":["exp"],"exp":1"#, JoseError::UnknownCrit),
        ] {
            let t = unsigned(&format!(r#"{{"alg":"ES256","kid":"k1",{extra}}}"#));
            assert_eq!(f.v.validate(&t, &f.keys).unwrap_err(), want, "{extra}");
        }
    }

    #[test]
    fn rejects_other_header_members() {
        let f = fx();
        assert_eq!(
            f.run(set(header(), "cty", json!("JWT")), claims())
                .unwrap_err(),
            JoseError::ForbiddenHeader("cty".into())
        );
        let jwk = serde_json::to_value(f.key.public_jwk().to_public()).unwrap();
        assert_eq!(
            f.run(set(header(), "jwk", jwk), claims()).unwrap_err(),
            JoseError::ForbiddenHeader("jwk".into())
        );
    }

    #[test]
    fn rejects_wrong_typ() {
        let f = fx();
        for typ in ["at+jwt", "jwt", "application/jwt", ""] {
            assert_eq!(
                f.run(set(header(), "typ", json!(typ)), claims())
                    .unwrap_err(),
                JoseError::WrongType {
                    expected: "JWT or JOSE",
                    found: Some(typ.into())
                },
                "{typ}"
            );
        }
    }

    #[test]
    fn rejects_eddsa() {
        let mut f = fx();
        let ed = SigningKey::generate(Algorithm::EdDSA)
            .unwrap()
            .with_kid("ed");
        f.keys
            .add_key(TD, Some("ed".into()), ed.verifying_key().clone());
        let t = sign_raw(&json!({"alg": "EdDSA", "kid": "ed"}), &claims(), &ed);
        assert_eq!(
            f.v.validate(&t, &f.keys).unwrap_err(),
            JoseError::AlgorithmNotAllowed {
                alg: Algorithm::EdDSA,
                profile: PROFILE
            }
        );
    }

    #[test]
    fn rejects_missing_or_empty_kid() {
        // The store has one key, so it would answer without a kid: the rule is the profile's.
        let f = fx();
        assert_eq!(
            f.run(unset(header(), "kid"), claims()).unwrap_err(),
            JoseError::MissingKid
        );
        assert_eq!(
            f.run(set(header(), "kid", json!("")), claims())
                .unwrap_err(),
            JoseError::MissingKid
        );
    }

    #[test]
    fn rejects_unknown_kid_and_unknown_trust_domain() {
        let f = fx();
        assert_eq!(
            f.run(set(header(), "kid", json!("k2")), claims())
                .unwrap_err(),
            JoseError::UnknownKey
        );
        let other = set(claims(), "sub", json!("spiffe://other.example/agent"));
        assert_eq!(f.run(header(), other).unwrap_err(), JoseError::UnknownKey);
    }

    #[test]
    fn key_scope_is_the_subjects_trust_domain() {
        // Another trust domain's key, with the same kid, cannot sign for example.org.
        let mut f = fx();
        let evil = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("k1");
        f.keys.add_key(
            "evil.example",
            Some("k1".into()),
            evil.verifying_key().clone(),
        );
        let t = sign_raw(&header(), &claims(), &evil);
        assert_eq!(
            f.v.validate(&t, &f.keys).unwrap_err(),
            JoseError::BadSignature
        );
        let t = sign_raw(
            &header(),
            &set(claims(), "sub", json!("spiffe://evil.example/x")),
            &evil,
        );
        f.v.validate(&t, &f.keys).unwrap();
    }

    #[test]
    fn rejects_trust_domain_outside_allow_list() {
        let mut f = fx();
        f.v =
            f.v.clone()
                .trust_domain(TrustDomain::new("other.example").unwrap());
        assert_eq!(
            f.run(header(), claims()).unwrap_err(),
            JoseError::SubjectRejected("trust domain not accepted")
        );
        f.v = f.v.clone().trust_domain(TrustDomain::new(TD).unwrap());
        f.run(header(), claims()).unwrap();
    }

    #[test]
    fn rejects_wrong_key() {
        let f = fx();
        let other = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("k1");
        let t = sign_raw(&header(), &claims(), &other);
        assert_eq!(
            f.v.validate(&t, &f.keys).unwrap_err(),
            JoseError::BadSignature
        );
    }

    #[test]
    fn rejects_alg_the_key_cannot_verify() {
        let f = fx();
        let t = unsigned(r#"{"alg":"ES384","kid":"k1"}"#);
        assert_eq!(
            f.v.validate(&t, &f.keys).unwrap_err(),
            JoseError::UnknownKey
        );
    }

    #[test]
    fn rejects_tampered_payload() {
        let f = fx();
        let t = sign_raw(&header(), &claims(), &f.key);
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged =
            b64::encode_url(set(claims(), "sub", json!("spiffe://example.org/admin")).to_string());
        parts[1] = &forged;
        assert_eq!(
            f.v.validate(&parts.join("."), &f.keys).unwrap_err(),
            JoseError::BadSignature
        );
    }

    #[test]
    fn rejects_bad_subjects() {
        let f = fx();
        assert_eq!(
            f.run(header(), unset(claims(), "sub")).unwrap_err(),
            JoseError::MissingClaim("sub")
        );
        for bad in [
            json!("https://example.org/agent"),
            json!("spiffe://Example.org/a"),
            json!("spiffe://example.org/a/"),
        ] {
            assert!(
                matches!(
                    f.run(header(), set(claims(), "sub", bad.clone())),
                    Err(JoseError::InvalidClaim { claim: "sub", .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            f.run(header(), set(claims(), "sub", json!(5))),
            Err(JoseError::InvalidClaim { claim: "sub", .. })
        ));
        assert!(matches!(
            f.run(
                header(),
                set(claims(), "sub", json!("spiffe://example.org"))
            ),
            Err(JoseError::SubjectRejected(_))
        ));
    }

    #[test]
    fn rejects_bad_audiences() {
        let f = fx();
        assert_eq!(
            f.run(header(), unset(claims(), "aud")).unwrap_err(),
            JoseError::MissingClaim("aud")
        );
        assert!(matches!(
            f.run(header(), set(claims(), "aud", json!([]))),
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
        assert!(matches!(
            f.run(header(), set(claims(), "aud", json!([AUD, 7]))),
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
        assert_eq!(
            f.run(
                header(),
                set(claims(), "aud", json!(["spiffe://example.org/other"]))
            )
            .unwrap_err(),
            JoseError::AudienceMismatch
        );
        // A second accepted audience works.
        let v = f.v.clone().audience("spiffe://example.org/other");
        let t = sign_raw(
            &header(),
            &set(claims(), "aud", json!("spiffe://example.org/other")),
            &f.key,
        );
        v.validate(&t, &f.keys).unwrap();
    }

    #[test]
    fn single_audience_mode() {
        let f = fx();
        let two = set(claims(), "aud", json!([AUD, "spiffe://example.org/other"]));
        f.run(header(), two.clone()).unwrap();
        let v = f.v.clone().require_single_audience(true);
        let t = sign_raw(&header(), &two, &f.key);
        assert_eq!(
            v.validate(&t, &f.keys).unwrap_err(),
            JoseError::AudienceMismatch
        );
        v.validate(&sign_raw(&header(), &claims(), &f.key), &f.keys)
            .unwrap();
    }

    #[test]
    fn rejects_missing_or_malformed_exp() {
        let f = fx();
        assert_eq!(
            f.run(header(), unset(claims(), "exp")).unwrap_err(),
            JoseError::MissingClaim("exp")
        );
        assert!(matches!(
            f.run(header(), set(claims(), "exp", json!("soon"))),
            Err(JoseError::InvalidClaim { claim: "exp", .. })
        ));
    }

    #[test]
    fn rejects_expired() {
        let f = fx();
        let c = set(claims(), "exp", json!(NOW - DEFAULT_LEEWAY));
        assert_eq!(
            f.run(header(), c).unwrap_err(),
            JoseError::Expired {
                exp: NOW - DEFAULT_LEEWAY,
                now: NOW
            }
        );
        f.run(
            header(),
            set(claims(), "exp", json!(NOW - DEFAULT_LEEWAY + 1)),
        )
        .unwrap();
        // The clock decides: the valid twin expires once time moves on.
        f.clock.advance(300 + DEFAULT_LEEWAY);
        assert!(matches!(
            f.run(header(), claims()),
            Err(JoseError::Expired { .. })
        ));
    }

    #[test]
    fn rejects_future_nbf_and_iat() {
        let f = fx();
        let late = NOW + DEFAULT_LEEWAY + 1;
        assert_eq!(
            f.run(header(), set(claims(), "nbf", json!(late)))
                .unwrap_err(),
            JoseError::NotYetValid {
                nbf: late,
                now: NOW
            }
        );
        f.run(header(), set(claims(), "nbf", json!(late - 1)))
            .unwrap();
        assert_eq!(
            f.run(header(), set(claims(), "iat", json!(late)))
                .unwrap_err(),
            JoseError::IssuedInFuture {
                iat: late,
                now: NOW
            }
        );
        f.run(header(), set(claims(), "iat", json!(late - 1)))
            .unwrap();
    }

    #[test]
    fn max_lifetime() {
        let f = fx();
        let v = f.v.clone().max_lifetime(300).leeway(0);
        v.validate(&sign_raw(&header(), &claims(), &f.key), &f.keys)
            .unwrap();
        let t = sign_raw(&header(), &set(claims(), "exp", json!(NOW + 301)), &f.key);
        assert_eq!(
            v.validate(&t, &f.keys).unwrap_err(),
            JoseError::LifetimeTooLong {
                exp: NOW + 301,
                max: 300
            }
        );
    }

    #[test]
    fn rejects_duplicate_claims() {
        let f = fx();
        let body = format!(
            r#"{{"sub":"{SUB}","aud":"{AUD}","exp":{},"sub":"spiffe://example.org/admin"}}"#,
            NOW + 60
        );
        let t = sign_text(&header().to_string(), &body, &f.key);
        assert_eq!(
            f.v.validate(&t, &f.keys).unwrap_err(),
            JoseError::Malformed("duplicate claim name")
        );
    }

    #[test]
    fn rejects_oversized_tokens() {
        let f = fx();
        let t = sign_raw(&header(), &claims(), &f.key);
        let v = f.v.clone().max_token_bytes(t.len() - 1);
        assert_eq!(
            v.validate(&t, &f.keys).unwrap_err(),
            JoseError::TooLarge(t.len() - 1)
        );
    }
}
