//! WIT + WPT and WIMSE HTTP signatures at the HTTP layer.

use std::net::SocketAddr;
use std::sync::Arc;

use aims_crypto::{Signer, SigningKey};
use aims_guard::{Guard, ResponseSigning};
use aims_httpsig::wimse::RequestSigner;
use serde_json::Value;

use crate::common::{AGENT, AUTHORITY, Env, app, client, problem_code, serve};

const WIT: &str = "workload-identity-token";
const WPT: &str = "workload-proof-token";

async fn start(env: &Env) -> (Guard, SocketAddr) {
    let guard = env.guard();
    let addr = serve(app(&guard)).await;
    (guard, addr)
}

/// A request signed for `AUTHORITY + sign_path` with `sign_method`, as a reqwest request
/// to `addr + send_path` with `send_method` and `send_body`.
#[allow(clippy::too_many_arguments)]
pub fn signed(
    env: &Env,
    addr: SocketAddr,
    key: &Arc<SigningKey>,
    wit: &str,
    (sign_method, sign_path, body): (&str, &str, &[u8]),
    (send_method, send_path, send_body): (&str, &str, &[u8]),
    sign_response: bool,
) -> reqwest::RequestBuilder {
    let signer = RequestSigner::new(wit, key.clone() as Arc<dyn Signer>, env.arc_clock())
        .request_signed_responses(sign_response);
    let mut req = http::Request::builder()
        .method(sign_method)
        .uri(format!("{AUTHORITY}{sign_path}"))
        .header("content-type", "text/plain")
        .body(body.to_vec())
        .unwrap();
    signer
        .sign(&mut req, &format!("{AUTHORITY}{sign_path}"))
        .unwrap();
    let mut b = client().request(
        send_method.parse().unwrap(),
        format!("http://{addr}{send_path}"),
    );
    for (k, v) in req.headers() {
        b = b.header(k, v);
    }
    b.body(send_body.to_vec())
}

#[tokio::test]
async fn wpt_authenticates_the_caller() {
    let env = Env::new();
    let (_g, addr) = start(&env).await;
    let (key, wit) = env.wit_for(AGENT, 3600);
    let wpt = env.wpt(&key, &wit, &format!("{AUTHORITY}/whoami"), None);
    let r = client()
        .get(format!("http://{addr}/whoami"))
        .header(WIT, &wit)
        .header(WPT, &wpt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], AGENT);
    assert_eq!(v["spiffe"], AGENT);
    assert_eq!(v["mechanism"], "wit-wpt");
    assert_eq!(v["bound_key"], true);
}

