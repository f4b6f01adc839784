//! The Workload API address (SPIFFE Workload Endpoint §4) and the gRPC connection to it.

use std::path::{Path, PathBuf};

use aims_workload::SECURITY_HEADER;
use aims_workload::pb::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::AgentError;

/// The environment variable naming the Workload API address.
pub const ENDPOINT_ENV: &str = "SPIFFE_ENDPOINT_SOCKET";

/// Where the Workload API listens: a Unix domain socket.
///
/// Parsed from the SPIFFE form `unix:///absolute/path` (or `unix:/absolute/path`): the
/// scheme must be `unix`, the path absolute, and there may be no authority, query or
/// fragment. TCP addresses are refused: AIMS serves the Workload API on a Unix socket
/// only, because attestation reads the caller's process from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadEndpoint {
    path: PathBuf,
}

impl WorkloadEndpoint {
    /// Parses a Workload API address.
    pub fn parse(address: &str) -> Result<Self, AgentError> {
        let bad = |reason| AgentError::InvalidEndpoint {
            address: address.to_owned(),
            reason,
        };
        let rest = address
            .strip_prefix("unix:")
            .ok_or_else(|| bad("only the unix scheme is supported"))?;
        let path = match rest.strip_prefix("//") {
            // `unix://` + authority + path: only an empty authority is allowed.
            Some(after) if after.starts_with('/') => after,
            Some(_) => return Err(bad("a unix address may not have an authority")),
            None => rest,
        };
        if path.contains(['?', '#']) {
            return Err(bad("a unix address may not have a query or fragment"));
        }
        if !path.starts_with('/') || path.len() < 2 {
            return Err(bad("the socket path must be absolute"));
        }
        Ok(Self {
            path: PathBuf::from(path),
        })
    }

    /// The address in `SPIFFE_ENDPOINT_SOCKET`, if set.
    pub fn from_env() -> Result<Option<Self>, AgentError> {
        match std::env::var(ENDPOINT_ENV) {
            Ok(v) if !v.is_empty() => Self::parse(&v).map(Some),
            _ => Ok(None),
        }
    }

    /// A Unix socket path.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connects lazily: the channel dials the socket on first use and again after a
    /// failure, so a restarted server is picked up.
    pub(crate) fn connect(&self) -> Result<Client, AgentError> {
        let path = self.path.clone();
        let channel =
            Endpoint::from_static("http://localhost").connect_with_connector_lazy(
                tower::service_fn(move |_| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }),
            );
        Ok(SpiffeWorkloadApiClient::with_interceptor(
            channel,
            SecurityHeader,
        ))
    }
}

impl std::fmt::Display for WorkloadEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unix://{}", self.path.display())
    }
}

/// Adds `workload.spiffe.io: true` to every call (Workload API §4: required).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecurityHeader;

impl tonic::service::Interceptor for SecurityHeader {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut()
            .insert(SECURITY_HEADER, MetadataValue::from_static("true"));
        Ok(req)
    }
}

/// The gRPC client of the Workload API.
pub(crate) type Client = SpiffeWorkloadApiClient<InterceptedService<Channel, SecurityHeader>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spiffe_forms() {
        for (a, p) in [
            ("unix:///run/aims/workload.sock", "/run/aims/workload.sock"),
            ("unix:/tmp/w.sock", "/tmp/w.sock"),
        ] {
            assert_eq!(WorkloadEndpoint::parse(a).unwrap().path(), Path::new(p));
        }
    }

    #[test]
    fn refuses_other_forms() {
        for a in [
            "tcp://127.0.0.1:8081",
            "unix://host/run/w.sock",
            "unix:relative.sock",
            "unix:///run/w.sock?x=1",
            "unix:///run/w.sock#f",
            "unix:",
            "unix:///",
            "/run/w.sock",
        ] {
            assert!(
                matches!(
                    WorkloadEndpoint::parse(a),
                    Err(AgentError::InvalidEndpoint { .. })
                ),
                "{a}"
            );
        }
    }
}
