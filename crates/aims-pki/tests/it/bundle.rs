//! SPIFFE bundles (SPIFFE Trust Domain and Bundle §4, X509-SVID §6): go-spiffe's bundle
//! vectors (copied in `tests/vectors/bundle`) with a documented verdict each, the parsing
//! rules, serialisation, and the trust store.

use std::sync::Arc;

use aims_crypto::{Algorithm, CryptoError, Signer as _, SigningKey};
use aims_pki::{BundleError, SpiffeBundle, TrustStore};
use serde_json::{Value, json};

use crate::common::*;

fn spiffe(name: &str) -> Result<SpiffeBundle, BundleError> {
    SpiffeBundle::parse(
        td("example.org"),
        &read_vector(&format!("bundle/spiffebundle/testdata/{name}")),
    )
}

fn jwks(name: &str) -> Result<SpiffeBundle, BundleError> {
    SpiffeBundle::from_jwks(
        td("example.org"),
        &read_vector(&format!("bundle/jwtbundle/testdata/{name}")),
    )
}

fn x509(name: &str) -> Result<SpiffeBundle, BundleError> {
    SpiffeBundle::from_x509_pem(
        td("example.org"),
        &read_vector(&format!("bundle/x509bundle/testdata/{name}")),
    )
}

fn kids<'a>(it: impl Iterator<Item = &'a aims_crypto::Jwk>) -> Vec<String> {
    it.map(|k| k.kid.clone().unwrap()).collect()
}

#[test]
fn go_spiffe_spiffebundle_vectors() {
    // valid_1: one X.509 authority, one JWT key; no sequence or refresh hint.
    let b = spiffe("spiffebundle_valid_1.json").unwrap();
    assert_eq!(b.x509_authorities().len(), 1);
    assert_eq!(
        kids(b.jwt_authorities()),
        ["C6vs25welZOx6WksNYfbMfiw9l96pMnD"]
    );
    assert!(b.jwt_key("C6vs25welZOx6WksNYfbMfiw9l96pMnD").is_some());
    assert_eq!((b.sequence(), b.refresh_hint()), (None, None));

    // valid_2: sequence 1, refresh hint 60 s, six JWT keys.
    let b = spiffe("spiffebundle_valid_2.json").unwrap();
    assert_eq!((b.sequence(), b.refresh_hint()), (Some(1), Some(60)));
    assert_eq!(b.x509_authorities().len(), 1);
    assert_eq!(b.jwt_authorities().count(), 6);
    assert_eq!(b.wit_authorities().count(), 0);

    // valid_with_wit: two jwt-svid and two wit-svid keys, kept apart.
    let b = spiffe("spiffebundle_valid_with_wit.json").unwrap();
    assert_eq!(
        kids(b.jwt_authorities()),
        [
            "IRsID4VIM3T11TsK43Ny1DgCD5UNWhva",
            "qjwWkiMpkHzIxsSrAsLxSZ2WZ8AyMESx"
        ]
    );
    assert_eq!(
        kids(b.wit_authorities()),
        [
            "uNhqAaPI7NDn7IHOsa2ac1BF4O5qGxjZ",
            "y3UHKFp0WqPpG7gVr3FKieiEzwH8fTMm"
        ]
    );
    assert!(b.wit_key("uNhqAaPI7NDn7IHOsa2ac1BF4O5qGxjZ").is_some());
    assert!(b.jwt_key("uNhqAaPI7NDn7IHOsa2ac1BF4O5qGxjZ").is_none());
    assert!(
        b.wit_authorities()
            .all(|k| k.use_.as_deref() == Some("wit-svid"))
    );

    // missing_kid: a jwt-svid key without `kid` (JWT-SVID §6: kid MUST be set) fails.
    assert_eq!(
        spiffe("spiffebundle_missing_kid.json").unwrap_err(),
        BundleError::MissingKid
    );

    // no_keys: `keys` is absent (§4.1.3: MUST be present) fails, even with sequence/hint.
    assert_eq!(
        spiffe("spiffebundle_no_keys.json").unwrap_err(),
        BundleError::MissingKeys
    );

    // multiple_x509: one x509-svid key with two `x5c` entries. go-spiffe rejects it; we
    // follow X509-SVID §6.2 ("all but the first MUST be ignored"): one authority, the first.
    let b = spiffe("spiffebundle_multiple_x509.json").unwrap();
    assert_eq!(b.x509_authorities().len(), 1);
    let doc: Value = serde_json::from_slice(&read_vector(
        "bundle/spiffebundle/testdata/spiffebundle_multiple_x509.json",
    ))
    .unwrap();
    let first = doc["keys"][0]["x5c"][0].as_str().unwrap();
    assert_eq!(
        b.x509_authorities()[0].as_ref(),
        aims_crypto::b64::decode_std(first).unwrap()
    );
    assert_eq!(b.jwt_authorities().count(), 1);
}

