//! One error enum for the crate, one variant per rule, and its mapping to an HTTP status
//! and an RFC 9457 problem document.

use aims_crypto::CryptoError;
use aims_jose::JoseError;
use serde::Serialize;

/// Why a message could not be signed or verified. Each RFC 9421 / RFC 9530 rule and each
/// rule of the WIMSE profile maps to its own variant, so callers and tests can tell them
/// apart. Display strings never contain token or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpSigError {
    // ---- structured fields and signature metadata (RFC 9421 section 4) ----
    /// A header is not a valid structured field of the expected type, or a member has
    /// the wrong shape (e.g. a `Signature` member that is not a byte sequence).
    #[error("`{0}` is malformed")]
    MalformedHeader(&'static str),
    /// A header is larger than the configured limit.
    #[error("`{0}` exceeds the size limit")]
    HeaderTooLarge(&'static str),
    /// The message carries no `Signature-Input` or no `Signature`.
    #[error("the message is not signed")]
    MissingSignature,
    /// The requested label is absent from `Signature-Input` or `Signature`.
    #[error("no signature labelled `{0}`")]
    LabelNotFound(String),
    /// Several signatures and none with the expected label: the one to verify is unclear.
    #[error("several signatures and none labelled `{0}`")]
    AmbiguousSignature(&'static str),
    /// A signature with this label is already on the message.
    #[error("signature label `{0}` is already in use")]
    LabelInUse(String),
    /// A label is not a valid structured-field key.
    #[error("`{0}` is not a valid signature label")]
    InvalidLabel(String),
    /// A component identifier is not valid (not a lower-case string, unknown derived
    /// component, parameters that do not fit the component).
    #[error("invalid component identifier {component}: {reason}")]
    InvalidComponent {
        /// The identifier as serialized (or the offending text).
        component: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A component parameter this implementation does not know; refused rather than
    /// ignored, since ignoring it would sign or verify a different value.
    #[error("component parameter `{0}` is not supported")]
    UnsupportedComponentParameter(String),
    /// The same component is covered twice (RFC 9421 section 2.5).
    #[error("component {0} is covered more than once")]
    DuplicateComponent(String),
    /// A covered component is absent from the message (a missing header, a missing
    /// query parameter, `;req` without the related request, `;tr` without trailers).
    #[error("covered component {0} is not in the message")]
    MissingComponent(String),
    /// A covered component exists but has no valid value.
    #[error("cannot compute component {component}: {reason}")]
    ComponentValue {
        /// The component identifier.
        component: String,
        /// Why the value cannot be computed.
        reason: &'static str,
    },
    /// A signature parameter has the wrong type (e.g. `created` not an integer).
    #[error("signature parameter `{0}` is malformed")]
    MalformedParameter(String),
    /// The `alg` parameter names an algorithm AIMS does not implement (including
    /// `hmac-sha256`: AIMS never accepts symmetric keys).
    #[error("unsupported signature algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// The `alg` parameter contradicts the key's algorithm.
    #[error("signature algorithm `{alg}` does not match the key")]
    AlgorithmMismatch {
        /// The `alg` parameter.
        alg: String,
    },
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The key cannot be used (wrong family for the algorithm, malformed).
    #[error("key rejected: {0}")]
    Key(CryptoError),

    // ---- Content-Digest (RFC 9530) ----
    /// A body is present but no `Content-Digest`.
    #[error("the message has a body but no Content-Digest")]
    MissingContentDigest,
    /// `Content-Digest` is not a dictionary of byte sequences.
    #[error("Content-Digest is malformed")]
    MalformedContentDigest,
    /// `Content-Digest` has no algorithm AIMS accepts (`sha-256`, `sha-512`).
    #[error("Content-Digest has no supported algorithm (sha-256, sha-512)")]
    UnsupportedDigestAlgorithm,
    /// The digest does not match the body.
    #[error("Content-Digest does not match the body")]
    ContentDigestMismatch,

    // ---- WIMSE HTTP signature profile ----
    /// No `Workload-Identity-Token` header.
    #[error("missing Workload-Identity-Token header")]
    MissingWit,
    /// More than one `Workload-Identity-Token` field line.
    #[error("more than one Workload-Identity-Token header")]
    DuplicateWit,
    /// The WIT failed validation.
    #[error("invalid Workload-Identity-Token: {0}")]
    InvalidWit(JoseError),
    /// A parameter the profile forbids (`keyid`, `alg`).
    #[error("signature parameter `{0}` is not allowed")]
    ForbiddenParameter(&'static str),
    /// A parameter the profile requires is missing.
    #[error("missing signature parameter `{0}`")]
    MissingParameter(&'static str),
    /// `tag` is not `wimse-workload-to-workload`.
    #[error("signature tag is not `wimse-workload-to-workload`")]
    WrongTag,
    /// A component the profile requires is not covered by the signature.
    #[error("required component {0} is not covered by the signature")]
    UncoveredComponent(String),
    /// `created` is in the future (beyond the leeway).
    #[error("signature created in the future at {created} (now {now})")]
    CreatedInFuture {
        /// The `created` parameter.
        created: i64,
        /// The current time.
        now: i64,
    },
    /// `expires` has passed.
    #[error("signature expired at {expires} (now {now})")]
    Expired {
        /// The `expires` parameter.
        expires: i64,
        /// The current time.
        now: i64,
    },
    /// `expires` is before `created`.
    #[error("signature expires before it was created")]
    ExpiresBeforeCreated,
    /// `expires - created` is longer than the profile accepts.
    #[error("signature validity of {validity} s exceeds the maximum of {max} s")]
    ValidityTooLong {
        /// `expires - created`.
        validity: i64,
        /// The configured maximum.
        max: i64,
    },
    /// `wimse-aud` is not one of the configured audiences.
    #[error("wimse-aud is not an accepted audience")]
    AudienceMismatch,
    /// The nonce is shorter than the configured minimum.
    #[error("nonce is too short")]
    NonceTooShort,
    /// The response's `wimse-req-nonce` is not the request's nonce.
    #[error("wimse-req-nonce does not match the request's nonce")]
    RequestNonceMismatch,
    /// The nonce was seen before from the same sender key.
    #[error("nonce replayed")]
    Replayed,
    /// The replay cache is full of live entries; the message is refused (fail closed).
    #[error("replay cache full; message refused")]
    ReplayCacheFull,

    // ---- signing side ----
    /// Signing failed, or the random number generator failed.
    #[error("internal error: {0}")]
    Internal(CryptoError),
}

impl HttpSigError {
    /// A stable, machine-readable code for the rule that failed (the last segment of
    /// the problem `type`).
    pub fn code(&self) -> &'static str {
        match self {
            HttpSigError::MalformedHeader(_) => "malformed-header",
            HttpSigError::HeaderTooLarge(_) => "header-too-large",
            HttpSigError::MissingSignature => "missing-signature",
            HttpSigError::LabelNotFound(_) => "label-not-found",
            HttpSigError::AmbiguousSignature(_) => "ambiguous-signature",
            HttpSigError::LabelInUse(_) => "label-in-use",
            HttpSigError::InvalidLabel(_) => "invalid-label",
            HttpSigError::InvalidComponent { .. } => "invalid-component",
            HttpSigError::UnsupportedComponentParameter(_) => "unsupported-component-parameter",
            HttpSigError::DuplicateComponent(_) => "duplicate-component",
            HttpSigError::MissingComponent(_) => "missing-component",
            HttpSigError::ComponentValue { .. } => "component-value",
            HttpSigError::MalformedParameter(_) => "malformed-parameter",
            HttpSigError::UnsupportedAlgorithm(_) => "unsupported-algorithm",
            HttpSigError::AlgorithmMismatch { .. } => "algorithm-mismatch",
            HttpSigError::BadSignature => "bad-signature",
            HttpSigError::Key(_) => "key-rejected",
            HttpSigError::MissingContentDigest => "missing-content-digest",
            HttpSigError::MalformedContentDigest => "malformed-content-digest",
            HttpSigError::UnsupportedDigestAlgorithm => "unsupported-digest-algorithm",
            HttpSigError::ContentDigestMismatch => "content-digest-mismatch",
            HttpSigError::MissingWit => "missing-wit",
            HttpSigError::DuplicateWit => "duplicate-wit",
            HttpSigError::InvalidWit(_) => "invalid-wit",
            HttpSigError::ForbiddenParameter(_) => "forbidden-parameter",
            HttpSigError::MissingParameter(_) => "missing-parameter",
            HttpSigError::WrongTag => "wrong-tag",
            HttpSigError::UncoveredComponent(_) => "uncovered-component",
            HttpSigError::CreatedInFuture { .. } => "created-in-future",
            HttpSigError::Expired { .. } => "expired",
            HttpSigError::ExpiresBeforeCreated => "expires-before-created",
            HttpSigError::ValidityTooLong { .. } => "validity-too-long",
            HttpSigError::AudienceMismatch => "audience-mismatch",
            HttpSigError::NonceTooShort => "nonce-too-short",
            HttpSigError::RequestNonceMismatch => "request-nonce-mismatch",
            HttpSigError::Replayed => "replayed",
            HttpSigError::ReplayCacheFull => "replay-cache-full",
            HttpSigError::Internal(_) => "internal",
        }
    }

    /// A short, fixed summary for the problem `title`.
    fn title(&self) -> &'static str {
        match self {
            HttpSigError::MissingWit | HttpSigError::DuplicateWit | HttpSigError::InvalidWit(_) => {
                "Invalid workload identity token"
            }
            HttpSigError::MissingContentDigest
            | HttpSigError::MalformedContentDigest
            | HttpSigError::UnsupportedDigestAlgorithm
            | HttpSigError::ContentDigestMismatch => "Invalid content digest",
            HttpSigError::Replayed => "Replayed message",
            HttpSigError::ReplayCacheFull => "Service temporarily unavailable",
            HttpSigError::Internal(_) => "Internal error",
            _ => "Invalid HTTP message signature",
        }
    }

    /// The HTTP status for a peer's message that failed this rule: 400 (Bad Request) as
    /// the WIMSE drafts ask (401 is NOT RECOMMENDED: no `WWW-Authenticate` scheme fits),
    /// except 503 when the replay cache is full (a capacity problem, the peer may retry)
    /// and 500 for internal failures.
    pub fn status(&self) -> http::StatusCode {
        match self {
            HttpSigError::ReplayCacheFull => http::StatusCode::SERVICE_UNAVAILABLE,
            HttpSigError::Internal(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }

    /// The RFC 9457 problem document for this error, with `type` under
    /// [`PROBLEM_TYPE_BASE`].
    pub fn problem(&self) -> Problem {
        self.problem_with_type_base(PROBLEM_TYPE_BASE)
    }

    /// The RFC 9457 problem document, with `type` = `type_base` + [`HttpSigError::code`]
    /// (for deployments that publish their own problem-type documentation).
    pub fn problem_with_type_base(&self, type_base: &str) -> Problem {
        let detail = match self {
            // Internal details stay in the server log.
            HttpSigError::Internal(_) => "the message could not be processed".to_owned(),
            other => other.to_string(),
        };
        Problem {
            type_: format!("{type_base}{}", self.code()),
            title: self.title().to_owned(),
            status: self.status().as_u16(),
            detail,
        }
    }
}

/// The default prefix of problem `type` URIs (under the workspace's placeholder
/// repository URL; deployments can pass their own to
/// [`HttpSigError::problem_with_type_base`]).
pub const PROBLEM_TYPE_BASE: &str = "https://example.invalid/aims/problems/httpsig/";

/// The media type of a problem document (RFC 9457 section 3).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A URI reference identifying the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// An explanation specific to this occurrence.
    pub detail: String,
}

impl Problem {
    /// The problem as JSON.
    pub fn to_json(&self) -> String {
        // Serializing four plain fields cannot fail; fall back to a fixed document
        // rather than panic.
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                r#"{{"type":"about:blank","title":"Bad Request","status":{}}}"#,
                self.status
            )
        })
    }

    /// An HTTP response carrying the problem (`Content-Type: application/problem+json`).
    pub fn to_response(&self) -> http::Response<String> {
        let mut resp = http::Response::new(self.to_json());
        *resp.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::BAD_REQUEST);
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        resp
    }
}

