//! The authorization endpoint's front channel: `/oauth/authorize` (GET and POST), the
//! login page and the consent page (RFC 6749 §4.1, RFC 9126 §4, RFC 9207, RFC 9470).
//!
//! - **What the user approves is kept here, not in the page.** A validated request is
//!   stored server-side under a random id ([`Pending`]), bound to the browser session
//!   that started it; the forms carry only that id and the CSRF token, so no hidden field
//!   can change the client, redirect URI, scope, resources or PKCE challenge.
//! - **Sessions** are named by an opaque random cookie (`__Host-aims-session`, `Secure`,
//!   when the issuer is https; `aims-session` on a loopback http issuer), `HttpOnly`,
//!   `SameSite=Lax`, `Path=/`. The session id changes at login (no fixation).
//! - **Where the state lives.** Sessions and pending requests are records in the store
//!   (`oauth_browser_state`), keyed by a SHA-256 of the cookie or request id, so every node
//!   sharing the database serves every step of a login (no sticky sessions), and a login
//!   in progress survives a restart. Moving a pending request to the session made at login and
//!   taking it at consent are single statements, so a form sent twice (or to two nodes at
//!   once) is decided once. A session without a user lives only as long as its newest
//!   pending request ([`PENDING_LIFETIME`]); the store's sweep deletes expired records.
//! - **CSRF**: each session has a random token; every POST must echo it (compared in
//!   constant time) or gets 403 and nothing happens.
//! - **Pages** are askama templates (HTML auto-escaped), sent with `Cache-Control:
//!   no-store`, `X-Frame-Options: DENY` and a CSP with `frame-ancestors 'none'`.
//! - **Authentication**: the built-in password login ([`UserStore::authenticate`], one
//!   generic message for an unknown user, a wrong password or a disabled account)
//!   reaches one authentication context class, [`PASSWORD_ACR`]. A request whose
//!   `acr_values` do not list it is answered `access_denied` before any login (the
//!   server cannot meet it). `max_age` and `prompt=login` force a new login when the
//!   session's is older (or always, for `prompt=login`); `prompt=none` is answered
//!   `login_required` or, since consent is asked every time, `consent_required`.

use std::net::SocketAddr;
use std::sync::Arc;

use aims_crypto::{ct_eq, random_token, sha256_b64url};
use aims_oauth::authn::ClientDirectory as _;
use aims_oauth::budget::{AddressBudget, AddressKey};
use aims_oauth::client::Client;
use aims_oauth::code::{Approval, AuthorizationRequest, AuthorizeError};
use aims_oauth::throttle::LoginThrottle;
use aims_oauth::users::{UserError, UserStore};
use aims_oauth::{ErrorCode, OAuthError, Params};
use aims_store::{BrowserStateKind, Store};
use askama::Template;
use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{MAX_BODY_BYTES, OAuthServer, is_form};

/// The login form's target.
pub const LOGIN: &str = "/oauth/login";
/// The consent form's target.
pub const CONSENT: &str = "/oauth/consent";
/// The sign-out form's target.
pub const LOGOUT: &str = "/oauth/logout";
/// The authentication context class of the built-in password login.
pub const PASSWORD_ACR: &str = "urn:aims:acr:password";
/// How long a logged-in browser session lasts (seconds).
pub const SESSION_LIFETIME: i64 = 3_600;
/// How long a validated authorization request waits for login and consent (seconds),
/// and how long a session without a user lasts.
pub const PENDING_LIFETIME: i64 = 600;

const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// A logged-in user of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoggedIn {
    username: String,
    auth_time: i64,
    /// The stamp of the password the user logged in with ([`aims_oauth::users::User`]):
    /// a new password ends the session. (Sessions stored before it had none: they end.)
    #[serde(default)]
    credential: String,
}

/// A browser session, as stored (its id is the cookie; the store keys it by a hash).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Session {
    csrf: String,
    user: Option<LoggedIn>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the CSRF token.
        f.debug_struct("Session")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// An authorization request waiting for login and consent, as stored (bound to the
/// session that started it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    request: AuthorizationRequest,
    /// A login must happen for this request (no user, `prompt=login`, `max_age` passed).
    needs_login: bool,
    /// The user logged in for this very request (so `max_age` is met by that login).
    logged_in_here: bool,
}

