//! Mutual TLS with SVIDs from the Workload API, on both ends, following rotation.

use std::sync::Arc;
use std::time::Duration;

use aims_agent::{AgentClient, AgentError, Auth, WorkloadSource};
use aims_core::{SpiffeId, TrustDomain};
use aims_pki::tls::{Authorizer, ClientAuth};
use axum::extract::Extension;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use aims_server::testkit;

use super::common::{server_with_agent, source, spec, uid_selector};

#[derive(Clone)]
struct Peer(String);

/// An HTTPS server answering with the client's SPIFFE ID (or "anonymous").
pub(super) async fn https_echo(source: &WorkloadSource, client_auth: ClientAuth) -> String {
    let config = source
        .tls_server_config(
            Authorizer::AnyInTrustDomains(vec![TrustDomain::new("example.org").unwrap()]),
            client_auth,
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let peer = aims_pki::svid::peer_spiffe_id(tls.get_ref().1.peer_certificates())
                    .map(|id| id.into_string())
                    .unwrap_or_else(|_| "anonymous".into());
                let app = axum::Router::new()
                    .route(
                        "/whoami",
                        axum::routing::get(|Extension(Peer(p)): Extension<Peer>| async move { p }),
                    )
                    .layer(Extension(Peer(peer)));
                let service = hyper::service::service_fn(move |req| app.clone().oneshot(req));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    format!("https://127.0.0.1:{}/whoami", addr.port())
}

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_presents_the_svid_and_the_server_sees_the_spiffe_id() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    let url = https_echo(&source, ClientAuth::Required).await;
    let client = AgentClient::new(&source).unwrap();

    let resp = client.send(get(&url), &Auth::Mtls).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(&resp.body()[..], b"spiffe://example.org/agent/a");

    // Without the client certificate the handshake is refused.
    let err = client.send(get(&url), &Auth::None).await.unwrap_err();
    assert!(matches!(err, AgentError::Http(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_of_another_trust_domain_is_not_trusted() {
    let ours = server_with_agent("example.org", 3600, 600).await;
    let theirs = server_with_agent("other.example", 3600, 600).await;
    let client_source = source(&ours).await;
    let server_source = source(&theirs).await;
    let url = https_echo(&server_source, ClientAuth::Optional).await;
    let client = AgentClient::new(&client_source).unwrap();
    let err = client.send(get(&url), &Auth::None).await.unwrap_err();
    assert!(matches!(err, AgentError::Http(_)), "{err:?}");
}

/// The agent (example.org) holds partner.example's bundle through federation; a server
/// with a partner.example SVID verifies, but is refused as a server unless the
/// application allows that trust domain or ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_of_a_federated_trust_domain_is_refused_unless_allowed_explicitly() {
    let partner = TrustDomain::new("partner.example").unwrap();
    let theirs = server_with_agent("partner.example", 3600, 600).await;
    let ours = testkit::start_default("example.org").await.unwrap();
    let partner_bundle = theirs.admin().bundle().await.unwrap();
    ours.admin()
        .set_bundle("partner.example", partner_bundle.into_bytes())
        .await
        .unwrap();
    let mut entry = spec(
        "spiffe://example.org/agent/a",
        &[&uid_selector()],
        3600,
        600,
    );
    entry.federates_with = vec![partner.clone()];
    ours.admin().create_entry(&entry).await.unwrap();
    let client_source = source(&ours).await;
    assert!(
        client_source.trust_store().get(&partner).is_some(),
        "the federated bundle must reach the agent for this test to mean anything"
    );
    let server_source = source(&theirs).await;
    let url = https_echo(&server_source, ClientAuth::Optional).await;

    let err = AgentClient::new(&client_source)
        .unwrap()
        .send(get(&url), &Auth::None)
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Http(_)), "{err:?}");

    let own = TrustDomain::new("example.org").unwrap();
    for allowed in [
        Authorizer::AnyInTrustDomains(vec![own, partner.clone()]),
        Authorizer::Exact(vec![
            SpiffeId::parse("spiffe://partner.example/agent/a").unwrap(),
        ]),
    ] {
        let client = AgentClient::builder()
            .server_authorizer(allowed)
            .build(&client_source)
            .unwrap();
        let resp = client.send(get(&url), &Auth::None).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(&resp.body()[..], b"anonymous");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_svids_are_presented_without_rebuilding_the_client_or_the_server() {
    let ts = server_with_agent("example.org", 4, 600).await;
    let source = source(&ts).await;
    let url = https_echo(&source, ClientAuth::Required).await;
    let client = AgentClient::new(&source).unwrap();
    let first = source.x509_expiry().unwrap();
    // Well past the first SVID's expiry: both sides must present rotated SVIDs.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(source.x509_expiry().unwrap() > first);
    let resp = client.send(get(&url), &Auth::Mtls).await.unwrap();
    assert_eq!(&resp.body()[..], b"spiffe://example.org/agent/a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_works_as_a_tower_service() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    let url = https_echo(&source, ClientAuth::Required).await;
    let service = AgentClient::new(&source).unwrap().into_service(Auth::Mtls);
    let resp = service.oneshot(get(&url)).await.unwrap();
    assert_eq!(&resp.body()[..], b"spiffe://example.org/agent/a");
}
