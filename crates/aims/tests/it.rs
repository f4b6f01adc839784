//! Integration tests of the `aims` binary: the real server as a child process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "it/daemon.rs"]
mod daemon;

#[path = "it/cli.rs"]
mod cli;
#[path = "it/serve.rs"]
mod serve;
