//! Workload Identity Tokens: the WIMSE WIT (draft-ietf-wimse-workload-creds) and its
//! SPIFFE profile, the WIT-SVID (spiffe/spiffe `standards/WIT-SVID.md`).
//!
//! A WIT binds a workload identifier (`sub`) to a public key (`cnf.jwk`). It is never a
//! bearer credential: every presentation comes with a proof made with the bound key
//! (a [WPT](crate::wpt) or a WIMSE HTTP message signature), checked against the
//! [`ValidatedWit::confirmation_key`] and [`ValidatedWit::confirmation_alg`].
//!
//! # Rules ([`Validator::validate`])
//!
//! | Rule | WIMSE WIT | WIT-SVID | Error |
//! |---|---|---|---|
//! | shared JWS rules (no `none`/`HS*`, `jku`, `x5u`, `crit`; size) | yes | yes | see [`crate::jws`] |
//! | `typ` is `wit+jwt` | RFC 7515 section 4.1.9 comparison | exact string | [`JoseError::WrongType`] |
//! | header `alg` | any asymmetric | RS/ES/PS 256-512 | [`JoseError::AlgorithmNotAllowed`] |
//! | `kid` present | no | yes | [`JoseError::MissingKid`] |
//! | `sub` present | a [`WorkloadId`] | a non-root [`SpiffeId`] | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`], [`JoseError::SubjectRejected`] |
//! | trust domain of `sub` in the optional allow-list | yes | yes | [`JoseError::SubjectRejected`] |
//! | key from the anchors of `sub`'s trust domain (`kid`, `alg`) | yes | yes | [`JoseError::UnknownKey`], [`JoseError::MissingKid`] |
//! | signature | yes | yes | [`JoseError::BadSignature`] |
//! | `exp` present, not passed | yes | yes | [`JoseError::MissingClaim`], [`JoseError::Expired`] |
//! | `nbf`, if present, reached | yes | yes | [`JoseError::NotYetValid`] |
//! | optional maximum lifetime (`exp - now`) | yes | yes | [`JoseError::LifetimeTooLong`] |
//! | `aud` absent | no | yes | [`JoseError::ForbiddenClaim`] |
//! | `cnf` and `cnf.jwk` present | yes | yes | [`JoseError::MissingClaim`] |
//! | `cnf.jwk` has no private members | yes | yes | [`JoseError::InvalidClaim`] |
//! | `cnf.jwk.alg` present | yes | yes | [`JoseError::MissingClaim`] |
//! | `cnf.jwk.alg` an asymmetric JWS algorithm AIMS knows | yes | yes | [`JoseError::InvalidClaim`] |
//! | `cnf.jwk.alg` allowed | any asymmetric | RS/ES/PS 256-512 | [`JoseError::AlgorithmNotAllowed`] |
//! | `cnf.jwk` a valid public key suiting `cnf.jwk.alg` | yes | yes | [`JoseError::InvalidClaim`] |
//!
//! # Decisions
//!
//! - **`iss` is never used to find keys.** The trust domain of the unverified `sub`
//!   selects the anchor set; nothing else is trusted before the signature verifies with
//!   a key of that trust domain.
//! - **`typ`**: go-spiffe compares the WIT-SVID `typ` as an exact string, so
//!   `application/wit+jwt` is refused for WIT-SVIDs; for plain WITs the RFC 7515
//!   comparison (case-insensitive, optional `application/`) applies.
//! - **`jti`** is exposed but not replay-checked: a WIT is presented many times, and
//!   WIT-SVID forbids using its `jti` for replay protection.
//! - **`iat`** is not required (the drafts do not require it); if present it must be a
//!   NumericDate.
//! - Claims are parsed once, before verification, only so that `sub` can select the key
//!   set; the parsed claims are used only after the signature has verified.

use std::sync::Arc;

use aims_core::{Clock, SpiffeId, WorkloadId};
use aims_crypto::{Algorithm, Jwk, Signer, VerifyingKey, random_token, sha256_b64url};
use serde::{Deserialize, Serialize};

use crate::JoseError;
use crate::claims::take;
use crate::jws::{HeaderSpec, Jws, MAX_TOKEN_BYTES, sign};
use crate::keys::KeyResolver;
use crate::time::{self, DEFAULT_LEEWAY};

/// The `typ` of a WIT (media type `application/wit+jwt`).
pub const WIT_TYP: &str = "wit+jwt";

