//! Listeners: Unix sockets with owner-only modes, and a TLS accept loop that puts what
//! it knows of the client certificate into request extensions: the peer's SPIFFE ID
//! ([`PeerId`]) when the configuration's verifier checked the chain as an SVID, or the
//! unverified chain ([`ClientCertificate`]) on a listener with deferred client
//! authentication.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::ServerError;
use crate::admin::PeerId;

/// The longest Unix socket path the kernel accepts (`sun_path` is 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for open connections to finish.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// How the HTTP connections of every TCP listener are served: HTTP/1.1 only (no listener
/// offers h2 by ALPN, and refusing an h2 preface keeps every connection under the header
/// read timeout, which HTTP/2 connections would escape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// A client must send a request's headers within this time, counted from when the
    /// server starts waiting for them, so an idle keep-alive connection also closes after
    /// it (HTTP/1.1; slow or silent clients cannot hold connections forever).
    pub header_read_timeout: Duration,
    /// A request, from its headers to the answer (reading its body included), must be
    /// done within this time: 408 otherwise, so a body sent a byte at a time cannot hold
    /// a connection either.
    pub request_timeout: Duration,
    /// The most connections a listener keeps open; further clients wait in the kernel's
    /// accept queue. Keeps enough file descriptors for the other listeners (the admin
    /// socket among them) when many clients connect.
    pub max_connections: usize,
}

impl ConnectionSettings {
    /// `router` with the request timeout.
    fn timed(self, router: Router) -> Router {
        router.layer(crate::deadline::DeadlineLayer::new(self.request_timeout))
    }

    fn builder(self) -> Builder<TokioExecutor> {
        let mut b = Builder::new(TokioExecutor::new()).http1_only();
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        b
    }
}

/// Serves `router` over plain HTTP on `listener` until `shutdown` turns true, then waits
/// (at most [`DRAIN_TIMEOUT`]) for open connections.
pub async fn serve_tcp(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    mut shutdown: watch::Receiver<bool>,
    name: &'static str,
) {
    let graceful = GracefulShutdown::new();
    let builder = settings.builder();
    let router = settings.timed(router);
    let slots = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
    while let Some((slot, (tcp, peer_addr))) =
        accept_slot(&slots, &listener, &mut shutdown, name).await
    {
        let conn = builder
            .serve_connection(
                TokioIo::new(tcp),
                TowerToHyperService::new(with_peer_addr(router.clone(), peer_addr)),
            )
            .into_owned();
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(listener = name, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    drain(graceful, name).await;
}

/// `router` with the client's address in every request's extensions, as axum's
/// [`ConnectInfo`] (what per-address limits key on).
fn with_peer_addr(
    router: Router,
    peer: SocketAddr,
) -> impl tower::Service<
    axum::http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send {
    use tower::ServiceExt as _;
    router.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    })
}

/// A connection slot, then the next connection ([`accept`]); `None` once `shutdown`
/// turns true. While every slot is taken nothing is accepted.
async fn accept_slot(
    slots: &Arc<tokio::sync::Semaphore>,
    listener: &TcpListener,
    shutdown: &mut watch::Receiver<bool>,
    name: &'static str,
) -> Option<(tokio::sync::OwnedSemaphorePermit, (TcpStream, SocketAddr))> {
    let slot = tokio::select! {
        s = Arc::clone(slots).acquire_owned() => s.ok()?,
        () = stopped(shutdown) => return None,
    };
    let conn = accept(listener, shutdown, name).await?;
    Some((slot, conn))
}

/// The next connection (with `TCP_NODELAY`: responses are written whole, so there is no
/// reason to hold their last segment back), or `None` once `shutdown` turns true. A
/// failed accept (EMFILE and the like) is logged and retried a moment later.
async fn accept(
    listener: &TcpListener,
    shutdown: &mut watch::Receiver<bool>,
    name: &'static str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stopped(shutdown) => return None,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                return Some((tcp, peer));
            }
            Err(e) => {
                tracing::warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn drain(graceful: GracefulShutdown, name: &'static str) {
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "connections still open after the drain timeout"
        );
    }
}

