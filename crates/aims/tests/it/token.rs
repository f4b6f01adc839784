//! `aims token inspect` and `aims token verify`.

use std::sync::Arc;

use aims_core::{SpiffeId, WorkloadId};
use aims_crypto::{Algorithm, Jwks, Signer, SigningKey};
use aims_jose::jwt_svid::{self, JwtSvidClaims};
use aims_jose::wit::{self, WitClaims};

use crate::support::{aims, aims_ok};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn setup() -> (tempfile::TempDir, String, String) {
    setup_for("spiffe://example.org/agent/a")
}

/// A JWT-SVID for `sub` (audience `spiffe://example.org/api`) and a JWKS file with the
/// key that signed it.
fn setup_for(sub: &str) -> (tempfile::TempDir, String, String) {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let claims = JwtSvidClaims::new(
        SpiffeId::parse(sub).unwrap(),
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
        "--trust-domain",
        "example.org",
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
        "--trust-domain",
        "example.org",
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
        "--trust-domain",
        "example.org",
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
        "--trust-domain",
        "example.org",
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

/// The keys of a JWKS file count for the trust domain the operator names, never for the
/// one the (unverified) token claims: a token of another trust domain signed by a key in
/// the file is rejected, and leaving out `--trust-domain` is a usage error.
#[test]
fn verify_takes_the_trust_domain_from_the_operator_not_the_token() {
    let (_tmp, token, jwks) = setup_for("spiffe://intruder.example/agent/x");
    let base = [
        "token",
        "verify",
        &token,
        "--jwks",
        &jwks,
        "--profile",
        "jwt-svid",
        "--audience",
        "spiffe://example.org/api",
    ];
    let missing = aims(&base);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("--trust-domain is required"), "{err}");

    let mut scoped = base.to_vec();
    scoped.extend(["--trust-domain", "example.org"]);
    let other = aims(&scoped);
    assert_eq!(other.status.code(), Some(1));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("trust domain not accepted"), "{err}");

    // Valid twin: the same file verifies a token of the named trust domain.
    let mut own = base.to_vec();
    own.extend(["--trust-domain", "intruder.example"]);
    assert!(aims_ok(&own).contains("spiffe://intruder.example/agent/x"));

    // The WIT profiles need it as well.
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let holder = SigningKey::generate(Algorithm::ES256).unwrap();
    let claims = WitClaims::new(
        WorkloadId::parse("spiffe://intruder.example/agent/x").unwrap(),
        holder.public_jwk(),
        now(),
        300,
    )
    .unwrap();
    let wit_token = wit::create(&claims, &key).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let wit_jwks = tmp.path().join("wit.json");
    let set = Jwks {
        keys: vec![key.public_jwk().clone()],
    };
    std::fs::write(&wit_jwks, serde_json::to_vec(&set).unwrap()).unwrap();
    let wit_jwks = wit_jwks.to_str().unwrap();
    for profile in ["wit", "wit-svid"] {
        let args = [
            "token",
            "verify",
            &wit_token,
            "--jwks",
            wit_jwks,
            "--profile",
            profile,
        ];
        let missing = aims(&args);
        assert_eq!(missing.status.code(), Some(2), "{profile}");
        let err = String::from_utf8_lossy(&missing.stderr);
        assert!(
            err.contains("--trust-domain is required"),
            "{profile}: {err}"
        );
        let mut scoped = args.to_vec();
        scoped.extend(["--trust-domain", "example.org"]);
        assert_eq!(aims(&scoped).status.code(), Some(1), "{profile}");
    }
    let wit_own = [
        "token",
        "verify",
        &wit_token,
        "--jwks",
        wit_jwks,
        "--profile",
        "wit",
        "--trust-domain",
        "intruder.example",
    ];
    assert!(aims_ok(&wit_own).contains("spiffe://intruder.example/agent/x"));
}
