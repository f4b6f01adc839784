//! TLS with the agent's X509-SVID, following rotation: every handshake presents the SVID
//! held at that moment, so a rotated SVID is used without rebuilding anything.

use std::sync::{Arc, Mutex, PoisonError};

use aims_pki::X509Svid;
use aims_pki::tls::{Authorizer, ClientAuth};
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::AgentError;
use crate::source::WorkloadSource;

/// Resolves the current X509-SVID into a rustls key, converting once per SVID.
pub(crate) struct SvidResolver {
    source: WorkloadSource,
    cached: Mutex<Option<(Arc<X509Svid>, Arc<CertifiedKey>)>>,
}

impl std::fmt::Debug for SvidResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SvidResolver").finish_non_exhaustive()
    }
}

impl SvidResolver {
    pub(crate) fn new(source: WorkloadSource) -> Self {
        Self {
            source,
            cached: Mutex::new(None),
        }
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        let svid = self.source.x509_svid()?;
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((held, key)) = cached.as_ref()
            && Arc::ptr_eq(held, &svid)
        {
            return Some(key.clone());
        }
        let key = aims_pki::tls::certified_key(&svid)
            .map_err(|e| tracing::warn!(error = %e, "cannot present the X509-SVID"))
            .ok()?;
        *cached = Some((svid, key.clone()));
        Some(key)
    }
}

impl ResolvesClientCert for SvidResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ResolvesServerCert for SvidResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

impl WorkloadSource {
    /// A rustls server configuration presenting this agent's X509-SVID (the current one
    /// at each handshake) and verifying client SVIDs against the agent's bundles with
    /// `authorizer`; `client_auth` says whether a client certificate is required.
    /// Serve it with `tokio-rustls` (or `aims-guard`'s TLS listener).
    pub fn tls_server_config(
        &self,
        authorizer: Authorizer,
        client_auth: ClientAuth,
    ) -> Result<rustls::ServerConfig, AgentError> {
        let mut config = aims_pki::tls::server_config_with_resolver(
            Arc::new(SvidResolver::new(self.clone())),
            self.trust_store(),
            authorizer,
            client_auth,
            self.clock().clone(),
        )
        .map_err(|e| AgentError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}
