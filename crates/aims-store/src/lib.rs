//! Persistence for AIMS: registration entries, signing keys, federated bundles,
//! single-use values, and the OAuth authorization server's clients, grants and users, on
//! SQLite or PostgreSQL.
//!
//! [`Store`] is the one entry point. [`Store::connect`] takes a `sqlite:` or `postgres://`
//! URL and applies the embedded migrations (`migrations/sqlite`, `migrations/postgres`).
//!
//! | Aggregate | Methods | Guarantees |
//! |---|---|---|
//! | Registration entries | `create_entry`, `get_entry`, `list_entries`, `update_entry`, `delete_entry`, `entry_changes_since` | one row per entry (selectors included), one entry per (SPIFFE ID, selector set), optimistic revisions, a global change sequence in commit order |
//! | Signing keys | `put_key`, `get_key`, `list_keys`, `set_key_states`, `rotate_keys`, `delete_key`, `seal_key_material` | at most one `Current` and one `Next` per kind; rotations all or nothing; private keys zeroised on drop and never in `Debug` |
//! | Federated bundles | `put_bundle`, `get_bundle`, `list_bundles`, `delete_bundle` | a bundle never replaced by a lower sequence number |
//! | Single use | `use_once`, `use_once_many`, `is_used`, `sweep_expired` | exactly one `true` per (scope, item) while unexpired, across nodes |
//! | OAuth clients | `create_client`, `get_client`, `list_clients`, `update_client`, `delete_client` | an opaque JSON document per client id, optimistic revisions; deleting a client revokes its grants in the same transaction |
//! | OAuth grants | `put_grant`, `put_grants`, `get_grant`, `consume_grant`, `consume_grant_and_put`, `revoke_grant`, `revoke_family`, `revoke_client_grants`, `sweep_grants` | keyed by a hash the caller computes (never a secret); exactly one `Consumed` per grant across nodes, later uses reported as `Reused`; a use and the grants it issues in one transaction; a family revocation reaches an exchange still in flight; deleting a user revokes their grants |
//! | Browser state | `put_browser_state`, `get_browser_state`, `rebind_browser_state`, `replace_browser_state`, `take_browser_state`, `delete_browser_state`, `sweep_browser_state` | login sessions, pending authorization requests and failed-login counts keyed by a hash the caller computes; a record moved to another session, replaced (compare and swap) or taken (single use) by one statement, so exactly one of concurrent callers succeeds, across nodes; expired records are never returned |
//! | Users | `create_user`, `get_user`, `list_users`, `set_user_password`, `set_user_attributes`, `set_user_disabled`, `delete_user` | the caller's PHC hash, never a password, and never in `Debug` |
//!
//! # Design
//!
//! * **One logic, two databases.** The statements are written once in a private
//!   repository generic over the sqlx database (`repo.rs`); the facade holds either a
//!   SQLite or a PostgreSQL instance of it and forwards each call. What differs between the
//!   databases is confined to a small `Dialect` trait and to the two migration folders.
//!   One conformance suite (`tests/it/suite.rs`) runs on SQLite (file and memory) and on
//!   PostgreSQL.
//! * **Runtime queries.** `sqlx::query` with `$N` placeholders (SQLite accepts them too);
//!   no compile-time macros, so building needs no database.
//! * **Entries are one row.** Selectors, DNS names and federated trust domains are JSON
//!   arrays in the entry's row (JSONB on PostgreSQL), so an entry is written and read
//!   atomically without joins, and the in-memory matcher receives whole entries. Uniqueness
//!   of (SPIFFE ID, selector set) is a unique index on a SHA-256 of both.
//! * **OAuth without OAuth.** Clients, grants and users carry JSON documents defined by
//!   `aims-oauth`, kept exactly as written (TEXT on both databases); the store checks only
//!   that they are JSON objects, and knows states and expiry times, not protocol rules.
//! * **Durability.** SQLite runs in WAL mode with `synchronous=FULL`: a commit that
//!   returned survives `kill -9` and power loss, and a crash mid-transaction leaves nothing.
//!   The database file is created owner-only (0600).
//!
//! Times are Unix seconds passed in by the caller (`now`), so tests control them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::indexing_slicing)]

mod error;
mod model;
mod repo;
mod store;

pub use error::StoreError;
pub use model::{
    BrowserState, BrowserStateKind, BundleRecord, ConsumeOutcome, EntryChange, EntryChanges,
    GrantKind, GrantRecord, GrantState, KeyKind, KeyRecord, KeyState, NewGrant, OAuthClientRecord,
    UserRecord,
};
pub use store::{Store, USE_ONCE_MAX_BATCH};
