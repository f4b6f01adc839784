//! JWT access tokens (RFC 9068), with the claims AIMS relies on from RFC 9396
//! (`authorization_details`), RFC 9449 and RFC 8705 (`cnf`), and RFC 8693 (`act`).
//!
//! # Rules
//!
//! | Rule | Error |
//! |---|---|
//! | shared JWS rules ([`crate::jws`]) | [`JoseError::AlgNone`], [`JoseError::SymmetricAlgorithm`], [`JoseError::ForbiddenHeader`], [`JoseError::UnknownCrit`] |
//! | `typ` is `at+jwt` (RFC 9068 section 4; RFC 7515 comparison, so `application/at+jwt` too) | [`JoseError::WrongType`] |
//! | `alg` in [`ALLOWED_ALGORITHMS`] (RS256 included, RFC 9068 section 4) | [`JoseError::AlgorithmNotAllowed`] |
//! | `kid`, when [`Validator::require_kid`] is set | [`JoseError::MissingKid`] |
//! | key looked up under the configured issuer, never the token's `iss` | [`JoseError::UnknownKey`] |
//! | signature | [`JoseError::BadSignature`] |
//! | `iss` present and equal to the configured issuer | [`JoseError::MissingClaim`], [`JoseError::IssuerMismatch`] |
//! | `exp` present and not passed | [`JoseError::MissingClaim`], [`JoseError::Expired`] |
//! | `aud` present, non-empty, contains the resource server's identifier | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`], [`JoseError::AudienceMismatch`] |
//! | `sub`, `client_id`, `jti` present, non-empty strings | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`] |
//! | `iat` present, not in the future, optionally not older than a maximum age | [`JoseError::MissingClaim`], [`JoseError::IssuedInFuture`], [`JoseError::TooOld`] |
//! | `nbf` checked when present | [`JoseError::NotYetValid`] |
//! | `scope`: RFC 6749 section 3.3 scope tokens separated by single spaces | [`JoseError::InvalidClaim`] |
//! | `authorization_details`: array of objects, each with a non-empty string `type`; common fields typed (RFC 9396 section 2) | [`JoseError::InvalidClaim`] |
//! | `cnf`: object with `jkt` and/or `x5t#S256`, each a base64url SHA-256 value | [`JoseError::InvalidClaim`] |
//! | `act`: nested objects each with a non-empty string `sub`, at most [`MAX_ACTOR_DEPTH`] deep | [`JoseError::InvalidClaim`] |
//! | `auth_time` a NumericDate not in the future; `acr` a string; `amr` an array of strings | [`JoseError::InvalidClaim`] |
//!
//! # Decisions
//!
//! - **`cnf`.** A token carrying `cnf` is sender-constrained; if none of its members is
//!   a method AIMS can enforce (`jkt` for DPoP, `x5t#S256` for mTLS), accepting it would
//!   turn it into a bearer token, so it is refused. Other members next to a supported
//!   one are kept in [`Confirmation::extra`] and not enforced. The resource server must
//!   then call [`ValidatedAccessToken::check_dpop_binding`],
//!   [`ValidatedAccessToken::check_certificate_binding`] or, for the `Bearer` scheme,
//!   [`ValidatedAccessToken::check_bearer_use`].
//! - **`act`.** RFC 8693 only says the members identify the actor; AIMS requires `sub` in
//!   each actor so the chain is always attributable. The chain is exposed outermost
//!   (current actor) first.
//! - **`kid`** is optional: a resolver may pick the issuer's only key for `alg`, and
//!   refuses ([`JoseError::MissingKid`]) when several could apply.

#![deny(clippy::indexing_slicing, clippy::string_slice)]

use std::collections::BTreeSet;
use std::sync::Arc;

use aims_core::Clock;
use aims_crypto::{Algorithm, Jwk, Signer, b64, sha256_b64url, unique_id};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::JoseError;
use crate::claims::{Audience, take};
use crate::jws::{HeaderSpec, Jws, MAX_TOKEN_BYTES, sign};
use crate::keys::KeyResolver;
use crate::time::{self, DEFAULT_LEEWAY};

/// The profile name used in [`JoseError::AlgorithmNotAllowed`].
pub const PROFILE: &str = "RFC 9068 access token";

/// The `typ` of a JWT access token (RFC 9068 section 2.1).
pub const TYP: &str = "at+jwt";

/// The accepted algorithms; RS256 is mandatory to support (RFC 9068 section 4).
pub const ALLOWED_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// The longest accepted `act` chain.
pub const MAX_ACTOR_DEPTH: usize = 16;

const OWN_CLAIMS: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "client_id",
    "exp",
    "iat",
    "jti",
    "nbf",
    "scope",
    "authorization_details",
    "cnf",
    "act",
    "auth_time",
    "acr",
    "amr",
];

