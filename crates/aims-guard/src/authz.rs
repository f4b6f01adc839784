//! Enforcement: after authentication, the guard asks a policy decision point whether the
//! agent may do this action on this resource (the PEP of OpenID AuthZEN 1.0).
//!
//! - **PDP.** Behind [`PolicyDecisionPoint`], so this crate's API carries no policy
//!   engine types: [`HttpPdp`] calls an AuthZEN `POST /access/v1/evaluation` endpoint
//!   (authenticated with the client's mTLS identity and/or an access token);
//!   `LocalPdp` (feature `pdp`) evaluates in process with `aims_pdp::Pdp`.
//! - **Request** ([`Enforcer::request`]): subject = the agent (type `Agent` by default,
//!   id = its workload identifier: the access token's `client_id`, the WIT's or SVID's
//!   `sub`); action = per route, a name or derived from the HTTP method
//!   ([`ActionSpec`]); resource = per route, fixed or derived from the path
//!   ([`ResourceSpec`]); context = `user` (the delegating user, the token `sub` when it
//!   is not the agent), `act` (the RFC 8693 actor chain as nested `{sub, act}`), `scope`
//!   (array), `authorization_details` and `authorization_detail_types` (the `type`s,
//!   for Cedar `contains` tests), `request` (`{method, path}`), `mechanism`, `risk`
//!   (`unknown` until risk signals exist). Absent items are left out.
//! - **Outcome.** Permit: the request goes on. Deny: 403 RFC 9457 problem
//!   `access-denied` with a fixed text (never policy text). PDP failure: 503
//!   `policy-unavailable`, fail closed. The audit event names the PDP's action and
//!   resource and the ids of the determining policies.
//! - **Cache** ([`DecisionCache`]): decisions (not failures) are kept for a short TTL
//!   (default 5 s), bounded, keyed by subject, action, resource and the SHA-256 of the
//!   whole request; [`Enforcer::invalidate_all`] and [`Enforcer::invalidate_subject`]
//!   are the hooks for revocation and risk signals.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aims_core::{Clock, SystemClock};
use http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::AuthenticatedAgent;

/// Default lifetime of a cached decision: 5 seconds.
pub const DEFAULT_DECISION_TTL: i64 = 5;
/// Default number of cached decisions.
pub const DEFAULT_DECISION_CACHE_ENTRIES: usize = 10_000;
/// Default subject type of the agent.
pub const DEFAULT_SUBJECT_TYPE: &str = "Agent";
/// Default timeout of a call to a remote PDP.
pub const DEFAULT_PDP_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest PDP response read.
const MAX_PDP_RESPONSE: usize = 64 * 1024;

/// An AuthZEN subject or resource: `{type, id, properties}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzEntity {
    /// The entity type (`type` on the wire).
    #[serde(rename = "type")]
    pub entity_type: String,
    /// The identifier.
    pub id: String,
    /// Properties (none are sent by the guard today).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

impl AuthzEntity {
    /// An entity without properties.
    pub fn new(entity_type: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            entity_type: entity_type.into(),
            id: id.into(),
            properties: Map::new(),
        }
    }

    /// `type:id`, as the audit event shows it.
    pub fn display(&self) -> String {
        format!("{}:{}", self.entity_type, self.id)
    }
}

/// An AuthZEN action: `{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzAction {
    /// The action name.
    pub name: String,
}

/// One AuthZEN access evaluation request, as sent to the PDP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzRequest {
    /// The agent.
    pub subject: AuthzEntity,
    /// The action.
    pub action: AuthzAction,
    /// The resource.
    pub resource: AuthzEntity,
    /// The context (see the module documentation).
    pub context: Map<String, Value>,
}

/// What the PDP decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzDecision {
    /// Permit (`true`) or deny.
    pub permit: bool,
    /// Ids of the policies that determined it (empty for a default deny, or when the
    /// PDP does not tell).
    pub policies: Vec<String>,
}

