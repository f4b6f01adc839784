//! X509-SVID and WIT-SVID rotation pushed by the server (about 11 s of real time each).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aims_workload::pb;

use crate::common::{Server, cert_info, entry, leaf_der, provider, raw_client, uid_selector};

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_svids_rotate_before_expiry_without_gap() {
    let uid = uid_selector();
    let mut e = entry("e1", "short", &[&uid]);
    e.x509_ttl = 10;
    let server = Server::start(provider(vec![e], false)).await;
    let mut c = raw_client(&server.socket, true).await;
    let mut stream = c
        .fetch_x509svid(pb::X509svidRequest {})
        .await
        .unwrap()
        .into_inner();

    let mut previous: Option<(i64, i64, Vec<u8>)> = None;
    // The first SVID, then two rotations.
    for round in 0..3 {
        let msg = tokio::time::timeout(Duration::from_secs(15), stream.message())
            .await
            .expect("the server pushes a new SVID before the old one expires")
            .unwrap()
            .expect("the stream stays open");
        let arrived = now();
        assert_eq!(msg.svids.len(), 1);
        let svid = &msg.svids[0];
        let leaf = leaf_der(&svid.x509_svid);
        let (not_before, not_after, uri) = cert_info(&leaf);
        assert_eq!(uri, "spiffe://example.org/short");
        assert!(
            not_after - not_before <= 20,
            "lifetime {}",
            not_after - not_before
        );
        assert!((not_before as f64) <= arrived && arrived < not_after as f64);
        if let Some((prev_not_before, prev_not_after, prev_key)) = &previous {
            // Pushed while the previous SVID was still valid, and the validity windows
            // overlap: no gap.
            assert!(
                arrived < *prev_not_after as f64,
                "round {round}: arrived too late"
            );
            assert!(not_before <= *prev_not_after);
            assert!(not_after > *prev_not_after);
            assert!(not_before >= *prev_not_before);
            assert_ne!(
                &svid.x509_svid_key, prev_key,
                "a rotation uses a fresh key pair"
            );
        }
        previous = Some((not_before, not_after, svid.x509_svid_key.clone()));
    }
    server.shutdown().await;
}

/// The `exp` and `iat` of a compact JWS's claims (unverified: the WIT tests check
/// signatures).
fn jwt_exp_iat(token: &str) -> (i64, i64) {
    let claims = aims_jose::Jws::unverified_claims(token).unwrap();
    (
        claims["exp"].as_i64().unwrap(),
        claims["iat"].as_i64().unwrap(),
    )
}

/// WIT-SVIDs rotate from the token's own `exp` too: pushed at about half life, before
/// the previous one expires, with a fresh key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_wit_svids_rotate_before_expiry() {
    let uid = uid_selector();
    let mut e = entry("e1", "short", &[&uid]);
    e.wit_ttl = 10;
    let server = Server::start(provider(vec![e], true)).await;
    let mut c = raw_client(&server.socket, true).await;
    let mut stream = c
        .fetch_witsvid(pb::WitsvidRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut previous: Option<(i64, String)> = None;
    for round in 0..3 {
        let msg = tokio::time::timeout(Duration::from_secs(15), stream.message())
            .await
            .expect("the server pushes a new WIT-SVID before the old one expires")
            .unwrap()
            .expect("the stream stays open");
        let arrived = now();
        assert_eq!(msg.svids.len(), 1);
        let svid = &msg.svids[0];
        let (exp, iat) = jwt_exp_iat(&svid.wit_svid);
        assert!(exp - iat <= 10, "lifetime {}", exp - iat);
        assert!(arrived < exp as f64);
        if let Some((prev_exp, prev_key)) = &previous {
            assert!(
                arrived < *prev_exp as f64,
                "round {round}: arrived after the previous WIT expired"
            );
            assert!(exp > *prev_exp);
            assert_ne!(&svid.wit_svid_key, prev_key, "a rotation uses a fresh key");
        }
        previous = Some((exp, svid.wit_svid_key.clone()));
    }
    server.shutdown().await;
}
