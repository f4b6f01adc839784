//! [`ServerIdentity`]: the Workload API's [`IdentityProvider`] over the entry cache, the
//! key manager and the federated bundles.
//!
//! Every answer comes from in-memory snapshots, so the Workload API never waits on the
//! database. SVID and token lifetimes are the entry's, clamped to the signing key's own
//! validity (so a key is never retired while something it signed is still valid).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aims_core::{Clock, RegistrationEntry, SelectorSet, SpiffeId, WorkloadId};
use aims_crypto::Jwk;
use aims_jose::Audience;
use aims_jose::jwt_svid::{self, JwtSvidClaims};
use aims_jose::wit::{self, WitClaims};
use aims_pki::{SpiffeBundle, X509Svid};
use aims_workload::{IdentityProvider, ProviderError};
use tokio::sync::watch;

use crate::entries::EntryCache;
use crate::federation::Federation;
use crate::keys::{KeyManager, KeySet};
use crate::notify::Changes;

/// The server's identity provider.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    keys: Arc<KeyManager>,
    entries: Arc<EntryCache>,
    federation: Arc<Federation>,
    clock: Arc<dyn Clock>,
    changes: Changes,
    node_id: Option<SpiffeId>,
}

/// Why nothing is signed with `which`: no current key, or only one past its end.
fn key_gone(which: &str) -> ProviderError {
    ProviderError::Unavailable(format!(
        "no current {which} within its validity (is the database reachable? the key schedule runs at every sync)"
    ))
}

impl ServerIdentity {
    /// A provider over the server's state.
    pub fn new(
        keys: Arc<KeyManager>,
        entries: Arc<EntryCache>,
        federation: Arc<Federation>,
        clock: Arc<dyn Clock>,
        changes: Changes,
    ) -> Self {
        Self {
            keys,
            entries,
            federation,
            clock,
            changes,
            node_id: None,
        }
    }

    /// This node's SPIFFE ID (`[server] node_id`): entries with a `parent_id` are then
    /// served only if it is this ID; entries without a parent always. Without a node ID
    /// every entry is served (`parent_id` is only informational), as before node IDs.
    #[must_use]
    pub fn node_id(mut self, id: Option<SpiffeId>) -> Self {
        self.node_id = id;
        self
    }

    fn keyset(&self) -> Result<Arc<KeySet>, ProviderError> {
        self.keys
            .current()
            .ok_or_else(|| ProviderError::Unavailable("signing keys are not loaded yet".into()))
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Counts one issuance and its latency.
fn observe<T>(
    kind: &'static str,
    started: Instant,
    r: Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    match &r {
        Ok(_) => metrics::counter!("aims_svids_issued_total", "type" => kind).increment(1),
        Err(e) => {
            tracing::warn!(svid = kind, error = %e, "SVID issuance failed");
            metrics::counter!("aims_svid_issue_errors_total", "type" => kind).increment(1);
        }
    }
    metrics::histogram!("aims_svid_issue_duration_seconds", "type" => kind)
        .record(started.elapsed().as_secs_f64());
    r
}

impl IdentityProvider for ServerIdentity {
    fn entries_for(
        &self,
        selectors: &SelectorSet,
    ) -> Result<Vec<RegistrationEntry>, ProviderError> {
        let mut entries = self.entries.snapshot().matching(selectors);
        if let Some(node) = &self.node_id {
            entries.retain(|e| e.parent_id.as_ref().is_none_or(|parent| parent == node));
        }
        Ok(entries)
    }

    fn issue_x509_svid(&self, entry: &RegistrationEntry) -> Result<X509Svid, ProviderError> {
        let started = Instant::now();
        let r = (|| {
            let set = self.keyset()?;
            let now = self.clock.now();
            let ca = set
                .ca()
                .filter(|c| c.info.signs_at(now))
                .ok_or_else(|| key_gone("CA"))?;
            Ok(ca.ca.issue_x509_svid(
                &entry.spiffe_id,
                Duration::from_secs(u64::from(entry.x509_ttl)),
                &entry.dns_names,
            )?)
        })();
        observe("x509", started, r)
    }

    fn bundle(&self) -> Result<Arc<SpiffeBundle>, ProviderError> {
        Ok(Arc::clone(self.keyset()?.bundle()))
    }

    fn federated_bundles(&self) -> Result<Vec<Arc<SpiffeBundle>>, ProviderError> {
        Ok(self.federation.bundles())
    }

    fn sign_jwt_svid(
        &self,
        id: &SpiffeId,
        audience: &[String],
        ttl: Duration,
    ) -> Result<String, ProviderError> {
        let started = Instant::now();
        let r = (|| {
            let set = self.keyset()?;
            let now = self.clock.now();
            let key = set
                .jwt()
                .filter(|k| k.info.signs_at(now))
                .ok_or_else(|| key_gone("JWT-SVID key"))?;
            let aud = match audience {
                [one] => Audience::One(one.clone()),
                many => Audience::Many(many.to_vec()),
            };
            let exp = now.saturating_add(secs(ttl)).min(key.info.not_after);
            let claims = JwtSvidClaims {
                sub: id.clone(),
                aud,
                exp,
                iat: Some(now),
                nbf: None,
                jti: None,
                extra: serde_json::Map::new(),
            };
            Ok(jwt_svid::create(&claims, &*key.key)?)
        })();
        observe("jwt", started, r)
    }

    fn supports_wit_svid(&self) -> bool {
        true
    }

    fn sign_wit_svid(
        &self,
        id: &SpiffeId,
        workload_key: &Jwk,
        ttl: Duration,
    ) -> Result<String, ProviderError> {
        let started = Instant::now();
        let r = (|| {
            let set = self.keyset()?;
            let now = self.clock.now();
            let key = set
                .wit()
                .filter(|k| k.info.signs_at(now))
                .ok_or_else(|| key_gone("WIT-SVID key"))?;
            let lifetime = secs(ttl).min(key.info.not_after.saturating_sub(now)).max(1);
            let claims = WitClaims::new(WorkloadId::from(id.clone()), workload_key, now, lifetime)?
                .issuer(id.trust_domain().id().as_str());
            Ok(wit::create(&claims, &*key.key)?)
        })();
        observe("wit", started, r)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
