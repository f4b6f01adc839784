//! DPoP proofs (RFC 9449): creation and validation.
//!
//! A DPoP proof is a JWT signed with a key the client chooses and embeds in the `jwk`
//! header. It proves possession of that key for one HTTP request (`htm`, `htu`, `iat`,
//! `jti`) and, at a resource server, for one access token (`ath`). Binding to the
//! access token itself is checked with [`ValidatedDpop::check_binding`] against the
//! token's `cnf.jkt` (RFC 9449 section 6).
//!
//! # Rules ([`Validator::validate`])
//!
//! | Rule (RFC 9449 section 4.3) | Error |
//! |---|---|
//! | shared JWS rules (no `none`/`HS*`, `jku`, `x5u`, `crit`; size) | see [`crate::jws`] |
//! | `typ` is `dpop+jwt` (RFC 7515 section 4.1.9 comparison) | [`JoseError::WrongType`] |
//! | `alg` in the configured allow-list | [`JoseError::AlgorithmNotAllowed`] |
//! | `jwk` header present | [`JoseError::Malformed`] |
//! | `jwk` has no private members | [`JoseError::Key`] (`PrivateMembersInPublicJwk`) |
//! | `jwk` is a usable key for `alg`; signature verifies with it | [`JoseError::Key`], [`JoseError::BadSignature`] |
//! | `jti` present, at least `min_jti_len` characters | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`] |
//! | `htm` present, equals the request method (case-sensitive) | [`JoseError::MissingClaim`], [`JoseError::BindingMismatch`]`("htm")` |
//! | `htu` present, an absolute http(s) URI, equal to the request URI after normalisation, query and fragment ignored | [`JoseError::MissingClaim`], [`JoseError::InvalidClaim`], [`JoseError::BindingMismatch`]`("htu")` |
//! | `iat` present, within `[now - max_age - leeway, now + leeway]` | [`JoseError::MissingClaim`], [`JoseError::TooOld`], [`JoseError::IssuedInFuture`] |
//! | with an access token: `ath` present and equal to its hash | [`JoseError::MissingClaim`], [`JoseError::BindingMismatch`]`("ath")` |
//! | when nonces are required: `nonce` present and accepted | [`JoseError::NonceRequired`], [`JoseError::BindingMismatch`]`("nonce")` |
//! | `jti` not seen before (checked last) | [`JoseError::Replayed`] |
//!
//! The `kid` of the `jwk`, if any, is ignored: the key is identified by its RFC 7638
//! thumbprint ([`ValidatedDpop::jkt`]).
//!
//! Without an access token (a request to the token endpoint, RFC 9449 section 5) the
//! `ath` claim is not defined and is **ignored** if present; RFC 9449 section 4.2 lets a
//! proof carry additional claims.

use std::sync::Arc;

use aims_core::Clock;
use aims_crypto::{Algorithm, Signer, VerifyingKey, ct_eq, random_token, sha256_b64url};
use serde::{Deserialize, Serialize};

use crate::JoseError;
use crate::claims::take;
use crate::jws::{HeaderSpec, Jws, MAX_TOKEN_BYTES, sign};
use crate::replay::ReplayGuard;
use crate::time::{DEFAULT_LEEWAY, check_iat_window};

/// The `typ` of a DPoP proof (RFC 9449 section 4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// The profile name used in [`JoseError::AlgorithmNotAllowed`].
pub const PROFILE: &str = "DPoP";

/// The algorithms accepted by default.
pub const DEFAULT_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// How old (by `iat`) a proof may be by default, in seconds.
pub const DEFAULT_MAX_AGE: i64 = 300;

/// The shortest `jti` accepted by default, in characters: 16 base64url characters carry
/// 96 bits, the minimum RFC 9449 section 4.2 suggests. (The RFC's own examples use
/// exactly 16.) Proofs made by [`create_proof`] use 22 characters (128 bits).
pub const DEFAULT_MIN_JTI_LEN: usize = 16;

