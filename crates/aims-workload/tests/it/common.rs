//! A Workload API server on a temporary socket, entries, and clients.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aims_core::{RegistrationEntry, Selector, SpiffeId, SystemClock, TrustDomain};
use aims_crypto::{Algorithm, SigningKey};
use aims_pki::CertificateAuthority;
use aims_workload::pb::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use aims_workload::{SECURITY_HEADER, StaticProvider, WorkloadApi};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

pub const TD: &str = "example.org";

/// The uid this test process runs as (the owner of its `/proc/self`).
pub fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// `unix:uid:<my uid>`: every process of this test matches it.
pub fn uid_selector() -> String {
    format!("unix:uid:{}", my_uid())
}

/// An entry for `spiffe://example.org/<path>` with these selectors.
pub fn entry(id: &str, path: &str, selectors: &[&str]) -> RegistrationEntry {
    RegistrationEntry {
        id: id.into(),
        spiffe_id: SpiffeId::parse(&format!("spiffe://{TD}/{path}")).unwrap(),
        selectors: selectors
            .iter()
            .map(|s| Selector::parse(s).unwrap())
            .collect(),
        x509_ttl: 3600,
        jwt_ttl: 300,
        wit_ttl: 600,
        dns_names: vec![],
        hint: None,
        federates_with: BTreeSet::new(),
        parent_id: None,
        admin: false,
        revision: 0,
        created_at: 0,
        updated_at: 0,
    }
}

pub fn td() -> TrustDomain {
    TrustDomain::new(TD).unwrap()
}

pub fn new_ca(td: &TrustDomain) -> CertificateAuthority {
    CertificateAuthority::new_root(td, Duration::from_secs(86_400), Arc::new(SystemClock)).unwrap()
}

/// A provider for example.org with a fresh CA and JWT key, WIT-SVIDs enabled if `wit`.
pub fn provider(entries: Vec<RegistrationEntry>, wit: bool) -> Arc<StaticProvider> {
    let jwt = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut p = StaticProvider::new(new_ca(&td()), jwt, Arc::new(SystemClock)).unwrap();
    if wit {
        p = p
            .with_wit_key(SigningKey::generate(Algorithm::ES256).unwrap())
            .unwrap();
    }
    p.set_entries(entries);
    Arc::new(p)
}

/// A running server; stops when dropped.
pub struct Server {
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), aims_workload::WorkloadError>>>,
}

impl Server {
    pub async fn start(provider: Arc<StaticProvider>) -> Self {
        Self::start_with(WorkloadApi::new(provider)).await
    }

    pub async fn start_with(api: WorkloadApi) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("workload.sock");
        let listener = aims_workload::bind(&socket).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(api.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            socket,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The `SPIFFE_ENDPOINT_SOCKET` form of the address.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub async fn spiffe_client(&self) -> spiffe::WorkloadApiClient {
        spiffe::WorkloadApiClient::connect_to(self.endpoint())
            .await
            .unwrap()
    }

    /// Stops the server and waits until it has shut down.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server shuts down")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub type RawClient = SpiffeWorkloadApiClient<
    InterceptedService<
        Channel,
        Box<dyn FnMut(tonic::Request<()>) -> tonic::Result<tonic::Request<()>> + Send + Sync>,
    >,
>;

/// A plain tonic client on `socket`, sending the security header only if `header`.
pub async fn raw_client(socket: &Path, header: bool) -> RawClient {
    try_raw_client(socket, header).await.unwrap()
}

/// Like [`raw_client`], but a failed connection is an error.
pub async fn try_raw_client(
    socket: &Path,
    header: bool,
) -> Result<RawClient, tonic::transport::Error> {
    let path = socket.to_path_buf();
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await?;
    let interceptor: Box<
        dyn FnMut(tonic::Request<()>) -> tonic::Result<tonic::Request<()>> + Send + Sync,
    > = Box::new(move |mut req: tonic::Request<()>| {
        if header {
            req.metadata_mut()
                .insert(SECURITY_HEADER, "true".parse().unwrap());
        }
        Ok(req)
    });
    Ok(SpiffeWorkloadApiClient::with_interceptor(
        channel,
        interceptor,
    ))
}

/// `notBefore` and `notAfter` (Unix seconds) and the SPIFFE ID of a DER certificate.
pub fn cert_info(der: &[u8]) -> (i64, i64, String) {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let uri = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .find_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
        .unwrap();
    (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
        uri,
    )
}

/// The leaf (first certificate) of a concatenated DER chain.
pub fn leaf_der(chain: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::*;
    let (rest, _) = X509Certificate::from_der(chain).unwrap();
    chain[..chain.len() - rest.len()].to_vec()
}

/// The next stream item within 10 seconds (panics on timeout or end of stream).
pub async fn next<S: tokio_stream::Stream + Unpin>(s: &mut S) -> S::Item {
    use tokio_stream::StreamExt as _;
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("a message in time")
        .expect("the stream is open")
}
