//! Foundation benchmarks, run side by side so ratios are meaningful:
//! raw ES256 sign and verify, JWT-SVID create and validate, DPoP proof validation,
//! and X509-SVID issuance (key generation plus signing).
//!
//! `cargo bench -p aims-bench --bench foundation`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

use aims_core::{Clock, ManualClock, SpiffeId, TrustDomain};
use aims_crypto::{Algorithm, Jwks, Signer, SigningKey, VerifyingKey};
use aims_jose::jwt_svid::{self, JwtSvidClaims};
use aims_jose::replay::MemoryReplayGuard;
use aims_jose::{StaticKeys, dpop};
use aims_pki::CertificateAuthority;

const NOW: i64 = 1_780_000_000;

fn es256(c: &mut Criterion) {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let msg = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9hZ2VudCJ9";
    let sig = key.sign(msg).unwrap();
    let vk = key.verifying_key().clone();
    let jwk = key.public_jwk().clone();
    let mut g = c.benchmark_group("es256");
    g.bench_function("sign", |b| b.iter(|| key.sign(black_box(msg)).unwrap()));
    g.bench_function("verify", |b| {
        b.iter(|| {
            vk.verify(Algorithm::ES256, black_box(msg), black_box(&sig))
                .unwrap()
        })
    });
    // The same verification when the key must first be parsed from a JWK (what a DPoP
    // proof needs, since its key arrives in the proof).
    g.bench_function("verify_with_jwk_parse", |b| {
        b.iter(|| {
            VerifyingKey::from_jwk(black_box(&jwk))
                .unwrap()
                .verify(Algorithm::ES256, black_box(msg), black_box(&sig))
                .unwrap()
        })
    });
    g.finish();
}

fn jwt_svid(c: &mut Criterion) {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    let sub = SpiffeId::parse("spiffe://example.org/agent/planner").unwrap();
    let claims = JwtSvidClaims::new(sub, "spiffe://example.org/api", NOW, 300);
    let token = jwt_svid::create(&claims, &key).unwrap();
    let mut keys = StaticKeys::new();
    keys.add_jwks(
        "example.org",
        &Jwks {
            keys: vec![key.public_jwk().clone()],
        },
    );
    let validator = jwt_svid::Validator::new(clock, "spiffe://example.org/api");
    let mut g = c.benchmark_group("jwt_svid");
    g.bench_function("create", |b| {
        b.iter(|| jwt_svid::create(black_box(&claims), &key).unwrap())
    });
    g.bench_function("validate", |b| {
        b.iter(|| validator.validate(black_box(&token), &keys).unwrap())
    });
    g.finish();
}

fn dpop_proof(c: &mut Criterion) {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    let replay = Arc::new(MemoryReplayGuard::new(10_000_000));
    let validator = dpop::Validator::new(clock, replay);
    let htu = "https://as.example.org/token";
    let req = dpop::DpopRequest::new("POST", htu);
    let mut g = c.benchmark_group("dpop");
    // Each iteration validates a fresh proof (a replayed one would be refused); making
    // the proof is setup and is not measured.
    g.bench_function("validate", |b| {
        b.iter_batched(
            || dpop::create_proof(&key, "POST", htu, None, None, NOW).unwrap(),
            |proof| validator.validate(black_box(&proof), &req).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn x509_svid(c: &mut Criterion) {
    let td = TrustDomain::new("example.org").unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    let ca = CertificateAuthority::new_root(&td, Duration::from_secs(86_400 * 365), clock).unwrap();
    let id = SpiffeId::parse("spiffe://example.org/agent/planner").unwrap();
    let mut g = c.benchmark_group("x509_svid");
    g.bench_function("issue", |b| {
        b.iter(|| {
            ca.issue_x509_svid(black_box(&id), Duration::from_secs(3600), &[])
                .unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = es256, jwt_svid, dpop_proof, x509_svid
}
criterion_main!(benches);