/// The claims of a DPoP proof (RFC 9449 section 4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpopClaims {
    /// Unique identifier of the proof.
    pub jti: String,
    /// HTTP method of the request.
    pub htm: String,
    /// HTTP target URI of the request, without query and fragment.
    pub htu: String,
    /// Creation time.
    pub iat: i64,
    /// base64url SHA-256 of the access token presented with the proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ath: Option<String>,
    /// The server-provided nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// Creates a DPoP proof for one request, signed by `signer` with its public key in the
/// `jwk` header (without `kid`).
///
/// `htu` is the target URI; any query and fragment are removed. With `access_token`
/// the proof carries `ath` (protected resource access, RFC 9449 section 7); `nonce` is
/// the latest `DPoP-Nonce` value from the server. The `jti` is 128 random bits.
pub fn create_proof(
    signer: &dyn Signer,
    htm: &str,
    htu: &str,
    access_token: Option<&str>,
    nonce: Option<&str>,
    iat: i64,
) -> Result<String, JoseError> {
    let claims = DpopClaims {
        jti: random_token().map_err(JoseError::Internal)?,
        htm: htm.to_owned(),
        htu: strip_query_and_fragment(htu).to_owned(),
        iat,
        ath: access_token.map(sha256_b64url),
        nonce: nonce.map(str::to_owned),
    };
    sign(
        &HeaderSpec {
            typ: Some(DPOP_TYP),
            kid: false,
            jwk: true,
        },
        &claims,
        signer,
    )
}

/// The request a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The HTTP method, exactly as received (compared case-sensitively with `htm`).
    pub method: &'a str,
    /// The target URI of the request as the server knows it (scheme and authority from
    /// configuration, not from a `Host` header the client controls); query and
    /// fragment are ignored.
    pub uri: &'a str,
    /// The access token presented with the request (`Authorization: DPoP <token>`), or
    /// `None` at the token endpoint.
    pub access_token: Option<&'a str>,
}

impl<'a> DpopRequest<'a> {
    /// A request without an access token (token endpoint).
    pub fn new(method: &'a str, uri: &'a str) -> Self {
        Self {
            method,
            uri,
            access_token: None,
        }
    }

    /// The same request presenting `access_token` (protected resource access).
    pub fn with_access_token(mut self, access_token: &'a str) -> Self {
        self.access_token = Some(access_token);
        self
    }
}

type NonceCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Validates DPoP proofs. Build once, share across requests.
#[derive(Clone)]
pub struct Validator {
    clock: Arc<dyn Clock>,
    replay: Arc<dyn ReplayGuard>,
    algorithms: Vec<Algorithm>,
    max_age: i64,
    leeway: i64,
    min_jti_len: usize,
    max_token_bytes: usize,
    nonce: Option<NonceCheck>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("dpop::Validator")
            .field("algorithms", &self.algorithms)
            .field("max_age", &self.max_age)
            .field("leeway", &self.leeway)
            .field("min_jti_len", &self.min_jti_len)
            .field("max_token_bytes", &self.max_token_bytes)
            .field("requires_nonce", &self.nonce.is_some())
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator with the defaults: [`DEFAULT_ALGORITHMS`], [`DEFAULT_MAX_AGE`],
    /// [`DEFAULT_LEEWAY`], [`DEFAULT_MIN_JTI_LEN`], [`MAX_TOKEN_BYTES`], no nonce.
    /// Every accepted `jti` is recorded in `replay`.
    pub fn new(clock: Arc<dyn Clock>, replay: Arc<dyn ReplayGuard>) -> Self {
        Self {
            clock,
            replay,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            max_age: DEFAULT_MAX_AGE,
            leeway: DEFAULT_LEEWAY,
            min_jti_len: DEFAULT_MIN_JTI_LEN,
            max_token_bytes: MAX_TOKEN_BYTES,
            nonce: None,
        }
    }

