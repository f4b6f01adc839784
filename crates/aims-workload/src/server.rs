//! Serving the Workload API on a Unix socket.
//!
//! ```no_run
//! # async fn run(provider: std::sync::Arc<dyn aims_workload::IdentityProvider>) -> Result<(), aims_workload::WorkloadError> {
//! let listener = aims_workload::bind(std::path::Path::new("/run/aims/workload.sock"))?;
//! aims_workload::WorkloadApi::new(provider)
//!     .serve(listener, std::future::pending::<()>())
//!     .await
//! # }
//! ```
//!
//! The socket must be reachable by the workloads (mode, directory permissions): the
//! Workload API authenticates callers by attestation, not by file permissions.

use std::future::Future;
use std::io;
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;
use std::sync::Arc;

use aims_core::{Clock, SystemClock};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Status};

use crate::attest::{Attestor, UnixAttestor};
use crate::pb::spiffe_workload_api_server::SpiffeWorkloadApiServer;
use crate::provider::IdentityProvider;
use crate::service::Service;
use crate::state::{Ctx, MAX_ATTESTATIONS_PER_UID, UidGate, recompute_permits};

/// The gRPC metadata every Workload API request must carry, with the value `true`
/// (SPIFFE Workload Endpoint section 6; it keeps browsers and SSRF-able HTTP clients,
/// which cannot set it, from talking to the socket).
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

/// Largest request message accepted. Requests are small: the largest valid one is a
/// `ValidateJWTSVID` with a token of at most [`aims_jose::jws::MAX_TOKEN_BYTES`]
/// (16 KiB) and an audience; anything much larger is refused before it is buffered.
pub const MAX_REQUEST_BYTES: usize = 32 * 1024;

// A token at the JOSE cap plus its audience and protobuf framing must still fit.
const _: () = assert!(MAX_REQUEST_BYTES >= aims_jose::jws::MAX_TOKEN_BYTES + 8 * 1024);

/// Interval of the HTTP/2 pings the server sends on every connection, and how long it
/// waits for their answer before closing the connection: a client that vanished
/// without closing its socket (frozen, or its end held open by a stuck process) stops
/// holding a per-uid connection slot and its streams. Live clients answer pings, so
/// long-lived streams are not affected (there is deliberately no request timeout).
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Errors of binding and serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// The socket could not be prepared or bound.
    #[error("workload socket: {0}")]
    Io(#[from] io::Error),
    /// The gRPC server failed.
    #[error("workload API server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Rejects requests without `workload.spiffe.io: true` with `InvalidArgument`.
#[allow(clippy::result_large_err)] // the shape tonic's interceptors require
fn require_security_header(req: Request<()>) -> Result<Request<()>, Status> {
    match req.metadata().get(SECURITY_HEADER) {
        Some(v) if v.as_bytes() == b"true" => Ok(req),
        Some(_) => Err(Status::invalid_argument(
            "security header `workload.spiffe.io` must have the value `true`",
        )),
        None => Err(Status::invalid_argument(
            "security header `workload.spiffe.io: true` is missing from the request",
        )),
    }
}

/// The Workload API server: an [`IdentityProvider`], an [`Attestor`] (default
/// [`UnixAttestor`]) and a clock (default [`SystemClock`]).
#[derive(Debug, Clone)]
pub struct WorkloadApi {
    provider: Arc<dyn IdentityProvider>,
    attestor: Arc<dyn Attestor>,
    clock: Arc<dyn Clock>,
    max_connections_per_uid: usize,
}

impl WorkloadApi {
    /// A server for `provider` with the [`UnixAttestor`] and the system clock.
    pub fn new(provider: Arc<dyn IdentityProvider>) -> Self {
        Self {
            provider,
            attestor: Arc::new(UnixAttestor::new()),
            clock: Arc::new(SystemClock),
            max_connections_per_uid: DEFAULT_MAX_CONNECTIONS_PER_UID,
        }
    }

    /// The most connections open at once from processes of one uid (default
    /// [`DEFAULT_MAX_CONNECTIONS_PER_UID`]); a further connection from that uid is
    /// closed at once, so one user's processes cannot take every stream the server can
    /// hold (each connection carries at most [`MAX_STREAMS_PER_CONNECTION`]). 0 means no
    /// limit.
    pub fn max_connections_per_uid(mut self, max: usize) -> Self {
        self.max_connections_per_uid = max;
        self
    }

    /// Uses `attestor` to derive callers' selectors.
    pub fn attestor(mut self, attestor: Arc<dyn Attestor>) -> Self {
        self.attestor = attestor;
        self
    }

    /// Uses `clock` for rotation times and JWT-SVID validation.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Serves on `listener` until `shutdown` completes. Open streams then end with
    /// `Unavailable` (clients reconnect), and the call returns once every connection has
    /// closed.
    pub async fn serve(
        self,
        listener: UnixListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), WorkloadError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            provider: self.provider,
            attestor: self.attestor,
            clock: self.clock,
            recompute: tokio::sync::Semaphore::new(recompute_permits()),
            attesting: UidGate::new(MAX_ATTESTATIONS_PER_UID),
        });
        let service = SpiffeWorkloadApiServer::new(Service::new(ctx, stop_rx))
            .max_decoding_message_size(MAX_REQUEST_BYTES);
        let service =
            tonic::service::interceptor::InterceptedService::new(service, require_security_header);
        let signal = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let per_uid = Arc::new(UidConnections::new(self.max_connections_per_uid));
        let incoming = UnixListenerStream::new(listener).filter_map(move |c| match c {
            Ok(stream) => Accepted::new(stream, &per_uid).map(Ok),
            Err(e) => Some(Err(e)),
        });
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, signal)
            .await?;
        Ok(())
    }
}

