//! The one error enum of the guard, one variant per rule family, and its exhaustive
//! mapping to an HTTP status, an RFC 9457 problem document and, for the OAuth schemes,
//! an RFC 6750 / RFC 9449 `WWW-Authenticate` challenge.

use aims_httpsig::HttpSigError;
use aims_jose::JoseError;
use http::StatusCode;

use crate::Mechanism;
use crate::token::TokenScheme;

/// The base of the problem `type` URIs of the guard; the last segment is
/// [`GuardError::code`].
pub const PROBLEM_TYPE_BASE: &str = "https://example.invalid/aims/problems/guard/";

/// Why a request was refused. Display strings never contain token or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The route requires authentication and the request carries no credential of an
    /// accepted mechanism. 401 with a challenge per accepted mechanism.
    #[error("authentication required")]
    MissingCredentials,
    /// The request carries credentials only for a mechanism this route does not accept.
    #[error("the {0:?} mechanism is not accepted on this route")]
    MechanismNotAccepted(Mechanism),
    /// A header that must appear once appears several times.
    #[error("more than one `{0}` header")]
    DuplicateHeader(&'static str),
    /// A credential header is not valid (not visible ASCII, wrong scheme syntax).
    #[error("`{0}` header is malformed")]
    MalformedHeader(&'static str),
    /// A `Workload-Proof-Token` without a `Workload-Identity-Token`.
    #[error("Workload-Proof-Token without Workload-Identity-Token")]
    MissingWit,
    /// The WIT failed validation (WPT mechanism; the HTTP signature mechanism reports
    /// WIT failures through [`GuardError::HttpSig`]).
    #[error("invalid Workload-Identity-Token: {0}")]
    Wit(JoseError),
    /// The WPT failed validation.
    #[error("invalid Workload-Proof-Token: {0}")]
    Wpt(JoseError),
    /// The WIMSE HTTP message signature failed (WIT, signature, digest, nonce replay).
    #[error("{0}")]
    HttpSig(HttpSigError),
    /// The request asks for a signed response (`wimse-sign-response`) and the server has
    /// no WIT and key to sign with: answered 501 rather than an unsigned 2xx.
    #[error("response signing requested but not available")]
    ResponseSigningUnavailable,
    /// The DPoP proof carries no nonce, or a nonce that is not current (RFC 9449 §9).
    #[error("a fresh DPoP nonce is required")]
    UseDpopNonce,
    /// The DPoP proof failed validation.
    #[error("invalid DPoP proof: {0}")]
    DpopProof(JoseError),
    /// The access token (DPoP scheme) failed validation.
    #[error("invalid access token: {0}")]
    AccessToken(JoseError),
    /// The access token's `cnf.jkt` is not the DPoP proof key.
    #[error("access token not bound to the DPoP proof key")]
    DpopBinding,
    /// The access token's `client_id` is not a workload identifier.
    #[error("access token client_id is not a workload identifier")]
    ClientIdNotWorkload,
    /// The access token presented with `Authorization: Bearer` failed validation.
    #[error("invalid access token: {0}")]
    BearerToken(JoseError),
    /// A sender-constrained token (`cnf.jkt`) presented as a bearer token; or a
    /// certificate-bound token without `Bearer` over mTLS.
    #[error("sender-constrained access token presented as a bearer token")]
    BoundTokenAsBearer,
    /// The token's `cnf.x5t#S256` is not the SHA-256 of the client certificate (or no
    /// client certificate was presented) (RFC 8705 section 3).
    #[error("access token not bound to the presented client certificate")]
    CertificateBinding,
    /// Introspection answered `active: false` (RFC 7662 section 2.2).
    #[error("access token is not active")]
    TokenInactive(TokenScheme),
    /// The token could not be checked: no keys fetched yet, or introspection failed.
    /// Refused, fail closed.
    #[error("access token validation unavailable")]
    TokenSourceUnavailable,
    /// The token lacks a scope the route requires (RFC 6750 section 3.1).
    #[error("insufficient scope: `{scope}` required")]
    InsufficientScope {
        /// The scheme the token was presented with.
        scheme: TokenScheme,
        /// The scope the route requires (space-separated).
        scope: String,
    },
    /// The user authentication behind the token is not the one the route requires
    /// (RFC 9470): `acr` not one of `acr_values`, or `auth_time` older than `max_age`.
    #[error("stronger or more recent user authentication required")]
    InsufficientUserAuthentication {
        /// The scheme the token was presented with.
        scheme: TokenScheme,
        /// Acceptable `acr` values (space-separated), if the route names some.
        acr_values: Option<String>,
        /// Maximum age of the user authentication in seconds, if the route sets one.
        max_age: Option<i64>,
    },
    /// The JWT-SVID bearer token failed validation.
    #[error("invalid JWT-SVID: {0}")]
    JwtSvid(JoseError),
    /// The mTLS peer is of a trust domain the guard does not trust.
    #[error("mTLS peer trust domain not accepted")]
    MtlsTrustDomain,
    /// The body is larger than the configured limit.
    #[error("request body exceeds {0} bytes")]
    BodyTooLarge(usize),
    /// The body could not be read.
    #[error("request body could not be read")]
    BodyUnreadable,
    /// The replay cache cannot record the proof (full, or the shared store failed):
    /// refused, fail closed.
    #[error("replay cache unavailable; request refused")]
    ReplayUnavailable,
    /// The policy decision point denied the request. The text is fixed: policy text
    /// and policy ids stay in the audit log.
    #[error("the request is not permitted")]
    AccessDenied,
    /// The policy decision point could not decide: refused, fail closed.
    #[error("authorization decision unavailable")]
    PolicyUnavailable,
    /// A server-side failure (signing, randomness).
    #[error("internal error")]
    Internal,
}

/// The `WWW-Authenticate` challenge a 401 or 403 answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// One challenge per accepted mechanism, no error code.
    Accepted,
    /// `<scheme> error="…"` (+ `DPoP-Nonce` for DPoP).
    Oauth(TokenScheme, &'static str),
    /// One challenge per accepted mechanism, with `error="…"` on the OAuth ones (a
    /// malformed `Authorization` field: its scheme cannot be trusted to pick one).
    AcceptedWithError(&'static str),
}

impl GuardError {
    /// The HTTP status: 400 for WIMSE (WIT, WPT, HTTP signature) failures as the drafts
    /// ask, 401 for missing credentials and the OAuth schemes (DPoP, Bearer), 403 for a
    /// missing scope or a policy deny, 413 for a body over the limit, 501 when a signed
    /// response cannot be produced, 503 when the replay cache, the token source or the
    /// policy decision point fails, 500 for internal errors.
    pub fn status(&self) -> StatusCode {
        match self {
            GuardError::MissingCredentials
            | GuardError::MechanismNotAccepted(_)
            | GuardError::UseDpopNonce
            | GuardError::DpopProof(_)
            | GuardError::AccessToken(_)
            | GuardError::DpopBinding
            | GuardError::ClientIdNotWorkload
            | GuardError::JwtSvid(_)
            | GuardError::BearerToken(_)
            | GuardError::BoundTokenAsBearer
            | GuardError::CertificateBinding
            | GuardError::TokenInactive(_)
            | GuardError::InsufficientUserAuthentication { .. }
            | GuardError::MtlsTrustDomain => StatusCode::UNAUTHORIZED,
            GuardError::InsufficientScope { .. } | GuardError::AccessDenied => {
                StatusCode::FORBIDDEN
            }
            GuardError::TokenSourceUnavailable | GuardError::PolicyUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GuardError::DuplicateHeader(_)
            | GuardError::MalformedHeader(_)
            | GuardError::MissingWit
            | GuardError::Wit(_)
            | GuardError::Wpt(_)
            | GuardError::BodyUnreadable => StatusCode::BAD_REQUEST,
            GuardError::HttpSig(e) => e.status(),
            GuardError::ResponseSigningUnavailable => StatusCode::NOT_IMPLEMENTED,
            GuardError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GuardError::ReplayUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GuardError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable reason code (the last segment of the problem `type`,
    /// and the audit decision reason).
    pub fn code(&self) -> String {
        match self {
            GuardError::MissingCredentials => "missing-credentials".into(),
            GuardError::MechanismNotAccepted(_) => "mechanism-not-accepted".into(),
            GuardError::DuplicateHeader(h) => format!("duplicate-{h}"),
            GuardError::MalformedHeader(h) => format!("malformed-{h}"),
            GuardError::MissingWit => "wpt-missing-wit".into(),
            GuardError::Wit(e) => format!("wit-{}", jose_rule(e)),
            GuardError::Wpt(e) => format!("wpt-{}", jose_rule(e)),
            GuardError::HttpSig(e) => format!("httpsig-{}", e.code()),
            GuardError::ResponseSigningUnavailable => "response-signing-unavailable".into(),
            GuardError::UseDpopNonce => "dpop-use-nonce".into(),
            GuardError::DpopProof(e) => format!("dpop-{}", jose_rule(e)),
            GuardError::AccessToken(e) => format!("access-token-{}", jose_rule(e)),
            GuardError::DpopBinding => "dpop-binding-mismatch".into(),
            GuardError::ClientIdNotWorkload => "access-token-client-id".into(),
            GuardError::JwtSvid(e) => format!("jwt-svid-{}", jose_rule(e)),
            GuardError::BearerToken(e) => format!("access-token-{}", jose_rule(e)),
            GuardError::BoundTokenAsBearer => "access-token-bound-as-bearer".into(),
            GuardError::CertificateBinding => "certificate-binding-mismatch".into(),
            GuardError::TokenInactive(_) => "access-token-inactive".into(),
            GuardError::TokenSourceUnavailable => "token-source-unavailable".into(),
            GuardError::InsufficientScope { .. } => "insufficient-scope".into(),
            GuardError::InsufficientUserAuthentication { .. } => {
                "insufficient-user-authentication".into()
            }
            GuardError::MtlsTrustDomain => "mtls-trust-domain".into(),
            GuardError::BodyTooLarge(_) => "body-too-large".into(),
            GuardError::BodyUnreadable => "body-unreadable".into(),
            GuardError::ReplayUnavailable => "replay-unavailable".into(),
            GuardError::AccessDenied => "access-denied".into(),
            GuardError::PolicyUnavailable => "policy-unavailable".into(),
            GuardError::Internal => "internal".into(),
        }
    }

    /// A short, fixed summary for the problem `title`.
    pub fn title(&self) -> &'static str {
        match self {
            GuardError::MissingCredentials | GuardError::MechanismNotAccepted(_) => {
                "Authentication required"
            }
            GuardError::DuplicateHeader(_) | GuardError::MalformedHeader(_) => {
                "Invalid credential header"
            }
            GuardError::MissingWit | GuardError::Wit(_) => "Invalid workload identity token",
            GuardError::Wpt(JoseError::Replayed) => "Replayed workload proof token",
            GuardError::Wpt(_) => "Invalid workload proof token",
            GuardError::HttpSig(HttpSigError::Replayed) => "Replayed message",
            GuardError::HttpSig(_) => "Invalid HTTP message signature",
            GuardError::ResponseSigningUnavailable => "Response signing unavailable",
            GuardError::UseDpopNonce => "DPoP nonce required",
            GuardError::DpopProof(JoseError::Replayed) => "Replayed DPoP proof",
            GuardError::DpopProof(_) => "Invalid DPoP proof",
            GuardError::AccessToken(_)
            | GuardError::BearerToken(_)
            | GuardError::BoundTokenAsBearer
            | GuardError::CertificateBinding
            | GuardError::TokenInactive(_)
            | GuardError::DpopBinding
            | GuardError::ClientIdNotWorkload => "Invalid access token",
            GuardError::TokenSourceUnavailable => "Service temporarily unavailable",
            GuardError::InsufficientScope { .. } => "Insufficient scope",
            GuardError::InsufficientUserAuthentication { .. } => "Step-up authentication required",
            GuardError::JwtSvid(_) => "Invalid JWT-SVID",
            GuardError::MtlsTrustDomain => "Client certificate not accepted",
            GuardError::BodyTooLarge(_) => "Request body too large",
            GuardError::BodyUnreadable => "Request body unreadable",
            GuardError::ReplayUnavailable | GuardError::PolicyUnavailable => {
                "Service temporarily unavailable"
            }
            GuardError::AccessDenied => "Forbidden",
            GuardError::Internal => "Internal error",
        }
    }

    /// The `detail` of the problem document: the error text, except for internal and
    /// capacity failures whose causes stay in the server log.
    pub fn detail(&self) -> String {
        match self {
            GuardError::Internal => "the request could not be processed".into(),
            GuardError::HttpSig(e @ HttpSigError::Internal(_)) => e.problem().detail,
            other => other.to_string(),
        }
    }

    /// Which challenge a 401 carries.
    pub(crate) fn challenge(&self) -> Option<Challenge> {
        match self {
            GuardError::MissingCredentials | GuardError::MechanismNotAccepted(_) => {
                Some(Challenge::Accepted)
            }
            GuardError::UseDpopNonce => Some(Challenge::Oauth(TokenScheme::Dpop, "use_dpop_nonce")),
            GuardError::DpopProof(_) => {
                Some(Challenge::Oauth(TokenScheme::Dpop, "invalid_dpop_proof"))
            }
            GuardError::AccessToken(_) | GuardError::DpopBinding => {
                Some(Challenge::Oauth(TokenScheme::Dpop, "invalid_token"))
            }
            // Raised after validation, by either scheme: the mechanism tells which.
            GuardError::ClientIdNotWorkload => {
                Some(Challenge::Oauth(TokenScheme::Dpop, "invalid_token"))
            }
            GuardError::JwtSvid(_)
            | GuardError::BearerToken(_)
            | GuardError::BoundTokenAsBearer
            | GuardError::CertificateBinding => {
                Some(Challenge::Oauth(TokenScheme::Bearer, "invalid_token"))
            }
            GuardError::TokenInactive(scheme) => Some(Challenge::Oauth(*scheme, "invalid_token")),
            GuardError::InsufficientScope { scheme, .. } => {
                Some(Challenge::Oauth(*scheme, "insufficient_scope"))
            }
            GuardError::InsufficientUserAuthentication { scheme, .. } => Some(Challenge::Oauth(
                *scheme,
                "insufficient_user_authentication",
            )),
            GuardError::MtlsTrustDomain => Some(Challenge::Accepted),
            // RFC 6750 section 3.1: a malformed or repeated `Authorization` field is
            // `invalid_request`, with the challenges.
            GuardError::DuplicateHeader("authorization")
            | GuardError::MalformedHeader("authorization") => {
                Some(Challenge::AcceptedWithError("invalid_request"))
            }
            GuardError::DuplicateHeader(_)
            | GuardError::MalformedHeader(_)
            | GuardError::MissingWit
            | GuardError::Wit(_)
            | GuardError::Wpt(_)
            | GuardError::HttpSig(_)
            | GuardError::ResponseSigningUnavailable
            | GuardError::BodyTooLarge(_)
            | GuardError::BodyUnreadable
            | GuardError::ReplayUnavailable
            | GuardError::TokenSourceUnavailable
            | GuardError::AccessDenied
            | GuardError::PolicyUnavailable
            | GuardError::Internal => None,
        }
    }

    /// The remediation recorded in the audit event.
    pub(crate) fn remediation(&self) -> &'static str {
        match self.challenge() {
            Some(Challenge::Oauth(_, "use_dpop_nonce")) => "reject; new DPoP nonce issued",
            Some(Challenge::Oauth(_, "insufficient_scope")) => {
                "reject; token with the required scope needed"
            }
            Some(Challenge::Oauth(_, "insufficient_user_authentication")) => {
                "reject; step-up required"
            }
            Some(Challenge::Accepted | Challenge::AcceptedWithError(_)) => {
                "reject; authentication challenge sent"
            }
            None if *self == GuardError::AccessDenied => "reject; not permitted by policy",
            _ if self.status() == StatusCode::SERVICE_UNAVAILABLE => "reject; retry later",
            _ => "reject",
        }
    }
}

/// The rule of a token profile that failed, as a stable code segment.
fn jose_rule(e: &JoseError) -> &'static str {
    match e {
        JoseError::Expired { .. } => "expired",
        JoseError::NotYetValid { .. } => "not-yet-valid",
        JoseError::IssuedInFuture { .. } => "issued-in-future",
        JoseError::TooOld { .. } => "too-old",
        JoseError::LifetimeTooLong { .. } => "lifetime-too-long",
        JoseError::AudienceMismatch => "audience-mismatch",
        JoseError::IssuerMismatch => "issuer-mismatch",
        JoseError::SubjectRejected(_) => "subject-rejected",
        JoseError::BindingMismatch("wth") => "wth-mismatch",
        JoseError::BindingMismatch("ath") => "ath-mismatch",
        JoseError::BindingMismatch("tth") => "tth-mismatch",
        JoseError::BindingMismatch("oth") => "oth-mismatch",
        JoseError::BindingMismatch("htm") => "htm-mismatch",
        JoseError::BindingMismatch("htu") => "htu-mismatch",
        JoseError::BindingMismatch("nonce") => "nonce-mismatch",
        JoseError::BindingMismatch("cnf") => "cnf-mismatch",
        JoseError::BindingMismatch(_) => "binding-mismatch",
        JoseError::Replayed => "replayed",
        JoseError::ReplayCacheFull => "replay-cache-full",
        JoseError::NonceRequired => "nonce-required",
        JoseError::MissingClaim(_) => "missing-claim",
        JoseError::InvalidClaim { .. } => "invalid-claim",
        JoseError::ForbiddenClaim(_) => "unexpected-claim",
        JoseError::BadSignature => "bad-signature",
        JoseError::UnknownKey => "unknown-key",
        JoseError::MissingKid => "missing-kid",
        JoseError::WrongType { .. } => "wrong-type",
        JoseError::AlgNone
        | JoseError::SymmetricAlgorithm(_)
        | JoseError::UnsupportedAlgorithm(_)
        | JoseError::AlgorithmNotAllowed { .. } => "algorithm-not-allowed",
        JoseError::TooLarge(_) => "too-large",
        JoseError::Key(_) => "key-rejected",
        JoseError::Malformed(_) | JoseError::ForbiddenHeader(_) | JoseError::UnknownCrit => {
            "malformed"
        }
        // `JoseError` is non-exhaustive; an unknown future rule still gets a code.
        _ => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        assert_eq!(
            GuardError::Wpt(JoseError::BindingMismatch("wth")).code(),
            "wpt-wth-mismatch"
        );
        assert_eq!(
            GuardError::Wpt(JoseError::Replayed).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(GuardError::UseDpopNonce.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            GuardError::HttpSig(HttpSigError::ReplayCacheFull).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            GuardError::UseDpopNonce.remediation(),
            "reject; new DPoP nonce issued"
        );
    }
}
