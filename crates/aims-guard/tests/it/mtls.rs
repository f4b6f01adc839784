//! The mTLS listener, SVID rotation, and a TLS-terminating reverse proxy in front of a
//! guarded service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aims_core::SpiffeId;
use aims_guard::tls::{ServerIdentity, serve, server_config};
use aims_pki::X509Svid;
use aims_pki::tls::{Authorizer, client_config};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::common::{AGENT, AUTHORITY, Env, app, init};
use crate::wimse::signed;

pub fn svid(env: &Env, id: &str) -> X509Svid {
    env.ca
        .issue_x509_svid(&SpiffeId::parse(id).unwrap(), Duration::from_secs(600), &[])
        .unwrap()
}

pub fn tls_client(env: &Env, svid: Option<&X509Svid>, server: &str) -> reqwest::Client {
    init();
    let cfg = client_config(
        svid,
        env.trust.clone(),
        Authorizer::Exact(vec![SpiffeId::parse(server).unwrap()]),
    )
    .unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(cfg)
        .build()
        .unwrap()
}

pub async fn start_tls(
    env: &Env,
    identity: Arc<ServerIdentity>,
    router: Router,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let cfg = server_config(
        identity,
        env.trust.clone(),
        Authorizer::AnyInTrustDomains(vec![env.td.clone()]),
        env.arc_clock(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router, cfg, async move {
        let _ = rx.await;
    }));
    (addr, tx, task)
}

pub const SVC: &str = "spiffe://example.org/svc-b";

#[tokio::test]
async fn mtls_routes_rotation_and_shutdown() {
    let env = Env::new();
    let guard = env.guard();
    let identity = Arc::new(ServerIdentity::new(&svid(&env, SVC)).unwrap());
    let (addr, stop, task) = start_tls(&env, identity.clone(), app(&guard)).await;
    let client_svid = svid(&env, AGENT);

    // With a client certificate: the handler sees the caller's SPIFFE ID.
    let r = tls_client(&env, Some(&client_svid), SVC)
        .get(format!("https://{addr}/mtls-only"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], AGENT);
    assert_eq!(v["mechanism"], "mtls");
    assert_eq!(v["expires_at"], client_svid.not_after());

    // Without: the TLS layer lets it in, the route refuses with 401.
    let r = tls_client(&env, None, SVC)
        .get(format!("https://{addr}/mtls-only"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("Mutual-TLS")
    );

    // A route requiring WPT does not take the certificate.
    let r = tls_client(&env, Some(&client_svid), SVC)
        .get(format!("https://{addr}/wpt-only"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Rotation: the new SVID is served to the next handshake, no restart.
    const ROTATED: &str = "spiffe://example.org/svc-b-rotated";
    assert!(
        tls_client(&env, None, ROTATED)
            .get(format!("https://{addr}/optional"))
            .send()
            .await
            .is_err()
    );
    identity.update(&svid(&env, ROTATED)).unwrap();
    let r = tls_client(&env, None, ROTATED)
        .get(format!("https://{addr}/optional"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "anonymous");
    assert_eq!(identity.spiffe_id().as_str(), ROTATED);

    // Graceful shutdown.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
}

/// TLS in, plain HTTP out to `backend`, with the Host header rewritten.
async fn proxy(State(backend): State<SocketAddr>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out =
        crate::common::client().request(parts.method.clone(), format!("http://{backend}{path}"));
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let r = out
        .header("host", "backend.internal")
        .body(body)
        .send()
        .await
        .unwrap();
    let mut resp = Response::builder().status(r.status());
    for (k, v) in r.headers() {
        resp = resp.header(k, v);
    }
    resp.body(Body::from(r.bytes().await.unwrap())).unwrap()
}

#[tokio::test]
async fn wpt_and_signatures_authenticate_through_a_tls_terminating_proxy() {
    let env = Env::new();
    let guard = env.guard();
    let backend = crate::common::serve(app(&guard)).await;
    const PROXY: &str = "spiffe://example.org/proxy";
    let identity = Arc::new(ServerIdentity::new(&svid(&env, PROXY)).unwrap());
    let router = Router::new().fallback(proxy).with_state(backend);
    let (addr, _stop, _task) = start_tls(&env, identity, router).await;
    let c = tls_client(&env, None, PROXY);

    let (key, wit) = env.wit_for(AGENT, 3600);
    let wpt = env.wpt(&key, &wit, &format!("{AUTHORITY}/whoami"), None);
    let r = c
        .get(format!("https://{addr}/whoami"))
        .header("workload-identity-token", &wit)
        .header("workload-proof-token", &wpt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["id"].as_str(), v["mechanism"].as_str()),
        (Some(AGENT), Some("wit-wpt"))
    );

    // The HTTP signature, sent through the proxy.
    let req = signed(
        &env,
        addr,
        &key,
        &wit,
        ("POST", "/whoami", b"via proxy"),
        ("POST", "/whoami", b"via proxy"),
        false,
    )
    .build()
    .unwrap();
    let mut through = c
        .post(format!("https://{addr}/whoami"))
        .body(req.body().and_then(|b| b.as_bytes()).unwrap().to_vec());
    for (k, v) in req.headers() {
        through = through.header(k, v);
    }
    let r = through.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["mechanism"], "wit-httpsig");
    assert_eq!(v["body"], "via proxy");
}
