//! The admin API over mTLS: only SVIDs of `admin = true` entries get in.

use std::sync::Arc;
use std::time::Duration;

use aims_core::SpiffeId;
use aims_pki::tls::Authorizer;
use aims_pki::{TrustStore, X509Svid};
use aims_server::testkit;

use crate::common::{spec, system_clock};

/// A TLS client configuration trusting `ts`'s SVID, presenting `svid` if any.
fn client_tls(svid: Option<&X509Svid>, ts: &testkit::TestServer) -> rustls::ClientConfig {
    let state = ts.server.state();
    let trust = Arc::new(TrustStore::from_bundles([(**state
        .keys
        .current()
        .unwrap()
        .bundle())
    .clone()]));
    aims_pki::tls::client_config(
        svid,
        trust,
        Authorizer::Exact(vec![state.tls.spiffe_id().clone()]),
    )
    .unwrap()
}

fn client(svid: Option<&X509Svid>, ts: &testkit::TestServer) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(client_tls(svid, ts))
        .build()
        .unwrap()
}

/// A server with the admin mTLS listener and the admin entry `ops`.
async fn start_with_admin_listener() -> testkit::TestServer {
    let ts = testkit::start_with("example.org", system_clock(), |c| {
        c.admin.mtls_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
    .unwrap();
    let mut ops = spec("spiffe://example.org/ops", &["unix:uid:12345"]);
    ops.admin = true;
    ts.admin().create_entry(&ops).await.unwrap();
    ts
}

fn issue(ts: &testkit::TestServer, id: &str) -> X509Svid {
    ts.server
        .state()
        .keys
        .current()
        .unwrap()
        .ca()
        .unwrap()
        .ca
        .issue_x509_svid(&SpiffeId::parse(id).unwrap(), Duration::from_secs(600), &[])
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admin_svids_reach_the_admin_api_over_mtls() {
    let ts = start_with_admin_listener().await;
    let url = format!(
        "https://{}/v1/entries",
        ts.server.endpoints().admin_mtls.unwrap()
    );
    ts.admin()
        .create_entry(&spec("spiffe://example.org/app", &["unix:uid:12346"]))
        .await
        .unwrap();

    let admin_svid = issue(&ts, "spiffe://example.org/ops");
    let r = client(Some(&admin_svid), &ts)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: aims_server::api::EntryList = r.json().await.unwrap();
    assert_eq!(list.entries.len(), 2);

    let app_svid = issue(&ts, "spiffe://example.org/app");
    let r = client(Some(&app_svid), &ts).get(&url).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: aims_server::api::ErrorBody = r.json().await.unwrap();
    assert_eq!(body.error, "forbidden");
    assert!(body.detail.contains("admin = true"), "{}", body.detail);

    // No client certificate: the handshake fails.
    assert!(client(None, &ts).get(&url).send().await.is_err());
    ts.server.shutdown().await;
}

/// Every admin connection does a full handshake (client certificate checked each
/// time): a session is never resumed, though the client offers to (with resumption
/// on at the server, the second and third handshakes here are `Resumed`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_mtls_sessions_are_never_resumed() {
    use rustls::HandshakeKind;
    let ts = start_with_admin_listener().await;
    let addr = ts.server.endpoints().admin_mtls.unwrap();
    let svid = issue(&ts, "spiffe://example.org/ops");
    // One client configuration, so its session cache is shared by every connection.
    let config = Arc::new(client_tls(Some(&svid), &ts));
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        // Read the reply to a request, so the server's tickets (if any) have arrived.
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        tls.write_all(b"GET /v1/entries HTTP/1.1\r\nhost: aims\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        let _ = tls.read_to_end(&mut reply).await;
        assert!(
            reply.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
        kinds.push(tls.get_ref().1.handshake_kind());
    }
    assert!(
        kinds.iter().all(|k| *k == Some(HandshakeKind::Full)),
        "{kinds:?}"
    );
    ts.server.shutdown().await;
}
