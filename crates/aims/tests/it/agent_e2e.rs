//! End to end, issue 4: agent A calls service B with each authentication mechanism.
//!
//! * The AIMS server runs in this process (testkit) with its real Workload API socket.
//! * **Agent A** is the `aims` binary (`aims request`), a separate process identified by
//!   its executable path (`unix:path`), so its SPIFFE ID differs from this process's.
//! * **Service B** is this test process: credentials and bundles from the Workload API
//!   (`aims_agent::WorkloadSource`), an axum router behind `aims-guard`, served on an
//!   mTLS listener (its own X509-SVID, client certificate optional), on a plain HTTP
//!   listener, and behind a TLS-terminating reverse proxy written here.
//!
//! B answers with the caller's SPIFFE ID and the mechanism, so every accepted call shows
//! that B saw A's identity. Rejections are checked by their problem `code`.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aims_agent::{WorkloadEndpoint, WorkloadSource};
use aims_core::{Selector, SpiffeId, TrustDomain};
use aims_guard::{
    AuthenticatedAgent, CollectingSink, Decision, Guard, GuardConfig, GuardLayer, Mechanism,
};
use aims_pki::tls::{Authorizer, ClientAuth};
use aims_server::api::EntrySpec;
use aims_server::testkit::{self, TestServer};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const TD: &str = "example.org";
const A: &str = "spiffe://example.org/agent/a";
const B: &str = "spiffe://example.org/service/b";

pub(crate) fn uid_selector() -> String {
    format!(
        "unix:uid:{}",
        std::fs::metadata("/proc/self").unwrap().uid()
    )
}

fn path_selector(exe: &Path) -> String {
    format!(
        "unix:path:{}",
        std::fs::canonicalize(exe).unwrap().display()
    )
}

pub(crate) fn spec(id: &str, selectors: &[String], wit_ttl: u32) -> EntrySpec {
    EntrySpec {
        spiffe_id: SpiffeId::parse(id).unwrap(),
        selectors: selectors
            .iter()
            .map(|s| Selector::parse(s).unwrap())
            .collect(),
        x509_ttl: 3600,
        jwt_ttl: 300,
        wit_ttl,
        dns_names: vec![],
        hint: None,
        federates_with: vec![],
        parent_id: None,
        admin: false,
        revision: None,
    }
}

/// Registers the `aims` binary as agent A in `ts` (`id`), with WIT lifetime `wit_ttl`.
async fn register_agent(ts: &TestServer, id: &str, wit_ttl: u32) {
    let aims = Path::new(env!("CARGO_BIN_EXE_aims"));
    ts.admin()
        .create_entry(&spec(id, &[uid_selector(), path_selector(aims)], wit_ttl))
        .await
        .unwrap();
}

/// A request as it reached B, before the guard.
#[derive(Debug, Clone)]
struct Recorded {
    method: http::Method,
    path: String,
    headers: http::HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    fn last(&self) -> Recorded {
        self.0
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a recorded request")
    }
}

