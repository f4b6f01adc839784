//! The tower adapter: [`GuardLayer`] wraps a service (an axum `Router` or route) and
//! authenticates every request before it reaches it.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aims_httpsig::RequestMessage;
use axum::body::{Body, Bytes};
use axum::response::Response;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::{Layer, Service, ServiceExt};

use crate::audit::{AuditEvent, Decision};
use crate::authz::AuthzRoute;
use crate::guard::{
    DPOP_NONCE_HEADER, Guard, Outcome, Prepared, needs_body, original_uri, request_scheme,
    request_uri,
};
use crate::response::{ChallengeContext, error_response};
use crate::token::TokenScheme;
use crate::{AuthenticatedAgent, ConfigError, GuardError, Mechanism};

/// The correlation header, read from the request and set on the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Authenticates requests with a [`Guard`] under a per-route policy.
#[derive(Debug, Clone)]
pub struct GuardLayer {
    guard: Guard,
    accepted: BTreeSet<Mechanism>,
    required: bool,
    requirements: Arc<Requirements>,
    authz: Option<Arc<AuthzRoute>>,
}

/// What a route requires of the access token, beyond authentication.
#[derive(Debug, Clone, Default)]
struct Requirements {
    scopes: Vec<String>,
    acr_values: Vec<String>,
    max_age: Option<i64>,
    resource_metadata: Option<String>,
}

impl Requirements {
    fn scope(&self) -> Option<String> {
        (!self.scopes.is_empty()).then(|| self.scopes.join(" "))
    }

    /// RFC 6750 section 3.1 `insufficient_scope`, then RFC 9470 step-up. A caller
    /// without an access token (mTLS, WIT) has no scope and no user authentication.
    fn check(&self, agent: &AuthenticatedAgent, now: i64) -> Result<(), GuardError> {
        let scheme = match agent.mechanism() {
            Mechanism::Dpop => TokenScheme::Dpop,
            _ => TokenScheme::Bearer,
        };
        let token = agent.access_token();
        if let Some(scope) = self.scope() {
            let granted = token.is_some_and(|t| {
                t.scope()
                    .contains_all(self.scopes.iter().map(String::as_str))
            });
            if !granted {
                return Err(GuardError::InsufficientScope { scheme, scope });
            }
        }
        let acr_ok = self.acr_values.is_empty()
            || token
                .and_then(|t| t.acr())
                .is_some_and(|acr| self.acr_values.iter().any(|v| v == acr));
        let age_ok = self.max_age.is_none_or(|max| {
            token
                .and_then(|t| t.auth_time())
                .is_some_and(|at| now.saturating_sub(at) <= max)
        });
        if acr_ok && age_ok {
            return Ok(());
        }
        Err(GuardError::InsufficientUserAuthentication {
            scheme,
            acr_values: (!self.acr_values.is_empty()).then(|| self.acr_values.join(" ")),
            max_age: self.max_age,
        })
    }
}

impl GuardLayer {
    /// A layer accepting every mechanism the guard enables, authentication required.
    pub fn new(guard: Guard) -> Self {
        let accepted = guard.config().mechanisms().clone();
        Self {
            guard,
            accepted,
            required: true,
            requirements: Arc::new(Requirements::default()),
            authz: None,
        }
    }

    /// Enforces `route` after authentication and the token requirements: the agent's
    /// request goes to the policy decision point (see [`crate::authz`]); a deny is 403
    /// `access-denied`, a PDP failure 503 `policy-unavailable`. Authentication becomes
    /// required (an anonymous caller has no subject to ask about).
    pub fn authorize(mut self, route: AuthzRoute) -> Self {
        self.authz = Some(Arc::new(route));
        self.required = true;
        self
    }

    /// Requires an access token granting every one of `scopes` (else 403
    /// `insufficient_scope` with `scope=` in the challenge, RFC 6750 section 3.1).
    pub fn require_scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Arc::make_mut(&mut self.requirements).scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Requires the token's `acr` to be one of `acr_values` (RFC 9470: else 401
    /// `insufficient_user_authentication` with `acr_values=`).
    pub fn require_acr<I, T>(mut self, acr_values: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Arc::make_mut(&mut self.requirements).acr_values =
            acr_values.into_iter().map(Into::into).collect();
        self
    }

    /// Requires the user authentication (`auth_time`) to be at most `seconds` old
    /// (RFC 9470: else 401 `insufficient_user_authentication` with `max_age=`).
    pub fn max_age(mut self, seconds: i64) -> Self {
        Arc::make_mut(&mut self.requirements).max_age = Some(seconds.max(0));
        self
    }

    /// Accepts only DPoP-bound access tokens (`Authorization: DPoP`); a Bearer token
    /// is answered with a DPoP challenge.
    pub fn require_dpop_bound(self) -> Self {
        self.require([Mechanism::Dpop])
    }