/// The PDP could not decide (unreachable, error status, malformed answer, rejected
/// request). The guard refuses the request (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy decision point unavailable: {0}")]
pub struct PdpUnavailable(pub String);

/// The future a [`PolicyDecisionPoint`] returns.
pub type DecisionFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AuthzDecision, PdpUnavailable>> + Send + 'a>>;

/// A policy decision point.
pub trait PolicyDecisionPoint: Send + Sync + fmt::Debug {
    /// Evaluates `request`; `correlation_id` goes to the PDP (`X-Request-ID`) and its
    /// logs.
    fn evaluate<'a>(
        &'a self,
        request: &'a AuthzRequest,
        correlation_id: &'a str,
    ) -> DecisionFuture<'a>;
}

// ---------------------------------------------------------------------------------------
// remote PDP

/// Returns the access token to present to the PDP (kept current by the caller), or
/// `None` to send none.
pub type PdpTokenSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// An AuthZEN PDP over HTTP: `POST {base}/access/v1/evaluation`.
///
/// Authentication to the PDP: the `reqwest::Client` given (build it with a client
/// certificate, e.g. an X509-SVID through `aims_pki::tls::client_config`, for mTLS)
/// and/or an access token from [`HttpPdp::bearer_token`]. The decision's
/// `context.reason_admin.policies` (AIMS PDP with reasons exposed) becomes
/// [`AuthzDecision::policies`].
#[derive(Clone)]
pub struct HttpPdp {
    endpoint: reqwest::Url,
    http: reqwest::Client,
    token: Option<PdpTokenSource>,
    timeout: Duration,
}

impl fmt::Debug for HttpPdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPdp")
            .field("endpoint", &self.endpoint.as_str())
            .field("token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpPdp {
    /// The PDP whose identifier (base URL) is `base_url`: `https`, or `http` to a
    /// loopback host.
    pub fn new(base_url: &str, http: reqwest::Client) -> Result<Self, crate::FetchError> {
        let base = crate::fetch::check_url(base_url)?;
        let endpoint = reqwest::Url::parse(&format!(
            "{}/access/v1/evaluation",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|_| crate::FetchError::InsecureUrl(base_url.to_owned()))?;
        Ok(Self {
            endpoint,
            http,
            token: None,
            timeout: DEFAULT_PDP_TIMEOUT,
        })
    }

    /// Presents `Authorization: Bearer <token>` from `source` on every call.
    pub fn bearer_token(mut self, source: PdpTokenSource) -> Self {
        self.token = Some(source);
        self
    }

    /// Per-call timeout (default [`DEFAULT_PDP_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn call(
        &self,
        request: &AuthzRequest,
        correlation_id: &str,
    ) -> Result<AuthzDecision, PdpUnavailable> {
        let body = serde_json::to_vec(request).map_err(|e| PdpUnavailable(e.to_string()))?;
        let mut req = self
            .http
            .post(self.endpoint.clone())
            .timeout(self.timeout)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .header(crate::REQUEST_ID_HEADER, correlation_id)
            .body(body);
        if let Some(token) = self.token.as_ref().and_then(|t| t()) {
            req = req.bearer_auth(token);
        }
        let bytes = crate::fetch::send_capped(req, &self.endpoint, MAX_PDP_RESPONSE)
            .await
            .map_err(|e| PdpUnavailable(e.to_string()))?;
        parse_decision(&bytes)
    }
}

/// `{"decision": bool, "context": {"reason_admin": {"policies": [...]}}}`.
fn parse_decision(bytes: &[u8]) -> Result<AuthzDecision, PdpUnavailable> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|_| PdpUnavailable("the decision is not JSON".into()))?;
    let permit = v
        .get("decision")
        .and_then(Value::as_bool)
        .ok_or_else(|| PdpUnavailable("the answer has no boolean `decision`".into()))?;
    let policies = v
        .pointer("/context/reason_admin/policies")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .take(64)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(AuthzDecision { permit, policies })
}