impl From<CryptoError> for HttpSigError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::BadSignature => HttpSigError::BadSignature,
            CryptoError::Internal => HttpSigError::Internal(e),
            other => HttpSigError::Key(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_document_shape() {
        let p = HttpSigError::Expired {
            expires: 10,
            now: 20,
        }
        .problem();
        assert_eq!(p.status, 400);
        assert_eq!(p.type_, format!("{PROBLEM_TYPE_BASE}expired"));
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["type"], p.type_.as_str());
        assert_eq!(v["title"], "Invalid HTTP message signature");
        assert_eq!(v["status"], 400);
        assert_eq!(v["detail"], "signature expired at 10 (now 20)");
        let resp = p.to_response();
        assert_eq!(resp.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(
            resp.headers()[http::header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[test]
    fn capacity_and_internal_errors_are_not_400() {
        assert_eq!(HttpSigError::ReplayCacheFull.status(), 503);
        let internal = HttpSigError::Internal(CryptoError::Internal);
        assert_eq!(internal.status(), 500);
        assert_eq!(
            internal.problem().detail,
            "the message could not be processed"
        );
    }

    #[test]
    fn wit_errors_carry_the_jose_reason() {
        let p = HttpSigError::InvalidWit(JoseError::BadSignature).problem();
        assert_eq!(p.title, "Invalid workload identity token");
        assert!(p.detail.contains("signature verification failed"));
    }
}
