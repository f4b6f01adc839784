//! The OAuth mTLS listener (`[oauth] mtls_listen`, RFC 8705 endpoint aliases): client
//! authentication with a certificate (`spiffe_x509`, `tls_client_auth`,
//! `self_signed_tls_client_auth`) and certificate-bound access tokens.

use std::sync::Arc;
use std::time::Duration;

use aims_core::{SpiffeId, TrustDomain};
use aims_crypto::{Algorithm, Jwks, Signer as _, SigningKey};
use aims_jose::dpop;
use aims_pki::tls::{Authorizer, ServerTrust};
use aims_pki::{CertificateAuthority, TrustStore, X509Svid};
use aims_server::api::{AuthMethod, ClientMetadata};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use serde_json::Value;

use crate::common::{now, system_clock};
use crate::oauth::{As, error_of, form, pkjwt_client, start};

const API: &str = "https://api.example.test/";
const AGENT: &str = "spiffe://example.org/agent/a";

/// A certificate and its key, as a client presents them.
#[derive(Clone)]
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<CertifiedKey>,
}

impl Identity {
    fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    fn x5t(&self) -> String {
        aims_pki::x5t_s256(self.leaf())
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity")
    }
}

/// Always presents the same certificate.
#[derive(Debug)]
struct Presents(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for Presents {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn identity(chain: Vec<CertificateDer<'static>>, pkcs8: Vec<u8>) -> Identity {
    let key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
        PrivatePkcs8KeyDer::from(pkcs8),
    ))
    .unwrap();
    Identity {
        key: Arc::new(CertifiedKey::new(chain.clone(), key)),
        chain,
    }
}

fn svid_identity(svid: &X509Svid) -> Identity {
    identity(svid.chain().to_vec(), svid.private_key_pkcs8().to_vec())
}

/// A self-signed certificate (not a CA) with `uri` as its URI SAN, if any.
fn self_signed(uri: Option<&str>) -> Identity {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "self-signed agent");
    if let Some(u) = uri {
        p.subject_alt_names = vec![rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from(u).unwrap(),
        )];
    }
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let cert = p.self_signed(&key).unwrap();
    identity(vec![cert.der().clone()], key.serialize_der())
}

/// An X509-SVID of this server's CA.
fn issue(a: &As, id: &str) -> Identity {
    let svid =
        a.ts.server
            .state()
            .keys
            .current()
            .unwrap()
            .ca()
            .unwrap()
            .ca
            .issue_x509_svid(&SpiffeId::parse(id).unwrap(), Duration::from_secs(600), &[])
            .unwrap();
    svid_identity(&svid)
}

/// An X509-SVID for `id` of a CA the server does not trust (same trust domain name,
/// another key).
fn foreign(id: &str) -> Identity {
    let ca = CertificateAuthority::new_root(
        &TrustDomain::new("example.org").unwrap(),
        Duration::from_secs(86_400),
        system_clock(),
    )
    .unwrap();
    let svid = ca
        .issue_x509_svid(&SpiffeId::parse(id).unwrap(), Duration::from_secs(600), &[])
        .unwrap();
    svid_identity(&svid)
}

