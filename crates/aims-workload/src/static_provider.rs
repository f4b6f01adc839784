//! [`StaticProvider`]: an in-memory [`IdentityProvider`] for tests, examples and
//! benchmarks.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aims_core::{Clock, RegistrationEntry, SelectorSet, SpiffeId, TrustDomain, WorkloadId};
use aims_crypto::{Jwk, Signer as _, SigningKey};
use aims_jose::Audience;
use aims_jose::jwt_svid::{self, JwtSvidClaims};
use aims_jose::wit::{self, WitClaims};
use aims_pki::{CertificateAuthority, SpiffeBundle, X509Svid};
use serde_json::Map;
use tokio::sync::watch;

use crate::provider::{IdentityProvider, ProviderError};

struct State {
    ca: Arc<CertificateAuthority>,
    jwt_key: Arc<SigningKey>,
    wit_key: Option<Arc<SigningKey>>,
    entries: Vec<RegistrationEntry>,
    federated: Vec<Arc<SpiffeBundle>>,
    bundle: Arc<SpiffeBundle>,
    sequence: u64,
}

/// Entries, a CA, a JWT-SVID key and optionally a WIT-SVID key, all in memory.
///
/// Every setter notifies [`IdentityProvider::subscribe`] receivers and bumps the own
/// bundle's `spiffe_sequence`. `Debug` shows no key material.
pub struct StaticProvider {
    trust_domain: TrustDomain,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    changes: watch::Sender<u64>,
}

impl std::fmt::Debug for StaticProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.read();
        f.debug_struct("StaticProvider")
            .field("trust_domain", &self.trust_domain)
            .field("entries", &s.entries.len())
            .field("federated", &s.federated.len())
            .field("wit_svid", &s.wit_key.is_some())
            .field("sequence", &s.sequence)
            .finish_non_exhaustive()
    }
}

fn build_bundle(
    ca: &CertificateAuthority,
    jwt_key: &SigningKey,
    wit_key: Option<&SigningKey>,
    sequence: u64,
) -> Result<SpiffeBundle, ProviderError> {
    let mut b = ca.bundle()?;
    b.add_jwt_authority(jwt_key.public_jwk().clone())?;
    if let Some(w) = wit_key {
        b.add_wit_authority(w.public_jwk().clone())?;
    }
    b.set_sequence(Some(sequence));
    Ok(b)
}

