//! The SPIFFE Workload API server of AIMS (specs.md 2.10, 2.3, 2.9).
//!
//! Local workloads connect over a Unix socket and receive their identities without
//! presenting any credential: the server asks the kernel who the caller is
//! (`SO_PEERCRED`), turns that into selectors ([`attest`]), and serves the SVIDs of the
//! registration entries whose selectors all match. Everything else (entries, CA, signing
//! keys, bundles) comes from an [`IdentityProvider`].
//!
//! | Module | What |
//! |---|---|
//! | [`server`] | [`WorkloadApi`]: the gRPC service over a Unix socket, header check, per-call attestation, the streams |
//! | [`attest`] | [`Attestor`], [`PeerInfo`] and the [`UnixAttestor`] (`unix:` selectors) |
//! | [`provider`] | [`IdentityProvider`], the one interface to the rest of AIMS, and [`ProviderError`] |
//! | [`static_provider`] | [`StaticProvider`]: an in-memory provider for tests, examples and benchmarks |
//! | [`pb`] | the generated protobuf messages and gRPC stubs (`proto/workload.proto`) |
//!
//! # Wire contract
//!
//! * Service `SpiffeWorkloadAPI` without a proto package, so the paths are
//!   `/SpiffeWorkloadAPI/<Method>`, as every SPIFFE client library expects.
//! * Every call must carry the metadata `workload.spiffe.io: true`
//!   ([`SECURITY_HEADER`]); otherwise `InvalidArgument`.
//! * Every call is attested on its own; a stream keeps the selectors of its first
//!   attestation for its whole life.
//! * Trust-domain keyed maps (`federated_bundles`, `bundles`) are keyed by the trust
//!   domain's SPIFFE ID, e.g. `spiffe://example.org`.
//!
//! | RPC | Behaviour |
//! |---|---|
//! | `FetchX509SVID` | first message at once: one X509-SVID (fresh key) per matching entry, the trust domain's X.509 authorities and the federated bundles of those entries; `PermissionDenied` if no entry matches. A new message whenever an SVID passes half its lifetime (re-issued with a new key), the bundles change, or the caller's matching entries change; a stream whose caller lost every entry ends with `PermissionDenied`. |
//! | `FetchX509Bundles` | the own trust domain's X.509 authorities plus the bundles the caller's entries federate with; a new message on change |
//! | `FetchJWTSVID` | `audience` required (`InvalidArgument`); one JWT-SVID per distinct SPIFFE ID of the caller, or only the requested `spiffe_id` (`PermissionDenied` if it is not the caller's); lifetime = the entry's `jwt_ttl` |
//! | `FetchJWTBundles` | JWK Sets of `jwt-svid` keys (own + federated of the caller's entries); a new message on change |
//! | `ValidateJWTSVID` | `audience` and `svid` required (`InvalidArgument`); validated with the JWT-SVID rules against the caller's bundles only (own trust domain plus those its entries federate with, as `FetchJWTBundles` sends them); `InvalidArgument` if the token is invalid or of another trust domain; the claims are returned as a `google.protobuf.Struct` |
//! | `FetchWITSVID` | like `FetchX509SVID` for WIT-SVIDs: per identity a fresh ES256 key pair, delivered as a private JWK, and a WIT-SVID binding it; re-issued at half-life; `Unimplemented` if the provider has no WIT-SVID support |
//! | `FetchWITBundles` | JWK Sets of `wit-svid` keys; `Unimplemented` without WIT-SVID support |
//!
//! Errors follow the SPIFFE Workload Endpoint specification: `InvalidArgument` (do not
//! retry), `PermissionDenied` and `Unavailable` (retry with back-off), `Unimplemented`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::indexing_slicing)]

pub mod attest;
mod convert;
pub mod provider;
pub mod server;
mod service;
mod state;
pub mod static_provider;
mod wit_key;

/// The generated protobuf messages and gRPC client and server of `proto/workload.proto`.
///
/// Regenerate with `cargo run -p xtask -- gen-proto`; do not edit by hand.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
pub mod pb {
    include!("pb/workload.rs");
}

pub use attest::{AttestError, Attestor, PeerInfo, UnixAttestor};
pub use provider::{IdentityProvider, ProviderError};
pub use server::{
    DEFAULT_MAX_CONNECTIONS_PER_UID, MAX_STREAMS_PER_CONNECTION, SECURITY_HEADER, WorkloadApi,
    WorkloadError, bind, serve,
};
pub use static_provider::StaticProvider;
