//! Federation: a bundle fetched from another server's `https_spiffe` endpoint, after a
//! bootstrap bundle was set by hand, and delivered in `federated_bundles`.

use std::sync::Arc;

use aims_core::{Clock as _, ManualClock, SpiffeId, SystemClock, TrustDomain};
use aims_server::config::{EndpointProfile, FederatedTrustDomain, Seconds};
use aims_server::federation::FederationError;
use aims_server::testkit;

use crate::common::{spec, uid_selector};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_is_fetched_from_an_https_spiffe_endpoint_and_served_to_workloads() {
    // Server B (b.test) serves its bundle over TLS with its own SVID.
    let clock_b = ManualClock::new(SystemClock.now());
    let b = testkit::start_with("b.test", Arc::new(clock_b.clone()), |c| {
        c.http.bundle_endpoint_listen = Some("127.0.0.1:0".parse().unwrap());
        c.bundle.refresh_hint = Seconds(60);
        c.jwt.rotation_period = toml::Spanned::new(0..0, Seconds(600));
    })
    .await
    .unwrap();
    let b_endpoint = b.server.endpoints().bundle_endpoint.unwrap();
    let td_b = TrustDomain::new("b.test").unwrap();

    // Server A (a.test) federates with b.test.
    let peer = |id: &str| FederatedTrustDomain {
        name: td_b.clone(),
        bundle_endpoint_url: Some(format!("https://{b_endpoint}/")),
        profile: EndpointProfile::HttpsSpiffe,
        endpoint_spiffe_id: Some(SpiffeId::parse(id).unwrap()),
    };
    let a = testkit::start_with("a.test", Arc::new(SystemClock), |c| {
        c.federation.trust_domains = vec![toml::Spanned::new(
            0..0,
            peer("spiffe://b.test/aims/server"),
        )];
    })
    .await
    .unwrap();
    let fed = &a.server.state().federation;

    // Without a bootstrap bundle, https_spiffe cannot authenticate the endpoint.
    let err = fed.fetch(&td_b).await.unwrap_err();
    assert!(
        matches!(err, FederationError::NoBootstrapBundle(_)),
        "{err}"
    );

    // Bootstrap by hand with B's current bundle.
    let bootstrap = b.admin().bundle().await.unwrap();
    a.admin()
        .set_bundle("b.test", bootstrap.clone().into_bytes())
        .await
        .unwrap();

    // B stages a new JWT key: its bundle changes.
    clock_b.advance(600);
    b.server.state().sync().await.unwrap();
    let b_now = b.admin().bundle().await.unwrap();
    assert_ne!(b_now, bootstrap);

    // A fetches it from the endpoint, at B's refresh hint.
    let next = fed.fetch(&td_b).await.unwrap();
    assert_eq!(next.as_secs(), 60);
    let stored = a.admin().bundles().await.unwrap();
    assert_eq!(stored.bundles.len(), 1);
    let info = &stored.bundles[0];
    assert_eq!(info.trust_domain, td_b);
    assert_eq!(
        info.endpoint_url.as_deref(),
        Some(format!("https://{b_endpoint}/").as_str())
    );
    let b_parsed = aims_pki::SpiffeBundle::parse(td_b.clone(), b_now.as_bytes()).unwrap();
    assert_eq!(info.sequence, b_parsed.sequence().unwrap());
    let held = fed.get(&td_b).unwrap();
    assert_eq!(held.jwt_authorities().count(), 2);

    // A workload of A federating with b.test receives B's bundle.
    let mut s = spec("spiffe://a.test/agent/fed", &[&uid_selector()]);
    s.federates_with = vec![td_b.clone()];
    a.admin().create_entry(&s).await.unwrap();
    let client = spiffe::WorkloadApiClient::connect_to(a.workload_endpoint())
        .await
        .unwrap();
    let ctx = client.fetch_x509_context().await.unwrap();
    let got = ctx
        .bundle_set()
        .get(&spiffe::TrustDomain::new("b.test").unwrap())
        .unwrap()
        .authorities()[0]
        .as_bytes()
        .to_vec();
    assert_eq!(got, b_parsed.x509_authorities()[0].as_ref());
    let jwt = client.fetch_jwt_bundles().await.unwrap();
    assert!(
        jwt.get(&spiffe::TrustDomain::new("b.test").unwrap())
            .is_some()
    );

    a.server.shutdown().await;

    // An endpoint presenting another SPIFFE ID than configured is refused.
    let c = testkit::start_with("a.test", Arc::new(SystemClock), |c| {
        c.federation.trust_domains = vec![toml::Spanned::new(
            0..0,
            peer("spiffe://b.test/someone/else"),
        )];
    })
    .await
    .unwrap();
    c.admin()
        .set_bundle("b.test", b_now.into_bytes())
        .await
        .unwrap();
    let err = c.server.state().federation.fetch(&td_b).await.unwrap_err();
    assert!(matches!(err, FederationError::Fetch { .. }), "{err}");
    c.server.shutdown().await;
    b.server.shutdown().await;
}

