//! WIT, WPT and DPoP: spec vectors, and one test per validation rule. Each negative test
//! builds a token that is valid except for the one thing under test, checks that its
//! valid twin passes, and asserts the precise [`JoseError`].
//!
//! Sources are listed in `tests/vectors/wimse_dpop/README.md`.
// Test helpers outside `#[test]` functions may unwrap too (as in aims-core's tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use aims_core::{ManualClock, WorkloadId};
use aims_crypto::{
    Algorithm, CryptoError, Jwk, Signer, SigningKey, VerifyingKey, b64, sha256_b64url,
};
use aims_jose::dpop::{self, DpopRequest};
use aims_jose::replay::{MemoryReplayGuard, ReplayGuard};
use aims_jose::wit::{self, ValidatedWit, WitClaims, WitProfile};
use aims_jose::wpt::{self, WptClaims, WptRequest};
use aims_jose::{Audience, JoseError, StaticKeys};
use serde_json::{Map, Value, json};

type Obj = Map<String, Value>;

const NOW: i64 = 1_800_000_000;
const JTI: &str = "AAECAwQFBgcICQoLDA0ODw"; // 22 characters

fn obj(v: Value) -> Obj {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("not an object"),
    }
}

/// Signs `header` and `payload` as given (no library header logic).
fn raw_sign(header: &Obj, payload: &[u8], key: &dyn Signer) -> String {
    let mut t = format!(
        "{}.{}",
        b64::encode_url(serde_json::to_vec(header).unwrap()),
        b64::encode_url(payload)
    );
    let sig = key.sign(t.as_bytes()).unwrap();
    t.push('.');
    t.push_str(&b64::encode_url(sig));
    t
}

fn sign_obj(header: &Obj, claims: &Obj, key: &dyn Signer) -> String {
    raw_sign(header, &serde_json::to_vec(claims).unwrap(), key)
}

fn public_jwk_without_kid(k: &SigningKey) -> Value {
    let mut jwk = k.public_jwk().clone();
    jwk.kid = None;
    serde_json::to_value(jwk).unwrap()
}

fn guard() -> Arc<MemoryReplayGuard> {
    Arc::new(MemoryReplayGuard::new(1000))
}

fn vector(name: &str) -> &'static str {
    match name {
        "wit" => include_str!("../vectors/wimse_dpop/wimse-wit.jwt"),
        "wpt-request" => include_str!("../vectors/wimse_dpop/wimse-wpt-request.http"),
        "wpt-oth-request" => include_str!("../vectors/wimse_dpop/wimse-wpt-oth-request.http"),
        "keys" => include_str!("../vectors/wimse_dpop/wimse-keys.json"),
        "dpop-token" => include_str!("../vectors/wimse_dpop/rfc9449-token-request-proof.jwt"),
        "dpop-refresh" => include_str!("../vectors/wimse_dpop/rfc9449-refresh-proof.jwt"),
        "dpop-resource" => include_str!("../vectors/wimse_dpop/rfc9449-resource-proof.jwt"),
        _ => unreachable!("{name}"),
    }
    .trim()
}

/// The value of header `name` in an example HTTP request.
fn header_value(request: &str, name: &str) -> &'static str {
    let request: &'static str = vector(request);
    request
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Replay guard
// ---------------------------------------------------------------------------------------

#[test]
fn replay_guard_rejects_second_use_and_fails_closed_when_full() {
    let g = MemoryReplayGuard::new(1);
    g.check_and_record("k", NOW + 10, NOW).unwrap();
    assert_eq!(
        g.check_and_record("k", NOW + 10, NOW + 1),
        Err(JoseError::Replayed)
    );
    assert_eq!(
        g.check_and_record("other", NOW + 10, NOW + 1),
        Err(JoseError::ReplayCacheFull)
    );
    assert_eq!(
        g.check_and_record("other", NOW + 20, NOW + 10),
        Err(JoseError::ReplayCacheFull)
    );
    g.check_and_record("other", NOW + 20, NOW + 11).unwrap();
}

// ---------------------------------------------------------------------------------------
// WIT
// ---------------------------------------------------------------------------------------

const TD: &str = "example.org";
const ISSUER_KID: &str = "issuer-1";

struct WitFx {
    profile: WitProfile,
    issuer: SigningKey,
    workload: SigningKey,
    keys: StaticKeys,
    clock: ManualClock,
    header: Obj,
    claims: Obj,
}

impl WitFx {
    fn new(profile: WitProfile) -> Self {
        let issuer = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid(ISSUER_KID);
        let workload_alg = match profile {
            WitProfile::Wimse => Algorithm::EdDSA,
            WitProfile::WitSvid => Algorithm::ES256,
        };
        let workload = SigningKey::generate(workload_alg).unwrap();
        let mut keys = StaticKeys::new();
        keys.add_key(TD, Some(ISSUER_KID.into()), issuer.verifying_key().clone());
        let sub = match profile {
            WitProfile::Wimse => "wimse://example.org/svc",
            WitProfile::WitSvid => "spiffe://example.org/svc",
        };
        let header = obj(json!({"alg": "ES256", "kid": ISSUER_KID, "typ": "wit+jwt"}));
        let claims = obj(json!({
            "sub": sub,
            "exp": NOW + 3600,
            "iat": NOW,
            "jti": JTI,
            "iss": "https://issuer.example.org",
            "cnf": {"jwk": public_jwk_without_kid(&workload)},
        }));
        Self {
            profile,
            issuer,
            workload,
            keys,
            clock: ManualClock::new(NOW),
            header,
            claims,
        }
    }

    fn token_by(&self, key: &dyn Signer, m: impl FnOnce(&mut Obj, &mut Obj)) -> String {
        let (mut h, mut c) = (self.header.clone(), self.claims.clone());
        m(&mut h, &mut c);
        sign_obj(&h, &c, key)
    }

    fn token(&self, m: impl FnOnce(&mut Obj, &mut Obj)) -> String {
        self.token_by(&self.issuer, m)
    }

    fn validator(&self) -> wit::Validator {
        wit::Validator::new(self.profile, Arc::new(self.clock.clone()))
    }

    fn check(&self, m: impl FnOnce(&mut Obj, &mut Obj)) -> Result<ValidatedWit, JoseError> {
        self.validator().validate(&self.token(m), &self.keys)
    }

    /// The valid twin passes; the mutated token fails with `want`.
    fn rejects(&self, m: impl FnOnce(&mut Obj, &mut Obj), want: JoseError) {
        self.check(|_, _| {}).expect("valid twin passes");
        assert_eq!(self.check(m).unwrap_err(), want);
    }

    fn cnf_jwk(c: &mut Obj) -> &mut Obj {
        c.get_mut("cnf")
            .and_then(|v| v.get_mut("jwk"))
            .and_then(Value::as_object_mut)
            .unwrap()
    }
}

#[test]
fn wit_valid_twin_passes_and_exposes_binding() {
    for profile in [WitProfile::Wimse, WitProfile::WitSvid] {
        let f = WitFx::new(profile);
        let token = f.token(|_, _| {});
        let v = f.validator().validate(&token, &f.keys).unwrap();
        assert_eq!(v.profile(), profile);
        assert_eq!(v.subject().trust_domain().as_str(), TD);
        assert_eq!(v.spiffe_id().is_some(), profile == WitProfile::WitSvid);
        assert_eq!(v.exp(), NOW + 3600);
        assert_eq!(v.iat(), Some(NOW));
        assert_eq!(v.jti(), Some(JTI));
        assert_eq!(v.issuer(), Some("https://issuer.example.org"));
        assert_eq!(v.kid(), Some(ISSUER_KID));
        assert_eq!(v.confirmation_alg(), f.workload.algorithm());
        assert_eq!(
            v.confirmation_jkt(),
            f.workload.public_jwk().thumbprint().unwrap()
        );
        assert_eq!(v.confirmation_jwk().x, f.workload.public_jwk().x);
        assert_eq!(v.wit_hash(), sha256_b64url(&token));
        let sig = f.workload.sign(b"m").unwrap();
        v.confirmation_key()
            .verify(v.confirmation_alg(), b"m", &sig)
            .unwrap();
    }
}

#[test]
fn wit_shared_jws_rules() {
    let f = WitFx::new(WitProfile::Wimse);
    f.rejects(
        |h, _| _ = h.insert("alg".into(), "none".into()),
        JoseError::AlgNone,
    );
    f.rejects(
        |h, _| _ = h.insert("alg".into(), "HS256".into()),
        JoseError::SymmetricAlgorithm("HS256".into()),
    );
    f.rejects(
        |h, _| _ = h.insert("jku".into(), "https://x".into()),
        JoseError::ForbiddenHeader("jku".into()),
    );
    f.rejects(
        |h, _| _ = h.insert("x5u".into(), "https://x".into()),
        JoseError::ForbiddenHeader("x5u".into()),
    );
    f.rejects(
        |h, _| _ = h.insert("crit".into(), json!(["exp"])),
        JoseError::UnknownCrit,
    );
    let token = f.token(|_, _| {});
    assert_eq!(
        f.validator()
            .max_token_bytes(token.len() - 1)
            .validate(&token, &f.keys)
            .unwrap_err(),
        JoseError::TooLarge(token.len() - 1)
    );
}

#[test]
fn wit_typ_missing() {
    let f = WitFx::new(WitProfile::Wimse);
    f.rejects(
        |h, _| _ = h.remove("typ"),
        JoseError::WrongType {
            expected: "wit+jwt",
            found: None,
        },
    );
}

#[test]
fn wit_typ_wrong() {
    let f = WitFx::new(WitProfile::Wimse);
    f.rejects(
        |h, _| _ = h.insert("typ".into(), "JWT".into()),
        JoseError::WrongType {
            expected: "wit+jwt",
            found: Some("JWT".into()),
        },
    );
}

