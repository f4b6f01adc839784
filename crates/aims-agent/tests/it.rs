//! Integration tests: the real AIMS server (in process), its Workload API over a Unix
//! socket, and the agent's source and client against real TLS and HTTP servers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod it {
    mod client;
    mod common;
    mod mtls;
    mod source;
}
