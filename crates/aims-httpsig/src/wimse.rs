//! The WIMSE workload-to-workload profile of HTTP Message Signatures
//! (draft-ietf-wimse-http-signature, ED -07).
//!
//! A workload signs each request with the private key its Workload Identity Token (WIT)
//! confirms, and sends the WIT in `Workload-Identity-Token`. The recipient validates the
//! WIT against the trust anchors of the WIT's trust domain, then the signature with the
//! WIT's `cnf.jwk` and `cnf.jwk.alg`, then the profile's rules. A server may sign its
//! response the same way with its own WIT; the response names the request's nonce in
//! `wimse-req-nonce`.
//!
//! # Request rules ([`RequestVerifier::verify`], in this order)
//!
//! | Rule | Error |
//! |---|---|
//! | exactly one `Workload-Identity-Token` field line | [`HttpSigError::MissingWit`], [`HttpSigError::DuplicateWit`] |
//! | the WIT is valid (trust domain anchors, `typ`, `exp`, `cnf.jwk`, ...), checked **first** | [`HttpSigError::InvalidWit`] |
//! | a signature labelled `wimse`, or the only signature | [`HttpSigError::MissingSignature`], [`HttpSigError::AmbiguousSignature`] |
//! | `Signature-Input`/`Signature` well-formed, at most 8 KiB | [`HttpSigError::MalformedHeader`], [`HttpSigError::HeaderTooLarge`], [`HttpSigError::MalformedParameter`] |
//! | no `keyid`, no `alg` parameter | [`HttpSigError::ForbiddenParameter`] |
//! | `tag` is `wimse-workload-to-workload` | [`HttpSigError::MissingParameter`], [`HttpSigError::WrongTag`] |
//! | `created`, `expires`, `nonce` present | [`HttpSigError::MissingParameter`] |
//! | `nonce` at least `min_nonce_len` characters | [`HttpSigError::NonceTooShort`] |
//! | `created <= expires`, `expires - created <= max_validity` | [`HttpSigError::ExpiresBeforeCreated`], [`HttpSigError::ValidityTooLong`] |
//! | `created <= now + leeway`, `now < expires + leeway` | [`HttpSigError::CreatedInFuture`], [`HttpSigError::Expired`] |
//! | `wimse-aud` present, a string, one of the configured audiences | [`HttpSigError::MissingParameter`], [`HttpSigError::MalformedParameter`], [`HttpSigError::AudienceMismatch`] |
//! | `wimse-sign-response`, if present, a boolean | [`HttpSigError::MalformedParameter`] |
//! | `@method`, `@request-target` covered; `content-type`, `content-digest`, `authorization`, `txn-token`, `workload-identity-token` covered when present | [`HttpSigError::UncoveredComponent`] |
//! | the signature verifies with the WIT's `cnf.jwk` and `cnf.jwk.alg` | [`HttpSigError::BadSignature`] |
//! | a body (or a `Content-Digest`) ⇒ `Content-Digest` present and matching | [`HttpSigError::MissingContentDigest`], [`HttpSigError::ContentDigestMismatch`], ... |
//! | the nonce not seen before from this WIT key (checked last) | [`HttpSigError::Replayed`] |
//!
//! Responses ([`ResponseVerifier::verify`]) follow the same rules, without `wimse-aud`,
//! with `@status`, `"@method";req`, `"@request-target";req` and the server's
//! `workload-identity-token` required, and with `wimse-req-nonce` equal to the request's
//! nonce ([`HttpSigError::RequestNonceMismatch`]).
//!
//! # Decisions
//!
//! - **Audience.** `wimse-aud` is compared with configuration only, never with `Host`
//!   or `X-Forwarded-Host`: either an exact audience ([`RequestVerifier::audience`]; for
//!   `http(s)` URIs compared after RFC 3986 normalization) or a configured origin plus
//!   the request's own path ([`RequestVerifier::origin`]), the draft's default. A
//!   `wimse-aud` with a query or fragment matches neither. A verifier with no audience
//!   configured accepts nothing.
//! - **Nonce.** The sender makes 128 random bits (22 base64url characters). The
//!   verifier can only check length: the default minimum is 8 characters, which the
//!   draft's own example (`abcd1111`) meets; raise it where all senders are known.
//!   Replay keys are scoped to the sender's WIT key (RFC 7638 thumbprint), kept until
//!   `expires` plus leeway.
//! - **Windows.** Default leeway 30 s (as for tokens); default maximum validity
//!   (`expires - created`) 600 s, "on the order of minutes" as the draft asks, and
//!   above the 302 s of the draft's own response example; the signer's default
//!   lifetime is 60 s.
//! - **Several signatures.** The draft recommends one; with several, the one labelled
//!   `wimse` is checked and the others ignored; several without a `wimse` label are
//!   refused as ambiguous.
//! - **Body.** The caller passes the body bytes as sent (before any content coding is
//!   removed). A present `Content-Digest` is always checked, even on an empty body.
//! - **Unknown parameters** (other than `keyid`/`alg`) are kept in the signed
//!   `@signature-params` and otherwise ignored; `wimse-req-nonce` on a request is
//!   ignored too.

