//! Header and error cases with a raw tonic client.

use aims_workload::pb;
use tokio_stream::StreamExt as _;

use crate::common::{Server, entry, provider, raw_client, uid_selector};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_security_header_is_invalid_argument_on_every_rpc() {
    let uid = uid_selector();
    let server = Server::start(provider(vec![entry("e1", "a", &[&uid])], true)).await;
    let mut c = raw_client(&server.socket, false).await;
    let mut statuses = vec![
        c.fetch_x509svid(pb::X509svidRequest {}).await.unwrap_err(),
        c.fetch_x509_bundles(pb::X509BundlesRequest {})
            .await
            .unwrap_err(),
        c.fetch_jwtsvid(pb::JwtsvidRequest {
            audience: vec!["x".into()],
            spiffe_id: String::new(),
        })
        .await
        .unwrap_err(),
        c.fetch_jwt_bundles(pb::JwtBundlesRequest {})
            .await
            .unwrap_err(),
        c.validate_jwtsvid(pb::ValidateJwtsvidRequest {
            audience: "x".into(),
            svid: "a.b.c".into(),
        })
        .await
        .unwrap_err(),
        c.fetch_witsvid(pb::WitsvidRequest::default())
            .await
            .unwrap_err(),
        c.fetch_wit_bundles(pb::WitBundlesRequest {})
            .await
            .unwrap_err(),
    ];
    for s in statuses.drain(..) {
        assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
        assert!(s.message().contains("workload.spiffe.io"), "{s:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_without_entry_is_permission_denied() {
    // Registered for another uid only.
    let server = Server::start(provider(
        vec![entry("e1", "a", &["unix:uid:4294967294"])],
        true,
    ))
    .await;
    let mut c = raw_client(&server.socket, true).await;
    let x509 = c.fetch_x509svid(pb::X509svidRequest {}).await.unwrap_err();
    assert_eq!(x509.code(), tonic::Code::PermissionDenied, "{x509:?}");
    let jwt = c
        .fetch_jwtsvid(pb::JwtsvidRequest {
            audience: vec!["x".into()],
            spiffe_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(jwt.code(), tonic::Code::PermissionDenied);
    let wit = c
        .fetch_witsvid(pb::WitsvidRequest::default())
        .await
        .unwrap_err();
    assert_eq!(wit.code(), tonic::Code::PermissionDenied);
    // Bundles are public trust material: a caller without entries still gets its own
    // trust domain's.
    let mut bundles = c
        .fetch_x509_bundles(pb::X509BundlesRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = bundles.next().await.unwrap().unwrap();
    assert_eq!(
        first.bundles.keys().collect::<Vec<_>>(),
        ["spiffe://example.org"]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_fields_are_invalid_argument() {
    let uid = uid_selector();
    let server = Server::start(provider(vec![entry("e1", "a", &[&uid])], false)).await;
    let mut c = raw_client(&server.socket, true).await;
    let no_aud = c
        .fetch_jwtsvid(pb::JwtsvidRequest::default())
        .await
        .unwrap_err();
    assert_eq!(no_aud.code(), tonic::Code::InvalidArgument);
    assert!(no_aud.message().contains("audience"));
    let empty_aud = c
        .fetch_jwtsvid(pb::JwtsvidRequest {
            audience: vec![String::new()],
            spiffe_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(empty_aud.code(), tonic::Code::InvalidArgument);
    for (audience, svid, field) in [("", "a.b.c", "audience"), ("x", "", "svid")] {
        let s = c
            .validate_jwtsvid(pb::ValidateJwtsvidRequest {
                audience: audience.into(),
                svid: svid.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(s.message().contains(field), "{s:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wit_profile_unimplemented_without_wit_key() {
    let uid = uid_selector();
    let server = Server::start(provider(vec![entry("e1", "a", &[&uid])], false)).await;
    let mut c = raw_client(&server.socket, true).await;
    let s = c
        .fetch_witsvid(pb::WitsvidRequest::default())
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::Unimplemented);
    let s = c
        .fetch_wit_bundles(pb::WitBundlesRequest {})
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::Unimplemented);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_with_unavailable() {
    let uid = uid_selector();
    let server = Server::start(provider(vec![entry("e1", "a", &[&uid])], false)).await;
    let mut c = raw_client(&server.socket, true).await;
    let mut stream = c
        .fetch_x509svid(pb::X509svidRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(stream.next().await.unwrap().is_ok());
    let shutdown = tokio::spawn(server.shutdown());
    let end = stream.next().await.unwrap().unwrap_err();
    assert_eq!(end.code(), tonic::Code::Unavailable);
    shutdown.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_uid_are_capped() {
    use crate::common::try_raw_client;
    let uid = uid_selector();
    let api = aims_workload::WorkloadApi::new(provider(vec![entry("e1", "a", &[&uid])], true))
        .max_connections_per_uid(2);
    let server = crate::common::Server::start_with(api).await;
    // A client on a new connection that got an answer, or why not.
    let served = || async {
        let mut c = try_raw_client(&server.socket, true)
            .await
            .map_err(|e| e.to_string())?;
        c.fetch_jwt_bundles(pb::JwtBundlesRequest {})
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(c)
    };
    // Two connections of this uid are served (and stay open) ...
    let first = served().await.unwrap();
    let second = served().await.unwrap();
    // ... a third is closed at once.
    assert!(served().await.is_err());
    // Closing one gives its slot back.
    drop(first);
    let mut again = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if let Ok(c) = served().await {
            again = Some(c);
            break;
        }
    }
    assert!(
        again.is_some(),
        "a slot is free again after a connection closed"
    );
    assert!(served().await.is_err());
    drop(second);
    server.shutdown().await;
}

/// Requests are capped at `server::MAX_REQUEST_BYTES` (32 KiB) by the transport, before the
/// handler: a token at the JOSE size cap still reaches the validator (and is refused
/// there as invalid), a larger message never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_by_the_transport() {
    // The documented limit, not the constant: raising the constant must fail here.
    const LIMIT: usize = 32 * 1024;
    let uid = uid_selector();
    let server = Server::start(provider(vec![entry("e1", "a", &[&uid])], false)).await;
    let mut c = raw_client(&server.socket, true).await;
    let at_cap = c
        .validate_jwtsvid(pb::ValidateJwtsvidRequest {
            audience: "x".into(),
            svid: "a".repeat(aims_jose::jws::MAX_TOKEN_BYTES),
        })
        .await
        .unwrap_err();
    assert_eq!(at_cap.code(), tonic::Code::InvalidArgument, "{at_cap:?}");
    let over = c
        .validate_jwtsvid(pb::ValidateJwtsvidRequest {
            audience: "x".into(),
            svid: "a".repeat(LIMIT + 1),
        })
        .await
        .unwrap_err();
    assert_ne!(over.code(), tonic::Code::Ok);
    // Not the validator's answer: the message was never decoded.
    assert_ne!(over.code(), tonic::Code::InvalidArgument, "{over:?}");
    server.shutdown().await;
}