/// The `scope` claim: a set of RFC 6749 section 3.3 scope tokens, written as one
/// space-separated string. Empty means the claim is absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

const BAD_SCOPE: JoseError = JoseError::InvalidClaim {
    claim: "scope",
    reason: "must be scope tokens separated by single spaces (RFC 6749 section 3.3)",
};

impl Scope {
    /// Parses a `scope` value: one or more tokens of `%x21 / %x23-5B / %x5D-7E`,
    /// separated by single spaces.
    pub fn parse(s: &str) -> Result<Self, JoseError> {
        Self::from_tokens(s.split(' '))
    }

    /// A scope made of `tokens`, each checked as in [`Scope::parse`].
    pub fn from_tokens<I, S>(tokens: I) -> Result<Self, JoseError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = BTreeSet::new();
        for t in tokens {
            let t = t.into();
            if t.is_empty() || !t.bytes().all(is_scope_char) {
                return Err(BAD_SCOPE);
            }
            set.insert(t);
        }
        Ok(Self(set))
    }

    /// Whether `token` is granted.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// Whether every one of `tokens` is granted.
    pub fn contains_all<'a>(&self, tokens: impl IntoIterator<Item = &'a str>) -> bool {
        tokens.into_iter().all(|t| self.0.contains(t))
    }

    /// The tokens, in lexicographic order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no token (the claim is absent).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
        }
        Ok(())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One entry of `authorization_details` (RFC 9396 section 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationDetail {
    /// The authorization details type (REQUIRED).
    #[serde(rename = "type")]
    pub type_: String,
    /// Where the resource is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<String>>,
    /// Actions to take at the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    /// Kinds of data requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatypes: Option<Vec<String>>,
    /// A specific resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// Types or levels of privilege.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileges: Option<Vec<String>>,
    /// Type-specific members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AuthorizationDetail {
    /// An entry of type `type_` with no other member.
    pub fn new(type_: impl Into<String>) -> Self {
        Self {
            type_: type_.into(),
            locations: None,
            actions: None,
            datatypes: None,
            identifier: None,
            privileges: None,
            extra: Map::new(),
        }
    }

    fn from_value(v: Value) -> Result<Self, JoseError> {
        let err = |reason| JoseError::InvalidClaim {
            claim: "authorization_details",
            reason,
        };
        let Value::Object(mut o) = v else {
            return Err(err("must be an array of JSON objects"));
        };
        let type_ = match o.remove("type") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err(err("each entry needs a non-empty string `type`")),
        };
        let mut list = |name| match o.remove(name) {
            None => Ok(None),
            Some(v) => take::string_array_value(v).map(Some).ok_or(err(
                "`locations`, `actions`, `datatypes`, `privileges` must be arrays of strings",
            )),
        };
        let locations = list("locations")?;
        let actions = list("actions")?;
        let datatypes = list("datatypes")?;
        let privileges = list("privileges")?;
        let identifier = match o.remove("identifier") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(err("`identifier` must be a string")),
        };
        Ok(Self {
            type_,
            locations,
            actions,
            datatypes,
            identifier,
            privileges,
            extra: o,
        })
    }
}

/// Parses an RFC 9396 `authorization_details` value: an array of objects, each with a
/// non-empty string `type` and well-typed common members.
pub fn parse_authorization_details(v: Value) -> Result<Vec<AuthorizationDetail>, JoseError> {
    let Value::Array(items) = v else {
        return Err(JoseError::InvalidClaim {
            claim: "authorization_details",
            reason: "must be an array of JSON objects",
        });
    };
    items
        .into_iter()
        .map(AuthorizationDetail::from_value)
        .collect()
}

/// The `cnf` claim (RFC 7800) as AIMS enforces it: a DPoP key thumbprint (RFC 9449
/// section 6.1) and/or a certificate thumbprint (RFC 8705 section 3.1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 SHA-256 thumbprint of the DPoP public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// base64url SHA-256 of the client certificate's DER.
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
    /// Other confirmation members, kept but not enforced.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Confirmation {
    /// Binds to the DPoP key `jwk` (its RFC 7638 thumbprint).
    pub fn dpop(jwk: &Jwk) -> Result<Self, JoseError> {
        Ok(Self {
            jkt: Some(jwk.thumbprint()?),
            ..Self::default()
        })
    }

    /// Binds to the client certificate whose DER encoding is `cert_der`.
    pub fn certificate(cert_der: &[u8]) -> Self {
        Self {
            x5t_s256: Some(sha256_b64url(cert_der)),
            ..Self::default()
        }
    }

    fn from_value(v: Value) -> Result<Self, JoseError> {
        let err = |reason| JoseError::InvalidClaim {
            claim: "cnf",
            reason,
        };
        let Value::Object(mut o) = v else {
            return Err(err("must be a JSON object"));
        };
        let mut sha256 = |name| match o.remove(name) {
            None => Ok(None),
            Some(Value::String(s)) if b64::decode_url(&s).is_some_and(|d| d.len() == 32) => {
                Ok(Some(s))
            }
            Some(_) => Err(err("`jkt` and `x5t#S256` must be base64url SHA-256 values")),
        };
        let jkt = sha256("jkt")?;
        let x5t_s256 = sha256("x5t#S256")?;
        if jkt.is_none() && x5t_s256.is_none() {
            return Err(err(
                "no supported confirmation method (`jkt` or `x5t#S256`)",
            ));
        }
        Ok(Self {
            jkt,
            x5t_s256,
            extra: o,
        })
    }
}