use std::sync::Arc;

use aims_core::Clock;
use aims_crypto::{Algorithm, Signer, VerifyingKey, ct_eq, random_token};
use aims_jose::dpop::normalize_http_uri;
use aims_jose::replay::ReplayGuard;
use aims_jose::time::DEFAULT_LEEWAY;
use aims_jose::wit::{self, ValidatedWit};
use aims_jose::{JoseError, KeyResolver};
use http::{HeaderMap, HeaderValue};

use crate::HttpSigError;
use crate::component::{ComponentId, DerivedComponent};
use crate::digest::{CONTENT_DIGEST, DigestAlgorithm, content_digest, verify_content_digest};
use crate::message::{Message, RequestMessage, ResponseMessage};
use crate::params::SignatureParams;
use crate::signature::{
    Options, SignatureEntry, SignatureHeaders, find_signature, sign, signature_labels, verify_entry,
};

/// The signature label the profile uses.
pub const LABEL: &str = "wimse";
/// The `tag` of every WIMSE signature.
pub const TAG: &str = "wimse-workload-to-workload";
/// The header carrying the WIT.
pub const WIT_HEADER: &str = "workload-identity-token";
/// The header carrying a Transaction Token.
pub const TXN_TOKEN_HEADER: &str = "txn-token";
/// The request's audience parameter.
pub const PARAM_AUD: &str = "wimse-aud";
/// The request's "please sign the response" parameter.
pub const PARAM_SIGN_RESPONSE: &str = "wimse-sign-response";
/// The response's copy of the request nonce.
pub const PARAM_REQ_NONCE: &str = "wimse-req-nonce";

/// The signer's default lifetime (`expires - created`), in seconds.
pub const DEFAULT_LIFETIME: i64 = 60;
/// The verifier's default maximum `expires - created`, in seconds.
pub const DEFAULT_MAX_VALIDITY: i64 = 600;
/// The verifier's default minimum nonce length, in characters.
pub const DEFAULT_MIN_NONCE_LEN: usize = 8;

/// Request headers covered whenever present, in signing order.
const REQUEST_HEADERS: [&str; 5] = [
    "content-type",
    "content-digest",
    "authorization",
    TXN_TOKEN_HEADER,
    WIT_HEADER,
];

/// Response headers covered whenever present (besides the WIT).
const RESPONSE_HEADERS: [&str; 2] = ["content-type", "content-digest"];

fn derived(d: DerivedComponent) -> Result<ComponentId, HttpSigError> {
    ComponentId::derived(d)
}

/// The default `wimse-aud` for a request URI in absolute form: scheme, authority and
/// path, without query or fragment, normalized (RFC 3986 section 6.2.2, RFC 9110
/// section 4.2.3). `None` for an origin-form or non-http(s) URI.
pub fn default_audience(uri: &http::Uri) -> Option<String> {
    uri.scheme()?;
    normalize_http_uri(&uri.to_string())
}

// -------------------------------------------------------------------------------------
// Signing
// -------------------------------------------------------------------------------------

/// Explicit parameters of one request signature. [`RequestSigner`] fills them from its
/// clock and a fresh random nonce; use this directly only to reproduce a fixed example.
#[derive(Debug, Clone, Copy)]
pub struct RequestSignatureParams<'a> {
    /// `created`.
    pub created: i64,
    /// `expires`.
    pub expires: i64,
    /// `nonce` (unique per sender and recipient).
    pub nonce: &'a str,
    /// `wimse-aud`.
    pub audience: &'a str,
    /// Whether to add `wimse-sign-response`.
    pub sign_response: bool,
}

/// Explicit parameters of one response signature (see [`RequestSignatureParams`]).
#[derive(Debug, Clone, Copy)]
pub struct ResponseSignatureParams<'a> {
    /// `created`.
    pub created: i64,
    /// `expires`.
    pub expires: i64,
    /// `nonce`.
    pub nonce: &'a str,
    /// `wimse-req-nonce`: the nonce of the request being answered.
    pub request_nonce: &'a str,
}

/// The `sha-256` `Content-Digest` for a non-empty body.
fn body_digest(body: &[u8]) -> Result<Option<HeaderValue>, HttpSigError> {
    if body.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&content_digest(body, &[DigestAlgorithm::Sha256]))
        .map(Some)
        .map_err(|_| HttpSigError::MalformedContentDigest)
}

/// Sets the headers a WIMSE signature covers: the WIT, and the body's `Content-Digest`
/// (replacing any given one).
fn prepare_headers(
    headers: &mut HeaderMap,
    wit: &str,
    digest: Option<HeaderValue>,
) -> Result<(), HttpSigError> {
    let wit_value = HeaderValue::from_str(wit)
        .map_err(|_| HttpSigError::InvalidWit(JoseError::Malformed("not a header value")))?;
    headers.insert(WIT_HEADER, wit_value);
    if let Some(d) = digest {
        headers.insert(CONTENT_DIGEST, d);
    }
    Ok(())
}