#[test]
fn go_spiffe_jwtbundle_vectors() {
    // jwks_valid_1 / _2: plain JWK Sets, every key a JWT authority.
    assert_eq!(
        kids(jwks("jwks_valid_1.json").unwrap().jwt_authorities()),
        ["C6vs25welZOx6WksNYfbMfiw9l96pMnD"]
    );
    assert_eq!(
        jwks("jwks_valid_2.json").unwrap().jwt_authorities().count(),
        2
    );
    // jwks_missing_kid: the second key has no kid (go-spiffe: "missing key ID").
    assert_eq!(
        jwks("jwks_missing_kid.json").unwrap_err(),
        BundleError::MissingKid
    );
}

#[test]
fn go_spiffe_x509bundle_vectors() {
    // cert.pem / certs.pem: one and two authorities.
    assert_eq!(x509("cert.pem").unwrap().x509_authorities().len(), 1);
    let two = x509("certs.pem").unwrap();
    assert_eq!(two.x509_authorities().len(), 2);
    assert_eq!(
        two.x509_authorities()[0],
        x509("cert.pem").unwrap().x509_authorities()[0]
    );
    // empty.pem and key.pem: no certificates (go-spiffe: "no certificates found").
    assert_eq!(x509("empty.pem").unwrap_err(), BundleError::NoCertificates);
    assert_eq!(x509("key.pem").unwrap_err(), BundleError::NoCertificates);
    // not-pem.pem: no PEM data (go-spiffe: "no PEM data found while decoding block").
    assert_eq!(x509("not-pem.pem").unwrap_err(), BundleError::NotPem);
    // corrupted.pem: the base64 or the DER is broken (go-spiffe: "cannot parse certificate").
    assert!(matches!(
        x509("corrupted.pem").unwrap_err(),
        BundleError::InvalidCertificate | BundleError::MalformedPem(_)
    ));
    // PEM output round-trips.
    let again =
        SpiffeBundle::from_x509_pem(td("example.org"), two.to_x509_pem().as_bytes()).unwrap();
    assert_eq!(again.x509_authorities(), two.x509_authorities());
}

fn ec_jwk(kid: Option<&str>, use_: &str) -> Value {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut v = serde_json::to_value(key.public_jwk()).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("alg");
    match kid {
        Some(k) => obj.insert("kid".into(), json!(k)),
        None => obj.remove("kid"),
    };
    obj.insert("use".into(), json!(use_));
    v
}

fn parse_keys(keys: Value) -> Result<SpiffeBundle, BundleError> {
    SpiffeBundle::parse(
        td("example.org"),
        json!({ "keys": keys }).to_string().as_bytes(),
    )
}

#[test]
fn keys_may_be_empty() {
    let b = parse_keys(json!([])).unwrap();
    assert!(b.is_empty());
}

#[test]
fn unknown_or_missing_use_and_unknown_kty_are_ignored() {
    let mut no_use = ec_jwk(Some("a"), "x");
    no_use.as_object_mut().unwrap().remove("use");
    let mut unknown_kty = ec_jwk(Some("b"), "jwt-svid");
    unknown_kty["kty"] = json!("XYZ");
    let b = parse_keys(json!([
        no_use,
        ec_jwk(Some("c"), "sig"),
        ec_jwk(Some("d"), "JWT-SVID"), // `use` is case-sensitive
        unknown_kty,
        {"kty": "oct", "use": "jwt-svid", "k": "c2VjcmV0"},
        ec_jwk(Some("e"), "jwt-svid"),
    ]))
    .unwrap();
    assert_eq!(kids(b.jwt_authorities()), ["e"]);
}

#[test]
fn jwt_and_wit_keys_need_a_kid() {
    assert_eq!(
        parse_keys(json!([ec_jwk(None, "jwt-svid")])).unwrap_err(),
        BundleError::MissingKid
    );
    assert_eq!(
        parse_keys(json!([ec_jwk(None, "wit-svid")])).unwrap_err(),
        BundleError::MissingKid
    );
    assert_eq!(
        parse_keys(json!([ec_jwk(Some(""), "jwt-svid")])).unwrap_err(),
        BundleError::MissingKid
    );
}

#[test]
fn kids_are_unique_bundle_wide() {
    assert_eq!(
        parse_keys(json!([
            ec_jwk(Some("k"), "jwt-svid"),
            ec_jwk(Some("k"), "jwt-svid")
        ]))
        .unwrap_err(),
        BundleError::DuplicateKid("k".into())
    );
    assert_eq!(
        parse_keys(json!([
            ec_jwk(Some("k"), "wit-svid"),
            ec_jwk(Some("k"), "wit-svid")
        ]))
        .unwrap_err(),
        BundleError::DuplicateKid("k".into())
    );
    assert_eq!(
        parse_keys(json!([
            ec_jwk(Some("k"), "jwt-svid"),
            ec_jwk(Some("k"), "wit-svid")
        ]))
        .unwrap_err(),
        BundleError::DuplicateKid("k".into())
    );
}

