//! Workload Proof Tokens (draft-ietf-wimse-wpt): a short-lived JWT, signed with the key
//! a [WIT](crate::wit) confirms, binding one HTTP request to that WIT and to the other
//! tokens presented with it.
//!
//! # Rules ([`Validator::validate`])
//!
//! | Rule | Error |
//! |---|---|
//! | the WIT (already validated) has not expired since | [`JoseError::Expired`] |
//! | shared JWS rules (no `none`/`HS*`, `jku`, `x5u`, `crit`; size) | see [`crate::jws`] |
//! | `typ` is `wpt+jwt` (RFC 7515 section 4.1.9 comparison) | [`JoseError::WrongType`] |
//! | `alg` string-equals the WIT's `cnf.jwk.alg` | [`JoseError::AlgorithmNotAllowed`] |
//! | signature verifies with the WIT's `cnf.jwk` | [`JoseError::BadSignature`] |
//! | `aud` present | [`JoseError::MissingClaim`] |
//! | the expected audience is under a configured authority | [`JoseError::AudienceMismatch`] |
//! | `aud` contains the expected audience (after URI normalisation) | [`JoseError::AudienceMismatch`] |
//! | `exp` present, not passed | [`JoseError::MissingClaim`], [`JoseError::Expired`] |
//! | `exp` at most `max_lifetime` (default 5 minutes) away | [`JoseError::LifetimeTooLong`] |
//! | `jti` present, at least `min_jti_len` characters | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`] |
//! | `wth` present, equal to the hash of the presented WIT | [`JoseError::MissingClaim`], [`JoseError::BindingMismatch`]`("wth")` |
//! | the presented WIT is the validated one | [`JoseError::BindingMismatch`]`("wth")` |
//! | `ath` present iff an access token is presented, equal to its hash | [`JoseError::MissingClaim`], [`JoseError::ForbiddenClaim`], [`JoseError::BindingMismatch`]`("ath")` |
//! | `tth` present iff a Txn-Token is presented, equal to its hash | [`JoseError::MissingClaim`], [`JoseError::ForbiddenClaim`], [`JoseError::BindingMismatch`]`("tth")` |
//! | other tokens: no repeated header names | [`JoseError::InvalidClaim`] |
//! | `oth` present iff other tokens are presented | [`JoseError::MissingClaim`] |
//! | every `oth` key names a presented other token | [`JoseError::InvalidClaim`] |
//! | every `oth` value is the hash of that token | [`JoseError::InvalidClaim`], [`JoseError::BindingMismatch`]`("oth")` |
//! | every presented other token is covered by `oth` | [`JoseError::InvalidClaim`] |
//! | `jti` not seen before for this WIT key (checked last) | [`JoseError::Replayed`] |
//!
//! # Decisions
//!
//! - **Audience.** The validator is configured with the authorities
//!   (`scheme://host[:port]`) it serves; the caller passes the request's target URI
//!   built from that configuration and the request path, never from `Host` or
//!   `X-Forwarded-Host`. A target URI outside the configured authorities is refused.
//!   Both sides are compared after the normalisation of
//!   [`normalize_http_uri`](crate::dpop::normalize_http_uri), query and fragment
//!   ignored.
//! - **`jti` length.** The draft asks for a unique `jti`; it cannot be checked for
//!   randomness, only for length. The default minimum is 16 characters (96 bits of
//!   base64url, as RFC 9449 suggests for DPoP). A 22-character (128-bit) minimum would
//!   reject the draft's own example, whose `jti` has 21 characters; raise it with
//!   [`Validator::min_jti_len`] where all senders are known to comply. [`WptClaims::new`]
//!   uses 22 characters.
//! - **Replay.** A [`ReplayGuard`] is mandatory. Keys are scoped to the WIT's
//!   confirmation key (the sender), and kept until `exp` plus leeway.
//! - **`ath`/`tth` without the token** are refused ([`JoseError::ForbiddenClaim`]): the
//!   proof was made for a request that carried a token this one does not.
//! - **`oth`** keys are lower-case header names; values hash the header value with
//!   leading and trailing spaces and tabs removed. Repeated headers are not supported.
//!   Key comparison is exact, so an upper-case key names no presented header.