#[test]
fn wit_wimse_typ_uses_rfc7515_comparison() {
    let f = WitFx::new(WitProfile::Wimse);
    for typ in ["application/wit+jwt", "WIT+JWT", "Application/Wit+Jwt"] {
        f.check(|h, _| _ = h.insert("typ".into(), typ.into()))
            .unwrap();
    }
}

#[test]
fn wit_svid_typ_is_exact() {
    let f = WitFx::new(WitProfile::WitSvid);
    for typ in ["application/wit+jwt", "WIT+JWT"] {
        f.rejects(
            |h, _| _ = h.insert("typ".into(), typ.into()),
            JoseError::WrongType {
                expected: "wit+jwt",
                found: Some(typ.into()),
            },
        );
    }
}

#[test]
fn wit_svid_header_alg_eddsa_rejected() {
    let f = WitFx::new(WitProfile::WitSvid);
    let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
    f.check(|_, _| {}).unwrap();
    let token = f.token_by(&ed, |h, _| _ = h.insert("alg".into(), "EdDSA".into()));
    assert_eq!(
        f.validator().validate(&token, &f.keys).unwrap_err(),
        JoseError::AlgorithmNotAllowed {
            alg: Algorithm::EdDSA,
            profile: "WIT-SVID"
        }
    );
    // A configured list never loosens the profile.
    assert_eq!(
        f.validator()
            .algorithms([Algorithm::EdDSA, Algorithm::ES256])
            .validate(&token, &f.keys)
            .unwrap_err(),
        JoseError::AlgorithmNotAllowed {
            alg: Algorithm::EdDSA,
            profile: "WIT-SVID"
        }
    );
}

#[test]
fn wit_wimse_header_alg_allow_list() {
    let f = WitFx::new(WitProfile::Wimse);
    let token = f.token(|_, _| {});
    f.validator().validate(&token, &f.keys).unwrap();
    assert_eq!(
        f.validator()
            .algorithms([Algorithm::ES384])
            .validate(&token, &f.keys)
            .unwrap_err(),
        JoseError::AlgorithmNotAllowed {
            alg: Algorithm::ES256,
            profile: "WIT"
        }
    );
}

#[test]
fn wit_svid_kid_required() {
    let f = WitFx::new(WitProfile::WitSvid);
    f.rejects(|h, _| _ = h.remove("kid"), JoseError::MissingKid);
    f.rejects(
        |h, _| _ = h.insert("kid".into(), "".into()),
        JoseError::MissingKid,
    );
}

#[test]
fn wit_wimse_kid_optional() {
    // One anchor key in the trust domain: no ambiguity, so no `kid` is needed.
    let f = WitFx::new(WitProfile::Wimse);
    f.check(|h, _| _ = h.remove("kid")).unwrap();
}

#[test]
fn wit_sub_missing() {
    for profile in [WitProfile::Wimse, WitProfile::WitSvid] {
        WitFx::new(profile).rejects(|_, c| _ = c.remove("sub"), JoseError::MissingClaim("sub"));
    }
}

#[test]
fn wit_sub_not_a_workload_identifier() {
    let f = WitFx::new(WitProfile::Wimse);
    for bad in [
        "https://example.org/svc",
        "wimse://Example.org/svc",
        "example.org/svc",
    ] {
        f.rejects(
            |_, c| _ = c.insert("sub".into(), bad.into()),
            JoseError::InvalidClaim {
                claim: "sub",
                reason: "not a valid workload identifier",
            },
        );
    }
    f.rejects(
        |_, c| _ = c.insert("sub".into(), json!(5)),
        JoseError::InvalidClaim {
            claim: "sub",
            reason: "must be a string",
        },
    );
    // Both schemes are workload identifiers.
    f.check(|_, c| _ = c.insert("sub".into(), "spiffe://example.org/svc".into()))
        .unwrap();
}

#[test]
fn wit_svid_sub_must_be_spiffe_id() {
    let f = WitFx::new(WitProfile::WitSvid);
    f.rejects(
        |_, c| _ = c.insert("sub".into(), "wimse://example.org/svc".into()),
        JoseError::InvalidClaim {
            claim: "sub",
            reason: "not a valid SPIFFE ID",
        },
    );
}

#[test]
fn wit_svid_sub_root_rejected() {
    let f = WitFx::new(WitProfile::WitSvid);
    f.rejects(
        |_, c| _ = c.insert("sub".into(), "spiffe://example.org".into()),
        JoseError::SubjectRejected("a trust domain's root ID names no workload"),
    );
}

#[test]
fn wit_trust_domain_allow_list() {
    let f = WitFx::new(WitProfile::Wimse);
    let token = f.token(|_, _| {});
    f.validator()
        .trust_domain(TD)
        .validate(&token, &f.keys)
        .unwrap();
    assert_eq!(
        f.validator()
            .trust_domain("other.org")
            .validate(&token, &f.keys)
            .unwrap_err(),
        JoseError::SubjectRejected("trust domain not accepted")
    );
}

#[test]
fn wit_key_scoped_to_sub_trust_domain_never_iss() {
    let f = WitFx::new(WitProfile::Wimse);
    // Signed by example.org's key, but claims a subject in other.org: other.org's anchors
    // are searched (and it has none), whatever `iss` says.
    f.rejects(
        |_, c| {
            c.insert("sub".into(), "wimse://other.org/svc".into());
            c.insert("iss".into(), TD.into());
        },
        JoseError::UnknownKey,
    );
}

#[test]
fn wit_unknown_kid() {
    let f = WitFx::new(WitProfile::Wimse);
    f.rejects(
        |h, _| _ = h.insert("kid".into(), "nope".into()),
        JoseError::UnknownKey,
    );
}

#[test]
fn wit_bad_signature() {
    let f = WitFx::new(WitProfile::Wimse);
    let impostor = SigningKey::generate(Algorithm::ES256).unwrap();
    f.check(|_, _| {}).unwrap();
    let token = f.token_by(&impostor, |_, _| {});
    assert_eq!(
        f.validator().validate(&token, &f.keys).unwrap_err(),
        JoseError::BadSignature
    );
}

