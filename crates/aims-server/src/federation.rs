//! Bundles of federated trust domains: set by hand (admin API) or fetched from their
//! bundle endpoints at their refresh hint, stored, and kept in memory for the Workload
//! API (`federated_bundles`).
//!
//! Endpoint profiles (SPIFFE Federation §5): `https_web` verifies the endpoint's Web PKI
//! certificate against the system's roots; `https_spiffe` verifies its X509-SVID against
//! the federated trust domain's *current* bundle and requires the configured endpoint
//! SPIFFE ID, so the first bundle must be set by hand (`aims bundle set`).
//!
//! A fetched bundle replaces the stored one only if its `spiffe_sequence` is not lower.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aims_core::{Clock, TrustDomain};
use aims_pki::tls::Authorizer;
use aims_pki::{BundleError, SpiffeBundle, TrustStore};
use aims_store::{BundleRecord, Store, StoreError};

use crate::config::{EndpointProfile, FederatedTrustDomain};
use crate::notify::Changes;

/// Largest bundle document accepted from an endpoint or the admin API.
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;

/// Refresh delay when a bundle gives no hint.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// Bounds applied to a peer's refresh hint.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);
/// See [`MIN_REFRESH`].
pub const MAX_REFRESH: Duration = Duration::from_secs(86_400);

/// Why a federated bundle could not be set or fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    /// The trust domain is this server's own.
    #[error("`{0}` is this server's own trust domain; its bundle is managed by the server")]
    OwnTrustDomain(TrustDomain),
    /// The bundle document is invalid.
    #[error("invalid bundle: {0}")]
    InvalidBundle(#[from] BundleError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `https_spiffe` needs the trust domain's bundle to authenticate the endpoint.
    #[error(
        "no bundle for `{0}` yet: set one by hand (`aims bundle set --trust-domain {0} --file BUNDLE.json`) so the https_spiffe endpoint can be authenticated"
    )]
    NoBootstrapBundle(TrustDomain),
    /// The endpoint could not be reached or answered badly.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// The endpoint.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The trust domain is not configured for fetching.
    #[error("`{0}` has no bundle_endpoint_url in [[federation.trust_domains]]")]
    NotConfigured(TrustDomain),
}

/// Each trust domain's bundle, with the document it was parsed from.
type Held = BTreeMap<TrustDomain, (String, Arc<SpiffeBundle>)>;

