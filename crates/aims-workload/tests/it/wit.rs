//! The WIT-SVID profile with a raw tonic client.

use std::sync::Arc;

use aims_core::SystemClock;
use aims_crypto::{Jwk, Jwks, Signer as _, SigningKey};
use aims_jose::StaticKeys;
use aims_jose::wit::{Validator, WitProfile};
use aims_workload::pb;
use tokio_stream::StreamExt as _;

use crate::common::{Server, entry, next, provider, raw_client, uid_selector};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wit_svid_and_bundles() {
    let uid = uid_selector();
    let mut a = entry("e1", "a", &[&uid]);
    a.hint = Some("internal".into());
    let b = entry("e2", "b", &[&uid]);
    let server = Server::start(provider(vec![a, b], true)).await;
    let mut c = raw_client(&server.socket, true).await;

    let mut bundles = c
        .fetch_wit_bundles(pb::WitBundlesRequest {})
        .await
        .unwrap()
        .into_inner();
    let bundles = next(&mut bundles).await.unwrap();
    let jwks: Jwks = serde_json::from_str(&bundles.bundles["spiffe://example.org"]).unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert!(jwks.keys.iter().all(|k| k.kid.is_some()));
    let mut keys = StaticKeys::new();
    keys.add_jwks_for_use("example.org", &jwks, "wit-svid");

    let mut stream = c
        .fetch_witsvid(pb::WitsvidRequest::default())
        .await
        .unwrap()
        .into_inner();
    let resp = next(&mut stream).await.unwrap();
    assert_eq!(resp.svids.len(), 2);
    let validator = Validator::new(WitProfile::WitSvid, Arc::new(SystemClock));
    for svid in &resp.svids {
        let wit = validator.validate(&svid.wit_svid, &keys).unwrap();
        assert_eq!(wit.subject().as_str(), svid.spiffe_id);
        // The delivered private key is the one bound by cnf.jwk.
        let private: Jwk = serde_json::from_str(&svid.wit_svid_key).unwrap();
        assert!(private.has_private_members());
        let signer = SigningKey::from_private_jwk(&private).unwrap();
        assert_eq!(signer.public_jwk().x, wit.confirmation_jwk().x);
        assert_eq!(signer.public_jwk().y, wit.confirmation_jwk().y);
        let lifetime = wit.exp() - aims_core::Clock::now(&SystemClock);
        assert!((590..=601).contains(&lifetime), "{lifetime}");
    }
    assert_eq!(resp.svids[0].hint, "internal");
    assert_ne!(resp.svids[0].wit_svid_key, resp.svids[1].wit_svid_key);

    // Only the requested identity; another one is denied.
    let mut only_b = c
        .fetch_witsvid(pb::WitsvidRequest {
            spiffe_id: "spiffe://example.org/b".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let resp = only_b.next().await.unwrap().unwrap();
    assert_eq!(resp.svids.len(), 1);
    assert_eq!(resp.svids[0].spiffe_id, "spiffe://example.org/b");
    let denied = c
        .fetch_witsvid(pb::WitsvidRequest {
            spiffe_id: "spiffe://example.org/c".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    server.shutdown().await;
}