#[test]
fn wit_duplicate_claims_rejected() {
    let f = WitFx::new(WitProfile::Wimse);
    f.check(|_, _| {}).unwrap();
    let mut payload = serde_json::to_string(&f.claims).unwrap();
    payload.insert_str(1, r#""sub":"wimse://example.org/evil","#);
    let token = raw_sign(&f.header, payload.as_bytes(), &f.issuer);
    assert_eq!(
        f.validator().validate(&token, &f.keys).unwrap_err(),
        JoseError::Malformed("duplicate claim name")
    );
}

#[test]
fn wit_exp_missing() {
    let f = WitFx::new(WitProfile::Wimse);
    f.rejects(|_, c| _ = c.remove("exp"), JoseError::MissingClaim("exp"));
    f.rejects(
        |_, c| _ = c.insert("exp".into(), "soon".into()),
        JoseError::InvalidClaim {
            claim: "exp",
            reason: "must be a NumericDate",
        },
    );
}

#[test]
fn wit_expired() {
    let f = WitFx::new(WitProfile::Wimse);
    // Default leeway 30 s: valid while now < exp + 30.
    f.check(|_, c| _ = c.insert("exp".into(), json!(NOW - 29)))
        .unwrap();
    f.rejects(
        |_, c| _ = c.insert("exp".into(), json!(NOW - 30)),
        JoseError::Expired {
            exp: NOW - 30,
            now: NOW,
        },
    );
}

#[test]
fn wit_nbf_in_future() {
    let f = WitFx::new(WitProfile::WitSvid);
    f.check(|_, c| _ = c.insert("nbf".into(), json!(NOW + 30)))
        .unwrap();
    f.rejects(
        |_, c| _ = c.insert("nbf".into(), json!(NOW + 31)),
        JoseError::NotYetValid {
            nbf: NOW + 31,
            now: NOW,
        },
    );
}

#[test]
fn wit_max_lifetime() {
    let f = WitFx::new(WitProfile::WitSvid);
    let token = f.token(|_, _| {});
    f.validator()
        .max_lifetime(3600)
        .validate(&token, &f.keys)
        .unwrap();
    assert_eq!(
        f.validator()
            .max_lifetime(600)
            .validate(&token, &f.keys)
            .unwrap_err(),
        JoseError::LifetimeTooLong {
            exp: NOW + 3600,
            max: 600
        }
    );
}

#[test]
fn wit_svid_aud_forbidden() {
    let f = WitFx::new(WitProfile::WitSvid);
    f.rejects(
        |_, c| _ = c.insert("aud".into(), "https://x".into()),
        JoseError::ForbiddenClaim("aud"),
    );
    // A plain WIMSE WIT does not define `aud`; unknown claims are ignored.
    WitFx::new(WitProfile::Wimse)
        .check(|_, c| _ = c.insert("aud".into(), "https://x".into()))
        .unwrap();
}

#[test]
fn wit_cnf_missing() {
    let f = WitFx::new(WitProfile::Wimse);
    f.rejects(|_, c| _ = c.remove("cnf"), JoseError::MissingClaim("cnf"));
    f.rejects(
        |_, c| _ = c.insert("cnf".into(), "key".into()),
        JoseError::InvalidClaim {
            claim: "cnf",
            reason: "must be a JSON object",
        },
    );
}

#[test]
fn wit_cnf_jwk_missing() {
    let f = WitFx::new(WitProfile::Wimse);
    f.rejects(
        |_, c| _ = c.insert("cnf".into(), json!({"jkt": "abc"})),
        JoseError::MissingClaim("cnf.jwk"),
    );
}

#[test]
fn wit_cnf_jwk_not_a_jwk() {
    let f = WitFx::new(WitProfile::Wimse);
    f.rejects(
        |_, c| _ = c.insert("cnf".into(), json!({"jwk": "key"})),
        JoseError::InvalidClaim {
            claim: "cnf",
            reason: "cnf.jwk is not a JWK",
        },
    );
}

#[test]
fn wit_cnf_jwk_private_rejected() {
    let f = WitFx::new(WitProfile::Wimse);
    f.rejects(
        |_, c| {
            _ = WitFx::cnf_jwk(c).insert(
                "d".into(),
                "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A".into(),
            )
        },
        JoseError::InvalidClaim {
            claim: "cnf",
            reason: "cnf.jwk contains private key material",
        },
    );
}

#[test]
fn wit_cnf_alg_missing() {
    for profile in [WitProfile::Wimse, WitProfile::WitSvid] {
        WitFx::new(profile).rejects(
            |_, c| _ = WitFx::cnf_jwk(c).remove("alg"),
            JoseError::MissingClaim("cnf.jwk.alg"),
        );
    }
}

#[test]
fn wit_cnf_alg_not_asymmetric() {
    let f = WitFx::new(WitProfile::Wimse);
    for alg in ["none", "HS256", "RSA-OAEP", "A128KW", "eddsa"] {
        f.rejects(
            |_, c| _ = WitFx::cnf_jwk(c).insert("alg".into(), alg.into()),
            JoseError::InvalidClaim {
                claim: "cnf",
                reason: "cnf.jwk.alg is not an asymmetric JWS algorithm",
            },
        );
    }
}

#[test]
fn wit_svid_cnf_alg_eddsa_rejected() {
    let mut f = WitFx::new(WitProfile::WitSvid);
    let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
    f.check(|_, _| {}).unwrap();
    f.claims
        .insert("cnf".into(), json!({"jwk": public_jwk_without_kid(&ed)}));
    assert_eq!(
        f.check(|_, _| {}).unwrap_err(),
        JoseError::AlgorithmNotAllowed {
            alg: Algorithm::EdDSA,
            profile: "WIT-SVID cnf.jwk"
        }
    );
    // The same binding is fine for a plain WIT.
    let mut g = WitFx::new(WitProfile::Wimse);
    g.claims
        .insert("cnf".into(), json!({"jwk": public_jwk_without_kid(&ed)}));
    g.check(|_, _| {}).unwrap();
}

#[test]
fn wit_cnf_key_must_suit_its_alg() {
    let f = WitFx::new(WitProfile::Wimse);
    f.rejects(
        |_, c| _ = WitFx::cnf_jwk(c).insert("alg".into(), "ES256".into()),
        JoseError::InvalidClaim {
            claim: "cnf",
            reason: "cnf.jwk does not suit cnf.jwk.alg",
        },
    );
}

#[test]
fn wit_cnf_jwk_invalid_key() {
    let f = WitFx::new(WitProfile::Wimse);
    for (member, value) in [("x", "AAAA"), ("kty", "oct"), ("crv", "X25519")] {
        f.rejects(
            |_, c| _ = WitFx::cnf_jwk(c).insert(member.into(), value.into()),
            JoseError::InvalidClaim {
                claim: "cnf",
                reason: "cnf.jwk is not a valid public key",
            },
        );
    }
}

#[test]
fn wit_create_round_trip() {
    // Plain WIT: Ed25519 workload key.
    let f = WitFx::new(WitProfile::Wimse);
    let sub = WorkloadId::parse("wimse://example.org/svc").unwrap();
    let claims = WitClaims::new(sub.clone(), f.workload.public_jwk(), NOW, 3600)
        .unwrap()
        .issuer("https://i");
    assert!(claims.cnf.jwk.kid.is_none());
    assert_eq!(claims.jti.as_deref().map(str::len), Some(22));
    let token = wit::create(&claims, &f.issuer).unwrap();
    let v = f.validator().validate(&token, &f.keys).unwrap();
    assert_eq!(v.subject(), &sub);
    assert_eq!(v.issuer(), Some("https://i"));
    assert_eq!(v.confirmation_alg(), Algorithm::EdDSA);
    // A WIT-SVID: SPIFFE ID subject, P-256 workload key, ES256 issuer with a kid.
    let g = WitFx::new(WitProfile::WitSvid);
    let sub = WorkloadId::parse("spiffe://example.org/svc").unwrap();
    let token = wit::create(
        &WitClaims::new(sub, g.workload.public_jwk(), NOW, 3600).unwrap(),
        &g.issuer,
    )
    .unwrap();
    let v = g.validator().validate(&token, &g.keys).unwrap();
    assert_eq!(
        v.spiffe_id().map(|s| s.as_str()),
        Some("spiffe://example.org/svc")
    );
    // Creation refuses a key without `alg`.
    let mut no_alg = f.workload.public_jwk().clone();
    no_alg.alg = None;
    assert_eq!(
        WitClaims::new(
            WorkloadId::parse("wimse://example.org/x").unwrap(),
            &no_alg,
            NOW,
            60
        )
        .unwrap_err(),
        JoseError::MissingClaim("cnf.jwk.alg")
    );
}

// --- WIT vectors -------------------------------------------------------------------------

fn wimse_keys() -> (StaticKeys, SigningKey) {
    let keys: Value = serde_json::from_str(vector("keys")).unwrap();
    let server: Jwk = serde_json::from_value(keys["identity_server_public"].clone()).unwrap();
    let mut anchors = StaticKeys::new();
    anchors.add_key(
        "example.com",
        server.kid.clone(),
        VerifyingKey::from_jwk(&server).unwrap(),
    );
    let workload: Jwk = serde_json::from_value(keys["workload_private"].clone()).unwrap();
    (anchors, SigningKey::from_private_jwk(&workload).unwrap())
}

const WIMSE_WIT_EXP: i64 = 1_745_512_510;
const WIMSE_NOW: i64 = 1_745_509_800;

#[test]
fn vector_wimse_wit_verifies_as_plain_wit() {
    let (anchors, workload) = wimse_keys();
    let clock = Arc::new(ManualClock::new(WIMSE_NOW));
    let v = wit::Validator::new(WitProfile::Wimse, clock.clone())
        .validate(vector("wit"), &anchors)
        .unwrap();
    assert_eq!(
        v.subject().as_str(),
        "wimse://example.com/specific-workload"
    );
    assert_eq!(v.exp(), WIMSE_WIT_EXP);
    assert_eq!(v.iat(), Some(1_745_508_910));
    assert_eq!(v.jti(), Some("x-_1CTL2cca3CSE4cwb_l"));
    assert_eq!(v.kid(), Some("June 5"));
    assert_eq!(v.confirmation_alg(), Algorithm::EdDSA);
    assert_eq!(v.confirmation_jwk().x, workload.public_jwk().x);
    assert_eq!(
        v.confirmation_jkt(),
        "sWptYalQwqq7mvswEtvcpHYbrI-lqgVH7SdfkHinUzI"
    );
    assert_eq!(v.wit_hash(), "AaYUfC34D1di2FxQLpiIJJ7Sg8VZ6o8OCdwSf9IToLg");
    let jws = aims_jose::Jws::decode(vector("wit")).unwrap();
    let claims: WitClaims = serde_json::from_slice(jws.payload()).unwrap();
    assert_eq!(claims.sub.as_str(), "wimse://example.com/specific-workload");
    assert_eq!(claims.cnf.jwk.alg.as_deref(), Some("EdDSA"));
    assert_eq!(claims.iss, None);
    // And it stops being valid at exp + leeway.
    clock.set(WIMSE_WIT_EXP + 30);
    assert_eq!(
        wit::Validator::new(WitProfile::Wimse, clock)
            .validate(vector("wit"), &anchors)
            .unwrap_err(),
        JoseError::Expired {
            exp: WIMSE_WIT_EXP,
            now: WIMSE_WIT_EXP + 30
        }
    );
}

#[test]
fn vector_wimse_wit_rejected_as_wit_svid() {
    let (anchors, _) = wimse_keys();
    let clock = Arc::new(ManualClock::new(WIMSE_NOW));
    // First failing WIT-SVID rule: `sub` is a wimse:// identifier, not a SPIFFE ID.
    assert_eq!(
        wit::Validator::new(WitProfile::WitSvid, clock)
            .validate(vector("wit"), &anchors)
            .unwrap_err(),
        JoseError::InvalidClaim {
            claim: "sub",
            reason: "not a valid SPIFFE ID"
        }
    );
    // Its EdDSA `cnf.jwk.alg` is refused by the WIT-SVID allow-list too.
    let (_, workload) = wimse_keys();
    let mut jwk = workload.public_jwk().clone();
    jwk.extra.clear();
    let err = WitFx::new(WitProfile::WitSvid)
        .check(|_, c| {
            _ = c.insert(
                "cnf".into(),
                json!({"jwk": {"alg": "EdDSA", "crv": "Ed25519", "kty": "OKP", "x": jwk.x}}),
            )
        })
        .unwrap_err();
    assert_eq!(
        err,
        JoseError::AlgorithmNotAllowed {
            alg: Algorithm::EdDSA,
            profile: "WIT-SVID cnf.jwk"
        }
    );
}

// ---------------------------------------------------------------------------------------
// WPT
// ---------------------------------------------------------------------------------------

const AUD: &str = "https://workload.example.com/path";
const AUTHORITY: &str = "https://workload.example.com";
const AT: &str = "access-token-value";
const TXN: &str = "txn-token-value";

struct WptFx {
    workload: SigningKey,
    wit_token: String,
    wit: ValidatedWit,
    clock: ManualClock,
    header: Obj,
    claims: Obj,
}

impl WptFx {
    fn new() -> Self {
        Self::with_wit_lifetime(3600)
    }

    fn with_wit_lifetime(lifetime: i64) -> Self {
        let w = WitFx::new(WitProfile::Wimse);
        let sub = WorkloadId::parse("wimse://example.org/caller").unwrap();
        let claims = WitClaims::new(sub, w.workload.public_jwk(), NOW, lifetime).unwrap();
        let wit_token = wit::create(&claims, &w.issuer).unwrap();
        let wit = w.validator().validate(&wit_token, &w.keys).unwrap();
        let header = obj(json!({"alg": "EdDSA", "typ": "wpt+jwt"}));
        let claims =
            obj(json!({"aud": AUD, "exp": NOW + 60, "jti": JTI, "wth": sha256_b64url(&wit_token)}));
        Self {
            workload: w.workload,
            wit_token,
            wit,
            clock: ManualClock::new(NOW),
            header,
            claims,
        }
    }

    fn token_by(&self, key: &dyn Signer, m: impl FnOnce(&mut Obj, &mut Obj)) -> String {
        let (mut h, mut c) = (self.header.clone(), self.claims.clone());
        m(&mut h, &mut c);
        sign_obj(&h, &c, key)
    }

    fn token(&self, m: impl FnOnce(&mut Obj, &mut Obj)) -> String {
        self.token_by(&self.workload, m)
    }

    fn validator(&self) -> wpt::Validator {
        wpt::Validator::new([AUTHORITY], Arc::new(self.clock.clone()), guard())
    }

    fn request(&self) -> WptRequest<'_> {
        WptRequest::new(&self.wit_token, AUD)
    }

    fn check_with(
        &self,
        req: &WptRequest<'_>,
        m: impl FnOnce(&mut Obj, &mut Obj),
    ) -> Result<wpt::ValidatedWpt, JoseError> {
        self.validator().validate(&self.token(m), &self.wit, req)
    }

    fn check(&self, m: impl FnOnce(&mut Obj, &mut Obj)) -> Result<wpt::ValidatedWpt, JoseError> {
        self.check_with(&self.request(), m)
    }

    fn rejects(&self, m: impl FnOnce(&mut Obj, &mut Obj), want: JoseError) {
        self.check(|_, _| {}).expect("valid twin passes");
        assert_eq!(self.check(m).unwrap_err(), want);
    }

    /// Valid twin: the claims carry `add` and the request is `req`; the mutated one fails.
    fn rejects_with(
        &self,
        req: &WptRequest<'_>,
        add: &Value,
        m: impl FnOnce(&mut Obj),
        want: JoseError,
    ) {
        let add = obj(add.clone());
        let with = |c: &mut Obj| c.extend(add.clone());
        self.check_with(req, |_, c| with(c))
            .expect("valid twin passes");
        let err = self
            .check_with(req, |_, c| {
                with(c);
                m(c);
            })
            .unwrap_err();
        assert_eq!(err, want);
    }
}