use std::collections::BTreeMap;
use std::sync::Arc;

use aims_core::Clock;
use aims_crypto::{Signer, ct_eq, random_token, sha256_b64url};
use serde::{Deserialize, Serialize};

use crate::JoseError;
use crate::claims::{Audience, take};
use crate::dpop::normalize;
use crate::jws::{HeaderSpec, Jws, MAX_TOKEN_BYTES, sign};
use crate::replay::ReplayGuard;
use crate::time::{self, DEFAULT_LEEWAY};
use crate::wit::ValidatedWit;

/// The `typ` of a WPT (media type `application/wpt+jwt`).
pub const WPT_TYP: &str = "wpt+jwt";

/// The profile name used in [`JoseError::AlgorithmNotAllowed`].
pub const PROFILE: &str = "WPT";

/// The longest accepted WPT lifetime by default (`exp - now`), in seconds.
pub const DEFAULT_MAX_LIFETIME: i64 = 300;

/// The shortest `jti` accepted by default, in characters (see the module documentation).
pub const DEFAULT_MIN_JTI_LEN: usize = 16;

/// The tokens of one HTTP request that a WPT binds.
#[derive(Debug, Clone, Copy)]
pub struct WptRequest<'a> {
    /// The `Workload-Identity-Token` header value.
    pub wit: &'a str,
    /// The target URI of the request (configured scheme and authority plus the request
    /// path), compared with `aud`.
    pub audience: &'a str,
    /// The OAuth access token in the request, if any (without the `Bearer `/`DPoP `
    /// scheme).
    pub access_token: Option<&'a str>,
    /// The `Txn-Token` header value, if any.
    pub txn_token: Option<&'a str>,
    /// Other headers carrying tokens, as `(name, value)` (any name case).
    pub other_tokens: &'a [(&'a str, &'a str)],
}

impl<'a> WptRequest<'a> {
    /// A request carrying only the WIT.
    pub fn new(wit: &'a str, audience: &'a str) -> Self {
        Self {
            wit,
            audience,
            access_token: None,
            txn_token: None,
            other_tokens: &[],
        }
    }

    /// Adds the access token.
    pub fn with_access_token(mut self, token: &'a str) -> Self {
        self.access_token = Some(token);
        self
    }

    /// Adds the Txn-Token.
    pub fn with_txn_token(mut self, token: &'a str) -> Self {
        self.txn_token = Some(token);
        self
    }

    /// Sets the other token-carrying headers.
    pub fn with_other_tokens(mut self, tokens: &'a [(&'a str, &'a str)]) -> Self {
        self.other_tokens = tokens;
        self
    }
}

/// The claims of a WPT. Fields are declared in lexicographic order so the serialized
/// claims match the draft's examples byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WptClaims {
    /// Hash of the access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ath: Option<String>,
    /// The target URI.
    pub aud: Audience,
    /// Expiry.
    pub exp: i64,
    /// Unique identifier.
    pub jti: String,
    /// Hashes of other tokens, by lower-case header name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oth: Option<BTreeMap<String, String>>,
    /// Hash of the Txn-Token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tth: Option<String>,
    /// Hash of the WIT.
    pub wth: String,
}

impl WptClaims {
    /// Claims binding `request` (its WIT, audience and every token), expiring at `exp`,
    /// with a random 128-bit `jti`.
    pub fn new(request: &WptRequest<'_>, exp: i64) -> Result<Self, JoseError> {
        let oth = (!request.other_tokens.is_empty()).then(|| {
            request
                .other_tokens
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), other_token_hash(value)))
                .collect()
        });
        Ok(Self {
            ath: request.access_token.map(sha256_b64url),
            aud: Audience::One(request.audience.to_owned()),
            exp,
            jti: random_token().map_err(JoseError::Internal)?,
            oth,
            tth: request.txn_token.map(sha256_b64url),
            wth: sha256_b64url(request.wit),
        })
    }
}

