//! The interface between the Workload API and the rest of AIMS.
//!
//! The Workload API does not know where entries, keys and bundles live: an
//! [`IdentityProvider`] answers its questions. The server (aims-server) implements it
//! over the store, the CA and the signing key rings; [`crate::StaticProvider`] is an
//! in-memory implementation for tests and benchmarks.
//!
//! The methods are synchronous; the Workload API always calls them on a blocking
//! thread (`tokio::task::spawn_blocking`), so they may block on a database or a KMS.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aims_core::{RegistrationEntry, SelectorSet, SpiffeId};
use aims_crypto::Jwk;
use aims_pki::{SpiffeBundle, X509Svid};
use tokio::sync::watch;

/// Why the provider could not answer. The Workload API answers `Unavailable` (clients
/// retry with back-off) except for [`ProviderError::Unsupported`] (`Unimplemented`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider does not implement this profile (WIT-SVID).
    #[error("not supported by this identity provider")]
    Unsupported,
    /// A dependency (store, KMS, ...) is temporarily unavailable.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// Issuing or signing failed.
    #[error("identity provider failed: {0}")]
    Failed(String),
}

macro_rules! failed_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ProviderError {
            fn from(e: $t) -> Self {
                ProviderError::Failed(e.to_string())
            }
        }
    )*};
}
failed_from!(
    aims_pki::CaError,
    aims_pki::BundleError,
    aims_jose::JoseError,
    aims_crypto::CryptoError
);

/// What the Workload API needs from AIMS.
///
/// Contract:
///
/// * [`bundle`](Self::bundle) is the server's own trust domain; every SVID it issues or
///   signs is for a SPIFFE ID of that trust domain (the Workload API skips entries of
///   other trust domains).
/// * [`subscribe`](Self::subscribe) must change (any new value) whenever the result of
///   another method may have changed: entries, bundles, CA or signing keys. Open
///   streams re-evaluate on every change and push a message only if their content
///   differs.
pub trait IdentityProvider: Send + Sync + fmt::Debug {
    /// The registration entries whose selectors are all in `selectors`
    /// ([`RegistrationEntry::matches`]), in any order.
    fn entries_for(&self, selectors: &SelectorSet)
    -> Result<Vec<RegistrationEntry>, ProviderError>;

    /// A new X509-SVID for `entry` (its SPIFFE ID, `x509_ttl` and `dns_names`), with a
    /// fresh key pair on every call.
    fn issue_x509_svid(&self, entry: &RegistrationEntry) -> Result<X509Svid, ProviderError>;

    /// The server's own trust domain bundle: X.509 authorities, `jwt-svid` and
    /// `wit-svid` keys.
    fn bundle(&self) -> Result<Arc<SpiffeBundle>, ProviderError>;

    /// The bundles of every foreign trust domain the server knows. The Workload API hands
    /// each workload those its entries federate with (`federates_with`), and validates
    /// JWT-SVIDs against all of them.
    fn federated_bundles(&self) -> Result<Vec<Arc<SpiffeBundle>>, ProviderError>;

    /// Signs a JWT-SVID for `id` with `audience` (at least one value) valid for `ttl`.
    fn sign_jwt_svid(
        &self,
        id: &SpiffeId,
        audience: &[String],
        ttl: Duration,
    ) -> Result<String, ProviderError>;

    /// Whether the WIT-SVID profile is served (default: no, and both WIT-SVID RPCs answer
    /// `Unimplemented`).
    fn supports_wit_svid(&self) -> bool {
        false
    }

    /// Signs a WIT-SVID for `id` binding `workload_key` (a public JWK with `alg`; the
    /// Workload API generated the key pair) valid for `ttl` from now.
    fn sign_wit_svid(
        &self,
        id: &SpiffeId,
        workload_key: &Jwk,
        ttl: Duration,
    ) -> Result<String, ProviderError> {
        let _ = (id, workload_key, ttl);
        Err(ProviderError::Unsupported)
    }

    /// A receiver that changes whenever entries, bundles or keys change.
    fn subscribe(&self) -> watch::Receiver<u64>;
}

impl<P: IdentityProvider + ?Sized> IdentityProvider for Arc<P> {
    fn entries_for(
        &self,
        selectors: &SelectorSet,
    ) -> Result<Vec<RegistrationEntry>, ProviderError> {
        (**self).entries_for(selectors)
    }
    fn issue_x509_svid(&self, entry: &RegistrationEntry) -> Result<X509Svid, ProviderError> {
        (**self).issue_x509_svid(entry)
    }
    fn bundle(&self) -> Result<Arc<SpiffeBundle>, ProviderError> {
        (**self).bundle()
    }
    fn federated_bundles(&self) -> Result<Vec<Arc<SpiffeBundle>>, ProviderError> {
        (**self).federated_bundles()
    }
    fn sign_jwt_svid(
        &self,
        id: &SpiffeId,
        audience: &[String],
        ttl: Duration,
    ) -> Result<String, ProviderError> {
        (**self).sign_jwt_svid(id, audience, ttl)
    }
    fn supports_wit_svid(&self) -> bool {
        (**self).supports_wit_svid()
    }
    fn sign_wit_svid(
        &self,
        id: &SpiffeId,
        workload_key: &Jwk,
        ttl: Duration,
    ) -> Result<String, ProviderError> {
        (**self).sign_wit_svid(id, workload_key, ttl)
    }
    fn subscribe(&self) -> watch::Receiver<u64> {
        (**self).subscribe()
    }
}