#[test]
fn wpt_valid_twin_passes() {
    let f = WptFx::new();
    let v = f.check(|_, _| {}).unwrap();
    assert_eq!(v.jti(), JTI);
    assert_eq!(v.exp(), NOW + 60);
    assert_eq!(v.audience(), AUD);
    // With every kind of bound token.
    let others = [("X-Custom-Token", "  abc\t"), ("X-Other", "def")];
    let req = f
        .request()
        .with_access_token(AT)
        .with_txn_token(TXN)
        .with_other_tokens(&others);
    f.check_with(&req, |_, c| {
        c.insert("ath".into(), sha256_b64url(AT).into());
        c.insert("tth".into(), sha256_b64url(TXN).into());
        c.insert(
            "oth".into(),
            json!({"x-custom-token": sha256_b64url("abc"), "x-other": sha256_b64url("def")}),
        );
    })
    .unwrap();
}

#[test]
fn wpt_wit_expired_since_validation() {
    let f = WptFx::with_wit_lifetime(10);
    f.check(|_, _| {}).unwrap();
    f.clock.set(NOW + 40);
    assert_eq!(
        f.check(|_, _| {}).unwrap_err(),
        JoseError::Expired {
            exp: NOW + 10,
            now: NOW + 40
        }
    );
}

#[test]
fn wpt_shared_jws_rules() {
    let f = WptFx::new();
    f.rejects(
        |h, _| _ = h.insert("alg".into(), "none".into()),
        JoseError::AlgNone,
    );
    f.rejects(
        |h, _| _ = h.insert("alg".into(), "HS256".into()),
        JoseError::SymmetricAlgorithm("HS256".into()),
    );
    f.rejects(
        |h, _| _ = h.insert("jku".into(), "https://x".into()),
        JoseError::ForbiddenHeader("jku".into()),
    );
    f.rejects(
        |h, _| _ = h.insert("crit".into(), json!(["exp"])),
        JoseError::UnknownCrit,
    );
    let token = f.token(|_, _| {});
    assert_eq!(
        f.validator()
            .max_token_bytes(100)
            .validate(&token, &f.wit, &f.request())
            .unwrap_err(),
        JoseError::TooLarge(100)
    );
}

#[test]
fn wpt_typ_wrong() {
    let f = WptFx::new();
    f.rejects(
        |h, _| _ = h.remove("typ"),
        JoseError::WrongType {
            expected: "wpt+jwt",
            found: None,
        },
    );
    f.rejects(
        |h, _| _ = h.insert("typ".into(), "wimse-proof+jwt".into()),
        JoseError::WrongType {
            expected: "wpt+jwt",
            found: Some("wimse-proof+jwt".into()),
        },
    );
    // RFC 7515 section 4.1.9 comparison.
    f.check(|h, _| _ = h.insert("typ".into(), "application/wpt+jwt".into()))
        .unwrap();
}

#[test]
fn wpt_alg_must_equal_cnf_alg() {
    let f = WptFx::new();
    let p256 = SigningKey::generate(Algorithm::ES256).unwrap();
    f.check(|_, _| {}).unwrap();
    let token = f.token_by(&p256, |h, _| _ = h.insert("alg".into(), "ES256".into()));
    assert_eq!(
        f.validator()
            .validate(&token, &f.wit, &f.request())
            .unwrap_err(),
        JoseError::AlgorithmNotAllowed {
            alg: Algorithm::ES256,
            profile: "WPT"
        }
    );
}

#[test]
fn wpt_signature_must_verify_with_cnf_key() {
    let f = WptFx::new();
    let other = SigningKey::generate(Algorithm::EdDSA).unwrap();
    f.check(|_, _| {}).unwrap();
    let token = f.token_by(&other, |_, _| {});
    assert_eq!(
        f.validator()
            .validate(&token, &f.wit, &f.request())
            .unwrap_err(),
        JoseError::BadSignature
    );
}

#[test]
fn wpt_aud_missing() {
    WptFx::new().rejects(|_, c| _ = c.remove("aud"), JoseError::MissingClaim("aud"));
}

#[test]
fn wpt_aud_mismatch() {
    let f = WptFx::new();
    f.rejects(
        |_, c| _ = c.insert("aud".into(), "https://workload.example.com/other".into()),
        JoseError::AudienceMismatch,
    );
    f.rejects(
        |_, c| _ = c.insert("aud".into(), "https://evil.example/path".into()),
        JoseError::AudienceMismatch,
    );
    f.rejects(
        |_, c| _ = c.insert("aud".into(), json!([])),
        JoseError::AudienceMismatch,
    );
    // Normalised comparison, arrays, and query/fragment ignored.
    for aud in [
        json!("HTTPS://Workload.Example.com:443/path"),
        json!("https://workload.example.com/path?x=1"),
        json!(["https://a.example/", AUD]),
    ] {
        f.check(|_, c| _ = c.insert("aud".into(), aud.clone()))
            .unwrap();
    }
}

#[test]
fn wpt_expected_audience_must_be_under_configured_authority() {
    // The caller derived the audience from a Host header it should not trust: the WPT
    // was made for that audience, but the authority is not configured.
    let f = WptFx::new();
    let evil = "https://evil.example/path";
    f.check(|_, _| {}).unwrap();
    let req = WptRequest::new(&f.wit_token, evil);
    assert_eq!(
        f.check_with(&req, |_, c| _ = c.insert("aud".into(), evil.into()))
            .unwrap_err(),
        JoseError::AudienceMismatch
    );
    // Invalid configured authorities are dropped, so they never match.
    let v = wpt::Validator::new([AUTHORITY, "not a uri"], Arc::new(f.clock.clone()), guard());
    assert_eq!(v.authorities(), [AUTHORITY]);
}

#[test]
fn wpt_exp_missing() {
    let f = WptFx::new();
    f.rejects(|_, c| _ = c.remove("exp"), JoseError::MissingClaim("exp"));
}

#[test]
fn wpt_expired() {
    let f = WptFx::new();
    f.rejects(
        |_, c| _ = c.insert("exp".into(), json!(NOW - 30)),
        JoseError::Expired {
            exp: NOW - 30,
            now: NOW,
        },
    );
}

#[test]
fn wpt_lifetime_too_long() {
    let f = WptFx::new();
    // Default 300 s plus 30 s leeway.
    f.check(|_, c| _ = c.insert("exp".into(), json!(NOW + 330)))
        .unwrap();
    f.rejects(
        |_, c| _ = c.insert("exp".into(), json!(NOW + 331)),
        JoseError::LifetimeTooLong {
            exp: NOW + 331,
            max: 300,
        },
    );
    let token = f.token(|_, _| {});
    assert_eq!(
        f.validator()
            .max_lifetime(10)
            .validate(&token, &f.wit, &f.request())
            .unwrap_err(),
        JoseError::LifetimeTooLong {
            exp: NOW + 60,
            max: 10
        }
    );
}

#[test]
fn wpt_jti_missing() {
    let f = WptFx::new();
    f.rejects(|_, c| _ = c.remove("jti"), JoseError::MissingClaim("jti"));
    f.rejects(
        |_, c| _ = c.insert("jti".into(), "".into()),
        JoseError::InvalidClaim {
            claim: "jti",
            reason: "must not be empty",
        },
    );
}

#[test]
fn wpt_jti_too_short() {
    let f = WptFx::new();
    f.check(|_, c| _ = c.insert("jti".into(), "0123456789abcdef".into()))
        .unwrap();
    f.rejects(
        |_, c| _ = c.insert("jti".into(), "0123456789abcde".into()),
        JoseError::InvalidClaim {
            claim: "jti",
            reason: "too short to be unique",
        },
    );
    let token = f.token(|_, c| _ = c.insert("jti".into(), "x-_1CTL2cca3CSE4cwb_l".into()));
    assert_eq!(
        f.validator()
            .min_jti_len(22)
            .validate(&token, &f.wit, &f.request())
            .unwrap_err(),
        JoseError::InvalidClaim {
            claim: "jti",
            reason: "too short to be unique"
        }
    );
}

