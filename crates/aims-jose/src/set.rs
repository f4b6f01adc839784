//! Security Event Tokens (RFC 8417) as profiled by the OpenID Shared Signals Framework
//! 1.0 (SSF) for CAEP and RISC events.
//!
//! # Rules
//!
//! | Rule | Error |
//! |---|---|
//! | shared JWS rules ([`crate::jws`]) | [`JoseError::AlgNone`], [`JoseError::SymmetricAlgorithm`], [`JoseError::ForbiddenHeader`], [`JoseError::UnknownCrit`] |
//! | `typ` is `secevent+jwt` (RFC 8417 section 2.3; RFC 7515 comparison) | [`JoseError::WrongType`] |
//! | `alg` in [`ALLOWED_ALGORITHMS`] | [`JoseError::AlgorithmNotAllowed`] |
//! | `kid`, when [`Validator::require_kid`] is set | [`JoseError::MissingKid`] |
//! | key looked up under the configured issuer (the transmitter) | [`JoseError::UnknownKey`] |
//! | signature | [`JoseError::BadSignature`] |
//! | no `sub` (SSF uses `sub_id`) and no `exp` | [`JoseError::ForbiddenClaim`] |
//! | `iss` present and equal to the configured issuer | [`JoseError::MissingClaim`], [`JoseError::IssuerMismatch`] |
//! | `iat` present, not in the future, optionally not older than a maximum age | [`JoseError::MissingClaim`], [`JoseError::IssuedInFuture`], [`JoseError::TooOld`] |
//! | `jti` present and non-empty | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`] |
//! | `events` present: an object of exactly one event (unless [`Validator::allow_multiple_events`]), each a JSON object under a non-empty event type | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`] |
//! | `aud` present and containing an accepted audience, when the validator has one | [`JoseError::MissingClaim`], [`JoseError::AudienceMismatch`] |
//! | `nbf` checked when present | [`JoseError::NotYetValid`] |
//! | `txn` a string, `toe` a NumericDate, `sub_id` an object with a string `format` (RFC 9493) | [`JoseError::InvalidClaim`] |
//!
//! # Decisions
//!
//! - **One event per SET.** RFC 8417 allows several events in one SET; SSF 1.0 and the
//!   CAEP interoperability profile require exactly one, which is the default here.
//! - **`sub` and `exp` are refused.** SSF forbids both: a SET is a statement that
//!   something happened, not a credential (RFC 8417 section 4.2 warns against SETs
//!   being mistaken for ID or access tokens), and its subject lives in `sub_id`.
//! - **Audience.** A receiver configured with an audience (its stream's `aud`) requires
//!   it; one configured without accepts any `aud` (but still checks its shape).

#![deny(clippy::indexing_slicing, clippy::string_slice)]

use std::sync::Arc;

use aims_core::Clock;
use aims_crypto::{Algorithm, Signer, random_token};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::JoseError;
use crate::claims::{Audience, take};
use crate::jws::{HeaderSpec, Jws, MAX_TOKEN_BYTES, sign};
use crate::keys::KeyResolver;
use crate::time::{self, DEFAULT_LEEWAY};

/// The profile name used in [`JoseError::AlgorithmNotAllowed`].
pub const PROFILE: &str = "Security Event Token";

/// The `typ` of a SET (RFC 8417 section 2.3).
pub const TYP: &str = "secevent+jwt";

/// The accepted algorithms (the CAEP interoperability profile requires RS256).
pub const ALLOWED_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::RS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
];

/// Claims a SET must not carry.
pub const FORBIDDEN_CLAIMS: [&str; 2] = ["sub", "exp"];

const OWN_CLAIMS: [&str; 10] = [
    "iss", "iat", "jti", "aud", "events", "txn", "toe", "sub_id", "sub", "exp",
];

/// A subject identifier (RFC 9493): `format` plus the format's members, such as
/// `{"format": "email", "email": "user@example.com"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectId {
    /// The identifier format (`email`, `iss_sub`, `opaque`, `complex`, ...).
    pub format: String,
    /// The format's members.
    #[serde(flatten)]
    pub members: Map<String, Value>,
}

