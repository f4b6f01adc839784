//! The aims-guard integration tests: one binary, real servers on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod dpop;
mod mtls;
mod nested;
mod resource;
mod shared;
mod wimse;