impl StaticProvider {
    /// A provider for the CA's trust domain, signing JWT-SVIDs with `jwt_key` (ES256 or
    /// ES384; its `kid` is published in the bundle), without entries.
    pub fn new(
        ca: CertificateAuthority,
        jwt_key: SigningKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ProviderError> {
        let bundle = build_bundle(&ca, &jwt_key, None, 1)?;
        Ok(Self {
            trust_domain: ca.trust_domain().clone(),
            clock,
            state: RwLock::new(State {
                ca: Arc::new(ca),
                jwt_key: Arc::new(jwt_key),
                wit_key: None,
                entries: Vec::new(),
                federated: Vec::new(),
                bundle: Arc::new(bundle),
                sequence: 1,
            }),
            changes: watch::channel(0).0,
        })
    }

    /// Enables the WIT-SVID profile, signing with `key` (ES256 or ES384, a `kid` distinct
    /// from the JWT-SVID key's).
    pub fn with_wit_key(self, key: SigningKey) -> Result<Self, ProviderError> {
        self.update(|s| {
            s.wit_key = Some(Arc::new(key));
            Ok(())
        })?;
        Ok(self)
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// Replaces every entry.
    pub fn set_entries(&self, entries: Vec<RegistrationEntry>) {
        self.update_infallible(|s| s.entries = entries);
    }

    /// Adds an entry, replacing one with the same `id`.
    pub fn upsert_entry(&self, entry: RegistrationEntry) {
        self.update_infallible(|s| {
            s.entries.retain(|e| e.id != entry.id);
            s.entries.push(entry);
        });
    }

    /// Removes the entry with this `id`; returns whether there was one.
    pub fn remove_entry(&self, id: &str) -> bool {
        let mut removed = false;
        self.update_infallible(|s| {
            let before = s.entries.len();
            s.entries.retain(|e| e.id != id);
            removed = s.entries.len() != before;
        });
        removed
    }

    /// Replaces the foreign trust domains' bundles.
    pub fn set_federated_bundles(&self, bundles: Vec<SpiffeBundle>) {
        self.update_infallible(|s| s.federated = bundles.into_iter().map(Arc::new).collect());
    }

    /// Replaces the JWT-SVID signing key (the old one leaves the bundle).
    pub fn set_jwt_key(&self, key: SigningKey) -> Result<(), ProviderError> {
        self.update(|s| {
            s.jwt_key = Arc::new(key);
            Ok(())
        })
    }

    /// Replaces the CA (its authority replaces the old one in the bundle).
    pub fn set_ca(&self, ca: CertificateAuthority) -> Result<(), ProviderError> {
        if ca.trust_domain() != &self.trust_domain {
            return Err(ProviderError::Failed(
                "the new CA is for another trust domain".into(),
            ));
        }
        self.update(|s| {
            s.ca = Arc::new(ca);
            Ok(())
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn update_infallible(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.state.write().unwrap_or_else(PoisonError::into_inner);
        f(&mut s);
        drop(s);
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Applies `f` and rebuilds the bundle; on error nothing changes.
    fn update(
        &self,
        f: impl FnOnce(&mut State) -> Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        let mut s = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let (ca, jwt, wit) = (Arc::clone(&s.ca), Arc::clone(&s.jwt_key), s.wit_key.clone());
        let result = f(&mut s).and_then(|()| {
            let sequence = s.sequence + 1;
            let bundle = build_bundle(&s.ca, &s.jwt_key, s.wit_key.as_deref(), sequence)?;
            s.bundle = Arc::new(bundle);
            s.sequence = sequence;
            Ok(())
        });
        if result.is_err() {
            (s.ca, s.jwt_key, s.wit_key) = (ca, jwt, wit);
            return result;
        }
        drop(s);
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
        Ok(())
    }
}

fn secs(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)
}

impl IdentityProvider for StaticProvider {
    fn entries_for(
        &self,
        selectors: &SelectorSet,
    ) -> Result<Vec<RegistrationEntry>, ProviderError> {
        Ok(self
            .read()
            .entries
            .iter()
            .filter(|e| e.matches(selectors))
            .cloned()
            .collect())
    }

    fn issue_x509_svid(&self, entry: &RegistrationEntry) -> Result<X509Svid, ProviderError> {
        let ca = Arc::clone(&self.read().ca);
        Ok(ca.issue_x509_svid(
            &entry.spiffe_id,
            Duration::from_secs(u64::from(entry.x509_ttl)),
            &entry.dns_names,
        )?)
    }

    fn bundle(&self) -> Result<Arc<SpiffeBundle>, ProviderError> {
        Ok(Arc::clone(&self.read().bundle))
    }

    fn federated_bundles(&self) -> Result<Vec<Arc<SpiffeBundle>>, ProviderError> {
        Ok(self.read().federated.clone())
    }

    fn sign_jwt_svid(
        &self,
        id: &SpiffeId,
        audience: &[String],
        ttl: Duration,
    ) -> Result<String, ProviderError> {
        let key = Arc::clone(&self.read().jwt_key);
        let now = self.clock.now();
        let aud = match audience {
            [one] => Audience::One(one.clone()),
            many => Audience::Many(many.to_vec()),
        };
        let claims = JwtSvidClaims {
            sub: id.clone(),
            aud,
            exp: now.saturating_add(secs(ttl)),
            iat: Some(now),
            nbf: None,
            jti: None,
            extra: Map::new(),
        };
        Ok(jwt_svid::create(&claims, &*key)?)
    }

    fn supports_wit_svid(&self) -> bool {
        self.read().wit_key.is_some()
    }

    fn sign_wit_svid(
        &self,
        id: &SpiffeId,
        workload_key: &Jwk,
        ttl: Duration,
    ) -> Result<String, ProviderError> {
        let key = self
            .read()
            .wit_key
            .clone()
            .ok_or(ProviderError::Unsupported)?;
        let claims = WitClaims::new(
            WorkloadId::from(id.clone()),
            workload_key,
            self.clock.now(),
            secs(ttl),
        )?;
        Ok(wit::create(&claims, &*key)?)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