/// Signs a request (low level): sets `Workload-Identity-Token` to `wit`, sets
/// `Content-Digest` for a non-empty `body`, and adds the `wimse` signature covering
/// `@method`, `@request-target` and the profile's headers that are present.
pub fn sign_request(
    parts: &mut http::request::Parts,
    body: &[u8],
    wit: &str,
    signer: &dyn Signer,
    p: &RequestSignatureParams<'_>,
) -> Result<SignatureHeaders, HttpSigError> {
    let digest = body_digest(body)?;
    sign_request_headers(
        &parts.method,
        &parts.uri,
        &mut parts.headers,
        digest,
        wit,
        signer,
        p,
    )
}

fn sign_request_headers(
    method: &http::Method,
    uri: &http::Uri,
    headers: &mut HeaderMap,
    digest: Option<HeaderValue>,
    wit: &str,
    signer: &dyn Signer,
    p: &RequestSignatureParams<'_>,
) -> Result<SignatureHeaders, HttpSigError> {
    prepare_headers(headers, wit, digest)?;
    let mut components = vec![
        derived(DerivedComponent::Method)?,
        derived(DerivedComponent::RequestTarget)?,
    ];
    for h in REQUEST_HEADERS {
        if headers.contains_key(h) {
            components.push(ComponentId::field(h)?);
        }
    }
    let mut params = SignatureParams::new(components)
        .with_created(p.created)?
        .with_expires(p.expires)?
        .with_nonce(p.nonce)?
        .with_tag(TAG)?
        .with_string_param(PARAM_AUD, p.audience)?;
    if p.sign_response {
        params = params.with_boolean_param(PARAM_SIGN_RESPONSE, true)?;
    }
    let message = Message::Request(RequestMessage::new(method, uri, headers));
    let signed = sign(&message, LABEL, &params, signer, &Options::default())?;
    signed.apply(headers)?;
    Ok(signed)
}

/// Signs a response (low level): sets the server's `Workload-Identity-Token`, sets
/// `Content-Digest` for a non-empty `body`, and adds the `wimse` signature covering
/// `@status`, the WIT, `content-type`/`content-digest` if present, and the request's
/// `@method` and `@request-target` (`;req`).
pub fn sign_response(
    parts: &mut http::response::Parts,
    body: &[u8],
    request: RequestMessage<'_>,
    wit: &str,
    signer: &dyn Signer,
    p: &ResponseSignatureParams<'_>,
) -> Result<SignatureHeaders, HttpSigError> {
    let digest = body_digest(body)?;
    sign_response_headers(
        parts.status,
        &mut parts.headers,
        digest,
        request,
        wit,
        signer,
        p,
    )
}

fn sign_response_headers(
    status: http::StatusCode,
    headers: &mut HeaderMap,
    digest: Option<HeaderValue>,
    request: RequestMessage<'_>,
    wit: &str,
    signer: &dyn Signer,
    p: &ResponseSignatureParams<'_>,
) -> Result<SignatureHeaders, HttpSigError> {
    prepare_headers(headers, wit, digest)?;
    let mut components = vec![
        derived(DerivedComponent::Status)?,
        ComponentId::field(WIT_HEADER)?,
    ];
    for h in RESPONSE_HEADERS {
        if headers.contains_key(h) {
            components.push(ComponentId::field(h)?);
        }
    }
    components.push(derived(DerivedComponent::Method)?.with_req()?);
    components.push(derived(DerivedComponent::RequestTarget)?.with_req()?);
    let params = SignatureParams::new(components)
        .with_created(p.created)?
        .with_expires(p.expires)?
        .with_nonce(p.nonce)?
        .with_tag(TAG)?
        .with_string_param(PARAM_REQ_NONCE, p.request_nonce)?;
    let message = Message::Response(ResponseMessage::new(status, headers).with_request(request));
    let signed = sign(&message, LABEL, &params, signer, &Options::default())?;
    signed.apply(headers)?;
    Ok(signed)
}

/// What a client keeps from a signed request to check the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    nonce: String,
    created: i64,
    expires: i64,
    sign_response: bool,
}

impl SentRequest {
    /// The request's nonce (the response's `wimse-req-nonce` must equal it).
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// `created`.
    pub fn created(&self) -> i64 {
        self.created
    }

    /// `expires`.
    pub fn expires(&self) -> i64 {
        self.expires
    }

    /// Whether the request asked for a signed response.
    pub fn sign_response(&self) -> bool {
        self.sign_response
    }
}

/// Signs a workload's requests with its WIT and key. Build once, share.
#[derive(Debug, Clone)]
pub struct RequestSigner {
    wit: String,
    key: Arc<dyn Signer>,
    clock: Arc<dyn Clock>,
    lifetime: i64,
    sign_response: bool,
}

impl RequestSigner {
    /// A signer presenting `wit` and signing with `key` (the key `wit`'s `cnf.jwk`
    /// confirms), valid [`DEFAULT_LIFETIME`] seconds, not asking for signed responses.
    pub fn new(wit: impl Into<String>, key: Arc<dyn Signer>, clock: Arc<dyn Clock>) -> Self {
        Self {
            wit: wit.into(),
            key,
            clock,
            lifetime: DEFAULT_LIFETIME,
            sign_response: false,
        }
    }

