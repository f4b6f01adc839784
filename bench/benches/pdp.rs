//! PDP evaluation in-process with 10, 1,000 and 10,000 policies, all but a handful
//! scoped to other agents or tools (`aims_bench::pdp_fixture`). The flat-cost target:
//! the 10,000-policy median within 2x of the 10-policy one, and at most 20 µs.
//!
//! `cargo bench -p aims-bench --bench pdp`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use aims_bench::pdp_fixture::{bundle, request};
use aims_pdp::{Evaluation, Pdp};
use criterion::{Criterion, criterion_group, criterion_main};

fn evaluate(c: &mut Criterion) {
    let req = request();
    let mut g = c.benchmark_group("pdp");
    for n in [10usize, 1_000, 10_000] {
        let pdp = Pdp::new(&bundle(n)).unwrap();
        assert!(
            pdp.evaluate_with(&req, Evaluation::Indexed)
                .unwrap()
                .decision
        );
        g.bench_function(format!("indexed/{n}"), |b| {
            b.iter(|| {
                pdp.evaluate_with(black_box(&req), Evaluation::Indexed)
                    .unwrap()
            })
        });
        if n <= 1_000 {
            // The same decision over every policy, for comparison.
            g.bench_function(format!("full/{n}"), |b| {
                b.iter(|| {
                    pdp.evaluate_with(black_box(&req), Evaluation::Full)
                        .unwrap()
                })
            });
        }
    }
    // With the audit event (no subscriber installed: the cost of the check).
    let pdp = Pdp::new(&bundle(10_000)).unwrap();
    g.bench_function("indexed_audited/10000", |b| {
        b.iter(|| pdp.evaluate(black_box(&req), "bench").unwrap())
    });
    g.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