/// The algorithms WIT-SVID allows for both the token and `cnf.jwk.alg`.
pub const WIT_SVID_ALGORITHMS: [Algorithm; 9] = [
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

/// Which WIT rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WitProfile {
    /// draft-ietf-wimse-workload-creds: any Workload Identifier, any asymmetric algorithm.
    Wimse,
    /// SPIFFE WIT-SVID: a SPIFFE ID subject, `kid` required, no `aud`, no EdDSA.
    WitSvid,
}

impl WitProfile {
    /// The profile name used in errors.
    pub fn name(self) -> &'static str {
        match self {
            WitProfile::Wimse => "WIT",
            WitProfile::WitSvid => "WIT-SVID",
        }
    }

    /// The algorithms the profile allows (header `alg` and `cnf.jwk.alg`).
    pub fn allowed_algorithms(self) -> &'static [Algorithm] {
        match self {
            WitProfile::Wimse => &Algorithm::ALL,
            WitProfile::WitSvid => &WIT_SVID_ALGORITHMS,
        }
    }

    fn cnf_name(self) -> &'static str {
        match self {
            WitProfile::Wimse => "WIT cnf.jwk",
            WitProfile::WitSvid => "WIT-SVID cnf.jwk",
        }
    }
}

/// The `cnf` claim of a WIT (RFC 7800 section 3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The workload's public key, with `alg` set.
    pub jwk: Jwk,
}

/// The claims of a WIT, for creation. Fields are declared in lexicographic order so the
/// serialized claims are in the same order as the WIMSE examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitClaims {
    /// The key the workload proves possession of.
    pub cnf: Confirmation,
    /// Expiry.
    pub exp: i64,
    /// Issue time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Issuer (for audit only; never used to find keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Token identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The workload identifier.
    pub sub: WorkloadId,
}

impl WitClaims {
    /// Claims for `sub`, bound to `workload_key`, valid for `lifetime` seconds from
    /// `iat`, with a random 128-bit `jti`.
    ///
    /// `workload_key` must carry `alg` (a signer's [`Signer::public_jwk`] does); only
    /// its public members are kept, without `kid` or `use`. Fails with
    /// [`JoseError::MissingClaim`]`("cnf.jwk.alg")` without `alg`, and
    /// [`JoseError::InvalidClaim`] if the key is not a valid public key for that `alg`.
    pub fn new(
        sub: WorkloadId,
        workload_key: &Jwk,
        iat: i64,
        lifetime: i64,
    ) -> Result<Self, JoseError> {
        let mut jwk = workload_key.to_public();
        jwk.kid = None;
        jwk.use_ = None;
        check_cnf_key(&jwk, WitProfile::Wimse)?;
        Ok(Self {
            cnf: Confirmation { jwk },
            exp: iat.saturating_add(lifetime),
            iat: Some(iat),
            iss: None,
            jti: Some(random_token().map_err(JoseError::Internal)?),
            sub,
        })
    }

    /// Sets the issuer.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.iss = Some(iss.into());
        self
    }
}

/// Signs `claims` with the identity server's `signer`: header `alg`, `kid` (the
/// signer's) and `typ: wit+jwt`. For a WIT-SVID, use an RS/ES/PS signer, a SPIFFE ID
/// subject and an ES/RS/PS `cnf.jwk.alg`.
pub fn create(claims: &WitClaims, signer: &dyn Signer) -> Result<String, JoseError> {
    sign(
        &HeaderSpec {
            typ: Some(WIT_TYP),
            kid: true,
            jwk: false,
        },
        claims,
        signer,
    )
}

/// Validates WITs of one profile. Build once, share across requests.
#[derive(Debug, Clone)]
pub struct Validator {
    profile: WitProfile,
    clock: Arc<dyn Clock>,
    leeway: i64,
    algorithms: Vec<Algorithm>,
    max_lifetime: Option<i64>,
    trust_domains: Option<Vec<String>>,
    max_token_bytes: usize,
}

impl Validator {
    /// A validator for `profile` with the defaults: the profile's algorithms,
    /// [`DEFAULT_LEEWAY`], no maximum lifetime, every trust domain the key resolver
    /// knows, [`MAX_TOKEN_BYTES`].
    pub fn new(profile: WitProfile, clock: Arc<dyn Clock>) -> Self {
        Self {
            profile,
            clock,
            leeway: DEFAULT_LEEWAY,
            algorithms: profile.allowed_algorithms().to_vec(),
            max_lifetime: None,
            trust_domains: None,
            max_token_bytes: MAX_TOKEN_BYTES,
        }
    }

    /// The profile.
    pub fn profile(&self) -> WitProfile {
        self.profile
    }