    /// The signature lifetime (`expires - created`), in seconds.
    pub fn lifetime(mut self, seconds: i64) -> Self {
        self.lifetime = seconds;
        self
    }

    /// Whether requests carry `wimse-sign-response` (ask the server to sign responses).
    pub fn request_signed_responses(mut self, yes: bool) -> Self {
        self.sign_response = yes;
        self
    }

    /// Signs `request` for `audience` (its `wimse-aud`; [`default_audience`] gives the
    /// draft's default for an absolute URI), with `created` now and a fresh 128-bit
    /// nonce.
    pub fn sign<B: AsRef<[u8]>>(
        &self,
        request: &mut http::Request<B>,
        audience: &str,
    ) -> Result<SentRequest, HttpSigError> {
        let digest = body_digest(request.body().as_ref())?;
        let method = request.method().clone();
        let uri = request.uri().clone();
        self.sign_with(&method, &uri, request.headers_mut(), digest, audience)
    }

    /// Like [`RequestSigner::sign`], on request parts and the body bytes.
    pub fn sign_parts(
        &self,
        parts: &mut http::request::Parts,
        body: &[u8],
        audience: &str,
    ) -> Result<SentRequest, HttpSigError> {
        let digest = body_digest(body)?;
        self.sign_with(
            &parts.method,
            &parts.uri,
            &mut parts.headers,
            digest,
            audience,
        )
    }

    fn sign_with(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &mut HeaderMap,
        digest: Option<HeaderValue>,
        audience: &str,
    ) -> Result<SentRequest, HttpSigError> {
        let nonce = random_token().map_err(HttpSigError::Internal)?;
        let created = self.clock.now();
        let expires = created.saturating_add(self.lifetime);
        sign_request_headers(
            method,
            uri,
            headers,
            digest,
            &self.wit,
            self.key.as_ref(),
            &RequestSignatureParams {
                created,
                expires,
                nonce: &nonce,
                audience,
                sign_response: self.sign_response,
            },
        )?;
        Ok(SentRequest {
            nonce,
            created,
            expires,
            sign_response: self.sign_response,
        })
    }
}

/// Signs a server's responses with its WIT and key. Build once, share.
#[derive(Debug, Clone)]
pub struct ResponseSigner {
    wit: String,
    key: Arc<dyn Signer>,
    clock: Arc<dyn Clock>,
    lifetime: i64,
}

impl ResponseSigner {
    /// A signer presenting `wit` and signing with `key`, valid [`DEFAULT_LIFETIME`]
    /// seconds.
    pub fn new(wit: impl Into<String>, key: Arc<dyn Signer>, clock: Arc<dyn Clock>) -> Self {
        Self {
            wit: wit.into(),
            key,
            clock,
            lifetime: DEFAULT_LIFETIME,
        }
    }

    /// The signature lifetime (`expires - created`), in seconds.
    pub fn lifetime(mut self, seconds: i64) -> Self {
        self.lifetime = seconds;
        self
    }

    /// Signs `response`, the answer to `request` whose verified nonce is
    /// `request_nonce` ([`VerifiedSignature::nonce`]).
    pub fn sign<B: AsRef<[u8]>>(
        &self,
        response: &mut http::Response<B>,
        request: RequestMessage<'_>,
        request_nonce: &str,
    ) -> Result<(), HttpSigError> {
        let digest = body_digest(response.body().as_ref())?;
        let status = response.status();
        self.sign_with(
            status,
            response.headers_mut(),
            digest,
            request,
            request_nonce,
        )
    }

    /// Like [`ResponseSigner::sign`], on response parts and the body bytes.
    pub fn sign_parts(
        &self,
        parts: &mut http::response::Parts,
        body: &[u8],
        request: RequestMessage<'_>,
        request_nonce: &str,
    ) -> Result<(), HttpSigError> {
        let digest = body_digest(body)?;
        self.sign_with(
            parts.status,
            &mut parts.headers,
            digest,
            request,
            request_nonce,
        )
    }

    fn sign_with(
        &self,
        status: http::StatusCode,
        headers: &mut HeaderMap,
        digest: Option<HeaderValue>,
        request: RequestMessage<'_>,
        request_nonce: &str,
    ) -> Result<(), HttpSigError> {
        let nonce = random_token().map_err(HttpSigError::Internal)?;
        let created = self.clock.now();
        sign_response_headers(
            status,
            headers,
            digest,
            request,
            &self.wit,
            self.key.as_ref(),
            &ResponseSignatureParams {
                created,
                expires: created.saturating_add(self.lifetime),
                nonce: &nonce,
                request_nonce,
            },
        )
        .map(|_| ())
    }
}

// -------------------------------------------------------------------------------------
// Verification
// -------------------------------------------------------------------------------------

/// A signature that passed every rule of the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedSignature {
    label: String,
    params: SignatureParams,
    nonce: String,
    created: i64,
    expires: i64,
    audience: Option<String>,
    sign_response: bool,
}

