//! The authorization code flow: authorization requests (RFC 6749 §4.1, PKCE RFC 7636 with
//! S256 only, RFC 8707 resources, RFC 9396 details, RFC 9449 `dpop_jkt`, RFC 9470
//! `acr_values`/`max_age`), pushed authorization requests (RFC 9126), single-use codes,
//! and refresh tokens with rotation and reuse detection.
//!
//! The login and consent pages are the server's (HTTP); this module decides everything
//! else. Codes, refresh tokens and pushed requests live in the store under the SHA-256
//! of their value, so a database read never reveals a usable secret.
//!
//! - **Codes** are single use: a second redemption finds the code consumed and revokes
//!   its whole family (every token issued from it), as RFC 6749 §4.1.2 recommends.
//! - **Refresh tokens** rotate: each use consumes the token and issues a new one in the
//!   same family; presenting a consumed one again is a reuse, and revokes the family
//!   (RFC 9700 §4.14.2).

use aims_crypto::{random_token, sha256_b64url};
use aims_jose::access_token::{AuthorizationDetail, Scope};
use aims_store::{ConsumeOutcome, GrantKind, GrantRecord, GrantState, NewGrant};
use serde::{Deserialize, Serialize};

use crate::authn::{AuthenticatedClient, ClientDirectory};
use crate::client::{AuthMethod, Client, GrantType};
use crate::form::Params;
use crate::token::{
    Grant, Issued, Spent, TokenError, TokenRequest, TokenResponse, TokenService, audience,
    granted_scope, narrowed_audience,
};
use crate::{ErrorCode, OAuthError};

/// Lifetime of an authorization code (RFC 6749 §4.1.2: short; 60 s).
pub const CODE_LIFETIME: i64 = 60;
/// Lifetime of a pushed request's `request_uri` (RFC 9126 §2.2).
pub const PAR_LIFETIME: i64 = 60;
/// The `request_uri` prefix of pushed requests (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// The longest `state` accepted (it is stored until the request is decided).
pub const MAX_STATE_BYTES: usize = 2048;

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The registered client.
    pub client_id: String,
    /// Where the code goes (exactly a registered URI).
    pub redirect_uri: String,
    /// Whether the request carried `redirect_uri` (then the token request must too).
    pub redirect_uri_given: bool,
    /// The client's `state`, returned unchanged.
    pub state: Option<String>,
    /// The requested scope (each allowed to the client).
    pub scope: String,
    /// RFC 8707 resources (each registered for the client).
    pub resources: Vec<String>,
    /// RFC 9396 details.
    pub authorization_details: Option<Vec<AuthorizationDetail>>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// RFC 9449 §10: the DPoP key the tokens must be bound to.
    pub dpop_jkt: Option<String>,
    /// RFC 9470: acceptable authentication context classes, in order of preference.
    pub acr_values: Vec<String>,
    /// RFC 9470 / OIDC: the maximum age of the user's authentication, in seconds.
    pub max_age: Option<i64>,
    /// OIDC `prompt` values (`none`, `login`, `consent`); `none` stands alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt: Vec<String>,
}

/// Why an authorization request failed, and whether the error may be sent to the
/// redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect
    /// (RFC 6749 §4.1.2.1).
    NoRedirect(OAuthError),
    /// Redirect to the client with `error`, `state` and `iss`.
    Redirect {
        /// The error.
        error: OAuthError,
        /// The validated redirect URI.
        redirect_uri: String,
        /// The client's `state`.
        state: Option<String>,
    },
}

/// What the user approved, after login and consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The user's identifier (token `sub`).
    pub subject: String,
    /// When the user authenticated (Unix seconds).
    pub auth_time: i64,
    /// The authentication context class reached, if any.
    pub acr: Option<String>,
}

/// What a code or refresh token carries to the token endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CodeData {
    request: AuthorizationRequest,
    subject: String,
    auth_time: i64,
    acr: Option<String>,
}