/// One actor of an RFC 8693 `act` chain (without its nested `act`, which is the next
/// entry of the chain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's subject.
    pub sub: String,
    /// The issuer of `sub`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Other claims identifying the actor.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Actor {
    /// An actor identified by `sub`.
    pub fn new(sub: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            iss: None,
            extra: Map::new(),
        }
    }
}

fn parse_actor_chain(v: Value) -> Result<Vec<Actor>, JoseError> {
    let err = |reason| JoseError::InvalidClaim {
        claim: "act",
        reason,
    };
    let mut chain = Vec::new();
    let mut next = Some(v);
    while let Some(v) = next.take() {
        if chain.len() == MAX_ACTOR_DEPTH {
            return Err(err("actor chain is too deep"));
        }
        let Value::Object(mut o) = v else {
            return Err(err("each actor must be a JSON object"));
        };
        let sub = match o.remove("sub") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err(err("each actor needs a non-empty string `sub`")),
        };
        let iss = match o.remove("iss") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(err("an actor's `iss` must be a string")),
        };
        next = o.remove("act");
        chain.push(Actor { sub, iss, extra: o });
    }
    Ok(chain)
}

fn actor_chain_value(chain: &[Actor]) -> Option<Value> {
    chain.iter().rev().fold(None, |inner, a| {
        let mut o = a.extra.clone();
        o.insert("sub".into(), Value::String(a.sub.clone()));
        if let Some(iss) = &a.iss {
            o.insert("iss".into(), Value::String(iss.clone()));
        }
        if let Some(i) = inner {
            o.insert("act".into(), i);
        }
        Some(Value::Object(o))
    })
}

fn serialize_actors<S: Serializer>(chain: &[Actor], s: S) -> Result<S::Ok, S::Error> {
    actor_chain_value(chain).serialize(s)
}

fn deserialize_actors<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Actor>, D::Error> {
    parse_actor_chain(Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// The claims of a JWT access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The authorization server's issuer identifier.
    pub iss: String,
    /// The resource owner (a delegating user), or the client itself.
    pub sub: String,
    /// The resource server(s).
    pub aud: Audience,
    /// The client (for AIMS, the agent) the token was issued to.
    pub client_id: String,
    /// Expiration time.
    pub exp: i64,
    /// Issued-at time.
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// Not-before time, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Granted scope (empty when the claim is absent).
    #[serde(default, skip_serializing_if = "Scope::is_empty")]
    pub scope: Scope,
    /// RFC 9396 rich authorization details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Vec<AuthorizationDetail>>,
    /// Sender constraint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The RFC 8693 delegation chain, current actor first (empty when absent). Written
    /// as nested `act` objects.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_actors",
        deserialize_with = "deserialize_actors"
    )]
    pub act: Vec<Actor>,
    /// Time of the end-user authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Authentication context class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Authentication methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// Every other claim (`groups`, `roles`, `entitlements`, ...), unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccessTokenClaims {
    /// Claims issued at `iat` for `lifetime` seconds, with a random 128-bit `jti`.
    pub fn new(
        iss: impl Into<String>,
        sub: impl Into<String>,
        client_id: impl Into<String>,
        aud: impl Into<String>,
        iat: i64,
        lifetime: i64,
    ) -> Result<Self, JoseError> {
        Ok(Self {
            iss: iss.into(),
            sub: sub.into(),
            aud: Audience::One(aud.into()),
            client_id: client_id.into(),
            exp: iat.saturating_add(lifetime),
            iat,
            jti: unique_id().map_err(JoseError::Internal)?,
            nbf: None,
            scope: Scope::default(),
            authorization_details: None,
            cnf: None,
            act: Vec::new(),
            auth_time: None,
            acr: None,
            amr: None,
            extra: Map::new(),
        })
    }
}

