//! Attestation-based client authentication with a WIT-SVID
//! (draft-ietf-oauth-spiffe-client-auth `spiffe_wit`, over
//! draft-ietf-oauth-attestation-based-client-auth): the client sends its WIT-SVID in
//! `OAuth-Client-Attestation` and a proof of possession of the WIT's `cnf` key in
//! `OAuth-Client-Attestation-PoP`.
//!
//! The WIT is validated first by [`crate::wit::Validator`] (the caller supplies one; a
//! WIT-SVID profile validator for `spiffe_wit`). Then the PoP:
//!
//! | Rule | Error |
//! |---|---|
//! | shared JWS rules ([`crate::jws`]) | [`JoseError::AlgNone`], ... |
//! | `typ` is `oauth-client-attestation-pop+jwt` | [`JoseError::WrongType`] |
//! | `alg` equals the WIT's `cnf.jwk.alg` | [`JoseError::AlgorithmNotAllowed`] |
//! | signature by the WIT's `cnf` key | [`JoseError::BadSignature`] |
//! | `iss` present and equal to the WIT's `sub` (the client's SPIFFE ID) | [`JoseError::MissingClaim`], [`JoseError::IssuerMismatch`] |
//! | `aud` present and containing the authorization server's issuer identifier | [`JoseError::MissingClaim`], [`JoseError::AudienceMismatch`] |
//! | `iat` present, not in the future, at most [`Validator::max_age`] old | [`JoseError::MissingClaim`], [`JoseError::IssuedInFuture`], [`JoseError::TooOld`] |
//! | `exp`, when present, not passed | [`JoseError::Expired`] |
//! | `jti` present, used once (last check) | [`JoseError::MissingClaim`], [`JoseError::Replayed`] |

use std::sync::Arc;

use aims_core::Clock;

use crate::claims::take;
use crate::jws::{Jws, MAX_TOKEN_BYTES};
use crate::replay::ReplayGuard;
use crate::time::{self, DEFAULT_LEEWAY};
use crate::wit::{self, ValidatedWit};
use crate::{JoseError, KeyResolver};

/// `typ` of the PoP.
pub const POP_TYP: &str = "oauth-client-attestation-pop+jwt";
/// Header carrying the attestation (the WIT-SVID).
pub const ATTESTATION_HEADER: &str = "oauth-client-attestation";
/// Header carrying the PoP.
pub const POP_HEADER: &str = "oauth-client-attestation-pop";
/// Profile name in errors.
pub const PROFILE: &str = "client attestation PoP";
/// Default longest age of a PoP, in seconds.
pub const DEFAULT_MAX_AGE: i64 = 300;

/// A verified attestation: the WIT and the PoP's `jti`.
#[derive(Debug, Clone)]
pub struct ValidatedAttestation {
    /// The client's WIT.
    pub wit: ValidatedWit,
    /// The PoP's `jti`.
    pub pop_jti: String,
}

/// Validates attestation + PoP pairs for one authorization server.
#[derive(Debug, Clone)]
pub struct Validator {
    wit: wit::Validator,
    clock: Arc<dyn Clock>,
    issuer: String,
    replay: Arc<dyn ReplayGuard>,
    leeway: i64,
    max_age: i64,
}

impl Validator {
    /// A validator for the server `issuer`, validating WITs with `wit`.
    pub fn new(
        wit: wit::Validator,
        clock: Arc<dyn Clock>,
        issuer: impl Into<String>,
        replay: Arc<dyn ReplayGuard>,
    ) -> Self {
        Self {
            wit,
            clock,
            issuer: issuer.into(),
            replay,
            leeway: DEFAULT_LEEWAY,
            max_age: DEFAULT_MAX_AGE,
        }
    }

    /// Clock-skew allowance in seconds.
    pub fn leeway(mut self, secs: i64) -> Self {
        self.leeway = secs.max(0);
        self
    }

    /// The oldest accepted PoP, in seconds.
    pub fn max_age(mut self, secs: i64) -> Self {
        self.max_age = secs.max(0);
        self
    }