#[tokio::test]
async fn wpt_rules_each_have_their_own_error() {
    let env = Env::new();
    let (_g, addr) = start(&env).await;
    let url = format!("http://{addr}/whoami");
    let aud = format!("{AUTHORITY}/whoami");
    let (key, wit) = env.wit_for(AGENT, 3600);

    // Duplicate WPT and duplicate WIT headers.
    let wpt = env.wpt(&key, &wit, &aud, None);
    let r = client()
        .get(&url)
        .header(WIT, &wit)
        .header(WPT, &wpt)
        .header(WPT, &wpt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "duplicate-workload-proof-token");
    let r = client()
        .get(&url)
        .header(WIT, &wit)
        .header(WIT, &wit)
        .header(WPT, env.wpt(&key, &wit, &aud, None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "duplicate-workload-identity-token");

    // Wrong aud: the Host header matches the aud, the configured authority does not.
    let host_aud = format!("http://{addr}/whoami");
    let r = client()
        .get(&url)
        .header(WIT, &wit)
        .header(WPT, env.wpt(&key, &wit, &host_aud, None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "wpt-audience-mismatch");
    let r = client()
        .get(&url)
        .header(WIT, &wit)
        .header(
            WPT,
            env.wpt(&key, &wit, "https://other.example.test/whoami", None),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(problem_code(r).await, "wpt-audience-mismatch");

    // wth: the WPT was made for another WIT of the same key.
    let other_wit = env.wit_with_key(AGENT, &key, 1800, &env.wit_issuer);
    let r = client()
        .get(&url)
        .header(WIT, &wit)
        .header(WPT, env.wpt(&key, &other_wit, &aud, None))
        .send()
        .await
        .unwrap();
    assert_eq!(problem_code(r).await, "wpt-wth-mismatch");

    // ath: the WPT covers another access token.
    let r = client()
        .get(&url)
        .header(WIT, &wit)
        .header(WPT, env.wpt(&key, &wit, &aud, Some("token-one")))
        .header("authorization", "Bearer token-two")
        .send()
        .await
        .unwrap();
    assert_eq!(problem_code(r).await, "wpt-ath-mismatch");
    // ...and the right one passes.
    let r = client()
        .get(&url)
        .header(WIT, &wit)
        .header(WPT, env.wpt(&key, &wit, &aud, Some("token-two")))
        .header("authorization", "Bearer token-two")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Replay of an accepted WPT.
    let wpt = env.wpt(&key, &wit, &aud, None);
    let send = || {
        client()
            .get(&url)
            .header(WIT, &wit)
            .header(WPT, &wpt)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    let r = send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "wpt-replayed");

    // A WIT from a trust domain the store knows but the guard does not trust.
    let evil_key = SigningKey::generate(aims_crypto::Algorithm::ES256).unwrap();
    let evil_wit = env.wit_with_key("spiffe://evil.org/x", &evil_key, 600, &env.evil_issuer);
    let r = client()
        .get(&url)
        .header(WIT, &evil_wit)
        .header(WPT, env.wpt(&evil_key, &evil_wit, &aud, None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "wit-subject-rejected");

    // An expired WIT (checked before the WPT).
    let (short_key, short_wit) = env.wit_for(AGENT, 60);
    env.clock.advance(120);
    let r = client()
        .get(&url)
        .header(WIT, &short_wit)
        .header(WPT, env.wpt(&short_key, &short_wit, &aud, None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "wit-expired");
}

#[tokio::test]
async fn missing_credentials_get_401_with_the_accepted_schemes() {
    let env = Env::new();
    let (_g, addr) = start(&env).await;
    let r = client()
        .get(format!("http://{addr}/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenges: Vec<_> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    for scheme in [
        "DPoP",
        "Bearer",
        "WIMSE-WPT",
        "WIMSE-HTTP-Signature",
        "Mutual-TLS",
    ] {
        assert!(challenges.iter().any(|c| c.starts_with(scheme)), "{scheme}");
    }
    assert!(r.headers().contains_key("dpop-nonce"));
    assert_eq!(problem_code(r).await, "missing-credentials");
    // An optional route lets an anonymous caller through.
    let r = client()
        .get(format!("http://{addr}/optional"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "anonymous");
}

#[tokio::test]
async fn http_signature_authenticates_and_passes_the_body_unchanged() {
    let env = Env::new();
    let (_g, addr) = start(&env).await;
    let (key, wit) = env.wit_for(AGENT, 3600);
    let body = b"hello, svc-b";
    let r = signed(
        &env,
        addr,
        &key,
        &wit,
        ("POST", "/whoami", body),
        ("POST", "/whoami", body),
        false,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], AGENT);
    assert_eq!(v["mechanism"], "wit-httpsig");
    assert_eq!(v["body"], "hello, svc-b");
}

#[tokio::test]
async fn http_signature_rules() {
    let env = Env::new();
    let (_g, addr) = start(&env).await;
    let (key, wit) = env.wit_for(AGENT, 3600);
    let body: &[u8] = b"payload";
    let ok = ("POST", "/whoami", body);

    // Replayed nonce: the same signed request twice.
    let req = signed(&env, addr, &key, &wit, ok, ok, false)
        .build()
        .unwrap();
    let again = req.try_clone().unwrap();
    assert_eq!(client().execute(req).await.unwrap().status(), 200);
    let r = client().execute(again).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "httpsig-replayed");

    // Changed body.
    let r = signed(
        &env,
        addr,
        &key,
        &wit,
        ok,
        ("POST", "/whoami", b"PAYLOAD"),
        false,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "httpsig-content-digest-mismatch");

    // Changed method.
    let r = signed(&env, addr, &key, &wit, ok, ("PUT", "/whoami", body), false)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "httpsig-bad-signature");

    // Changed path (the audience follows the path, so `wimse-aud` no longer matches).
    let r = signed(&env, addr, &key, &wit, ok, ("POST", "/other", body), false)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "httpsig-audience-mismatch");

    // Asking for a signed response without a server signer: 501, never unsigned 2xx.
    let r = signed(&env, addr, &key, &wit, ok, ok, true)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    assert_eq!(problem_code(r).await, "response-signing-unavailable");
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let env = Env::new();
    let guard = Guard::new(env.config().body_limit(16).build().unwrap()).unwrap();
    let addr = serve(app(&guard)).await;
    let (key, wit) = env.wit_for(AGENT, 3600);
    let big = vec![b'x'; 64];
    let r = signed(
        &env,
        addr,
        &key,
        &wit,
        ("POST", "/whoami", &big),
        ("POST", "/whoami", &big),
        false,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(problem_code(r).await, "body-too-large");
}

/// A guard that signs responses on request (configured by `adjust` too), with svc-b's
/// WIT as the server's: the guard and that WIT.
fn signing_guard(
    env: &Env,
    adjust: impl FnOnce(aims_guard::GuardConfigBuilder) -> aims_guard::GuardConfigBuilder,
) -> (Guard, String) {
    let signing = Arc::new(ResponseSigning::new(env.arc_clock()));
    let guard = Guard::new(
        adjust(env.config().response_signing(signing.clone()))
            .build()
            .unwrap(),
    )
    .unwrap();
    let (server_key, server_wit) = env.wit_for("spiffe://example.org/svc-b", 3600);
    signing.update(server_wit.clone(), server_key as Arc<dyn Signer>);
    (guard, server_wit)
}

/// A GET of `path` signed by the agent, asking for a signed response.
async fn get_signed_response(env: &Env, addr: SocketAddr, path: &str) -> reqwest::Response {
    let (key, wit) = env.wit_for(AGENT, 3600);
    signed(
        env,
        addr,
        &key,
        &wit,
        ("GET", path, b""),
        ("GET", path, b""),
        true,
    )
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn responses_are_signed_on_request() {
    let env = Env::new();
    let (guard, server_wit) = signing_guard(&env, |b| b);
    let addr = serve(app(&guard)).await;
    let r = get_signed_response(&env, addr, "/whoami").await;
    assert_eq!(r.status(), 200);
    let input = r.headers()["signature-input"].to_str().unwrap().to_owned();
    assert!(input.contains("wimse-req-nonce"), "{input}");
    assert!(input.contains("\"@status\""), "{input}");
    assert_eq!(r.headers()[WIT], server_wit.as_str());
}

/// Headers of a GET to `AUTHORITY/whoami` signed by hand so that the signature also
/// covers `@scheme` and `@target-uri` (the WIMSE profile's signer does not).
fn signed_with_target_uri(env: &Env, key: &Arc<SigningKey>, wit: &str) -> http::HeaderMap {
    use aims_httpsig::wimse::{LABEL, PARAM_AUD, TAG, WIT_HEADER};
    use aims_httpsig::{
        ComponentId, DerivedComponent, Message, Options, RequestMessage, SignatureParams,
    };
    let uri: http::Uri = format!("{AUTHORITY}/whoami").parse().unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(WIT_HEADER, wit.parse().unwrap());
    let components = [
        DerivedComponent::Method,
        DerivedComponent::RequestTarget,
        DerivedComponent::Scheme,
        DerivedComponent::TargetUri,
    ]
    .into_iter()
    .map(|d| ComponentId::derived(d).unwrap())
    .chain([ComponentId::field(WIT_HEADER).unwrap()]);
    let params = SignatureParams::new(components)
        .with_created(env.now())
        .unwrap()
        .with_expires(env.now() + 60)
        .unwrap()
        .with_nonce(&aims_crypto::random_token().unwrap())
        .unwrap()
        .with_tag(TAG)
        .unwrap()
        .with_string_param(PARAM_AUD, &format!("{AUTHORITY}/whoami"))
        .unwrap();
    let message = Message::Request(RequestMessage::new(&http::Method::GET, &uri, &headers));
    let signed =
        aims_httpsig::sign(&message, LABEL, &params, key.as_ref(), &Options::default()).unwrap();
    signed.apply(&mut headers).unwrap();
    headers
}

#[tokio::test]
async fn signatures_may_cover_the_scheme_of_the_configured_authority() {
    let env = Env::new();
    let (_g, addr) = start(&env).await;
    let (key, wit) = env.wit_for(AGENT, 3600);
    let authority_host = AUTHORITY.strip_prefix("https://").unwrap();
    // Over plain HTTP (as behind a TLS-terminating proxy) with the authority's Host: the
    // scheme is the configured authority's, `https`, as the client signed it.
    for host in [authority_host.to_owned(), format!("{authority_host}:443")] {
        let r = client()
            .get(format!("http://{addr}/whoami"))
            .headers(signed_with_target_uri(&env, &key, &wit))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A Host no authority has: the scheme is unknown and so is `@target-uri`.
    let r = client()
        .get(format!("http://{addr}/whoami"))
        .headers(signed_with_target_uri(&env, &key, &wit))
        .header("host", "elsewhere.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The authority's host on another port is another origin.
    let r = client()
        .get(format!("http://{addr}/whoami"))
        .headers(signed_with_target_uri(&env, &key, &wit))
        .header("host", format!("{authority_host}:8443"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_response_too_large_to_sign_is_500_not_buffered_whole() {
    let env = Env::new();
    let (guard, _) = signing_guard(&env, |b| b.response_body_limit(1024));
    let layer = aims_guard::GuardLayer::new(guard);
    let app = axum::Router::new()
        .route(
            "/whoami",
            axum::routing::get(|| async { vec![b'x'; 1024] }).layer(layer.clone()),
        )
        .route(
            "/other",
            axum::routing::get(|| async { vec![b'x'; 1025] }).layer(layer),
        );
    let addr = serve(app).await;
    let r = get_signed_response(&env, addr, "/whoami").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("signature"));
    assert_eq!(r.bytes().await.unwrap().len(), 1024);
    let r = get_signed_response(&env, addr, "/other").await;
    assert_eq!(r.status(), 500);
    assert!(!r.headers().contains_key("signature"));
    assert_eq!(problem_code(r).await, "internal");
}

/// A body that never ends: nothing, ever.
struct EndlessBody;

impl axum::body::HttpBody for EndlessBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

/// The WIT is checked (from its header) before the body is read: a caller without a
/// valid WIT cannot make the guard wait for, and buffer, a body.
#[tokio::test]
async fn a_signed_request_with_a_bad_wit_is_refused_before_its_body_is_read() {
    use tower::ServiceExt;

    let env = Env::new();
    let guard = env.guard();
    let (key, _) = env.wit_for(AGENT, 3600);
    let forged = env.wit_with_key(AGENT, &key, 3600, &env.evil_issuer);
    for wit in ["not-a-wit", forged.as_str()] {
        let req = http::Request::post("/whoami")
            .header("host", "svc-b.example.test")
            .header(WIT, wit)
            .header("signature-input", "wimse=(\"@method\");created=1")
            .header("signature", "wimse=:AAAA:")
            .body(axum::body::Body::new(EndlessBody))
            .unwrap();
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), app(&guard).oneshot(req))
            .await
            .expect("refused without waiting for the body")
            .unwrap();
        assert_eq!(r.status(), 400, "{wit}");
        let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "httpsig-invalid-wit", "{wit}");
    }
}
