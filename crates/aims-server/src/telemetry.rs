//! Structured logs (tracing) and Prometheus metrics.
//!
//! Logs go to standard error, as text or one JSON object per line; standard output is
//! kept for the startup summary. Metrics are recorded with the `metrics` facade into one
//! process-wide Prometheus recorder and rendered by the `/metrics` route; no extra
//! listener is opened.
//!
//! Metric names:
//!
//! | Name | Kind | Labels |
//! |---|---|---|
//! | `aims_svids_issued_total` | counter | `type` = `x509`, `jwt`, `wit` |
//! | `aims_svid_issue_errors_total` | counter | `type` |
//! | `aims_entries` | gauge | |
//! | `aims_federated_bundles` | gauge | |
//! | `aims_runtime_worker_threads` | gauge | |
//! | `aims_key_rotations_total` | counter | `kind` |
//! | `aims_http_requests_total` | counter | `listener`, `method` (standard methods by name, any other `other`), `route`, `status` |
//! | `aims_http_request_duration_seconds` | summary | `listener`, `route` |
//! | `aims_bundle_fetches_total` | counter | `trust_domain`, `result` |

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The environment variable that overrides the configured log filter.
pub const LOG_ENV: &str = "AIMS_LOG";

/// Installs the global tracing subscriber (once; later calls do nothing).
///
/// `AIMS_LOG`, if set, replaces `level`. A filter that does not parse falls back to `info`.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = std::env::var(LOG_ENV)
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    // Already installed (tests start several servers in one process): keep the first.
    drop(result);
}

/// The process-wide Prometheus handle; installs the recorder on first use.
///
/// If another global recorder was installed first, the handle renders only what this
/// recorder sees (nothing); the server still runs.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}