/// The federated bundles.
pub struct Federation {
    own: TrustDomain,
    store: Store,
    clock: Arc<dyn Clock>,
    bundles: RwLock<Arc<Held>>,
    /// One reload at a time: a reload that read the store earlier cannot overwrite the
    /// result of a later one (a bundle just deleted would come back until the next sync).
    reloading: tokio::sync::Mutex<()>,
    configured: Vec<FederatedTrustDomain>,
    changes: Changes,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("trust_domains", &self.snapshot().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Federation {
    /// Federation for trust domain `own`, with the configured peers.
    pub fn new(
        own: TrustDomain,
        store: Store,
        clock: Arc<dyn Clock>,
        configured: Vec<FederatedTrustDomain>,
        changes: Changes,
    ) -> Self {
        Self {
            own,
            store,
            clock,
            bundles: RwLock::new(Arc::new(BTreeMap::new())),
            reloading: tokio::sync::Mutex::new(()),
            configured,
            changes,
        }
    }

    fn snapshot(&self) -> Arc<Held> {
        Arc::clone(&self.bundles.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every federated bundle.
    pub fn bundles(&self) -> Vec<Arc<SpiffeBundle>> {
        self.snapshot()
            .values()
            .map(|(_, b)| Arc::clone(b))
            .collect()
    }

    /// One trust domain's bundle.
    pub fn get(&self, td: &TrustDomain) -> Option<Arc<SpiffeBundle>> {
        self.snapshot().get(td).map(|(_, b)| Arc::clone(b))
    }

    /// The configured peers.
    pub fn configured(&self) -> &[FederatedTrustDomain] {
        &self.configured
    }

    /// Reloads every bundle from the store; returns whether anything changed.
    /// A stored bundle that no longer parses is skipped with a warning.
    pub async fn reload(&self) -> Result<bool, StoreError> {
        let _one_at_a_time = self.reloading.lock().await;
        let records = self.store.list_bundles().await?;
        let old = self.snapshot();
        let mut next = BTreeMap::new();
        for r in records {
            if let Some((json, b)) = old.get(&r.trust_domain)
                && *json == r.bundle_json
            {
                next.insert(r.trust_domain, (json.clone(), Arc::clone(b)));
                continue;
            }
            match SpiffeBundle::parse(r.trust_domain.clone(), r.bundle_json.as_bytes()) {
                Ok(b) => {
                    next.insert(r.trust_domain, (r.bundle_json, Arc::new(b)));
                }
                Err(e) => {
                    tracing::warn!(trust_domain = %r.trust_domain, error = %e, "stored federated bundle is invalid; ignored");
                }
            }
        }
        let changed = old.len() != next.len()
            || old
                .iter()
                .zip(next.iter())
                .any(|((ta, (ja, _)), (tb, (jb, _)))| ta != tb || ja != jb);
        if changed {
            metrics::gauge!("aims_federated_bundles").set(next.len() as f64);
            *self.bundles.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
            self.changes.bump();
        }
        Ok(changed)
    }

    /// Checks and stores a bundle document for `td` (from the admin API or an endpoint).
    pub async fn set(
        &self,
        td: &TrustDomain,
        json: &[u8],
        endpoint_url: Option<String>,
    ) -> Result<BundleRecord, FederationError> {
        if td == &self.own {
            return Err(FederationError::OwnTrustDomain(td.clone()));
        }
        let bundle = SpiffeBundle::parse(td.clone(), json)?;
        if bundle.is_empty() {
            // SPIFFE Trust Domain and Bundle §4: an empty `keys` means the trust domain
            // revoked all its keys; stored like any update, so that nothing it issued is
            // trusted any more (refusing it would keep the revoked keys trusted).
            tracing::warn!(trust_domain = %td, "federated bundle holds no key: nothing of this trust domain is trusted now");
        }
        let text = std::str::from_utf8(json)
            .map_err(|_| BundleError::Json("not UTF-8".into()))?
            .to_owned();
        // Both are 64-bit unsigned in the document; the store keeps signed 64-bit
        // integers. A hint is only ever used bounded, so it is stored bounded; a sequence
        // number cannot be cut without breaking its order, so a larger one is refused.
        let sequence = bundle.sequence().unwrap_or(0);
        if i64::try_from(sequence).is_err() {
            return Err(BundleError::Json(format!(
                "spiffe_sequence {sequence} is above 2^63 - 1, which this server cannot keep"
            ))
            .into());
        }
        let record = BundleRecord {
            trust_domain: td.clone(),
            bundle_json: text,
            sequence,
            refresh_hint: bundle.refresh_hint().map(|h| h.min(MAX_REFRESH.as_secs())),
            endpoint_url,
            updated_at: self.clock.now(),
        };
        self.store.put_bundle(&record).await?;
        self.reload().await?;
        Ok(record)
    }

    /// Deletes a trust domain's bundle.
    pub async fn delete(&self, td: &TrustDomain) -> Result<(), FederationError> {
        self.store.delete_bundle(td).await?;
        self.reload().await?;
        Ok(())
    }

    /// Fetches the bundle of configured trust domain `td` from its endpoint once and
    /// stores it. Returns when to fetch next (the bundle's refresh hint, bounded).
    pub async fn fetch(&self, td: &TrustDomain) -> Result<Duration, FederationError> {
        let peer = self
            .configured
            .iter()
            .find(|p| &p.name == td)
            .ok_or_else(|| FederationError::NotConfigured(td.clone()))?;
        let url = peer
            .bundle_endpoint_url
            .clone()
            .ok_or_else(|| FederationError::NotConfigured(td.clone()))?;
        let result = self.fetch_from(peer, &url).await;
        metrics::counter!(
            "aims_bundle_fetches_total",
            "trust_domain" => td.as_str().to_owned(),
            "result" => if result.is_ok() { "ok" } else { "error" }
        )
        .increment(1);
        let body = result?;
        match self.set(td, &body, Some(url)).await {
            Ok(r) => Ok(bounded(r.refresh_hint)),
            // A bundle older than the stored one: keep ours, try again later.
            Err(FederationError::Store(StoreError::Conflict(reason))) => {
                tracing::warn!(trust_domain = %td, %reason, "fetched bundle is older than the stored one; kept the stored one");
                Ok(DEFAULT_REFRESH)
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch_from(
        &self,
        peer: &FederatedTrustDomain,
        url: &str,
    ) -> Result<Vec<u8>, FederationError> {
        let fail = |reason: String| FederationError::Fetch {
            url: url.to_owned(),
            reason,
        };
        let builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none());
        let client = match peer.profile {
            EndpointProfile::HttpsWeb => builder.build(),
            EndpointProfile::HttpsSpiffe => {
                let current = self
                    .get(&peer.name)
                    .ok_or_else(|| FederationError::NoBootstrapBundle(peer.name.clone()))?;
                let id = peer
                    .endpoint_spiffe_id
                    .clone()
                    .ok_or_else(|| fail("no endpoint_spiffe_id configured".into()))?;
                let trust = Arc::new(TrustStore::from_bundles([(*current).clone()]));
                let tls = aims_pki::tls::client_config_with_clock(
                    None,
                    trust,
                    Authorizer::Exact(vec![id]),
                    Arc::clone(&self.clock),
                )
                .map_err(|e| fail(e.to_string()))?;
                builder.tls_backend_preconfigured(tls).build()
            }
        }
        .map_err(|e| fail(format!("HTTP client: {e}")))?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| fail(error_chain(&e)))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(fail(format!("HTTP status {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(error_chain(&e)))? {
            if body.len() + chunk.len() > MAX_BUNDLE_BYTES {
                return Err(fail(format!("bundle larger than {MAX_BUNDLE_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn bounded(hint: Option<u64>) -> Duration {
    hint.map_or(DEFAULT_REFRESH, Duration::from_secs)
        .clamp(MIN_REFRESH, MAX_REFRESH)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
