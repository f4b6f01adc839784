//! JWT-SVID, access token, client assertion and SET vectors.
//!
//! Sources are listed in `tests/vectors/oauth_svid/README.md`.
// Test helpers outside `#[test]` functions may unwrap too (as in aims-core's tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use aims_core::{ManualClock, SpiffeId};
use aims_crypto::{Algorithm, Jwk, Jwks, Signer, SigningKey, VerifyingKey, b64};
use aims_jose::{JoseError, Jws, StaticKeys, access_token, client_assertion, jwt_svid, set};
use serde_json::{Map, Value, json};

const COOKBOOK_4_1: &str = include_str!("../vectors/oauth_svid/4_1.rsa_v15_signature.json");
const COOKBOOK_4_3: &str = include_str!("../vectors/oauth_svid/4_3.ecdsa_signature.json");
const GO_SPIFFE_JWKS: &str = include_str!("../vectors/oauth_svid/go-spiffe-jwks_valid_2.json");
const RSA_TOKENS: &str = include_str!("../vectors/oauth_svid/rsa_profile_tokens.json");

const NOW: i64 = 1_700_000_000;

fn json_file(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter().fold(v, |v, k| &v[*k]).as_str().unwrap()
}

/// The cookbook's key with its private members dropped.
fn cookbook_public_key(v: &Value) -> (Jwk, VerifyingKey) {
    let full: Jwk = serde_json::from_value(v["input"]["key"].clone()).unwrap();
    // A verifier never accepts private material.
    assert!(VerifyingKey::from_jwk(&full).is_err());
    let public = full.to_public();
    let key = VerifyingKey::from_jwk(&public).unwrap();
    (public, key)
}

fn flip_last_signature_char(token: &str) -> String {
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let mut sig = sig.to_owned();
    let last = sig.pop().unwrap();
    // Changing the final character keeps the base64url length valid.
    sig.push(if last == 'A' { 'Q' } else { 'A' });
    format!("{rest}.{sig}")
}

#[test]
fn rfc7520_4_1_rs256_exact_signature_verifies() {
    let v = json_file(COOKBOOK_4_1);
    let (_, key) = cookbook_public_key(&v);
    let compact = str_at(&v, &["output", "compact"]);
    // The compact form is the published signing input and signature.
    assert_eq!(
        compact,
        format!(
            "{}.{}",
            str_at(&v, &["signing", "sig-input"]),
            str_at(&v, &["signing", "sig"])
        )
    );
    let jws = Jws::decode(compact).unwrap();
    assert_eq!(jws.header.alg, Algorithm::RS256);
    assert_eq!(
        jws.header.kid.as_deref(),
        Some("bilbo.baggins@hobbiton.example")
    );
    assert_eq!(jws.payload(), str_at(&v, &["input", "payload"]).as_bytes());
    jws.verify(&key).unwrap();
    // PKCS#1 v1.5 is deterministic: any other signature, even one bit off, fails.
    let forged = flip_last_signature_char(compact);
    assert_eq!(
        Jws::decode(&forged).unwrap().verify(&key).unwrap_err(),
        JoseError::BadSignature
    );
    // The same bytes under another RSA algorithm do not verify either.
    let sig = b64::decode_url(str_at(&v, &["signing", "sig"])).unwrap();
    assert!(
        key.verify(
            Algorithm::PS256,
            str_at(&v, &["signing", "sig-input"]).as_bytes(),
            &sig
        )
        .is_err()
    );
}

#[test]
fn rfc7520_4_3_es512_verifies() {
    let v = json_file(COOKBOOK_4_3);
    let (jwk, key) = cookbook_public_key(&v);
    assert_eq!(jwk.crv.as_deref(), Some("P-521"));
    let compact = str_at(&v, &["output", "compact"]);
    let jws = Jws::decode(compact).unwrap();
    assert_eq!(jws.header.alg, Algorithm::ES512);
    assert_eq!(jws.payload(), str_at(&v, &["input", "payload"]).as_bytes());
    jws.verify(&key).unwrap();
    let forged = flip_last_signature_char(compact);
    assert_eq!(
        Jws::decode(&forged).unwrap().verify(&key).unwrap_err(),
        JoseError::BadSignature
    );
}

const RFC8037_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";

