//! Access tokens for the agent itself (OAuth 2.0 client credentials), authenticated with
//! its runtime identity, never a static secret: the client assertion is a JWT-SVID from
//! the Workload API whose audience is the authorization server's issuer identifier
//! (draft-ietf-oauth-spiffe-client-auth, rfc7523bis). With DPoP the token is bound to
//! this client's DPoP key, which never leaves the crate.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use serde::Deserialize;

use crate::AgentError;
use crate::client::{AgentClient, DPOP_HEADER, DPOP_NONCE_HEADER};
use crate::error::{REDACTED, server_text};

/// `client_assertion_type` of a JWT-SVID assertion.
pub const JWT_SPIFFE_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";

/// What to ask the authorization server for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequestSpec {
    /// The issuer identifier (the JWT-SVID's audience).
    pub issuer: String,
    /// The token endpoint URL.
    pub token_endpoint: String,
    /// The registered client id (default: the agent's SPIFFE ID).
    pub client_id: Option<String>,
    /// RFC 8707 resource the token is for.
    pub resource: Option<String>,
    /// Requested scope (space-separated).
    pub scope: Option<String>,
    /// Bind the token to this client's DPoP key.
    pub dpop: bool,
}

/// The largest token endpoint response read, in bytes.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// An access token as the token endpoint returned it. `Debug` redacts the token.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct AccessToken {
    /// The token.
    pub access_token: String,
    /// `Bearer` or `DPoP`.
    pub token_type: String,
    /// Seconds until expiry.
    pub expires_in: Option<i64>,
    /// The granted scope.
    pub scope: Option<String>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("access_token", &REDACTED)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
    error_description: Option<String>,
}

impl AgentClient {
    /// Gets an access token for this agent by client credentials, authenticating with a
    /// JWT-SVID. With `dpop`, answers one `use_dpop_nonce` challenge.
    pub async fn client_credentials(
        &self,
        spec: &TokenRequestSpec,
    ) -> Result<AccessToken, AgentError> {
        let mut nonce: Option<String> = None;
        for _ in 0..2 {
            let svid = self.source().jwt_svid(&spec.issuer).await?;
            let client_id = match &spec.client_id {
                Some(c) => c.clone(),
                None => self
                    .source()
                    .spiffe_id()
                    .map(|id| id.into_string())
                    .ok_or(AgentError::NoCredential("SPIFFE ID"))?,
            };
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &client_id)
                .append_pair("client_assertion_type", JWT_SPIFFE_ASSERTION_TYPE)
                .append_pair("client_assertion", &svid);
            if let Some(r) = &spec.resource {
                form.append_pair("resource", r);
            }
            if let Some(s) = &spec.scope {
                form.append_pair("scope", s);
            }
            let mut req = http::Request::post(spec.token_endpoint.as_str())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Bytes::from(form.finish()))
                .map_err(|e| AgentError::Request(e.to_string()))?;
            if spec.dpop {
                let proof =
                    self.dpop_proof("POST", &spec.token_endpoint, None, nonce.as_deref())?;
                req.headers_mut().insert(
                    http::HeaderName::from_static(DPOP_HEADER),
                    http::HeaderValue::from_str(&proof)
                        .map_err(|e| AgentError::Signing(e.to_string()))?,
                );
            }
            let limit = MAX_TOKEN_RESPONSE_BYTES.min(self.max_response_bytes());
            let resp = self.send_capped(req, &crate::Auth::None, limit).await?;
            if resp.status().is_success() {
                // serde's messages may quote the body: sanitised like any server text.
                let token: AccessToken = serde_json::from_slice(resp.body())
                    .map_err(|e| AgentError::BadToken(server_text(&e.to_string())))?;
                check_token_type(&token, spec.dpop)?;
                return Ok(token);
            }
            let err: Option<ErrorBody> = serde_json::from_slice(resp.body()).ok();
            let server_nonce = resp
                .headers()
                .get(DPOP_NONCE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match (err, server_nonce) {
                (Some(e), Some(n)) if e.error == "use_dpop_nonce" && nonce.is_none() => {
                    nonce = Some(n);
                }
                (Some(e), _) => {
                    return Err(AgentError::TokenRefused {
                        status: resp.status().as_u16(),
                        error: server_text(&e.error),
                        description: server_text(&e.error_description.unwrap_or_default()),
                    });
                }
                (None, _) => {
                    return Err(AgentError::TokenRefused {
                        status: resp.status().as_u16(),
                        error: "unknown".into(),
                        description: server_text(&String::from_utf8_lossy(resp.body())),
                    });
                }
            }
        }
        Err(AgentError::TokenRefused {
            status: 400,
            error: "use_dpop_nonce".into(),
            description: "the server asked for a DPoP nonce twice".into(),
        })
    }
}

/// RFC 6749 §7.1 (compared case-insensitively), RFC 9449 §5: a token asked for with
/// DPoP must come back as `DPoP`, any other as `Bearer`; using a token as a type it is
/// not would fail at the resource server, or silently drop the DPoP binding.
fn check_token_type(token: &AccessToken, dpop: bool) -> Result<(), AgentError> {
    let expected = if dpop { "DPoP" } else { "Bearer" };
    if token.token_type.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    Err(AgentError::BadToken(format!(
        "token_type is {:?} but {expected} was requested{}",
        server_text(&token.token_type),
        if dpop {
            " (the authorization server did not bind the token to this client's DPoP key)"
        } else {
            " (set TokenRequestSpec::dpop to ask for a DPoP-bound token)"
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_token_debug_redacts_the_token() {
        let token = AccessToken {
            access_token: "eyJsecret.token.value".into(),
            token_type: "DPoP".into(),
            expires_in: Some(300),
            scope: Some("read".into()),
        };
        let shown = format!("{token:?}");
        assert!(!shown.contains("eyJsecret"), "{shown}");
        assert!(
            shown.contains("DPoP") && shown.contains(REDACTED),
            "{shown}"
        );
    }
}