impl PolicyDecisionPoint for HttpPdp {
    fn evaluate<'a>(
        &'a self,
        request: &'a AuthzRequest,
        correlation_id: &'a str,
    ) -> DecisionFuture<'a> {
        Box::pin(self.call(request, correlation_id))
    }
}

// ---------------------------------------------------------------------------------------
// in-process PDP

/// The AIMS PDP (`aims_pdp::Pdp`) in process. Its own audit event is not emitted: the
/// guard's carries the decision and the policy ids.
#[cfg(feature = "pdp")]
#[derive(Debug, Clone)]
pub struct LocalPdp(pub Arc<aims_pdp::Pdp>);

#[cfg(feature = "pdp")]
impl PolicyDecisionPoint for LocalPdp {
    fn evaluate<'a>(
        &'a self,
        request: &'a AuthzRequest,
        _correlation_id: &'a str,
    ) -> DecisionFuture<'a> {
        let entity = |e: &AuthzEntity| {
            aims_pdp::EntityRef::new(e.entity_type.clone(), e.id.clone())
                .with_properties(e.properties.clone())
        };
        let req = aims_pdp::EvaluationRequest {
            subject: entity(&request.subject),
            action: aims_pdp::Action::new(request.action.name.clone()),
            resource: entity(&request.resource),
            context: request.context.clone(),
        };
        let result = self
            .0
            .evaluate_with(&req, aims_pdp::Evaluation::Indexed)
            .map(|d| AuthzDecision {
                permit: d.decision,
                policies: d.reasons,
            })
            .map_err(|e| PdpUnavailable(e.to_string()));
        Box::pin(std::future::ready(result))
    }
}

// ---------------------------------------------------------------------------------------
// decision cache

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    subject: String,
    /// The subject's id alone (a namespaced type such as `Aims::Agent` has `:` in it,
    /// so the id cannot be split off `subject`).
    subject_id: String,
    action: String,
    resource: String,
    digest: [u8; 32],
}

impl CacheKey {
    fn of(request: &AuthzRequest) -> Option<Self> {
        let canonical = serde_json::to_vec(request).ok()?;
        Some(Self {
            subject: request.subject.display(),
            subject_id: request.subject.id.clone(),
            action: request.action.name.clone(),
            resource: request.resource.display(),
            digest: aims_crypto::sha256(canonical),
        })
    }
}

#[derive(Debug, Clone)]
struct Cached {
    decision: AuthzDecision,
    inserted: i64,
}

/// Recent decisions, for a short TTL, bounded. When full, expired entries go first,
/// then the oldest one.
#[derive(Debug)]
pub struct DecisionCache {
    ttl: i64,
    max: usize,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<CacheKey, Cached>>,
}

impl DecisionCache {
    /// A cache of at most `max_entries` decisions, each kept `ttl_seconds` (0 disables
    /// caching).
    pub fn new(ttl_seconds: i64, max_entries: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl: ttl_seconds.max(0),
            max: max_entries,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Cached>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &CacheKey) -> Option<AuthzDecision> {
        let now = self.clock.now();
        let mut entries = self.lock();
        match entries.get(key) {
            Some(c) if now.saturating_sub(c.inserted) < self.ttl => Some(c.decision.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: CacheKey, decision: AuthzDecision) {
        if self.ttl == 0 || self.max == 0 {
            return;
        }
        let now = self.clock.now();
        let mut entries = self.lock();
        if entries.len() >= self.max && !entries.contains_key(&key) {
            entries.retain(|_, c| now.saturating_sub(c.inserted) < self.ttl);
            if entries.len() >= self.max
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, c)| c.inserted)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key,
            Cached {
                decision,
                inserted: now,
            },
        );
    }

    /// Forgets every decision.
    pub fn invalidate_all(&self) {
        self.lock().clear();
    }