/// The front channel: the login throttle and the store holding sessions and pending
/// requests.
pub(super) struct Pages {
    users: UserStore,
    throttle: LoginThrottle,
    budgets: AddressBudgets,
    store: Arc<Store>,
    cookie: &'static str,
    secure: bool,
    require_par: bool,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

/// Per-client-address budgets of the front channel (`None`: not limited).
#[derive(Debug)]
pub(super) struct AddressBudgets {
    /// Password checks.
    pub(super) logins: Option<AddressBudget>,
    /// Authorization requests that store state.
    pub(super) requests: Option<AddressBudget>,
}

/// Takes one use of `budget` for the request's client address: the account charged
/// (`None` when nothing was), or `Err(seconds)` to wait. A request without an address
/// (not from a TCP listener) is not limited.
fn take_budget(
    budget: Option<&AddressBudget>,
    peer: Option<SocketAddr>,
    now: i64,
) -> Result<Option<AddressKey>, i64> {
    match (budget, peer) {
        (Some(b), Some(p)) => b.charge(p.ip(), now).map(Some),
        _ => Ok(None),
    }
}

/// The store's key of a session or request id (the store never sees the id).
fn handle(id: &str) -> String {
    sha256_b64url(id)
}

/// Logs a store failure of the front channel; the user sees the generic error page.
fn store_failed(what: &str, e: &impl std::fmt::Display) -> Page {
    tracing::error!(target: "aims::oauth", error = %e, "{what}: store failed");
    Page::internal()
}

fn to_json(value: &impl Serialize) -> Result<String, Page> {
    serde_json::to_string(value).map_err(|e| store_failed("browser state", &e))
}

impl Pages {
    pub(super) fn new(
        users: UserStore,
        throttle: LoginThrottle,
        budgets: AddressBudgets,
        store: Arc<Store>,
        https: bool,
        require_par: bool,
    ) -> Self {
        Self {
            users,
            throttle,
            budgets,
            store,
            cookie: if https {
                "__Host-aims-session"
            } else {
                "aims-session"
            },
            secure: https,
            require_par,
        }
    }

    fn session_id(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == self.cookie)
            .map(|(_, v)| v.to_owned())
    }

    /// The live session named by the request's cookie.
    async fn session(
        &self,
        headers: &HeaderMap,
        now: i64,
    ) -> Result<Option<(String, Session)>, Page> {
        let Some(id) = self.session_id(headers) else {
            return Ok(None);
        };
        let record = self
            .store
            .get_browser_state(BrowserStateKind::Session, &handle(&id), now)
            .await
            .map_err(|e| store_failed("session", &e))?;
        let Some(record) = record else {
            return Ok(None);
        };
        let session =
            serde_json::from_str(&record.data).map_err(|e| store_failed("session", &e))?;
        Ok(Some((id, session)))
    }

    /// A new session (optionally already logged in); its id and lifetime.
    async fn new_session(
        &self,
        user: Option<LoggedIn>,
        now: i64,
    ) -> Result<(String, Session, i64), Page> {
        let id = random_token().map_err(|_| Page::internal())?;
        let csrf = random_token().map_err(|_| Page::internal())?;
        let lifetime = if user.is_some() {
            SESSION_LIFETIME
        } else {
            PENDING_LIFETIME
        };
        let session = Session { csrf, user };
        self.store
            .put_browser_state(
                BrowserStateKind::Session,
                &handle(&id),
                None,
                &to_json(&session)?,
                now.saturating_add(lifetime),
                now,
            )
            .await
            .map_err(|e| store_failed("session", &e))?;
        Ok((id, session, lifetime))
    }

    /// A session without a user lives as long as its newest pending request: moves its
    /// expiry to [`PENDING_LIFETIME`] from `now` (unless it changed meanwhile).
    async fn extend_anonymous(&self, id: &str, session: &Session, now: i64) -> Result<(), Page> {
        let data = to_json(session)?;
        self.store
            .replace_browser_state(
                BrowserStateKind::Session,
                &handle(id),
                &data,
                &data,
                now.saturating_add(PENDING_LIFETIME),
                now,
            )
            .await
            .map(drop)
            .map_err(|e| store_failed("session", &e))
    }

    /// `session` without its user when that user was disabled or deleted, or got a new
    /// password, since the login.
    async fn active(&self, mut session: Session) -> Result<Session, Page> {
        if let Some(u) = &session.user {
            let holds = self
                .users
                .session_holds(&u.username, &u.credential)
                .await
                .map_err(|e| store_failed("user lookup", &e))?;
            if !holds {
                tracing::info!(target: "aims::oauth", user = %u.username, "session ignored: its user was disabled or deleted, or has a new password");
                session.user = None;
            }
        }
        Ok(session)
    }