#[test]
fn wpt_replay_rejected() {
    let f = WptFx::new();
    let v = f.validator();
    let token = f.token(|_, _| {});
    v.validate(&token, &f.wit, &f.request()).unwrap();
    assert_eq!(
        v.validate(&token, &f.wit, &f.request()).unwrap_err(),
        JoseError::Replayed
    );
    // Same jti, fresh token: still a replay.
    let again = f.token(|_, c| _ = c.insert("exp".into(), json!(NOW + 61)));
    assert_eq!(
        v.validate(&again, &f.wit, &f.request()).unwrap_err(),
        JoseError::Replayed
    );
}

#[test]
fn wpt_replay_scoped_to_sender_and_invalid_proofs_take_no_slot() {
    let f = WptFx::new();
    let g = WptFx::new();
    let guard = guard();
    let v = wpt::Validator::new([AUTHORITY], Arc::new(f.clock.clone()), guard.clone());
    // A proof failing another rule does not record its jti.
    let bad = f.token(|_, c| _ = c.insert("wth".into(), "x".into()));
    assert_eq!(
        v.validate(&bad, &f.wit, &f.request()).unwrap_err(),
        JoseError::BindingMismatch("wth")
    );
    assert!(guard.is_empty());
    v.validate(&f.token(|_, _| {}), &f.wit, &f.request())
        .unwrap();
    // Another sender (another WIT key) may use the same jti.
    v.validate(&g.token(|_, _| {}), &g.wit, &g.request())
        .unwrap();
    assert_eq!(guard.len(), 2);
}

#[test]
fn wpt_wth_missing() {
    WptFx::new().rejects(|_, c| _ = c.remove("wth"), JoseError::MissingClaim("wth"));
}

#[test]
fn wpt_wth_mismatch() {
    let f = WptFx::new();
    f.rejects(
        |_, c| _ = c.insert("wth".into(), sha256_b64url("another WIT").into()),
        JoseError::BindingMismatch("wth"),
    );
}

#[test]
fn wpt_presented_wit_must_be_the_validated_wit() {
    let f = WptFx::new();
    let other_wit = WptFx::new().wit_token;
    f.check(|_, _| {}).unwrap();
    let req = WptRequest::new(&other_wit, AUD);
    assert_eq!(
        f.check_with(&req, |_, c| _ =
            c.insert("wth".into(), sha256_b64url(&other_wit).into()))
            .unwrap_err(),
        JoseError::BindingMismatch("wth")
    );
}

#[test]
fn wpt_ath_required_with_access_token() {
    let f = WptFx::new();
    let req = f.request().with_access_token(AT);
    f.rejects_with(
        &req,
        &json!({"ath": sha256_b64url(AT)}),
        |c| _ = c.remove("ath"),
        JoseError::MissingClaim("ath"),
    );
}

#[test]
fn wpt_ath_mismatch() {
    let f = WptFx::new();
    let req = f.request().with_access_token(AT);
    f.rejects_with(
        &req,
        &json!({"ath": sha256_b64url(AT)}),
        |c| _ = c.insert("ath".into(), sha256_b64url("other").into()),
        JoseError::BindingMismatch("ath"),
    );
}

#[test]
fn wpt_ath_without_access_token() {
    let f = WptFx::new();
    f.rejects(
        |_, c| _ = c.insert("ath".into(), sha256_b64url(AT).into()),
        JoseError::ForbiddenClaim("ath"),
    );
}

#[test]
fn wpt_tth_required_with_txn_token() {
    let f = WptFx::new();
    let req = f.request().with_txn_token(TXN);
    f.rejects_with(
        &req,
        &json!({"tth": sha256_b64url(TXN)}),
        |c| _ = c.remove("tth"),
        JoseError::MissingClaim("tth"),
    );
}

#[test]
fn wpt_tth_mismatch() {
    let f = WptFx::new();
    let req = f.request().with_txn_token(TXN);
    f.rejects_with(
        &req,
        &json!({"tth": sha256_b64url(TXN)}),
        |c| _ = c.insert("tth".into(), sha256_b64url(AT).into()),
        JoseError::BindingMismatch("tth"),
    );
}

#[test]
fn wpt_tth_without_txn_token() {
    let f = WptFx::new();
    f.rejects(
        |_, c| _ = c.insert("tth".into(), sha256_b64url(TXN).into()),
        JoseError::ForbiddenClaim("tth"),
    );
}

const OTHERS: [(&str, &str); 2] = [("X-Custom-Token", "abc"), ("X-Other", "def")];

fn oth_value() -> Value {
    json!({"oth": {"x-custom-token": sha256_b64url("abc"), "x-other": sha256_b64url("def")}})
}

#[test]
fn wpt_oth_required_with_other_tokens() {
    let f = WptFx::new();
    let req = f.request().with_other_tokens(&OTHERS);
    f.rejects_with(
        &req,
        &oth_value(),
        |c| _ = c.remove("oth"),
        JoseError::MissingClaim("oth"),
    );
}

#[test]
fn wpt_oth_not_an_object() {
    let f = WptFx::new();
    let req = f.request().with_other_tokens(&OTHERS);
    f.rejects_with(
        &req,
        &oth_value(),
        |c| _ = c.insert("oth".into(), json!(["x-other"])),
        JoseError::InvalidClaim {
            claim: "oth",
            reason: "must be a JSON object",
        },
    );
}

#[test]
fn wpt_oth_values_must_be_strings() {
    let f = WptFx::new();
    let req = f.request().with_other_tokens(&OTHERS);
    f.rejects_with(
        &req,
        &oth_value(),
        |c| {
            _ = c["oth"]
                .as_object_mut()
                .unwrap()
                .insert("x-other".into(), json!(1))
        },
        JoseError::InvalidClaim {
            claim: "oth",
            reason: "values must be strings",
        },
    );
}

#[test]
fn wpt_oth_unknown_key() {
    let f = WptFx::new();
    let req = f.request().with_other_tokens(&OTHERS);
    let unknown = JoseError::InvalidClaim {
        claim: "oth",
        reason: "names a header not in the request",
    };
    f.rejects_with(
        &req,
        &oth_value(),
        |c| {
            _ = c["oth"]
                .as_object_mut()
                .unwrap()
                .insert("x-extra".into(), sha256_b64url("zzz").into())
        },
        unknown.clone(),
    );
    // Keys are lower-case header names; an upper-case key names nothing.
    f.rejects_with(
        &req,
        &oth_value(),
        |c| {
            let oth = c["oth"].as_object_mut().unwrap();
            let v = oth.remove("x-other").unwrap();
            oth.insert("X-Other".into(), v);
        },
        unknown,
    );
    // Without any other token in the request, a non-empty `oth` names unknown headers.
    f.rejects(
        |_, c| c.extend(obj(oth_value())),
        JoseError::InvalidClaim {
            claim: "oth",
            reason: "names a header not in the request",
        },
    );
}

#[test]
fn wpt_oth_hash_mismatch() {
    let f = WptFx::new();
    let req = f.request().with_other_tokens(&OTHERS);
    f.rejects_with(
        &req,
        &oth_value(),
        |c| {
            _ = c["oth"]
                .as_object_mut()
                .unwrap()
                .insert("x-other".into(), sha256_b64url("abc").into())
        },
        JoseError::BindingMismatch("oth"),
    );
}

#[test]
fn wpt_oth_must_cover_every_other_token() {
    let f = WptFx::new();
    let req = f.request().with_other_tokens(&OTHERS);
    f.rejects_with(
        &req,
        &oth_value(),
        |c| _ = c["oth"].as_object_mut().unwrap().remove("x-other"),
        JoseError::InvalidClaim {
            claim: "oth",
            reason: "does not cover every other token in the request",
        },
    );
}

#[test]
fn wpt_oth_repeated_headers_rejected() {
    let f = WptFx::new();
    let repeated = [("X-Custom-Token", "abc"), ("x-custom-token", "abc")];
    f.check_with(&f.request().with_other_tokens(&repeated[..1]), |_, c| {
        c.insert(
            "oth".into(),
            json!({"x-custom-token": sha256_b64url("abc")}),
        );
    })
    .unwrap();
    let req = f.request().with_other_tokens(&repeated);
    assert_eq!(
        f.check_with(&req, |_, c| _ = c.insert(
            "oth".into(),
            json!({"x-custom-token": sha256_b64url("abc")})
        ))
        .unwrap_err(),
        JoseError::InvalidClaim {
            claim: "oth",
            reason: "repeated header fields are not supported"
        }
    );
}

#[test]
fn wpt_oth_hashes_trimmed_values_of_lowercased_names() {
    let f = WptFx::new();
    let spaced = [("X-CUSTOM-TOKEN", " \tabc \t")];
    f.check_with(&f.request().with_other_tokens(&spaced), |_, c| {
        c.insert(
            "oth".into(),
            json!({"x-custom-token": sha256_b64url("abc")}),
        );
    })
    .unwrap();
}