#[test]
fn rfc8037_a4_eddsa_verifies_and_resigns_byte_exact() {
    let public: Jwk =
        serde_json::from_value(json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})).unwrap();
    let jws = Jws::decode(RFC8037_JWS).unwrap();
    assert_eq!(jws.header.alg, Algorithm::EdDSA);
    assert_eq!(jws.payload(), b"Example of Ed25519 signing");
    jws.verify(&VerifyingKey::from_jwk(&public).unwrap())
        .unwrap();

    // Rebuild the signing input by hand and sign it again with the private key.
    let signing_input = format!(
        "{}.{}",
        b64::encode_url(r#"{"alg":"EdDSA"}"#),
        b64::encode_url("Example of Ed25519 signing")
    );
    let (published_input, published_sig) = RFC8037_JWS.rsplit_once('.').unwrap();
    assert_eq!(signing_input, published_input);
    let private: Jwk = serde_json::from_value(
        json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_D}),
    )
    .unwrap();
    let signer = SigningKey::from_private_jwk(&private).unwrap();
    assert_eq!(
        b64::encode_url(signer.sign(signing_input.as_bytes()).unwrap()),
        published_sig
    );
}

/// The RSA-signed tokens of `rsa_profile_tokens.json` and a key store holding the
/// cookbook RSA key under each profile's scope.
fn rsa_fixture() -> (Value, StaticKeys, Arc<ManualClock>) {
    let tokens = json_file(RSA_TOKENS);
    let (jwk, key) = cookbook_public_key(&json_file(COOKBOOK_4_1));
    let mut keys = StaticKeys::new();
    for scope in [
        "https://as.example",
        "example.org",
        "agent-7",
        "https://ssf.transmitter.example",
    ] {
        keys.add_key(scope, jwk.kid.clone(), key.clone());
    }
    let clock = Arc::new(ManualClock::new(tokens["now"].as_i64().unwrap()));
    (tokens, keys, clock)
}

#[test]
fn every_profile_validates_rsa_signed_tokens() {
    let (t, keys, clock) = rsa_fixture();
    let at =
        access_token::Validator::new(clock.clone(), "https://as.example", "https://rs.example");
    for (name, alg) in [
        ("access_token_rs256", Algorithm::RS256),
        ("access_token_ps256", Algorithm::PS256),
    ] {
        let ok = at.validate(str_at(&t, &[name]), &keys).unwrap();
        assert_eq!(ok.alg, alg);
        assert!(ok.claims.scope.contains("files:read"));
    }
    let svid = jwt_svid::Validator::new(clock.clone(), "https://as.example")
        .require_single_audience(true)
        .validate(str_at(&t, &["jwt_svid_rs256"]), &keys)
        .unwrap();
    assert_eq!(
        svid.spiffe_id().as_str(),
        "spiffe://example.org/agent/billing"
    );
    let ca = client_assertion::Validator::new(clock.clone(), "https://as.example")
        .validate_for_client(str_at(&t, &["client_assertion_rs256"]), "agent-7", &keys)
        .unwrap();
    assert_eq!(ca.jti(), "rsa-ca-1");
    let ev = set::Validator::new(clock.clone(), "https://ssf.transmitter.example")
        .audience("https://receiver.example")
        .validate(str_at(&t, &["set_rs256"]), &keys)
        .unwrap();
    assert_eq!(
        ev.claims.event().unwrap().0,
        "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
    );
    // A signature bit off fails every one of them.
    let forged = flip_last_signature_char(str_at(&t, &["access_token_rs256"]));
    assert_eq!(
        at.validate(&forged, &keys).unwrap_err(),
        JoseError::BadSignature
    );
}