    async fn end_session(&self, id: &str) -> Result<(), Page> {
        self.store
            .delete_browser_state(BrowserStateKind::Session, &handle(id))
            .await
            .map(drop)
            .map_err(|e| store_failed("session", &e))
    }

    /// A `Set-Cookie` that removes the session cookie.
    fn clear_cookie(&self) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
            self.cookie
        ))
        .ok()
    }

    fn set_cookie(&self, id: &str, lifetime: i64) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={lifetime}{secure}",
            self.cookie
        ))
        .ok()
    }

    /// Stores a pending request of session `session` under `id` (a new one if `None`).
    async fn put_pending(
        &self,
        id: Option<&str>,
        session: &str,
        pending: &Pending,
        now: i64,
    ) -> Result<String, Page> {
        let id = match id {
            Some(id) => id.to_owned(),
            None => random_token().map_err(|_| Page::internal())?,
        };
        self.store
            .put_browser_state(
                BrowserStateKind::PendingRequest,
                &handle(&id),
                Some(&handle(session)),
                &to_json(pending)?,
                now.saturating_add(PENDING_LIFETIME),
                now,
            )
            .await
            .map_err(|e| store_failed("authorization request", &e))?;
        Ok(id)
    }

    /// The live pending request `id` of session `session`.
    async fn get_pending(
        &self,
        id: &str,
        session: &str,
        now: i64,
    ) -> Result<Option<Pending>, Page> {
        if id.is_empty() {
            return Ok(None);
        }
        let record = self
            .store
            .get_browser_state(BrowserStateKind::PendingRequest, &handle(id), now)
            .await
            .map_err(|e| store_failed("authorization request", &e))?;
        match record {
            Some(r) if r.binding.as_deref() == Some(handle(session).as_str()) => {
                serde_json::from_str(&r.data)
                    .map(Some)
                    .map_err(|e| store_failed("authorization request", &e))
            }
            _ => Ok(None),
        }
    }

    /// Moves pending request `id` from session `from` to session `to`, as `pending`:
    /// `false` if it is no longer a live request of `from`.
    async fn move_pending(
        &self,
        id: &str,
        from: &str,
        to: &str,
        pending: &Pending,
        now: i64,
    ) -> Result<bool, Page> {
        self.store
            .rebind_browser_state(
                BrowserStateKind::PendingRequest,
                &handle(id),
                &handle(from),
                &handle(to),
                &to_json(pending)?,
                now,
            )
            .await
            .map_err(|e| store_failed("authorization request", &e))
    }

    /// Takes pending request `id` of session `session` out of the store (one decision per
    /// request).
    async fn take_pending(
        &self,
        id: &str,
        session: &str,
        now: i64,
    ) -> Result<Option<Pending>, Page> {
        if id.is_empty() {
            return Ok(None);
        }
        let data = self
            .store
            .take_browser_state(
                BrowserStateKind::PendingRequest,
                &handle(id),
                &handle(session),
                now,
            )
            .await
            .map_err(|e| store_failed("authorization request", &e))?;
        data.map(|d| serde_json::from_str(&d))
            .transpose()
            .map_err(|e| store_failed("authorization request", &e))
    }
}

/// An HTML answer of the front channel.
#[derive(Debug)]
struct Page {
    status: StatusCode,
    html: String,
    cookie: Option<HeaderValue>,
}

#[derive(Template)]
#[template(path = "oauth/error.html")]
struct ErrorTemplate<'a> {
    message: &'a str,
    hint: &'a str,
}

#[derive(Template)]
#[template(path = "oauth/login.html")]
struct LoginTemplate<'a> {
    action: &'a str,
    request: &'a str,
    csrf: &'a str,
    client: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

/// One authorization details entry as shown: its type and its members.
#[derive(Debug)]
struct DetailView {
    type_: String,
    fields: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "oauth/consent.html")]
struct ConsentTemplate<'a> {
    action: &'a str,
    logout_action: &'a str,
    request: &'a str,
    csrf: &'a str,
    user: &'a str,
    client_id: &'a str,
    client_name: Option<&'a str>,
    spiffe_id: Option<&'a str>,
    redirect_host: &'a str,
    scopes: Vec<&'a str>,
    details: Vec<DetailView>,
    resources: &'a [String],
}

/// The one message of every failed login (no user enumeration).
pub const LOGIN_FAILED: &str = "Wrong user name or password.";

