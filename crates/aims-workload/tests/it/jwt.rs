//! The JWT-SVID profile through the Rust `spiffe` crate and a raw client.

use std::sync::Arc;

use aims_core::SystemClock;
use aims_jose::StaticKeys;
use aims_jose::jwt_svid::Validator;
use aims_workload::IdentityProvider as _;
use aims_workload::pb;
use prost_types::value::Kind;

use crate::common::{Server, entry, provider, raw_client, uid_selector};

const AUD: &str = "spiffe://example.org/api";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_validate_and_bundles() {
    let uid = uid_selector();
    let mut e = entry("e1", "agent/a", &[&uid]);
    e.jwt_ttl = 120;
    let p = provider(vec![e], false);
    let server = Server::start(p.clone()).await;
    let client = server.spiffe_client().await;

    let svid = client.fetch_jwt_svid([AUD], None).await.unwrap();
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://example.org/agent/a");
    assert_eq!(svid.audience(), [AUD]);
    let lifetime = svid.expiry().unix_timestamp() - aims_core::Clock::now(&SystemClock);
    assert!((110..=121).contains(&lifetime), "{lifetime}");

    // The token validates locally against the JWT bundle AIMS publishes.
    let own = p.bundle().unwrap();
    let mut keys = StaticKeys::new();
    keys.add_jwks_for_use(
        "example.org",
        &serde_json::from_str(&own.to_json().unwrap()).unwrap(),
        "jwt-svid",
    );
    let local = Validator::new(Arc::new(SystemClock), AUD)
        .validate(svid.token(), &keys)
        .unwrap();
    assert_eq!(local.spiffe_id().as_str(), "spiffe://example.org/agent/a");

    // And through the Workload API.
    let validated = client.validate_jwt_token(AUD, svid.token()).await.unwrap();
    assert_eq!(validated.spiffe_id(), svid.spiffe_id());
    let wrong = client
        .validate_jwt_token("spiffe://example.org/other", svid.token())
        .await
        .unwrap_err();
    assert!(wrong.is_invalid_argument(), "{wrong:?}");

    let bundles = client.fetch_jwt_bundles().await.unwrap();
    let td = spiffe::TrustDomain::new("example.org").unwrap();
    let bundle = bundles.get(&td).unwrap();
    assert!(bundle.find_jwt_authority(svid.key_id()).is_some());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_spiffe_id_must_be_the_callers() {
    let uid = uid_selector();
    let p = provider(
        vec![
            entry("e1", "a", &[&uid]),
            entry("e2", "b", &[&uid]),
            entry("e3", "not-mine", &["unix:uid:4294967294"]),
        ],
        false,
    );
    let server = Server::start(p).await;
    let client = server.spiffe_client().await;
    let all = client.fetch_all_jwt_svids([AUD], None).await.unwrap();
    assert_eq!(all.len(), 2);
    let b = spiffe::SpiffeId::new("spiffe://example.org/b").unwrap();
    let one = client.fetch_jwt_svid([AUD], Some(&b)).await.unwrap();
    assert_eq!(one.spiffe_id(), &b);

    let mut raw = raw_client(&server.socket, true).await;
    let denied = raw
        .fetch_jwtsvid(pb::JwtsvidRequest {
            audience: vec![AUD.into()],
            spiffe_id: "spiffe://example.org/not-mine".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let bad = raw
        .fetch_jwtsvid(pb::JwtsvidRequest {
            audience: vec![AUD.into()],
            spiffe_id: "not a spiffe id".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_returns_all_claims_and_multiple_audiences() {
    let uid = uid_selector();
    let server = Server::start(provider(vec![entry("e1", "a", &[&uid])], false)).await;
    let mut raw = raw_client(&server.socket, true).await;
    let resp = raw
        .fetch_jwtsvid(pb::JwtsvidRequest {
            audience: vec![AUD.into(), "spiffe://example.org/second".into()],
            spiffe_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let token = resp.svids[0].svid.clone();
    let v = raw
        .validate_jwtsvid(pb::ValidateJwtsvidRequest {
            audience: "spiffe://example.org/second".into(),
            svid: token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.spiffe_id, "spiffe://example.org/a");
    let claims = v.claims.unwrap().fields;
    assert_eq!(
        claims["sub"].kind,
        Some(Kind::StringValue("spiffe://example.org/a".into()))
    );
    let Some(Kind::ListValue(aud)) = &claims["aud"].kind else {
        panic!("aud is a list")
    };
    assert_eq!(aud.values.len(), 2);
    assert!(matches!(claims["exp"].kind, Some(Kind::NumberValue(_))));
    assert!(matches!(claims["iat"].kind, Some(Kind::NumberValue(_))));

    // A token of an unknown trust domain, garbage, and a forged signature are refused.
    for svid in ["a.b.c", "not-a-jwt"] {
        let err = raw
            .validate_jwtsvid(pb::ValidateJwtsvidRequest {
                audience: AUD.into(),
                svid: svid.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
    server.shutdown().await;
}

/// A provider whose caller entry federates with partner.example only if `federates`,
/// and a token of `spiffe://partner.example/caller` for [`AUD`] signed by the partner's
/// JWT key, which its bundle lists.
fn partner_setup(federates: bool) -> (Arc<aims_workload::StaticProvider>, String) {
    use aims_crypto::{Algorithm, Signer as _, SigningKey};
    use aims_jose::jwt_svid::{JwtSvidClaims, create};

    let uid = uid_selector();
    let partner = aims_core::TrustDomain::new("partner.example").unwrap();
    let mut e = entry("e1", "a", &[&uid]);
    if federates {
        e.federates_with.insert(partner.clone());
    }
    let p = provider(vec![e], false);
    let partner_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut bundle = aims_pki::SpiffeBundle::new(partner);
    bundle
        .add_jwt_authority(partner_key.public_jwk().clone())
        .unwrap();
    p.set_federated_bundles(vec![bundle]);
    let now = aims_core::Clock::now(&SystemClock);
    let sub = aims_core::SpiffeId::parse("spiffe://partner.example/caller").unwrap();
    let token = create(&JwtSvidClaims::new(sub, AUD, now, 60), &partner_key).unwrap();
    (p, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validates_tokens_of_federated_trust_domains() {
    use aims_crypto::{Algorithm, SigningKey};
    use aims_jose::jwt_svid::{JwtSvidClaims, create};

    let (p, token) = partner_setup(true);
    let server = Server::start(p).await;
    let now = aims_core::Clock::now(&SystemClock);
    let client = server.spiffe_client().await;
    let v = client.validate_jwt_token(AUD, &token).await.unwrap();
    assert_eq!(v.spiffe_id().to_string(), "spiffe://partner.example/caller");
    // The same claims signed by an unknown key are refused.
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    let sub = aims_core::SpiffeId::parse("spiffe://partner.example/caller").unwrap();
    let forged = create(&JwtSvidClaims::new(sub, AUD, now, 60), &stranger).unwrap();
    assert!(
        client
            .validate_jwt_token(AUD, &forged)
            .await
            .unwrap_err()
            .is_invalid_argument()
    );
    server.shutdown().await;
}

/// The caller's bundle view decides: a partner the server knows, but that none of the
/// caller's entries federates with, is not trusted for this caller (as in SPIRE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_trust_domains_the_caller_does_not_federate_with_are_refused() {
    let (p, token) = partner_setup(false);
    let server = Server::start(p).await;
    let mut raw = raw_client(&server.socket, true).await;
    let err = raw
        .validate_jwtsvid(pb::ValidateJwtsvidRequest {
            audience: AUD.into(),
            svid: token,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    // Nor does the partner's key appear in the caller's JWT bundles.
    let mut stream = raw
        .fetch_jwt_bundles(pb::JwtBundlesRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = crate::common::next(&mut stream).await.unwrap();
    assert_eq!(
        first.bundles.keys().collect::<Vec<_>>(),
        ["spiffe://example.org"]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_bundle_stream_follows_key_rotation() {
    use aims_crypto::{Algorithm, Signer as _, SigningKey};

    let uid = uid_selector();
    let p = provider(vec![entry("e1", "a", &[&uid])], false);
    let server = Server::start(p.clone()).await;
    let mut raw = raw_client(&server.socket, true).await;
    let mut stream = raw
        .fetch_jwt_bundles(pb::JwtBundlesRequest {})
        .await
        .unwrap()
        .into_inner();
    let kids = |m: &pb::JwtBundlesResponse| -> Vec<String> {
        let jwks: aims_crypto::Jwks =
            serde_json::from_slice(&m.bundles["spiffe://example.org"]).unwrap();
        jwks.keys.into_iter().filter_map(|k| k.kid).collect()
    };
    let first = crate::common::next(&mut stream).await.unwrap();
    let new_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let new_kid = new_key.kid().to_owned();
    assert!(!kids(&first).contains(&new_kid));
    p.set_jwt_key(new_key).unwrap();
    let second = crate::common::next(&mut stream).await.unwrap();
    assert_eq!(kids(&second), [new_kid]);
    server.shutdown().await;
}