    /// Forgets the decisions about subject `id` (any subject type).
    pub fn invalidate_subject(&self, id: &str) {
        self.lock().retain(|k, _| k.subject_id != id);
    }

    /// Number of cached decisions (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// per-route rules

/// The action of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionSpec {
    /// This name, whatever the method.
    Named(String),
    /// From the HTTP method: `GET`/`HEAD` → `read`, `POST` → `create`, `PUT`/`PATCH` →
    /// `update`, `DELETE` → `delete`, any other method in lower case.
    FromMethod,
}

impl ActionSpec {
    fn name(&self, method: &http::Method) -> String {
        match self {
            ActionSpec::Named(n) => n.clone(),
            ActionSpec::FromMethod => match *method {
                http::Method::GET | http::Method::HEAD => "read".into(),
                http::Method::POST => "create".into(),
                http::Method::PUT | http::Method::PATCH => "update".into(),
                http::Method::DELETE => "delete".into(),
                ref other => other.as_str().to_ascii_lowercase(),
            },
        }
    }
}

/// The resource of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceSpec {
    /// A fixed `type` and `id`.
    Fixed {
        /// Entity type.
        entity_type: String,
        /// Entity id.
        id: String,
    },
    /// `type`, with the request path as the id.
    Path {
        /// Entity type.
        entity_type: String,
    },
    /// `type`, with the last non-empty path segment (percent-decoded) as the id:
    /// `/docs/d1` → `d1`.
    LastSegment {
        /// Entity type.
        entity_type: String,
    },
}

impl ResourceSpec {
    /// [`ResourceSpec::Fixed`].
    pub fn fixed(entity_type: impl Into<String>, id: impl Into<String>) -> Self {
        Self::Fixed {
            entity_type: entity_type.into(),
            id: id.into(),
        }
    }

    /// [`ResourceSpec::Path`].
    pub fn path(entity_type: impl Into<String>) -> Self {
        Self::Path {
            entity_type: entity_type.into(),
        }
    }

    /// [`ResourceSpec::LastSegment`].
    pub fn last_segment(entity_type: impl Into<String>) -> Self {
        Self::LastSegment {
            entity_type: entity_type.into(),
        }
    }

    fn entity(&self, path: &str) -> AuthzEntity {
        match self {
            ResourceSpec::Fixed { entity_type, id } => AuthzEntity::new(entity_type, id),
            ResourceSpec::Path { entity_type } => AuthzEntity::new(entity_type, path),
            ResourceSpec::LastSegment { entity_type } => {
                let segment = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
                AuthzEntity::new(entity_type, percent_decode(segment))
            }
        }
    }
}

/// The path a policy sees: the whole request path even under a nested router (axum's
/// `OriginalUri`; a nested route's own path lacks the prefix, so `/admin/x` and
/// `/public/x` would both be `/x`), with percent-encoded unreserved characters decoded
/// (RFC 3986 §6.2.2.2: `/files/%73ecret` is `/files/secret`).
pub(crate) fn request_path(parts: &Parts) -> String {
    decode_unreserved(crate::guard::request_uri(parts).path())
}

/// Whether `path` is ambiguous: a `.` or `..` segment (also percent-encoded), an empty
/// segment inside it (`//`), or an encoded `/` or backslash (`%2F`, `%5C`). What such a path
/// names depends on who resolves it (a handler's extractor decodes and splits it its own
/// way), so an enforced route refuses it rather than let a policy decide on another
/// name than the handler serves.
///
/// `path` is a [`request_path`] (unreserved escapes decoded, the others in upper case).
pub(crate) fn is_ambiguous_path(path: &str) -> bool {
    if path.contains("%2F") || path.contains("%5C") {
        return true;
    }
    let inner = path.strip_prefix('/').unwrap_or(path);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    inner
        .split('/')
        .any(|seg| seg == "." || seg == ".." || (seg.is_empty() && !inner.is_empty()))
}

