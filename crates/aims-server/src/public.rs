//! The plain HTTP listener: health, readiness, Prometheus metrics and this trust
//! domain's SPIFFE bundle.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /healthz` | 200 `ok` while the process runs |
//! | `GET /readyz` | 200 when the database answers and the CA is loaded, else 503 with the reasons |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /bundle`, `GET /.well-known/spiffe-bundle` | the SPIFFE bundle document (JSON) |
//!
//! The bundle is public information; serving it over plain HTTP on loopback suits
//! development. Federation peers should use the `https_spiffe` endpoint
//! (`[http] bundle_endpoint_listen`) or a TLS-terminating proxy with a Web PKI
//! certificate (`https_web`).

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::admin::{ApiError, own_bundle_json};
use crate::state::AppState;

/// The public routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .merge(bundle_router())
        .with_state(state)
}

/// Only the bundle routes (the `https_spiffe` endpoint serves just these).
pub fn bundle_router() -> Router<AppState> {
    Router::new()
        .route("/bundle", get(bundle))
        .route("/.well-known/spiffe-bundle", get(bundle))
        .route("/", get(bundle))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// How long a database check of `/readyz` is reused.
const READINESS_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The last database check of `/readyz`: one check at a time, its answer reused for
/// [`READINESS_REUSE`], so that a flood of unauthenticated readiness probes cannot take
/// the database connections the other requests need.
#[derive(Debug, Default)]
pub(crate) struct ReadinessCache {
    last: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
}

impl ReadinessCache {
    /// Whether the database answers, checked at most once per [`READINESS_REUSE`].
    async fn database_answers(&self, store: &aims_store::Store) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last
            && at.elapsed() < READINESS_REUSE
        {
            return ok;
        }
        metrics::counter!("aims_readiness_database_checks_total").increment(1);
        let ok = match store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "readiness: database does not answer");
                false
            }
        };
        *last = Some((std::time::Instant::now(), ok));
        ok
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    let mut reasons = Vec::new();
    if state.is_shutting_down() {
        reasons.push("shutting down".to_owned());
    }
    if !state.readiness.database_answers(&state.store).await {
        reasons.push("database does not answer".to_owned());
    }
    match state.keys.current() {
        Some(k) if k.ca().is_some() => {}
        _ => reasons.push("CA not loaded".to_owned()),
    }
    if reasons.is_empty() {
        (StatusCode::OK, axum::Json(json!({ "status": "ready" }))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "not ready", "reasons": reasons })),
        )
            .into_response()
    }
}

async fn prometheus(State(state): State<AppState>) -> Response {
    state.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn bundle(State(state): State<AppState>) -> Result<Response, ApiError> {
    let json = own_bundle_json(&state)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// The metric handles of one route of one listener.
struct RouteMetrics {
    duration: metrics::Histogram,
    /// `aims_http_requests_total` per (method, status).
    requests: Vec<(&'static str, u16, metrics::Counter)>,
}

/// Metric handles by listener and route, so a request neither formats labels nor looks
/// them up in the registry once its route has been seen. Handles are process-wide, as
/// the recorder is.
type Handles = HashMap<&'static str, HashMap<Box<str>, RouteMetrics>>;

fn handles() -> &'static RwLock<Handles> {
    static HANDLES: OnceLock<RwLock<Handles>> = OnceLock::new();
    HANDLES.get_or_init(RwLock::default)
}

/// The `method` label: the standard methods by name, any other as `other`, so a client
/// cannot add label values (and memory) by inventing methods.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts one request and records its duration.
fn record(listener: &'static str, route: &str, method: &'static str, status: u16, secs: f64) {
    {
        let map = handles().read().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = map.get(listener).and_then(|m| m.get(route))
            && let Some((_, _, c)) = r
                .requests
                .iter()
                .find(|(m, s, _)| *m == method && *s == status)
        {
            c.increment(1);
            r.duration.record(secs);
            return;
        }
    }
    let mut map = handles().write().unwrap_or_else(PoisonError::into_inner);
    let r = map
        .entry(listener)
        .or_default()
        .entry(route.into())
        .or_insert_with(|| RouteMetrics {
            duration: metrics::histogram!(
                "aims_http_request_duration_seconds",
                "listener" => listener,
                "route" => route.to_owned()
            ),
            requests: Vec::new(),
        });
    let counter = match r
        .requests
        .iter()
        .find(|(m, s, _)| *m == method && *s == status)
    {
        Some((_, _, c)) => c.clone(),
        None => {
            let c = metrics::counter!(
                "aims_http_requests_total",
                "listener" => listener,
                "method" => method,
                "route" => route.to_owned(),
                "status" => status.to_string()
            );
            r.requests.push((method, status, c.clone()));
            c
        }
    };
    counter.increment(1);
    r.duration.record(secs);
}

/// Middleware recording request counts and latencies per route.
pub async fn record_metrics(listener: &'static str, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    record(
        listener,
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}
