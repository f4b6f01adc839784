//! The mTLS listener: serves an axum `Router` over TLS presenting the server's own
//! X509-SVID, read from a [`ServerIdentity`] at every handshake (so a rotated SVID is
//! served without restart). A client certificate is optional at the TLS layer and fully
//! verified when sent (aims-pki's SPIFFE verifier, trust store read live); the verified
//! peer becomes a [`PeerIdentity`] in the request extensions, which
//! [`crate::Mechanism::Mtls`] reads.

use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aims_core::{Clock, SpiffeId};
use aims_pki::tls::{Authorizer, ClientAuth};
use aims_pki::{TlsError, TrustStore, X509Svid};
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::PeerIdentity;

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The server's current X509-SVID; replace it with [`ServerIdentity::update`].
#[derive(Debug)]
pub struct ServerIdentity {
    current: RwLock<(SpiffeId, Arc<CertifiedKey>)>,
}

impl ServerIdentity {
    /// An identity presenting `svid`.
    pub fn new(svid: &X509Svid) -> Result<Self, TlsError> {
        let key = aims_pki::tls::certified_key(svid)?;
        Ok(Self {
            current: RwLock::new((svid.spiffe_id().clone(), key)),
        })
    }

    /// Presents `svid` from the next handshake on.
    pub fn update(&self, svid: &X509Svid) -> Result<(), TlsError> {
        let key = aims_pki::tls::certified_key(svid)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            (svid.spiffe_id().clone(), key);
        Ok(())
    }

    /// The SPIFFE ID presented.
    pub fn spiffe_id(&self) -> SpiffeId {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    fn certified_key(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }
}

#[derive(Debug)]
struct Resolver(Arc<ServerIdentity>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.certified_key())
    }
}

/// A server configuration presenting `identity`'s current SVID, with optional client
/// SVIDs verified against `trust` (read live) and `authorizer`.
pub fn server_config(
    identity: Arc<ServerIdentity>,
    trust: Arc<TrustStore>,
    authorizer: Authorizer,
    clock: Arc<dyn Clock>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = aims_pki::tls::server_config_with_resolver(
        Arc::new(Resolver(identity)),
        trust,
        authorizer,
        ClientAuth::Optional,
        clock,
    )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The identity of a peer whose chain the verifier accepted.
fn peer_identity(certs: &[CertificateDer<'_>]) -> Option<PeerIdentity> {
    let spiffe_id = aims_pki::tls::peer_spiffe_id(Some(certs)).ok()?;
    let leaf = certs.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    Some(PeerIdentity {
        spiffe_id,
        spki_sha256: aims_crypto::sha256_b64url(cert.tbs_certificate.subject_pki.raw),
        cert_sha256: aims_crypto::sha256_b64url(leaf.as_ref()),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then waits at most
/// [`DRAIN_TIMEOUT`] for open connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(config);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (tcp, peer_addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(peer = %peer_addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(peer = %peer_addr, "TLS handshake timed out");
                    return;
                }
            };
            let peer = tls.get_ref().1.peer_certificates().and_then(peer_identity);
            let app = match peer {
                Some(p) => router.layer(Extension(p)),
                None => router,
            };
            let conn = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout");
    }
}
