//! The acceptance path: entries created through the admin API, SVIDs fetched with the
//! `spiffe` crate's X.509 and JWT sources, verified against the published bundle.

use std::sync::Arc;
use std::time::Duration;

use aims_core::{SystemClock, TrustDomain};
use aims_jose::StaticKeys;
use aims_jose::jwt_svid::Validator;
use aims_pki::CertificateAuthority;
use aims_server::testkit;

use crate::common::{exe_selector, now, own_bundle, spec, uid_selector, verified_x509_svid};

const AUD: &str = "spiffe://example.org/api";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spiffe_sources_fetch_and_verify_svids_for_two_entries_and_a_federated_bundle() {
    let ts = testkit::start_default("example.org").await.unwrap();
    let admin = ts.admin();
    let (uid, exe) = (uid_selector(), exe_selector());

    // Entry a: uid and executable digest; entry b: uid only, federated with partner.
    let a = admin
        .create_entry(&spec("spiffe://example.org/agent/a", &[&uid, &exe]))
        .await
        .unwrap();
    let mut b_spec = spec("spiffe://example.org/agent/b", &[&uid]);
    b_spec.federates_with = vec![TrustDomain::new("partner.example").unwrap()];
    b_spec.dns_names = vec!["b.internal".into()];
    let b = admin.create_entry(&b_spec).await.unwrap();
    // An entry for someone else is not served to us.
    admin
        .create_entry(&spec(
            "spiffe://example.org/agent/other",
            &["unix:uid:4294967294"],
        ))
        .await
        .unwrap();

    // The partner's bundle, set by hand.
    let partner_td = TrustDomain::new("partner.example").unwrap();
    let partner_ca = CertificateAuthority::new_root(
        &partner_td,
        Duration::from_secs(86_400),
        Arc::new(SystemClock),
    )
    .unwrap();
    let partner_json = partner_ca.bundle().unwrap().to_json().unwrap();
    admin
        .set_bundle("partner.example", partner_json.into_bytes())
        .await
        .unwrap();

    let own = own_bundle(&ts).await;

    // X.509 through an X509Source.
    let source = spiffe::X509Source::builder()
        .endpoint(ts.workload_endpoint())
        .build()
        .await
        .unwrap();
    let ctx = source.x509_context().unwrap();
    let mut ids: Vec<String> = ctx
        .svids()
        .iter()
        .map(|s| s.spiffe_id().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, [a.spiffe_id.as_str(), b.spiffe_id.as_str()]);
    for svid in ctx.svids() {
        let verified = verified_x509_svid(svid, &own);
        assert_eq!(verified.spiffe_id().as_str(), svid.spiffe_id().to_string());
        assert!(verified.not_after() <= now() + 3600 + 5);
    }
    // The own bundle and, because entry b federates with it, the partner's.
    let bundles = ctx.bundle_set();
    let own_td = spiffe::TrustDomain::new("example.org").unwrap();
    let partner = spiffe::TrustDomain::new("partner.example").unwrap();
    assert_eq!(
        bundles.get(&own_td).unwrap().authorities()[0].as_bytes(),
        own.x509_authorities()[0].as_ref()
    );
    assert_eq!(
        bundles.get(&partner).unwrap().authorities()[0].as_bytes(),
        partner_ca.x509_authority().as_ref()
    );
    source.shutdown().await;

    // JWT through a JwtSource, validated locally against the published JWT keys.
    let jwt_source = spiffe::JwtSource::builder()
        .endpoint(ts.workload_endpoint())
        .build()
        .await
        .unwrap();
    let mut keys = StaticKeys::new();
    keys.add_jwks_for_use(
        "example.org",
        &serde_json::from_str(&own.to_json().unwrap()).unwrap(),
        "jwt-svid",
    );
    for entry in [&a, &b] {
        let id = spiffe::SpiffeId::new(entry.spiffe_id.as_str()).unwrap();
        let svid = jwt_source
            .fetch_jwt_svid_with_id([AUD], Some(&id))
            .await
            .unwrap();
        let valid = Validator::new(Arc::new(SystemClock), AUD)
            .validate(svid.token(), &keys)
            .unwrap();
        assert_eq!(valid.spiffe_id(), &entry.spiffe_id);
        assert!(valid.claims.exp <= now() + i64::from(entry.jwt_ttl) + 5);
    }
    jwt_source.shutdown().await;

    // The same through the plain client, with the server's own validation.
    let client = spiffe::WorkloadApiClient::connect_to(ts.workload_endpoint())
        .await
        .unwrap();
    let token = client
        .fetch_jwt_svid(
            [AUD],
            Some(&spiffe::SpiffeId::new(a.spiffe_id.as_str()).unwrap()),
        )
        .await
        .unwrap();
    let checked = client.validate_jwt_token(AUD, token.token()).await.unwrap();
    assert_eq!(checked.spiffe_id().to_string(), a.spiffe_id.as_str());

    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_entry_stops_being_served() {
    let ts = testkit::start_default("example.org").await.unwrap();
    let admin = ts.admin();
    let e = admin
        .create_entry(&spec("spiffe://example.org/agent/a", &[&uid_selector()]))
        .await
        .unwrap();
    let client = spiffe::WorkloadApiClient::connect_to(ts.workload_endpoint())
        .await
        .unwrap();
    assert_eq!(client.fetch_all_x509_svids().await.unwrap().len(), 1);
    admin.delete_entry(&e.id).await.unwrap();
    let err = client.fetch_x509_svid().await.unwrap_err();
    assert!(format!("{err:?}").contains("PermissionDenied"), "{err:?}");
    ts.server.shutdown().await;
}

/// `[server] node_id`: an entry whose `parent_id` names this node is served, one naming
/// another node is not, one without a parent is served by every node; a server without
/// a node ID serves all three (as before node IDs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_with_a_parent_are_served_only_by_that_node() {
    let node = aims_core::SpiffeId::parse("spiffe://example.org/node/a").unwrap();
    let ts = testkit::start_with("example.org", Arc::new(SystemClock), {
        let node = node.clone();
        move |c| c.server.node_id = Some(node)
    })
    .await
    .unwrap();
    let admin = ts.admin();
    let uid = uid_selector();
    let mut here = spec("spiffe://example.org/agent/here", &[&uid]);
    here.parent_id = Some(node);
    let mut elsewhere = spec("spiffe://example.org/agent/elsewhere", &[&uid]);
    elsewhere.parent_id = Some(aims_core::SpiffeId::parse("spiffe://example.org/node/b").unwrap());
    let anywhere = spec("spiffe://example.org/agent/anywhere", &[&uid]);
    for s in [&here, &elsewhere, &anywhere] {
        admin.create_entry(s).await.unwrap();
    }
    let client = spiffe::WorkloadApiClient::connect_to(ts.workload_endpoint())
        .await
        .unwrap();
    let mut ids: Vec<String> = client
        .fetch_all_x509_svids()
        .await
        .unwrap()
        .iter()
        .map(|s| s.spiffe_id().to_string())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "spiffe://example.org/agent/anywhere",
            "spiffe://example.org/agent/here"
        ]
    );
    ts.server.shutdown().await;

    let ts = testkit::start_default("example.org").await.unwrap();
    let admin = ts.admin();
    for s in [&here, &elsewhere, &anywhere] {
        admin.create_entry(s).await.unwrap();
    }
    let client = spiffe::WorkloadApiClient::connect_to(ts.workload_endpoint())
        .await
        .unwrap();
    assert_eq!(client.fetch_all_x509_svids().await.unwrap().len(), 3);
    ts.server.shutdown().await;
}
