//! The one integration test binary of `aims-core` (one binary per crate keeps link times
//! down). Each module covers one area of the public API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod id_api;
mod id_props;
mod id_vectors;
