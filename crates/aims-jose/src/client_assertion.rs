//! JWT client assertions: `private_key_jwt` client authentication (RFC 7523 section 3,
//! RFC 7521), as amended by draft-ietf-oauth-rfc7523bis (audience = the authorization
//! server's issuer identifier, alone).
//!
//! # Rules
//!
//! | Rule | Error |
//! |---|---|
//! | shared JWS rules ([`crate::jws`]) | [`JoseError::AlgNone`], [`JoseError::SymmetricAlgorithm`], [`JoseError::ForbiddenHeader`], [`JoseError::UnknownCrit`] |
//! | `typ` absent, `JWT` or `client-authentication+jwt` (RFC 7515 comparison); only the last with [`Validator::require_explicit_typ`] | [`JoseError::WrongType`] |
//! | `alg` in the validator's list (default [`ALLOWED_ALGORITHMS`]: every asymmetric algorithm) | [`JoseError::AlgorithmNotAllowed`] |
//! | `kid`, when [`Validator::require_kid`] is set | [`JoseError::MissingKid`] |
//! | `iss` present; the key is looked up under the client id (the caller's `client_id` parameter if given, else `iss`) | [`JoseError::MissingClaim`], [`JoseError::UnknownKey`] |
//! | signature | [`JoseError::BadSignature`] |
//! | `iss` equals the caller's `client_id` parameter, if given | [`JoseError::IssuerMismatch`] |
//! | `sub` present and equal to `iss` | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`] |
//! | `aud` present and exactly the issuer identifier: a string, or an array holding only it | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`], [`JoseError::AudienceMismatch`] |
//! | `exp` present, not passed, at most [`Validator::max_lifetime`] ahead (default 300 s) | [`JoseError::MissingClaim`], [`JoseError::Expired`], [`JoseError::LifetimeTooLong`] |
//! | `jti` present and non-empty | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`] |
//! | `iat`, when present, not in the future and not older than the maximum lifetime | [`JoseError::IssuedInFuture`], [`JoseError::TooOld`] |
//! | `nbf` checked when present | [`JoseError::NotYetValid`] |
//! | `jti` not used before by this client, when a [`ReplayGuard`] is configured (last check) | [`JoseError::Replayed`], [`JoseError::ReplayCacheFull`] |
//!
//! # Decisions
//!
//! - **Audience.** rfc7523bis: the authorization server MUST reject any assertion that
//!   does not carry its issuer identifier as the sole audience value. The token
//!   endpoint URL, the PAR endpoint URL, or an array with a second value are refused
//!   ([`JoseError::AudienceMismatch`]). Comparison is exact (RFC 3986 simple string
//!   comparison), so a trailing `/` matters.
//! - **`typ`.** rfc7523bis defines `client-authentication+jwt` for explicit typing but
//!   existing clients send no `typ` or `JWT`; all three are accepted by default and any
//!   other value (`at+jwt`, `dpop+jwt`, ...) is refused, which stops a token of another
//!   profile from being replayed as a client assertion. A deployment whose clients all
//!   type explicitly turns on [`Validator::require_explicit_typ`]. AIMS writes
//!   `client-authentication+jwt`.
//! - **Single use.** `jti` is always required and exposed; with a [`ReplayGuard`] the
//!   validator records `(iss, jti)` until `exp` plus leeway, as its very last step, so
//!   an assertion failing any other rule never takes a slot.
//! - **SPIFFE.** A JWT-SVID used as a client assertion ([`SPIFFE_ASSERTION_TYPE`]) is
//!   validated by [`crate::jwt_svid::Validator`] with the issuer as audience and
//!   [`crate::jwt_svid::Validator::require_single_audience`], not by this module.

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
use crate::replay::ReplayGuard;
use crate::time::{self, DEFAULT_LEEWAY};

/// The profile name used in [`JoseError::AlgorithmNotAllowed`].
pub const PROFILE: &str = "client assertion";

/// The explicit `typ` of rfc7523bis section 4.
pub const TYP: &str = "client-authentication+jwt";

/// `client_assertion_type` for a JWT client assertion (RFC 7523 section 2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `client_assertion_type` for a JWT-SVID (draft-ietf-oauth-spiffe-client-auth).
pub const SPIFFE_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";

/// The default algorithm list: every algorithm AIMS knows (all asymmetric).
pub const ALLOWED_ALGORITHMS: [Algorithm; 10] = Algorithm::ALL;