/// The message while a user name is locked after failed logins (the same for names that
/// do not exist).
pub const LOGIN_LOCKED: &str =
    "Too many failed logins for this user name. Wait a few minutes, then try again.";

/// The message when too many logins are being checked at once.
pub const LOGIN_BUSY: &str = "The server is busy checking other logins. Try again in a moment.";

/// The message when the client address has used its password checks.
pub const LOGIN_ADDRESS_BUDGET: &str =
    "Too many logins have been tried from your network. Wait a few minutes, then try again.";

const START_AGAIN: &str = "Go back to the application and start again.";

impl Page {
    fn render(status: StatusCode, t: &impl Template) -> Self {
        match t.render() {
            Ok(html) => Self {
                status,
                html,
                cookie: None,
            },
            Err(e) => {
                tracing::error!(error = %e, "page template failed");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    html: "internal error".to_owned(),
                    cookie: None,
                }
            }
        }
    }

    fn error(status: StatusCode, message: &str, hint: &str) -> Self {
        Self::render(status, &ErrorTemplate { message, hint })
    }

    fn internal() -> Self {
        Self::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server failed (its log has the cause).",
            START_AGAIN,
        )
    }

    fn expired() -> Self {
        Self::error(
            StatusCode::BAD_REQUEST,
            "This authorization request is unknown, expired or belongs to another browser session.",
            START_AGAIN,
        )
    }

    fn forbidden() -> Self {
        Self::error(
            StatusCode::FORBIDDEN,
            "The form was not sent from this server's page (missing or wrong CSRF token).",
            START_AGAIN,
        )
    }

    fn with_cookie(mut self, cookie: Option<HeaderValue>) -> Self {
        self.cookie = cookie;
        self
    }
}

fn page_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut h = page_headers();
        if let Some(c) = self.cookie {
            h.insert(header::SET_COOKIE, c);
        }
        (self.status, h, self.html).into_response()
    }
}

/// 303 to `location` (the client's redirect URI with a code or an error).
fn redirect(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut h = page_headers();
    match HeaderValue::from_str(location) {
        Ok(v) => {
            h.insert(header::LOCATION, v);
        }
        Err(_) => return Page::internal().into_response(),
    }
    if let Some(c) = cookie {
        h.insert(header::SET_COOKIE, c);
    }
    (StatusCode::SEE_OTHER, h).into_response()
}

impl OAuthServer {
    /// The client of a stored request: `None` if it was deleted meanwhile.
    async fn pending_client(&self, p: &Pending) -> Result<Option<Arc<Client>>, Page> {
        self.service
            .clients()
            .get(&p.request.client_id)
            .await
            .map_err(|e| store_failed("client", &e))
    }

    fn error_to_client(&self, request: &AuthorizationRequest, error: &OAuthError) -> Response {
        let url =
            self.service
                .error_redirect(&request.redirect_uri, request.state.as_deref(), error);
        redirect(&url, None)
    }

    fn login_page(
        &self,
        pending_id: &str,
        csrf: &str,
        client: &Client,
        error: Option<&str>,
    ) -> Page {
        let action = self.issuer().endpoint(LOGIN);
        let client = client
            .metadata()
            .client_name
            .as_deref()
            .unwrap_or(client.id());
        Page::render(
            StatusCode::OK,
            &LoginTemplate {
                action: &action,
                request: pending_id,
                csrf,
                client,
                username: "",
                error,
            },
        )
    }

    fn consent_page(
        &self,
        pending_id: &str,
        csrf: &str,
        user: &str,
        client: &Client,
        p: &Pending,
    ) -> Page {
        let action = self.issuer().endpoint(CONSENT);
        let logout_action = self.issuer().endpoint(LOGOUT);
        let meta = client.metadata();
        let redirect_host = redirect_origin(&p.request.redirect_uri);
        let details = p
            .request
            .authorization_details
            .iter()
            .flatten()
            .map(|d| {
                let mut fields = Vec::new();
                let list = |v: &Option<Vec<String>>| v.as_ref().map(|v| v.join(", "));
                for (name, value) in [
                    ("actions", list(&d.actions)),
                    ("locations", list(&d.locations)),
                    ("datatypes", list(&d.datatypes)),
                    ("identifier", d.identifier.clone()),
                    ("privileges", list(&d.privileges)),
                ] {
                    if let Some(v) = value {
                        fields.push((name.to_owned(), v));
                    }
                }
                for (k, v) in &d.extra {
                    let shown = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    fields.push((k.clone(), shown));
                }
                DetailView {
                    type_: d.type_.clone(),
                    fields,
                }
            })
            .collect();
        Page::render(
            StatusCode::OK,
            &ConsentTemplate {
                action: &action,
                logout_action: &logout_action,
                request: pending_id,
                csrf,
                user,
                client_id: client.id(),
                client_name: meta.client_name.as_deref(),
                spiffe_id: meta.spiffe_id.as_deref(),
                redirect_host: &redirect_host,
                scopes: p
                    .request
                    .scope
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .collect(),
                details,
                resources: &p.request.resources,
            },
        )
    }
}