    /// Replaces the algorithm allow-list (advertise it as `dpop_signing_alg_values_supported`
    /// or in `WWW-Authenticate: DPoP algs="..."`).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// How old (by `iat`) a proof may be, in seconds.
    pub fn max_age(mut self, seconds: i64) -> Self {
        self.max_age = seconds;
        self
    }

    /// Clock-skew allowance, in seconds.
    pub fn leeway(mut self, seconds: i64) -> Self {
        self.leeway = seconds;
        self
    }

    /// The shortest accepted `jti`, in characters.
    pub fn min_jti_len(mut self, chars: usize) -> Self {
        self.min_jti_len = chars;
        self
    }

    /// The largest accepted proof, in bytes.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Requires a server-provided `nonce` (RFC 9449 sections 8 and 9): proofs without
    /// one fail with [`JoseError::NonceRequired`] (answer `use_dpop_nonce` with a fresh
    /// `DPoP-Nonce`), proofs whose nonce `accept` refuses fail with
    /// [`JoseError::BindingMismatch`]`("nonce")`.
    pub fn require_nonce(mut self, accept: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.nonce = Some(Arc::new(accept));
        self
    }

    /// The algorithm allow-list.
    pub fn supported_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Validates `proof` (the `DPoP` header value) for `request`; see the module
    /// documentation for the rules. One signature verification; the `jti` is recorded
    /// only if every other rule passes.
    pub fn validate(
        &self,
        proof: &str,
        request: &DpopRequest<'_>,
    ) -> Result<ValidatedDpop, JoseError> {
        let jws = Jws::decode_with_limit(proof, self.max_token_bytes)?;
        let header = &jws.header;
        header.require_typ(DPOP_TYP)?;
        header.require_alg(&self.algorithms, PROFILE)?;
        let jwk = header
            .jwk
            .as_ref()
            .ok_or(JoseError::Malformed("DPoP proof has no `jwk` header"))?;
        // Refuses private members (RFC 9449 section 4.3 step 7) with
        // `JoseError::Key(CryptoError::PrivateMembersInPublicJwk)`.
        let key = VerifyingKey::from_jwk(jwk)?;
        jws.verify(&key)?;

        let now = self.clock.now();
        let mut m = take::claims_set(jws.payload())?;
        let jti = take::required(take::non_empty_string(&mut m, "jti")?, "jti")?;
        if jti.chars().count() < self.min_jti_len {
            return Err(JoseError::InvalidClaim {
                claim: "jti",
                reason: "too short to be unique",
            });
        }
        let htm = take::required(take::string(&mut m, "htm")?, "htm")?;
        if htm != request.method {
            return Err(JoseError::BindingMismatch("htm"));
        }
        let htu = take::required(take::string(&mut m, "htu")?, "htu")?;
        let claimed = normalize_http_uri(&htu).ok_or(JoseError::InvalidClaim {
            claim: "htu",
            reason: "not an absolute http(s) URI",
        })?;
        match normalize_http_uri(request.uri) {
            Some(actual) if actual == claimed => {}
            _ => return Err(JoseError::BindingMismatch("htu")),
        }
        let iat = take::required(take::numeric_date(&mut m, "iat")?, "iat")?;
        check_iat_window(iat, now, self.max_age, self.leeway)?;
        let ath = take::string(&mut m, "ath")?;
        if let Some(token) = request.access_token {
            let ath = ath.as_deref().ok_or(JoseError::MissingClaim("ath"))?;
            if !ct_eq(ath.as_bytes(), sha256_b64url(token).as_bytes()) {
                return Err(JoseError::BindingMismatch("ath"));
            }
        }
        let nonce = take::string(&mut m, "nonce")?;
        if let Some(accept) = &self.nonce {
            let n = nonce.as_deref().ok_or(JoseError::NonceRequired)?;
            if !accept(n) {
                return Err(JoseError::BindingMismatch("nonce"));
            }
        }
        let jkt = jwk.thumbprint()?;

        // Last: only a proof valid in every other respect takes a replay-cache slot.
        // The key is scoped to the proof key, so one client cannot burn another's jti.
        let last_acceptable = iat.saturating_add(self.max_age).saturating_add(self.leeway);
        self.replay
            .check_and_record(&format!("dpop:{jkt}:{jti}"), last_acceptable, now)?;

        Ok(ValidatedDpop {
            jkt,
            claims: DpopClaims {
                jti,
                htm,
                htu,
                iat,
                ath,
                nonce,
            },
        })
    }
}