/// `s` with percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) decoded; every
/// other escape is kept, its hex digits upper-cased (RFC 3986 §6.2.2.1).
fn decode_unreserved(s: &str) -> String {
    use std::fmt::Write as _;
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(v) = escaped_byte(bytes, i) {
            let c = char::from(v);
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') {
                out.push(c);
            } else {
                let _ = write!(out, "%{v:02X}");
            }
            i += 3;
            continue;
        }
        // A char boundary: only ASCII bytes were consumed in threes before.
        let c = s
            .get(i..)
            .and_then(|t| t.chars().next())
            .unwrap_or('\u{fffd}');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Percent-decoding of a path segment; invalid escapes and non-UTF-8 results are kept
/// as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match escaped_byte(bytes, i) {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// The byte of a valid `%XX` escape at `i` in `bytes`, if there is one.
fn escaped_byte(bytes: &[u8], i: usize) -> Option<u8> {
    let (b'%', Some(&h), Some(&l)) = (*bytes.get(i)?, bytes.get(i + 1), bytes.get(i + 2)) else {
        return None;
    };
    let h = char::from(h).to_digit(16)?;
    let l = char::from(l).to_digit(16)?;
    u8::try_from(h * 16 + l).ok()
}

// ---------------------------------------------------------------------------------------
// enforcer

struct EnforcerInner {
    pdp: Arc<dyn PolicyDecisionPoint>,
    cache: Option<DecisionCache>,
    subject_type: String,
}

/// The PEP: a PDP, a decision cache and the subject type. Cheap to clone; routes take
/// [`Enforcer::route`].
#[derive(Clone)]
pub struct Enforcer {
    inner: Arc<EnforcerInner>,
}

impl fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enforcer")
            .field("pdp", &self.inner.pdp)
            .field("cache", &self.inner.cache.as_ref().map(|c| (c.ttl, c.max)))
            .field("subject_type", &self.inner.subject_type)
            .finish()
    }
}

/// Builds an [`Enforcer`].
#[derive(Debug)]
pub struct EnforcerBuilder {
    pdp: Arc<dyn PolicyDecisionPoint>,
    ttl: i64,
    max: usize,
    clock: Arc<dyn Clock>,
    subject_type: String,
}

impl EnforcerBuilder {
    /// Decision cache TTL in seconds (default [`DEFAULT_DECISION_TTL`]; 0 = no cache).
    pub fn cache_ttl(mut self, seconds: i64) -> Self {
        self.ttl = seconds.max(0);
        self
    }

    /// Decision cache size (default [`DEFAULT_DECISION_CACHE_ENTRIES`]).
    pub fn cache_entries(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// The clock of the cache (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The subject type of agents (default `Agent`).
    pub fn subject_type(mut self, t: impl Into<String>) -> Self {
        self.subject_type = t.into();
        self
    }

    /// The enforcer.
    pub fn build(self) -> Enforcer {
        let cache = (self.ttl > 0 && self.max > 0)
            .then(|| DecisionCache::new(self.ttl, self.max, self.clock));
        Enforcer {
            inner: Arc::new(EnforcerInner {
                pdp: self.pdp,
                cache,
                subject_type: self.subject_type,
            }),
        }
    }
}

/// A route's enforcement: which action and resource to ask about.
#[derive(Debug, Clone)]
pub struct AuthzRoute {
    pub(crate) enforcer: Enforcer,
    action: ActionSpec,
    resource: ResourceSpec,
}

impl AuthzRoute {
    /// The action (default: [`ActionSpec::FromMethod`]).
    pub fn action(mut self, name: impl Into<String>) -> Self {
        self.action = ActionSpec::Named(name.into());
        self
    }

    /// The action as an [`ActionSpec`].
    pub fn action_spec(mut self, spec: ActionSpec) -> Self {
        self.action = spec;
        self
    }

