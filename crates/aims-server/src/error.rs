//! Errors of starting and running the server (not of API requests: see
//! [`crate::admin::ApiError`]).

use std::path::PathBuf;

use crate::config::ConfigErrors;

/// Why the server could not start, or a background step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid.
    #[error("invalid configuration:\n{0}")]
    Config(#[from] ConfigErrors),
    /// The database failed.
    #[error("storage: {0}")]
    Store(#[from] aims_store::StoreError),
    /// The certificate authority failed.
    #[error("certificate authority: {0}")]
    Ca(#[from] aims_pki::CaError),
    /// A key operation failed.
    #[error("key: {0}")]
    Crypto(#[from] aims_crypto::CryptoError),
    /// A bundle could not be built or parsed.
    #[error("bundle: {0}")]
    Bundle(#[from] aims_pki::BundleError),
    /// A TLS configuration could not be built.
    #[error("TLS: {0}")]
    Tls(#[from] aims_pki::TlsError),
    /// A stored key cannot be used.
    #[error("stored {kind} key `{kid}` is unusable: {reason}")]
    BadStoredKey {
        /// The key's kind.
        kind: aims_store::KeyKind,
        /// The key's id.
        kid: String,
        /// Why.
        reason: String,
    },
    /// A file system operation failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was attempted ("create", "bind", …).
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A TCP listener could not be opened.
    #[error("cannot listen on {addr}: {source}{}", bind_help(source))]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A Unix socket path is too long for the operating system (about 100 bytes).
    #[error("socket path {} is too long ({len} bytes, at most {max}); choose a shorter data_dir or socket_path", path.display())]
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Another server already serves this socket.
    #[error("another AIMS server is already listening on {}; stop it first or choose another socket path", path.display())]
    SocketInUse {
        /// The socket.
        path: PathBuf,
    },
    /// The Workload API failed to start.
    #[error("workload API: {0}")]
    Workload(String),
}

fn bind_help(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (the port is taken: stop the other program or choose another address, e.g. --http-listen 127.0.0.1:0 for any free port)"
        }
        std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
        _ => "",
    }
}

impl ServerError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}