/// A proof that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedDpop {
    jkt: String,
    claims: DpopClaims,
}

impl ValidatedDpop {
    /// The RFC 7638 SHA-256 thumbprint of the proof key: the value an authorization
    /// server puts in the access token's `cnf.jkt`.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The proof's claims.
    pub fn claims(&self) -> &DpopClaims {
        &self.claims
    }

    /// Checks that the access token is bound to the proof key (RFC 9449 sections 6 and
    /// 7.1): `cnf_jkt` is the token's `cnf.jkt`. Fails with
    /// [`JoseError::BindingMismatch`]`("cnf")`. Constant-time comparison.
    pub fn check_binding(&self, cnf_jkt: &str) -> Result<(), JoseError> {
        if ct_eq(self.jkt.as_bytes(), cnf_jkt.as_bytes()) {
            Ok(())
        } else {
            Err(JoseError::BindingMismatch("cnf"))
        }
    }
}

/// `uri` without its query and fragment.
pub(crate) fn strip_query_and_fragment(uri: &str) -> &str {
    uri.split(['?', '#']).next().unwrap_or_default()
}

/// A normalised absolute http(s) URI: `origin` is `scheme://host[:port]`, `full` adds
/// the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormalizedUri {
    pub(crate) full: String,
    origin_len: usize,
}

impl NormalizedUri {
    /// `scheme://host[:port]`.
    pub(crate) fn origin(&self) -> &str {
        self.full.get(..self.origin_len).unwrap_or_default()
    }
}

/// Normalises an absolute `http` or `https` URI for comparison (RFC 9449 section 4.3,
/// RFC 3986 sections 6.2.2 and 6.2.3), dropping query and fragment. `None` if `uri` is
/// not such a URI.
///
/// - scheme and host are lower-cased;
/// - an empty or default port (`80` for http, `443` for https) is removed; other ports
///   lose leading zeros;
/// - an empty path becomes `/`;
/// - percent-encoded unreserved characters are decoded, other triplets upper-cased;
/// - `.` and `..` segments are removed (RFC 3986 section 5.2.4).
///
/// Refused: other schemes, a missing `//authority`, userinfo (RFC 9110 section 4.2.4),
/// an empty host, percent-encoding in the host, a non-numeric or out-of-range port,
/// malformed percent-encoding, and any character not allowed in a URI (space,
/// controls, non-ASCII, `"<>\^`{|}`).
///
/// ```
/// use aims_jose::dpop::normalize_http_uri;
/// assert_eq!(
///     normalize_http_uri("HTTPS://Server.Example.COM:443/a/./b/../%7euser?q=1#f").as_deref(),
///     Some("https://server.example.com/a/~user"),
/// );
/// assert_eq!(normalize_http_uri("ftp://example.com/"), None);
/// ```
pub fn normalize_http_uri(uri: &str) -> Option<String> {
    normalize(uri).map(|n| n.full)
}

