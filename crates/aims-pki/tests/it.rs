//! The one integration test binary of aims-pki (each file under `tests/` would be another
//! binary to build and link).
// Test code: panicking on an unexpected value is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "it/bundle.rs"]
mod bundle;
#[path = "it/ca.rs"]
mod ca;
#[path = "it/common.rs"]
mod common;
#[path = "it/svid_rules.rs"]
mod svid_rules;
#[path = "it/svid_vectors.rs"]
mod svid_vectors;
#[path = "it/tls.rs"]
mod tls;