/// What a refresh token carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshData {
    pub(crate) scope: String,
    pub(crate) resources: Vec<String>,
    pub(crate) authorization_details: Option<Vec<AuthorizationDetail>>,
    pub(crate) subject: String,
    pub(crate) auth_time: i64,
    pub(crate) acr: Option<String>,
    /// RFC 9449 §5: refresh tokens of public clients are bound to the DPoP key.
    pub(crate) jkt: Option<String>,
}

fn redirect_error(
    request: &AuthorizationRequest,
    code: ErrorCode,
    description: impl Into<String>,
) -> AuthorizeError {
    AuthorizeError::Redirect {
        error: OAuthError::new(code, description),
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
    }
}

impl<D: ClientDirectory> TokenService<D> {
    /// Validates an authorization request (front channel, or its pushed form when it
    /// carries a `request_uri`).
    pub async fn authorization_request(
        &self,
        params: &Params,
    ) -> Result<(std::sync::Arc<Client>, AuthorizationRequest), AuthorizeError> {
        let no_redirect = |m: &str| AuthorizeError::NoRedirect(OAuthError::invalid_request(m));
        let client_id = params
            .get("client_id")
            .ok_or_else(|| no_redirect("missing client_id"))?;
        let client = self
            .clients()
            .get(client_id)
            .await
            .map_err(AuthorizeError::NoRedirect)?
            .ok_or_else(|| no_redirect("unknown client_id"))?;
        if let Some(uri) = params.get("request_uri") {
            return self.pushed_request(&client, uri, params).await;
        }
        let request = self.parse_request(&client, params)?;
        Ok((client, request))
    }

