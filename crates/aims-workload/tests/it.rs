//! The one integration test binary of aims-workload: a real Workload API server on a
//! temporary Unix socket, a real CA, and two kinds of clients (the Rust `spiffe` crate and
//! a raw tonic client for header and error cases).
//!
//! `attest::helper_client_mode` doubles as the client process of the attestation test:
//! the test copies this binary twice and runs the copies with `AIMS_WL_HELPER_SOCKET`
//! set (see `it/attest.rs`).
// Test code: panicking on an unexpected value is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "it/attest.rs"]
mod attest;
#[path = "it/common.rs"]
mod common;
#[path = "it/errors.rs"]
mod errors;
#[path = "it/jwt.rs"]
mod jwt;
#[path = "it/rotation.rs"]
mod rotation;
#[path = "it/wit.rs"]
mod wit;
#[path = "it/x509.rs"]
mod x509;
