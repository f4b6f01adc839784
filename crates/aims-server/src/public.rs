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

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
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

async fn readyz(State(state): State<AppState>) -> Response {
    let mut reasons = Vec::new();
    if state.is_shutting_down() {
        reasons.push("shutting down".to_owned());
    }
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "readiness: database does not answer");
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

/// Middleware recording request counts and latencies per route.
pub async fn record_metrics(listener: &'static str, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!(
        "aims_http_requests_total",
        "listener" => listener,
        "method" => method,
        "route" => route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "aims_http_request_duration_seconds",
        "listener" => listener,
        "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    resp
}
