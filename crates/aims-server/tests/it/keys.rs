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
