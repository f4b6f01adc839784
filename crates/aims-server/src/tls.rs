//! This server's own X509-SVID (`spiffe://<trust domain>/aims/server`) and the rustls
//! configurations of its TLS listeners.
//!
//! * The admin mTLS listener requires a client SVID of this trust domain (the admin
//!   check itself, an entry with `admin = true`, is done per request).
//! * The `https_spiffe` bundle endpoint presents the SVID and does not require a client
//!   certificate.
//! * The OAuth mTLS listener (`[oauth] mtls_listen`) presents the SVID and requests a
//!   client certificate without verifying its chain
//!   ([`aims_pki::tls::DeferredClientCertVerifier`]): the client authentication method
//!   verifies it per request (`aims_oauth::authn`).
//!
//! The SVID is issued by the current CA, renewed at half of its lifetime or as soon as
//! another CA becomes current. Client certificates are verified against a trust store
//! kept in step with this trust domain's bundle and the federated bundles.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aims_core::{Clock, SpiffeId, TrustDomain};
use aims_pki::tls::{Authorizer, ClientAuth};
use aims_pki::{TrustStore, X509Svid};
use rustls::ServerConfig;

use crate::ServerError;
use crate::state::AppState;

/// The path of the server's own SPIFFE ID.
pub const SERVER_ID_PATH: &str = "/aims/server";

/// Lifetime of the server's own X509-SVID.
pub const SERVER_SVID_TTL: Duration = Duration::from_secs(3600);

struct Held {
    ca_kid: String,
    refresh_at: i64,
    svid: X509Svid,
    admin: Arc<ServerConfig>,
    bundle: Arc<ServerConfig>,
    oauth_mtls: Arc<ServerConfig>,
}

/// The server's TLS identity.
pub struct TlsIdentity {
    id: SpiffeId,
    trust_domain: TrustDomain,
    federated: Vec<TrustDomain>,
    trust: Arc<TrustStore>,
    clock: Arc<dyn Clock>,
    held: RwLock<Option<Held>>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// The identity of a server of `trust_domain` federating with `federated`.
    pub fn new(
        trust_domain: TrustDomain,
        federated: Vec<TrustDomain>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ServerError> {
        let id = SpiffeId::from_path(&trust_domain, SERVER_ID_PATH)
            .map_err(|e| ServerError::Workload(format!("server SPIFFE ID: {e}")))?;
        Ok(Self {
            id,
            trust_domain,
            federated,
            trust: Arc::new(TrustStore::new()),
            clock,
            held: RwLock::new(None),
        })
    }

    /// `spiffe://<trust domain>/aims/server`.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.id
    }

    /// The trust store client certificates are verified with.
    pub fn trust_store(&self) -> &Arc<TrustStore> {
        &self.trust
    }

    /// The configuration of the admin mTLS listener, once an SVID was issued.
    pub fn admin_config(&self) -> Option<Arc<ServerConfig>> {
        self.read(|h| Arc::clone(&h.admin))
    }

    /// The configuration of the bundle endpoint listener.
    pub fn bundle_config(&self) -> Option<Arc<ServerConfig>> {
        self.read(|h| Arc::clone(&h.bundle))
    }

    /// The configuration of the OAuth mTLS listener: any client certificate is
    /// accepted at the TLS layer (possession of its key proven), none is trusted.
    pub fn oauth_mtls_config(&self) -> Option<Arc<ServerConfig>> {
        self.read(|h| Arc::clone(&h.oauth_mtls))
    }

    /// The current server SVID.
    pub fn svid(&self) -> Option<X509Svid> {
        self.read(|h| h.svid.clone())
    }

    fn read<T>(&self, f: impl FnOnce(&Held) -> T) -> Option<T> {
        self.held
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(f)
    }

    /// Syncs the trust store with the current bundles and renews the SVID when due.
    /// Returns whether a new SVID was issued.
    pub fn refresh(&self, state: &AppState) -> Result<bool, ServerError> {
        let Some(keys) = state.keys.current() else {
            return Ok(false);
        };
        let mut known = vec![self.trust_domain.clone()];
        self.trust.insert((**keys.bundle()).clone());
        for b in state.federation.bundles() {
            known.push(b.trust_domain().clone());
            self.trust.insert((*b).clone());
        }
        for td in self.trust.trust_domains() {
            if !known.contains(&td) {
                self.trust.remove(&td);
            }
        }

        let Some(ca) = keys.ca() else {
            return Ok(false);
        };
        let now = self.clock.now();
        let due = self
            .read(|h| h.ca_kid != ca.info.kid || now >= h.refresh_at)
            .unwrap_or(true);
        if !due {
            return Ok(false);
        }
        let svid = ca.ca.issue_x509_svid(&self.id, SERVER_SVID_TTL, &[])?;
        let refresh_at = now + (svid.not_after() - now) / 2;
        let mut admin = aims_pki::tls::server_config_with_clock(
            &svid,
            Arc::clone(&self.trust),
            Authorizer::AnyInTrustDomains(vec![self.trust_domain.clone()]),
            ClientAuth::Required,
            Arc::clone(&self.clock),
        )?;
        // No session resumption on the admin listener: a resumed session skips the
        // client certificate checks, so an admin SVID that expired (or whose CA left the
        // bundle) could go on being accepted. Every connection does a full handshake.
        admin.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        admin.send_tls13_tickets = 0;
        let mut tds = vec![self.trust_domain.clone()];
        tds.extend(self.federated.iter().cloned());
        let bundle = aims_pki::tls::server_config_with_clock(
            &svid,
            Arc::clone(&self.trust),
            Authorizer::AnyInTrustDomains(tds),
            ClientAuth::Optional,
            Arc::clone(&self.clock),
        )?;
        let oauth_mtls =
            aims_pki::tls::server_config_deferred_client_auth(&svid, Arc::clone(&self.clock))?;
        *self.held.write().unwrap_or_else(PoisonError::into_inner) = Some(Held {
            ca_kid: ca.info.kid.clone(),
            refresh_at,
            svid,
            admin: Arc::new(admin),
            bundle: Arc::new(bundle),
            oauth_mtls: Arc::new(oauth_mtls),
        });
        tracing::debug!(id = %self.id, "server X509-SVID issued");
        Ok(true)
    }
}
