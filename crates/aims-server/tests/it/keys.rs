//! Key rotation with overlap, driven by a manual clock, and persistence across restarts.

use std::sync::Arc;

use aims_core::{Clock as _, ManualClock, SystemClock};
use aims_server::config::Seconds;
use aims_server::testkit;
use aims_store::KeyState;

/// The published JWT-SVID key ids, sorted.
fn kids(b: &aims_pki::SpiffeBundle) -> Vec<String> {
    let mut v: Vec<String> = b.jwt_authorities().filter_map(|k| k.kid.clone()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_key_is_published_a_refresh_before_it_signs_and_previous_until_it_expires() {
    let t0 = SystemClock.now();
    let clock = ManualClock::new(t0);
    let ts = testkit::start_with("example.org", Arc::new(clock.clone()), |c| {
        c.bundle.refresh_hint = Seconds(60);
        // A new key is published for the refresh hint plus one poll interval (other
        // nodes see it within a poll) before it signs: 65 s here.
        c.storage.poll_interval = Seconds(5);
        c.jwt.rotation_period = toml::Spanned::new(0..0, Seconds(600));
        c.ca.ttl = toml::Spanned::new(0..0, Seconds(6000));
    })
    .await
    .unwrap();
    let state = ts.server.state().clone();
    let set = state.keys.current().unwrap();
    let a = set.jwt().unwrap().info.clone();
    let ca_a = set.ca().unwrap().info.clone();
    let ca_a_cert = set.ca().unwrap().ca.x509_authority().clone();
    assert_eq!(kids(set.bundle()), std::slice::from_ref(&a.kid));
    assert_eq!(a.not_after, t0 + 65 + 1200);
    assert_eq!(
        set.bundle().refresh_hint(),
        Some(60),
        "the hint itself is unchanged"
    );

    // Just before the staging time: nothing changes.
    clock.set(t0 + 599);
    state.sync().await.unwrap();
    assert_eq!(kids(state.keys.current().unwrap().bundle()).len(), 1);

    // Staged: published, not signing.
    clock.set(t0 + 600);
    state.sync().await.unwrap();
    let set = state.keys.current().unwrap();
    let published = kids(set.bundle());
    assert_eq!(published.len(), 2);
    let b = published.iter().find(|k| **k != a.kid).unwrap().clone();
    assert_eq!(
        set.jwt().unwrap().info.kid,
        a.kid,
        "the next key must not sign yet"
    );
    let seq_staged = set.bundle().sequence().unwrap();

    // One refresh hint later, other nodes may not have b yet: a still signs.
    clock.set(t0 + 660);
    state.sync().await.unwrap();
    assert_eq!(state.keys.current().unwrap().jwt().unwrap().info.kid, a.kid);
    // One refresh hint and one poll interval later: b signs, a stays published.
    clock.set(t0 + 665);
    state.sync().await.unwrap();
    let set = state.keys.current().unwrap();
    assert_eq!(set.jwt().unwrap().info.kid, b);
    let mut both = vec![b.clone(), a.kid.clone()];
    both.sort();
    assert_eq!(kids(set.bundle()), both);
    assert!(set.bundle().sequence().unwrap() > seq_staged);
    let prev = set
        .keys(aims_store::KeyKind::JwtSvid)
        .iter()
        .find(|k| k.info.kid == a.kid)
        .unwrap();
    assert_eq!(prev.info.state, KeyState::Previous);

    // A JWT-SVID signed now expires before b leaves the bundle.
    let tok_exp = set.jwt().unwrap().info.not_after;
    assert!(tok_exp > t0 + 665);

    // a leaves the bundle when its validity ends.
    clock.set(a.not_after);
    state.sync().await.unwrap();
    let published = kids(state.keys.current().unwrap().bundle());
    assert!(!published.contains(&a.kid), "{published:?}");
    assert!(published.contains(&b));

    // The CA: successor staged at half its life (two X.509 authorities), promoted at 5/6.
    clock.set(t0 + 3000);
    state.sync().await.unwrap();
    let set = state.keys.current().unwrap();
    assert_eq!(set.bundle().x509_authorities().len(), 2);
    assert_eq!(set.ca().unwrap().info.kid, ca_a.kid);
    clock.set(t0 + 5000);
    state.sync().await.unwrap();
    let set = state.keys.current().unwrap();
    let ca_b = set.ca().unwrap();
    assert_ne!(ca_b.info.kid, ca_a.kid);
    assert_eq!(set.bundle().x509_authorities().len(), 2);
    // SVIDs now chain to the new CA, which relying parties already had.
    let svid = ca_b
        .ca
        .issue_x509_svid(
            &aims_core::SpiffeId::parse("spiffe://example.org/x").unwrap(),
            std::time::Duration::from_secs(60),
            &[],
        )
        .unwrap();
    aims_pki::svid::verify_with_bundle(
        svid.chain(),
        set.bundle(),
        clock.now(),
        &aims_pki::svid::VerifyOptions::default(),
    )
    .unwrap();
    // The old CA leaves the bundle when it expires.
    clock.set(ca_a.not_after);
    state.sync().await.unwrap();
    let set = state.keys.current().unwrap();
    assert!(!set.bundle().x509_authorities().contains(&ca_a_cert));
    assert!(
        set.bundle()
            .x509_authorities()
            .contains(ca_b.ca.x509_authority())
    );
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_ca_and_the_signing_keys() {
    let dir = testkit::tempdir().unwrap();
    let config = testkit::config("example.org", dir.path()).unwrap();
    let first = aims_server::start(config.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let before = first.state().keys.current().unwrap();
    let ca_before = before.ca().unwrap().ca.x509_authority().clone();
    let jwt_before = before.jwt().unwrap().info.kid.clone();
    first.shutdown().await;

    let second = aims_server::start(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let after = second.state().keys.current().unwrap();
    assert_eq!(after.ca().unwrap().ca.x509_authority(), &ca_before);
    assert_eq!(after.jwt().unwrap().info.kid, jwt_before);
    assert_eq!(after.bundle().x509_authorities().len(), 1);
    second.shutdown().await;
}

// ---- Keys sealed with a key-encryption key (`[keys] encryption_key_file`) ----

/// Writes a fresh key-encryption key file (mode 0600) into `dir`.
fn write_kek(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    let text = aims_crypto::b64::encode_std(aims_crypto::random_bytes::<32>().unwrap());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{text}\n").as_bytes()).unwrap();
    path
}

/// Every stored key record, of every kind, read over a connection of its own.
async fn stored_keys(url: &str) -> Vec<aims_store::KeyRecord> {
    let store = aims_store::Store::connect(url).await.unwrap();
    let mut out = Vec::new();
    for kind in aims_store::KeyKind::ALL {
        out.extend(store.list_keys(kind).await.unwrap());
    }
    out
}

/// Whether a stored `pkcs8` value is the sealed form.
fn sealed(r: &aims_store::KeyRecord) -> bool {
    r.pkcs8.starts_with(aims_server::keys::SEALED_PREFIX)
        && aims_crypto::Algorithm::from_name(&r.alg)
            .and_then(|alg| aims_crypto::SigningKey::from_pkcs8(alg, &r.pkcs8))
            .is_err()
}

/// An X509-SVID and a JWT-SVID fetched over the Workload API for the entry the test
/// created, both verified against the server's published bundle.
async fn fetch_and_verify_svids(ts: &testkit::TestServer, id: &str) {
    let own = crate::common::own_bundle(ts).await;
    let client = spiffe::WorkloadApiClient::connect_to(ts.workload_endpoint())
        .await
        .unwrap();
    let svid = client.fetch_x509_svid().await.unwrap();
    let verified = crate::common::verified_x509_svid(&svid, &own);
    assert_eq!(verified.spiffe_id().as_str(), id);

    let token = client
        .fetch_jwt_svid(["spiffe://example.org/api"], None)
        .await
        .unwrap();
    let mut keys = aims_jose::StaticKeys::new();
    keys.add_jwks_for_use(
        "example.org",
        &serde_json::from_str(&own.to_json().unwrap()).unwrap(),
        "jwt-svid",
    );
    let valid =
        aims_jose::jwt_svid::Validator::new(Arc::new(SystemClock), "spiffe://example.org/api")
            .validate(token.token(), &keys)
            .unwrap();
    assert_eq!(valid.spiffe_id().as_str(), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_sealed_at_rest_and_a_restart_needs_the_same_kek() {
    let dir = testkit::tempdir().unwrap();
    let kek = write_kek(dir.path(), "kek");
    let mut config = testkit::config("example.org", dir.path()).unwrap();
    config.keys.encryption_key_file = Some(kek.clone());
    let id = "spiffe://example.org/agent/sealed";

    let first = testkit::TestServer {
        server: aims_server::start(config.clone(), Arc::new(SystemClock))
            .await
            .unwrap(),
        dir,
    };
    first
        .admin()
        .create_entry(&crate::common::spec(
            id,
            &[
                &crate::common::uid_selector(),
                &crate::common::exe_selector(),
            ],
        ))
        .await
        .unwrap();
    fetch_and_verify_svids(&first, id).await;
    let set = first.server.state().keys.current().unwrap();
    let jwt_before = set.jwt().unwrap().info.kid.clone();
    let ca_before = set.ca().unwrap().ca.x509_authority().clone();
    let jwt_plain = set.jwt().unwrap().key.to_pkcs8().unwrap();
    let testkit::TestServer { server, dir } = first;
    server.shutdown().await;

    // At rest: every key of every kind sealed; the plain PKCS#8 nowhere in the row.
    let url = config.storage_url();
    let records = stored_keys(&url).await;
    let kinds: std::collections::BTreeSet<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    for r in &records {
        assert!(sealed(r), "{} {} is stored in the clear", r.kind, r.kid);
        assert!(
            !r.pkcs8
                .windows(jwt_plain.len())
                .any(|w| w == jwt_plain.as_slice())
        );
    }

    // Restart with the same KEK: the same keys, and SVIDs still issue.
    let second = testkit::TestServer {
        server: aims_server::start(config.clone(), Arc::new(SystemClock))
            .await
            .unwrap(),
        dir,
    };
    let set = second.server.state().keys.current().unwrap();
    assert_eq!(set.jwt().unwrap().info.kid, jwt_before);
    assert_eq!(set.ca().unwrap().ca.x509_authority(), &ca_before);
    fetch_and_verify_svids(&second, id).await;
    let testkit::TestServer { server, dir } = second;
    server.shutdown().await;

    // Without the KEK: refused, naming the setting.
    let mut without = config.clone();
    without.keys.encryption_key_file = None;
    let e = aims_server::start(without, Arc::new(SystemClock))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("[keys] encryption_key_file"), "{e}");
    assert!(e.contains("sealed"), "{e}");

    // With another KEK: refused, never read as plain PKCS#8.
    let mut other = config.clone();
    other.keys.encryption_key_file = Some(write_kek(dir.path(), "other-kek"));
    let e = aims_server::start(other, Arc::new(SystemClock))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not open it"), "{e}");

    // A sealed key copied to another row (another kid) does not open there.
    let store = aims_store::Store::connect(&url).await.unwrap();
    let mut moved = store
        .list_keys(aims_store::KeyKind::JwtSvid)
        .await
        .unwrap()
        .remove(0);
    moved.kid = "moved-kid".into();
    moved.state = KeyState::Previous;
    store.put_key(&moved).await.unwrap();
    let e = aims_server::start(config, Arc::new(SystemClock))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("moved-kid") && e.contains("does not open it"),
        "{e}"
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_keys_are_sealed_in_place_when_a_kek_is_added() {
    let t0 = SystemClock.now();
    let clock = ManualClock::new(t0);
    let dir = testkit::tempdir().unwrap();
    let mut config = testkit::config("example.org", dir.path()).unwrap();
    config.bundle.refresh_hint = Seconds(60);
    config.jwt.rotation_period = toml::Spanned::new(0..0, Seconds(600));
    config.ca.ttl = toml::Spanned::new(0..0, Seconds(6000));

    // An existing deployment: keys stored in plain PKCS#8.
    let first = aims_server::start(config.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let jwt_before = first
        .state()
        .keys
        .current()
        .unwrap()
        .jwt()
        .unwrap()
        .info
        .kid
        .clone();
    first.shutdown().await;
    let url = config.storage_url();
    assert!(stored_keys(&url).await.iter().all(|r| !sealed(r)));

    // The KEK is added: the same keys are used, now sealed in place...
    config.keys.encryption_key_file = Some(write_kek(dir.path(), "kek"));
    let second = aims_server::start(config.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let state = second.state().clone();
    assert_eq!(
        state.keys.current().unwrap().jwt().unwrap().info.kid,
        jwt_before
    );
    let records = stored_keys(&url).await;
    assert!(records.iter().any(|r| r.kid == jwt_before));
    assert!(records.iter().all(sealed), "every stored key is sealed");
    // ...and so are the successors staged at rotation.
    clock.set(t0 + 600);
    state.sync().await.unwrap();
    let records = stored_keys(&url).await;
    let jwt: Vec<_> = records
        .iter()
        .filter(|r| r.kind == aims_store::KeyKind::JwtSvid)
        .collect();
    assert_eq!(jwt.len(), 2);
    assert!(records.iter().all(sealed), "every stored key is sealed");
    second.shutdown().await;
    drop(dir);
}
