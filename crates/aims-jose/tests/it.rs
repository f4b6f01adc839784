//! Integration tests for aims-jose: spec vectors and cross-profile checks.
#[path = "it/oauth_svid.rs"]
mod oauth_svid;
#[path = "it/wimse_dpop.rs"]
mod wimse_dpop;
