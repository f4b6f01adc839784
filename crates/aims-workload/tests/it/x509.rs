//! The X509-SVID profile through the Rust `spiffe` crate.

use std::time::Duration;

use aims_core::TrustDomain;
use aims_pki::SpiffeBundle;
use aims_workload::IdentityProvider as _;
use tokio_stream::StreamExt as _;

use crate::common::{Server, entry, new_ca, next, provider, uid_selector};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_x509_svid_and_context_with_federation() {
    let uid = uid_selector();
    let mut e = entry("e1", "agent/a", &[&uid]);
    let partner = TrustDomain::new("partner.example").unwrap();
    e.federates_with.insert(partner.clone());
    e.hint = Some("internal".into());
    let p = provider(vec![e], false);
    let mut partner_bundle = SpiffeBundle::new(partner.clone());
    partner_bundle
        .add_x509_authority(new_ca(&partner).x509_authority().clone())
        .unwrap();
    // A bundle nobody federates with is not handed out.
    let other = TrustDomain::new("other.example").unwrap();
    let mut other_bundle = SpiffeBundle::new(other.clone());
    other_bundle
        .add_x509_authority(new_ca(&other).x509_authority().clone())
        .unwrap();
    p.set_federated_bundles(vec![partner_bundle, other_bundle]);
    let server = Server::start(p.clone()).await;
    let client = server.spiffe_client().await;

    let svid = client.fetch_x509_svid().await.unwrap();
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://example.org/agent/a");
    assert_eq!(svid.hint(), Some("internal"));
    // The SVID chains to the trust domain's CA and its key matches (aims-pki checks both).
    let chain: Vec<u8> = svid
        .cert_chain()
        .iter()
        .flat_map(|c| c.as_bytes().to_vec())
        .collect();
    let ours = aims_pki::X509Svid::parse_raw(&chain, svid.private_key().as_bytes()).unwrap();
    let own = p.bundle().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let verified = aims_pki::svid::verify_with_bundle(
        ours.chain(),
        &own,
        now,
        &aims_pki::svid::VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(
        verified.spiffe_id().as_str(),
        "spiffe://example.org/agent/a"
    );

    let ctx = client.fetch_x509_context().await.unwrap();
    assert_eq!(ctx.svids().len(), 1);
    let bundles = ctx.bundle_set();
    let own_td = spiffe::TrustDomain::new("example.org").unwrap();
    let partner_td = spiffe::TrustDomain::new("partner.example").unwrap();
    let other_td = spiffe::TrustDomain::new("other.example").unwrap();
    assert_eq!(
        bundles.get(&own_td).unwrap().authorities()[0].as_bytes(),
        own.x509_authorities()[0].as_ref()
    );
    assert!(bundles.get(&partner_td).is_some());
    assert!(bundles.get(&other_td).is_none());

    let x509_bundles = client.fetch_x509_bundles().await.unwrap();
    assert!(x509_bundles.get(&own_td).is_some());
    assert!(x509_bundles.get(&partner_td).is_some());
    assert!(x509_bundles.get(&other_td).is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_identities_default_first_and_unique_hints() {
    let uid = uid_selector();
    let mut a = entry("e1", "b-second", &[&uid]);
    a.hint = Some("same".into());
    let mut b = entry("e2", "a-first", &[&uid]);
    b.hint = Some("same".into());
    let server = Server::start(provider(vec![a, b], false)).await;
    let client = server.spiffe_client().await;
    let all = client.fetch_all_x509_svids().await.unwrap();
    let ids: Vec<String> = all.iter().map(|s| s.spiffe_id().to_string()).collect();
    assert_eq!(
        ids,
        [
            "spiffe://example.org/a-first",
            "spiffe://example.org/b-second"
        ]
    );
    // Hints must be unique in a response: the first keeps it.
    assert_eq!(all[0].hint(), Some("same"));
    assert_eq!(all[1].hint(), None);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_follows_entry_changes_then_permission_denied() {
    let uid = uid_selector();
    let p = provider(vec![entry("e1", "one", &[&uid])], false);
    let server = Server::start(p.clone()).await;
    let client = server.spiffe_client().await;
    let mut stream = client.stream_x509_contexts().await.unwrap();
    let first = next(&mut stream).await.unwrap();
    assert_eq!(first.svids().len(), 1);

    p.upsert_entry(entry("e2", "two", &[&uid]));
    let second = next(&mut stream).await.unwrap();
    let ids: Vec<String> = second
        .svids()
        .iter()
        .map(|s| s.spiffe_id().to_string())
        .collect();
    assert_eq!(
        ids,
        ["spiffe://example.org/one", "spiffe://example.org/two"]
    );
    // The unchanged identity keeps its SVID (no needless re-issue).
    assert_eq!(
        first.svids()[0].leaf().as_bytes(),
        second.svids()[0].leaf().as_bytes()
    );

    // An entry for somebody else changes nothing for this caller: no message.
    p.upsert_entry(entry("e3", "three", &["unix:uid:4294967294"]));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), stream.next())
            .await
            .is_err()
    );

    p.set_entries(vec![]);
    let err = next(&mut stream).await.unwrap_err();
    assert!(format!("{err:?}").contains("PermissionDenied"), "{err:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_rotation_reissues_and_pushes_the_new_bundle() {
    let uid = uid_selector();
    let p = provider(vec![entry("e1", "one", &[&uid])], false);
    let server = Server::start(p.clone()).await;
    let client = server.spiffe_client().await;
    let mut stream = client.stream_x509_contexts().await.unwrap();
    let first = next(&mut stream).await.unwrap();
    p.set_ca(new_ca(p.trust_domain())).unwrap();
    let second = next(&mut stream).await.unwrap();
    assert_ne!(
        first.svids()[0].leaf().as_bytes(),
        second.svids()[0].leaf().as_bytes()
    );
    let td = spiffe::TrustDomain::new("example.org").unwrap();
    assert_ne!(
        first.bundle_set().get(&td).unwrap().authorities(),
        second.bundle_set().get(&td).unwrap().authorities()
    );
    server.shutdown().await;
}
