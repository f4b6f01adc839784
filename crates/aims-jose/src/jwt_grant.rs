//! JWTs used as authorization grants (RFC 7523 §2.1 and §3): an assertion from a trusted
//! issuer, naming a user, exchanged for an access token.
//!
//! # Rules
//!
//! | Rule | Error |
//! |---|---|
//! | shared JWS rules ([`crate::jws`]) | [`JoseError::AlgNone`], [`JoseError::SymmetricAlgorithm`], ... |
//! | `typ` absent, `JWT`, or anything but another AIMS profile's type (`at+jwt`, `dpop+jwt`, `wit+jwt`, `wpt+jwt`, `client-authentication+jwt`, `secevent+jwt`, `token-introspection+jwt`) | [`JoseError::WrongType`] |
//! | `alg` in the validator's list | [`JoseError::AlgorithmNotAllowed`] |
//! | `iss` present and one of the trusted issuers, before any key is looked up | [`JoseError::MissingClaim`], [`JoseError::IssuerMismatch`] |
//! | signature with a key of that issuer | [`JoseError::UnknownKey`], [`JoseError::BadSignature`] |
//! | `sub` present and non-empty (the user) | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`] |
//! | `aud` contains this authorization server's issuer identifier or its token endpoint URL (§3 item 3) | [`JoseError::MissingClaim`], [`JoseError::AudienceMismatch`] |
//! | `exp` present, not passed, at most [`Validator::max_lifetime`] ahead | [`JoseError::MissingClaim`], [`JoseError::Expired`], [`JoseError::LifetimeTooLong`] |
//! | `nbf`, `iat` checked when present | [`JoseError::NotYetValid`], [`JoseError::IssuedInFuture`], [`JoseError::TooOld`] |
//! | with a [`ReplayGuard`]: `jti` required and used once per issuer (last check) | [`JoseError::MissingClaim`], [`JoseError::Replayed`] |

use std::sync::Arc;

use aims_core::Clock;
use aims_crypto::Algorithm;
use serde_json::{Map, Value};

use crate::claims::{Audience, take};
use crate::jws::{Jws, MAX_TOKEN_BYTES};
use crate::replay::ReplayGuard;
use crate::time::{self, DEFAULT_LEEWAY};
use crate::{JoseError, KeyResolver};

/// Profile name in errors.
pub const PROFILE: &str = "JWT authorization grant";

/// The `grant_type` of RFC 7523 §2.1.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Default longest lifetime of an assertion (1 hour).
pub const DEFAULT_MAX_LIFETIME: i64 = 3600;

/// `typ` values of other token profiles, refused so that no other token is replayed as
/// a grant.
const OTHER_PROFILE_TYPES: [&str; 11] = [
    "at+jwt",
    "dpop+jwt",
    "wit+jwt",
    "wpt+jwt",
    "client-authentication+jwt",
    "secevent+jwt",
    "token-introspection+jwt",
    crate::attestation::POP_TYP,
    "oauth-client-attestation+jwt",
    "txntoken+jwt",
    "oauth-authz-req+jwt",
];

/// A verified grant assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedJwtGrant {
    /// The trusted issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The audience.
    pub aud: Audience,
    /// Expiry.
    pub exp: i64,
    /// `jti`, if any.
    pub jti: Option<String>,
    /// Other claims (e.g. `scope`, `acr`, `auth_time`), unvalidated.
    pub extra: Map<String, Value>,
}

/// Validates grant assertions for one authorization server.
#[derive(Debug, Clone)]
pub struct Validator {
    clock: Arc<dyn Clock>,
    audiences: Vec<String>,
    issuers: Vec<String>,
    leeway: i64,
    max_lifetime: i64,
    algorithms: Vec<Algorithm>,
    replay: Option<Arc<dyn ReplayGuard>>,
}