impl VerifiedSignature {
    /// The label of the verified signature.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// All parameters, as signed.
    pub fn params(&self) -> &SignatureParams {
        &self.params
    }

    /// `nonce` (a server echoes a request's nonce in its response's `wimse-req-nonce`).
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// `created`.
    pub fn created(&self) -> i64 {
        self.created
    }

    /// `expires`.
    pub fn expires(&self) -> i64 {
        self.expires
    }

    /// The `wimse-aud` that matched (requests only).
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// Whether the request asked for a signed response (`wimse-sign-response`).
    pub fn sign_response(&self) -> bool {
        self.sign_response
    }
}

/// A request whose WIT and signature passed every rule.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    wit: ValidatedWit,
    signature: VerifiedSignature,
}

impl VerifiedRequest {
    /// The caller's validated WIT (its `subject()` is the authenticated workload).
    pub fn wit(&self) -> &ValidatedWit {
        &self.wit
    }

    /// The verified signature.
    pub fn signature(&self) -> &VerifiedSignature {
        &self.signature
    }
}

/// A response whose WIT and signature passed every rule.
#[derive(Debug, Clone)]
pub struct VerifiedResponse {
    wit: ValidatedWit,
    signature: VerifiedSignature,
}

impl VerifiedResponse {
    /// The server's validated WIT.
    pub fn wit(&self) -> &ValidatedWit {
        &self.wit
    }

    /// The verified signature.
    pub fn signature(&self) -> &VerifiedSignature {
        &self.signature
    }
}

/// Whether a message carries any signature metadata (a client must verify a signed
/// response even if it did not ask for one).
pub fn is_signed(headers: &HeaderMap) -> bool {
    headers.contains_key(crate::SIGNATURE_INPUT) || headers.contains_key(crate::SIGNATURE)
}

/// The one `Workload-Identity-Token` field line.
fn single_wit(headers: &HeaderMap) -> Result<&str, HttpSigError> {
    let mut values = headers.get_all(WIT_HEADER).iter();
    let wit = values.next().ok_or(HttpSigError::MissingWit)?;
    if values.next().is_some() {
        return Err(HttpSigError::DuplicateWit);
    }
    wit.to_str()
        .map_err(|_| HttpSigError::InvalidWit(JoseError::Malformed("not visible ASCII")))
}

/// The `wimse` signature, or the only one.
fn select_signature(
    headers: &HeaderMap,
    options: &Options,
) -> Result<SignatureEntry, HttpSigError> {
    let labels = signature_labels(headers, options)?;
    let label = if labels.iter().any(|l| l == LABEL) {
        LABEL
    } else {
        match labels.as_slice() {
            [] => return Err(HttpSigError::MissingSignature),
            [only] => only.as_str(),
            _ => return Err(HttpSigError::AmbiguousSignature(LABEL)),
        }
    };
    find_signature(headers, label, options)
}

fn map_replay(e: JoseError) -> HttpSigError {
    match e {
        JoseError::Replayed => HttpSigError::Replayed,
        // Any other failure to record the nonce refuses the message (fail closed).
        _ => HttpSigError::ReplayCacheFull,
    }
}

/// The settings both verifiers share.
#[derive(Clone)]
struct Common {
    wit: wit::Validator,
    keys: Arc<dyn KeyResolver>,
    replay: Arc<dyn ReplayGuard>,
    clock: Arc<dyn Clock>,
    leeway: i64,
    max_validity: i64,
    min_nonce_len: usize,
    options: Options,
}

impl std::fmt::Debug for Common {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Common")
            .field("wit", &self.wit)
            .field("replay", &self.replay)
            .field("clock", &self.clock)
            .field("leeway", &self.leeway)
            .field("max_validity", &self.max_validity)
            .field("min_nonce_len", &self.min_nonce_len)
            .finish_non_exhaustive()
    }
}