#[test]
fn bad_key_material_is_an_error() {
    let mut private = ec_jwk(Some("p"), "jwt-svid");
    private["d"] = json!("AAAA");
    assert_eq!(
        parse_keys(json!([private])).unwrap_err(),
        BundleError::InvalidJwk(CryptoError::PrivateMembersInPublicJwk)
    );
    let mut off_curve = ec_jwk(Some("o"), "jwt-svid");
    off_curve["x"] = json!(aims_crypto::b64::encode_url([1u8; 32]));
    assert!(matches!(
        parse_keys(json!([off_curve])).unwrap_err(),
        BundleError::InvalidJwk(_)
    ));
    let mut wrong_type = ec_jwk(Some("w"), "jwt-svid");
    wrong_type["kid"] = json!(5);
    assert!(matches!(
        parse_keys(json!([wrong_type])).unwrap_err(),
        BundleError::MalformedJwk(_)
    ));
}

#[test]
fn x509_entries() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let der = aims_crypto::b64::encode_std(&ca.chain()[0]);
    let entry = |x5c: Value| json!({"kty": "EC", "use": "x509-svid", "x5c": x5c});
    // Absent or empty x5c: ignored (X509-SVID §6.2).
    let b = parse_keys(json!([{"kty": "EC", "use": "x509-svid"}, entry(json!([]))])).unwrap();
    assert!(b.x509_authorities().is_empty());
    // Not base64, not a certificate, not an array: errors.
    for bad in [json!(["%%%"]), json!(["AAAA"]), json!("abc"), json!([5])] {
        assert_eq!(
            parse_keys(json!([entry(bad.clone())])).unwrap_err(),
            BundleError::InvalidX5c,
            "{bad}"
        );
    }
    // A good one; duplicates collapse.
    let b = parse_keys(json!([entry(json!([der])), entry(json!([der]))])).unwrap();
    assert_eq!(b.x509_authorities(), ca.chain());
    assert_eq!(b.trust_anchors().len(), 1);
    // X509-SVID §6.1: a CA certificate. A leaf SVID listed as an authority would let its
    // key sign SVIDs for the whole trust domain: refused.
    let leaf = ca
        .issue_x509_svid(
            &id("spiffe://example.org/w"),
            std::time::Duration::from_secs(600),
            &[],
        )
        .unwrap();
    let leaf_der = aims_crypto::b64::encode_std(&leaf.chain()[0]);
    assert_eq!(
        parse_keys(json!([entry(json!([leaf_der]))])).unwrap_err(),
        BundleError::NotCa
    );
    // Private key members are refused on an x509-svid entry as on the others.
    let mut private = entry(json!([der]));
    private["d"] = json!("AAAA");
    assert_eq!(
        parse_keys(json!([private])).unwrap_err(),
        BundleError::PrivateKeyMaterial
    );
}

/// A certificate chain on a JWT-SVID key is not checked against the key, and clients
/// that check it refuse the whole set on a mismatch: it is dropped, not passed on.
#[test]
fn x5c_on_jwt_keys_is_not_kept() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let mut key = ec_jwk(Some("k1"), "jwt-svid");
    key["x5c"] = json!([aims_crypto::b64::encode_std(&ca.chain()[0])]);
    let b = parse_keys(json!([key])).unwrap();
    let out: Value = serde_json::from_str(&b.to_jwks_json().unwrap()).unwrap();
    assert_eq!(out["keys"].as_array().unwrap().len(), 1);
    assert!(out["keys"][0].get("x5c").is_none(), "{out}");
}

