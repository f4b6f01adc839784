//! The credential source: identity, bundles, WIT, errors, rotation.

use std::time::Duration;

use aims_agent::{AgentError, WorkloadEndpoint, WorkloadSource};
use aims_core::TrustDomain;
use aims_server::testkit;

use super::common::{server_with_agent, source};

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