    /// The resource (default: [`ResourceSpec::Path`] of type `Route`).
    pub fn resource(mut self, spec: ResourceSpec) -> Self {
        self.resource = spec;
        self
    }
}

impl Enforcer {
    /// An enforcer asking `pdp`, with the default cache.
    pub fn builder(pdp: Arc<dyn PolicyDecisionPoint>) -> EnforcerBuilder {
        EnforcerBuilder {
            pdp,
            ttl: DEFAULT_DECISION_TTL,
            max: DEFAULT_DECISION_CACHE_ENTRIES,
            clock: Arc::new(SystemClock),
            subject_type: DEFAULT_SUBJECT_TYPE.to_owned(),
        }
    }

    /// A route rule: action from the method, resource = `Route` + path; adjust with
    /// [`AuthzRoute::action`] and [`AuthzRoute::resource`], then hand it to
    /// [`crate::GuardLayer::authorize`].
    pub fn route(&self) -> AuthzRoute {
        AuthzRoute {
            enforcer: self.clone(),
            action: ActionSpec::FromMethod,
            resource: ResourceSpec::path("Route"),
        }
    }

    /// Forgets every cached decision (e.g. on a policy change or a signal).
    pub fn invalidate_all(&self) {
        if let Some(c) = &self.inner.cache {
            c.invalidate_all();
        }
    }

    /// Forgets the cached decisions about the agent `id` (e.g. a CAEP signal about it).
    pub fn invalidate_subject(&self, id: &str) {
        if let Some(c) = &self.inner.cache {
            c.invalidate_subject(id);
        }
    }

    /// The decision cache, if enabled.
    pub fn cache(&self) -> Option<&DecisionCache> {
        self.inner.cache.as_ref()
    }

    /// The request the guard sends for `agent` calling `route` with `parts`.
    pub fn request(
        &self,
        route: &AuthzRoute,
        agent: &AuthenticatedAgent,
        parts: &Parts,
    ) -> AuthzRequest {
        self.request_for_path(route, agent, parts, &request_path(parts))
    }

    /// [`Enforcer::request`] with the request's path as [`request_path`] gave it.
    pub(crate) fn request_for_path(
        &self,
        route: &AuthzRoute,
        agent: &AuthenticatedAgent,
        parts: &Parts,
        path: &str,
    ) -> AuthzRequest {
        let mut context = Map::new();
        if let Some(user) = agent.delegated_subject() {
            context.insert("user".into(), Value::String(user.to_owned()));
        }
        if let Some(token) = agent.access_token() {
            // Innermost actor first, so the outermost (current) one wraps the rest.
            let mut act: Option<Value> = None;
            for a in token.actors().iter().rev() {
                let mut o = Map::new();
                o.insert("sub".into(), Value::String(a.sub.clone()));
                if let Some(inner) = act.take() {
                    o.insert("act".into(), inner);
                }
                act = Some(Value::Object(o));
            }
            if let Some(act) = act {
                context.insert("act".into(), act);
            }
            let scope: Vec<Value> = token
                .scope()
                .iter()
                .map(|s| Value::String(s.to_owned()))
                .collect();
            context.insert("scope".into(), Value::Array(scope));
            let details = token.authorization_details();
            if !details.is_empty() {
                let mut types: Vec<&str> = details.iter().map(|d| d.type_.as_str()).collect();
                types.sort_unstable();
                types.dedup();
                context.insert(
                    "authorization_details".into(),
                    serde_json::to_value(details).unwrap_or(Value::Null),
                );
                context.insert("authorization_detail_types".into(), json!(types));
            }
        }
        context.insert(
            "request".into(),
            json!({"method": parts.method.as_str(), "path": path}),
        );
        context.insert("mechanism".into(), json!(agent.mechanism().as_str()));
        context.insert("risk".into(), json!("unknown"));
        AuthzRequest {
            subject: AuthzEntity::new(&self.inner.subject_type, agent.id().as_str()),
            action: AuthzAction {
                name: route.action.name(&parts.method),
            },
            resource: route.resource.entity(path),
            context,
        }
    }