#[test]
fn tokens_of_one_profile_are_refused_by_the_others() {
    let (t, keys, clock) = rsa_fixture();
    let at =
        access_token::Validator::new(clock.clone(), "https://as.example", "https://as.example");
    let svid = jwt_svid::Validator::new(clock.clone(), "https://as.example");
    let ca = client_assertion::Validator::new(clock.clone(), "https://as.example");
    let ev = set::Validator::new(clock.clone(), "https://as.example");
    let svid_token = str_at(&t, &["jwt_svid_rs256"]);
    let at_token = str_at(&t, &["access_token_rs256"]);
    let ca_token = str_at(&t, &["client_assertion_rs256"]);
    let set_token = str_at(&t, &["set_rs256"]);
    let wrong_type = |r: Result<(), JoseError>| matches!(r, Err(JoseError::WrongType { .. }));

    assert!(wrong_type(at.validate(svid_token, &keys).map(drop)));
    assert!(wrong_type(ev.validate(svid_token, &keys).map(drop)));
    // `typ: JWT` is acceptable for a client assertion, but a JWT-SVID has no `iss`.
    assert_eq!(
        ca.validate(svid_token, &keys).unwrap_err(),
        JoseError::MissingClaim("iss")
    );

    assert!(wrong_type(svid.validate(at_token, &keys).map(drop)));
    assert!(wrong_type(ca.validate(at_token, &keys).map(drop)));
    assert!(wrong_type(ev.validate(at_token, &keys).map(drop)));

    assert!(wrong_type(svid.validate(ca_token, &keys).map(drop)));
    assert!(wrong_type(at.validate(ca_token, &keys).map(drop)));
    assert!(wrong_type(ev.validate(ca_token, &keys).map(drop)));

    assert!(wrong_type(svid.validate(set_token, &keys).map(drop)));
    assert!(wrong_type(at.validate(set_token, &keys).map(drop)));
    assert!(wrong_type(ca.validate(set_token, &keys).map(drop)));
}

#[test]
fn jwt_svid_validated_with_a_go_spiffe_jwks() {
    // A go-spiffe JWT bundle (kid, kty, crv, x, y; no `use`, no `alg`) plus one key of
    // ours written the same way.
    let signer = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("aims-2024-01");
    let ours = signer.public_jwk();
    let mut bundle = json_file(GO_SPIFFE_JWKS);
    bundle["keys"].as_array_mut().unwrap().push(json!({
        "kty": "EC", "kid": ours.kid, "crv": "P-256", "x": ours.x, "y": ours.y,
    }));
    let jwks: Jwks = serde_json::from_value(bundle).unwrap();
    let mut keys = StaticKeys::new();
    keys.add_jwks("example.org", &jwks);
    for kid in [
        "C6vs25welZOx6WksNYfbMfiw9l96pMnD",
        "gHTCunJbefYtnZnTctd84xeRWyMrEsWD",
        "aims-2024-01",
    ] {
        assert!(
            aims_jose::KeyResolver::resolve(&keys, "example.org", Some(kid), Algorithm::ES256)
                .is_ok(),
            "{kid}"
        );
    }

    let clock = Arc::new(ManualClock::new(NOW));
    let v = jwt_svid::Validator::new(clock, "https://as.example").require_single_audience(true);
    let sub = SpiffeId::parse("spiffe://example.org/agent/billing").unwrap();
    let claims = jwt_svid::JwtSvidClaims::new(sub.clone(), "https://as.example", NOW, 300);
    let token = jwt_svid::create(&claims, &signer).unwrap();
    let ok = v.validate(&token, &keys).unwrap();
    assert_eq!(ok.spiffe_id(), &sub);
    assert_eq!(ok.kid, "aims-2024-01");

    // Our key under one of go-spiffe's kids: that key did not sign it.
    let impostor = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("C6vs25welZOx6WksNYfbMfiw9l96pMnD");
    let forged = jwt_svid::create(&claims, &impostor).unwrap();
    assert_eq!(
        v.validate(&forged, &keys).unwrap_err(),
        JoseError::BadSignature
    );
    // A kid absent from the bundle.
    let stranger = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("unknown");
    let token = jwt_svid::create(&claims, &stranger).unwrap();
    assert_eq!(
        v.validate(&token, &keys).unwrap_err(),
        JoseError::UnknownKey
    );
    // The bundle is for example.org only.
    let elsewhere = jwt_svid::JwtSvidClaims::new(
        SpiffeId::parse("spiffe://other.example/agent").unwrap(),
        "https://as.example",
        NOW,
        300,
    );
    let token = jwt_svid::create(&elsewhere, &signer).unwrap();
    assert_eq!(
        v.validate(&token, &keys).unwrap_err(),
        JoseError::UnknownKey
    );
}

