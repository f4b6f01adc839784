//! Integration tests for aims-jose: spec vectors and cross-profile checks.
mod oauth_svid;
mod wimse_dpop;