async fn record(
    axum::extract::State(rec): axum::extract::State<Recorder>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    rec.0.lock().unwrap().push(Recorded {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

async fn whoami(agent: AuthenticatedAgent) -> String {
    format!("{} {}", agent.id(), agent.mechanism().as_str())
}

/// Service B.
struct ServiceB {
    source: WorkloadSource,
    /// `https://127.0.0.1:<port>`: B's own mTLS listener.
    https: String,
    /// `http://127.0.0.1:<port>`: B's plain listener (what the proxy forwards to).
    http: String,
    /// `https://127.0.0.1:<port>`: the TLS-terminating proxy in front of `http`.
    proxy: String,
    recorder: Recorder,
    audit: Arc<CollectingSink>,
}

async fn start_b(ts: &TestServer) -> ServiceB {
    let test_exe = std::env::current_exe().unwrap();
    ts.admin()
        .create_entry(&spec(B, &[uid_selector(), path_selector(&test_exe)], 600))
        .await
        .unwrap();
    let source = WorkloadSource::connect(WorkloadEndpoint::unix(ts.workload_socket()))
        .await
        .unwrap();
    assert_eq!(source.spiffe_id().unwrap().as_str(), B);

    let tls_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = format!(
        "https://127.0.0.1:{}",
        tls_listener.local_addr().unwrap().port()
    );
    let http = format!(
        "http://127.0.0.1:{}",
        plain_listener.local_addr().unwrap().port()
    );
    let proxy = format!(
        "https://127.0.0.1:{}",
        proxy_listener.local_addr().unwrap().port()
    );

    let audit = Arc::new(CollectingSink::default());
    let config = GuardConfig::builder(source.trust_store())
        .authority(&https)
        .authority(&http)
        .authority(&proxy)
        .trust_domain(TrustDomain::new(TD).unwrap())
        .enable(Mechanism::Mtls)
        .enable(Mechanism::WitWpt)
        .enable(Mechanism::WitHttpSig)
        .leeway(0)
        .audit_sink(audit.clone())
        .build()
        .unwrap();
    let guard = Guard::new(config).unwrap();
    let recorder = Recorder::default();
    let router = Router::new()
        .route("/whoami", any(whoami).layer(GuardLayer::new(guard.clone())))
        .route("/other", any(whoami).layer(GuardLayer::new(guard.clone())))
        .route(
            "/mtls-only",
            get(whoami).layer(GuardLayer::new(guard).require([Mechanism::Mtls])),
        )
        .layer(middleware::from_fn_with_state(recorder.clone(), record));

    let tls = Arc::new(
        source
            .tls_server_config(
                Authorizer::AnyInTrustDomains(vec![TrustDomain::new(TD).unwrap()]),
                ClientAuth::Optional,
            )
            .unwrap(),
    );
    tokio::spawn(aims_guard::tls::serve(
        tls_listener,
        router.clone(),
        tls.clone(),
        std::future::pending(),
    ));
    tokio::spawn(async move {
        axum::serve(plain_listener, router).await.unwrap();
    });
    tokio::spawn(reverse_proxy(proxy_listener, tls, http.clone()));
    ServiceB {
        source,
        https,
        http,
        proxy,
        recorder,
        audit,
    }
}

/// A TLS-terminating reverse proxy: TLS in, plain HTTP out to `upstream`, with the
/// `Host` header rewritten to the upstream's (as proxies commonly do).
async fn reverse_proxy(listener: TcpListener, tls: Arc<rustls::ServerConfig>, upstream: String) {
    let acceptor = TlsAcceptor::from(tls);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let client = client.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let client = client.clone();
                    let upstream = upstream.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = http_body_util::BodyExt::collect(body)
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let path = parts
                            .uri
                            .path_and_query()
                            .map(|p| p.as_str())
                            .unwrap_or("/");
                        let mut headers = parts.headers.clone();
                        headers.remove(http::header::HOST);
                        let resp = client
                            .request(parts.method.clone(), format!("{upstream}{path}"))
                            .headers(headers)
                            .body(body)
                            .send()
                            .await;
                        let out = match resp {
                            Ok(r) => {
                                let mut b = http::Response::builder().status(r.status());
                                for (k, v) in r.headers() {
                                    b = b.header(k, v);
                                }
                                b.body(axum::body::Body::from(r.bytes().await.unwrap_or_default()))
                                    .unwrap()
                            }
                            Err(_) => http::Response::builder()
                                .status(502)
                                .body(axum::body::Body::empty())
                                .unwrap(),
                        };
                        Ok::<_, std::convert::Infallible>(out)
                    }
                });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Runs `aims request` as agent A; returns (exit success, stdout, stderr).
async fn aims_request(ts: &TestServer, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aims"))
        .arg("request")
        .args(["--socket", ts.workload_socket().to_str().unwrap()])
        .args(["--timeout", "20"])
        .args(args)
        .env_remove("SPIFFE_ENDPOINT_SOCKET")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends a recorded request again, directly to B's plain listener, with changes.
async fn resend(
    b: &ServiceB,
    rec: &Recorded,
    method: Option<http::Method>,
    path: Option<&str>,
    body: Option<&'static [u8]>,
) -> (u16, String) {
    let mut headers = rec.headers.clone();
    headers.remove(http::header::HOST);
    headers.remove(http::header::CONTENT_LENGTH);
    let resp = reqwest::Client::new()
        .request(
            method.unwrap_or_else(|| rec.method.clone()),
            format!("{}{}", b.http, path.unwrap_or(&rec.path)),
        )
        .headers(headers)
        .body(
            body.map(Bytes::from_static)
                .unwrap_or_else(|| rec.body.clone()),
        )
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let problem: serde_json::Value = resp.json().await.unwrap_or_default();
    (
        status,
        problem["code"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_a_calls_service_b_with_each_mechanism_and_b_sees_a() {
    let ts = testkit::start_default(TD).await.unwrap();
    register_agent(&ts, A, 600).await;
    let b = start_b(&ts).await;

    for (auth, mechanism) in [
        ("mtls", "mtls"),
        ("wpt", "wit-wpt"),
        ("httpsig", "wit-httpsig"),
    ] {
        let url = format!("{}/whoami", b.https);
        let (ok, out, err) =
            aims_request(&ts, &["--url", &url, "--auth", auth, "--server-id", B]).await;
        assert!(ok, "{auth}: {err}");
        assert_eq!(out, format!("{A} {mechanism}"), "{auth}");
    }
    // A POST with a body, signed (Content-Digest covered).
    let url = format!("{}/whoami", b.https);
    let (ok, out, err) = aims_request(
        &ts,
        &[
            "--url",
            &url,
            "-X",
            "POST",
            "--data",
            "{\"qty\":1}",
            "-H",
            "content-type: application/json",
            "--auth",
            "httpsig",
            "--server-id",
            B,
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, format!("{A} wit-httpsig"));

    // A route that requires mTLS refuses a WPT caller, and takes the mTLS one.
    let url = format!("{}/mtls-only", b.https);
    let (ok, _, err) = aims_request(&ts, &["--url", &url, "--auth", "wpt", "--server-id", B]).await;
    assert!(!ok && err.contains("401"), "{err}");
    let (ok, out, _) =
        aims_request(&ts, &["--url", &url, "--auth", "mtls", "--server-id", B]).await;
    assert!(ok);
    assert_eq!(out, format!("{A} mtls"));

    // No credentials at all: 401.
    let url = format!("{}/whoami", b.https);
    let (ok, _, err) =
        aims_request(&ts, &["--url", &url, "--auth", "none", "--server-id", B]).await;
    assert!(!ok && err.contains("401"), "{err}");

    // The audit log saw A accepted and the anonymous caller denied.
    let events = b.audit.events();
    assert!(
        events
            .iter()
            .any(|e| e.agent == A && e.decision == Decision::Allow)
    );
    assert!(events.iter().any(|e| e.decision != Decision::Allow));
    drop(b.source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_tls_terminating_proxy_wpt_and_http_signatures_still_authenticate_a() {
    let ts = testkit::start_default(TD).await.unwrap();
    register_agent(&ts, A, 600).await;
    let b = start_b(&ts).await;
    for (auth, mechanism) in [("wpt", "wit-wpt"), ("httpsig", "wit-httpsig")] {
        let url = format!("{}/whoami?x=1", b.proxy);
        let (ok, out, err) =
            aims_request(&ts, &["--url", &url, "--auth", auth, "--server-id", B]).await;
        assert!(ok, "{auth} through the proxy: {err}");
        assert_eq!(out, format!("{A} {mechanism}"));
        // B saw the request over plain HTTP with the Host rewritten by the proxy.
        let rec = b.recorder.last();
        assert_ne!(
            rec.headers
                .get(http::header::HOST)
                .unwrap()
                .to_str()
                .unwrap(),
            b.proxy.trim_start_matches("https://")
        );
    }
    // mTLS does not survive TLS termination: the proxy presents no client certificate.
    let url = format!("{}/mtls-only", b.proxy);
    let (ok, _, err) =
        aims_request(&ts, &["--url", &url, "--auth", "mtls", "--server-id", B]).await;
    assert!(!ok && err.contains("401"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_or_altered_requests_from_a_are_rejected_for_the_right_reason() {
    let ts = testkit::start_default(TD).await.unwrap();
    register_agent(&ts, A, 600).await;
    let b = start_b(&ts).await;
    let url = format!("{}/whoami", b.http);

    // HTTP signature: record a signed POST, then replay and alter it.
    let (ok, _, err) = aims_request(
        &ts,
        &[
            "--url",
            &url,
            "-X",
            "POST",
            "--data",
            "{\"qty\":1}",
            "--auth",
            "httpsig",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let rec = b.recorder.last();
    assert_eq!(
        resend(&b, &rec, None, None, None).await,
        (400, "httpsig-replayed".into())
    );
    let (status, code) = resend(&b, &rec, None, None, Some(b"{\"qty\":9}")).await;
    assert_eq!(status, 400);
    assert!(code.contains("digest"), "changed body: {code}");
    let (status, code) = resend(&b, &rec, Some(http::Method::PUT), None, None).await;
    assert_eq!(
        (status, code.as_str()),
        (400, "httpsig-bad-signature"),
        "changed method"
    );
    let (status, code) = resend(&b, &rec, None, Some("/other"), None).await;
    assert_eq!(status, 400, "changed path: {code}");
    assert!(code.starts_with("httpsig-"), "changed path: {code}");

    // WPT: replay and a changed path.
    let (ok, _, err) = aims_request(&ts, &["--url", &url, "--auth", "wpt"]).await;
    assert!(ok, "{err}");
    let rec = b.recorder.last();
    assert_eq!(
        resend(&b, &rec, None, None, None).await,
        (400, "wpt-replayed".into())
    );
    assert_eq!(
        resend(&b, &rec, None, Some("/other"), None).await,
        (400, "wpt-audience-mismatch".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_wit_and_a_wit_of_an_untrusted_trust_domain_are_rejected() {
    let ts = testkit::start_default(TD).await.unwrap();
    // A's WITs live 2 seconds.
    register_agent(&ts, A, 2).await;
    let b = start_b(&ts).await;
    let url = format!("{}/whoami", b.http);
    let (ok, _, err) = aims_request(&ts, &["--url", &url, "--auth", "wpt"]).await;
    assert!(ok, "{err}");
    let rec = b.recorder.last();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        resend(&b, &rec, None, None, None).await,
        (400, "wit-expired".into())
    );

    // An agent of another trust domain, which B does not trust.
    let other = testkit::start_default("other.example").await.unwrap();
    register_agent(&other, "spiffe://other.example/agent/a", 600).await;
    for auth in ["wpt", "httpsig"] {
        let (ok, _, err) = aims_request(&other, &["--url", &url, "--auth", auth]).await;
        assert!(!ok && err.contains("400"), "{auth}: {err}");
        let rec = b.recorder.last();
        assert!(rec.headers.contains_key("workload-identity-token"));
    }
    let denied: Vec<_> = b
        .audit
        .events()
        .into_iter()
        .filter(|e| e.decision != Decision::Allow)
        .collect();
    assert!(
        denied
            .iter()
            .filter(|e| e.decision.reason().starts_with("wit-")
                || e.decision.reason() == "httpsig-invalid-wit")
            .count()
            >= 3,
        "{denied:?}"
    );
}

/// Issue 4 part 7 (DPoP in the signing client) with issue 5's authorization server:
/// the agent gets a DPoP-bound access token from AIMS by client credentials,
/// authenticated with its JWT-SVID (never a secret), then calls B with `Auth::Dpop`;
/// B (aims-guard, keys from the AS's JWKS) sees the agent's SPIFFE ID. A token for
/// another resource and a plain Bearer use of the bound token are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_gets_a_dpop_bound_token_by_its_jwt_svid_and_calls_b_with_dpop() {
    use aims_agent::oauth::TokenRequestSpec;
    use aims_agent::{AgentClient, Auth};
    use aims_guard::{AccessTokenIssuer, JwksCache};
    use aims_oauth::client::{AuthMethod, ClientMetadata, GrantType, TokenFormat};

    let ts = testkit::start_default(TD).await.unwrap();
    let issuer = ts.server.endpoints().oauth_issuer.clone().unwrap();
    let test_exe = std::env::current_exe().unwrap();
    ts.admin()
        .create_entry(&spec(A, &[uid_selector(), path_selector(&test_exe)], 600))
        .await
        .unwrap();
    let source = WorkloadSource::connect(WorkloadEndpoint::unix(ts.workload_socket()))
        .await
        .unwrap();

    // B: a plain listener whose resource identifier is its origin + "/".
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let resource = format!("{origin}/");
    ts.admin()
        .create_client(&ClientMetadata {
            client_id: A.to_owned(),
            client_name: Some("agent a".into()),
            token_endpoint_auth_method: AuthMethod::SpiffeJwt,
            jwks: None,
            jwks_uri: None,
            spiffe_id: Some(A.to_owned()),
            tls_client_auth_san_uri: None,
            grant_types: vec![GrantType::ClientCredentials],
            scope: "orders:read".into(),
            resources: vec![resource.clone(), "https://elsewhere.example.test/".into()],
            introspect_resources: Vec::new(),
            redirect_uris: vec![],
            authorization_details_types: vec![],
            access_token_lifetime: None,
            refresh_token_lifetime: None,
            dpop_bound_access_tokens: true,
            tls_client_certificate_bound_access_tokens: false,
            access_token_format: TokenFormat::Jwt,
            client_secret_hash: None,
        })
        .await
        .unwrap();
    let jwks = JwksCache::builder(&issuer, reqwest::Client::new())
        .build()
        .unwrap();
    let audit = Arc::new(CollectingSink::default());
    let guard = Guard::new(
        GuardConfig::builder(source.trust_store())
            .authority(&origin)
            .enable(Mechanism::Dpop)
            .access_token_issuer(AccessTokenIssuer::new(&issuer, &resource).jwks(jwks))
            .audit_sink(audit.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    let router = Router::new().route("/whoami", get(whoami).layer(GuardLayer::new(guard)));
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });

    let client = AgentClient::new(&source).unwrap();
    let spec = |resource: &str| TokenRequestSpec {
        issuer: issuer.clone(),
        token_endpoint: format!("{issuer}/oauth/token"),
        client_id: None,
        resource: Some(resource.to_owned()),
        scope: Some("orders:read".into()),
        dpop: true,
    };
    let token = client.client_credentials(&spec(&resource)).await.unwrap();
    assert_eq!(token.token_type, "DPoP");
    let call = |auth: Auth| {
        let client = client.clone();
        let url = format!("{origin}/whoami");
        async move {
            client
                .send(http::Request::get(url).body(Bytes::new()).unwrap(), &auth)
                .await
                .unwrap()
        }
    };
    let resp = call(Auth::Dpop {
        access_token: token.access_token.clone(),
    })
    .await;
    assert_eq!(
        resp.status(),
        200,
        "{:?}",
        String::from_utf8_lossy(resp.body())
    );
    assert_eq!(&resp.body()[..], format!("{A} dpop").as_bytes());

    // A token for another resource (audience confusion) is refused.
    let other = client
        .client_credentials(&spec("https://elsewhere.example.test/"))
        .await
        .unwrap();
    let resp = call(Auth::Dpop {
        access_token: other.access_token,
    })
    .await;
    assert_eq!(resp.status(), 401);
    // The DPoP-bound token without its proof, as a Bearer token: refused.
    let mut req = http::Request::get(format!("{origin}/whoami"))
        .body(Bytes::new())
        .unwrap();
    req.headers_mut().insert(
        http::header::AUTHORIZATION,
        format!("Bearer {}", token.access_token).parse().unwrap(),
    );
    let resp = client.send(req, &Auth::None).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        audit
            .events()
            .iter()
            .any(|e| e.agent == A && e.decision == Decision::Allow && e.mechanism == Some("dpop"))
    );
}