/// Signs `claims` with the workload key the WIT confirms: header `alg` (the signer's,
/// which must be the WIT's `cnf.jwk.alg`) and `typ: wpt+jwt`.
pub fn create(claims: &WptClaims, signer: &dyn Signer) -> Result<String, JoseError> {
    sign(
        &HeaderSpec {
            typ: Some(WPT_TYP),
            kid: false,
            jwk: false,
        },
        claims,
        signer,
    )
}

/// The `oth` hash of a header value: leading and trailing spaces and tabs removed.
fn other_token_hash(value: &str) -> String {
    sha256_b64url(value.trim_matches([' ', '\t']))
}

/// Validates WPTs. Build once, share across requests.
#[derive(Debug, Clone)]
pub struct Validator {
    authorities: Vec<String>,
    clock: Arc<dyn Clock>,
    replay: Arc<dyn ReplayGuard>,
    leeway: i64,
    max_lifetime: i64,
    min_jti_len: usize,
    max_token_bytes: usize,
}

impl Validator {
    /// A validator for a workload served at `authorities` (`https://host[:port]`, as
    /// configured; a path, query or fragment is ignored, and values that are not
    /// absolute http(s) URIs are dropped: see [`Validator::authorities`]). Defaults:
    /// [`DEFAULT_LEEWAY`], [`DEFAULT_MAX_LIFETIME`], [`DEFAULT_MIN_JTI_LEN`],
    /// [`MAX_TOKEN_BYTES`]. Every accepted `jti` is recorded in `replay`.
    pub fn new<I, S>(authorities: I, clock: Arc<dyn Clock>, replay: Arc<dyn ReplayGuard>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let authorities = authorities
            .into_iter()
            .filter_map(|a| normalize(a.as_ref()).map(|n| n.origin().to_owned()))
            .collect();
        Self {
            authorities,
            clock,
            replay,
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            min_jti_len: DEFAULT_MIN_JTI_LEN,
            max_token_bytes: MAX_TOKEN_BYTES,
        }
    }

    /// The configured authorities, normalised (check at start-up that none was dropped).
    pub fn authorities(&self) -> &[String] {
        &self.authorities
    }

    /// Clock-skew allowance, in seconds.
    pub fn leeway(mut self, seconds: i64) -> Self {
        self.leeway = seconds;
        self
    }

    /// The longest accepted lifetime (`exp - now`), in seconds.
    pub fn max_lifetime(mut self, seconds: i64) -> Self {
        self.max_lifetime = seconds;
        self
    }

    /// The shortest accepted `jti`, in characters.
    pub fn min_jti_len(mut self, chars: usize) -> Self {
        self.min_jti_len = chars;
        self
    }

    /// The largest accepted token, in bytes.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Validates `wpt` (the `Workload-Proof-Token` header value) against `wit` (the
    /// request's WIT, validated by a [`crate::wit::Validator`], possibly cached) and the
    /// request's tokens. See the module documentation for the rules. One signature
    /// verification; the `jti` is recorded only if every other rule passes.
    pub fn validate(
        &self,
        wpt: &str,
        wit: &ValidatedWit,
        request: &WptRequest<'_>,
    ) -> Result<ValidatedWpt, JoseError> {
        let now = self.clock.now();
        time::check_exp(wit.exp(), now, self.leeway)?;
        let jws = Jws::decode_with_limit(wpt, self.max_token_bytes)?;
        let header = &jws.header;
        header.require_typ(WPT_TYP)?;
        if header.alg != wit.confirmation_alg() {
            return Err(JoseError::AlgorithmNotAllowed {
                alg: header.alg,
                profile: PROFILE,
            });
        }
        jws.verify(wit.confirmation_key())?;

        let mut m = take::claims_set(jws.payload())?;
        let aud = take::required(take::audience(&mut m)?, "aud")?;
        let audience = self.check_audience(&aud, request.audience)?;
        let exp = take::required(take::numeric_date(&mut m, "exp")?, "exp")?;
        time::check_exp(exp, now, self.leeway)?;
        time::check_max_lifetime(exp, now, self.max_lifetime, self.leeway)?;
        let jti = take::required(take::non_empty_string(&mut m, "jti")?, "jti")?;
        if jti.chars().count() < self.min_jti_len {
            return Err(JoseError::InvalidClaim {
                claim: "jti",
                reason: "too short to be unique",
            });
        }

        let wth = take::required(take::string(&mut m, "wth")?, "wth")?;
        let presented = sha256_b64url(request.wit);
        if !ct_eq(presented.as_bytes(), wit.wit_hash().as_bytes())
            || !ct_eq(wth.as_bytes(), presented.as_bytes())
        {
            return Err(JoseError::BindingMismatch("wth"));
        }
        check_token_hash(take::string(&mut m, "ath")?, request.access_token, "ath")?;
        check_token_hash(take::string(&mut m, "tth")?, request.txn_token, "tth")?;
        let oth = take::object(&mut m, "oth")?;
        check_other_tokens(oth, request.other_tokens)?;

        // Last: only a proof valid in every other respect takes a replay-cache slot.
        let key = format!("wpt:{}:{jti}", wit.confirmation_jkt());
        self.replay
            .check_and_record(&key, exp.saturating_add(self.leeway), now)?;

        Ok(ValidatedWpt { jti, exp, audience })
    }

