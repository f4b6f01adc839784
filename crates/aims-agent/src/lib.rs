//! The agent side of AIMS.
//!
//! * [`WorkloadSource`] holds this agent's credentials (X509-SVID, WIT-SVID, JWT-SVIDs on
//!   demand) and trust bundles, fed by the SPIFFE Workload API and following rotation.
//! * [`AgentClient`] sends HTTP requests authenticated with them: mutual TLS, WIT + WPT,
//!   WIT + WIMSE HTTP signature, a JWT-SVID bearer token, or a DPoP-bound access token.
//!
//! Keys stay inside this crate: no public function returns a private key or a
//! credential that proves possession of one, so an application (or a language model
//! driving it) can make authenticated calls without ever seeing the secret.
//!
//! ```no_run
//! # async fn demo() -> Result<(), aims_agent::AgentError> {
//! use aims_agent::{AgentClient, Auth, WorkloadSource};
//! let source = WorkloadSource::from_env().await?; // SPIFFE_ENDPOINT_SOCKET
//! let client = AgentClient::new(&source)?;
//! let request = http::Request::post("https://tool.example.test/tools/transfer")
//!     .body(bytes::Bytes::from_static(b"{}"))
//!     .map_err(|e| aims_agent::AgentError::Request(e.to_string()))?;
//! let response = client.send(request, &Auth::HttpSig).await?;
//! println!("{}", response.status());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod client;
mod endpoint;
mod error;
pub mod oauth;
mod response;
mod source;
mod tls;

pub use client::{
    AgentClient, AgentClientBuilder, AgentService, Auth, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT, DPOP_HEADER, DPOP_NONCE_HEADER, PROOF_LIFETIME, WPT_HEADER,
};
pub use endpoint::{ENDPOINT_ENV, WorkloadEndpoint};
pub use error::AgentError;
pub use source::{DEFAULT_READY_TIMEOUT, WorkloadSource};