    /// RFC 9126: validates and stores a pushed request of an authenticated client;
    /// returns the `request_uri` and its lifetime.
    ///
    /// A `DPoP` proof sent with the request binds the code to its key (RFC 9449 §10.1):
    /// it sets `dpop_jkt`, or must match the `dpop_jkt` sent.
    pub async fn push_authorization_request(
        &self,
        req: TokenRequest<'_>,
    ) -> Result<(String, i64), TokenError> {
        let client = self
            .authenticator()
            .authenticate(&req, self.clients())
            .await?;
        if req.params.get("request_uri").is_some() {
            return Err(OAuthError::invalid_request(
                "request_uri is not allowed in a pushed request",
            )
            .into());
        }
        let mut request = self
            .parse_request(&client.client, req.params)
            .map_err(|e| match e {
                AuthorizeError::NoRedirect(e) | AuthorizeError::Redirect { error: e, .. } => e,
            })?;
        if let Some(jkt) = self
            .dpop_proof_at(req.dpop, crate::metadata::paths::PAR)
            .await?
        {
            match &request.dpop_jkt {
                Some(sent) if *sent != jkt => {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidDpopProof,
                        "dpop_jkt is not the thumbprint of the DPoP proof's key",
                    )
                    .into());
                }
                _ => request.dpop_jkt = Some(jkt),
            }
        }
        let reference = random_token().map_err(|e| OAuthError::server_error("random", &e))?;
        let now = self.clock().now();
        let data = serde_json::to_string(&request)
            .map_err(|e| OAuthError::server_error("pushed request", &e))?;
        self.store()
            .put_grant(&NewGrant {
                handle: sha256_b64url(&reference),
                kind: GrantKind::PushedRequest,
                client_id: client.client.id().to_owned(),
                subject: None,
                family: sha256_b64url(format!("par:{reference}")),
                expires_at: now.saturating_add(PAR_LIFETIME),
                created_at: now,
                data,
            })
            .await
            .map_err(|e| OAuthError::server_error("pushed request", &e))?;
        Ok((format!("{REQUEST_URI_PREFIX}{reference}"), PAR_LIFETIME))
    }

    async fn pushed_request(
        &self,
        client: &std::sync::Arc<Client>,
        uri: &str,
        params: &Params,
    ) -> Result<(std::sync::Arc<Client>, AuthorizationRequest), AuthorizeError> {
        let bad = |m: &str| AuthorizeError::NoRedirect(OAuthError::invalid_request(m));
        let reference = uri
            .strip_prefix(REQUEST_URI_PREFIX)
            .ok_or_else(|| bad("request_uri is not one this server issued"))?;
        // RFC 9126 §4: the request_uri is used once.
        let outcome = self
            .store()
            .consume_grant(
                &sha256_b64url(reference),
                GrantKind::PushedRequest,
                self.clock().now(),
            )
            .await
            .map_err(|e| AuthorizeError::NoRedirect(OAuthError::server_error("PAR", &e)))?;
        let record = match outcome {
            ConsumeOutcome::Consumed(r) => r,
            _ => return Err(bad("request_uri is unknown, expired or already used")),
        };
        if record.client_id != client.id() {
            return Err(bad("request_uri belongs to another client"));
        }
        let request: AuthorizationRequest = serde_json::from_str(&record.data)
            .map_err(|e| AuthorizeError::NoRedirect(OAuthError::server_error("PAR", &e)))?;
        // Front-channel parameters besides client_id and request_uri are ignored
        // (RFC 9126 §4), except that they must not contradict the pushed ones.
        if params
            .get("redirect_uri")
            .is_some_and(|r| r != request.redirect_uri)
        {
            return Err(bad("redirect_uri differs from the pushed request"));
        }
        Ok((client.clone(), request))
    }

    #[allow(clippy::too_many_lines)]
    fn parse_request(
        &self,
        client: &Client,
        params: &Params,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let no_redirect = |m: String| AuthorizeError::NoRedirect(OAuthError::invalid_request(m));
        let registered = &client.metadata().redirect_uris;
        let (redirect_uri, given) = match params.get("redirect_uri") {
            Some(r) if registered.iter().any(|x| x == r) => (r.to_owned(), true),
            Some(_) => {
                return Err(no_redirect(
                    "redirect_uri is not registered for this client (exact match)".into(),
                ));
            }
            None => match registered.as_slice() {
                [one] => (one.clone(), false),
                _ => return Err(no_redirect("redirect_uri is required".into())),
            },
        };
        if params
            .get("state")
            .is_some_and(|st| st.len() > MAX_STATE_BYTES)
        {
            // Not echoed back (so not redirected): the request is kept until it is
            // decided, and a state this long is no client's.
            return Err(no_redirect(format!(
                "state is longer than {MAX_STATE_BYTES} bytes"
            )));
        }
        let mut request = AuthorizationRequest {
            client_id: client.id().to_owned(),
            redirect_uri,
            redirect_uri_given: given,
            state: params.get("state").map(str::to_owned),
            scope: String::new(),
            resources: Vec::new(),
            authorization_details: None,
            code_challenge: String::new(),
            dpop_jkt: None,
            acr_values: Vec::new(),
            max_age: None,
            prompt: Vec::new(),
        };
        // From here on errors go back to the client.
        if !client.may_use(GrantType::AuthorizationCode) {
            return Err(redirect_error(
                &request,
                ErrorCode::UnauthorizedClient,
                "this client may not use the authorization code flow",
            ));
        }
        match params.get("response_type") {
            Some("code") => {}
            Some(_) => {
                return Err(redirect_error(
                    &request,
                    ErrorCode::UnsupportedResponseType,
                    "only response_type=code is supported",
                ));
            }
            None => {
                return Err(redirect_error(
                    &request,
                    ErrorCode::InvalidRequest,
                    "missing response_type",
                ));
            }
        }
        // Responses go in the query (RFC 6749 §4.1.2); no other mode is served.
        match params.get("response_mode") {
            None | Some("query") => {}
            Some(_) => {
                return Err(redirect_error(
                    &request,
                    ErrorCode::InvalidRequest,
                    "only response_mode=query is supported",
                ));
            }
        }
        match (
            params.get("code_challenge"),
            params.get("code_challenge_method"),
        ) {
            (Some(c), Some("S256")) if is_pkce_challenge(c) => request.code_challenge = c.into(),
            (Some(_), Some("S256")) => {
                return Err(redirect_error(
                    &request,
                    ErrorCode::InvalidRequest,
                    "code_challenge must be 43 base64url characters",
                ));
            }
            (Some(_), _) => {
                return Err(redirect_error(
                    &request,
                    ErrorCode::InvalidRequest,
                    "code_challenge_method must be S256",
                ));
            }
            (None, _) => {
                return Err(redirect_error(
                    &request,
                    ErrorCode::InvalidRequest,
                    "PKCE is required: send code_challenge with code_challenge_method=S256",
                ));
            }
        }
        let fake = fake_authenticated(client);
        let scope = granted_scope(&fake, params.get("scope"))
            .map_err(|e| redirect_error(&request, e.code, e.description))?;
        request.scope = scope.iter().collect::<Vec<_>>().join(" ");
        request.resources = audience(&fake, &params.get_all("resource"))
            .map_err(|e| redirect_error(&request, e.code, e.description))?;
        request.authorization_details = self
            .rar()
            .parse(
                params.get("authorization_details"),
                &client.metadata().authorization_details_types,
            )
            .map_err(|e| redirect_error(&request, e.code, e.description))?;
        if let Some(jkt) = params.get("dpop_jkt") {
            if jkt.len() != 43 || aims_crypto::b64::decode_url(jkt).is_none() {
                return Err(redirect_error(
                    &request,
                    ErrorCode::InvalidRequest,
                    "dpop_jkt must be a base64url SHA-256 thumbprint",
                ));
            }
            request.dpop_jkt = Some(jkt.to_owned());
        }
        request.acr_values = params
            .get("acr_values")
            .map(|v| {
                v.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(m) = params.get("max_age") {
            request.max_age = Some(m.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| {
                redirect_error(
                    &request,
                    ErrorCode::InvalidRequest,
                    "max_age must be a number of seconds",
                )
            })?);
        }
        if let Some(p) = params.get("prompt") {
            let values: Vec<String> = p
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let known = values
                .iter()
                .all(|v| matches!(v.as_str(), "none" | "login" | "consent"));
            if !known || (values.len() > 1 && values.iter().any(|v| v == "none")) {
                return Err(redirect_error(
                    &request,
                    ErrorCode::InvalidRequest,
                    "prompt must be none, or login and/or consent",
                ));
            }
            request.prompt = values;
        }
        Ok(request)
    }

    /// Issues a code for an approved request; returns the redirect URL (with `code`,
    /// `state` and RFC 9207 `iss`).
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        approval: &Approval,
    ) -> Result<String, OAuthError> {
        let code = random_token().map_err(|e| OAuthError::server_error("random", &e))?;
        let now = self.clock().now();
        let data = serde_json::to_string(&CodeData {
            request: request.clone(),
            subject: approval.subject.clone(),
            auth_time: approval.auth_time,
            acr: approval.acr.clone(),
        })
        .map_err(|e| OAuthError::server_error("code", &e))?;
        let family = random_token().map_err(|e| OAuthError::server_error("random", &e))?;
        self.store()
            .put_grant(&NewGrant {
                handle: sha256_b64url(&code),
                kind: GrantKind::AuthorizationCode,
                client_id: request.client_id.clone(),
                subject: Some(approval.subject.clone()),
                family,
                expires_at: now.saturating_add(CODE_LIFETIME),
                created_at: now,
                data,
            })
            .await
            .map_err(|e| OAuthError::server_error("code", &e))?;
        let mut pairs = vec![("code", code.as_str()), ("iss", self.issuer().as_str())];
        if let Some(state) = &request.state {
            pairs.push(("state", state));
        }
        Ok(append_query(&request.redirect_uri, &pairs))
    }

    /// The redirect URL of an error response (with `state` and RFC 9207 `iss`).
    pub fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &OAuthError,
    ) -> String {
        let mut pairs = vec![
            ("error", error.code.as_str()),
            ("error_description", error.description.as_str()),
            ("iss", self.issuer().as_str()),
        ];
        if let Some(state) = state {
            pairs.push(("state", state));
        }
        append_query(redirect_uri, &pairs)
    }

    pub(crate) async fn authorization_code(
        &self,
        client: &AuthenticatedClient,
        req: &TokenRequest<'_>,
    ) -> Result<(TokenResponse, Issued), TokenError> {
        let code = req.params.require("code")?;
        let verifier = req
            .params
            .require("code_verifier")
            .map_err(|_| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
        // The DPoP proof is checked before the code is used up: a client told to fetch a
        // nonce (`use_dpop_nonce`) retries with the same code.
        let jkt = self.dpop_proof(req.dpop).await?;
        if client.client.requires_dpop() && jkt.is_none() {
            return Err(
                OAuthError::invalid_request("this client's tokens must be DPoP-bound").into(),
            );
        }
        let handle = sha256_b64url(code);
        let record = match self.store().get_grant(&handle).await {
            Ok(r) => r,
            Err(aims_store::StoreError::NotFound(_)) => {
                return Err(invalid_grant("the code is invalid or expired"));
            }
            Err(e) => return Err(OAuthError::server_error("code", &e).into()),
        };
        // The checks run on the stored request; the code is used up when the tokens are
        // stored (one transaction), or right away when a check fails: a code presented
        // with a wrong verifier, redirect URI or client is spent either way.
        let grant = match self.check_code(client, req, &record, verifier, jkt) {
            Ok(grant) => grant,
            Err(refused) => {
                self.use_up(&handle, GrantKind::AuthorizationCode).await?;
                return Err(refused);
            }
        };
        self.issue(
            client,
            Grant {
                spends: Some(Spent {
                    handle,
                    kind: GrantKind::AuthorizationCode,
                }),
                ..grant
            },
        )
        .await
    }

    /// The grant a presented code stands for, if the request matches the code's
    /// authorization request (client, redirect URI, PKCE verifier, DPoP key, resources).
    fn check_code(
        &self,
        client: &AuthenticatedClient,
        req: &TokenRequest<'_>,
        record: &GrantRecord,
        verifier: &str,
        jkt: Option<String>,
    ) -> Result<Grant, TokenError> {
        // Used, revoked or expired: refused here, and the use that follows reports which
        // (a used code's family is revoked there).
        if record.kind != GrantKind::AuthorizationCode
            || record.state != GrantState::Active
            || record.expires_at <= self.clock().now()
        {
            return Err(invalid_grant("the code is invalid or expired"));
        }
        if record.client_id != client.client.id() {
            return Err(invalid_grant("the code was issued to another client"));
        }
        let data: CodeData =
            serde_json::from_str(&record.data).map_err(|e| OAuthError::server_error("code", &e))?;
        let request = &data.request;
        match req.params.get("redirect_uri") {
            Some(r) if r == request.redirect_uri => {}
            None if !request.redirect_uri_given => {}
            _ => {
                return Err(invalid_grant(
                    "redirect_uri does not match the authorization request",
                ));
            }
        }
        if !pkce_matches(verifier, &request.code_challenge) {
            return Err(invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        if let Some(bound) = &request.dpop_jkt
            && jkt.as_deref() != Some(bound.as_str())
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "the DPoP key differs from dpop_jkt of the authorization request",
            )
            .into());
        }
        let scope = Scope::parse(&request.scope)
            .map_err(|e| OAuthError::server_error("stored scope", &e))?;
        let token_audience =
            narrowed_audience(&request.resources, &req.params.get_all("resource"))?;
        let refresh = client
            .client
            .may_use(GrantType::RefreshToken)
            .then(|| RefreshData {
                scope: request.scope.clone(),
                resources: request.resources.clone(),
                authorization_details: request.authorization_details.clone(),
                subject: data.subject.clone(),
                auth_time: data.auth_time,
                acr: data.acr.clone(),
                jkt: if client.method == AuthMethod::None {
                    jkt.clone()
                } else {
                    None
                },
            });
        Ok(Grant {
            agent: client.token_client_id().to_owned(),
            subject: Some(data.subject.clone()),
            audience: token_audience,
            scope,
            details: request.authorization_details.clone(),
            jkt,
            grant: GrantType::AuthorizationCode,
            family: Some(record.family.clone()),
            refresh,
            auth_time: Some(data.auth_time),
            acr: data.acr.clone(),
            spends: None,
        })
    }

    pub(crate) async fn refresh_token(
        &self,
        client: &AuthenticatedClient,
        req: &TokenRequest<'_>,
    ) -> Result<(TokenResponse, Issued), TokenError> {
        let token = req.params.require("refresh_token")?;
        let handle = sha256_b64url(token);
        // Checks that need the token's data come first, so a refused request (another
        // client, a wider scope, a missing DPoP proof) does not use the token up.
        let record = match self.store().get_grant(&handle).await {
            Ok(r) if r.kind == GrantKind::RefreshToken => r,
            Ok(_) | Err(aims_store::StoreError::NotFound(_)) => {
                return Err(invalid_grant("the refresh token is invalid"));
            }
            Err(e) => return Err(OAuthError::server_error("refresh token", &e).into()),
        };
        if record.client_id != client.client.id() {
            return Err(invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        // Used, revoked or expired: no tokens are made for it; the use (a replay revokes
        // the family) tells which.
        if record.state != GrantState::Active || record.expires_at <= self.clock().now() {
            self.use_up(&handle, GrantKind::RefreshToken).await?;
            return Err(invalid_grant(
                "the refresh token is invalid, expired or revoked",
            ));
        }
        let data: RefreshData = serde_json::from_str(&record.data)
            .map_err(|e| OAuthError::server_error("refresh token", &e))?;
        // RFC 6749 §6: a narrower scope may be asked for, never a wider one.
        let original =
            Scope::parse(&data.scope).map_err(|e| OAuthError::server_error("stored scope", &e))?;
        let scope = match req.params.get("scope") {
            None => original,
            Some(s) => {
                let wanted = Scope::parse(s)
                    .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))?;
                if !original.contains_all(wanted.iter()) {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        "a refresh may not widen the scope",
                    )
                    .into());
                }
                wanted
            }
        };
        let token_audience = narrowed_audience(&data.resources, &req.params.get_all("resource"))?;
        let jkt = self.dpop_proof(req.dpop).await?;
        if let Some(bound) = &data.jkt
            && jkt.as_deref() != Some(bound.as_str())
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "this refresh token is bound to another DPoP key",
            )
            .into());
        }
        // RFC 9449 §5.2: a client registered for DPoP-bound tokens gets none without a
        // proof, on a refresh too.
        if client.client.requires_dpop() && jkt.is_none() {
            return Err(
                OAuthError::invalid_request("this client's tokens must be DPoP-bound").into(),
            );
        }
        // The user must still be active (not disabled, not deleted); the token is not used
        // up, so it works again if the user is enabled again.
        match crate::users::user_is_active(self.store(), &data.subject).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(invalid_grant(
                    "the user of this refresh token is disabled or no longer exists",
                ));
            }
            Err(e) => return Err(OAuthError::server_error("user lookup", &e).into()),
        }
        let next = RefreshData {
            scope: scope.iter().collect::<Vec<_>>().join(" "),
            ..data.clone()
        };
        self.issue(
            client,
            Grant {
                agent: client.token_client_id().to_owned(),
                subject: Some(data.subject.clone()),
                audience: token_audience,
                scope,
                details: data.authorization_details.clone(),
                jkt,
                grant: GrantType::RefreshToken,
                family: Some(record.family.clone()),
                refresh: Some(next),
                auth_time: Some(data.auth_time),
                acr: data.acr.clone(),
                // The one atomic use, with the storing of the successors: of two
                // concurrent presentations exactly one wins, the other is a reuse.
                spends: Some(Spent {
                    handle,
                    kind: GrantKind::RefreshToken,
                }),
            },
        )
        .await
    }

    /// A new refresh token of `family` and its record (stored by the caller, with what
    /// else the issuance stores).
    pub(crate) fn refresh_grant(
        &self,
        client: &AuthenticatedClient,
        family: &str,
        subject: Option<String>,
        data: &RefreshData,
        now: i64,
    ) -> Result<(String, NewGrant), TokenError> {
        let token = random_token().map_err(|e| OAuthError::server_error("random", &e))?;
        let json = serde_json::to_string(data)
            .map_err(|e| OAuthError::server_error("refresh token", &e))?;
        let record = NewGrant {
            handle: sha256_b64url(&token),
            kind: GrantKind::RefreshToken,
            client_id: client.client.id().to_owned(),
            subject,
            family: family.to_owned(),
            expires_at: now.saturating_add(client.client.refresh_token_lifetime()),
            created_at: now,
            data: json,
        };
        Ok((token, record))
    }

    /// Uses up a code or refresh token on its own (no tokens issued for it), with what
    /// that came to ([`Self::used_up`]): a request refused after its grant was read.
    async fn use_up(&self, handle: &str, kind: GrantKind) -> Result<(), TokenError> {
        let outcome = self
            .store()
            .consume_grant(handle, kind, self.clock().now())
            .await
            .map_err(|e| OAuthError::server_error(kind.as_str(), &e))?;
        self.used_up(outcome, kind).await
    }

    /// What using up a code or refresh token came to: `Ok` if this request used it. A
    /// second use (RFC 9700 §4.5 and §4.14: a replay, or the client racing itself)
    /// revokes the whole family, the first use's tokens included.
    pub(crate) async fn used_up(
        &self,
        outcome: ConsumeOutcome,
        kind: GrantKind,
    ) -> Result<(), TokenError> {
        let what = match kind {
            GrantKind::AuthorizationCode => "code",
            _ => "refresh token",
        };
        match outcome {
            ConsumeOutcome::Consumed(_) => Ok(()),
            ConsumeOutcome::Reused(r) => {
                let revoked = self.store().revoke_family(&r.family).await;
                self.verified().revocations_changed();
                if let Err(e) = revoked {
                    tracing::error!(error = %e, "could not revoke the family of a reused {what}");
                }
                tracing::warn!(client_id = %r.client_id, "{what} reused; its family is revoked");
                Err(invalid_grant(&format!("the {what} was already used")))
            }
            _ => Err(invalid_grant(&format!(
                "the {what} is invalid, expired or revoked"
            ))),
        }
    }
}