    /// The matching `aud` value.
    fn check_audience(&self, aud: &Audience, expected: &str) -> Result<String, JoseError> {
        let expected = normalize(expected).ok_or(JoseError::AudienceMismatch)?;
        if !self.authorities.iter().any(|a| a == expected.origin()) {
            return Err(JoseError::AudienceMismatch);
        }
        aud.iter()
            .find(|a| normalize(a).is_some_and(|n| n.full == expected.full))
            .map(str::to_owned)
            .ok_or(JoseError::AudienceMismatch)
    }
}

/// `ath`/`tth`: present iff the token is, and then its hash.
fn check_token_hash(
    claim: Option<String>,
    token: Option<&str>,
    name: &'static str,
) -> Result<(), JoseError> {
    match (claim, token) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(JoseError::MissingClaim(name)),
        (Some(_), None) => Err(JoseError::ForbiddenClaim(name)),
        (Some(c), Some(t)) if ct_eq(c.as_bytes(), sha256_b64url(t).as_bytes()) => Ok(()),
        (Some(_), Some(_)) => Err(JoseError::BindingMismatch(name)),
    }
}

fn check_other_tokens(
    oth: Option<serde_json::Map<String, serde_json::Value>>,
    tokens: &[(&str, &str)],
) -> Result<(), JoseError> {
    let names: Vec<String> = tokens.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    for (i, n) in names.iter().enumerate() {
        if names.iter().skip(i + 1).any(|o| o == n) {
            return Err(JoseError::InvalidClaim {
                claim: "oth",
                reason: "repeated header fields are not supported",
            });
        }
    }
    let Some(oth) = oth else {
        return if tokens.is_empty() {
            Ok(())
        } else {
            Err(JoseError::MissingClaim("oth"))
        };
    };
    for (key, value) in &oth {
        let serde_json::Value::String(hash) = value else {
            return Err(JoseError::InvalidClaim {
                claim: "oth",
                reason: "values must be strings",
            });
        };
        let Some((_, token)) = names
            .iter()
            .zip(tokens)
            .find(|(n, _)| *n == key)
            .map(|(_, t)| *t)
        else {
            return Err(JoseError::InvalidClaim {
                claim: "oth",
                reason: "names a header not in the request",
            });
        };
        if !ct_eq(hash.as_bytes(), other_token_hash(token).as_bytes()) {
            return Err(JoseError::BindingMismatch("oth"));
        }
    }
    // Every `oth` key matched a distinct presented header; equal counts mean every
    // presented header is covered.
    if oth.len() != tokens.len() {
        return Err(JoseError::InvalidClaim {
            claim: "oth",
            reason: "does not cover every other token in the request",
        });
    }
    Ok(())
}

/// A WPT that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedWpt {
    jti: String,
    exp: i64,
    audience: String,
}

impl ValidatedWpt {
    /// `jti`.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// `exp`.
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// The `aud` value that matched the request.
    pub fn audience(&self) -> &str {
        &self.audience
    }
}
