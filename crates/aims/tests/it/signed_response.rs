//! Signed responses (draft-ietf-wimse-http-signature): the agent library checks the
//! signature of a response to its signed request, against a service protected by
//! `aims-guard` that signs its responses with its own WIT-SVID.
//!
//! * The AIMS server runs in this process (testkit); the agent is this process
//!   (`aims_agent`), identified by its uid.
//! * The service's WIT-SVID is issued here with the server's current WIT key, so the
//!   agent's trust bundles vouch for it like for any WIT-SVID of the trust domain.
//! * `/tampered` is the same guarded route behind a "proxy" layer that rewrites the body
//!   after the guard signed it.

use std::sync::Arc;

use aims_agent::{AgentClient, AgentError, Auth, WorkloadEndpoint, WorkloadSource};
use aims_core::{Clock as _, SpiffeId, SystemClock, TrustDomain, WorkloadId};
use aims_crypto::{Algorithm, Signer, SigningKey};
use aims_guard::{AuthenticatedAgent, Guard, GuardConfig, GuardLayer, Mechanism, ResponseSigning};
use aims_jose::wit::{self, WitClaims};
use aims_pki::tls::Authorizer;
use aims_server::testkit::{self, TestServer};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::middleware;
use axum::response::Response;
use axum::routing::any;
use tokio::net::TcpListener;

use crate::agent_e2e::{spec, uid_selector};

const TD: &str = "example.org";
const AGENT: &str = "spiffe://example.org/agent/a";
const SERVICE: &str = "spiffe://example.org/service/b";

async fn agent_source(ts: &TestServer) -> WorkloadSource {
    ts.admin()
        .create_entry(&spec(AGENT, &[uid_selector()], 600))
        .await
        .unwrap();
    WorkloadSource::connect(WorkloadEndpoint::unix(ts.workload_socket()))
        .await
        .unwrap()
}

/// A WIT-SVID for `id` issued with the server's current WIT key, and its key.
fn service_wit(ts: &TestServer, id: &str) -> (Arc<SigningKey>, String) {
    let keys = ts.server.state().keys.current().unwrap();
    let issuer = keys.wit().unwrap().key.clone();
    let key = Arc::new(SigningKey::generate(Algorithm::ES256).unwrap());
    let claims = WitClaims::new(
        WorkloadId::parse(id).unwrap(),
        key.public_jwk(),
        SystemClock.now(),
        600,
    )
    .unwrap();
    (key, wit::create(&claims, issuer.as_ref()).unwrap())
}

async fn whoami(agent: AuthenticatedAgent) -> String {
    agent.id().to_string()
}

/// A proxy between the guard and the client that rewrites the response body.
async fn tamper(response: Response) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(
        parts,
        Body::from(Bytes::from_static(b"spiffe://example.org/x")),
    )
}

/// The service: `/whoami` guarded and signing responses on request, `/tampered` the
/// same behind [`tamper`], `/unsigned` without a guard. Its base URL.
async fn start_service(ts: &TestServer, source: &WorkloadSource) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let signing = Arc::new(ResponseSigning::new(Arc::new(SystemClock)));
    let (key, wit) = service_wit(ts, SERVICE);
    signing.update(wit, key as Arc<dyn Signer>);
    let config = GuardConfig::builder(source.trust_store())
        .authority(&base)
        .trust_domain(TrustDomain::new(TD).unwrap())
        .enable(Mechanism::WitHttpSig)
        .response_signing(signing)
        .build()
        .unwrap();
    let guard = Guard::new(config).unwrap();
    let app = Router::new()
        .route("/whoami", any(whoami).layer(GuardLayer::new(guard.clone())))
        .route(
            "/tampered",
            any(whoami)
                .layer(GuardLayer::new(guard))
                .layer(middleware::map_response(tamper)),
        )
        .route("/unsigned", any(|| async { AGENT }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_responses_are_verified_and_a_tampered_or_missing_one_is_refused() {
    let ts = testkit::start_default(TD).await.unwrap();
    let source = agent_source(&ts).await;
    let base = start_service(&ts, &source).await;
    let signing = AgentClient::builder()
        .sign_responses(true)
        .build(&source)
        .unwrap();
    let plain = AgentClient::new(&source).unwrap();

    // Valid twin: a signed response from the guard verifies and arrives whole.
    let resp = signing
        .send(get(&format!("{base}/whoami")), &Auth::HttpSig)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("signature"));
    assert_eq!(&resp.body()[..], AGENT.as_bytes());

    // The body changed on the way after the guard signed it.
    let err = signing
        .send(get(&format!("{base}/tampered")), &Auth::HttpSig)
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::ResponseSignature(_)), "{err:?}");
    assert!(err.to_string().contains("Content-Digest"), "{err}");

    // Signed responses asked for, an unsigned one received.
    let err = signing
        .send(get(&format!("{base}/unsigned")), &Auth::HttpSig)
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::ResponseSignature(_)), "{err:?}");
    assert!(err.to_string().contains("sign_responses"), "{err}");

    // A validly signed response from a workload the client does not accept as server.
    let narrow = AgentClient::builder()
        .server_authorizer(Authorizer::Exact(vec![
            SpiffeId::parse("spiffe://example.org/service/c").unwrap(),
        ]))
        .sign_responses(true)
        .build(&source)
        .unwrap();
    let err = narrow
        .send(get(&format!("{base}/whoami")), &Auth::HttpSig)
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::ResponseSignature(_)), "{err:?}");
    assert!(err.to_string().contains(SERVICE), "{err}");

    // By default nothing is asked for: unsigned responses are fine, and the guard does
    // not sign.
    for path in ["whoami", "unsigned"] {
        let resp = plain
            .send(get(&format!("{base}/{path}")), &Auth::HttpSig)
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(!resp.headers().contains_key("signature"), "{path}");
    }
}