#[test]
fn wpt_duplicate_claims_rejected() {
    let f = WptFx::new();
    f.check(|_, _| {}).unwrap();
    let mut payload = serde_json::to_string(&f.claims).unwrap();
    payload.insert_str(1, r#""aud":"https://evil.example/","#);
    let token = raw_sign(&f.header, payload.as_bytes(), &f.workload);
    assert_eq!(
        f.validator()
            .validate(&token, &f.wit, &f.request())
            .unwrap_err(),
        JoseError::Malformed("duplicate claim name")
    );
}

#[test]
fn wpt_create_round_trip() {
    let f = WptFx::new();
    let others = [("X-Custom-Token", "abc")];
    let req = f
        .request()
        .with_access_token(AT)
        .with_txn_token(TXN)
        .with_other_tokens(&others);
    let claims = WptClaims::new(&req, NOW + 30).unwrap();
    assert_eq!(claims.jti.len(), 22);
    assert_eq!(
        claims.oth.as_ref().and_then(|o| o.get("x-custom-token")),
        Some(&sha256_b64url("abc"))
    );
    let token = wpt::create(&claims, &f.workload).unwrap();
    let v = f.validator().validate(&token, &f.wit, &req).unwrap();
    assert_eq!(v.jti(), claims.jti);
}

// --- WPT vectors -------------------------------------------------------------------------

fn wimse_wpt_setup(request: &str) -> (ValidatedWit, &'static str, &'static str, Arc<ManualClock>) {
    let (anchors, _) = wimse_keys();
    let clock = Arc::new(ManualClock::new(WIMSE_NOW));
    let wit_token = header_value(request, "Workload-Identity-Token");
    let wit = wit::Validator::new(WitProfile::Wimse, clock.clone())
        .validate(wit_token, &anchors)
        .unwrap();
    (
        wit,
        wit_token,
        header_value(request, "Workload-Proof-Token"),
        clock,
    )
}

#[test]
fn vector_wimse_wpt_hashes() {
    assert_eq!(
        sha256_b64url(vector("wit")),
        "AaYUfC34D1di2FxQLpiIJJ7Sg8VZ6o8OCdwSf9IToLg"
    );
    assert_eq!(
        sha256_b64url("16_mAd0GiwaZokU26_0902100"),
        "CL4wjfpRmNf-bdYIbYLnV9d5rMARGwKYE10wUwzC0jI"
    );
    assert_eq!(
        header_value("wpt-request", "Workload-Identity-Token"),
        vector("wit")
    );
}

#[test]
fn vector_wimse_wpt_validates_end_to_end() {
    let (wit, wit_token, wpt_token, clock) = wimse_wpt_setup("wpt-request");
    let at = header_value("wpt-request", "Authorization")
        .strip_prefix("Bearer ")
        .unwrap();
    assert_eq!(at, "16_mAd0GiwaZokU26_0902100");
    let req = WptRequest::new(wit_token, "https://workload.example.com/path").with_access_token(at);
    let v = wpt::Validator::new(["https://workload.example.com"], clock, guard());
    let ok = v.validate(wpt_token, &wit, &req).unwrap();
    assert_eq!(ok.jti(), "__bwc4ESC3acc2LTC1-_x");
    assert_eq!(ok.exp(), 1_745_510_016);
    assert_eq!(ok.audience(), "https://workload.example.com/path");
    // Presented twice: replay.
    assert_eq!(
        v.validate(wpt_token, &wit, &req).unwrap_err(),
        JoseError::Replayed
    );
    // Without the access token, its `ath` is refused.
    let bare = WptRequest::new(wit_token, "https://workload.example.com/path");
    let v = wpt::Validator::new(
        ["https://workload.example.com"],
        Arc::new(ManualClock::new(WIMSE_NOW)),
        guard(),
    );
    assert_eq!(
        v.validate(wpt_token, &wit, &bare).unwrap_err(),
        JoseError::ForbiddenClaim("ath")
    );
}

#[test]
fn vector_wimse_wpt_signature_and_byte_exact_resign() {
    let (_, workload) = wimse_keys();
    assert_eq!(
        workload.public_jwk().x.as_deref(),
        Some("1CXXvflN_LVVsIsYXsUvB03JmlGWeCHqQVuouCF92bg")
    );
    for (request, oth) in [
        ("wpt-request", None),
        (
            "wpt-oth-request",
            Some(BTreeMap::from([(
                "x-custom-token".to_owned(),
                "x-Uy6Ch_xn3AbUVKDjPMQQugtcn2erLWrkvVWAmKl1k".to_owned(),
            )])),
        ),
    ] {
        let wit_token = header_value(request, "Workload-Identity-Token");
        let wpt_token = header_value(request, "Workload-Proof-Token");
        // The signature verifies with the workload's public key.
        let jws = aims_jose::Jws::decode(wpt_token).unwrap();
        let public = Jwk {
            extra: Default::default(),
            ..workload.public_jwk().clone()
        };
        jws.verify(&VerifyingKey::from_jwk(&public).unwrap())
            .unwrap();
        // Re-signing the same claims reproduces the token byte for byte.
        let claims: Value = serde_json::from_slice(jws.payload()).unwrap();
        let rebuilt = WptClaims {
            ath: Some(sha256_b64url("16_mAd0GiwaZokU26_0902100")),
            aud: Audience::One("https://workload.example.com/path".into()),
            exp: 1_745_510_016,
            jti: claims["jti"].as_str().unwrap().to_owned(),
            oth,
            tth: None,
            wth: sha256_b64url(wit_token),
        };
        assert_eq!(
            wpt::create(&rebuilt, &workload).unwrap(),
            wpt_token,
            "{request}"
        );
        // And the claims deserialize to the same struct.
        let parsed: WptClaims = serde_json::from_slice(jws.payload()).unwrap();
        assert_eq!(parsed, rebuilt);
    }
}

#[test]
fn vector_wimse_wpt_with_oth_validates_end_to_end() {
    let (wit, wit_token, wpt_token, clock) = wimse_wpt_setup("wpt-oth-request");
    let at = header_value("wpt-oth-request", "Authorization")
        .strip_prefix("Bearer ")
        .unwrap();
    let custom = header_value("wpt-oth-request", "X-Custom-Token");
    let others = [("X-Custom-Token", custom)];
    let req = WptRequest::new(wit_token, "https://workload.example.com/path")
        .with_access_token(at)
        .with_other_tokens(&others);
    let v = wpt::Validator::new(["https://workload.example.com"], clock, guard());
    let ok = v.validate(wpt_token, &wit, &req).unwrap();
    assert_eq!(ok.jti(), "Cb1fCa3cFESC_x-24CLTL");
    // The same WPT without the other token in the request: `oth` names an unknown header.
    let req = WptRequest::new(wit_token, "https://workload.example.com/path").with_access_token(at);
    let v = wpt::Validator::new(
        ["https://workload.example.com"],
        Arc::new(ManualClock::new(WIMSE_NOW)),
        guard(),
    );
    assert_eq!(
        v.validate(wpt_token, &wit, &req).unwrap_err(),
        JoseError::InvalidClaim {
            claim: "oth",
            reason: "names a header not in the request"
        }
    );
}

// ---------------------------------------------------------------------------------------
// DPoP
// ---------------------------------------------------------------------------------------

const HTU: &str = "https://server.example.com/token";
const RS_URI: &str = "https://resource.example.org/protectedresource";

struct DpopFx {
    key: SigningKey,
    clock: ManualClock,
    header: Obj,
    claims: Obj,
}

impl DpopFx {
    fn new() -> Self {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let header =
            obj(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk_without_kid(&key)}));
        let claims = obj(json!({"jti": JTI, "htm": "POST", "htu": HTU, "iat": NOW}));
        Self {
            key,
            clock: ManualClock::new(NOW),
            header,
            claims,
        }
    }

    fn token_by(&self, key: &dyn Signer, m: impl FnOnce(&mut Obj, &mut Obj)) -> String {
        let (mut h, mut c) = (self.header.clone(), self.claims.clone());
        m(&mut h, &mut c);
        sign_obj(&h, &c, key)
    }

    fn token(&self, m: impl FnOnce(&mut Obj, &mut Obj)) -> String {
        self.token_by(&self.key, m)
    }

    fn validator(&self) -> dpop::Validator {
        dpop::Validator::new(Arc::new(self.clock.clone()), guard())
    }

    fn check_with(
        &self,
        req: &DpopRequest<'_>,
        m: impl FnOnce(&mut Obj, &mut Obj),
    ) -> Result<dpop::ValidatedDpop, JoseError> {
        self.validator().validate(&self.token(m), req)
    }

    fn check(&self, m: impl FnOnce(&mut Obj, &mut Obj)) -> Result<dpop::ValidatedDpop, JoseError> {
        self.check_with(&DpopRequest::new("POST", HTU), m)
    }

    fn rejects(&self, m: impl FnOnce(&mut Obj, &mut Obj), want: JoseError) {
        self.check(|_, _| {}).expect("valid twin passes");
        assert_eq!(self.check(m).unwrap_err(), want);
    }

    /// A resource request (GET with an access token) and its valid claims.
    fn resource(
        &self,
        m: impl FnOnce(&mut Obj, &mut Obj),
    ) -> Result<dpop::ValidatedDpop, JoseError> {
        let req = DpopRequest::new("GET", RS_URI).with_access_token(AT);
        self.check_with(&req, |h, c| {
            c.insert("htm".into(), "GET".into());
            c.insert("htu".into(), RS_URI.into());
            c.insert("ath".into(), sha256_b64url(AT).into());
            m(h, c);
        })
    }
}

#[test]
fn dpop_valid_twin_passes() {
    let f = DpopFx::new();
    let v = f.check(|_, _| {}).unwrap();
    assert_eq!(v.jkt(), f.key.public_jwk().thumbprint().unwrap());
    assert_eq!(v.claims().jti, JTI);
    assert_eq!(v.claims().htm, "POST");
    assert_eq!(v.claims().htu, HTU);
    assert_eq!(v.claims().iat, NOW);
    let v = f.resource(|_, _| {}).unwrap();
    assert_eq!(v.claims().ath.as_deref(), Some(sha256_b64url(AT).as_str()));
}

