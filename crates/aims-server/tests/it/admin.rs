//! The admin API over its Unix socket: mode, CRUD, errors with reasons, and the entry
//! cache following writes made through another node.

use std::os::unix::fs::PermissionsExt as _;

use aims_server::client::{AdminClient, ClientError};
use aims_server::testkit;

use crate::common::{spec, system_clock};

fn api_error(e: ClientError) -> (u16, String, String) {
    match e {
        ClientError::Api {
            status,
            error,
            detail,
        } => (status, error, detail),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_socket_is_owner_only_and_entries_round_trip() {
    let ts = testkit::start_default("example.org").await.unwrap();
    let sock = &ts.server.endpoints().admin_socket;
    let mode = std::fs::metadata(sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "admin socket mode {mode:o}");

    let admin = ts.admin();
    let mut s = spec(
        "spiffe://example.org/agent/a",
        &["unix:uid:1000", "unix:gid:1000"],
    );
    s.hint = Some("primary".into());
    let created = admin.create_entry(&s).await.unwrap();
    assert_eq!(created.revision, 1);
    assert_eq!(created.id.len(), 32);
    assert_eq!(created.hint.as_deref(), Some("primary"));
    assert_eq!(admin.get_entry(&created.id).await.unwrap(), created);
    assert_eq!(
        admin.list_entries().await.unwrap(),
        std::slice::from_ref(&created)
    );
    // The Workload API's view (the cache) has it too.
    assert!(
        ts.server
            .state()
            .entries
            .snapshot()
            .get(&created.id)
            .is_some()
    );

    // Update with the revision read; a stale revision is a conflict.
    let mut upd = aims_server::api::EntrySpec::of(&created);
    upd.x509_ttl = 600;
    let updated = admin.update_entry(&created.id, &upd).await.unwrap();
    assert_eq!((updated.revision, updated.x509_ttl), (2, 600));
    let (status, code, detail) =
        api_error(admin.update_entry(&created.id, &upd).await.unwrap_err());
    assert_eq!((status, code.as_str()), (409, "conflict"), "{detail}");
    assert_eq!(
        ts.server
            .state()
            .entries
            .snapshot()
            .get(&created.id)
            .unwrap()
            .x509_ttl,
        600
    );

    admin.delete_entry(&created.id).await.unwrap();
    let (status, code, _) = api_error(admin.get_entry(&created.id).await.unwrap_err());
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert!(ts.server.state().entries.snapshot().is_empty());
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_errors_carry_reasons() {
    let ts = testkit::start_default("example.org").await.unwrap();
    let admin = ts.admin();

    // Another trust domain.
    let (status, code, detail) = api_error(
        admin
            .create_entry(&spec("spiffe://other.org/a", &["unix:uid:1"]))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    assert!(detail.contains("trust domain `example.org`"), "{detail}");

    // A lifetime out of range.
    let mut s = spec("spiffe://example.org/a", &["unix:uid:1"]);
    s.jwt_ttl = 0;
    let (status, _, detail) = api_error(admin.create_entry(&s).await.unwrap_err());
    assert_eq!(status, 400);
    assert!(detail.contains("JWT lifetime"), "{detail}");

    // The same SPIFFE ID and selectors twice.
    let s = spec("spiffe://example.org/a", &["unix:uid:1"]);
    admin.create_entry(&s).await.unwrap();
    let (status, code, _) = api_error(admin.create_entry(&s).await.unwrap_err());
    assert_eq!((status, code.as_str()), (409, "conflict"));

    // Malformed JSON (a bad selector) through a raw request.
    let raw = raw_post(
        &ts.server.endpoints().admin_socket,
        "/v1/entries",
        r#"{"spiffe_id":"spiffe://example.org/x","selectors":["UNIX:uid:1"]}"#,
    )
    .await;
    assert_eq!(raw.0, 400);
    assert!(raw.1.contains("selector type `UNIX`"), "{}", raw.1);
    let raw = raw_post(
        &ts.server.endpoints().admin_socket,
        "/v1/entries",
        r#"{"spiffe_id":"spiffe://example.org/x","selectors":["unix:uid:1"],"colour":"red"}"#,
    )
    .await;
    assert_eq!(raw.0, 400);
    assert!(raw.1.contains("unknown field `colour`"), "{}", raw.1);

    // The own trust domain's bundle is not set by hand.
    let (status, _, detail) = api_error(
        admin
            .set_bundle("example.org", b"{\"keys\":[]}".to_vec())
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 400);
    assert!(detail.contains("own trust domain"), "{detail}");
    let (status, _, detail) = api_error(
        admin
            .set_bundle("partner.example", b"not json".to_vec())
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 400, "{detail}");

    // Nothing listens: the error names the socket.
    let gone = AdminClient::new(ts.dir.path().join("nothing.sock"));
    let err = gone.list_entries().await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }));
    assert!(err.to_string().contains("nothing.sock"), "{err}");
    ts.server.shutdown().await;
}

/// POSTs a raw body and returns (status, body).
async fn raw_post(sock: &std::path::Path, path: &str, body: &str) -> (u16, String) {
    use http_body_util::{BodyExt as _, Full};
    let stream = tokio::net::UnixStream::connect(sock).await.unwrap();
    let (mut tx, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(path)
        .header("host", "x")
        .header("content-type", "application/json")
        .body(Full::new(axum::body::Bytes::from(body.to_owned())))
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_the_same_database_sees_entries_and_keys() {
    let a = testkit::start_default("example.org").await.unwrap();
    let url = a.server.state().config.storage_url();
    let b = testkit::start_with("example.org", system_clock(), |c| {
        c.storage.url = Some(url.clone());
    })
    .await
    .unwrap();

    // Same CA and keys: B loaded what A created.
    let ka = a.admin().bundle().await.unwrap();
    let kb = b.admin().bundle().await.unwrap();
    let pa =
        aims_pki::SpiffeBundle::parse(a.server.endpoints().trust_domain.clone(), ka.as_bytes())
            .unwrap();
    let pb =
        aims_pki::SpiffeBundle::parse(b.server.endpoints().trust_domain.clone(), kb.as_bytes())
            .unwrap();
    assert_eq!(pa.x509_authorities(), pb.x509_authorities());

    // A write on A reaches B's cache at B's next poll.
    let e = a
        .admin()
        .create_entry(&spec("spiffe://example.org/agent/x", &["unix:uid:7"]))
        .await
        .unwrap();
    assert!(b.server.state().entries.snapshot().get(&e.id).is_none());
    assert!(b.server.state().entries.refresh().await.unwrap());
    assert_eq!(b.server.state().entries.snapshot().get(&e.id), Some(&e));
    a.admin().delete_entry(&e.id).await.unwrap();
    b.server.state().sync().await.unwrap();
    assert!(b.server.state().entries.snapshot().get(&e.id).is_none());

    b.server.shutdown().await;
    a.server.shutdown().await;
}