impl Common {
    fn new(
        wit: wit::Validator,
        keys: Arc<dyn KeyResolver>,
        replay: Arc<dyn ReplayGuard>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            wit,
            keys,
            replay,
            clock,
            leeway: DEFAULT_LEEWAY,
            max_validity: DEFAULT_MAX_VALIDITY,
            min_nonce_len: DEFAULT_MIN_NONCE_LEN,
            options: Options::default(),
        }
    }

    fn validate_wit(&self, headers: &HeaderMap) -> Result<ValidatedWit, HttpSigError> {
        let token = single_wit(headers)?;
        self.wit
            .validate(token, self.keys.as_ref())
            .map_err(HttpSigError::InvalidWit)
    }

    /// The parameter checks shared by requests and responses; returns (`created`,
    /// `expires`, `nonce`).
    fn check_params(
        &self,
        params: &SignatureParams,
        now: i64,
    ) -> Result<(i64, i64, String), HttpSigError> {
        for forbidden in ["keyid", "alg"] {
            if params.has_param(forbidden) {
                return Err(HttpSigError::ForbiddenParameter(forbidden));
            }
        }
        match params.tag() {
            None => return Err(HttpSigError::MissingParameter("tag")),
            Some(t) if t != TAG => return Err(HttpSigError::WrongTag),
            Some(_) => {}
        }
        let created = params
            .created()
            .ok_or(HttpSigError::MissingParameter("created"))?;
        let expires = params
            .expires()
            .ok_or(HttpSigError::MissingParameter("expires"))?;
        let nonce = params
            .nonce()
            .ok_or(HttpSigError::MissingParameter("nonce"))?;
        if nonce.chars().count() < self.min_nonce_len {
            return Err(HttpSigError::NonceTooShort);
        }
        if expires < created {
            return Err(HttpSigError::ExpiresBeforeCreated);
        }
        let validity = expires.saturating_sub(created);
        if validity > self.max_validity {
            return Err(HttpSigError::ValidityTooLong {
                validity,
                max: self.max_validity,
            });
        }
        if created > now.saturating_add(self.leeway) {
            return Err(HttpSigError::CreatedInFuture { created, now });
        }
        if now >= expires.saturating_add(self.leeway) {
            return Err(HttpSigError::Expired { expires, now });
        }
        Ok((created, expires, nonce.to_owned()))
    }

    /// Checks that every required component is covered.
    fn check_covered(
        params: &SignatureParams,
        required: &[(&str, bool)],
    ) -> Result<(), HttpSigError> {
        for (name, req) in required {
            if !params.components().iter().any(|c| c.is_plain(name, *req)) {
                let shown = if *req {
                    format!("\"{name}\";req")
                } else {
                    format!("\"{name}\"")
                };
                return Err(HttpSigError::UncoveredComponent(shown));
            }
        }
        Ok(())
    }

    /// Content-Digest is required with a body, and checked whenever present.
    fn check_digest(headers: &HeaderMap, body: &[u8]) -> Result<(), HttpSigError> {
        if !body.is_empty() || headers.contains_key(CONTENT_DIGEST) {
            verify_content_digest(headers, body)?;
        }
        Ok(())
    }

    fn record_nonce(
        &self,
        kind: &str,
        scope: &str,
        nonce: &str,
        expires: i64,
        now: i64,
    ) -> Result<(), HttpSigError> {
        let key = format!("wimse-httpsig:{kind}:{scope}:{nonce}");
        self.replay
            .check_and_record(&key, expires.saturating_add(self.leeway), now)
            .map_err(map_replay)
    }
}

macro_rules! common_builders {
    () => {
        /// Clock-skew allowance for `created` and `expires`, in seconds.
        pub fn leeway(mut self, seconds: i64) -> Self {
            self.common.leeway = seconds;
            self
        }

        /// The longest accepted `expires - created`, in seconds.
        pub fn max_validity(mut self, seconds: i64) -> Self {
            self.common.max_validity = seconds;
            self
        }

        /// The shortest accepted nonce, in characters.
        pub fn min_nonce_len(mut self, chars: usize) -> Self {
            self.common.min_nonce_len = chars;
            self
        }

        /// RFC 9421 options (header size limit, structured-field types).
        pub fn options(mut self, options: Options) -> Self {
            self.common.options = options;
            self
        }
    };
}

/// Verifies signed requests (the server side). Build once, share across requests.
#[derive(Debug, Clone)]
pub struct RequestVerifier {
    common: Common,
    audiences: Vec<String>,
    origins: Vec<String>,
}

/// `https://host[:port]` normalized, or `None` if `origin` has a path, query or
/// fragment or is not an absolute http(s) URI.
fn normalize_origin(origin: &str) -> Option<String> {
    if origin.contains(['?', '#']) {
        return None;
    }
    let n = normalize_http_uri(origin)?;
    let after_scheme = n.find("://")?.checked_add(3)?;
    let path_start = n
        .get(after_scheme..)?
        .find('/')?
        .checked_add(after_scheme)?;
    (n.get(path_start..) == Some("/")).then(|| n.get(..path_start).map(str::to_owned))?
}