#[test]
fn dpop_shared_jws_rules() {
    let f = DpopFx::new();
    f.rejects(
        |h, _| _ = h.insert("alg".into(), "none".into()),
        JoseError::AlgNone,
    );
    f.rejects(
        |h, _| _ = h.insert("alg".into(), "HS256".into()),
        JoseError::SymmetricAlgorithm("HS256".into()),
    );
    f.rejects(
        |h, _| _ = h.insert("jku".into(), "https://x".into()),
        JoseError::ForbiddenHeader("jku".into()),
    );
    f.rejects(
        |h, _| _ = h.insert("x5u".into(), "https://x".into()),
        JoseError::ForbiddenHeader("x5u".into()),
    );
    f.rejects(
        |h, _| _ = h.insert("crit".into(), json!(["htm"])),
        JoseError::UnknownCrit,
    );
    let token = f.token(|_, _| {});
    assert_eq!(
        f.validator()
            .max_token_bytes(64)
            .validate(&token, &DpopRequest::new("POST", HTU))
            .unwrap_err(),
        JoseError::TooLarge(64)
    );
}

#[test]
fn dpop_typ_wrong() {
    let f = DpopFx::new();
    f.rejects(
        |h, _| _ = h.remove("typ"),
        JoseError::WrongType {
            expected: "dpop+jwt",
            found: None,
        },
    );
    f.rejects(
        |h, _| _ = h.insert("typ".into(), "JWT".into()),
        JoseError::WrongType {
            expected: "dpop+jwt",
            found: Some("JWT".into()),
        },
    );
}

#[test]
fn dpop_typ_uses_rfc7515_comparison() {
    let f = DpopFx::new();
    for typ in ["application/dpop+jwt", "DPoP+JWT"] {
        f.check(|h, _| _ = h.insert("typ".into(), typ.into()))
            .unwrap();
    }
}

#[test]
fn dpop_alg_allow_list() {
    let f = DpopFx::new();
    let token = f.token(|_, _| {});
    let req = DpopRequest::new("POST", HTU);
    f.validator().validate(&token, &req).unwrap();
    let v = f
        .validator()
        .algorithms([Algorithm::EdDSA, Algorithm::ES384]);
    assert_eq!(
        v.supported_algorithms(),
        [Algorithm::EdDSA, Algorithm::ES384]
    );
    assert_eq!(
        v.validate(&token, &req).unwrap_err(),
        JoseError::AlgorithmNotAllowed {
            alg: Algorithm::ES256,
            profile: "DPoP"
        }
    );
    // The defaults include EdDSA and ES384.
    for alg in [Algorithm::EdDSA, Algorithm::ES384] {
        let k = SigningKey::generate(alg).unwrap();
        let proof = dpop::create_proof(&k, "POST", HTU, None, None, NOW).unwrap();
        f.validator().validate(&proof, &req).unwrap();
    }
}

#[test]
fn dpop_jwk_missing() {
    let f = DpopFx::new();
    f.rejects(
        |h, _| _ = h.remove("jwk"),
        JoseError::Malformed("DPoP proof has no `jwk` header"),
    );
}

#[test]
fn dpop_jwk_private_rejected() {
    let f = DpopFx::new();
    f.rejects(
        |h, _| {
            _ = h["jwk"]
                .as_object_mut()
                .unwrap()
                .insert("d".into(), "AAAA".into())
        },
        JoseError::Key(CryptoError::PrivateMembersInPublicJwk),
    );
}

#[test]
fn dpop_jwk_invalid() {
    let f = DpopFx::new();
    f.rejects(
        |h, _| {
            _ = h["jwk"]
                .as_object_mut()
                .unwrap()
                .insert("x".into(), "AAAA".into())
        },
        JoseError::Key(CryptoError::InvalidKey(
            "EC coordinate has the wrong length",
        )),
    );
}

#[test]
fn dpop_jwk_must_suit_alg() {
    let f = DpopFx::new();
    let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
    f.rejects(
        |h, _| _ = h.insert("jwk".into(), public_jwk_without_kid(&ed)),
        JoseError::Key(CryptoError::KeyAlgorithmMismatch {
            key: "OKP Ed25519",
            alg: "ES256",
        }),
    );
}

#[test]
fn dpop_signature_must_verify_with_jwk() {
    let f = DpopFx::new();
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    f.check(|_, _| {}).unwrap();
    let token = f.token_by(&other, |_, _| {});
    assert_eq!(
        f.validator()
            .validate(&token, &DpopRequest::new("POST", HTU))
            .unwrap_err(),
        JoseError::BadSignature
    );
}

#[test]
fn dpop_jwk_kid_ignored() {
    let f = DpopFx::new();
    let plain = f.check(|_, _| {}).unwrap();
    let with_kid = f
        .check(|h, _| {
            _ = h["jwk"]
                .as_object_mut()
                .unwrap()
                .insert("kid".into(), "k1".into())
        })
        .unwrap();
    assert_eq!(plain.jkt(), with_kid.jkt());
}

#[test]
fn dpop_jti_missing() {
    let f = DpopFx::new();
    f.rejects(|_, c| _ = c.remove("jti"), JoseError::MissingClaim("jti"));
}

#[test]
fn dpop_jti_too_short() {
    let f = DpopFx::new();
    f.check(|_, c| _ = c.insert("jti".into(), "-BwC3ESc6acc2lTc".into()))
        .unwrap();
    f.rejects(
        |_, c| _ = c.insert("jti".into(), "-BwC3ESc6acc2lT".into()),
        JoseError::InvalidClaim {
            claim: "jti",
            reason: "too short to be unique",
        },
    );
}

#[test]
fn dpop_htm_missing() {
    DpopFx::new().rejects(|_, c| _ = c.remove("htm"), JoseError::MissingClaim("htm"));
}

#[test]
fn dpop_htm_mismatch_case_sensitive() {
    let f = DpopFx::new();
    f.rejects(
        |_, c| _ = c.insert("htm".into(), "GET".into()),
        JoseError::BindingMismatch("htm"),
    );
    f.rejects(
        |_, c| _ = c.insert("htm".into(), "post".into()),
        JoseError::BindingMismatch("htm"),
    );
}

#[test]
fn dpop_htu_missing() {
    DpopFx::new().rejects(|_, c| _ = c.remove("htu"), JoseError::MissingClaim("htu"));
}

#[test]
fn dpop_htu_not_an_http_uri() {
    let f = DpopFx::new();
    for bad in [
        "/token",
        "server.example.com/token",
        "ftp://server.example.com/token",
        "https://u@server.example.com/token",
    ] {
        f.rejects(
            |_, c| _ = c.insert("htu".into(), bad.into()),
            JoseError::InvalidClaim {
                claim: "htu",
                reason: "not an absolute http(s) URI",
            },
        );
    }
}

#[test]
fn dpop_htu_mismatch() {
    let f = DpopFx::new();
    for other in [
        "https://server.example.com/token2",
        "https://server.example.com/Token",
        "http://server.example.com/token",
        "https://server.example.com:8443/token",
        "https://other.example.com/token",
    ] {
        f.rejects(
            |_, c| _ = c.insert("htu".into(), other.into()),
            JoseError::BindingMismatch("htu"),
        );
    }
    // A request URI that cannot be normalised matches nothing.
    assert_eq!(
        f.check_with(&DpopRequest::new("POST", "/token"), |_, _| {})
            .unwrap_err(),
        JoseError::BindingMismatch("htu")
    );
}

#[test]
fn dpop_htu_normalised_query_and_fragment_ignored() {
    let f = DpopFx::new();
    for htu in [
        "HTTPS://Server.Example.COM:443/token",
        "https://server.example.com/./x/../%74oken",
        "https://server.example.com/token?a=1",
    ] {
        f.check(|_, c| _ = c.insert("htu".into(), htu.into()))
            .unwrap();
    }
    let req = DpopRequest::new("POST", "https://server.example.com/token?code=abc#frag");
    f.check_with(&req, |_, _| {}).unwrap();
}

#[test]
fn dpop_iat_missing() {
    DpopFx::new().rejects(|_, c| _ = c.remove("iat"), JoseError::MissingClaim("iat"));
}

#[test]
fn dpop_iat_too_old() {
    let f = DpopFx::new();
    // Default window: 300 s back plus 30 s leeway.
    f.check(|_, c| _ = c.insert("iat".into(), json!(NOW - 330)))
        .unwrap();
    f.rejects(
        |_, c| _ = c.insert("iat".into(), json!(NOW - 331)),
        JoseError::TooOld {
            iat: NOW - 331,
            now: NOW,
        },
    );
    let token = f.token(|_, c| _ = c.insert("iat".into(), json!(NOW - 100)));
    assert_eq!(
        f.validator()
            .max_age(60)
            .validate(&token, &DpopRequest::new("POST", HTU))
            .unwrap_err(),
        JoseError::TooOld {
            iat: NOW - 100,
            now: NOW
        }
    );
}

#[test]
fn dpop_iat_in_future() {
    let f = DpopFx::new();
    f.check(|_, c| _ = c.insert("iat".into(), json!(NOW + 30)))
        .unwrap();
    f.rejects(
        |_, c| _ = c.insert("iat".into(), json!(NOW + 31)),
        JoseError::IssuedInFuture {
            iat: NOW + 31,
            now: NOW,
        },
    );
    let token = f.token(|_, c| _ = c.insert("iat".into(), json!(NOW + 5)));
    assert_eq!(
        f.validator()
            .leeway(0)
            .validate(&token, &DpopRequest::new("POST", HTU))
            .unwrap_err(),
        JoseError::IssuedInFuture {
            iat: NOW + 5,
            now: NOW
        }
    );
}

#[test]
fn dpop_ath_required_with_access_token() {
    let f = DpopFx::new();
    f.resource(|_, _| {}).unwrap();
    assert_eq!(
        f.resource(|_, c| _ = c.remove("ath")).unwrap_err(),
        JoseError::MissingClaim("ath")
    );
}

#[test]
fn dpop_ath_mismatch() {
    let f = DpopFx::new();
    f.resource(|_, _| {}).unwrap();
    assert_eq!(
        f.resource(|_, c| _ = c.insert("ath".into(), sha256_b64url("another token").into()))
            .unwrap_err(),
        JoseError::BindingMismatch("ath")
    );
}

