//! The one integration test binary of aims-store (each file under `tests/` would be another
//! binary to build and link).
//!
//! `suite.rs` is the conformance suite, written once against `Store`; `backends.rs` runs it
//! on a SQLite file, SQLite in memory, and PostgreSQL (`AIMS_TEST_PG_URL`, see
//! `scripts/pg-start`); `sqlite.rs` holds what only SQLite has (file mode, crash safety).
// Test code: panicking on an unexpected value is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "it/backends.rs"]
mod backends;
#[path = "it/fixtures.rs"]
mod fixtures;
#[path = "it/sqlite.rs"]
mod sqlite;
#[path = "it/suite.rs"]
mod suite;
