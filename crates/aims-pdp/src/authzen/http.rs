//! The AuthZEN 1.0 HTTP transport: an axum [`Router`] over a [`Pdp`].
//!
//! | Route | Handler |
//! |---|---|
//! | `POST /access/v1/evaluation` | one decision; a deny is `200 {"decision": false}` |
//! | `POST /access/v1/evaluations` | boxcar with defaults and `options.evaluations_semantic` |
//! | `POST /access/v1/search/{subject,resource,action}` | search with `page.token` / `page.limit` |
//! | `GET /.well-known/authzen-configuration` | metadata (no caller authentication) |
//!
//! Every response carries `X-Request-ID`: the caller's if sent, else a generated one;
//! the same value is the audit correlation id. Errors are `400`/`401`/`403`/`500` with a
//! plain-text body.
//!
//! **Caller authentication** is a hook: [`AuthzenConfig::authorizer`] is called with the
//! request head (method, URI, headers and extensions, where a TLS acceptor puts the
//! peer's SVID and a token layer its validated claims) before every `/access/v1/*`
//! handler; `None` (the default, for tests) admits everyone. A server that needs
//! asynchronous checks can instead wrap the returned router in its own tower layer.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::wire::{
    DecisionBody, EvaluationBody, EvaluationsBody, EvaluationsResponse, Metadata, PageResponse,
    SearchBody, SearchResponse, Semantic,
};
use crate::engine::Pdp;
use crate::error::PdpError;
use crate::model::{Decision, SearchQuery};

/// Header carrying the correlation id.
pub const REQUEST_ID: &str = "x-request-id";

/// Why a caller is turned away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerRejection {
    /// No or invalid credentials: 401.
    Unauthenticated(String),
    /// Authenticated but not allowed to ask this PDP: 403.
    Forbidden(String),
}

/// Caller authentication/authorization hook (see the module documentation).
pub type CallerAuthorizer =
    Arc<dyn Fn(&http::request::Parts) -> Result<(), CallerRejection> + Send + Sync>;

/// Transport settings.
#[derive(Clone)]
pub struct AuthzenConfig {
    /// The PDP identifier, e.g. `https://pdp.example.com` (metadata and endpoint URLs
    /// are built from it; no trailing slash needed).
    pub base_url: String,
    /// Caller check for `/access/v1/*`; `None` admits everyone.
    pub authorizer: Option<CallerAuthorizer>,
    /// Largest accepted boxcar.
    pub max_evaluations: usize,
    /// Largest accepted request body, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Search page size when the request gives no `page.limit`.
    pub default_page_limit: usize,
    /// Largest search page size.
    pub max_page_limit: usize,
    /// Add `context.reason_admin.policies` (the determining policy ids) to decisions.
    pub expose_reasons: bool,
}

impl std::fmt::Debug for AuthzenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzenConfig")
            .field("base_url", &self.base_url)
            .field("authorizer", &self.authorizer.is_some())
            .field("max_evaluations", &self.max_evaluations)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("default_page_limit", &self.default_page_limit)
            .field("max_page_limit", &self.max_page_limit)
            .field("expose_reasons", &self.expose_reasons)
            .finish()
    }
}

impl AuthzenConfig {
    /// Defaults: no caller check, boxcars up to 1,000, bodies up to 1 MiB, pages of 50
    /// (at most 1,000).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            authorizer: None,
            max_evaluations: 1000,
            max_body_bytes: 1024 * 1024,
            default_page_limit: 50,
            max_page_limit: 1000,
            expose_reasons: false,
        }
    }
}

/// The correlation id of the request being served (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

#[derive(Debug, Clone)]
struct AppState {
    pdp: Arc<Pdp>,
    config: Arc<AuthzenConfig>,
}

/// The AuthZEN router over `pdp`.
pub fn router(pdp: Arc<Pdp>, config: AuthzenConfig) -> Router {
    let state = AppState {
        pdp,
        config: Arc::new(config),
    };
    let access = Router::new()
        .route("/access/v1/evaluation", post(evaluation))
        .route("/access/v1/evaluations", post(evaluations))
        .route("/access/v1/search/subject", post(search_subject))
        .route("/access/v1/search/resource", post(search_resource))
        .route("/access/v1/search/action", post(search_action))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.max_body_bytes,
        ));
    Router::new()
        .route("/.well-known/authzen-configuration", get(metadata))
        .merge(access)
        .with_state(state)
        .layer(middleware::from_fn(request_id))
}

// ---------------------------------------------------------------------------------------
// errors

/// Transport errors, each with its status.
#[derive(Debug)]
enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    Internal(String),
}