impl SubjectId {
    fn from_value(v: Value) -> Result<Self, JoseError> {
        let err = JoseError::InvalidClaim {
            claim: "sub_id",
            reason: "must be an object with a string `format`",
        };
        let Value::Object(mut o) = v else {
            return Err(err);
        };
        match o.remove("format") {
            Some(Value::String(format)) if !format.is_empty() => Ok(Self { format, members: o }),
            _ => Err(err),
        }
    }
}

/// The claims of a Security Event Token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetClaims {
    /// The transmitter's issuer identifier.
    pub iss: String,
    /// Issued-at time.
    pub iat: i64,
    /// Token id (receivers acknowledge SETs by it, RFC 8936).
    pub jti: String,
    /// The receiver(s), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Event type URI to event object; SSF: exactly one.
    pub events: Map<String, Value>,
    /// Transaction id linking related SETs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
    /// Time of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toe: Option<i64>,
    /// The subject of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<SubjectId>,
    /// Every other claim, unchanged (never `sub` or `exp`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SetClaims {
    /// A SET from `iss` issued at `iat` carrying one event of type `event_type`, with a
    /// random 128-bit `jti`.
    pub fn new(
        iss: impl Into<String>,
        iat: i64,
        event_type: impl Into<String>,
        event: Map<String, Value>,
    ) -> Result<Self, JoseError> {
        let mut events = Map::new();
        events.insert(event_type.into(), Value::Object(event));
        Ok(Self {
            iss: iss.into(),
            iat,
            jti: random_token().map_err(JoseError::Internal)?,
            aud: None,
            events,
            txn: None,
            toe: None,
            sub_id: None,
            extra: Map::new(),
        })
    }

    /// The event when there is exactly one: its type and its object.
    pub fn event(&self) -> Option<(&str, &Map<String, Value>)> {
        let mut it = self.events.iter();
        match (it.next(), it.next()) {
            (Some((k, Value::Object(o))), None) => Some((k.as_str(), o)),
            _ => None,
        }
    }
}

fn check_events(events: &Map<String, Value>, allow_multiple: bool) -> Result<(), JoseError> {
    let err = |reason| JoseError::InvalidClaim {
        claim: "events",
        reason,
    };
    if events.is_empty() {
        return Err(err("must contain an event"));
    }
    if events.len() > 1 && !allow_multiple {
        return Err(err("must contain exactly one event (SSF)"));
    }
    if events.iter().any(|(k, v)| k.is_empty() || !v.is_object()) {
        return Err(err(
            "each event must be a JSON object under a non-empty event type",
        ));
    }
    Ok(())
}

/// Signs a SET with `typ: secevent+jwt` and the signer's `kid`.
///
/// The signer's algorithm must be in [`ALLOWED_ALGORITHMS`] and its `kid` non-empty;
/// `events` must hold exactly one event object; `extra` must hold neither `sub` nor
/// `exp` ([`JoseError::ForbiddenClaim`]) nor repeat a claim that has its own field.
pub fn create(claims: &SetClaims, signer: &dyn Signer) -> Result<String, JoseError> {
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
    if let Some(name) = FORBIDDEN_CLAIMS
        .into_iter()
        .find(|n| claims.extra.contains_key(*n))
    {
        return Err(JoseError::ForbiddenClaim(name));
    }
    check_events(&claims.events, false)?;
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

/// A SET that passed every check of its [`Validator`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedSet {
    /// The claims.
    pub claims: SetClaims,
    /// The algorithm it was signed with.
    pub alg: Algorithm,
    /// The `kid` of the header, if any.
    pub kid: Option<String>,
}

/// Validates SETs from one transmitter (see the [module rules](self)).
#[derive(Debug, Clone)]
pub struct Validator {
    clock: Arc<dyn Clock>,
    leeway: i64,
    issuer: String,
    audiences: Vec<String>,
    max_age: Option<i64>,
    allow_multiple: bool,
    require_kid: bool,
    max_token_bytes: usize,
}