/// The default maximum lifetime of an assertion, in seconds.
pub const DEFAULT_MAX_LIFETIME: i64 = 300;

const OWN_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "jti", "iat", "nbf"];

/// The claims of a client assertion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientAssertionClaims {
    /// The client id.
    pub iss: String,
    /// The client id again (RFC 7523 section 3 item 2).
    pub sub: String,
    /// The authorization server's issuer identifier.
    pub aud: Audience,
    /// Expiration time.
    pub exp: i64,
    /// Token id, for single use.
    pub jti: String,
    /// Issued-at time, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not-before time, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Every other claim, unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ClientAssertionClaims {
    /// An assertion by `client_id` for the authorization server `issuer`, issued at
    /// `iat` for `lifetime` seconds, with a random 128-bit `jti`.
    pub fn new(
        client_id: impl Into<String>,
        issuer: impl Into<String>,
        iat: i64,
        lifetime: i64,
    ) -> Result<Self, JoseError> {
        let client_id = client_id.into();
        Ok(Self {
            iss: client_id.clone(),
            sub: client_id,
            aud: Audience::One(issuer.into()),
            exp: iat.saturating_add(lifetime),
            jti: random_token().map_err(JoseError::Internal)?,
            iat: Some(iat),
            nbf: None,
            extra: Map::new(),
        })
    }
}

