//! Integration tests of the authorization server logic over a real SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod it {
    mod code_flow;
    mod common;
    mod tokens;
}
