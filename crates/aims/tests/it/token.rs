//! `aims token inspect` and `aims token verify`.

use std::sync::Arc;

use aims_core::SpiffeId;
use aims_crypto::{Algorithm, Jwks, Signer, SigningKey};
use aims_jose::jwt_svid::{self, JwtSvidClaims};

use crate::support::{aims, aims_ok};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn setup() -> (tempfile::TempDir, String, String) {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let claims = JwtSvidClaims::new(
        SpiffeId::parse("spiffe://example.org/agent/a").unwrap(),
        "spiffe://example.org/api",
        now(),
        300,
    );
    let token = jwt_svid::create(&claims, &key).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let jwks = tmp.path().join("jwks.json");
    let set = Jwks {
        keys: vec![key.public_jwk().clone()],
    };
    std::fs::write(&jwks, serde_json::to_vec(&set).unwrap()).unwrap();
    let jwks = jwks.to_str().unwrap().to_owned();
    (tmp, token, jwks)
}

#[test]
fn inspect_trusts_nothing_but_decodes() {
    let (_tmp, token, _) = setup();
    let out = aims_ok(&["token", "inspect", &token]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["claims"]["sub"], "spiffe://example.org/agent/a");
    assert_eq!(v["header"]["alg"], "ES256");
    assert_eq!(v["verified"], false);
    let bad = aims(&["token", "inspect", "not-a-token"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn verify_accepts_good_and_names_the_rejection_reason() {
    let (_tmp, token, jwks) = setup();
    let out = aims_ok(&[
        "token",
        "verify",
        &token,
        "--jwks",
        &jwks,
        "--profile",
        "jwt-svid",
        "--audience",
        "spiffe://example.org/api",
    ]);
    assert!(out.contains("spiffe://example.org/agent/a"));

    let wrong_aud = aims(&[
        "token",
        "verify",
        &token,
        "--jwks",
        &jwks,
        "--profile",
        "jwt-svid",
        "--audience",
        "spiffe://example.org/other",
    ]);
    assert_eq!(wrong_aud.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong_aud.stderr).contains("audience not accepted"));

    let later = (now() + 3600).to_string();
    let expired = aims(&[
        "token",
        "verify",
        &token,
        "--jwks",
        &jwks,
        "--profile",
        "jwt-svid",
        "--audience",
        "spiffe://example.org/api",
        "--now",
        &later,
    ]);
    assert_eq!(expired.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&expired.stderr).contains("expired"));

    // Same token presented as another profile: rejected for its type.
    let as_at = aims(&[
        "token",
        "verify",
        &token,
        "--jwks",
        &jwks,
        "--profile",
        "at",
        "--issuer",
        "https://as",
        "--audience",
        "x",
    ]);
    assert_eq!(as_at.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&as_at.stderr).contains("wrong token type"));

    // Missing required flag is a usage error (exit 2), with the flag named.
    let usage = aims(&[
        "token",
        "verify",
        &token,
        "--jwks",
        &jwks,
        "--profile",
        "jwt-svid",
    ]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--audience"));
}

#[test]
fn verify_dpop_proof() {
    let key: Arc<dyn Signer> = Arc::new(SigningKey::generate(Algorithm::ES256).unwrap());
    let proof = aims_jose::dpop::create_proof(
        key.as_ref(),
        "POST",
        "https://as.example/token",
        None,
        None,
        now(),
    )
    .unwrap();
    aims_ok(&[
        "token",
        "verify",
        &proof,
        "--profile",
        "dpop",
        "--htm",
        "POST",
        "--htu",
        "https://as.example/token",
    ]);
    let wrong = aims(&[
        "token",
        "verify",
        &proof,
        "--profile",
        "dpop",
        "--htm",
        "GET",
        "--htu",
        "https://as.example/token",
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("htm"));
}