#[test]
fn round_trips_through_the_public_api() {
    let clock = Arc::new(ManualClock::new(NOW));
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
        let signer = SigningKey::generate(alg).unwrap();
        let mut keys = StaticKeys::new();
        for scope in ["https://as.example", "agent-7", "https://ssf.example"] {
            keys.add_jwks(
                scope,
                &Jwks {
                    keys: vec![signer.public_jwk().clone()],
                },
            );
        }

        let mut at = access_token::AccessTokenClaims::new(
            "https://as.example",
            "user-1",
            "agent-7",
            "https://rs.example",
            NOW,
            300,
        )
        .unwrap();
        at.scope = access_token::Scope::parse("files:read").unwrap();
        at.act = vec![access_token::Actor::new("agent-7")];
        let token = access_token::issue(&at, &signer).unwrap();
        let ok =
            access_token::Validator::new(clock.clone(), "https://as.example", "https://rs.example")
                .require_kid(true)
                .validate(&token, &keys)
                .unwrap();
        assert_eq!(ok.claims, at, "{alg}");

        let ca =
            client_assertion::ClientAssertionClaims::new("agent-7", "https://as.example", NOW, 60)
                .unwrap();
        let token = client_assertion::create(&ca, &signer).unwrap();
        let ok = client_assertion::Validator::new(clock.clone(), "https://as.example")
            .require_explicit_typ(true)
            .validate(&token, &keys)
            .unwrap();
        assert_eq!(ok.claims, ca, "{alg}");

        let mut event = Map::new();
        event.insert("event_timestamp".into(), json!(NOW));
        let ev = set::SetClaims::new(
            "https://ssf.example",
            NOW,
            "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
            event,
        )
        .unwrap();
        let token = set::create(&ev, &signer).unwrap();
        let ok = set::Validator::new(clock.clone(), "https://ssf.example")
            .validate(&token, &keys)
            .unwrap();
        assert_eq!(ok.claims, ev, "{alg}");

        // JWT-SVIDs exclude EdDSA.
        let svid = jwt_svid::JwtSvidClaims::new(
            SpiffeId::parse("spiffe://example.org/a").unwrap(),
            "aud",
            NOW,
            60,
        );
        match jwt_svid::create(&svid, &signer) {
            Ok(token) => {
                let mut keys = StaticKeys::new();
                keys.add_jwks(
                    "example.org",
                    &Jwks {
                        keys: vec![signer.public_jwk().clone()],
                    },
                );
                let ok = jwt_svid::Validator::new(clock.clone(), "aud")
                    .validate(&token, &keys)
                    .unwrap();
                assert_eq!(ok.claims, svid);
            }
            Err(e) => {
                assert_eq!(alg, Algorithm::EdDSA);
                assert_eq!(
                    e,
                    JoseError::AlgorithmNotAllowed {
                        alg,
                        profile: jwt_svid::PROFILE
                    }
                );
            }
        }
    }
}

/// RFC 7517 §4.4 / RFC 8725 §3.1: a JWK that names its `alg` verifies that algorithm
/// only; an `alg` that does not suit the key type, or names no signature algorithm,
/// makes the key unusable.
#[test]
fn a_jwk_alg_restricts_the_key_to_that_algorithm() {
    let v = json_file(COOKBOOK_4_1);
    let (mut jwk, _) = cookbook_public_key(&v);
    let compact = str_at(&v, &["output", "compact"]);
    let jws = Jws::decode(compact).unwrap();
    assert_eq!(jws.header.alg, Algorithm::RS256);

    jwk.alg = Some("RS256".into());
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    jws.verify(&key).unwrap();
    assert!(key.supports(Algorithm::RS256));
    assert!(!key.supports(Algorithm::PS256));

    jwk.alg = Some("PS256".into());
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    assert!(!key.supports(Algorithm::RS256));
    assert!(matches!(
        jws.verify(&key).unwrap_err(),
        JoseError::Key(aims_crypto::CryptoError::KeyAlgorithmMismatch { .. })
    ));

    for bad in ["ES256", "RSA-OAEP", "none", "HS256"] {
        jwk.alg = Some(bad.into());
        assert!(VerifyingKey::from_jwk(&jwk).is_err(), "{bad}");
    }

    let v = json_file(COOKBOOK_4_3);
    let (mut ec, _) = cookbook_public_key(&v);
    ec.alg = Some("ES256".into());
    assert!(
        VerifyingKey::from_jwk(&ec).is_err(),
        "P-521 key marked ES256"
    );
    ec.alg = Some("ES512".into());
    assert!(VerifyingKey::from_jwk(&ec).is_ok());
}