    /// The RFC 9728 metadata URL of this route's resource, for its challenges
    /// (overrides [`crate::GuardConfigBuilder::resource_metadata`]).
    /// Refused like the builder's: `url` must be an absolute https URL without `"` or
    /// `\\` (it goes into a quoted-string).
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Result<Self, ConfigError> {
        let url = url.into();
        crate::config::check_resource_metadata(&url)?;
        Arc::make_mut(&mut self.requirements).resource_metadata = Some(url);
        Ok(self)
    }

    /// Accepts only `mechanisms` (intersected with the enabled ones), authentication
    /// required.
    pub fn require(mut self, mechanisms: impl IntoIterator<Item = Mechanism>) -> Self {
        let enabled = self.guard.config().mechanisms();
        self.accepted = mechanisms
            .into_iter()
            .filter(|m| enabled.contains(m))
            .collect();
        self.required = true;
        self
    }

    /// Lets requests without any credential through unauthenticated (credentials that
    /// are present are still verified, and refused when invalid). Ignored on an
    /// enforced route ([`GuardLayer::authorize`]).
    pub fn optional(mut self) -> Self {
        self.required = self.authz.is_some();
        self
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service made by [`GuardLayer`].
#[derive(Debug, Clone)]
pub struct GuardService<S> {
    layer: GuardLayer,
    inner: S,
}

impl<S> Service<Request<Body>> for GuardService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is awaited on the clone used in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move { Ok(handle(layer, inner, req).await) })
    }
}

/// An `X-Request-ID` we accept as is: 1 to 128 visible ASCII characters.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, GuardError> {
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(GuardError::BodyTooLarge(limit))
        }
        Err(_) => Err(GuardError::BodyUnreadable),
    }
}

async fn handle<S>(layer: GuardLayer, inner: S, req: Request<Body>) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let guard = &layer.guard;
    let cfg = guard.config();
    let correlation = crate::correlation::correlation_id(req.headers());
    let mut event = AuditEvent {
        agent: "unauthenticated".to_owned(),
        mechanism: None,
        delegated_subject: None,
        actors: Vec::new(),
        // The whole path, as the proofs and the policy see it (also under a nested router).
        resource: original_uri(req.extensions(), req.uri()).path().to_owned(),
        action: req.method().as_str().to_owned(),
        decision: Decision::Allow,
        time: cfg.clock.now(),
        correlation_id: correlation.clone(),
        risk_state: "unknown".to_owned(),
        remediation: "none".to_owned(),
        policies: Vec::new(),
    };

    let (parts, body) = req.into_parts();
    let (body, result) = match guard.prepare(&parts, &layer.accepted) {
        Err(e) => (None, Err(e)),
        Ok(prepared @ Prepared::Signed(_)) if needs_body(&parts) => {
            // The WIT is valid (checked first, from the header): only now is the body,
            // which the signature may cover (Content-Digest), buffered, bounded; the same
            // bytes are passed on.
            match read_body(body, cfg.body_limit).await {
                Ok(bytes) => {
                    let r = guard.authenticate(&parts, prepared, &bytes).await;
                    (Some(Body::from(bytes)), r)
                }
                Err(e) => (None, Err(e)),
            }
        }
        Ok(prepared) => {
            let r = guard.authenticate(&parts, prepared, &[]).await;
            (Some(body), r)
        }
    };
    event.time = cfg.clock.now();
    finish(layer.clone(), inner, parts, body, result, event).await
}