    /// The decision for `request`: from the cache, else from the PDP (and cached).
    pub async fn decide(
        &self,
        request: &AuthzRequest,
        correlation_id: &str,
    ) -> Result<AuthzDecision, PdpUnavailable> {
        let key = self
            .inner
            .cache
            .as_ref()
            .and_then(|_| CacheKey::of(request));
        if let (Some(cache), Some(key)) = (&self.inner.cache, &key)
            && let Some(d) = cache.get(key)
        {
            return Ok(d);
        }
        let decision = self.inner.pdp.evaluate(request, correlation_id).await?;
        if let (Some(cache), Some(key)) = (&self.inner.cache, key) {
            cache.put(key, decision.clone());
        }
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aims_core::ManualClock;

    fn request(subject: &str, path: &str) -> AuthzRequest {
        AuthzRequest {
            subject: AuthzEntity::new("Agent", subject),
            action: AuthzAction {
                name: "read".into(),
            },
            resource: AuthzEntity::new("Document", path),
            context: Map::new(),
        }
    }

    fn permit() -> AuthzDecision {
        AuthzDecision {
            permit: true,
            policies: vec!["p".into()],
        }
    }

    #[test]
    fn cache_ttl_bound_and_invalidation() {
        let clock = Arc::new(ManualClock::new(1_000));
        let cache = DecisionCache::new(5, 2, clock.clone());
        let a = CacheKey::of(&request("spiffe://td/a", "d1")).unwrap();
        let b = CacheKey::of(&request("spiffe://td/b", "d1")).unwrap();
        let c = CacheKey::of(&request("spiffe://td/a", "d2")).unwrap();
        cache.put(a.clone(), permit());
        assert_eq!(cache.get(&a), Some(permit()));
        clock.advance(5);
        assert_eq!(cache.get(&a), None, "expired after the TTL");
        cache.put(a.clone(), permit());
        clock.advance(1);
        cache.put(b.clone(), permit());
        cache.put(c.clone(), permit());
        assert_eq!(cache.len(), 2, "bounded");
        assert_eq!(cache.get(&a), None, "the oldest went first");
        cache.invalidate_subject("spiffe://td/b");
        assert_eq!(cache.get(&b), None);
        assert!(cache.get(&c).is_some());
        cache.invalidate_all();
        assert!(cache.is_empty());
    }

    #[test]
    fn paths_are_canonical_for_policies() {
        let parts = |uri: &str| http::Request::get(uri).body(()).unwrap().into_parts().0;
        assert_eq!(request_path(&parts("/files/%73ecret")), "/files/secret");
        assert_eq!(request_path(&parts("/files/%7Eme-%2D")), "/files/~me--");
        // Reserved and non-ASCII escapes stay as written.
        assert_eq!(request_path(&parts("/a%2Fb/%C3%A9")), "/a%2Fb/%C3%A9");
        assert_eq!(request_path(&parts("/x%zz%4")), "/x%zz%4");
        // Under a nested router the whole path counts, not the nested route's own.
        let mut p = parts("/x");
        p.extensions
            .insert(axum::extract::OriginalUri("/admin/x".parse().unwrap()));
        assert_eq!(request_path(&p), "/admin/x");
        let spec = ResourceSpec::path("Route");
        assert_eq!(
            spec.entity(&request_path(&parts("/files/%73ecret"))).id,
            "/files/secret"
        );
        // Kept escapes have upper-case hex.
        assert_eq!(request_path(&parts("/a%3a%c3%a9")), "/a%3A%C3%A9");
        for ambiguous in [
            "/docs/../admin",
            "/docs/./x",
            "/docs/%2e%2E/admin",
            "/..",
            "/files//secret",
            "/files/secret%2fx",
            "/docs/..%2Fadmin",
            "/docs/a%5cb",
        ] {
            assert!(
                is_ambiguous_path(&request_path(&parts(ambiguous))),
                "{ambiguous}"
            );
        }
        for plain in [
            "/docs/a.b",
            "/docs/...",
            "/docs/.hidden",
            "/",
            "/docs/",
            "/a%20b",
        ] {
            assert!(!is_ambiguous_path(&request_path(&parts(plain))), "{plain}");
        }
    }

    #[test]
    fn invalidation_finds_subjects_of_namespaced_types() {
        let clock = Arc::new(ManualClock::new(1_000));
        let cache = DecisionCache::new(60, 10, clock);
        let mut r = request("spiffe://td/a", "d1");
        r.subject = AuthzEntity::new("Aims::Agent", "spiffe://td/a");
        let k = CacheKey::of(&r).unwrap();
        cache.put(k.clone(), permit());
        cache.invalidate_subject("spiffe://td/b");
        assert!(cache.get(&k).is_some());
        cache.invalidate_subject("spiffe://td/a");
        assert_eq!(cache.get(&k), None);
    }

    #[test]
    fn context_digest_is_part_of_the_key() {
        let mut r = request("spiffe://td/a", "d1");
        let k1 = CacheKey::of(&r).unwrap();
        r.context.insert("scope".into(), json!(["docs:read"]));
        assert_ne!(k1, CacheKey::of(&r).unwrap());
    }

    #[test]
    fn actions_and_resources() {
        assert_eq!(ActionSpec::FromMethod.name(&http::Method::GET), "read");
        assert_eq!(ActionSpec::FromMethod.name(&http::Method::PATCH), "update");
        assert_eq!(ActionSpec::Named("x".into()).name(&http::Method::GET), "x");
        assert_eq!(
            ResourceSpec::last_segment("Document").entity("/docs/d%201/"),
            AuthzEntity::new("Document", "d 1")
        );
        assert_eq!(
            ResourceSpec::path("Route").entity("/a/b"),
            AuthzEntity::new("Route", "/a/b")
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl PolicyDecisionPoint for Counting {
        fn evaluate<'a>(&'a self, _: &'a AuthzRequest, _: &'a str) -> DecisionFuture<'a> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(std::future::ready(Ok(permit())))
        }
    }

    #[tokio::test]
    async fn enforcer_caches_and_invalidates() {
        let pdp = Arc::new(Counting::default());
        let clock = Arc::new(ManualClock::new(1_000));
        let e = Enforcer::builder(pdp.clone()).clock(clock.clone()).build();
        let calls = || pdp.0.load(std::sync::atomic::Ordering::SeqCst);
        let r = request("spiffe://td/a", "d1");
        e.decide(&r, "c").await.unwrap();
        e.decide(&r, "c").await.unwrap();
        assert_eq!(calls(), 1, "second decision from the cache");
        e.invalidate_subject("spiffe://td/a");
        e.decide(&r, "c").await.unwrap();
        assert_eq!(calls(), 2);
        e.invalidate_all();
        e.decide(&r, "c").await.unwrap();
        clock.advance(DEFAULT_DECISION_TTL);
        e.decide(&r, "c").await.unwrap();
        assert_eq!(calls(), 4, "after invalidation and after the TTL");
        let no_cache = Enforcer::builder(pdp.clone()).cache_ttl(0).build();
        assert!(no_cache.cache().is_none());
    }

    #[test]
    fn decisions_from_the_wire() {
        let d = parse_decision(
            br#"{"decision":true,"context":{"reason_admin":{"policies":["a","b"]}}}"#,
        )
        .unwrap();
        assert_eq!(d.policies, ["a", "b"]);
        assert!(parse_decision(br#"{"decision":"yes"}"#).is_err());
        assert!(parse_decision(b"<html>").is_err());
    }
}