    /// Clock-skew allowance, in seconds.
    pub fn leeway(mut self, seconds: i64) -> Self {
        self.leeway = seconds;
        self
    }

    /// Narrows the header `alg` allow-list. Algorithms the profile does not allow are
    /// dropped, so this never loosens the profile.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        let allowed = self.profile.allowed_algorithms();
        self.algorithms = algorithms
            .into_iter()
            .filter(|a| allowed.contains(a))
            .collect();
        self
    }

    /// Rejects WITs whose `exp` is more than `seconds` (plus leeway) away
    /// ([`JoseError::LifetimeTooLong`]); the WIT-SVID "lifespan policy".
    pub fn max_lifetime(mut self, seconds: i64) -> Self {
        self.max_lifetime = Some(seconds);
        self
    }

    /// Accepts only subjects of this trust domain (may be called several times). Without
    /// it, any trust domain the key resolver has anchors for is accepted.
    pub fn trust_domain(mut self, trust_domain: impl Into<String>) -> Self {
        self.trust_domains
            .get_or_insert_with(Vec::new)
            .push(trust_domain.into());
        self
    }

    /// The largest accepted token, in bytes.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Validates `token` (the `Workload-Identity-Token` header value) with the trust
    /// anchors in `keys`, looked up under the trust domain of `sub`. See the module
    /// documentation for the rules. One signature verification.
    pub fn validate(&self, token: &str, keys: &dyn KeyResolver) -> Result<ValidatedWit, JoseError> {
        let profile = self.profile;
        let jws = Jws::decode_with_limit(token, self.max_token_bytes)?;
        let header = &jws.header;
        match profile {
            WitProfile::WitSvid if header.typ.as_deref() != Some(WIT_TYP) => {
                return Err(JoseError::WrongType {
                    expected: WIT_TYP,
                    found: header.typ.clone(),
                });
            }
            WitProfile::WitSvid => {}
            WitProfile::Wimse => header.require_typ(WIT_TYP)?,
        }
        header.require_alg(&self.algorithms, profile.name())?;
        if profile == WitProfile::WitSvid && header.kid.as_deref().is_none_or(str::is_empty) {
            return Err(JoseError::MissingKid);
        }

        // Unverified: `sub` only selects the trust anchors.
        let mut m = take::claims_set(jws.payload())?;
        let sub = take::required(take::non_empty_string(&mut m, "sub")?, "sub")?;
        let subject = parse_subject(profile, sub)?;
        let trust_domain = subject.trust_domain().as_str();
        if let Some(allowed) = &self.trust_domains
            && !allowed.iter().any(|td| td == trust_domain)
        {
            return Err(JoseError::SubjectRejected("trust domain not accepted"));
        }
        let key = keys.resolve(trust_domain, header.kid.as_deref(), header.alg)?;
        jws.verify(&key)?;

        let now = self.clock.now();
        let exp = take::required(take::numeric_date(&mut m, "exp")?, "exp")?;
        time::check_exp(exp, now, self.leeway)?;
        if let Some(nbf) = take::numeric_date(&mut m, "nbf")? {
            time::check_nbf(nbf, now, self.leeway)?;
        }
        if let Some(max) = self.max_lifetime {
            time::check_max_lifetime(exp, now, max, self.leeway)?;
        }
        if profile == WitProfile::WitSvid && m.contains_key("aud") {
            return Err(JoseError::ForbiddenClaim("aud"));
        }
        let mut cnf = take::required(take::object(&mut m, "cnf")?, "cnf")?;
        let jwk_value = take::required(cnf.remove("jwk"), "cnf.jwk")?;
        let cnf_jwk: Jwk =
            serde_json::from_value(jwk_value).map_err(|_| JoseError::InvalidClaim {
                claim: "cnf",
                reason: "cnf.jwk is not a JWK",
            })?;
        let (cnf_key, cnf_alg) = check_cnf_key(&cnf_jwk, profile)?;
        let cnf_jkt = cnf_jwk.thumbprint().map_err(|_| INVALID_CNF_KEY)?;
        let iat = take::numeric_date(&mut m, "iat")?;
        let jti = take::string(&mut m, "jti")?;
        let iss = take::string(&mut m, "iss")?;

        Ok(ValidatedWit {
            profile,
            subject,
            exp,
            iat,
            jti,
            iss,
            kid: header.kid.clone(),
            cnf_jwk,
            cnf_key,
            cnf_alg,
            cnf_jkt,
            wit_hash: sha256_b64url(token),
        })
    }
}

