//! Integration tests of the `aims` binary: each runs the real executable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "it/ca.rs"]
mod ca;
#[path = "it/support.rs"]
mod support;
#[path = "it/token.rs"]
mod token;
