//! Integration tests of the `aims` binary: each runs the real executable (the server as
//! a child process where needed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "it/agent_e2e.rs"]
mod agent_e2e;
#[path = "it/ca.rs"]
mod ca;
#[path = "it/cli.rs"]
mod cli;
#[path = "it/client.rs"]
mod client;
#[path = "it/daemon.rs"]
mod daemon;
#[path = "it/policy.rs"]
mod policy;
#[path = "it/serve.rs"]
mod serve;
#[path = "it/signed_response.rs"]
mod signed_response;
#[path = "it/support.rs"]
mod support;
#[path = "it/token.rs"]
mod token;
#[path = "it/user.rs"]
mod user;