impl From<PdpError> for ApiError {
    fn from(e: PdpError) -> Self {
        match e {
            PdpError::MissingField(_)
            | PdpError::InvalidEntityType(_)
            | PdpError::InvalidProperty { .. }
            | PdpError::InvalidContext(_)
            | PdpError::InvalidRequest(_) => Self::BadRequest(e.to_string()),
            // Loading errors cannot happen while serving; if one does, it is ours.
            PdpError::Io { .. }
            | PdpError::SchemaFile(_)
            | PdpError::Schema { .. }
            | PdpError::PolicySyntax { .. }
            | PdpError::Template { .. }
            | PdpError::DuplicatePolicyId { .. }
            | PdpError::Validation { .. }
            | PdpError::Entities { .. } => Self::Internal(e.to_string()),
        }
    }
}

impl From<CallerRejection> for ApiError {
    fn from(r: CallerRejection) -> Self {
        match r {
            CallerRejection::Unauthenticated(m) => Self::Unauthorized(m),
            CallerRejection::Forbidden(m) => Self::Forbidden(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            Self::Internal(m) => {
                tracing::error!(target: "aims::pdp", error = %m, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                )
            }
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response()
    }
}

// ---------------------------------------------------------------------------------------
// middleware

fn generate_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let h = SEED.get_or_init(RandomState::new).hash_one(n);
    format!("aims-{h:016x}-{n:x}")
}

/// The audit correlation id for a request that sent `sent` as its `X-Request-ID`: that
/// value when it is 1 to 128 visible ASCII characters, else a fresh id.
fn correlation_id(sent: Option<&HeaderValue>) -> String {
    match sent {
        Some(v)
            if !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(u8::is_ascii_graphic) =>
        {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        }
        _ => generate_request_id(),
    }
}

async fn request_id(mut req: Request, next: Next) -> Response {
    // AuthZEN: a caller's `X-Request-ID` MUST be echoed as sent. It is also the audit
    // correlation id when it is a sane one (1 to 128 visible ASCII characters); else the
    // audit record gets a fresh id.
    let sent = req
        .headers()
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty())
        .cloned();
    let id = correlation_id(sent.as_ref());
    let echoed = sent.unwrap_or_else(|| {
        HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("aims"))
    });
    req.extensions_mut().insert(RequestId(id));
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(REQUEST_ID, echoed);
    resp
}

