//! OAuth errors: one code per wire error, each with the status its RFC names.

/// An OAuth error code as sent in `error` (RFC 6749 §5.2 and the extensions AIMS
/// implements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// RFC 6749 §5.2: malformed request, missing or repeated parameter.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed (401 when the client authenticated
    /// through an HTTP authentication scheme, else 400; AIMS uses 401, as most servers do).
    InvalidClient,
    /// RFC 6749 §5.2: the grant (code, refresh token, assertion) is invalid.
    InvalidGrant,
    /// RFC 6749 §5.2: this client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: a scope the client may not have, or an unknown one.
    InvalidScope,
    /// RFC 8707 §2: a `resource` the client may not target.
    InvalidTarget,
    /// RFC 9396 §5: malformed or disallowed `authorization_details`.
    InvalidAuthorizationDetails,
    /// RFC 9449 §5: the DPoP proof is invalid.
    InvalidDpopProof,
    /// RFC 9449 §8: a server nonce is required.
    UseDpopNonce,
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType,
    /// RFC 6749 §4.1.2.1 (authorization endpoint).
    AccessDenied,
    /// RFC 6749 §4.1.2.1 (authorization endpoint).
    UnsupportedResponseType,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` but the user must log in.
    LoginRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` but the user must consent.
    ConsentRequired,
    /// RFC 6749 §5.2 / §4.1.2.1: the server failed.
    ServerError,
}

impl ErrorCode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidAuthorizationDetails => "invalid_authorization_details",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::ServerError => "server_error",
        }
    }

    /// The HTTP status of a token, introspection, revocation or PAR error response.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient => 401,
            ErrorCode::ServerError => 500,
            _ => 400,
        }
    }
}

/// An OAuth error response: a code and a description safe to show the client (never a
/// secret, never which of several credentials was wrong beyond what the client sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    /// The `error` value.
    pub code: ErrorCode,
    /// The `error_description` value.
    pub description: String,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client`.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// `server_error` (details go to the log, not to the client).
    pub fn server_error(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(context, error = %error, "authorization server error");
        Self::new(
            ErrorCode::ServerError,
            "the server could not process the request",
        )
    }

    /// The JSON body of the error response (RFC 6749 §5.2).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        })
    }
}