/// What a TLS listener tells its handlers about the client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerInfo {
    /// The SPIFFE ID, as [`PeerId`]. Only for configurations whose verifier validated
    /// the chain as an X509-SVID (the leaf's URI SAN is read without further checks).
    VerifiedSpiffeId,
    /// The presented chain, unverified, as [`ClientCertificate`] (configurations with
    /// [`aims_pki::tls::DeferredClientCertVerifier`]). Never a [`PeerId`].
    UnverifiedChain,
}

/// The client certificate chain (leaf first) of a connection on a listener with deferred
/// client authentication: the handshake proved possession of the leaf's key; nothing
/// else about it is verified.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<Vec<CertificateDer<'static>>>);

/// Refuses paths the kernel would truncate.
pub fn check_socket_path(path: &Path) -> Result<(), ServerError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(ServerError::SocketPathTooLong {
            path: path.to_path_buf(),
            len,
            max: MAX_SOCKET_PATH,
        });
    }
    Ok(())
}

/// Removes a stale socket at `path` (left by a crash), refusing when a server still
/// answers there or when the path is not a socket.
pub fn clear_stale_socket(path: &Path) -> Result<(), ServerError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServerError::SocketInUse {
                    path: path.to_path_buf(),
                });
            }
            std::fs::remove_file(path).map_err(ServerError::io("remove the stale socket", path))
        }
        Ok(_) => Err(ServerError::Io {
            what: "use as a socket",
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket; remove it or choose another path",
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ServerError::Io {
            what: "inspect",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Binds a Unix socket with `mode`. The socket is bound under a temporary name, given its
/// mode, then renamed into place, so it is never reachable at `path` with a wider mode.
pub fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, ServerError> {
    check_socket_path(path)?;
    clear_stale_socket(path)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    check_socket_path(&tmp)?;
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(ServerError::io("bind", &tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(ServerError::io("set the mode of", &tmp))?;
    std::fs::rename(&tmp, path).map_err(ServerError::io("rename the socket to", path))?;
    Ok(listener)
}

/// Resolves once `rx` holds `true` (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Serves `router` over TLS on `listener` until `shutdown` turns true, then waits (at
/// most [`DRAIN_TIMEOUT`]) for open connections. `config` is asked for the current TLS
/// configuration at every accept, so a renewed certificate applies to new connections.
/// The client certificate is added to each request as `peer` says.
pub async fn serve_tls(
    listener: TcpListener,
    config: impl Fn() -> Option<Arc<ServerConfig>> + Send + 'static,
    router: Router,
    peer: PeerInfo,
    settings: ConnectionSettings,
    mut shutdown: watch::Receiver<bool>,
    name: &'static str,
) {
    let graceful = GracefulShutdown::new();
    let builder = settings.builder();
    let router = settings.timed(router);
    let slots = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
    while let Some((slot, (tcp, peer_addr))) =
        accept_slot(&slots, &listener, &mut shutdown, name).await
    {
        let Some(cfg) = config() else {
            tracing::warn!(listener = name, "no TLS certificate yet; connection closed");
            continue;
        };
        let acceptor = TlsAcceptor::from(cfg);
        let watcher = graceful.watcher();
        let router = router.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(listener = name, peer = %peer_addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(listener = name, peer = %peer_addr, "TLS handshake timed out");
                    return;
                }
            };
            let certs = tls.get_ref().1.peer_certificates();
            let app = match peer {
                PeerInfo::VerifiedSpiffeId => match aims_pki::tls::peer_spiffe_id(certs).ok() {
                    Some(id) => router.layer(Extension(PeerId(id))),
                    None => router,
                },
                PeerInfo::UnverifiedChain => match certs.filter(|c| !c.is_empty()) {
                    Some(c) => router.layer(Extension(ClientCertificate(Arc::new(
                        c.iter().map(|d| d.clone().into_owned()).collect(),
                    )))),
                    None => router,
                },
            };
            let conn = builder
                .serve_connection(
                    TokioIo::new(tls),
                    TowerToHyperService::new(with_peer_addr(app, peer_addr)),
                )
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(listener = name, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    drain(graceful, name).await;
}