impl RequestVerifier {
    /// A verifier validating WITs with `wit` against the trust anchors in `keys`,
    /// recording nonces in `replay`. Add at least one [`RequestVerifier::audience`] or
    /// [`RequestVerifier::origin`]: without one every request fails with
    /// [`HttpSigError::AudienceMismatch`].
    pub fn new(
        wit: wit::Validator,
        keys: Arc<dyn KeyResolver>,
        replay: Arc<dyn ReplayGuard>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            common: Common::new(wit, keys, replay, clock),
            audiences: Vec::new(),
            origins: Vec::new(),
        }
    }

    common_builders!();

    /// Accepts `wimse-aud` equal to `audience`: compared after normalization when both
    /// are http(s) URIs (then `audience`'s query and fragment are ignored), else as exact
    /// strings (e.g. a workload identifier).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts `wimse-aud` equal to `origin` (`https://host[:port]`, as configured) plus
    /// the request's path: the draft's default audience. An origin with a path, query or
    /// fragment is ignored (check [`RequestVerifier::origins`] at start-up).
    pub fn origin(mut self, origin: &str) -> Self {
        if let Some(o) = normalize_origin(origin) {
            self.origins.push(o);
        }
        self
    }

    /// The accepted origins, normalized.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    fn check_audience(&self, aud: &str, request: &RequestMessage<'_>) -> Result<(), HttpSigError> {
        let normalized = (!aud.contains(['?', '#']))
            .then(|| normalize_http_uri(aud))
            .flatten();
        let exact = self
            .audiences
            .iter()
            .any(|a| match (&normalized, normalize_http_uri(a)) {
                (Some(n), Some(expected)) => *n == expected,
                (None, None) => a == aud,
                _ => false,
            });
        let by_origin = normalized.as_ref().is_some_and(|n| {
            self.origins
                .iter()
                .any(|o| normalize_http_uri(&format!("{o}{}", request.path())).as_ref() == Some(n))
        });
        if exact || by_origin {
            Ok(())
        } else {
            Err(HttpSigError::AudienceMismatch)
        }
    }

    /// Verifies a request (body bytes as received). See the module documentation for
    /// the rules and their order.
    pub fn verify<B: AsRef<[u8]>>(
        &self,
        request: &http::Request<B>,
    ) -> Result<VerifiedRequest, HttpSigError> {
        self.verify_message(
            RequestMessage::from_request(request),
            request.body().as_ref(),
        )
    }

    /// Like [`RequestVerifier::verify`], on request parts and the body bytes.
    pub fn verify_parts(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Result<VerifiedRequest, HttpSigError> {
        self.verify_message(RequestMessage::from_parts(parts), body)
    }

    /// Like [`RequestVerifier::verify`], on a [`RequestMessage`].
    pub fn verify_message(
        &self,
        request: RequestMessage<'_>,
        body: &[u8],
    ) -> Result<VerifiedRequest, HttpSigError> {
        // The WIT first: nothing else is looked at before it is valid.
        let wit = self.validate_wit(request.headers())?;
        let signature = self.verify_signature_with_key(
            request,
            body,
            wit.confirmation_key(),
            wit.confirmation_alg(),
            wit.confirmation_jkt(),
        )?;
        Ok(VerifiedRequest { wit, signature })
    }

    /// The first rule of [`RequestVerifier::verify`]: the one `Workload-Identity-Token`
    /// is a valid WIT. It needs the headers only, so that a server can check it before
    /// it reads the body (a caller without a valid WIT must not make it buffer one), then
    /// finish with [`RequestVerifier::verify_signature_with_key`] and the WIT's key.
    pub fn validate_wit(&self, headers: &HeaderMap) -> Result<ValidatedWit, HttpSigError> {
        self.common.validate_wit(headers)
    }

    /// Every rule after the WIT, with the WIT's confirmation key given directly:
    /// `key`/`alg` must come from a WIT the caller has validated, and `key_scope`
    /// identifies that key for replay detection (e.g. its RFC 7638 thumbprint).
    /// [`RequestVerifier::verify`] is the normal entry point.
    pub fn verify_signature_with_key(
        &self,
        request: RequestMessage<'_>,
        body: &[u8],
        key: &VerifyingKey,
        alg: Algorithm,
        key_scope: &str,
    ) -> Result<VerifiedSignature, HttpSigError> {
        let c = &self.common;
        let headers = request.headers();
        let entry = select_signature(headers, &c.options)?;
        let params = entry.params();
        let now = c.clock.now();
        let (created, expires, nonce) = c.check_params(params, now)?;
        let audience = match (params.has_param(PARAM_AUD), params.string_param(PARAM_AUD)) {
            (false, _) => return Err(HttpSigError::MissingParameter(PARAM_AUD)),
            (true, None) => return Err(HttpSigError::MalformedParameter(PARAM_AUD.into())),
            (true, Some(a)) => a.to_owned(),
        };
        let sign_response = match (
            params.has_param(PARAM_SIGN_RESPONSE),
            params.boolean_param(PARAM_SIGN_RESPONSE),
        ) {
            (false, _) => false,
            (true, Some(b)) => b,
            (true, None) => {
                return Err(HttpSigError::MalformedParameter(PARAM_SIGN_RESPONSE.into()));
            }
        };
        let mut required: Vec<(&str, bool)> = vec![("@method", false), ("@request-target", false)];
        required.extend(
            REQUEST_HEADERS
                .iter()
                .filter(|h| headers.contains_key(**h))
                .map(|h| (*h, false)),
        );
        Common::check_covered(params, &required)?;
        self.check_audience(&audience, &request)?;
        verify_entry(&Message::Request(request), &entry, key, alg, &c.options)?;
        Common::check_digest(headers, body)?;
        c.record_nonce("req", key_scope, &nonce, expires, now)?;
        Ok(VerifiedSignature {
            label: entry.label().to_owned(),
            params: params.clone(),
            nonce,
            created,
            expires,
            audience: Some(audience),
            sign_response,
        })
    }
}

/// Verifies signed responses (the client side). Build once, share.
///
/// The `;req` components are computed from the request as sent, so keep its method,
/// URI and headers (e.g. a clone of its parts) until the response is checked. A valid
/// response proves which workload answered ([`VerifiedResponse::wit`]); checking that
/// this is the workload the client meant to call is the caller's authorization step.
#[derive(Debug, Clone)]
pub struct ResponseVerifier {
    common: Common,
}