/// `scheme://host[:port]` of a redirect URI, for the consent page.
fn redirect_origin(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if scheme.is_empty() {
        uri.to_owned()
    } else {
        format!("{scheme}://{host}")
    }
}

/// Reads a form body (login, consent, POST authorize).
async fn read_form(headers: &HeaderMap, body: Body) -> Result<Params, OAuthError> {
    if !is_form(headers) {
        return Err(OAuthError::invalid_request(
            "send the form as application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| OAuthError::invalid_request("request body unreadable or too large"))?;
    Params::parse(&bytes)
}

/// `GET|POST /oauth/authorize`.
pub(super) async fn authorize(
    State(s): State<Arc<OAuthServer>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = if method == Method::POST {
        read_form(&headers, body).await
    } else {
        Params::parse(uri.query().unwrap_or("").as_bytes())
    };
    let params = match params {
        Ok(p) => p,
        Err(e) => return bad_request(&e),
    };
    // Each request may store a pending request (and a session for a new browser). Taken
    // before the request is looked at, so that a refusal uses up nothing (a pushed
    // request's `request_uri` stays usable).
    if let Err(wait) = take_budget(
        s.pages.budgets.requests.as_ref(),
        peer.map(|p| p.0.0),
        s.clock.now(),
    ) {
        tracing::warn!(target: "aims::oauth", retry_after = wait, "authorization request refused: too many from this address");
        return too_many(
            wait,
            "Too many sign-in requests have come from your network. Wait a few minutes and try again.",
        );
    }
    let (client, request) = match s.service.authorization_request(&params).await {
        Ok(x) => x,
        Err(AuthorizeError::NoRedirect(e)) => return bad_request(&e),
        Err(AuthorizeError::Redirect {
            error,
            redirect_uri,
            state,
        }) => {
            let url = s
                .service
                .error_redirect(&redirect_uri, state.as_deref(), &error);
            return redirect(&url, None);
        }
    };
    if s.pages.require_par && params.get("request_uri").is_none() {
        return s.error_to_client(
            &request,
            &OAuthError::invalid_request(
                "this server accepts authorization requests only through PAR (RFC 9126)",
            ),
        );
    }
    if !request.acr_values.is_empty() && !request.acr_values.iter().any(|a| a == PASSWORD_ACR) {
        return s.error_to_client(
            &request,
            &OAuthError::new(
                ErrorCode::AccessDenied,
                format!(
                    "none of the requested acr_values can be met: this server authenticates users with {PASSWORD_ACR}"
                ),
            ),
        );
    }
    let now = s.clock.now();
    let (session_id, session, cookie) = match s.pages.session(&headers, now).await {
        Ok(Some((id, session))) if session.user.is_none() => {
            if let Err(p) = s.pages.extend_anonymous(&id, &session, now).await {
                return p.into_response();
            }
            let c = s.pages.set_cookie(&id, PENDING_LIFETIME);
            (id, session, c)
        }
        Ok(Some((id, session))) => (id, session, None),
        Ok(None) => match s.pages.new_session(None, now).await {
            Ok((id, session, lifetime)) => {
                let c = s.pages.set_cookie(&id, lifetime);
                (id, session, c)
            }
            Err(p) => return p.into_response(),
        },
        Err(p) => return p.into_response(),
    };
    // A user disabled or deleted since the login is logged in no more.
    let session = match s.pages.active(session).await {
        Ok(session) => session,
        Err(p) => return p.into_response(),
    };
    let prompt = |v: &str| request.prompt.iter().any(|p| p == v);
    let needs_login = match &session.user {
        None => true,
        Some(u) => {
            prompt("login")
                || request
                    .max_age
                    .is_some_and(|m| login_too_old(m, u.auth_time, now))
        }
    };
    if prompt("none") {
        let code = if needs_login {
            ErrorCode::LoginRequired
        } else {
            ErrorCode::ConsentRequired
        };
        return s.error_to_client(
            &request,
            &OAuthError::new(code, "this server needs the user's interaction"),
        );
    }
    let pending = Pending {
        request,
        needs_login,
        logged_in_here: false,
    };
    let id = match s.pages.put_pending(None, &session_id, &pending, now).await {
        Ok(id) => id,
        Err(p) => return p.into_response(),
    };
    let page = match (&session.user, needs_login) {
        (Some(u), false) => s.consent_page(&id, &session.csrf, &u.username, &client, &pending),
        _ => s.login_page(&id, &session.csrf, &client, None),
    };
    page.with_cookie(cookie).into_response()
}

/// Whether a login at `auth_time` is too old for `max_age` at `now`. `max_age=0` asks
/// for a login for this very request, whatever the clock's resolution (as
/// `prompt=login`; OpenID Connect Core §3.1.2.1).
fn login_too_old(max_age: i64, auth_time: i64, now: i64) -> bool {
    max_age == 0 || now.saturating_sub(auth_time) > max_age
}

fn bad_request(e: &OAuthError) -> Response {
    Page::error(
        StatusCode::BAD_REQUEST,
        &format!("{}: {}", e.code.as_str(), e.description),
        "The application's request is invalid, or its identity or return address could not be confirmed, so it was not sent back to the application. Go back and start again.",
    )
    .into_response()
}

/// The session of a form POST whose CSRF token matches, and the form.
async fn checked_form(
    s: &OAuthServer,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, Session, Params), Response> {
    let params = read_form(headers, body)
        .await
        .map_err(|e| bad_request(&e))?;
    let now = s.clock.now();
    let Some((id, session)) = s
        .pages
        .session(headers, now)
        .await
        .map_err(|p| p.into_response())?
    else {
        return Err(Page::forbidden().into_response());
    };
    let sent = params.get("csrf").unwrap_or("");
    if !ct_eq(sent.as_bytes(), session.csrf.as_bytes()) {
        tracing::warn!(target: "aims::oauth", "form refused: CSRF token missing or wrong");
        return Err(Page::forbidden().into_response());
    }
    Ok((id, session, params))
}

/// 429 (RFC 6585 §4) with `Retry-After` and an error page saying `message`.
fn too_many(wait: i64, message: &str) -> Response {
    let page = Page::error(
        StatusCode::TOO_MANY_REQUESTS,
        message,
        "This limit protects the accounts on this server from automated attacks.",
    )
    .into_response();
    retry_later(StatusCode::TOO_MANY_REQUESTS, wait, page)
}

/// `page` with `status` and `Retry-After: wait` (at least one second).
fn retry_later(status: StatusCode, wait: i64, page: Response) -> Response {
    (
        status,
        [(header::RETRY_AFTER, wait.max(1).to_string())],
        page,
    )
        .into_response()
}

/// Why a login is refused before its password is checked: the login page again with
/// this status, message and `Retry-After`.
enum Refused {
    /// The user name is locked for this many seconds (429, RFC 6585 §4).
    Locked(i64),
    /// The client address has used its password checks; so many seconds to wait (429).
    AddressBudget(i64),
    /// Every password-hashing slot is busy (503).
    Busy,
}

fn refused(
    s: &OAuthServer,
    pending_id: &str,
    csrf: &str,
    client: &Client,
    why: Refused,
) -> Response {
    let (status, message, wait) = match why {
        Refused::Locked(wait) => (StatusCode::TOO_MANY_REQUESTS, LOGIN_LOCKED, wait),
        Refused::AddressBudget(wait) => (StatusCode::TOO_MANY_REQUESTS, LOGIN_ADDRESS_BUDGET, wait),
        Refused::Busy => (StatusCode::SERVICE_UNAVAILABLE, LOGIN_BUSY, 1),
    };
    let page = s
        .login_page(pending_id, csrf, client, Some(message))
        .into_response();
    retry_later(status, wait, page)
}

/// `POST /oauth/login`.
pub(super) async fn login(
    State(s): State<Arc<OAuthServer>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (session_id, session, params) = match checked_form(&s, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = s.clock.now();
    let pending_id = params.get("request").unwrap_or("");
    let pending = match s.pages.get_pending(pending_id, &session_id, now).await {
        Ok(Some(p)) => p,
        Ok(None) => return Page::expired().into_response(),
        Err(p) => return p.into_response(),
    };
    let client = match s.pending_client(&pending).await {
        Ok(Some(c)) => c,
        Ok(None) => return Page::expired().into_response(),
        Err(p) => return p.into_response(),
    };
    let username = params.get("username").unwrap_or("");
    let password = params.get("password").unwrap_or("");
    // A hashing slot first: a login refused for load is not counted as a failure.
    let slot = match s.pages.users.slot().await {
        Ok(slot) => slot,
        Err(_) => {
            tracing::warn!(target: "aims::oauth", client_id = %client.id(), "login refused: every password-hashing slot is busy");
            return refused(&s, pending_id, &session.csrf, &client, Refused::Busy);
        }
    };
    // Then the address's budget (spraying one password over many names), then the
    // name's: both are counted before the password is checked, so that logins sent at
    // once cannot all slip past; a locked name gets no password check at all.
    let peer = peer.map(|p| p.0.0);
    let budget = s.pages.budgets.logins.as_ref();
    let charged = match take_budget(budget, peer, now) {
        Ok(charged) => charged,
        Err(wait) => {
            tracing::warn!(target: "aims::oauth", client_id = %client.id(), retry_after = wait, "login refused: too many password checks from this address");
            return refused(
                &s,
                pending_id,
                &session.csrf,
                &client,
                Refused::AddressBudget(wait),
            );
        }
    };
    let give_back = || {
        if let (Some(b), Some(k)) = (budget, charged) {
            b.give_back(k, now);
        }
    };
    let lock = match s.pages.throttle.attempt(username, now).await {
        Ok(Ok(lock)) => lock,
        Ok(Err(wait)) => {
            // No password is checked for a locked name: the address keeps its check.
            give_back();
            tracing::warn!(target: "aims::oauth", client_id = %client.id(), retry_after = wait, "login refused: user name locked after failed logins");
            return refused(
                &s,
                pending_id,
                &session.csrf,
                &client,
                Refused::Locked(wait),
            );
        }
        Err(e) => {
            give_back();
            return store_failed("login throttle", &e).into_response();
        }
    };
    let user = match s
        .pages
        .users
        .authenticate_in(slot, username, password)
        .await
    {
        Ok(u) => u,
        Err(UserError::Store(e)) => {
            tracing::error!(error = %e, "login: user store failed");
            return Page::internal().into_response();
        }
        Err(e) => {
            drop(e);
            if let Some(wait) = lock {
                tracing::warn!(target: "aims::oauth", client_id = %client.id(), lock_seconds = wait, "login failed; user name locked");
                return refused(
                    &s,
                    pending_id,
                    &session.csrf,
                    &client,
                    Refused::Locked(wait),
                );
            }
            tracing::info!(target: "aims::oauth", client_id = %client.id(), "login failed");
            return s
                .login_page(pending_id, &session.csrf, &client, Some(LOGIN_FAILED))
                .into_response();
        }
    };
    if let Err(e) = s.pages.throttle.succeeded(username).await {
        return store_failed("login throttle", &e).into_response();
    }
    give_back();
    // A new session id at login: a session fixed before login is worth nothing.
    let logged_in = LoggedIn {
        username: user.username.clone(),
        auth_time: now,
        credential: user.credential.clone(),
    };
    let (new_id, new_session, lifetime) = match s.pages.new_session(Some(logged_in), now).await {
        Ok(x) => x,
        Err(p) => return p.into_response(),
    };
    let pending = Pending {
        needs_login: false,
        logged_in_here: true,
        ..pending
    };
    // The request follows the user to the new session, once (a form sent twice, or to
    // two nodes at once, moves it once).
    let moved = s
        .pages
        .move_pending(pending_id, &session_id, &new_id, &pending, now)
        .await;
    let ended = match moved {
        Ok(true) => s.pages.end_session(&session_id).await,
        Ok(false) => s.pages.end_session(&new_id).await.and(Err(Page::expired())),
        Err(p) => Err(p),
    };
    if let Err(p) = ended {
        return p.into_response();
    }
    tracing::info!(target: "aims::oauth", user = %user.username, client_id = %client.id(), "user logged in");
    s.consent_page(
        pending_id,
        &new_session.csrf,
        &user.username,
        &client,
        &pending,
    )
    .with_cookie(s.pages.set_cookie(&new_id, lifetime))
    .into_response()
}

/// `POST /oauth/logout` ("Not you? Sign out" on the consent page): ends the session
/// (CSRF-checked). With the `request` of the page, that request moves to a new session
/// without a user and the login page is shown for it; without one, the cookie is removed.
pub(super) async fn logout(
    State(s): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (session_id, session, params) = match checked_form(&s, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = s.clock.now();
    let user = session.user.as_ref().map(|u| u.username.clone());
    let pending_id = params.get("request").unwrap_or("");
    let pending = if pending_id.is_empty() {
        None
    } else {
        match s.pages.get_pending(pending_id, &session_id, now).await {
            Ok(p) => p,
            Err(p) => return p.into_response(),
        }
    };
    let client = match &pending {
        Some(p) => match s.pending_client(p).await {
            Ok(c) => c,
            Err(p) => return p.into_response(),
        },
        None => None,
    };
    let next = match (pending, client) {
        (Some(p), Some(client)) => {
            let (new_id, new_session, lifetime) = match s.pages.new_session(None, now).await {
                Ok(x) => x,
                Err(p) => return p.into_response(),
            };
            let p = Pending {
                needs_login: true,
                logged_in_here: false,
                ..p
            };
            match s
                .pages
                .move_pending(pending_id, &session_id, &new_id, &p, now)
                .await
            {
                Ok(true) => Some((new_id, new_session, lifetime, client)),
                Ok(false) => {
                    if let Err(p) = s.pages.end_session(&new_id).await {
                        return p.into_response();
                    }
                    None
                }
                Err(p) => return p.into_response(),
            }
        }
        _ => None,
    };
    if let Err(p) = s.pages.end_session(&session_id).await {
        return p.into_response();
    }
    tracing::info!(target: "aims::oauth", user = user.as_deref().unwrap_or("-"), "signed out");
    match next {
        Some((new_id, new_session, lifetime, client)) => s
            .login_page(pending_id, &new_session.csrf, &client, None)
            .with_cookie(s.pages.set_cookie(&new_id, lifetime))
            .into_response(),
        None => Page::error(
            StatusCode::OK,
            "You are signed out.",
            "Close this window, or go back to the application.",
        )
        .with_cookie(s.pages.clear_cookie())
        .into_response(),
    }
}

/// `POST /oauth/consent`.
pub(super) async fn consent(
    State(s): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (session_id, session, params) = match checked_form(&s, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = s.clock.now();
    let pending_id = params.get("request").unwrap_or("");
    // Taken out: one decision per request.
    let pending = match s.pages.take_pending(pending_id, &session_id, now).await {
        Ok(Some(p)) => p,
        Ok(None) => return Page::expired().into_response(),
        Err(p) => return p.into_response(),
    };
    let client = match s.pending_client(&pending).await {
        Ok(Some(c)) => c,
        Ok(None) => return Page::expired().into_response(),
        Err(p) => return p.into_response(),
    };
    let session = match s.pages.active(session).await {
        Ok(session) => session,
        Err(p) => return p.into_response(),
    };
    let user = match (&session.user, pending.needs_login) {
        (Some(u), false) => u.clone(),
        _ => {
            return Page::error(
                StatusCode::BAD_REQUEST,
                "Sign in before approving this request.",
                START_AGAIN,
            )
            .into_response();
        }
    };
    // The consent page may have waited: an earlier login must still meet max_age now.
    if !pending.logged_in_here
        && pending
            .request
            .max_age
            .is_some_and(|m| login_too_old(m, user.auth_time, now))
    {
        let again = Pending {
            needs_login: true,
            ..pending
        };
        return match s
            .pages
            .put_pending(Some(pending_id), &session_id, &again, now)
            .await
        {
            Ok(_) => s
                .login_page(pending_id, &session.csrf, &client, None)
                .into_response(),
            Err(p) => p.into_response(),
        };
    }
    match params.get("decision") {
        Some("approve") => {
            let approval = Approval {
                subject: user.username.clone(),
                auth_time: user.auth_time,
                acr: Some(PASSWORD_ACR.to_owned()),
            };
            match s.service.issue_code(&pending.request, &approval).await {
                Ok(url) => {
                    tracing::info!(target: "aims::oauth", user = %user.username, client_id = %client.id(), "authorization code issued");
                    redirect(&url, None)
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not issue a code");
                    s.error_to_client(&pending.request, &e)
                }
            }
        }
        Some("deny") => {
            tracing::info!(target: "aims::oauth", user = %user.username, client_id = %client.id(), "authorization denied by the user");
            s.error_to_client(
                &pending.request,
                &OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
            )
        }
        _ => Page::error(
            StatusCode::BAD_REQUEST,
            "Choose Approve or Deny.",
            START_AGAIN,
        )
        .into_response(),
    }
}