fn invalid_grant(message: &str) -> TokenError {
    TokenError::from(OAuthError::new(ErrorCode::InvalidGrant, message))
}

/// A client seen through the scope and resource rules of the token endpoint.
fn fake_authenticated(client: &Client) -> AuthenticatedClient {
    AuthenticatedClient {
        client: std::sync::Arc::new(client.clone()),
        method: client.auth_method(),
        spiffe_id: None,
        cert_thumbprint: None,
    }
}

/// RFC 7636 §4.2: a S256 challenge is the base64url SHA-256 of the verifier: 43
/// characters.
fn is_pkce_challenge(c: &str) -> bool {
    c.len() == 43 && aims_crypto::b64::decode_url(c).is_some_and(|d| d.len() == 32)
}

/// RFC 7636 §4.1 verifier syntax, then the S256 comparison in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let syntax = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    syntax && aims_crypto::ct_eq(sha256_b64url(verifier).as_bytes(), challenge.as_bytes())
}

fn append_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = String::from(uri);
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    out.push(if uri.contains('?') { '&' } else { '?' });
    out.push_str(&ser.finish());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(is_pkce_challenge(challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
        // Too short, bad characters.
        assert!(!pkce_matches("short", challenge));
        assert!(!pkce_matches(&"a".repeat(129), challenge));
        assert!(!pkce_matches(&format!("{verifier}!"), challenge));
    }

    #[test]
    fn query_appending_keeps_existing_parameters() {
        assert_eq!(
            append_query(
                "https://c.example/cb?x=1",
                &[("code", "a b"), ("state", "s")]
            ),
            "https://c.example/cb?x=1&code=a+b&state=s"
        );
        assert_eq!(
            append_query("https://c.example/cb", &[("code", "c")]),
            "https://c.example/cb?code=c"
        );
    }
}