pub(crate) fn normalize(uri: &str) -> Option<NormalizedUri> {
    let uri = strip_query_and_fragment(uri);
    if !uri.bytes().all(is_uri_byte) {
        return None;
    }
    let (scheme, rest) = uri.split_once(':')?;
    let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
        ("https", 443)
    } else if scheme.eq_ignore_ascii_case("http") {
        ("http", 80)
    } else {
        return None;
    };
    let rest = rest.strip_prefix("//")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, ""),
    };
    if authority.contains('@') || authority.contains('%') {
        return None;
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return None;
    }
    let mut full = String::with_capacity(uri.len() + 1);
    full.push_str(scheme);
    full.push_str("://");
    full.push_str(&host.to_ascii_lowercase());
    if !port.is_empty() {
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = port.trim_start_matches('0');
        if digits.len() > 5 {
            return None;
        }
        let n: u32 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        if n > 65_535 {
            return None;
        }
        if n != default_port {
            full.push(':');
            full.push_str(&n.to_string());
        }
    }
    let origin_len = full.len();
    let path = normalize_percent_encoding(if path.is_empty() { "/" } else { path })?;
    remove_dot_segments(&path, &mut full);
    Some(NormalizedUri { full, origin_len })
}

/// Splits `host[:port]`, where host may be an IP literal in brackets.
fn split_host_port(authority: &str) -> Option<(&str, &str)> {
    if authority.starts_with('[') {
        let close = authority.find(']')?;
        let host = authority.get(..=close)?;
        let after = authority.get(close + 1..)?;
        if after.is_empty() {
            return Some((host, ""));
        }
        let port = after.strip_prefix(':')?;
        Some((host, port))
    } else {
        if authority.contains(['[', ']']) {
            return None;
        }
        let (host, port) = authority.rsplit_once(':').unwrap_or((authority, ""));
        // RFC 3986 §3.2.2: a reg-name has no `:`; `a:8443:443` must not alias `a:8443`.
        if host.contains(':') {
            return None;
        }
        Some((host, port))
    }
}

/// Characters that may appear in a URI (RFC 3986 section 2): unreserved, reserved and `%`.
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes percent-encoded unreserved characters and upper-cases the other triplets
/// (RFC 3986 sections 6.2.2.1 and 6.2.2.2). `None` on a malformed triplet, or on a
/// character a path may not contain.
fn normalize_percent_encoding(path: &str) -> Option<String> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            let v = (hi << 4) | lo;
            if is_unreserved(v) {
                out.push(char::from(v));
            } else {
                out.push('%');
                out.push(char::from(*HEX.get(usize::from(hi))?));
                out.push(char::from(*HEX.get(usize::from(lo))?));
            }
            i += 3;
        } else {
            // `?` and `#` were cut off already; `[` and `]` are not allowed in a path.
            if matches!(b, b'[' | b']') {
                return None;
            }
            out.push(char::from(b));
            i += 1;
        }
    }
    Some(out)
}