async fn authorize(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Some(check) = st.config.authorizer.as_ref() else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    match check(&parts) {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(r) => ApiError::from(r).into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// body parsing

fn json_value(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::BadRequest(
            "content type must be application/json".into(),
        ));
    }
    if body.is_empty() {
        return Err(ApiError::BadRequest("empty request body".into()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    Ok(value)
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::BadRequest(format!("invalid request: {e}")))
}

fn decision_body(d: &Decision, config: &AuthzenConfig) -> DecisionBody {
    DecisionBody {
        decision: d.decision,
        context: (config.expose_reasons && !d.reasons.is_empty())
            .then(|| json!({"reason_admin": {"policies": d.reasons}})),
    }
}

// ---------------------------------------------------------------------------------------
// handlers

async fn metadata(State(st): State<AppState>) -> Json<Metadata> {
    let base = st.config.base_url.trim_end_matches('/').to_owned();
    Json(Metadata {
        access_evaluation_endpoint: format!("{base}/access/v1/evaluation"),
        access_evaluations_endpoint: format!("{base}/access/v1/evaluations"),
        search_subject_endpoint: format!("{base}/access/v1/search/subject"),
        search_resource_endpoint: format!("{base}/access/v1/search/resource"),
        search_action_endpoint: format!("{base}/access/v1/search/action"),
        policy_decision_point: base,
    })
}

async fn evaluation(
    State(st): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DecisionBody>, ApiError> {
    let body: EvaluationBody = typed(json_value(&headers, &body)?)?;
    let decision = st.pdp.evaluate(&body.to_request()?, &rid.0)?;
    Ok(Json(decision_body(&decision, &st.config)))
}

fn too_many_evaluations(max: usize) -> ApiError {
    ApiError::BadRequest(format!("at most {max} evaluations per request"))
}

async fn evaluations(
    State(st): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let value = json_value(&headers, &body)?;
    // Counted before the items are parsed into requests (each costs far more memory
    // than its JSON).
    let count = value
        .get("evaluations")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if count > st.config.max_evaluations {
        return Err(too_many_evaluations(st.config.max_evaluations));
    }
    let body: EvaluationsBody = typed(value)?;
    let items = match body.evaluations.as_deref() {
        None | Some([]) => {
            // Backwards compatible: one evaluation from the top-level members.
            let decision = st.pdp.evaluate(&body.single().to_request()?, &rid.0)?;
            return Ok(Json(decision_body(&decision, &st.config)).into_response());
        }
        Some(items) => items,
    };
    if items.len() > st.config.max_evaluations {
        return Err(too_many_evaluations(st.config.max_evaluations));
    }
    let semantic = body
        .options
        .as_ref()
        .and_then(|o| o.evaluations_semantic)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let result = body
            .item(item)
            .to_request()
            .and_then(|r| st.pdp.evaluate(&r, &rid.0));
        let answer = match &result {
            Ok(d) => decision_body(d, &st.config),
            Err(e) => DecisionBody {
                decision: false,
                context: Some(json!({"error": {"status": 400, "message": e.to_string()}})),
            },
        };
        let permit = answer.decision;
        out.push(answer);
        match semantic {
            Semantic::DenyOnFirstDeny if !permit => break,
            Semantic::PermitOnFirstPermit if permit => break,
            _ => {}
        }
    }
    Ok(Json(EvaluationsResponse { evaluations: out }).into_response())
}

#[derive(Clone, Copy)]
enum SearchKind {
    Subject,
    Resource,
    Action,
}

async fn search_subject(
    st: State<AppState>,
    rid: Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SearchResponse>, ApiError> {
    search(st, rid, headers, body, SearchKind::Subject)
}

async fn search_resource(
    st: State<AppState>,
    rid: Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SearchResponse>, ApiError> {
    search(st, rid, headers, body, SearchKind::Resource)
}

async fn search_action(
    st: State<AppState>,
    rid: Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SearchResponse>, ApiError> {
    search(st, rid, headers, body, SearchKind::Action)
}

fn fingerprint(raw: &Value) -> u64 {
    // Deterministic (fixed-key SipHash), so tokens survive a restart.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    SearchBody::fingerprint_source(raw).hash(&mut h);
    h.finish()
}

fn encode_token(start: usize, fp: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{start}.{fp:016x}"))
}

fn decode_token(token: &str, fp: u64) -> Result<usize, ApiError> {
    let bad = || ApiError::BadRequest("invalid page token".into());
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (start, token_fp) = text.split_once('.').ok_or_else(bad)?;
    if token_fp != format!("{fp:016x}") {
        return Err(ApiError::BadRequest(
            "page token does not belong to this request (all members but `page` must stay the same)"
                .into(),
        ));
    }
    start.parse().map_err(|_| bad())
}

fn search(
    State(st): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
    kind: SearchKind,
) -> Result<Json<SearchResponse>, ApiError> {
    let raw = json_value(&headers, &body)?;
    let fp = fingerprint(&raw);
    let body: SearchBody = typed(raw)?;
    let missing = |f| ApiError::from(PdpError::MissingField(f));
    let context = body.context.clone().unwrap_or_default();
    let query = match kind {
        SearchKind::Subject => SearchQuery::Subject {
            subject_type: body
                .subject
                .as_ref()
                .ok_or_else(|| missing("subject"))?
                .type_only("subject.type")?,
            action: body
                .action
                .as_ref()
                .ok_or_else(|| missing("action"))?
                .complete()?,
            resource: body
                .resource
                .as_ref()
                .ok_or_else(|| missing("resource"))?
                .complete("resource")?,
            context,
        },
        SearchKind::Resource => SearchQuery::Resource {
            subject: body
                .subject
                .as_ref()
                .ok_or_else(|| missing("subject"))?
                .complete("subject")?,
            action: body
                .action
                .as_ref()
                .ok_or_else(|| missing("action"))?
                .complete()?,
            resource_type: body
                .resource
                .as_ref()
                .ok_or_else(|| missing("resource"))?
                .type_only("resource.type")?,
            context,
        },
        SearchKind::Action => SearchQuery::Action {
            subject: body
                .subject
                .as_ref()
                .ok_or_else(|| missing("subject"))?
                .complete("subject")?,
            resource: body
                .resource
                .as_ref()
                .ok_or_else(|| missing("resource"))?
                .complete("resource")?,
            context,
        },
    };
    let page = body.page.unwrap_or_default();
    let start = match page.token.as_deref() {
        None | Some("") => 0,
        Some(t) => decode_token(t, fp)?,
    };
    let limit = page
        .limit
        .map_or(st.config.default_page_limit, |l| l as usize)
        .clamp(1, st.config.max_page_limit.max(1));
    let result = st.pdp.search(&query, start, limit, &rid.0)?;
    let results: Vec<Value> = result
        .results
        .into_iter()
        .map(|id| match &query {
            SearchQuery::Subject { subject_type, .. } => json!({"type": subject_type, "id": id}),
            SearchQuery::Resource { resource_type, .. } => json!({"type": resource_type, "id": id}),
            SearchQuery::Action { .. } => json!({"name": id}),
        })
        .collect();
    Ok(Json(SearchResponse {
        page: PageResponse {
            next_token: result.next.map(|n| encode_token(n, fp)).unwrap_or_default(),
            count: results.len(),
        },
        results,
    }))
}

#[cfg(test)]
mod correlation_tests {
    use super::*;

    #[test]
    fn only_sane_request_ids_become_correlation_ids() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(correlation_id(Some(&v("bfe9eb29-ab87"))), "bfe9eb29-ab87");
        for insane in ["a b".to_owned(), "x".repeat(129), "caf\u{e9}".to_owned()] {
            let value = HeaderValue::from_bytes(insane.as_bytes()).unwrap();
            let id = correlation_id(Some(&value));
            assert!(id.starts_with("aims-"), "{insane:?} -> {id}");
        }
        assert!(correlation_id(None).starts_with("aims-"));
    }
}