/// Two servers: a.test, which federates with c.test, and c.test; c.test's name.
async fn a_and_c() -> (testkit::TestServer, testkit::TestServer, TrustDomain) {
    let c = testkit::start_with("c.test", Arc::new(SystemClock), |_| {})
        .await
        .unwrap();
    let a = testkit::start_with("a.test", Arc::new(SystemClock), |_| {})
        .await
        .unwrap();
    (a, c, TrustDomain::new("c.test").unwrap())
}

/// A federated bundle set by hand is trusted by the server's TLS listeners at once, and
/// deleting it removes that trust at once (not at the next sync).
#[tokio::test]
async fn a_deleted_bundle_leaves_the_tls_trust_store_at_once() {
    let (a, c, td_c) = a_and_c().await;
    let trusted = || {
        a.server
            .state()
            .tls
            .trust_store()
            .trust_domains()
            .contains(&td_c)
    };
    assert!(!trusted());
    let bundle = c.admin().bundle().await.unwrap();
    a.admin()
        .set_bundle("c.test", bundle.into_bytes())
        .await
        .unwrap();
    assert!(trusted());
    a.admin().delete_bundle("c.test").await.unwrap();
    assert!(!trusted());
    a.server.shutdown().await;
    c.server.shutdown().await;
}

/// SPIFFE Trust Domain and Bundle §4: a bundle with an empty `keys` revokes every key of
/// the trust domain. It is stored like any newer bundle, and nothing of that domain is
/// trusted afterwards (before, it was refused and the revoked keys stayed trusted).
#[tokio::test]
async fn an_empty_bundle_revokes_every_key_of_the_trust_domain() {
    let (a, c, td_c) = a_and_c().await;
    let bundle = c.admin().bundle().await.unwrap();
    let sequence = serde_json::from_str::<serde_json::Value>(&bundle).unwrap()["spiffe_sequence"]
        .as_u64()
        .unwrap();
    a.admin()
        .set_bundle("c.test", bundle.into_bytes())
        .await
        .unwrap();
    let held = || a.server.state().tls.trust_store().get(&td_c).unwrap();
    assert!(!held().x509_authorities().is_empty());
    let revoked = serde_json::json!({"spiffe_sequence": sequence + 1, "keys": []}).to_string();
    a.admin()
        .set_bundle("c.test", revoked.into_bytes())
        .await
        .unwrap();
    assert!(held().is_empty(), "no key of c.test is trusted");
    a.server.shutdown().await;
    c.server.shutdown().await;
}

/// A sync step that fails does not stop the others: with a stored key this node cannot
/// load (the key schedule fails), a bundle deleted by another node still leaves this
/// node's trust at the next sync.
#[tokio::test]
async fn a_failing_sync_step_does_not_stop_the_others() {
    use aims_store::{KeyKind, KeyRecord, KeyState};
    let (a, c, td_c) = a_and_c().await;
    let bundle = c.admin().bundle().await.unwrap();
    a.admin()
        .set_bundle("c.test", bundle.into_bytes())
        .await
        .unwrap();
    let state = a.server.state();
    let now = crate::common::now();
    state
        .store
        .put_key(&KeyRecord {
            kind: KeyKind::JwtSvid,
            kid: "unloadable".into(),
            alg: "bogus".into(),
            pkcs8: vec![0u8; 32].into(),
            cert_chain_der: Vec::new(),
            state: KeyState::Next,
            not_before: now - 10,
            not_after: now + 3600,
            created_at: now - 10,
        })
        .await
        .unwrap();
    // Another node deletes the bundle (straight in the shared store).
    state.store.delete_bundle(&td_c).await.unwrap();
    let err = state.sync().await.unwrap_err();
    assert!(err.to_string().contains("unloadable"), "{err}");
    assert!(state.federation.get(&td_c).is_none());
    assert!(!state.tls.trust_store().trust_domains().contains(&td_c));
    a.server.shutdown().await;
    c.server.shutdown().await;
}

/// `spiffe_refresh_hint` and `spiffe_sequence` are 64-bit unsigned: a hint above what the
/// store keeps is stored bounded (one day) instead of failing every fetch; a sequence
/// above 2^63 - 1 is refused with a message that says so.
#[tokio::test]
async fn extreme_refresh_hints_are_bounded_and_extreme_sequences_refused() {
    let (a, c, td_c) = a_and_c().await;
    let mut bundle: serde_json::Value =
        serde_json::from_str(&c.admin().bundle().await.unwrap()).unwrap();
    bundle["spiffe_refresh_hint"] = serde_json::json!(u64::MAX);
    a.admin()
        .set_bundle("c.test", bundle.to_string().into_bytes())
        .await
        .unwrap();
    let stored = a.server.state().store.get_bundle(&td_c).await.unwrap();
    assert_eq!(stored.refresh_hint, Some(86_400));
    bundle["spiffe_sequence"] = serde_json::json!(u64::MAX);
    let err = a
        .admin()
        .set_bundle("c.test", bundle.to_string().into_bytes())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("2^63"), "{err}");
    a.server.shutdown().await;
    c.server.shutdown().await;
}
