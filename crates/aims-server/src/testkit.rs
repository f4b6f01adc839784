//! Start the real server in-process for integration tests (feature `testkit`).
//!
//! Everything lives in a fresh temporary directory: the SQLite database and both
//! sockets; the HTTP listener takes a free loopback port.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aims_core::{Clock, TrustDomain};

use crate::ServerError;
use crate::client::AdminClient;
use crate::config::Config;
use crate::server::{RunningServer, start};

/// A server running in this process, with its directory.
#[derive(Debug)]
pub struct TestServer {
    /// The server.
    pub server: RunningServer,
    /// Holds the data directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A client of its admin socket.
    pub fn admin(&self) -> AdminClient {
        AdminClient::new(&self.server.endpoints().admin_socket)
    }

    /// The Workload API socket.
    pub fn workload_socket(&self) -> &Path {
        &self.server.endpoints().workload_socket
    }

    /// `unix://…` for the `spiffe` crate's clients.
    pub fn workload_endpoint(&self) -> String {
        crate::config::endpoint_socket_env(self.workload_socket())
    }
}

/// A configuration for a test server of `trust_domain` in `dir`: HTTP on a free loopback
/// port, sockets in `dir`, a short poll interval.
pub fn config(trust_domain: &str, dir: &Path) -> Result<Config, ServerError> {
    let td = TrustDomain::new(trust_domain)
        .map_err(|e| ServerError::Workload(format!("test trust domain: {e}")))?;
    let mut c = Config::minimal(td, dir.join("data"));
    c.http.listen = "127.0.0.1:0"
        .parse()
        .map_err(|e| ServerError::Workload(format!("{e}")))?;
    c.admin.socket_path = Some(dir.join("admin.sock"));
    c.workload_api.socket_path = Some(dir.join("workload.sock"));
    Ok(c)
}

/// A fresh temporary directory for a test server.
pub fn tempdir() -> Result<tempfile::TempDir, ServerError> {
    tempfile::Builder::new()
        .prefix("aims-")
        .tempdir()
        .map_err(ServerError::io(
            "create a temporary directory in",
            PathBuf::from("/tmp"),
        ))
}

/// Starts a server of `trust_domain` with the defaults of [`config`], adjusted by
/// `adjust`.
pub async fn start_with(
    trust_domain: &str,
    clock: Arc<dyn Clock>,
    adjust: impl FnOnce(&mut Config),
) -> Result<TestServer, ServerError> {
    let dir = tempdir()?;
    let mut c = config(trust_domain, dir.path())?;
    adjust(&mut c);
    let server = start(c, clock).await?;
    Ok(TestServer { server, dir })
}

/// Starts a server of `trust_domain` on the system clock.
pub async fn start_default(trust_domain: &str) -> Result<TestServer, ServerError> {
    start_with(trust_domain, Arc::new(aims_core::SystemClock), |_| {}).await
}