#[test]
fn json_errors() {
    for bad in [
        &b"not json"[..],
        b"[]",
        br#"{"keys": {}}"#,
        br#"{"keys": [], "spiffe_sequence": -1}"#,
    ] {
        assert!(matches!(
            SpiffeBundle::parse(td("example.org"), bad),
            Err(BundleError::Json(_))
        ));
    }
    assert_eq!(
        SpiffeBundle::parse(td("example.org"), b"{}").unwrap_err(),
        BundleError::MissingKeys
    );
    assert_eq!(
        SpiffeBundle::parse(td("example.org"), br#"{"keys": null}"#).unwrap_err(),
        BundleError::MissingKeys
    );
}

#[test]
fn json_round_trip() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let mut b = ca.bundle().unwrap();
    let jwt = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("jwt-1");
    let wit = SigningKey::generate(Algorithm::EdDSA)
        .unwrap()
        .with_kid("wit-1");
    b.add_jwt_authority(jwt.public_jwk().clone()).unwrap();
    b.add_wit_authority(wit.public_jwk().clone()).unwrap();
    b.set_sequence(Some(7));
    b.set_refresh_hint(Some(300));
    let text = b.to_json().unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["spiffe_sequence"], 7);
    assert_eq!(doc["spiffe_refresh_hint"], 300);
    let x = &doc["keys"][0];
    assert_eq!(x["use"], "x509-svid");
    assert_eq!(x["kty"], "EC");
    assert_eq!(x["crv"], "P-256");
    assert!(x.get("kid").is_none());
    assert_eq!(x["x5c"].as_array().unwrap().len(), 1);
    let again = SpiffeBundle::parse(td("example.org"), text.as_bytes()).unwrap();
    assert_eq!(again.x509_authorities(), b.x509_authorities());
    assert_eq!(kids(again.jwt_authorities()), ["jwt-1"]);
    assert_eq!(kids(again.wit_authorities()), ["wit-1"]);
    assert_eq!(
        (again.sequence(), again.refresh_hint()),
        (Some(7), Some(300))
    );
    // The JWT key verifies what the signer signed.
    let sig = jwt.sign(b"msg").unwrap();
    again
        .jwt_key("jwt-1")
        .unwrap()
        .verify(Algorithm::ES256, b"msg", &sig)
        .unwrap();
    // JWKS output holds only the JWT keys.
    let jwks_doc =
        SpiffeBundle::from_jwks(td("example.org"), b.to_jwks_json().unwrap().as_bytes()).unwrap();
    assert_eq!(kids(jwks_doc.jwt_authorities()), ["jwt-1"]);
    assert!(jwks_doc.x509_authorities().is_empty());
}

/// The x/y we derive from a go-spiffe authority certificate equal the x/y go-spiffe wrote.
#[test]
fn x509_authority_jwk_matches_go_spiffe() {
    let raw = read_vector("bundle/spiffebundle/testdata/spiffebundle_valid_1.json");
    let original: Value = serde_json::from_slice(&raw).unwrap();
    let b = SpiffeBundle::parse(td("example.org"), &raw).unwrap();
    let ours: Value = serde_json::from_str(&b.to_json().unwrap()).unwrap();
    for member in ["kty", "crv", "x", "y", "use", "x5c"] {
        assert_eq!(
            ours["keys"][0][member], original["keys"][0][member],
            "{member}"
        );
    }
}

#[test]
fn trust_store_lookups_use_keys_parsed_once() {
    let jwt = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("k1");
    let mut b = SpiffeBundle::new(td("example.org"));
    b.add_jwt_authority(jwt.public_jwk().clone()).unwrap();
    let store = TrustStore::from_bundles([b]);
    let k1 = store.jwt_key(&td("example.org"), "k1").unwrap();
    let k2 = store.jwt_key(&td("example.org"), "k1").unwrap();
    assert!(Arc::ptr_eq(&k1, &k2));
    assert_eq!(
        store.jwt_key(&td("example.org"), "nope").unwrap_err(),
        BundleError::UnknownKid {
            trust_domain: td("example.org"),
            kid: "nope".into()
        }
    );
    assert_eq!(
        store.jwt_key(&td("other.org"), "k1").unwrap_err(),
        BundleError::NoBundle(td("other.org"))
    );
    assert!(store.wit_key(&td("example.org"), "k1").is_err());
    assert_eq!(store.trust_domains(), vec![td("example.org")]);
    assert!(store.remove(&td("example.org")).is_some());
    assert!(store.get(&td("example.org")).is_none());
}

#[test]
fn trust_store_refuses_stale_sequence() {
    let store = TrustStore::new();
    let mut b = SpiffeBundle::new(td("example.org"));
    b.set_sequence(Some(5));
    store.update(b.clone()).unwrap();
    b.set_sequence(Some(4));
    assert_eq!(
        store.update(b.clone()).unwrap_err(),
        BundleError::StaleSequence {
            current: 5,
            offered: 4
        }
    );
    b.set_sequence(Some(6));
    store.update(b).unwrap();
    assert_eq!(store.get(&td("example.org")).unwrap().sequence(), Some(6));
}

#[test]
fn authority_removal() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let mut b = ca.bundle().unwrap();
    assert!(!b.add_x509_authority(ca.chain()[0].clone()).unwrap());
    assert!(b.remove_x509_authority(&ca.chain()[0]));
    assert!(b.trust_anchors().is_empty());
    assert_eq!(
        b.add_x509_authority(vec![1, 2, 3].into()).unwrap_err(),
        BundleError::InvalidCertificate
    );
}