/// Signs an access token with `typ: at+jwt` and the signer's `kid`.
///
/// The signer's algorithm must be in [`ALLOWED_ALGORITHMS`], its `kid` non-empty, `aud`
/// non-empty, the actor chain at most [`MAX_ACTOR_DEPTH`] long, and `extra` must not
/// repeat a claim that has its own field.
pub fn issue(claims: &AccessTokenClaims, signer: &dyn Signer) -> Result<String, JoseError> {
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
    if claims.aud.is_empty() {
        return Err(JoseError::InvalidClaim {
            claim: "aud",
            reason: "must not be empty",
        });
    }
    if claims.act.len() > MAX_ACTOR_DEPTH {
        return Err(JoseError::InvalidClaim {
            claim: "act",
            reason: "actor chain is too deep",
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

/// An access token that passed every check of its [`Validator`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedAccessToken {
    /// The claims.
    pub claims: AccessTokenClaims,
    /// The algorithm it was signed with.
    pub alg: Algorithm,
    /// The `kid` of the header, if any.
    pub kid: Option<String>,
}

impl ValidatedAccessToken {
    /// Whether the token carries `cnf` (is DPoP- or certificate-bound).
    pub fn is_sender_constrained(&self) -> bool {
        self.claims.cnf.is_some()
    }

    /// For the `Bearer` scheme: a sender-constrained token must not be accepted as a
    /// bearer token (RFC 9449 section 7.1, RFC 8705 section 3), so this fails with
    /// [`JoseError::BindingMismatch`] if `cnf` is present.
    pub fn check_bearer_use(&self) -> Result<(), JoseError> {
        if self.is_sender_constrained() {
            Err(JoseError::BindingMismatch("cnf"))
        } else {
            Ok(())
        }
    }

    /// For the `DPoP` scheme: `jkt` (the thumbprint of the key that signed the verified
    /// DPoP proof) must equal `cnf.jkt`. A token without `cnf.jkt` fails too.
    pub fn check_dpop_binding(&self, jkt: &str) -> Result<(), JoseError> {
        match self.claims.cnf.as_ref().and_then(|c| c.jkt.as_deref()) {
            Some(bound) if bound == jkt => Ok(()),
            _ => Err(JoseError::BindingMismatch("cnf")),
        }
    }

    /// For mutual TLS: the SHA-256 of the presented client certificate (DER) must equal
    /// `cnf.x5t#S256`. A token without `cnf.x5t#S256` fails too.
    pub fn check_certificate_binding(&self, cert_der: &[u8]) -> Result<(), JoseError> {
        match self.claims.cnf.as_ref().and_then(|c| c.x5t_s256.as_deref()) {
            Some(bound) if bound == sha256_b64url(cert_der) => Ok(()),
            _ => Err(JoseError::BindingMismatch("cnf")),
        }
    }
}

/// Validates access tokens of one issuer for one resource server (see the
/// [module rules](self)).
#[derive(Debug, Clone)]
pub struct Validator {
    clock: Arc<dyn Clock>,
    leeway: i64,
    issuer: String,
    audiences: Vec<String>,
    max_age: Option<i64>,
    require_kid: bool,
    max_token_bytes: usize,
}

impl Validator {
    /// A validator for tokens of `issuer` whose `aud` contains `audience` (the resource
    /// server's identifier).
    pub fn new(
        clock: Arc<dyn Clock>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            clock,
            leeway: DEFAULT_LEEWAY,
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            max_age: None,
            require_kid: false,
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

    /// Refuses tokens issued more than `secs` seconds ago.
    pub fn max_age(mut self, secs: i64) -> Self {
        self.max_age = Some(secs);
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
    pub fn validate(
        &self,
        token: &str,
        keys: &dyn KeyResolver,
    ) -> Result<ValidatedAccessToken, JoseError> {
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
        let iss = take::required(take::string(&mut m, "iss")?, "iss")?;
        if iss != self.issuer {
            return Err(JoseError::IssuerMismatch);
        }
        let exp = take::required(take::numeric_date(&mut m, "exp")?, "exp")?;
        time::check_exp(exp, now, self.leeway)?;
        let aud = take::required(take::audience(&mut m)?, "aud")?;
        if aud.is_empty() {
            return Err(JoseError::InvalidClaim {
                claim: "aud",
                reason: "must not be empty",
            });
        }
        if !aud.contains_any(&self.audiences) {
            return Err(JoseError::AudienceMismatch);
        }
        let sub = take::required(take::non_empty_string(&mut m, "sub")?, "sub")?;
        let client_id = take::required(take::non_empty_string(&mut m, "client_id")?, "client_id")?;
        let iat = take::required(take::numeric_date(&mut m, "iat")?, "iat")?;
        time::check_iat_window(iat, now, self.max_age.unwrap_or(i64::MAX), self.leeway)?;
        let jti = take::required(take::non_empty_string(&mut m, "jti")?, "jti")?;
        let nbf = take::numeric_date(&mut m, "nbf")?;
        if let Some(nbf) = nbf {
            time::check_nbf(nbf, now, self.leeway)?;
        }
        let scope = match take::string(&mut m, "scope")? {
            None => Scope::default(),
            Some(s) => Scope::parse(&s)?,
        };
        let authorization_details = m
            .remove("authorization_details")
            .map(parse_authorization_details)
            .transpose()?;
        let cnf = m.remove("cnf").map(Confirmation::from_value).transpose()?;
        let act = m
            .remove("act")
            .map(parse_actor_chain)
            .transpose()?
            .unwrap_or_default();
        let auth_time = take::numeric_date(&mut m, "auth_time")?;
        if auth_time.is_some_and(|t| t > now.saturating_add(self.leeway)) {
            return Err(JoseError::InvalidClaim {
                claim: "auth_time",
                reason: "is in the future",
            });
        }
        let acr = take::string(&mut m, "acr")?;
        let amr = take::string_array(&mut m, "amr")?;
        Ok(ValidatedAccessToken {
            claims: AccessTokenClaims {
                iss,
                sub,
                aud,
                client_id,
                exp,
                iat,
                jti,
                nbf,
                scope,
                authorization_details,
                cnf,
                act,
                auth_time,
                acr,
                amr,
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
    use aims_crypto::SigningKey;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://as.example";
    const AUD: &str = "https://rs.example";
    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

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
        keys.add_key(ISS, Some("k1".into()), key.verifying_key().clone());
        let clock = ManualClock::new(NOW);
        let v = Validator::new(Arc::new(clock.clone()), ISS, AUD);
        Fx {
            key,
            keys,
            clock,
            v,
        }
    }

    fn header() -> Value {
        json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"})
    }

    fn claims() -> Value {
        json!({
            "iss": ISS, "sub": "user-1", "aud": AUD, "client_id": "agent-7",
            "exp": NOW + 300, "iat": NOW, "jti": "t1",
        })
    }

    fn full_claims() -> Value {
        json!({
            "iss": ISS, "sub": "user-1", "aud": [AUD, "https://other.example"], "client_id": "agent-7",
            "exp": NOW + 300, "iat": NOW, "jti": "t1", "nbf": NOW - 5,
            "scope": "files:read files:write openid",
            "authorization_details": [{"type": "payment_initiation", "actions": ["initiate"],
                "locations": ["https://pay.example"], "identifier": "acct-1", "instructedAmount": {"amount": "5"}}],
            "cnf": {"jkt": JKT},
            "act": {"sub": "agent-7", "iss": ISS, "act": {"sub": "orchestrator"}},
            "auth_time": NOW - 100, "acr": "urn:mace:incommon:iap:silver", "amr": ["pwd", "otp"],
            "groups": ["admins"],
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
        fn run(&self, h: Value, c: Value) -> Result<ValidatedAccessToken, JoseError> {
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
        assert_eq!(ok.claims.client_id, "agent-7");
        assert!(
            ok.claims.scope.is_empty() && ok.claims.act.is_empty() && !ok.is_sender_constrained()
        );
        assert_eq!(ok.kid.as_deref(), Some("k1"));
        ok.check_bearer_use().unwrap();
    }

    #[test]
    fn every_optional_claim_is_parsed() {
        let f = fx();
        let c = f.run(header(), full_claims()).unwrap().claims;
        assert!(c.scope.contains_all(["files:read", "openid"]) && !c.scope.contains("admin"));
        assert_eq!(c.scope.to_string(), "files:read files:write openid");
        let rar = &c.authorization_details.unwrap()[0];
        assert_eq!(rar.type_, "payment_initiation");
        assert_eq!(rar.actions.as_deref(), Some(&["initiate".to_owned()][..]));
        assert_eq!(rar.identifier.as_deref(), Some("acct-1"));
        assert!(rar.extra.contains_key("instructedAmount"));
        assert_eq!(c.cnf.unwrap().jkt.as_deref(), Some(JKT));
        let chain: Vec<&str> = c.act.iter().map(|a| a.sub.as_str()).collect();
        assert_eq!(chain, ["agent-7", "orchestrator"]);
        assert_eq!(c.act[0].iss.as_deref(), Some(ISS));
        assert_eq!(c.auth_time, Some(NOW - 100));
        assert_eq!(c.amr.unwrap(), ["pwd", "otp"]);
        assert_eq!(c.extra.get("groups"), Some(&json!(["admins"])));
        assert!(!c.extra.contains_key("act") && !c.extra.contains_key("cnf"));
    }

    #[test]
    fn issue_then_validate_round_trips() {
        let f = fx();
        let mut c = AccessTokenClaims::new(ISS, "user-1", "agent-7", AUD, NOW, 600).unwrap();
        c.scope = Scope::parse("a b").unwrap();
        c.cnf = Some(Confirmation::certificate(b"cert"));
        c.act = vec![Actor::new("agent-7"), Actor::new("orchestrator")];
        c.authorization_details = Some(vec![AuthorizationDetail::new("t")]);
        c.extra.insert("roles".into(), json!(["r"]));
        let t = issue(&c, &f.key).unwrap();
        let jws = Jws::decode(&t).unwrap();
        assert_eq!(
            (jws.header.typ.as_deref(), jws.header.kid.as_deref()),
            (Some("at+jwt"), Some("k1"))
        );
        let raw: Value = serde_json::from_slice(jws.payload()).unwrap();
        assert_eq!(
            raw["act"],
            json!({"sub": "agent-7", "act": {"sub": "orchestrator"}})
        );
        assert_eq!(raw["scope"], json!("a b"));
        let ok = f.v.validate(&t, &f.keys).unwrap();
        assert_eq!(ok.claims, c);
        ok.check_certificate_binding(b"cert").unwrap();
        // Serde round trip of the claims struct agrees with the validator.
        let again: AccessTokenClaims = serde_json::from_value(raw).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn issue_refuses_bad_input() {
        let f = fx();
        let c = AccessTokenClaims::new(ISS, "u", "c", AUD, NOW, 60).unwrap();
        let no_kid = SigningKey::generate(Algorithm::ES256).unwrap().with_kid("");
        assert_eq!(issue(&c, &no_kid).unwrap_err(), JoseError::MissingKid);
        let mut deep = c.clone();
        deep.act = vec![Actor::new("a"); MAX_ACTOR_DEPTH + 1];
        assert!(matches!(
            issue(&deep, &f.key),
            Err(JoseError::InvalidClaim { claim: "act", .. })
        ));
        let mut shadow = c.clone();
        shadow.extra.insert("scope".into(), json!("x"));
        assert!(matches!(
            issue(&shadow, &f.key),
            Err(JoseError::InvalidClaim { claim: "extra", .. })
        ));
        let mut empty = c;
        empty.aud = Audience::Many(vec![]);
        assert!(matches!(
            issue(&empty, &f.key),
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
    }

    #[test]
    fn typ_uses_rfc7515_comparison() {
        let f = fx();
        f.run(set(header(), "typ", json!("application/at+jwt")), claims())
            .unwrap();
        f.run(set(header(), "typ", json!("AT+JWT")), claims())
            .unwrap();
    }

    #[test]
    fn rejects_wrong_or_missing_typ() {
        let f = fx();
        for typ in ["JWT", "application/jwt", "dpop+jwt", "at+jwt2"] {
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
            b64::encode_url(r#"{"alg":"none","typ":"at+jwt"}"#),
            b64::encode_url(claims().to_string())
        );
        assert_eq!(
            f.v.validate(&none, &f.keys).unwrap_err(),
            JoseError::AlgNone
        );
        for (h, want) in [
            (
                r#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#,
                JoseError::SymmetricAlgorithm("HS256".into()),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","jku":"https://x"}"#,
                JoseError::ForbiddenHeader("jku".into()),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","x5u":"https://x"}"#,
                JoseError::ForbiddenHeader("x5u".into()),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","crit":["b64"],"b64":false}"#,
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
        for alg in [Algorithm::ES512, Algorithm::RS384, Algorithm::PS512] {
            let t = unsigned(&format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"k1"}}"#));
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
        // One key for the issuer: a token without kid is unambiguous.
        f.run(unset(header(), "kid"), claims()).unwrap();
        let strict = f.v.clone().require_kid(true);
        let t = sign_raw(&unset(header(), "kid"), &claims(), &f.key);
        assert_eq!(
            strict.validate(&t, &f.keys).unwrap_err(),
            JoseError::MissingKid
        );
        // Two keys: the resolver will not guess.
        let k2 = SigningKey::generate(Algorithm::ES256).unwrap();
        f.keys
            .add_key(ISS, Some("k2".into()), k2.verifying_key().clone());
        assert_eq!(
            f.run(unset(header(), "kid"), claims()).unwrap_err(),
            JoseError::MissingKid
        );
        assert_eq!(
            f.run(set(header(), "kid", json!("k3")), claims())
                .unwrap_err(),
            JoseError::UnknownKey
        );
    }

    #[test]
    fn key_scope_is_the_configured_issuer() {
        // A key registered for another issuer, even if the token names that issuer.
        let mut f = fx();
        let evil = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("e");
        f.keys.add_key(
            "https://evil.example",
            Some("e".into()),
            evil.verifying_key().clone(),
        );
        let t = sign_raw(
            &set(header(), "kid", json!("e")),
            &set(claims(), "iss", json!("https://evil.example")),
            &evil,
        );
        assert_eq!(
            f.v.validate(&t, &f.keys).unwrap_err(),
            JoseError::UnknownKey
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
        let forged = b64::encode_url(set(claims(), "scope", json!("admin")).to_string());
        parts[1] = &forged;
        assert_eq!(
            f.v.validate(&parts.join("."), &f.keys).unwrap_err(),
            JoseError::BadSignature
        );
    }

    #[test]
    fn rejects_each_missing_required_claim() {
        let f = fx();
        for name in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
            assert_eq!(
                f.run(header(), unset(claims(), name)).unwrap_err(),
                JoseError::MissingClaim(name),
                "{name}"
            );
        }
    }

    #[test]
    fn rejects_empty_or_mistyped_required_claims() {
        let f = fx();
        for name in ["sub", "client_id", "jti"] {
            assert!(
                matches!(f.run(header(), set(claims(), name, json!(""))), Err(JoseError::InvalidClaim { claim, .. }) if claim == name),
                "{name}"
            );
        }
        for name in ["iss", "sub", "client_id", "jti", "exp", "iat", "aud"] {
            assert!(
                matches!(f.run(header(), set(claims(), name, json!({}))), Err(JoseError::InvalidClaim { claim, .. }) if claim == name),
                "{name}"
            );
        }
    }

    #[test]
    fn rejects_issuer_mismatch() {
        let f = fx();
        assert_eq!(
            f.run(header(), set(claims(), "iss", json!("https://as.example/")))
                .unwrap_err(),
            JoseError::IssuerMismatch
        );
    }

    #[test]
    fn rejects_audience_mismatch() {
        let f = fx();
        assert_eq!(
            f.run(
                header(),
                set(claims(), "aud", json!(["https://other.example"]))
            )
            .unwrap_err(),
            JoseError::AudienceMismatch
        );
        assert!(matches!(
            f.run(header(), set(claims(), "aud", json!([]))),
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
        let v = f.v.clone().audience("https://other.example");
        v.validate(
            &sign_raw(
                &header(),
                &set(claims(), "aud", json!("https://other.example")),
                &f.key,
            ),
            &f.keys,
        )
        .unwrap();
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
        let late = NOW + DEFAULT_LEEWAY + 1;
        assert_eq!(
            f.run(header(), set(claims(), "nbf", json!(late)))
                .unwrap_err(),
            JoseError::NotYetValid {
                nbf: late,
                now: NOW
            }
        );
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
        let v = f.v.clone().max_age(3600).leeway(0);
        let t = sign_raw(&header(), &set(claims(), "iat", json!(NOW - 3601)), &f.key);
        assert_eq!(
            v.validate(&t, &f.keys).unwrap_err(),
            JoseError::TooOld {
                iat: NOW - 3601,
                now: NOW
            }
        );
        v.validate(
            &sign_raw(&header(), &set(claims(), "iat", json!(NOW - 3600)), &f.key),
            &f.keys,
        )
        .unwrap();
        f.clock.advance(300 + DEFAULT_LEEWAY);
        assert!(matches!(
            f.run(header(), claims()),
            Err(JoseError::Expired { .. })
        ));
    }

    #[test]
    fn scope_syntax() {
        let f = fx();
        for bad in [
            json!(""),
            json!("a  b"),
            json!(" a"),
            json!("a "),
            json!("a\"b"),
            json!("a\\b"),
            json!("é"),
            json!(["a"]),
        ] {
            assert!(
                matches!(
                    f.run(header(), set(claims(), "scope", bad.clone())),
                    Err(JoseError::InvalidClaim { claim: "scope", .. })
                ),
                "{bad}"
            );
        }
        let ok = f
            .run(header(), set(claims(), "scope", json!("b a b")))
            .unwrap();
        assert_eq!(ok.claims.scope.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(Scope::from_tokens(["x y"]).is_err());
        assert!(serde_json::from_str::<Scope>("\"a  b\"").is_err());
    }

    #[test]
    fn authorization_details_shape() {
        let f = fx();
        for bad in [
            json!({"type": "t"}),
            json!(["t"]),
            json!([{"actions": ["a"]}]),
            json!([{"type": ""}]),
            json!([{"type": 5}]),
            json!([{"type": "t", "locations": "https://x"}]),
            json!([{"type": "t", "actions": [1]}]),
            json!([{"type": "t", "identifier": ["i"]}]),
        ] {
            assert!(
                matches!(
                    f.run(
                        header(),
                        set(claims(), "authorization_details", bad.clone())
                    ),
                    Err(JoseError::InvalidClaim {
                        claim: "authorization_details",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let ok = f
            .run(header(), set(claims(), "authorization_details", json!([])))
            .unwrap();
        assert_eq!(ok.claims.authorization_details, Some(vec![]));
    }

    #[test]
    fn cnf_shape() {
        let f = fx();
        for bad in [
            json!("jkt"),
            json!({}),
            json!({"jwk": {"kty": "EC"}}),
            json!({"jkt": "not a thumbprint"}),
            json!({"jkt": "AAAA"}),
            json!({"x5t#S256": 5}),
            json!({"jkt": JKT, "x5t#S256": "short"}),
        ] {
            assert!(
                matches!(
                    f.run(header(), set(claims(), "cnf", bad.clone())),
                    Err(JoseError::InvalidClaim { claim: "cnf", .. })
                ),
                "{bad}"
            );
        }
        // A supported method plus an unknown member: the known one is enforced.
        let ok = f
            .run(
                header(),
                set(claims(), "cnf", json!({"jkt": JKT, "kid": "x"})),
            )
            .unwrap();
        assert_eq!(
            ok.claims.cnf.as_ref().unwrap().extra.get("kid"),
            Some(&json!("x"))
        );
    }

    #[test]
    fn bindings() {
        let f = fx();
        let dpop = f
            .run(header(), set(claims(), "cnf", json!({"jkt": JKT})))
            .unwrap();
        dpop.check_dpop_binding(JKT).unwrap();
        assert_eq!(
            dpop.check_dpop_binding("other").unwrap_err(),
            JoseError::BindingMismatch("cnf")
        );
        assert_eq!(
            dpop.check_bearer_use().unwrap_err(),
            JoseError::BindingMismatch("cnf")
        );
        assert_eq!(
            dpop.check_certificate_binding(b"c").unwrap_err(),
            JoseError::BindingMismatch("cnf")
        );
        let x5t = sha256_b64url(b"cert");
        let mtls = f
            .run(header(), set(claims(), "cnf", json!({"x5t#S256": x5t})))
            .unwrap();
        mtls.check_certificate_binding(b"cert").unwrap();
        assert_eq!(
            mtls.check_certificate_binding(b"cert2").unwrap_err(),
            JoseError::BindingMismatch("cnf")
        );
        assert_eq!(
            mtls.check_dpop_binding(JKT).unwrap_err(),
            JoseError::BindingMismatch("cnf")
        );
        let bearer = f.run(header(), claims()).unwrap();
        assert_eq!(
            bearer.check_dpop_binding(JKT).unwrap_err(),
            JoseError::BindingMismatch("cnf")
        );
        // The RFC 9449 section 6.1 key has the thumbprint used above.
        let jwk: Jwk = serde_json::from_value(json!({"kty": "EC", "crv": "P-256",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}))
        .unwrap();
        assert_eq!(Confirmation::dpop(&jwk).unwrap().jkt.as_deref(), Some(JKT));
    }

    fn nested_actors(depth: usize) -> Value {
        (0..depth).rev().fold(Value::Null, |inner, i| {
            let mut a = json!({"sub": format!("actor-{i}")});
            if !inner.is_null() {
                a["act"] = inner;
            }
            a
        })
    }

    #[test]
    fn actor_chain() {
        let f = fx();
        let ok = f
            .run(
                header(),
                set(claims(), "act", nested_actors(MAX_ACTOR_DEPTH)),
            )
            .unwrap();
        assert_eq!(ok.claims.act.len(), MAX_ACTOR_DEPTH);
        assert_eq!(ok.claims.act[0].sub, "actor-0");
        for bad in [
            nested_actors(MAX_ACTOR_DEPTH + 1),
            json!("agent"),
            json!({"iss": ISS}),
            json!({"sub": ""}),
            json!({"sub": "a", "iss": 1}),
            json!({"sub": "a", "act": {"client_id": "b"}}),
            json!({"sub": "a", "act": []}),
        ] {
            assert!(
                matches!(
                    f.run(header(), set(claims(), "act", bad.clone())),
                    Err(JoseError::InvalidClaim { claim: "act", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn authentication_claims() {
        let f = fx();
        assert!(matches!(
            f.run(header(), set(claims(), "auth_time", json!("yesterday"))),
            Err(JoseError::InvalidClaim {
                claim: "auth_time",
                ..
            })
        ));
        assert!(matches!(
            f.run(
                header(),
                set(claims(), "auth_time", json!(NOW + DEFAULT_LEEWAY + 1))
            ),
            Err(JoseError::InvalidClaim {
                claim: "auth_time",
                ..
            })
        ));
        assert!(matches!(
            f.run(header(), set(claims(), "acr", json!(2))),
            Err(JoseError::InvalidClaim { claim: "acr", .. })
        ));
        assert!(matches!(
            f.run(header(), set(claims(), "amr", json!("pwd"))),
            Err(JoseError::InvalidClaim { claim: "amr", .. })
        ));
    }
}
