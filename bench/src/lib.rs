//! Criterion benchmarks live in `benches/`; the Workload API load harness is the
//! `workload_load` binary (`src/bin/workload_load.rs`), the AuthZEN one `pdp_load`
//! (`src/bin/pdp_load.rs`). See `bench/README.md`.

pub mod pdp_fixture;
