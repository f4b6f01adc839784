//! Real mTLS handshakes over `tokio::io::duplex` with the configurations of `aims_pki::tls`
//! (draft-ietf-wimse-mutual-tls, specs.md 2.6): a good SVID is accepted and each bad one is
//! rejected for its own reason, asserted on the rustls error the verifying side returns.

use std::sync::Arc;
use std::time::Duration;

use aims_core::{Clock, ManualClock, SpiffeId};
use aims_pki::svid::SvidError;
use aims_pki::tls::{self, SpiffeServerCertVerifier};
use aims_pki::{Authorizer, CertificateAuthority, ClientAuth, TrustStore, X509Svid};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, OtherError, ServerConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::common::*;

const SERVER: &str = "spiffe://example.org/server";
const CLIENT: &str = "spiffe://example.org/client";

struct World {
    clock: ManualClock,
    ca: CertificateAuthority,
    store: Arc<TrustStore>,
    server_svid: X509Svid,
    client_svid: X509Svid,
}

fn world() -> World {
    let clock = clock();
    let ca = root_ca("example.org", &clock);
    let store = store_of(&[&ca]);
    let ttl = Duration::from_secs(3600);
    let server_svid = ca.issue_x509_svid(&id(SERVER), ttl, &[]).unwrap();
    let client_svid = ca.issue_x509_svid(&id(CLIENT), ttl, &[]).unwrap();
    World {
        clock,
        ca,
        store,
        server_svid,
        client_svid,
    }
}

impl World {
    fn server(&self, client_auth: ClientAuth) -> ServerConfig {
        tls::server_config_with_clock(
            &self.server_svid,
            Arc::clone(&self.store),
            Authorizer::AnyInTrustDomains(vec![td("example.org")]),
            client_auth,
            arc(&self.clock),
        )
        .unwrap()
    }

    fn client(&self, svid: Option<&X509Svid>) -> ClientConfig {
        tls::client_config_with_clock(
            svid,
            Arc::clone(&self.store),
            Authorizer::Exact(vec![id(SERVER)]),
            arc(&self.clock),
        )
        .unwrap()
    }

    /// A client presenting an arbitrary (possibly invalid) chain, which `X509Svid` would
    /// refuse to hold.
    fn raw_client(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: &rcgen::KeyPair,
    ) -> ClientConfig {
        let verifier = SpiffeServerCertVerifier::new(
            Arc::clone(&self.store),
            Authorizer::Exact(vec![id(SERVER)]),
        );
        ClientConfig::builder_with_details(
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            Arc::new(FixedTime(arc(&self.clock))),
        )
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(
            chain,
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap()
    }
}

#[derive(Debug)]
struct FixedTime(Arc<dyn Clock>);

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(
            self.0.now() as u64,
        )))
    }
}

type ServerSide = std::io::Result<tokio_rustls::server::TlsStream<DuplexStream>>;
type ClientSide = std::io::Result<tokio_rustls::client::TlsStream<DuplexStream>>;

/// Runs both sides of a handshake; on success, sends one message each way.
async fn handshake(server: ServerConfig, client: ClientConfig) -> (ServerSide, ClientSide) {
    handshake_shared(Arc::new(server), Arc::new(client)).await
}

fn rustls_error(e: &std::io::Error) -> &rustls::Error {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {e:?}"))
}

/// The `SvidError` carried by `InvalidCertificate(Other(..))`.
fn svid_error(e: &std::io::Error) -> SvidError {
    match rustls_error(e) {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => inner
            .downcast_ref::<SvidError>()
            .cloned()
            .expect("an SvidError"),
        other => panic!("expected an SvidError, got {other:?}"),
    }
}