async fn start_mtls() -> (As, String) {
    let a = start(|c| c.oauth.mtls_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let base = format!("https://{}", a.ts.server.endpoints().oauth_mtls.unwrap());
    (a, base)
}

/// A client of the mTLS listener verifying the server's SVID, presenting `who`.
fn client(a: &As, who: Option<&Identity>) -> reqwest::Client {
    let state = a.ts.server.state();
    let trust = Arc::new(TrustStore::from_bundles([(**state
        .keys
        .current()
        .unwrap()
        .bundle())
    .clone()]));
    let resolver = who.map(|i| {
        Arc::new(Presents(Arc::clone(&i.key))) as Arc<dyn rustls::client::ResolvesClientCert>
    });
    let tls = aims_pki::tls::client_config_with_resolver(
        resolver,
        ServerTrust::Spiffe(
            trust,
            Authorizer::Exact(vec![state.tls.spiffe_id().clone()]),
        ),
        system_clock(),
    )
    .unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    pairs: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// A client_credentials request naming `client_id` only (certificate methods).
async fn cert_token(http: &reqwest::Client, base: &str, client_id: &str) -> reqwest::Response {
    post(
        http,
        &format!("{base}/oauth/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("resource", API),
        ],
        &[],
    )
    .await
}

fn metadata(id: &str, method: AuthMethod) -> ClientMetadata {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut m = pkjwt_client(id, &key);
    m.token_endpoint_auth_method = method;
    m.jwks = None;
    m
}

fn spiffe_x509_client(id: &str, pattern: &str) -> ClientMetadata {
    let mut m = metadata(id, AuthMethod::SpiffeX509);
    m.spiffe_id = Some(pattern.to_owned());
    m
}

fn tls_client(id: &str, san: &str) -> ClientMetadata {
    let mut m = metadata(id, AuthMethod::TlsClientAuth);
    m.tls_client_auth_san_uri = Some(san.to_owned());
    m
}

fn self_signed_client(id: &str, certs: &[&Identity]) -> ClientMetadata {
    let mut m = metadata(id, AuthMethod::SelfSignedTlsClientAuth);
    m.jwks = Some(Jwks {
        keys: certs
            .iter()
            .map(|c| aims_pki::certificate_jwk(c.leaf()).unwrap())
            .collect(),
    });
    m
}

async fn token_of(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn assert_invalid_client(r: reqwest::Response) {
    let (status, error, _) = error_of(r).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
}

/// 401 `invalid_client` whose description says `why`.
async fn assert_refused_because(r: reqwest::Response, why: &str) {
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let d = body["error_description"].as_str().unwrap_or_default();
    assert!(d.contains(why), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_the_mtls_aliases_and_methods() {
    let (a, base) = start_mtls().await;
    let m: Value = a
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(
        m["mtls_endpoint_aliases"],
        serde_json::json!({
            "token_endpoint": format!("{base}/oauth/token"),
            "introspection_endpoint": format!("{base}/oauth/introspect"),
            "revocation_endpoint": format!("{base}/oauth/revoke"),
            "pushed_authorization_request_endpoint": format!("{base}/oauth/par"),
        })
    );
    let methods = serde_json::json!([
        "private_key_jwt",
        "spiffe_jwt",
        "spiffe_wit",
        "tls_client_auth",
        "self_signed_tls_client_auth",
        "spiffe_x509"
    ]);
    assert_eq!(m["token_endpoint_auth_methods_supported"], methods);
    assert_eq!(m["introspection_endpoint_auth_methods_supported"], methods);
    assert_eq!(m["revocation_endpoint_auth_methods_supported"], methods);
    // The regular endpoints stay on the issuer.
    assert_eq!(m["token_endpoint"], format!("{}/oauth/token", a.issuer));
    a.ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spiffe_x509_client_gets_a_certificate_bound_token() {
    let (a, base) = start_mtls().await;
    a.ts.admin()
        .create_client(&spiffe_x509_client(
            "x509-agent",
            "spiffe://example.org/agent/*",
        ))
        .await
        .unwrap();
    let svid = issue(&a, AGENT);
    let http = client(&a, Some(&svid));
    let at = token_of(cert_token(&http, &base, "x509-agent").await).await;
    let claims = a.verify(&at, API).await;
    assert_eq!(claims.client_id, AGENT);
    let cnf = claims.cnf.expect("certificate-bound");
    assert_eq!(cnf.x5t_s256.as_deref(), Some(svid.x5t().as_str()));
    assert!(cnf.jkt.is_none());

    // Introspection and revocation through the aliases, authenticated the same way.
    let introspect = format!("{base}/oauth/introspect");
    let pairs = [("token", at.as_str()), ("client_id", "x509-agent")];
    let r = post(&http, &introspect, &pairs, &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["active"], true);
    assert_eq!(v["cnf"]["x5t#S256"], svid.x5t());
    let r = post(&http, &format!("{base}/oauth/revoke"), &pairs, &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = post(&http, &introspect, &pairs, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["active"], false);

    // A SPIFFE ID outside the client's pattern.
    let other = issue(&a, "spiffe://example.org/other/b");
    assert_invalid_client(cert_token(&client(&a, Some(&other)), &base, "x509-agent").await).await;
    // No certificate on the mTLS listener: the handshake succeeds, authentication fails.
    assert_refused_because(
        cert_token(&client(&a, None), &base, "x509-agent").await,
        "sent no client certificate",
    )
    .await;
    a.ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_proof_may_name_the_mtls_alias() {
    let (a, base) = start_mtls().await;
    a.ts.admin()
        .create_client(&spiffe_x509_client("x509-dpop", AGENT))
        .await
        .unwrap();
    let http = client(&a, Some(&issue(&a, AGENT)));
    let dpop_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let url = format!("{base}/oauth/token");
    let pairs = [
        ("grant_type", "client_credentials"),
        ("client_id", "x509-dpop"),
        ("resource", API),
    ];
    let proof = dpop::create_proof(&dpop_key, "POST", &url, None, None, now()).unwrap();
    let r = post(&http, &url, &pairs, &[("dpop", &proof)]).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let claims = a.verify(body["access_token"].as_str().unwrap(), API).await;
    let cnf = claims.cnf.unwrap();
    assert!(cnf.jkt.is_some() && cnf.x5t_s256.is_none());
    // A proof for another URL is still refused.
    let proof = dpop::create_proof(
        &dpop_key,
        "POST",
        "https://elsewhere.test/oauth/token",
        None,
        None,
        now(),
    )
    .unwrap();
    let (status, error, _) = error_of(post(&http, &url, &pairs, &[("dpop", &proof)]).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_dpop_proof"));
    a.ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_auth_matches_the_registered_san_uri() {
    let (a, base) = start_mtls().await;
    let admin = a.ts.admin();
    admin
        .create_client(&tls_client("tls-a", AGENT))
        .await
        .unwrap();
    admin
        .create_client(&tls_client("tls-b", "spiffe://example.org/agent/b"))
        .await
        .unwrap();
    let svid = issue(&a, AGENT);
    let http = client(&a, Some(&svid));
    let at = token_of(cert_token(&http, &base, "tls-a").await).await;
    let claims = a.verify(&at, API).await;
    assert_eq!(
        claims.cnf.unwrap().x5t_s256.as_deref(),
        Some(svid.x5t().as_str())
    );
    // Another client's SAN URI: refused.
    assert_invalid_client(cert_token(&http, &base, "tls-b").await).await;
    a.ts.server.shutdown().await;
}

/// An operator's CA for `tls_client_auth` (RFC 8705 §2.1 outside SPIFFE): its PEM, and
/// a leaf maker.
struct OperatorCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl OperatorCa {
    fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let pem = p.self_signed(&key).unwrap().pem();
        Self {
            params: p,
            key,
            pem,
        }
    }

    /// A client certificate with `uri` as its URI SAN and the `clientAuth` usage.
    fn client_certificate(&self, uri: &str) -> Identity {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "pki agent");
        p.subject_alt_names = vec![rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from(uri).unwrap(),
        )];
        p.is_ca = rcgen::IsCa::ExplicitNoCa;
        p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = p.signed_by(&key, &issuer).unwrap();
        identity(vec![cert.der().clone()], key.serialize_der())
    }
}

/// RFC 8705 §2.1 with an operator's PKI (`[oauth] tls_client_auth_ca_file`): a
/// certificate of a configured CA whose URI SAN is the registered one gets a bound
/// token; another SAN, or a certificate of another CA, is refused. X509-SVIDs still
/// work for `tls_client_auth` clients registered with a SPIFFE ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_auth_with_an_operator_ca() {
    const URI: &str = "https://agents.example.test/pki-agent";
    let operator = OperatorCa::new("operator client CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("client-cas.pem");
    std::fs::write(&ca_file, &operator.pem).unwrap();
    let a = start(|c| {
        c.oauth.mtls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.oauth.tls_client_auth_ca_file = Some(ca_file.clone());
    })
    .await;
    let base = format!("https://{}", a.ts.server.endpoints().oauth_mtls.unwrap());
    let admin = a.ts.admin();
    admin
        .create_client(&tls_client("pki-agent", URI))
        .await
        .unwrap();
    admin
        .create_client(&tls_client("svid-agent", AGENT))
        .await
        .unwrap();

    let cert = operator.client_certificate(URI);
    let at = token_of(cert_token(&client(&a, Some(&cert)), &base, "pki-agent").await).await;
    let claims = a.verify(&at, API).await;
    // No SPIFFE ID was proven: the token names the registered client.
    assert_eq!(claims.client_id, "pki-agent");
    assert_eq!(
        claims.cnf.unwrap().x5t_s256.as_deref(),
        Some(cert.x5t().as_str())
    );
    // The same CA, another URI SAN: not this client's.
    let other_san = operator.client_certificate("https://agents.example.test/someone-else");
    assert_refused_because(
        cert_token(&client(&a, Some(&other_san)), &base, "pki-agent").await,
        "URI SAN is not registered",
    )
    .await;
    // The right URI SAN from a CA that is not configured.
    let stranger = OperatorCa::new("unknown CA").client_certificate(URI);
    assert_refused_because(
        cert_token(&client(&a, Some(&stranger)), &base, "pki-agent").await,
        "nor issued by a configured client CA",
    )
    .await;
    // SVIDs keep working for tls_client_auth.
    let svid = issue(&a, AGENT);
    token_of(cert_token(&client(&a, Some(&svid)), &base, "svid-agent").await).await;
    a.ts.server.shutdown().await;
}

/// Without `tls_client_auth_ca_file`, a certificate of an operator's CA is no SVID and is
/// refused, whatever its URI SAN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_auth_without_an_operator_ca_takes_only_svids() {
    const URI: &str = "https://agents.example.test/pki-agent";
    let (a, base) = start_mtls().await;
    a.ts.admin()
        .create_client(&tls_client("pki-agent", URI))
        .await
        .unwrap();
    let cert = OperatorCa::new("operator client CA").client_certificate(URI);
    assert_refused_because(
        cert_token(&client(&a, Some(&cert)), &base, "pki-agent").await,
        "not an X509-SVID",
    )
    .await;
    a.ts.server.shutdown().await;

    // A CA file that is missing, or holds no certificate, stops the server at start
    // with a message naming the setting.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here").unwrap();
    for path in [dir.path().join("missing.pem"), empty] {
        let started = aims_server::testkit::start_with("example.org", system_clock(), |c| {
            c.oauth.mtls_listen = Some("127.0.0.1:0".parse().unwrap());
            c.oauth.tls_client_auth_ca_file = Some(path.clone());
        })
        .await;
        let Err(e) = started else {
            panic!("the server must not start with {}", path.display())
        };
        assert!(e.to_string().contains("tls_client_auth_ca_file"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificate_must_be_registered() {
    let (a, base) = start_mtls().await;
    let mine = self_signed(None);
    let spare = self_signed(None);
    a.ts.admin()
        .create_client(&self_signed_client("self-signed", &[&spare, &mine]))
        .await
        .unwrap();
    let at = token_of(cert_token(&client(&a, Some(&mine)), &base, "self-signed").await).await;
    let claims = a.verify(&at, API).await;
    assert_eq!(claims.client_id, "self-signed");
    assert_eq!(
        claims.cnf.unwrap().x5t_s256.as_deref(),
        Some(mine.x5t().as_str())
    );
    // Another self-signed certificate, and an SVID of the server's own CA: not registered.
    let other = self_signed(None);
    let why = "not one registered for this client";
    assert_refused_because(
        cert_token(&client(&a, Some(&other)), &base, "self-signed").await,
        why,
    )
    .await;
    let svid = issue(&a, AGENT);
    assert_refused_because(
        cert_token(&client(&a, Some(&svid)), &base, "self-signed").await,
        why,
    )
    .await;
    // The admin API refuses a self-signed client without a certificate in its JWKS.
    let mut bad = self_signed_client("no-cert", &[&mine]);
    bad.jwks = Some(Jwks {
        keys: vec![
            SigningKey::generate(Algorithm::ES256)
                .unwrap()
                .public_jwk()
                .clone(),
        ],
    });
    assert!(a.ts.admin().create_client(&bad).await.is_err());
    a.ts.server.shutdown().await;
}

/// RFC 8705 §2.2 with the certificates registered by `jwks_uri`: fetched once and
/// cached; a certificate the cached set lacks makes the server fetch again (rotation),
/// at most once per minimum refresh interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificates_by_jwks_uri_follow_rotation() {
    use std::sync::atomic::Ordering;

    use aims_core::Clock as _;

    use crate::oauth_secrets::{Answer, KeyServer};

    let t0 = aims_core::SystemClock.now();
    let clock = aims_core::ManualClock::new(t0);
    let a = crate::oauth::start_with_clock(Arc::new(clock.clone()), |c| {
        c.oauth.mtls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.oauth.allow_http_jwks_uri = true;
    })
    .await;
    let base = format!("https://{}", a.ts.server.endpoints().oauth_mtls.unwrap());
    let cert_keys = |certs: &[&Identity]| {
        Answer::Keys(Jwks {
            keys: certs
                .iter()
                .map(|c| aims_pki::certificate_jwk(c.leaf()).unwrap())
                .collect(),
        })
    };
    let first = self_signed(None);
    let ks = KeyServer::start(cert_keys(&[&first])).await;
    let mut m = metadata("self-uri", AuthMethod::SelfSignedTlsClientAuth);
    m.jwks_uri = Some(ks.url.clone());
    a.ts.admin().create_client(&m).await.unwrap();

    let at = token_of(cert_token(&client(&a, Some(&first)), &base, "self-uri").await).await;
    assert_eq!(
        a.verify(&at, API).await.cnf.unwrap().x5t_s256.as_deref(),
        Some(first.x5t().as_str())
    );
    token_of(cert_token(&client(&a, Some(&first)), &base, "self-uri").await).await;
    assert_eq!(ks.hits.load(Ordering::SeqCst), 1, "the set is cached");

    // The client publishes a new certificate. Within the refresh interval the server
    // does not fetch again, so the new certificate is refused.
    let second = self_signed(None);
    ks.set(cert_keys(&[&second]));
    let why = "not one registered for this client";
    assert_refused_because(
        cert_token(&client(&a, Some(&second)), &base, "self-uri").await,
        why,
    )
    .await;
    assert_eq!(ks.hits.load(Ordering::SeqCst), 1);
    // After it, the unknown certificate makes the server fetch the new set once.
    clock.set(t0 + 11);
    let at = token_of(cert_token(&client(&a, Some(&second)), &base, "self-uri").await).await;
    assert_eq!(
        a.verify(&at, API).await.cnf.unwrap().x5t_s256.as_deref(),
        Some(second.x5t().as_str())
    );
    assert_eq!(ks.hits.load(Ordering::SeqCst), 2);
    // The retired certificate is refused, and does not make the server fetch again.
    assert_refused_because(
        cert_token(&client(&a, Some(&first)), &base, "self-uri").await,
        why,
    )
    .await;
    assert_eq!(ks.hits.load(Ordering::SeqCst), 2);
    a.ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_of_untrusted_cas_are_not_svids() {
    let (a, base) = start_mtls().await;
    let admin = a.ts.admin();
    admin
        .create_client(&spiffe_x509_client("x509", AGENT))
        .await
        .unwrap();
    admin
        .create_client(&tls_client("tls", AGENT))
        .await
        .unwrap();
    // Same SPIFFE ID, signed by another CA; or self-signed with the SPIFFE ID as SAN.
    for who in [foreign(AGENT), self_signed(Some(AGENT))] {
        let http = client(&a, Some(&who));
        for id in ["x509", "tls"] {
            let r = cert_token(&http, &base, id).await;
            assert_refused_because(r, "not an X509-SVID of a trusted trust domain").await;
        }
    }
    a.ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_listener_never_accepts_certificate_methods() {
    let (a, _base) = start_mtls().await;
    let cert = self_signed(None);
    let admin = a.ts.admin();
    admin
        .create_client(&spiffe_x509_client("x509", AGENT))
        .await
        .unwrap();
    admin
        .create_client(&tls_client("tls", AGENT))
        .await
        .unwrap();
    admin
        .create_client(&self_signed_client("self", &[&cert]))
        .await
        .unwrap();
    for id in ["x509", "tls", "self"] {
        for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
            let r = a
                .post(
                    path,
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_id", id),
                        ("token", "x"),
                    ],
                    &[],
                )
                .await;
            assert_refused_because(r, "sent no client certificate").await;
        }
    }
    a.ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_over_mtls_binds_only_when_asked() {
    let (a, base) = start_mtls().await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut bound = pkjwt_client("pk-bound", &key);
    bound.tls_client_certificate_bound_access_tokens = true;
    a.ts.admin().create_client(&bound).await.unwrap();
    a.ts.admin()
        .create_client(&pkjwt_client("pk-plain", &key))
        .await
        .unwrap();
    let cert = self_signed(None);
    let http = client(&a, Some(&cert));
    let url = format!("{base}/oauth/token");
    let mut cnfs = Vec::new();
    for id in ["pk-bound", "pk-plain"] {
        let assertion = a.assertion(id, &key);
        let pairs = [
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                aims_jose::client_assertion::ASSERTION_TYPE,
            ),
            ("client_assertion", assertion.as_str()),
            ("resource", API),
        ];
        let at = token_of(post(&http, &url, &pairs, &[]).await).await;
        cnfs.push(a.verify(&at, API).await.cnf);
    }
    assert_eq!(
        cnfs[0].as_ref().and_then(|c| c.x5t_s256.clone()),
        Some(cert.x5t())
    );
    assert!(cnfs[1].is_none());
    a.ts.server.shutdown().await;
}
