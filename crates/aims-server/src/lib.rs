//! The AIMS server: one long-running process composing the registration entries, the
//! trust domain's CA and signing keys, the Workload API, the admin API and federation.
//!
//! | Module | What |
//! |---|---|
//! | [`config`] | the TOML configuration, `deny_unknown_fields`, errors with line and column |
//! | [`server`] | [`start`], [`RunningServer`] (graceful shutdown), [`Endpoints`] |
//! | [`keys`] | [`KeyManager`]: CA and JWT/WIT keys in the store, rotation with overlap |
//! | [`entries`] | the in-memory entry cache, polled from the store's change sequence |
//! | [`identity`] | [`ServerIdentity`], the Workload API's identity provider |
//! | [`federation`] | federated bundles: set by hand or fetched from bundle endpoints |
//! | [`admin`], [`api`] | the admin API (Unix socket, optional mTLS) and its wire types |
//! | [`client`] | an admin API client over the Unix socket |
//! | [`public`] | `/healthz`, `/readyz`, `/metrics`, the bundle endpoint |
//! | [`oauth`] | the OAuth 2.0 authorization server's endpoints (`[oauth]`) |
//! | [`tls`] | the server's own X509-SVID and TLS configurations |
//! | [`listen`] | Unix sockets with owner-only modes, the TLS accept loop |
//! | [`telemetry`] | structured logs and the Prometheus recorder |
//! | `testkit` | (feature `testkit`) the real server in-process for tests |
//!
//! # Listeners
//!
//! | Listener | Default | Protection |
//! |---|---|---|
//! | Workload API | `<data_dir>/workload.sock` | attestation of the caller (`SO_PEERCRED`) |
//! | Admin API | `<data_dir>/admin.sock` | mode 0600 |
//! | Admin API over mTLS | off (`[admin] mtls_listen`) | client X509-SVID of an `admin = true` entry |
//! | HTTP | `127.0.0.1:8080` | public information; the OAuth endpoints authenticate clients themselves |
//! | Bundle endpoint (`https_spiffe`) | off (`[http] bundle_endpoint_listen`) | server X509-SVID |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod api;
pub mod client;
pub mod config;
mod deadline;
pub mod entries;
mod error;
pub mod federation;
pub mod identity;
pub mod keys;
pub mod listen;
pub mod notify;
pub mod oauth;
pub mod pdp;
pub mod public;
pub mod server;
pub mod state;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tls;

pub use config::Config;
pub use error::ServerError;
pub use identity::ServerIdentity;
pub use keys::KeyManager;
pub use server::{Endpoints, RunningServer, shutdown_signal, start};
pub use state::AppState;