fn peer(certs: Option<&[CertificateDer<'_>]>) -> Option<SpiffeId> {
    tls::peer_spiffe_id(certs).ok()
}

#[tokio::test]
async fn good_svids_are_accepted_and_both_sides_see_the_peer_id() {
    let w = world();
    let (s, c) = handshake(
        w.server(ClientAuth::Required),
        w.client(Some(&w.client_svid)),
    )
    .await;
    let s = s.unwrap();
    let c = c.unwrap();
    assert_eq!(peer(s.get_ref().1.peer_certificates()), Some(id(CLIENT)));
    assert_eq!(peer(c.get_ref().1.peer_certificates()), Some(id(SERVER)));
    assert_eq!(
        s.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

#[tokio::test]
async fn tls12_handshake_also_works() {
    let w = world();
    let verifier =
        SpiffeServerCertVerifier::new(Arc::clone(&w.store), Authorizer::Exact(vec![id(SERVER)]));
    let client = ClientConfig::builder_with_details(
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        Arc::new(FixedTime(arc(&w.clock))),
    )
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(verifier))
    .with_client_auth_cert(
        w.client_svid.chain().to_vec(),
        w.client_svid.private_key_der(),
    )
    .unwrap();
    let (s, c) = handshake(w.server(ClientAuth::Required), client).await;
    let s = s.unwrap();
    c.unwrap();
    assert_eq!(
        s.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(peer(s.get_ref().1.peer_certificates()), Some(id(CLIENT)));
}

#[tokio::test]
async fn intermediate_ca_chain_is_accepted() {
    let w = world();
    let int =
        w.ca.issue_intermediate(&td("example.org"), &aims_pki::CaOptions::default())
            .unwrap();
    let client_svid = int
        .issue_x509_svid(&id(CLIENT), Duration::from_secs(600), &[])
        .unwrap();
    assert_eq!(client_svid.chain().len(), 2);
    let (s, _) = handshake(w.server(ClientAuth::Required), w.client(Some(&client_svid))).await;
    assert_eq!(
        peer(s.unwrap().get_ref().1.peer_certificates()),
        Some(id(CLIENT))
    );
}

#[tokio::test]
async fn rejects_wrong_trust_domain() {
    let w = world();
    let evil = root_ca("evil.org", &w.clock);
    let evil_svid = evil
        .issue_x509_svid(
            &id("spiffe://evil.org/client"),
            Duration::from_secs(600),
            &[],
        )
        .unwrap();
    // The server only allows example.org.
    let (s, _) = handshake(w.server(ClientAuth::Required), w.client(Some(&evil_svid))).await;
    assert_eq!(
        svid_error(&s.unwrap_err()),
        SvidError::TrustDomainNotAllowed(td("evil.org"))
    );

    // Allowed by the authorizer but no bundle for it: unknown trust domain.
    let server = tls::server_config_with_clock(
        &w.server_svid,
        Arc::clone(&w.store),
        Authorizer::AnyInTrustDomains(vec![td("example.org"), td("evil.org")]),
        ClientAuth::Required,
        arc(&w.clock),
    )
    .unwrap();
    let (s, _) = handshake(server, w.client(Some(&evil_svid))).await;
    assert_eq!(
        svid_error(&s.unwrap_err()),
        SvidError::NoBundle(td("evil.org"))
    );
}

#[tokio::test]
async fn rejects_an_id_of_one_trust_domain_signed_by_another() {
    let w = world();
    let evil = root_ca("evil.org", &w.clock);
    // The server trusts both trust domains, but evil.org's CA cannot vouch for example.org.
    let store = store_of(&[&w.ca, &evil]);
    let server = tls::server_config_with_clock(
        &w.server_svid,
        store,
        Authorizer::AnyInTrustDomains(vec![td("example.org"), td("evil.org")]),
        ClientAuth::Required,
        arc(&w.clock),
    )
    .unwrap();
    let (leaf, key) = crafted_leaf(&rcgen_issuer(&evil), CLIENT, |_| {});
    let (s, _) = handshake(server, w.raw_client(vec![leaf], &key)).await;
    assert_eq!(
        rustls_error(&s.unwrap_err()),
        &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
}

#[tokio::test]
async fn rejects_expired_client_svid() {
    let w = world();
    // The client SVID was issued at T0 for one hour; the handshake happens at T0 + 2 h, with
    // a server SVID issued then.
    w.clock.advance(2 * 3600);
    let server_svid =
        w.ca.issue_x509_svid(&id(SERVER), Duration::from_secs(3600), &[])
            .unwrap();
    let server = tls::server_config_with_clock(
        &server_svid,
        Arc::clone(&w.store),
        Authorizer::AnyInTrustDomains(vec![td("example.org")]),
        ClientAuth::Required,
        arc(&w.clock),
    )
    .unwrap();
    let (s, _) = handshake(server, w.client(Some(&w.client_svid))).await;
    match rustls_error(&s.unwrap_err()) {
        rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { time, not_after }) => {
            assert_eq!(not_after.as_secs(), (T0 + 3600) as u64);
            assert_eq!(time.as_secs(), (T0 + 2 * 3600) as u64);
        }
        other => panic!("expected ExpiredContext, got {other:?}"),
    }
}

#[tokio::test]
async fn rejects_ca_certificate_used_as_leaf() {
    let w = world();
    let (leaf, key) = crafted_leaf(&rcgen_issuer(&w.ca), CLIENT, |p| {
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    });
    let (s, _) = handshake(
        w.server(ClientAuth::Required),
        w.raw_client(vec![leaf], &key),
    )
    .await;
    assert_eq!(svid_error(&s.unwrap_err()), SvidError::LeafIsCa);
}

#[tokio::test]
async fn rejects_leaf_without_digital_signature() {
    let w = world();
    let (leaf, key) = crafted_leaf(&rcgen_issuer(&w.ca), CLIENT, |p| {
        p.key_usages = vec![rcgen::KeyUsagePurpose::KeyAgreement];
    });
    let (s, _) = handshake(
        w.server(ClientAuth::Required),
        w.raw_client(vec![leaf], &key),
    )
    .await;
    assert_eq!(
        svid_error(&s.unwrap_err()),
        SvidError::LeafMissingDigitalSignature
    );
}

#[tokio::test]
async fn rejects_self_signed_leaf() {
    let w = world();
    let (leaf, key) = self_signed_leaf(CLIENT);
    let (s, _) = handshake(
        w.server(ClientAuth::Required),
        w.raw_client(vec![leaf], &key),
    )
    .await;
    assert_eq!(
        rustls_error(&s.unwrap_err()),
        &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
}

#[tokio::test]
async fn required_client_auth_refuses_a_client_without_certificate() {
    let w = world();
    let (s, _) = handshake(w.server(ClientAuth::Required), w.client(None)).await;
    assert_eq!(
        rustls_error(&s.unwrap_err()),
        &rustls::Error::NoCertificatesPresented
    );
}

#[tokio::test]
async fn optional_client_auth() {
    let w = world();
    let (s, c) = handshake(w.server(ClientAuth::Optional), w.client(None)).await;
    let s = s.unwrap();
    c.unwrap();
    assert_eq!(peer(s.get_ref().1.peer_certificates()), None);
    // A certificate that is sent is still verified.
    let (leaf, key) = self_signed_leaf(CLIENT);
    let (s, _) = handshake(
        w.server(ClientAuth::Optional),
        w.raw_client(vec![leaf], &key),
    )
    .await;
    assert!(s.is_err());
}

#[tokio::test]
async fn client_checks_the_server_spiffe_id() {
    let w = world();
    // The server presents a valid SVID of the right trust domain, but not the expected ID.
    let impostor =
        w.ca.issue_x509_svid(
            &id("spiffe://example.org/impostor"),
            Duration::from_secs(600),
            &[],
        )
        .unwrap();
    let server = tls::server_config_with_clock(
        &impostor,
        Arc::clone(&w.store),
        Authorizer::AnyInTrustDomains(vec![td("example.org")]),
        ClientAuth::Required,
        arc(&w.clock),
    )
    .unwrap();
    let (_, c) = handshake(server, w.client(Some(&w.client_svid))).await;
    assert_eq!(
        svid_error(&c.unwrap_err()),
        SvidError::NotAuthorized(id("spiffe://example.org/impostor"))
    );

    // A pattern authorizer accepts it.
    let client = tls::client_config_with_clock(
        Some(&w.client_svid),
        Arc::clone(&w.store),
        Authorizer::Pattern(vec![
            aims_core::id::SpiffeIdPattern::parse("spiffe://example.org/*").unwrap(),
        ]),
        arc(&w.clock),
    )
    .unwrap();
    let server = tls::server_config_with_clock(
        &impostor,
        Arc::clone(&w.store),
        Authorizer::AnyInTrustDomains(vec![td("example.org")]),
        ClientAuth::Required,
        arc(&w.clock),
    )
    .unwrap();
    let (s, c) = handshake(server, client).await;
    s.unwrap();
    assert_eq!(
        peer(c.unwrap().get_ref().1.peer_certificates()),
        Some(id("spiffe://example.org/impostor"))
    );
}

#[tokio::test]
async fn client_rejects_server_of_another_trust_domain() {
    let w = world();
    let evil = root_ca("evil.org", &w.clock);
    let evil_server = evil
        .issue_x509_svid(
            &id(SERVER.replace("example", "evil").as_str()),
            Duration::from_secs(600),
            &[],
        )
        .unwrap();
    let store = store_of(&[&w.ca, &evil]);
    let server = tls::server_config_with_clock(
        &evil_server,
        store,
        Authorizer::AnyInTrustDomains(vec![td("example.org")]),
        ClientAuth::Required,
        arc(&w.clock),
    )
    .unwrap();
    let (_, c) = handshake(server, w.client(Some(&w.client_svid))).await;
    assert_eq!(
        svid_error(&c.unwrap_err()),
        SvidError::TrustDomainNotAllowed(td("evil.org"))
    );
}

#[test]
fn default_configs_use_the_system_clock() {
    let w = world();
    tls::server_config(
        &w.server_svid,
        Arc::clone(&w.store),
        Authorizer::Exact(vec![]),
        ClientAuth::Required,
    )
    .unwrap();
    tls::client_config(None, Arc::clone(&w.store), Authorizer::Exact(vec![])).unwrap();
}

/// Sessions are never resumed, on either side: a resumed session is not verified again,
/// so an SVID that expired since (or whose bundle changed) would go on being accepted.
#[tokio::test]
async fn sessions_are_never_resumed() {
    let w = world();
    let server = Arc::new(w.server(ClientAuth::Required));
    let client = Arc::new(w.client(Some(&w.client_svid)));
    // The client alone would resume (a session cache of its own) if the server let it.
    let mut resuming = (*client).clone();
    resuming.resumption = rustls::client::Resumption::default();
    let resuming = Arc::new(resuming);
    for c in [&client, &resuming] {
        for _ in 0..3 {
            let (s, cl) = handshake_shared(Arc::clone(&server), Arc::clone(c)).await;
            let (s, cl) = (s.unwrap(), cl.unwrap());
            assert_eq!(
                s.get_ref().1.handshake_kind(),
                Some(rustls::HandshakeKind::Full)
            );
            assert_eq!(
                cl.get_ref().1.handshake_kind(),
                Some(rustls::HandshakeKind::Full)
            );
        }
    }
}

/// [`handshake`] with shared configurations (so that a session cache would carry over).
/// SVIDs carry no DNS name: any server name works, the verifier checks the SPIFFE ID.
async fn handshake_shared(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> (ServerSide, ClientSide) {
    let (c, s) = tokio::io::duplex(64 * 1024);
    let acceptor = TlsAcceptor::from(server);
    let connector = TlsConnector::from(client);
    let name = ServerName::try_from("ignored.invalid").unwrap();
    let (mut sr, mut cr) = tokio::join!(acceptor.accept(s), connector.connect(name, c));
    if let (Ok(s), Ok(c)) = (&mut sr, &mut cr) {
        // A message each way, so that tickets (if any) reach the client.
        let (a, b) = tokio::join!(
            async {
                s.write_all(b"ping").await.unwrap();
                s.flush().await.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
            },
            async {
                let mut buf = [0u8; 4];
                c.read_exact(&mut buf).await.unwrap();
                c.write_all(b"pong").await.unwrap();
                c.flush().await.unwrap();
            }
        );
        let _ = (a, b);
    }
    (sr, cr)
}
