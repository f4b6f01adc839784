//! The credential source: identity, bundles, WIT, errors, rotation.

use std::time::Duration;

use aims_agent::{AgentClient, AgentError, Auth, WorkloadEndpoint, WorkloadSource};
use aims_core::TrustDomain;
use aims_pki::tls::ClientAuth;
use aims_server::testkit;
use bytes::Bytes;

use super::common::{server_with_agent, source, spec, uid_selector};
use super::mtls::https_echo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_holds_the_identity_the_wit_and_the_bundles() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    assert_eq!(
        source.spiffe_id().unwrap().as_str(),
        "spiffe://example.org/agent/a"
    );
    assert_eq!(
        source.workload_id().unwrap().as_str(),
        "spiffe://example.org/agent/a"
    );
    assert!(source.has_wit());
    let td = TrustDomain::new("example.org").unwrap();
    let bundle = source.trust_store().get(&td).expect("own bundle");
    assert!(!bundle.x509_authorities().is_empty());
    assert!(bundle.wit_authorities().next().is_some());
    assert!(source.x509_expiry().unwrap() > aims_core::Clock::now(&aims_core::SystemClock));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_without_an_entry_is_refused_with_permission_denied() {
    let ts = testkit::start_default("example.org").await.unwrap();
    let err = WorkloadSource::connect(WorkloadEndpoint::unix(ts.workload_socket()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::WorkloadApi {
                code: tonic::Code::PermissionDenied,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_socket_times_out_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = WorkloadSource::connect_with(
        WorkloadEndpoint::unix(dir.path().join("none.sock")),
        std::sync::Arc::new(aims_core::SystemClock),
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AgentError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("X509-SVID"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_follows_rotation_pushed_by_the_server() {
    // 6-second SVIDs rotate at half-life: within 8 s both must have been replaced.
    let ts = server_with_agent("example.org", 6, 6).await;
    let source = source(&ts).await;
    let first_expiry = source.x509_expiry().unwrap();
    let mut updates = source.updates();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while source.x509_expiry().unwrap() == first_expiry {
        tokio::time::timeout_at(deadline, updates.changed())
            .await
            .expect("no rotation within 8 s")
            .unwrap();
    }
    assert!(source.x509_expiry().unwrap() > first_expiry);
    assert_eq!(
        source.spiffe_id().unwrap().as_str(),
        "spiffe://example.org/agent/a"
    );
}

/// Polls `done` every 50 ms for at most `within`.
async fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_entry_takes_the_identity_away_and_a_recreated_one_brings_it_back() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    let client = AgentClient::new(&source).unwrap();
    let mtls_url = https_echo(&source, ClientAuth::Optional).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let _ = axum::serve(listener, app).await;
    });
    let get = |url: &str| http::Request::get(url).body(Bytes::new()).unwrap();
    let jwt = Auth::JwtSvid {
        audience: "spiffe://example.org/api".into(),
    };

    // Valid twin: with its entry the agent authenticates every way (and caches a JWT-SVID).
    for (url, auth) in [
        (&mtls_url, Auth::Mtls),
        (&plain_url, Auth::Wpt),
        (&plain_url, Auth::HttpSig),
        (&plain_url, jwt.clone()),
    ] {
        let resp = client.send(get(url), &auth).await.unwrap();
        assert_eq!(resp.status(), 200, "{auth:?}");
    }

    // The operator deletes the entry: the server ends the streams with PermissionDenied.
    for entry in ts.admin().list_entries().await.unwrap() {
        ts.admin().delete_entry(&entry.id).await.unwrap();
    }
    wait_until(Duration::from_secs(5), "identity dropped", || {
        source.spiffe_id().is_none() && !source.has_wit()
    })
    .await;
    assert!(source.x509_expiry().is_none());
    for (url, auth, missing) in [
        (&mtls_url, Auth::Mtls, "X509-SVID"),
        (&plain_url, Auth::Wpt, "WIT-SVID"),
        (&plain_url, Auth::HttpSig, "WIT-SVID"),
    ] {
        let err = client.send(get(url), &auth).await.unwrap_err();
        assert!(
            matches!(err, AgentError::NoCredential(m) if m == missing),
            "{auth:?}: {err:?}"
        );
    }
    // The cached JWT-SVID is gone too: the server is asked, and refuses.
    let err = client.send(get(&plain_url), &jwt).await.unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::WorkloadApi {
                code: tonic::Code::PermissionDenied,
                ..
            }
        ),
        "{err:?}"
    );

    // The streams keep retrying: a re-created entry brings the identity back.
    ts.admin()
        .create_entry(&spec(
            "spiffe://example.org/agent/a",
            &[&uid_selector()],
            3600,
            600,
        ))
        .await
        .unwrap();
    wait_until(Duration::from_secs(12), "identity restored", || {
        source.spiffe_id().is_some() && source.has_wit()
    })
    .await;
    let resp = client.send(get(&plain_url), &Auth::Wpt).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_past_their_expiry_are_never_handed_out() {
    // X509-SVID for an hour, WIT-SVID for ten minutes, JWT-SVIDs for five.
    let ts = server_with_agent("example.org", 3600, 600).await;
    let clock = aims_core::ManualClock::new(aims_core::Clock::now(&aims_core::SystemClock));
    let source = WorkloadSource::connect_with(
        WorkloadEndpoint::unix(ts.workload_socket()),
        std::sync::Arc::new(clock.clone()),
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    let client = AgentClient::new(&source).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let _ = axum::serve(listener, app).await;
    });
    let get = || http::Request::get(&url).body(Bytes::new()).unwrap();
    let jwt = Auth::JwtSvid {
        audience: "spiffe://example.org/api".into(),
    };
    for auth in [Auth::Wpt, jwt.clone()] {
        assert_eq!(client.send(get(), &auth).await.unwrap().status(), 200);
    }

    // Past the WIT-SVID's expiry (no rotation can arrive: the server's clock did not move).
    clock.advance(601);
    assert!(!source.has_wit());
    assert!(source.spiffe_id().is_some());
    for auth in [Auth::Wpt, Auth::HttpSig] {
        let err = client.send(get(), &auth).await.unwrap_err();
        assert!(
            matches!(err, AgentError::NoCredential("WIT-SVID")),
            "{auth:?}: {err:?}"
        );
    }
    // A JWT-SVID that is already expired by this clock is not used either.
    let err = client.send(get(), &jwt).await.unwrap_err();
    assert!(matches!(err, AgentError::BadResponse { .. }), "{err:?}");

    // Past the X509-SVID's expiry.
    clock.advance(3000);
    assert!(source.spiffe_id().is_none());
    assert!(source.x509_expiry().is_none());
    let err = client.send(get(), &Auth::Mtls).await.unwrap_err();
    assert!(
        matches!(err, AgentError::NoCredential("X509-SVID")),
        "{err:?}"
    );
}