/// Appends `path` (absolute, starting with `/`) to `out` without `.` and `..`
/// segments (RFC 3986 section 5.2.4).
fn remove_dot_segments(path: &str, out: &mut String) {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut kept: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    kept.push("");
                }
            }
            ".." => {
                kept.pop();
                if i == last {
                    kept.push("");
                }
            }
            s => kept.push(s),
        }
    }
    out.push('/');
    out.push_str(&kept.join("/"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Option<String> {
        normalize_http_uri(s)
    }

    #[test]
    fn scheme_host_and_port_normalisation() {
        let want = Some("https://server.example.com/token".to_owned());
        for s in [
            "https://server.example.com/token",
            "HTTPS://SERVER.EXAMPLE.COM/token",
            "https://server.example.com:443/token",
            "https://server.example.com:/token",
            "https://server.example.com:0443/token",
            "https://server.example.com/token?x=1",
            "https://server.example.com/token#frag",
            "https://server.example.com/token?x=1#frag",
            "https://server.example.com/./token",
            "https://server.example.com/a/../token",
            "https://server.example.com/%74oken",
            "https://server.example.com/%74%6F%6b%65%6e",
        ] {
            assert_eq!(n(s), want, "{s}");
        }
        assert_eq!(
            n("http://a.example:80/").as_deref(),
            Some("http://a.example/")
        );
        assert_eq!(
            n("http://a.example:443/").as_deref(),
            Some("http://a.example:443/")
        );
        assert_eq!(
            n("https://a.example:80/").as_deref(),
            Some("https://a.example:80/")
        );
        assert_eq!(
            n("https://a.example:8443").as_deref(),
            Some("https://a.example:8443/")
        );
        assert_eq!(
            n("https://a.example").as_deref(),
            Some("https://a.example/")
        );
        assert_eq!(
            n("https://[::1]:8443/x").as_deref(),
            Some("https://[::1]:8443/x")
        );
        assert_eq!(
            n("https://[FE80::1]/x").as_deref(),
            Some("https://[fe80::1]/x")
        );
        assert_eq!(
            n("https://127.0.0.1:443/x").as_deref(),
            Some("https://127.0.0.1/x")
        );
    }

    #[test]
    fn path_is_case_sensitive_and_reserved_escapes_stay() {
        assert_ne!(n("https://a.example/Token"), n("https://a.example/token"));
        assert_eq!(
            n("https://a.example/a%2fb").as_deref(),
            Some("https://a.example/a%2Fb")
        );
        assert_ne!(n("https://a.example/a%2Fb"), n("https://a.example/a/b"));
        assert_eq!(
            n("https://a.example/%e2%82%ac").as_deref(),
            Some("https://a.example/%E2%82%AC")
        );
    }

    #[test]
    fn dot_segments_rfc3986_examples() {
        // RFC 3986 section 5.2.4 examples, as absolute paths.
        assert_eq!(n("http://a/b/c/./../../g").as_deref(), Some("http://a/g"));
        assert_eq!(
            n("http://a/mid/content=5/../6").as_deref(),
            Some("http://a/mid/6")
        );
        assert_eq!(n("http://a/b/..").as_deref(), Some("http://a/"));
        assert_eq!(n("http://a/b/c/..").as_deref(), Some("http://a/b/"));
        assert_eq!(n("http://a/b/.").as_deref(), Some("http://a/b/"));
        assert_eq!(n("http://a/../../x").as_deref(), Some("http://a/x"));
        assert_eq!(n("http://a/x//y").as_deref(), Some("http://a/x//y"));
        assert_eq!(n("http://a/x/.y/..z").as_deref(), Some("http://a/x/.y/..z"));
        assert_eq!(n("http://a/%2E%2E/x").as_deref(), Some("http://a/x"));
    }

    #[test]
    fn refusals() {
        for s in [
            "",
            "server.example.com/token",
            "/token",
            "ftp://a.example/",
            "https:/a.example/",
            "https:a.example",
            "https://",
            "https:///x",
            "https://:443/x",
            "https://user@a.example/",
            "https://user:pw@a.example/",
            "https://a%2Eexample/",
            "https://a.example:99999/",
            "https://a.example:123456/",
            "https://a.example:-1/",
            "https://a.example:8a/",
            "https://a.example/%zz",
            "https://a.example/%4",
            "https://a.example/a b",
            "https://a.example/\u{e9}",
            "https://a.example/\n",
            "https://a.example/<x>",
            "https://a.example/[x]",
            "https://[::1/x",
            "https://[::1]x/",
            "https://a]b/",
            "https://a.example:8443:443/x",
            "https://a:b/",
        ] {
            assert_eq!(n(s), None, "{s:?}");
        }
    }

    #[test]
    fn origin_part() {
        let u = normalize("HTTPS://Workload.Example.com:443/path?q").unwrap();
        assert_eq!(u.origin(), "https://workload.example.com");
        assert_eq!(u.full, "https://workload.example.com/path");
    }

    #[test]
    fn strip_query_and_fragment_cases() {
        assert_eq!(strip_query_and_fragment("https://a/b?c#d"), "https://a/b");
        assert_eq!(strip_query_and_fragment("https://a/b#d?c"), "https://a/b");
        assert_eq!(strip_query_and_fragment("https://a/b"), "https://a/b");
    }
}
