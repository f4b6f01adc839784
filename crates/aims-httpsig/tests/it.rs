//! The one integration test binary of `aims-httpsig`: RFC 9421 vectors, the WIMSE
//! draft's examples, and the WIMSE profile rules end to end.
// Test helpers outside `#[test]` functions may unwrap too (as in the other crates' tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "it/interop.rs"]
mod interop;
#[path = "it/props.rs"]
mod props;
#[path = "it/rfc9421.rs"]
mod rfc9421;
#[path = "it/support.rs"]
mod support;
#[path = "it/wimse_profile.rs"]
mod wimse_profile;
#[path = "it/wimse_vectors.rs"]
mod wimse_vectors;
