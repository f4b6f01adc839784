//! Integration tests of aims-server: the real server, in-process, on temporary sockets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "it/common.rs"]
mod common;

#[path = "it/admin.rs"]
mod admin;
#[path = "it/federation.rs"]
mod federation;
#[path = "it/http.rs"]
mod http;
#[path = "it/interop_oauth.rs"]
mod interop_oauth;
#[path = "it/interop_python.rs"]
mod interop_python;
#[path = "it/keys.rs"]
mod keys;
#[path = "it/mtls.rs"]
mod mtls;
#[path = "it/oauth.rs"]
mod oauth;
#[path = "it/oauth_code.rs"]
mod oauth_code;
#[path = "it/oauth_mtls.rs"]
mod oauth_mtls;
#[path = "it/oauth_rs.rs"]
mod oauth_rs;
#[path = "it/oauth_secrets.rs"]
mod oauth_secrets;
#[path = "it/pdp.rs"]
mod pdp;
#[path = "it/workload.rs"]
mod workload;