/// The most concurrent RPCs (streams) on one connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;

/// Default [`WorkloadApi::max_connections_per_uid`]. Generous: where workloads share a
/// uid (containers all running as root without user namespaces), they share this too.
pub const DEFAULT_MAX_CONNECTIONS_PER_UID: usize = 1024;

/// Open connections by caller uid.
#[derive(Debug)]
struct UidConnections {
    max: usize,
    open: std::sync::Mutex<std::collections::HashMap<u32, usize>>,
    /// Refusals are logged at most once a minute (a local user can connect at will).
    warn: aims_core::RateGate,
}

impl UidConnections {
    fn new(max: usize) -> Self {
        Self {
            max,
            open: std::sync::Mutex::default(),
            warn: aims_core::RateGate::new(std::time::Duration::from_secs(60)),
        }
    }

    /// A slot for one more connection of `uid`, or `None` when it has the most.
    fn take(self: &Arc<Self>, uid: u32) -> Option<UidSlot> {
        if self.max == 0 {
            return Some(UidSlot { owner: None, uid });
        }
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(uid).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(UidSlot {
            owner: Some(Arc::clone(self)),
            uid,
        })
    }
}

/// One open connection of a uid, given back when the connection closes.
#[derive(Debug)]
struct UidSlot {
    owner: Option<Arc<UidConnections>>,
    uid: u32,
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        let Some(owner) = &self.owner else { return };
        let mut open = owner
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.uid);
            }
        }
    }
}

/// An accepted Workload API connection and its caller as seen at accept time: the
/// credentials the kernel recorded at `connect` (`SO_PEERCRED`) and the start time of
/// that process, so that attestation can tell if the pid was reused since.
pub(crate) struct Accepted {
    stream: tokio::net::UnixStream,
    peer: Option<AcceptedPeer>,
    _slot: Option<UidSlot>,
}

/// The connection info of an [`Accepted`] connection (a request extension).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AcceptedPeer {
    pub(crate) pid: Option<i32>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// `None` with a pid: the process was gone before the connection was accepted.
    pub(crate) started: Option<u64>,
}

impl Accepted {
    /// The connection, or `None` (it is closed) when its uid has the most connections
    /// open already.
    fn new(stream: tokio::net::UnixStream, per_uid: &Arc<UidConnections>) -> Option<Self> {
        let cred = stream.peer_cred().ok();
        let slot = match cred {
            Some(c) => match per_uid.take(c.uid()) {
                Some(slot) => Some(slot),
                None => {
                    if let Some(held_back) = per_uid.warn.admit() {
                        tracing::warn!(
                            uid = c.uid(),
                            pid = c.pid(),
                            max = per_uid.max,
                            earlier_refusals_not_logged = held_back,
                            "Workload API connection closed: this uid has the most connections open"
                        );
                    }
                    return None;
                }
            },
            None => None,
        };
        let peer = cred.map(|c| AcceptedPeer {
            pid: c.pid(),
            uid: c.uid(),
            gid: c.gid(),
            started: c
                .pid()
                .filter(|p| *p > 0)
                .and_then(crate::attest::process_start_time),
        });
        Some(Self {
            stream,
            peer,
            _slot: slot,
        })
    }
}

impl tonic::transport::server::Connected for Accepted {
    type ConnectInfo = Option<AcceptedPeer>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.peer
    }
}

impl tokio::io::AsyncRead for Accepted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Accepted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves the Workload API for `provider` on `listener` with the [`UnixAttestor`] until
/// `shutdown` completes (see [`WorkloadApi::serve`]).
pub async fn serve(
    listener: UnixListener,
    provider: Arc<dyn IdentityProvider>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WorkloadError> {
    WorkloadApi::new(provider).serve(listener, shutdown).await
}

/// Binds a Unix socket at `path`, first removing a stale socket left there by an earlier
/// run. Refuses to remove anything that is not a socket. Must be called within a Tokio
/// runtime.
pub fn bind(path: &Path) -> Result<UnixListener, WorkloadError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(WorkloadError::Io(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(UnixListener::bind(path)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn security_header_rules() {
        let ok = {
            let mut r = Request::new(());
            r.metadata_mut()
                .insert(SECURITY_HEADER, "true".parse().unwrap());
            r
        };
        assert!(require_security_header(ok).is_ok());
        let missing = require_security_header(Request::new(())).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::InvalidArgument);
        assert!(missing.message().contains("missing"));
        let mut wrong = Request::new(());
        wrong
            .metadata_mut()
            .insert(SECURITY_HEADER, "TRUE".parse().unwrap());
        let wrong = require_security_header(wrong).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn bind_replaces_stale_sockets_only() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        drop(bind(&sock).unwrap());
        // The socket file outlives the listener; binding again removes it.
        drop(bind(&sock).unwrap());
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(bind(&file).is_err());
        assert!(file.exists());
    }
}