impl ResponseVerifier {
    /// A verifier validating the server's WIT with `wit` against the trust anchors in
    /// `keys`, recording response nonces in `replay`.
    pub fn new(
        wit: wit::Validator,
        keys: Arc<dyn KeyResolver>,
        replay: Arc<dyn ReplayGuard>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            common: Common::new(wit, keys, replay, clock),
        }
    }

    common_builders!();

    /// Verifies `response` (body bytes as received), the answer to `request` (as sent)
    /// whose nonce was `request_nonce` ([`SentRequest::nonce`]).
    pub fn verify<B: AsRef<[u8]>>(
        &self,
        response: &http::Response<B>,
        request: RequestMessage<'_>,
        request_nonce: &str,
    ) -> Result<VerifiedResponse, HttpSigError> {
        self.verify_message(
            ResponseMessage::from_response(response).with_request(request),
            response.body().as_ref(),
            request_nonce,
        )
    }

    /// Like [`ResponseVerifier::verify`], on response parts and the body bytes.
    pub fn verify_parts(
        &self,
        parts: &http::response::Parts,
        body: &[u8],
        request: RequestMessage<'_>,
        request_nonce: &str,
    ) -> Result<VerifiedResponse, HttpSigError> {
        self.verify_message(
            ResponseMessage::from_parts(parts).with_request(request),
            body,
            request_nonce,
        )
    }

    /// Like [`ResponseVerifier::verify`], on a [`ResponseMessage`] that carries its
    /// request.
    pub fn verify_message(
        &self,
        response: ResponseMessage<'_>,
        body: &[u8],
        request_nonce: &str,
    ) -> Result<VerifiedResponse, HttpSigError> {
        let wit = self.common.validate_wit(response.headers())?;
        let signature = self.verify_signature_with_key(
            response,
            body,
            request_nonce,
            wit.confirmation_key(),
            wit.confirmation_alg(),
            wit.confirmation_jkt(),
        )?;
        Ok(VerifiedResponse { wit, signature })
    }

    /// Every rule after the WIT, with the server WIT's confirmation key given directly
    /// (see [`RequestVerifier::verify_signature_with_key`]).
    pub fn verify_signature_with_key(
        &self,
        response: ResponseMessage<'_>,
        body: &[u8],
        request_nonce: &str,
        key: &VerifyingKey,
        alg: Algorithm,
        key_scope: &str,
    ) -> Result<VerifiedSignature, HttpSigError> {
        let c = &self.common;
        let headers = response.headers();
        let entry = select_signature(headers, &c.options)?;
        let params = entry.params();
        let now = c.clock.now();
        let (created, expires, nonce) = c.check_params(params, now)?;
        match (
            params.has_param(PARAM_REQ_NONCE),
            params.string_param(PARAM_REQ_NONCE),
        ) {
            (false, _) => return Err(HttpSigError::MissingParameter(PARAM_REQ_NONCE)),
            (true, None) => {
                return Err(HttpSigError::MalformedParameter(PARAM_REQ_NONCE.into()));
            }
            (true, Some(n)) if !ct_eq(n.as_bytes(), request_nonce.as_bytes()) => {
                return Err(HttpSigError::RequestNonceMismatch);
            }
            (true, Some(_)) => {}
        }
        let mut required: Vec<(&str, bool)> = vec![
            ("@status", false),
            ("@method", true),
            ("@request-target", true),
            (WIT_HEADER, false),
        ];
        required.extend(
            RESPONSE_HEADERS
                .iter()
                .filter(|h| headers.contains_key(**h))
                .map(|h| (*h, false)),
        );
        Common::check_covered(params, &required)?;
        verify_entry(&Message::Response(response), &entry, key, alg, &c.options)?;
        Common::check_digest(headers, body)?;
        c.record_nonce("resp", key_scope, &nonce, expires, now)?;
        Ok(VerifiedSignature {
            label: entry.label().to_owned(),
            params: params.clone(),
            nonce,
            created,
            expires,
            audience: None,
            sign_response: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_or_dropped() {
        assert_eq!(
            normalize_origin("HTTPS://Svc.Example.com:443").as_deref(),
            Some("https://svc.example.com")
        );
        assert_eq!(
            normalize_origin("https://svc.example.com:8443/").as_deref(),
            Some("https://svc.example.com:8443")
        );
        for bad in [
            "https://svc.example.com/path",
            "https://svc.example.com?q",
            "https://svc.example.com#f",
            "spiffe://example.org",
            "svc.example.com",
        ] {
            assert_eq!(normalize_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn default_audience_drops_query_and_fragment() {
        let u: http::Uri = "https://svcb.example.com/gimme-ice-cream?flavor=vanilla"
            .parse()
            .unwrap();
        assert_eq!(
            default_audience(&u).as_deref(),
            Some("https://svcb.example.com/gimme-ice-cream")
        );
        let u: http::Uri = "/gimme-ice-cream".parse().unwrap();
        assert_eq!(default_audience(&u), None);
    }
}