const INVALID_CNF_KEY: JoseError = JoseError::InvalidClaim {
    claim: "cnf",
    reason: "cnf.jwk is not a valid public key",
};

fn parse_subject(profile: WitProfile, sub: String) -> Result<WorkloadId, JoseError> {
    match profile {
        WitProfile::Wimse => WorkloadId::try_from(sub).map_err(|_| JoseError::InvalidClaim {
            claim: "sub",
            reason: "not a valid workload identifier",
        }),
        WitProfile::WitSvid => {
            let id = SpiffeId::try_from(sub).map_err(|_| JoseError::InvalidClaim {
                claim: "sub",
                reason: "not a valid SPIFFE ID",
            })?;
            if id.is_root() {
                return Err(JoseError::SubjectRejected(
                    "a trust domain's root ID names no workload",
                ));
            }
            Ok(WorkloadId::from(id))
        }
    }
}

/// Checks a `cnf.jwk` and parses it once.
fn check_cnf_key(jwk: &Jwk, profile: WitProfile) -> Result<(VerifyingKey, Algorithm), JoseError> {
    if jwk.has_private_members() {
        return Err(JoseError::InvalidClaim {
            claim: "cnf",
            reason: "cnf.jwk contains private key material",
        });
    }
    let alg_name = jwk
        .alg
        .as_deref()
        .ok_or(JoseError::MissingClaim("cnf.jwk.alg"))?;
    let alg = Algorithm::from_name(alg_name).map_err(|_| JoseError::InvalidClaim {
        claim: "cnf",
        reason: "cnf.jwk.alg is not an asymmetric JWS algorithm",
    })?;
    if !profile.allowed_algorithms().contains(&alg) {
        return Err(JoseError::AlgorithmNotAllowed {
            alg,
            profile: profile.cnf_name(),
        });
    }
    let unsuitable = JoseError::InvalidClaim {
        claim: "cnf",
        reason: "cnf.jwk does not suit cnf.jwk.alg",
    };
    if jwk.key_type().is_ok_and(|kt| kt != alg.key_type()) {
        return Err(unsuitable);
    }
    let key = VerifyingKey::from_jwk(jwk).map_err(|_| INVALID_CNF_KEY)?;
    if !key.supports(alg) {
        return Err(unsuitable);
    }
    Ok((key, alg))
}

/// A WIT that passed every rule. Its confirmation key is parsed once, here, and reused
/// for every proof presented with the WIT.
#[derive(Debug, Clone)]
pub struct ValidatedWit {
    profile: WitProfile,
    subject: WorkloadId,
    exp: i64,
    iat: Option<i64>,
    jti: Option<String>,
    iss: Option<String>,
    kid: Option<String>,
    cnf_jwk: Jwk,
    cnf_key: VerifyingKey,
    cnf_alg: Algorithm,
    cnf_jkt: String,
    wit_hash: String,
}

impl ValidatedWit {
    /// The profile it was validated under.
    pub fn profile(&self) -> WitProfile {
        self.profile
    }

    /// The workload identifier (`sub`).
    pub fn subject(&self) -> &WorkloadId {
        &self.subject
    }

    /// The SPIFFE ID, if `sub` is one (always, for a WIT-SVID).
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        self.subject.as_spiffe()
    }

    /// `exp`.
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// `iat`, if present.
    pub fn iat(&self) -> Option<i64> {
        self.iat
    }

    /// `jti`, if present (not a replay-protection handle).
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_deref()
    }

    /// `iss`, if present (audit only).
    pub fn issuer(&self) -> Option<&str> {
        self.iss.as_deref()
    }

    /// The `kid` of the trust-anchor key that signed the WIT, if present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The bound public key (`cnf.jwk`), parsed.
    pub fn confirmation_key(&self) -> &VerifyingKey {
        &self.cnf_key
    }

    /// The algorithm every proof must use (`cnf.jwk.alg`).
    pub fn confirmation_alg(&self) -> Algorithm {
        self.cnf_alg
    }

    /// The bound key as it appeared in the token.
    pub fn confirmation_jwk(&self) -> &Jwk {
        &self.cnf_jwk
    }

    /// The RFC 7638 SHA-256 thumbprint of `cnf.jwk`.
    pub fn confirmation_jkt(&self) -> &str {
        &self.cnf_jkt
    }

    /// base64url(SHA-256(the WIT)): the value a WPT's `wth` must carry.
    pub fn wit_hash(&self) -> &str {
        &self.wit_hash
    }
}