/// Signs a client assertion with `typ: client-authentication+jwt` and the signer's `kid`.
///
/// `iss` must equal `sub`, `aud` must hold exactly one value, `jti` must be non-empty,
/// the signer's `kid` non-empty, and `extra` must not repeat a claim that has its own
/// field.
pub fn create(claims: &ClientAssertionClaims, signer: &dyn Signer) -> Result<String, JoseError> {
    if signer.kid().is_empty() {
        return Err(JoseError::MissingKid);
    }
    if claims.iss != claims.sub {
        return Err(JoseError::InvalidClaim {
            claim: "sub",
            reason: "must equal iss (the client id)",
        });
    }
    if claims.aud.len() != 1 {
        return Err(JoseError::InvalidClaim {
            claim: "aud",
            reason: "must be the issuer identifier alone",
        });
    }
    if claims.jti.is_empty() {
        return Err(JoseError::InvalidClaim {
            claim: "jti",
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

/// A client assertion that passed every check of its [`Validator`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedClientAssertion {
    /// The claims.
    pub claims: ClientAssertionClaims,
    /// The algorithm it was signed with.
    pub alg: Algorithm,
    /// The `kid` of the header, if any.
    pub kid: Option<String>,
}

impl ValidatedClientAssertion {
    /// The authenticated client id.
    pub fn client_id(&self) -> &str {
        &self.claims.iss
    }

    /// The `jti`, for callers enforcing single use themselves.
    pub fn jti(&self) -> &str {
        &self.claims.jti
    }
}

/// Validates client assertions at one authorization server (see the
/// [module rules](self)).
#[derive(Debug, Clone)]
pub struct Validator {
    clock: Arc<dyn Clock>,
    leeway: i64,
    issuer: String,
    max_lifetime: i64,
    algorithms: Vec<Algorithm>,
    explicit_typ: bool,
    require_kid: bool,
    replay: Option<Arc<dyn ReplayGuard>>,
    max_token_bytes: usize,
}

impl Validator {
    /// A validator for the authorization server whose issuer identifier is `issuer`.
    pub fn new(clock: Arc<dyn Clock>, issuer: impl Into<String>) -> Self {
        Self {
            clock,
            leeway: DEFAULT_LEEWAY,
            issuer: issuer.into(),
            max_lifetime: DEFAULT_MAX_LIFETIME,
            algorithms: ALLOWED_ALGORITHMS.to_vec(),
            explicit_typ: false,
            require_kid: false,
            replay: None,
            max_token_bytes: MAX_TOKEN_BYTES,
        }
    }

    /// Clock-skew allowance in seconds (negative values count as zero).
    pub fn leeway(mut self, secs: i64) -> Self {
        self.leeway = secs.max(0);
        self
    }

    /// The longest accepted lifetime: `exp` at most this far ahead, `iat` at most this
    /// far back (default [`DEFAULT_MAX_LIFETIME`]).
    pub fn max_lifetime(mut self, secs: i64) -> Self {
        self.max_lifetime = secs.max(0);
        self
    }

    /// Accepts only `algs` (e.g. the AS metadata's
    /// `token_endpoint_auth_signing_alg_values_supported`).
    pub fn algorithms(mut self, algs: &[Algorithm]) -> Self {
        self.algorithms = algs.to_vec();
        self
    }

    /// Requires `typ: client-authentication+jwt`.
    pub fn require_explicit_typ(mut self, yes: bool) -> Self {
        self.explicit_typ = yes;
        self
    }

    /// Requires a `kid` header.
    pub fn require_kid(mut self, yes: bool) -> Self {
        self.require_kid = yes;
        self
    }

    /// Enforces single use of `(iss, jti)` with `guard`.
    pub fn replay_guard(mut self, guard: Arc<dyn ReplayGuard>) -> Self {
        self.replay = Some(guard);
        self
    }

    /// Refuses tokens longer than `bytes` (default [`MAX_TOKEN_BYTES`]).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Validates `token` when the request carries no `client_id` parameter: the key is
    /// looked up under the (unverified) `iss`, which the signature then authenticates.
    pub fn validate(
        &self,
        token: &str,
        keys: &dyn KeyResolver,
    ) -> Result<ValidatedClientAssertion, JoseError> {
        self.run(token, None, keys)
    }

    /// Validates `token` for the client named by the request's `client_id` parameter:
    /// the key is looked up under `client_id`, and `iss` must equal it.
    pub fn validate_for_client(
        &self,
        token: &str,
        client_id: &str,
        keys: &dyn KeyResolver,
    ) -> Result<ValidatedClientAssertion, JoseError> {
        self.run(token, Some(client_id), keys)
    }

    fn run(
        &self,
        token: &str,
        client_id: Option<&str>,
        keys: &dyn KeyResolver,
    ) -> Result<ValidatedClientAssertion, JoseError> {
        let jws = Jws::decode_with_limit(token, self.max_token_bytes)?;
        let h = &jws.header;
        let typ_ok = match &h.typ {
            None => !self.explicit_typ,
            Some(_) => h.typ_is(TYP) || (!self.explicit_typ && h.typ_is("JWT")),
        };
        if !typ_ok {
            return Err(JoseError::WrongType {
                expected: TYP,
                found: h.typ.clone(),
            });
        }
        h.require_alg(&self.algorithms, PROFILE)?;
        if self.require_kid && h.kid.is_none() {
            return Err(JoseError::MissingKid);
        }
        let mut m = take::claims_set(jws.payload())?;
        let iss = take::required(take::non_empty_string(&mut m, "iss")?, "iss")?;
        // Without a client_id parameter the unverified `iss` only selects whose keys
        // must have signed; the signature then authenticates it.
        let key = keys.resolve(client_id.unwrap_or(&iss), h.kid.as_deref(), h.alg)?;
        jws.verify(&key)?;
        if client_id.is_some_and(|c| c != iss) {
            return Err(JoseError::IssuerMismatch);
        }

        let now = self.clock.now();
        let sub = take::required(take::string(&mut m, "sub")?, "sub")?;
        if sub != iss {
            return Err(JoseError::InvalidClaim {
                claim: "sub",
                reason: "must equal iss (the client id)",
            });
        }
        let aud = take::required(take::audience(&mut m)?, "aud")?;
        if aud.is_empty() {
            return Err(JoseError::InvalidClaim {
                claim: "aud",
                reason: "must not be empty",
            });
        }
        if aud.len() != 1 || !aud.contains(&self.issuer) {
            return Err(JoseError::AudienceMismatch);
        }
        let exp = take::required(take::numeric_date(&mut m, "exp")?, "exp")?;
        time::check_exp(exp, now, self.leeway)?;
        time::check_max_lifetime(exp, now, self.max_lifetime, self.leeway)?;
        let jti = take::required(take::non_empty_string(&mut m, "jti")?, "jti")?;
        let iat = take::numeric_date(&mut m, "iat")?;
        if let Some(iat) = iat {
            time::check_iat_window(iat, now, self.max_lifetime, self.leeway)?;
        }
        let nbf = take::numeric_date(&mut m, "nbf")?;
        if let Some(nbf) = nbf {
            time::check_nbf(nbf, now, self.leeway)?;
        }
        if let Some(guard) = &self.replay {
            // Length-prefixed so that no (iss, jti) pair can collide with another.
            let key = format!("client-assertion:{}:{iss}:{jti}", iss.len());
            guard.check_and_record(&key, exp.saturating_add(self.leeway), now)?;
        }
        Ok(ValidatedClientAssertion {
            claims: ClientAssertionClaims {
                sub,
                iss,
                aud,
                exp,
                jti,
                iat,
                nbf,
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
    use crate::replay::MemoryReplayGuard;
    use aims_core::ManualClock;
    use aims_crypto::{SigningKey, b64};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const AS: &str = "https://as.example";
    const CLIENT: &str = "agent-7";

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
        keys.add_key(CLIENT, Some("k1".into()), key.verifying_key().clone());
        let clock = ManualClock::new(NOW);
        let v = Validator::new(Arc::new(clock.clone()), AS);
        Fx {
            key,
            keys,
            clock,
            v,
        }
    }

    fn header() -> Value {
        json!({"alg": "ES256", "kid": "k1", "typ": TYP})
    }

    fn claims() -> Value {
        json!({"iss": CLIENT, "sub": CLIENT, "aud": AS, "exp": NOW + 60, "iat": NOW, "jti": "a1"})
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
        fn run(&self, h: Value, c: Value) -> Result<ValidatedClientAssertion, JoseError> {
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
        assert_eq!(ok.client_id(), CLIENT);
        assert_eq!(ok.jti(), "a1");
        assert_eq!(ok.claims.aud, Audience::One(AS.into()));
        // A one-element array holding the issuer is the same audience.
        f.run(header(), set(claims(), "aud", json!([AS]))).unwrap();
        // `iat` and `nbf` are optional.
        f.run(header(), unset(claims(), "iat")).unwrap();
        f.run(header(), set(claims(), "nbf", json!(NOW))).unwrap();
    }

    #[test]
    fn create_then_validate() {
        let f = fx();
        let c = ClientAssertionClaims::new(CLIENT, AS, NOW, 60).unwrap();
        let t = create(&c, &f.key).unwrap();
        let jws = Jws::decode(&t).unwrap();
        assert_eq!(
            (jws.header.typ.as_deref(), jws.header.kid.as_deref()),
            (Some(TYP), Some("k1"))
        );
        assert_eq!(f.v.validate(&t, &f.keys).unwrap().claims, c);
        assert_eq!(
            f.v.validate_for_client(&t, CLIENT, &f.keys).unwrap().claims,
            c
        );
    }

    #[test]
    fn create_refuses_bad_input() {
        let f = fx();
        let ok = ClientAssertionClaims::new(CLIENT, AS, NOW, 60).unwrap();
        let mut c = ok.clone();
        c.sub = "other".into();
        assert!(matches!(
            create(&c, &f.key),
            Err(JoseError::InvalidClaim { claim: "sub", .. })
        ));
        let mut c = ok.clone();
        c.aud = Audience::Many(vec![AS.into(), "https://as.example/token".into()]);
        assert!(matches!(
            create(&c, &f.key),
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
        let mut c = ok.clone();
        c.jti.clear();
        assert!(matches!(
            create(&c, &f.key),
            Err(JoseError::InvalidClaim { claim: "jti", .. })
        ));
        let mut c = ok.clone();
        c.extra.insert("iss".into(), json!("x"));
        assert!(matches!(
            create(&c, &f.key),
            Err(JoseError::InvalidClaim { claim: "extra", .. })
        ));
        let no_kid = SigningKey::generate(Algorithm::ES256).unwrap().with_kid("");
        assert_eq!(create(&ok, &no_kid).unwrap_err(), JoseError::MissingKid);
    }

    #[test]
    fn typ_rules() {
        let f = fx();
        f.run(unset(header(), "typ"), claims()).unwrap();
        f.run(set(header(), "typ", json!("JWT")), claims()).unwrap();
        f.run(
            set(
                header(),
                "typ",
                json!("application/client-authentication+jwt"),
            ),
            claims(),
        )
        .unwrap();
        for typ in ["at+jwt", "dpop+jwt", "secevent+jwt", "JOSE"] {
            assert_eq!(
                f.run(set(header(), "typ", json!(typ)), claims())
                    .unwrap_err(),
                JoseError::WrongType {
                    expected: TYP,
                    found: Some(typ.into())
                },
                "{typ}"
            );
        }
        let explicit = f.v.clone().require_explicit_typ(true);
        for h in [unset(header(), "typ"), set(header(), "typ", json!("JWT"))] {
            let t = sign_raw(&h, &claims(), &f.key);
            assert!(matches!(
                explicit.validate(&t, &f.keys),
                Err(JoseError::WrongType { expected: TYP, .. })
            ));
        }
        explicit
            .validate(&sign_raw(&header(), &claims(), &f.key), &f.keys)
            .unwrap();
    }

    #[test]
    fn rejects_alg_none_hs256_jku_x5u_crit() {
        let f = fx();
        let none = format!(
            "{}.{}.",
            b64::encode_url(r#"{"alg":"none"}"#),
            b64::encode_url(claims().to_string())
        );
        assert_eq!(
            f.v.validate(&none, &f.keys).unwrap_err(),
            JoseError::AlgNone
        );
        for (h, want) in [
            (
                r#"{"alg":"HS256","kid":"k1"}"#,
                JoseError::SymmetricAlgorithm("HS256".into()),
            ),
            (
                r#"{"alg":"HS512"}"#,
                JoseError::SymmetricAlgorithm("HS512".into()),
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
                r#"{"alg":"ES256","crit":["x"],"x":1}"#,
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
    fn algorithm_list_is_configurable() {
        let f = fx();
        let v = f.v.clone().algorithms(&[Algorithm::EdDSA]);
        let t = sign_raw(&header(), &claims(), &f.key);
        assert_eq!(
            v.validate(&t, &f.keys).unwrap_err(),
            JoseError::AlgorithmNotAllowed {
                alg: Algorithm::ES256,
                profile: PROFILE
            }
        );
        f.v.validate(&t, &f.keys).unwrap();
    }

    #[test]
    fn kid_rules() {
        let mut f = fx();
        f.run(unset(header(), "kid"), claims()).unwrap();
        let strict = f.v.clone().require_kid(true);
        let t = sign_raw(&unset(header(), "kid"), &claims(), &f.key);
        assert_eq!(
            strict.validate(&t, &f.keys).unwrap_err(),
            JoseError::MissingKid
        );
        assert_eq!(
            f.run(set(header(), "kid", json!("k9")), claims())
                .unwrap_err(),
            JoseError::UnknownKey
        );
        let k2 = SigningKey::generate(Algorithm::ES256).unwrap();
        f.keys
            .add_key(CLIENT, Some("k2".into()), k2.verifying_key().clone());
        assert_eq!(
            f.run(unset(header(), "kid"), claims()).unwrap_err(),
            JoseError::MissingKid
        );
    }

    #[test]
    fn key_scope_is_the_client() {
        // Client `mallory` signs with its own key but claims to be `agent-7`.
        let mut f = fx();
        let mallory = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("k1");
        f.keys.add_key(
            "mallory",
            Some("k1".into()),
            mallory.verifying_key().clone(),
        );
        let t = sign_raw(&header(), &claims(), &mallory);
        assert_eq!(
            f.v.validate(&t, &f.keys).unwrap_err(),
            JoseError::BadSignature
        );
        // ... or names itself in iss but agent-7 in sub.
        let c = set(set(claims(), "iss", json!("mallory")), "sub", json!(CLIENT));
        let t = sign_raw(&header(), &c, &mallory);
        assert!(matches!(
            f.v.validate(&t, &f.keys),
            Err(JoseError::InvalidClaim { claim: "sub", .. })
        ));
        // With a client_id parameter, the key comes from that client, and iss must match.
        let own = sign_raw(
            &header(),
            &set(
                set(claims(), "iss", json!("mallory")),
                "sub",
                json!("mallory"),
            ),
            &mallory,
        );
        f.v.validate(&own, &f.keys).unwrap();
        assert_eq!(
            f.v.validate_for_client(&own, CLIENT, &f.keys).unwrap_err(),
            JoseError::BadSignature
        );
        let unknown = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("k1");
        let t = sign_raw(
            &header(),
            &set(set(claims(), "iss", json!("eve")), "sub", json!("eve")),
            &unknown,
        );
        assert_eq!(
            f.v.validate(&t, &f.keys).unwrap_err(),
            JoseError::UnknownKey
        );
    }

    #[test]
    fn client_id_parameter_must_match_iss() {
        // Both clients share one key in this store: only the iss check tells them apart.
        let mut f = fx();
        f.keys
            .add_key("agent-8", Some("k1".into()), f.key.verifying_key().clone());
        let t = sign_raw(&header(), &claims(), &f.key);
        f.v.validate_for_client(&t, CLIENT, &f.keys).unwrap();
        assert_eq!(
            f.v.validate_for_client(&t, "agent-8", &f.keys).unwrap_err(),
            JoseError::IssuerMismatch
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
        let forged = b64::encode_url(set(claims(), "exp", json!(NOW + 240)).to_string());
        parts[1] = &forged;
        assert_eq!(
            f.v.validate(&parts.join("."), &f.keys).unwrap_err(),
            JoseError::BadSignature
        );
    }

    #[test]
    fn rejects_each_missing_required_claim() {
        let f = fx();
        for name in ["iss", "sub", "aud", "exp", "jti"] {
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
    fn audience_must_be_the_issuer_alone() {
        let f = fx();
        for aud in [
            json!("https://as.example/token"),
            json!("https://as.example/"),
            json!(["https://as.example/token"]),
            json!([AS, "https://as.example/token"]),
            json!([AS, AS]),
        ] {
            assert_eq!(
                f.run(header(), set(claims(), "aud", aud.clone()))
                    .unwrap_err(),
                JoseError::AudienceMismatch,
                "{aud}"
            );
        }
        assert!(matches!(
            f.run(header(), set(claims(), "aud", json!([]))),
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
    }

    #[test]
    fn time_windows() {
        let f = fx();
        let exp = NOW - DEFAULT_LEEWAY;
        assert_eq!(
            f.run(header(), set(claims(), "exp", json!(exp)))
                .unwrap_err(),
            JoseError::Expired { exp, now: NOW }
        );
        f.run(header(), set(claims(), "exp", json!(exp + 1)))
            .unwrap();
        let far = NOW + DEFAULT_MAX_LIFETIME + DEFAULT_LEEWAY + 1;
        assert_eq!(
            f.run(header(), set(claims(), "exp", json!(far)))
                .unwrap_err(),
            JoseError::LifetimeTooLong {
                exp: far,
                max: DEFAULT_MAX_LIFETIME
            }
        );
        f.run(header(), set(claims(), "exp", json!(far - 1)))
            .unwrap();
        let v = f.v.clone().max_lifetime(3600);
        v.validate(
            &sign_raw(&header(), &set(claims(), "exp", json!(far)), &f.key),
            &f.keys,
        )
        .unwrap();
        let late = NOW + DEFAULT_LEEWAY + 1;
        assert_eq!(
            f.run(header(), set(claims(), "iat", json!(late)))
                .unwrap_err(),
            JoseError::IssuedInFuture {
                iat: late,
                now: NOW
            }
        );
        let old = NOW - DEFAULT_MAX_LIFETIME - DEFAULT_LEEWAY - 1;
        assert_eq!(
            f.run(header(), set(claims(), "iat", json!(old)))
                .unwrap_err(),
            JoseError::TooOld { iat: old, now: NOW }
        );
        f.run(header(), set(claims(), "iat", json!(old + 1)))
            .unwrap();
        assert_eq!(
            f.run(header(), set(claims(), "nbf", json!(late)))
                .unwrap_err(),
            JoseError::NotYetValid {
                nbf: late,
                now: NOW
            }
        );
        f.clock.advance(60 + DEFAULT_LEEWAY);
        assert!(matches!(
            f.run(header(), claims()),
            Err(JoseError::Expired { .. })
        ));
    }

    #[test]
    fn replay_guard_enforces_single_use_per_client() {
        let f = fx();
        let guard = Arc::new(MemoryReplayGuard::new(100));
        let v = f.v.clone().replay_guard(guard.clone());
        let t = sign_raw(&header(), &claims(), &f.key);
        v.validate(&t, &f.keys).unwrap();
        assert_eq!(v.validate(&t, &f.keys).unwrap_err(), JoseError::Replayed);
        // Without the guard, the same assertion is accepted again: the rule is the guard's.
        f.v.validate(&t, &f.keys).unwrap();
        // Another client may use the same jti.
        let mut keys = f.keys.clone();
        keys.add_key("agent-8", Some("k1".into()), f.key.verifying_key().clone());
        let c = set(
            set(claims(), "iss", json!("agent-8")),
            "sub",
            json!("agent-8"),
        );
        v.validate(&sign_raw(&header(), &c, &f.key), &keys).unwrap();
        // A rejected assertion takes no slot.
        let bad = sign_raw(
            &header(),
            &set(set(claims(), "jti", json!("a2")), "aud", json!("x")),
            &f.key,
        );
        assert_eq!(
            v.validate(&bad, &f.keys).unwrap_err(),
            JoseError::AudienceMismatch
        );
        assert_eq!(guard.len(), 2);
    }
}
