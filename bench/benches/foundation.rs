//! Foundation benchmarks, run side by side so ratios are meaningful:
//! raw ES256 sign and verify, JWT-SVID create and validate, DPoP proof validation,
//! and X509-SVID issuance (key generation plus signing).
//!
//! `cargo bench -p aims-bench --bench foundation`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use aims_crypto::{Algorithm, Signer, SigningKey};

fn es256(c: &mut Criterion) {
    let key = SigningKey::generate(Algorithm::ES256).expect("key");
    let msg = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9hZ2VudCJ9";
    let sig = key.sign(msg).expect("sign");
    let vk = key.verifying_key().clone();
    let mut g = c.benchmark_group("es256");
    g.bench_function("sign", |b| {
        b.iter(|| key.sign(black_box(msg)).expect("sign"))
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            vk.verify(Algorithm::ES256, black_box(msg), black_box(&sig))
                .expect("verify")
        })
    });
    g.finish();
}

criterion_group!(benches, es256);
criterion_main!(benches);