async fn finish<S>(
    layer: GuardLayer,
    inner: S,
    mut parts: http::request::Parts,
    body: Option<Body>,
    result: Result<Option<Outcome>, GuardError>,
    mut event: AuditEvent,
) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let guard = &layer.guard;
    let cfg = guard.config();
    let correlation = event.correlation_id.clone();
    let result = match result {
        Ok(None) if layer.required => Err(GuardError::MissingCredentials),
        Ok(Some(o)) => {
            fill_agent(&mut event, &o.agent);
            match layer.requirements.check(&o.agent, cfg.clock.now()) {
                Ok(()) => match &layer.authz {
                    Some(route) => enforce(route, &o.agent, &parts, &mut event)
                        .await
                        .map(|()| Some(o)),
                    None => Ok(Some(o)),
                },
                Err(e) => Err(e),
            }
        }
        other => other,
    };
    let outcome = match result {
        Err(e) => {
            event.decision = Decision::Deny { reason: e.code() };
            event.remediation = e.remediation().to_owned();
            cfg.audit.record(&event);
            if e.status().is_server_error() {
                tracing::warn!(correlation_id = %correlation, error = %e, "request refused");
            }
            let scope = layer.requirements.scope();
            let ctx = ChallengeContext {
                accepted: &layer.accepted,
                dpop_algs: aims_jose::dpop::DEFAULT_ALGORITHMS
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(" "),
                nonce: guard.dpop_nonce_to_send().await,
                resource_metadata: layer
                    .requirements
                    .resource_metadata
                    .as_deref()
                    .or(cfg.resource_metadata.as_deref()),
                scope: scope.as_deref(),
            };
            let mut r = error_response(&e, &ctx);
            set_request_id(&mut r, &correlation);
            return r;
        }
        Ok(o) => o,
    };
    if let Some(o) = &outcome {
        parts
            .extensions
            .insert::<AuthenticatedAgent>(o.agent.clone());
    }
    cfg.audit.record(&event);

    // What response signing needs of the request, kept before the handler takes it.
    let signing = outcome
        .as_ref()
        .and_then(|o| o.sign_response_nonce.clone())
        .map(|nonce| {
            let mut copy = Request::new(());
            *copy.method_mut() = parts.method.clone();
            // The URI the client signed, which its `;req` components are checked against.
            *copy.uri_mut() = request_uri(&parts).clone();
            *copy.version_mut() = parts.version;
            *copy.headers_mut() = parts.headers.clone();
            (copy, nonce)
        });
    let is_dpop = outcome
        .as_ref()
        .is_some_and(|o| o.agent.mechanism() == Mechanism::Dpop);

    let req = Request::from_parts(parts, body.unwrap_or_default());
    let Ok(mut response) = inner.oneshot(req).await;

    if let Some((copy, nonce)) = signing {
        response = match sign_response(&layer, response, &copy, &nonce).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(correlation_id = %correlation, error = %e, "response signing failed");
                crate::response::problem(&GuardError::Internal)
            }
        };
    }
    if is_dpop && let Ok(v) = HeaderValue::from_str(&guard.dpop_nonce_to_send().await) {
        response.headers_mut().insert(DPOP_NONCE_HEADER, v);
    }
    set_request_id(&mut response, &correlation);
    response
}

async fn sign_response(
    layer: &GuardLayer,
    response: Response,
    request: &Request<()>,
    nonce: &str,
) -> Result<Response, GuardError> {
    let signer = layer
        .guard
        .config()
        .response_signing
        .as_ref()
        .and_then(|s| s.current())
        .ok_or(GuardError::ResponseSigningUnavailable)?;
    let (mut parts, body) = response.into_parts();
    let limit = layer.guard.config().response_body_limit;
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                tracing::warn!(limit, "response too large to sign; answered with 500");
            }
            return Err(GuardError::Internal);
        }
    };
    let mut message = RequestMessage::from_request(request);
    if let Some(scheme) = request_scheme(
        &layer.guard.config().authorities,
        request.uri(),
        request.headers(),
    ) {
        message = message.with_scheme(scheme);
    }
    signer
        .sign_parts(&mut parts, &bytes, message, nonce)
        .map_err(|_| GuardError::Internal)?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Asks the PDP about `agent` on this route; fills the audit event's action, resource
/// and policies.
async fn enforce(
    route: &AuthzRoute,
    agent: &AuthenticatedAgent,
    parts: &http::request::Parts,
    event: &mut AuditEvent,
) -> Result<(), GuardError> {
    let enforcer = &route.enforcer;
    let path = crate::authz::request_path(parts);
    if crate::authz::is_ambiguous_path(&path) {
        // What `/docs/../admin` or `/a//b` names depends on who resolves it: no decision
        // on it.
        return Err(GuardError::AccessDenied);
    }
    let request = enforcer.request_for_path(route, agent, parts, &path);
    event.action = request.action.name.clone();
    event.resource = request.resource.display();
    match enforcer.decide(&request, &event.correlation_id).await {
        Ok(d) => {
            event.policies = d.policies;
            if d.permit {
                Ok(())
            } else {
                Err(GuardError::AccessDenied)
            }
        }
        Err(e) => {
            tracing::warn!(correlation_id = %event.correlation_id, error = %e, "policy decision unavailable; request refused");
            Err(GuardError::PolicyUnavailable)
        }
    }
}

/// The agent fields of the audit event: agent (`client_id` for tokens), mechanism,
/// delegated subject (`sub` when not the agent) and the `act` chain.
fn fill_agent(event: &mut AuditEvent, agent: &AuthenticatedAgent) {
    event.agent = agent.id().as_str().to_owned();
    event.mechanism = Some(agent.mechanism().as_str());
    event.delegated_subject = agent.delegated_subject().map(str::to_owned);
    event.actors = agent
        .access_token()
        .map(|t| t.actors().iter().map(|a| a.sub.clone()).collect())
        .unwrap_or_default();
}

fn set_request_id(r: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
}