impl Validator {
    /// A validator for the server whose issuer identifier and token endpoint are
    /// `audiences`, trusting assertions of `issuers`.
    pub fn new(
        clock: Arc<dyn Clock>,
        audiences: impl IntoIterator<Item = String>,
        issuers: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            clock,
            audiences: audiences.into_iter().collect(),
            issuers: issuers.into_iter().collect(),
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            algorithms: Algorithm::ALL.to_vec(),
            replay: None,
        }
    }

    /// Clock-skew allowance in seconds.
    pub fn leeway(mut self, secs: i64) -> Self {
        self.leeway = secs.max(0);
        self
    }

    /// The longest accepted lifetime.
    pub fn max_lifetime(mut self, secs: i64) -> Self {
        self.max_lifetime = secs.max(0);
        self
    }

    /// Requires a `jti` and records it with `guard`.
    pub fn replay_guard(mut self, guard: Arc<dyn ReplayGuard>) -> Self {
        self.replay = Some(guard);
        self
    }

    /// Validates `token`; keys are looked up under the issuer's identifier.
    pub fn validate(
        &self,
        token: &str,
        keys: &dyn KeyResolver,
    ) -> Result<ValidatedJwtGrant, JoseError> {
        let jws = Jws::decode_with_limit(token, MAX_TOKEN_BYTES)?;
        let h = &jws.header;
        if let Some(typ) = &h.typ
            && OTHER_PROFILE_TYPES.iter().any(|t| h.typ_is(t))
        {
            return Err(JoseError::WrongType {
                expected: "JWT",
                found: Some(typ.clone()),
            });
        }
        h.require_alg(&self.algorithms, PROFILE)?;
        let mut m = take::claims_set(jws.payload())?;
        let iss = take::required(take::non_empty_string(&mut m, "iss")?, "iss")?;
        if !self.issuers.contains(&iss) {
            return Err(JoseError::IssuerMismatch);
        }
        let key = keys.resolve(&iss, h.kid.as_deref(), h.alg)?;
        jws.verify(&key)?;
        let now = self.clock.now();
        let sub = take::required(take::non_empty_string(&mut m, "sub")?, "sub")?;
        let aud = take::required(take::audience(&mut m)?, "aud")?;
        if !aud.contains_any(&self.audiences) {
            return Err(JoseError::AudienceMismatch);
        }
        let exp = take::required(take::numeric_date(&mut m, "exp")?, "exp")?;
        time::check_exp(exp, now, self.leeway)?;
        time::check_max_lifetime(exp, now, self.max_lifetime, self.leeway)?;
        if let Some(nbf) = take::numeric_date(&mut m, "nbf")? {
            time::check_nbf(nbf, now, self.leeway)?;
        }
        if let Some(iat) = take::numeric_date(&mut m, "iat")? {
            time::check_iat_window(iat, now, self.max_lifetime, self.leeway)?;
        }
        let jti = take::non_empty_string(&mut m, "jti")?;
        if let Some(guard) = &self.replay {
            let jti = jti.as_deref().ok_or(JoseError::MissingClaim("jti"))?;
            let key = format!("jwt-grant:{}:{iss}:{jti}", iss.len());
            guard.check_and_record(&key, exp.saturating_add(self.leeway), now)?;
        }
        Ok(ValidatedJwtGrant {
            iss,
            sub,
            aud,
            exp,
            jti,
            extra: m,
        })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::claims::take::sign_raw;
    use crate::keys::StaticKeys;
    use crate::replay::MemoryReplayGuard;
    use aims_core::ManualClock;
    use aims_crypto::SigningKey;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const AS: &str = "https://as.example";
    const IDP: &str = "https://idp.example";

    struct Fx {
        key: SigningKey,
        keys: StaticKeys,
        v: Validator,
    }

    fn fx() -> Fx {
        let key = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("k1");
        let mut keys = StaticKeys::new();
        keys.add_key(IDP, Some("k1".into()), key.verifying_key().clone());
        let v = Validator::new(
            Arc::new(ManualClock::new(NOW)),
            [AS.to_owned(), format!("{AS}/oauth/token")],
            [IDP.to_owned()],
        )
        .replay_guard(Arc::new(MemoryReplayGuard::new(100)));
        Fx { key, keys, v }
    }

    fn header() -> Value {
        json!({"alg": "ES256", "kid": "k1", "typ": "JWT"})
    }

    fn claims() -> Value {
        json!({"iss": IDP, "sub": "alice", "aud": AS, "exp": NOW + 300, "iat": NOW, "jti": "g1", "scope": "api:read"})
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
        fn run(&self, h: Value, c: Value) -> Result<ValidatedJwtGrant, JoseError> {
            self.v.validate(&sign_raw(&h, &c, &self.key), &self.keys)
        }
    }

    #[test]
    fn valid_twins_pass() {
        let f = fx();
        let ok = f.run(header(), claims()).unwrap();
        assert_eq!((ok.iss.as_str(), ok.sub.as_str()), (IDP, "alice"));
        assert_eq!(ok.extra["scope"], "api:read");
        f.run(unset(header(), "typ"), set(claims(), "jti", json!("g2")))
            .unwrap();
        f.run(
            header(),
            set(
                set(claims(), "aud", json!([format!("{AS}/oauth/token")])),
                "jti",
                json!("g3"),
            ),
        )
        .unwrap();
    }

    #[test]
    fn one_negative_test_per_rule() {
        let f = fx();
        let cases: Vec<(&str, Value, Value, JoseError)> = vec![
            (
                "typ of another profile",
                set(header(), "typ", json!("at+jwt")),
                claims(),
                JoseError::WrongType {
                    expected: "JWT",
                    found: Some("at+jwt".into()),
                },
            ),
            (
                "typ of a client attestation PoP",
                set(header(), "typ", json!("oauth-client-attestation-pop+jwt")),
                claims(),
                JoseError::WrongType {
                    expected: "JWT",
                    found: Some("oauth-client-attestation-pop+jwt".into()),
                },
            ),
            (
                "no iss",
                header(),
                unset(claims(), "iss"),
                JoseError::MissingClaim("iss"),
            ),
            (
                "untrusted iss",
                header(),
                set(claims(), "iss", json!("https://evil.example")),
                JoseError::IssuerMismatch,
            ),
            (
                "no sub",
                header(),
                unset(claims(), "sub"),
                JoseError::MissingClaim("sub"),
            ),
            (
                "no aud",
                header(),
                unset(claims(), "aud"),
                JoseError::MissingClaim("aud"),
            ),
            (
                "other aud",
                header(),
                set(claims(), "aud", json!("https://rs.example")),
                JoseError::AudienceMismatch,
            ),
            (
                "no exp",
                header(),
                unset(claims(), "exp"),
                JoseError::MissingClaim("exp"),
            ),
            (
                "no jti with replay guard",
                header(),
                unset(claims(), "jti"),
                JoseError::MissingClaim("jti"),
            ),
        ];
        for (name, h, c, want) in cases {
            assert_eq!(f.run(h, c).unwrap_err(), want, "{name}");
        }
        assert!(matches!(
            f.run(header(), set(claims(), "exp", json!(NOW - 100))),
            Err(JoseError::Expired { .. })
        ));
        assert!(matches!(
            f.run(header(), set(claims(), "exp", json!(NOW + 7200))),
            Err(JoseError::LifetimeTooLong { .. })
        ));
        assert!(matches!(
            f.run(header(), set(claims(), "nbf", json!(NOW + 100))),
            Err(JoseError::NotYetValid { .. })
        ));
        assert!(matches!(
            f.run(header(), set(claims(), "iat", json!(NOW + 100))),
            Err(JoseError::IssuedInFuture { .. })
        ));
        // Another key: bad signature / unknown key.
        let other = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("k1");
        assert_eq!(
            f.v.validate(&sign_raw(&header(), &claims(), &other), &f.keys)
                .unwrap_err(),
            JoseError::BadSignature
        );
        // Replay.
        f.run(header(), set(claims(), "jti", json!("once")))
            .unwrap();
        assert_eq!(
            f.run(header(), set(claims(), "jti", json!("once")))
                .unwrap_err(),
            JoseError::Replayed
        );
    }
}