    /// Validates the attestation `wit_token` (keys from `wit_keys`) and its `pop`.
    pub fn validate(
        &self,
        wit_token: &str,
        pop: &str,
        wit_keys: &dyn KeyResolver,
    ) -> Result<ValidatedAttestation, JoseError> {
        let wit = self.wit.validate(wit_token, wit_keys)?;
        let jws = Jws::decode_with_limit(pop, MAX_TOKEN_BYTES)?;
        let h = &jws.header;
        h.require_typ(POP_TYP)?;
        if h.alg != wit.confirmation_alg() {
            return Err(JoseError::AlgorithmNotAllowed {
                alg: h.alg,
                profile: PROFILE,
            });
        }
        jws.verify(wit.confirmation_key())?;
        let now = self.clock.now();
        let mut m = take::claims_set(jws.payload())?;
        let iss = take::required(take::non_empty_string(&mut m, "iss")?, "iss")?;
        if iss != wit.subject().as_str() {
            return Err(JoseError::IssuerMismatch);
        }
        let aud = take::required(take::audience(&mut m)?, "aud")?;
        if !aud.contains(&self.issuer) {
            return Err(JoseError::AudienceMismatch);
        }
        let iat = take::required(take::numeric_date(&mut m, "iat")?, "iat")?;
        time::check_iat_window(iat, now, self.max_age, self.leeway)?;
        if let Some(exp) = take::numeric_date(&mut m, "exp")? {
            time::check_exp(exp, now, self.leeway)?;
        }
        let jti = take::required(take::non_empty_string(&mut m, "jti")?, "jti")?;
        let key = format!("attestation-pop:{}:{iss}:{jti}", iss.len());
        self.replay.check_and_record(
            &key,
            iat.saturating_add(self.max_age).saturating_add(self.leeway),
            now,
        )?;
        Ok(ValidatedAttestation { wit, pop_jti: jti })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::claims::take::sign_raw;
    use crate::keys::StaticKeys;
    use crate::replay::MemoryReplayGuard;
    use crate::wit::{WitClaims, WitProfile};
    use aims_core::ManualClock;
    use aims_crypto::{Algorithm, Jwks, Signer as _, SigningKey};
    use serde_json::{Value, json};

    const NOW: i64 = 1_700_000_000;
    const AS: &str = "https://as.example";
    const AGENT: &str = "spiffe://example.org/agent/a";

    struct Fx {
        agent_key: SigningKey,
        wit: String,
        keys: StaticKeys,
        v: Validator,
    }

    fn fx() -> Fx {
        let ca = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("wit-1");
        let agent_key = SigningKey::generate(Algorithm::ES256).unwrap();
        let claims = WitClaims::new(
            aims_core::WorkloadId::parse(AGENT).unwrap(),
            agent_key.public_jwk(),
            NOW,
            600,
        )
        .unwrap();
        let wit = wit::create(&claims, &ca).unwrap();
        let mut keys = StaticKeys::new();
        keys.add_jwks(
            "example.org",
            &Jwks {
                keys: vec![ca.public_jwk().clone()],
            },
        );
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
        let v = Validator::new(
            wit::Validator::new(WitProfile::WitSvid, clock.clone()),
            clock,
            AS,
            Arc::new(MemoryReplayGuard::new(100)),
        );
        Fx {
            agent_key,
            wit,
            keys,
            v,
        }
    }

    fn header() -> Value {
        json!({"alg": "ES256", "typ": POP_TYP})
    }

    fn claims(jti: &str) -> Value {
        json!({"iss": AGENT, "aud": AS, "iat": NOW, "jti": jti})
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
        fn run(&self, h: Value, c: Value) -> Result<ValidatedAttestation, JoseError> {
            self.v
                .validate(&self.wit, &sign_raw(&h, &c, &self.agent_key), &self.keys)
        }
    }

    #[test]
    fn valid_twin_then_one_negative_test_per_rule() {
        let f = fx();
        let ok = f.run(header(), claims("p1")).unwrap();
        assert_eq!(ok.wit.subject().as_str(), AGENT);
        let cases: Vec<(&str, Value, Value, JoseError)> = vec![
            (
                "typ",
                set(header(), "typ", json!("JWT")),
                claims("c1"),
                JoseError::WrongType {
                    expected: POP_TYP,
                    found: Some("JWT".into()),
                },
            ),
            (
                "no iss",
                header(),
                unset(claims("c2"), "iss"),
                JoseError::MissingClaim("iss"),
            ),
            (
                "iss not the WIT sub",
                header(),
                set(claims("c3"), "iss", json!("spiffe://example.org/agent/b")),
                JoseError::IssuerMismatch,
            ),
            (
                "no aud",
                header(),
                unset(claims("c4"), "aud"),
                JoseError::MissingClaim("aud"),
            ),
            (
                "aud not the issuer",
                header(),
                set(claims("c5"), "aud", json!("https://as.example/token")),
                JoseError::AudienceMismatch,
            ),
            (
                "no iat",
                header(),
                unset(claims("c6"), "iat"),
                JoseError::MissingClaim("iat"),
            ),
            (
                "no jti",
                header(),
                unset(claims("c7"), "jti"),
                JoseError::MissingClaim("jti"),
            ),
            ("replay", header(), claims("p1"), JoseError::Replayed),
        ];
        for (name, h, c, want) in cases {
            assert_eq!(f.run(h, c).unwrap_err(), want, "{name}");
        }
        assert!(matches!(
            f.run(header(), set(claims("c8"), "iat", json!(NOW + 100))),
            Err(JoseError::IssuedInFuture { .. })
        ));
        assert!(matches!(
            f.run(header(), set(claims("c9"), "iat", json!(NOW - 1000))),
            Err(JoseError::TooOld { .. })
        ));
        assert!(matches!(
            f.run(header(), set(claims("c10"), "exp", json!(NOW - 100))),
            Err(JoseError::Expired { .. })
        ));
        assert!(matches!(
            f.run(set(header(), "alg", json!("ES384")), claims("c11")),
            Err(JoseError::AlgorithmNotAllowed { .. })
        ));
        // Signed by another key than the WIT's cnf key.
        let other = SigningKey::generate(Algorithm::ES256).unwrap();
        assert_eq!(
            f.v.validate(
                &f.wit,
                &sign_raw(&header(), &claims("c12"), &other),
                &f.keys
            )
            .unwrap_err(),
            JoseError::BadSignature
        );
        // A WIT the trust domain did not sign fails first.
        assert!(
            f.v.validate(
                "a.b.c",
                &sign_raw(&header(), &claims("c13"), &f.agent_key),
                &f.keys
            )
            .is_err()
        );
    }
}