impl Validator {
    /// A validator for SETs of the transmitter `issuer`, checking no audience.
    pub fn new(clock: Arc<dyn Clock>, issuer: impl Into<String>) -> Self {
        Self {
            clock,
            leeway: DEFAULT_LEEWAY,
            issuer: issuer.into(),
            audiences: Vec::new(),
            max_age: None,
            allow_multiple: false,
            require_kid: false,
            max_token_bytes: MAX_TOKEN_BYTES,
        }
    }

    /// Requires `aud` to contain `audience` or another audience given this way.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock-skew allowance in seconds (negative values count as zero).
    pub fn leeway(mut self, secs: i64) -> Self {
        self.leeway = secs.max(0);
        self
    }

    /// Refuses SETs issued more than `secs` seconds ago.
    pub fn max_age(mut self, secs: i64) -> Self {
        self.max_age = Some(secs);
        self
    }

    /// Accepts several events in one SET (plain RFC 8417, not SSF).
    pub fn allow_multiple_events(mut self, yes: bool) -> Self {
        self.allow_multiple = yes;
        self
    }

    /// Requires a `kid` header.
    pub fn require_kid(mut self, yes: bool) -> Self {
        self.require_kid = yes;
        self
    }

    /// Refuses tokens longer than `bytes` (default [`MAX_TOKEN_BYTES`]).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Validates `token`, taking the key from `keys` under the configured issuer.
    pub fn validate(&self, token: &str, keys: &dyn KeyResolver) -> Result<ValidatedSet, JoseError> {
        let jws = Jws::decode_with_limit(token, self.max_token_bytes)?;
        let h = &jws.header;
        h.require_typ(TYP)?;
        h.require_alg(&ALLOWED_ALGORITHMS, PROFILE)?;
        if self.require_kid && h.kid.is_none() {
            return Err(JoseError::MissingKid);
        }
        let key = keys.resolve(&self.issuer, h.kid.as_deref(), h.alg)?;
        jws.verify(&key)?;

        let now = self.clock.now();
        let mut m = take::claims_set(jws.payload())?;
        if let Some(name) = FORBIDDEN_CLAIMS.into_iter().find(|n| m.contains_key(*n)) {
            return Err(JoseError::ForbiddenClaim(name));
        }
        let iss = take::required(take::string(&mut m, "iss")?, "iss")?;
        if iss != self.issuer {
            return Err(JoseError::IssuerMismatch);
        }
        let iat = take::required(take::numeric_date(&mut m, "iat")?, "iat")?;
        time::check_iat_window(iat, now, self.max_age.unwrap_or(i64::MAX), self.leeway)?;
        let jti = take::required(take::non_empty_string(&mut m, "jti")?, "jti")?;
        let events = take::required(take::object(&mut m, "events")?, "events")?;
        check_events(&events, self.allow_multiple)?;
        let aud = take::audience(&mut m)?;
        if !self.audiences.is_empty() {
            let aud = aud.as_ref().ok_or(JoseError::MissingClaim("aud"))?;
            if !aud.contains_any(&self.audiences) {
                return Err(JoseError::AudienceMismatch);
            }
        }
        if let Some(nbf) = take::numeric_date(&mut m, "nbf")? {
            time::check_nbf(nbf, now, self.leeway)?;
            // Not a field of its own: keep it with the other claims.
            m.insert("nbf".into(), Value::from(nbf));
        }
        let txn = take::string(&mut m, "txn")?;
        let toe = take::numeric_date(&mut m, "toe")?;
        let sub_id = m.remove("sub_id").map(SubjectId::from_value).transpose()?;
        Ok(ValidatedSet {
            claims: SetClaims {
                iss,
                iat,
                jti,
                aud,
                events,
                txn,
                toe,
                sub_id,
                extra: m,
            },
            alg: h.alg,
            kid: h.kid.clone(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::claims::take::sign_raw;
    use crate::keys::StaticKeys;
    use aims_core::ManualClock;
    use aims_crypto::{SigningKey, b64};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://ssf.transmitter.example";
    const AUD: &str = "https://receiver.example/stream/1";
    const REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    const CREDENTIAL: &str =
        "https://schemas.openid.net/secevent/caep/event-type/credential-change";

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
        keys.add_key(ISS, Some("k1".into()), key.verifying_key().clone());
        let v = Validator::new(Arc::new(ManualClock::new(NOW)), ISS).audience(AUD);
        Fx { key, keys, v }
    }

    fn header() -> Value {
        json!({"alg": "ES256", "kid": "k1", "typ": TYP})
    }

    fn claims() -> Value {
        json!({
            "iss": ISS, "iat": NOW, "jti": "s1", "aud": AUD, "txn": "tx-9", "toe": NOW - 10,
            "sub_id": {"format": "email", "email": "user@example.com"},
            "events": {REVOKED: {"initiating_entity": "policy", "reason_admin": {"en": "Policy violation"}}},
        })
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
        fn run(&self, h: Value, c: Value) -> Result<ValidatedSet, JoseError> {
            self.v.validate(&sign_raw(&h, &c, &self.key), &self.keys)
        }
    }

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
        let (ty, ev) = ok.claims.event().unwrap();
        assert_eq!(ty, REVOKED);
        assert_eq!(ev["initiating_entity"], json!("policy"));
        let sub = ok.claims.sub_id.as_ref().unwrap();
        assert_eq!(
            (sub.format.as_str(), &sub.members["email"]),
            ("email", &json!("user@example.com"))
        );
        assert_eq!(
            (ok.claims.txn.as_deref(), ok.claims.toe),
            (Some("tx-9"), Some(NOW - 10))
        );
        // `aud`, `txn`, `toe`, `sub_id` are optional for a receiver without an audience.
        let open = Validator::new(Arc::new(ManualClock::new(NOW)), ISS);
        let c = ["aud", "txn", "toe", "sub_id"]
            .into_iter()
            .fold(claims(), unset);
        open.validate(&sign_raw(&header(), &c, &f.key), &f.keys)
            .unwrap();
        f.run(
            set(header(), "typ", json!("application/secevent+jwt")),
            claims(),
        )
        .unwrap();
    }

    #[test]
    fn create_then_validate() {
        let f = fx();
        let mut c = SetClaims::new(ISS, NOW, CREDENTIAL, Map::new()).unwrap();
        c.aud = Some(Audience::One(AUD.into()));
        c.sub_id = Some(SubjectId::from_value(json!({"format": "opaque", "id": "u-1"})).unwrap());
        let t = create(&c, &f.key).unwrap();
        let jws = Jws::decode(&t).unwrap();
        assert_eq!(
            (jws.header.typ.as_deref(), jws.header.kid.as_deref()),
            (Some(TYP), Some("k1"))
        );
        assert_eq!(f.v.validate(&t, &f.keys).unwrap().claims, c);
    }

    #[test]
    fn create_refuses_bad_input() {
        let f = fx();
        let ok = SetClaims::new(ISS, NOW, REVOKED, Map::new()).unwrap();
        for name in FORBIDDEN_CLAIMS {
            let mut c = ok.clone();
            c.extra.insert(name.into(), json!(1));
            assert_eq!(
                create(&c, &f.key).unwrap_err(),
                JoseError::ForbiddenClaim(name)
            );
        }
        let mut two = ok.clone();
        two.events.insert(CREDENTIAL.into(), json!({}));
        assert!(matches!(
            create(&two, &f.key),
            Err(JoseError::InvalidClaim {
                claim: "events",
                ..
            })
        ));
        let mut shadow = ok.clone();
        shadow.extra.insert("txn".into(), json!("t"));
        assert!(matches!(
            create(&shadow, &f.key),
            Err(JoseError::InvalidClaim { claim: "extra", .. })
        ));
        let no_kid = SigningKey::generate(Algorithm::ES256).unwrap().with_kid("");
        assert_eq!(create(&ok, &no_kid).unwrap_err(), JoseError::MissingKid);
    }

    #[test]
    fn rejects_wrong_or_missing_typ() {
        let f = fx();
        for typ in ["JWT", "at+jwt", "secevent"] {
            assert_eq!(
                f.run(set(header(), "typ", json!(typ)), claims())
                    .unwrap_err(),
                JoseError::WrongType {
                    expected: TYP,
                    found: Some(typ.into())
                }
            );
        }
        assert_eq!(
            f.run(unset(header(), "typ"), claims()).unwrap_err(),
            JoseError::WrongType {
                expected: TYP,
                found: None
            }
        );
    }

    #[test]
    fn rejects_alg_none_hs256_jku_x5u_crit() {
        let f = fx();
        let none = format!(
            "{}.{}.",
            b64::encode_url(r#"{"alg":"none","typ":"secevent+jwt"}"#),
            b64::encode_url(claims().to_string())
        );
        assert_eq!(
            f.v.validate(&none, &f.keys).unwrap_err(),
            JoseError::AlgNone
        );
        for (h, want) in [
            (
                r#"{"alg":"HS256","typ":"secevent+jwt"}"#,
                JoseError::SymmetricAlgorithm("HS256".into()),
            ),
            (
                r#"{"alg":"ES256","typ":"secevent+jwt","jku":"https://x"}"#,
                JoseError::ForbiddenHeader("jku".into()),
            ),
            (
                r#"{"alg":"ES256","typ":"secevent+jwt","x5u":"https://x"}"#,
                JoseError::ForbiddenHeader("x5u".into()),
            ),
            (
                r#"{"alg":"ES256","typ":"secevent+jwt","crit":["x"]}"#,
                JoseError::UnknownCrit,
            ),
        ] {
            assert_eq!(
                f.v.validate(&unsigned(h), &f.keys).unwrap_err(),
                want,
                "{h}"
            );
        }
    }

    #[test]
    fn rejects_algorithms_outside_the_profile() {
        let f = fx();
        for alg in [Algorithm::ES512, Algorithm::RS512, Algorithm::PS384] {
            let t = unsigned(&format!(
                r#"{{"alg":"{alg}","typ":"secevent+jwt","kid":"k1"}}"#
            ));
            assert_eq!(
                f.v.validate(&t, &f.keys).unwrap_err(),
                JoseError::AlgorithmNotAllowed {
                    alg,
                    profile: PROFILE
                }
            );
        }
    }

    #[test]
    fn kid_rules() {
        let mut f = fx();
        f.run(unset(header(), "kid"), claims()).unwrap();
        let strict = f.v.clone().require_kid(true);
        assert_eq!(
            strict
                .validate(
                    &sign_raw(&unset(header(), "kid"), &claims(), &f.key),
                    &f.keys
                )
                .unwrap_err(),
            JoseError::MissingKid
        );
        assert_eq!(
            f.run(set(header(), "kid", json!("k2")), claims())
                .unwrap_err(),
            JoseError::UnknownKey
        );
        let k2 = SigningKey::generate(Algorithm::ES256).unwrap();
        f.keys
            .add_key(ISS, Some("k2".into()), k2.verifying_key().clone());
        assert_eq!(
            f.run(unset(header(), "kid"), claims()).unwrap_err(),
            JoseError::MissingKid
        );
    }

    #[test]
    fn rejects_wrong_key_and_tampering() {
        let f = fx();
        let other = SigningKey::generate(Algorithm::ES256).unwrap();
        assert_eq!(
            f.v.validate(&sign_raw(&header(), &claims(), &other), &f.keys)
                .unwrap_err(),
            JoseError::BadSignature
        );
        let t = sign_raw(&header(), &claims(), &f.key);
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = b64::encode_url(set(claims(), "events", json!({CREDENTIAL: {}})).to_string());
        parts[1] = &forged;
        assert_eq!(
            f.v.validate(&parts.join("."), &f.keys).unwrap_err(),
            JoseError::BadSignature
        );
    }

    #[test]
    fn rejects_each_missing_required_claim() {
        let f = fx();
        for name in ["iss", "iat", "jti", "events", "aud"] {
            assert_eq!(
                f.run(header(), unset(claims(), name)).unwrap_err(),
                JoseError::MissingClaim(name),
                "{name}"
            );
        }
        assert!(matches!(
            f.run(header(), set(claims(), "jti", json!(""))),
            Err(JoseError::InvalidClaim { claim: "jti", .. })
        ));
    }

    #[test]
    fn rejects_sub_and_exp() {
        let f = fx();
        assert_eq!(
            f.run(header(), set(claims(), "sub", json!("user")))
                .unwrap_err(),
            JoseError::ForbiddenClaim("sub")
        );
        assert_eq!(
            f.run(header(), set(claims(), "exp", json!(NOW + 60)))
                .unwrap_err(),
            JoseError::ForbiddenClaim("exp")
        );
    }

    #[test]
    fn rejects_issuer_and_audience_mismatch() {
        let f = fx();
        assert_eq!(
            f.run(
                header(),
                set(claims(), "iss", json!("https://evil.example"))
            )
            .unwrap_err(),
            JoseError::IssuerMismatch
        );
        assert_eq!(
            f.run(
                header(),
                set(claims(), "aud", json!(["https://other.example"]))
            )
            .unwrap_err(),
            JoseError::AudienceMismatch
        );
        assert!(matches!(
            f.run(header(), set(claims(), "aud", json!(3))),
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
    }

    #[test]
    fn events_shape() {
        let f = fx();
        for bad in [
            json!({}),
            json!({REVOKED: {}, CREDENTIAL: {}}),
            json!({REVOKED: "revoked"}),
            json!({"": {}}),
            json!([{REVOKED: {}}]),
        ] {
            assert!(
                matches!(
                    f.run(header(), set(claims(), "events", bad.clone())),
                    Err(JoseError::InvalidClaim {
                        claim: "events",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let v = f.v.clone().allow_multiple_events(true);
        let two = sign_raw(
            &header(),
            &set(claims(), "events", json!({REVOKED: {}, CREDENTIAL: {}})),
            &f.key,
        );
        let ok = v.validate(&two, &f.keys).unwrap();
        assert_eq!(ok.claims.events.len(), 2);
        assert!(ok.claims.event().is_none());
    }

    #[test]
    fn time_windows() {
        let f = fx();
        let late = NOW + DEFAULT_LEEWAY + 1;
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
        let v = f.v.clone().max_age(600).leeway(0);
        let old = sign_raw(&header(), &set(claims(), "iat", json!(NOW - 601)), &f.key);
        assert_eq!(
            v.validate(&old, &f.keys).unwrap_err(),
            JoseError::TooOld {
                iat: NOW - 601,
                now: NOW
            }
        );
        // Without a maximum age an old SET (e.g. delivered late by polling) is accepted.
        f.v.validate(&old, &f.keys).unwrap();
        assert_eq!(
            f.run(header(), set(claims(), "nbf", json!(late)))
                .unwrap_err(),
            JoseError::NotYetValid {
                nbf: late,
                now: NOW
            }
        );
        let ok = f.run(header(), set(claims(), "nbf", json!(NOW))).unwrap();
        assert_eq!(ok.claims.extra.get("nbf"), Some(&json!(NOW)));
    }

    #[test]
    fn optional_claim_shapes() {
        let f = fx();
        for (name, bad) in [
            ("txn", json!(1)),
            ("toe", json!("now")),
            ("sub_id", json!("user@example.com")),
            ("sub_id", json!({"email": "user@example.com"})),
            ("sub_id", json!({"format": 1})),
        ] {
            assert!(
                matches!(f.run(header(), set(claims(), name, bad.clone())), Err(JoseError::InvalidClaim { claim, .. }) if claim == name),
                "{name} {bad}"
            );
        }
    }
}
