//! The one integration test binary of `aims-pdp`: the AuthZEN certification scenario
//! over real HTTP, transport details, the engine's loading/reload rules and the
//! indexed-versus-full differential test, and the AuthZEN interop Todo decision table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod differential;
mod engine;
mod http;
mod interop;
mod support;
mod todo_harness;