#[test]
fn dpop_ath_ignored_at_token_endpoint() {
    DpopFx::new()
        .check(|_, c| _ = c.insert("ath".into(), sha256_b64url(AT).into()))
        .unwrap();
}

#[test]
fn dpop_nonce_required() {
    let f = DpopFx::new();
    let v = || f.validator().require_nonce(|n| n == "server-nonce");
    let req = DpopRequest::new("POST", HTU);
    v().validate(
        &f.token(|_, c| _ = c.insert("nonce".into(), "server-nonce".into())),
        &req,
    )
    .unwrap();
    assert_eq!(
        v().validate(&f.token(|_, _| {}), &req).unwrap_err(),
        JoseError::NonceRequired
    );
}

#[test]
fn dpop_nonce_mismatch() {
    let f = DpopFx::new();
    let v = f.validator().require_nonce(|n| n == "server-nonce");
    let req = DpopRequest::new("POST", HTU);
    assert_eq!(
        v.validate(
            &f.token(|_, c| _ = c.insert("nonce".into(), "stale".into())),
            &req
        )
        .unwrap_err(),
        JoseError::BindingMismatch("nonce")
    );
    // Without a nonce requirement, a nonce is not checked.
    f.check(|_, c| _ = c.insert("nonce".into(), "stale".into()))
        .unwrap();
}

#[test]
fn dpop_replay_rejected() {
    let f = DpopFx::new();
    let v = f.validator();
    let req = DpopRequest::new("POST", HTU);
    v.validate(&f.token(|_, _| {}), &req).unwrap();
    // Same key and jti, even in a freshly signed proof.
    assert_eq!(
        v.validate(&f.token(|_, _| {}), &req).unwrap_err(),
        JoseError::Replayed
    );
}

#[test]
fn dpop_replay_scoped_to_key_and_invalid_proofs_take_no_slot() {
    let f = DpopFx::new();
    let g = DpopFx::new();
    let guard = guard();
    let v = dpop::Validator::new(Arc::new(f.clock.clone()), guard.clone());
    let req = DpopRequest::new("POST", HTU);
    assert_eq!(
        v.validate(
            &f.token(|_, c| _ = c.insert("htm".into(), "GET".into())),
            &req
        )
        .unwrap_err(),
        JoseError::BindingMismatch("htm")
    );
    assert!(guard.is_empty());
    v.validate(&f.token(|_, _| {}), &req).unwrap();
    v.validate(&g.token(|_, _| {}), &req).unwrap();
    assert_eq!(guard.len(), 2);
}

#[test]
fn dpop_check_binding() {
    let f = DpopFx::new();
    let v = f.check(|_, _| {}).unwrap();
    v.check_binding(&f.key.public_jwk().thumbprint().unwrap())
        .unwrap();
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    assert_eq!(
        v.check_binding(&other.public_jwk().thumbprint().unwrap())
            .unwrap_err(),
        JoseError::BindingMismatch("cnf")
    );
    assert_eq!(
        v.check_binding("").unwrap_err(),
        JoseError::BindingMismatch("cnf")
    );
}

#[test]
fn dpop_duplicate_claims_rejected() {
    let f = DpopFx::new();
    f.check(|_, _| {}).unwrap();
    let mut payload = serde_json::to_string(&f.claims).unwrap();
    payload.insert_str(1, r#""htu":"https://evil.example/","#);
    let token = raw_sign(&f.header, payload.as_bytes(), &f.key);
    assert_eq!(
        f.validator()
            .validate(&token, &DpopRequest::new("POST", HTU))
            .unwrap_err(),
        JoseError::Malformed("duplicate claim name")
    );
}

#[test]
fn dpop_create_proof_round_trip() {
    let f = DpopFx::new();
    let proof = dpop::create_proof(
        &f.key,
        "GET",
        "https://resource.example.org/protectedresource?x=1#y",
        Some(AT),
        Some("n1"),
        NOW,
    )
    .unwrap();
    let jws = aims_jose::Jws::decode(&proof).unwrap();
    assert_eq!(jws.header.typ.as_deref(), Some("dpop+jwt"));
    let jwk = jws.header.jwk.as_ref().unwrap();
    assert!(jwk.kid.is_none() && !jwk.has_private_members());
    let v = f
        .validator()
        .require_nonce(|n| n == "n1")
        .validate(
            &proof,
            &DpopRequest::new("GET", RS_URI).with_access_token(AT),
        )
        .unwrap();
    assert_eq!(v.claims().htu, RS_URI);
    assert_eq!(v.claims().jti.len(), 22);
    assert_eq!(v.claims().nonce.as_deref(), Some("n1"));
    v.check_binding(&f.key.public_jwk().thumbprint().unwrap())
        .unwrap();
}

// --- DPoP vectors ------------------------------------------------------------------------

const RFC9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

fn rfc9449_validator(at: i64, guard: Arc<MemoryReplayGuard>) -> dpop::Validator {
    dpop::Validator::new(Arc::new(ManualClock::new(at)), guard)
}

#[test]
fn vector_rfc9449_token_request_proof() {
    let v = rfc9449_validator(1_562_262_616, guard())
        .validate(
            vector("dpop-token"),
            &DpopRequest::new("POST", "https://server.example.com/token"),
        )
        .unwrap();
    assert_eq!(v.jkt(), RFC9449_JKT);
    assert_eq!(
        v.claims(),
        &dpop::DpopClaims {
            jti: "-BwC3ESc6acc2lTc".into(),
            htm: "POST".into(),
            htu: "https://server.example.com/token".into(),
            iat: 1_562_262_616,
            ath: None,
            nonce: None,
        }
    );
    v.check_binding(RFC9449_JKT).unwrap();
    // The same proof at another endpoint, or later than the window, is refused.
    assert_eq!(
        rfc9449_validator(1_562_262_616, guard())
            .validate(
                vector("dpop-token"),
                &DpopRequest::new("POST", "https://server.example.com/par")
            )
            .unwrap_err(),
        JoseError::BindingMismatch("htu")
    );
    assert_eq!(
        rfc9449_validator(1_562_262_616 + 331, guard())
            .validate(
                vector("dpop-token"),
                &DpopRequest::new("POST", "https://server.example.com/token")
            )
            .unwrap_err(),
        JoseError::TooOld {
            iat: 1_562_262_616,
            now: 1_562_262_616 + 331
        }
    );
}

#[test]
fn vector_rfc9449_refresh_proof_reuses_jti() {
    // Figure 7 reuses Figure 5's jti 2680 s later: accepted once the first proof's
    // window has passed, a replay if the window is longer.
    let req = DpopRequest::new("POST", "https://server.example.com/token");
    let g = guard();
    rfc9449_validator(1_562_262_616, g.clone())
        .validate(vector("dpop-token"), &req)
        .unwrap();
    let v = rfc9449_validator(1_562_265_296, g)
        .validate(vector("dpop-refresh"), &req)
        .unwrap();
    assert_eq!(v.jkt(), RFC9449_JKT);
    let g = guard();
    rfc9449_validator(1_562_262_616, g.clone())
        .max_age(3600)
        .validate(vector("dpop-token"), &req)
        .unwrap();
    assert_eq!(
        rfc9449_validator(1_562_265_296, g)
            .max_age(3600)
            .validate(vector("dpop-refresh"), &req)
            .unwrap_err(),
        JoseError::Replayed
    );
}

#[test]
fn vector_rfc9449_resource_proof_with_ath() {
    let at = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    assert_eq!(
        sha256_b64url(at),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
    let req = DpopRequest::new("GET", "https://resource.example.org/protectedresource")
        .with_access_token(at);
    let v = rfc9449_validator(1_562_262_618, guard())
        .validate(vector("dpop-resource"), &req)
        .unwrap();
    assert_eq!(
        v.claims().ath.as_deref(),
        Some("fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo")
    );
    assert_eq!(v.claims().jti, "e1j3V_bKic8-LAEB");
    // The access token of RFC 9449 section 6.1 is bound to this key.
    v.check_binding(RFC9449_JKT).unwrap();
    // With another access token, `ath` does not match.
    let other = DpopRequest::new("GET", "https://resource.example.org/protectedresource")
        .with_access_token("x");
    assert_eq!(
        rfc9449_validator(1_562_262_618, guard())
            .validate(vector("dpop-resource"), &other)
            .unwrap_err(),
        JoseError::BindingMismatch("ath")
    );
}

#[test]
fn dpop_replay_covers_the_whole_acceptance_window() {
    let f = DpopFx::new();
    let g = guard();
    let token = f.token(|_, _| {});
    let req = DpopRequest::new("POST", HTU);
    let at = |t: i64| dpop::Validator::new(Arc::new(ManualClock::new(t)), g.clone());
    at(NOW).validate(&token, &req).unwrap();
    // The last second the proof is acceptable by `iat` (300 s window + 30 s leeway).
    assert_eq!(
        at(NOW + 330).validate(&token, &req).unwrap_err(),
        JoseError::Replayed
    );
    assert_eq!(
        at(NOW + 331).validate(&token, &req).unwrap_err(),
        JoseError::TooOld {
            iat: NOW,
            now: NOW + 331
        }
    );
}

#[test]
fn wpt_replay_covers_the_whole_acceptance_window() {
    let f = WptFx::new();
    let g = guard();
    let token = f.token(|_, _| {});
    let at = |t: i64| wpt::Validator::new([AUTHORITY], Arc::new(ManualClock::new(t)), g.clone());
    at(NOW).validate(&token, &f.wit, &f.request()).unwrap();
    // `exp` NOW + 60 with 30 s leeway: acceptable until NOW + 89.
    assert_eq!(
        at(NOW + 89)
            .validate(&token, &f.wit, &f.request())
            .unwrap_err(),
        JoseError::Replayed
    );
    assert_eq!(
        at(NOW + 90)
            .validate(&token, &f.wit, &f.request())
            .unwrap_err(),
        JoseError::Expired {
            exp: NOW + 60,
            now: NOW + 90
        }
    );
}
