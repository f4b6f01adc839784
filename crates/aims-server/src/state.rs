//! [`AppState`]: everything the routers, the Workload API and the background tasks share.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aims_core::{Clock, TrustDomain};
use aims_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::entries::EntryCache;
use crate::federation::Federation;
use crate::keys::KeyManager;
use crate::notify::Changes;
use crate::tls::TlsIdentity;

/// The server's shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// The time source of every schedule and validity check.
    pub clock: Arc<dyn Clock>,
    /// The database.
    pub store: Store,
    /// CA and signing keys.
    pub keys: Arc<KeyManager>,
    /// Registration entries, in memory.
    pub entries: Arc<EntryCache>,
    /// Federated bundles.
    pub federation: Arc<Federation>,
    /// This server's X509-SVID and TLS configurations.
    pub tls: Arc<TlsIdentity>,
    /// Moves whenever entries, bundles or keys change.
    pub changes: Changes,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    pub(crate) shutting_down: Arc<AtomicBool>,
    /// The last database check of `/readyz`, reused for a second.
    pub(crate) readiness: Arc<crate::public::ReadinessCache>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("trust_domain", self.trust_domain())
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// This server's trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.config.server.trust_domain
    }

    /// Whether graceful shutdown has begun (readiness then fails).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Picks up every change in the store: entries, federated bundles, and runs the key
    /// schedule. The server calls it every poll interval; tests call it after moving the
    /// clock.
    ///
    /// Every step runs even when an earlier one failed (a key this node cannot load must
    /// not keep deleted entries or bundles in force here); each failure is logged, and
    /// the first is returned.
    pub async fn sync(&self) -> Result<(), crate::ServerError> {
        let mut first = None;
        let mut note = |step: &'static str, r: Result<(), crate::ServerError>| {
            if let Err(e) = r {
                tracing::warn!(step, error = %e, "sync step failed; the other steps ran");
                first.get_or_insert(e);
            }
        };
        note("key schedule", self.keys.tick().await.map(drop));
        note(
            "entries",
            self.entries.refresh().await.map(drop).map_err(Into::into),
        );
        note(
            "federated bundles",
            self.federation.reload().await.map(drop).map_err(Into::into),
        );
        note("server certificate", self.tls.refresh(self).map(drop));
        first.map_or(Ok(()), Err)
    }
}
