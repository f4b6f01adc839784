//! [`Store`]: the facade the server uses, and how it connects.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aims_core::{RegistrationEntry, TrustDomain};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreError;
use crate::model::{
    BrowserState, BrowserStateKind, BundleRecord, ConsumeOutcome, EntryChanges, GrantKind,
    GrantRecord, KeyKind, KeyRecord, KeyState, NewGrant, OAuthClientRecord, UserRecord,
};
use crate::repo::{Repo, migrator};

/// Migrations for SQLite, compiled into the binary.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "oauth",
        include_str!("../migrations/sqlite/0002_oauth.sql"),
    ),
    (
        3,
        "browser state",
        include_str!("../migrations/sqlite/0003_browser_state.sql"),
    ),
    (
        4,
        "grants by subject",
        include_str!("../migrations/sqlite/0004_grants_by_subject.sql"),
    ),
];

/// Migrations for PostgreSQL, compiled into the binary.
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "oauth",
        include_str!("../migrations/postgres/0002_oauth.sql"),
    ),
    (
        3,
        "browser state",
        include_str!("../migrations/postgres/0003_browser_state.sql"),
    ),
    (
        4,
        "grants by subject",
        include_str!("../migrations/postgres/0004_grants_by_subject.sql"),
    ),
];

/// How long a SQLite writer waits for the write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections per pool for a SQLite file (one writer at a time anyway; the rest read).
const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// The most items [`Store::use_once_many`] takes in one call (2 bind parameters each,
/// well below SQLite's and PostgreSQL's limits).
pub const USE_ONCE_MAX_BATCH: usize = 512;

/// Connections per pool for PostgreSQL.
const POSTGRES_MAX_CONNECTIONS: u32 = 10;

/// The bounds of every pooled PostgreSQL session: `lock_timeout` as long as
/// [`SQLITE_BUSY_TIMEOUT`], and `idle_in_transaction_session_timeout` a minute.
const POSTGRES_SESSION_BOUNDS: &str =
    "SET lock_timeout = '10s'; SET idle_in_transaction_session_timeout = '60s'";

/// How long to wait for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// The AIMS database: registration entries, signing keys, federated bundles, single-use
/// values, and the OAuth authorization server's clients, grants and users, on SQLite or
/// PostgreSQL.
///
/// Cloning is cheap (a pool handle); clones share the connection pool.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    clients: Arc<ClientCache>,
}

/// Recently read OAuth clients, for [`Store::get_client_cached`]. Every write of a
/// client through this store (or a clone) invalidates it at once.
#[derive(Debug, Default)]
struct ClientCache {
    inner: Mutex<ClientCacheInner>,
}

#[derive(Debug, Default)]
struct ClientCacheInner {
    /// Moves at every invalidation, so a read that raced with a write is not cached.
    generation: u64,
    entries: HashMap<String, (Instant, OAuthClientRecord)>,
}

/// The most clients [`Store::get_client_cached`] keeps (it starts over when full).
const CLIENT_CACHE_ENTRIES: usize = 10_000;

impl ClientCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, ClientCacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn invalidate(&self, client_id: &str) {
        let mut c = self.lock();
        c.generation = c.generation.wrapping_add(1);
        c.entries.remove(client_id);
    }
}

#[derive(Clone)]
enum Backend {
    Sqlite(Repo<sqlx::Sqlite>),
    Postgres(Repo<sqlx::Postgres>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL: it may hold a password.
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish()
    }
}

/// Calls the same method on whichever backend the store has.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* $(,)? )) => {
        match &$self.backend {
            Backend::Sqlite(r) => r.$method($($arg),*).await,
            Backend::Postgres(r) => r.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens the database at `url` and applies the embedded migrations.
    ///
    /// * `sqlite://PATH?mode=rwc` (created if missing) or `sqlite://PATH` (must exist):
    ///   the file is created with mode 0600 and tightened to 0600 if it is wider (it holds
    ///   private keys); WAL journal, `synchronous=FULL`, `secure_delete=ON`, foreign keys on.
    /// * `sqlite::memory:`: a private in-memory database with one connection, for tests.
    /// * `postgres://USER:PASSWORD@HOST:PORT/DB` (or `postgresql://`), with sqlx's URL
    ///   parameters (`sslmode`, …); TLS uses rustls with aws-lc-rs.
    ///
    /// Errors never repeat the URL (it may hold a password).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            connect_sqlite(url).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            connect_postgres(url).await
        } else {
            Err(StoreError::Invalid(
                "database URL must start with sqlite: or postgres://".to_owned(),
            ))
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self.ping())
    }

    /// Closes every pooled connection; later calls fail. Waits for checked-out
    /// connections to come back.
    pub async fn close(&self) {
        dispatch!(self.close())
    }

    // ----- registration entries -----

    /// Stores a new entry and returns it as stored.
    ///
    /// An empty `id` gets a fresh random one (32 lowercase hex characters); a given id must
    /// have that form. `revision` becomes 1, `created_at` and `updated_at` become `now`.
    /// The entry must pass [`RegistrationEntry::validate`] (else [`StoreError::Invalid`]).
    /// [`StoreError::Conflict`] if the id is taken or another entry has the same SPIFFE ID
    /// and the same set of selectors.
    pub async fn create_entry(
        &self,
        entry: RegistrationEntry,
        now: i64,
    ) -> Result<RegistrationEntry, StoreError> {
        dispatch!(self.create_entry(entry, now))
    }

    /// The entry with this id ([`StoreError::NotFound`] if none).
    pub async fn get_entry(&self, id: &str) -> Result<RegistrationEntry, StoreError> {
        dispatch!(self.get_entry(id))
    }

    /// Every entry, oldest first.
    pub async fn list_entries(&self) -> Result<Vec<RegistrationEntry>, StoreError> {
        dispatch!(self.list_entries())
    }

    /// Replaces the entry `entry.id` if its stored revision is `expected_revision`
    /// (optimistic concurrency), and returns it as stored: revision + 1, `updated_at = now`,
    /// `created_at` kept. The `revision`, `created_at` and `updated_at` fields of `entry`
    /// are ignored.
    ///
    /// [`StoreError::NotFound`] if there is no such entry; [`StoreError::Conflict`] if the
    /// revision moved on or the new (SPIFFE ID, selectors) pair belongs to another entry.
    pub async fn update_entry(
        &self,
        entry: RegistrationEntry,
        expected_revision: u64,
        now: i64,
    ) -> Result<RegistrationEntry, StoreError> {
        dispatch!(self.update_entry(entry, expected_revision, now))
    }

    /// Deletes the entry ([`StoreError::NotFound`] if none) and records the deletion in
    /// the change sequence.
    pub async fn delete_entry(&self, id: &str) -> Result<(), StoreError> {
        dispatch!(self.delete_entry(id))
    }

    /// The entries changed after position `seq` of the global change sequence, for
    /// keeping an in-memory cache of entries in step on every node.
    ///
    /// Start with `0` (every live entry comes back as a put, every deleted one as a
    /// delete), then pass the returned [`EntryChanges::seq`] each time. The sequence only
    /// grows; a returned `seq` lower than the one passed means the database was replaced:
    /// reload from `0`.
    pub async fn entry_changes_since(&self, seq: u64) -> Result<EntryChanges, StoreError> {
        dispatch!(self.entry_changes_since(seq))
    }

    // ----- signing keys -----

    /// Stores a new key. [`StoreError::Conflict`] if `(kind, kid)` exists, or if the key
    /// is `Current` or `Next` and its kind already has a key in that state.
    pub async fn put_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        dispatch!(self.put_key(key))
    }

    /// Replaces a key's stored material (`pkcs8`) with `sealed` (which starts with
    /// `sealed_prefix`) unless it already starts with that prefix: a plain key is sealed in
    /// place once, and of nodes doing the same, one wins (`true` for it; `false` if the key
    /// is gone or sealed already). Everything else about the key stays. On SQLite the old
    /// bytes then leave the file and the WAL at once, as after [`Store::delete_key`].
    pub async fn seal_key_material(
        &self,
        kind: KeyKind,
        kid: &str,
        sealed_prefix: &[u8],
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        dispatch!(self.seal_key_material(kind, kid, sealed_prefix, sealed))
    }

    /// One key ([`StoreError::NotFound`] if none).
    pub async fn get_key(&self, kind: KeyKind, kid: &str) -> Result<KeyRecord, StoreError> {
        dispatch!(self.get_key(kind, kid))
    }

    /// Every key of a kind, oldest first.
    pub async fn list_keys(&self, kind: KeyKind) -> Result<Vec<KeyRecord>, StoreError> {
        dispatch!(self.list_keys(kind))
    }

    /// Sets the states of stored keys of one kind, all or nothing.
    ///
    /// The order of `states` does not matter (a swap of `Current` and `Next` works). Fails
    /// without changing anything with [`StoreError::NotFound`] if a kid is unknown, and
    /// with [`StoreError::Conflict`] if the result would have two `Current` or two `Next`
    /// keys of the kind.
    pub async fn set_key_states(
        &self,
        kind: KeyKind,
        states: &[(&str, KeyState)],
    ) -> Result<(), StoreError> {
        dispatch!(self.rotate_keys(kind, None, states))
    }

    /// A rotation in one transaction: inserts `new_key` (if any, with its own `state`)
    /// and sets the states of stored keys as [`Store::set_key_states`] does.
    ///
    /// The usual step: `rotate_keys(kind, Some(&fresh /* Next */), &[(old, Previous),
    /// (next, Current)])`.
    pub async fn rotate_keys(
        &self,
        kind: KeyKind,
        new_key: Option<&KeyRecord>,
        states: &[(&str, KeyState)],
    ) -> Result<(), StoreError> {
        dispatch!(self.rotate_keys(kind, new_key, states))
    }

    /// Deletes a key ([`StoreError::NotFound`] if none). On SQLite, `secure_delete`
    /// overwrites the freed pages.
    pub async fn delete_key(&self, kind: KeyKind, kid: &str) -> Result<(), StoreError> {
        dispatch!(self.delete_key(kind, kid))
    }

    // ----- federated bundles -----

    /// Stores or replaces the bundle of a federated trust domain.
    ///
    /// [`StoreError::Conflict`] if the stored bundle has a higher sequence number (an equal
    /// one replaces it); [`StoreError::Invalid`] if `bundle_json` is not a JSON object.
    pub async fn put_bundle(&self, bundle: &BundleRecord) -> Result<(), StoreError> {
        dispatch!(self.put_bundle(bundle))
    }

    /// The bundle of a trust domain ([`StoreError::NotFound`] if none).
    pub async fn get_bundle(&self, trust_domain: &TrustDomain) -> Result<BundleRecord, StoreError> {
        dispatch!(self.get_bundle(trust_domain))
    }

    /// Every stored bundle, by trust domain.
    pub async fn list_bundles(&self) -> Result<Vec<BundleRecord>, StoreError> {
        dispatch!(self.list_bundles())
    }

    /// Deletes a trust domain's bundle ([`StoreError::NotFound`] if none).
    pub async fn delete_bundle(&self, trust_domain: &TrustDomain) -> Result<(), StoreError> {
        dispatch!(self.delete_bundle(trust_domain))
    }

    // ----- single use -----

    /// Records that `item` was used in `scope` (e.g. `jti:<issuer>`, `dpop-nonce`,
    /// `authz-code`) until `expires_at`: `true` the first time, `false` while an unexpired
    /// record exists. An expired record counts as absent.
    ///
    /// Safe across processes and nodes sharing the database: of many concurrent calls with
    /// the same `(scope, item)`, exactly one gets `true`. Scopes are 1–64 printable ASCII
    /// characters, items 1–1024 bytes without NUL (hash longer values), and `expires_at`
    /// must be after `now` ([`StoreError::Invalid`] otherwise).
    pub async fn use_once(
        &self,
        scope: &str,
        item: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.use_once(scope, item, expires_at, now))
    }

    /// Whether `item` is recorded in `scope` and unexpired at `now` (a read: records
    /// nothing).
    pub async fn is_used(&self, scope: &str, item: &str, now: i64) -> Result<bool, StoreError> {
        dispatch!(self.is_used(scope, item, now))
    }

    /// [`Store::use_once`] for many items of one scope in one statement (one commit): for
    /// each `(item, expires_at)`, in order, `true` if this call recorded it. An item given
    /// twice counts once: its first occurrence may get `true`, the later ones get
    /// `false`. At most [`USE_ONCE_MAX_BATCH`] items; every item is checked as by
    /// [`Store::use_once`] and none is recorded if one is invalid.
    pub async fn use_once_many(
        &self,
        scope: &str,
        items: &[(&str, i64)],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        if items.len() > USE_ONCE_MAX_BATCH {
            return Err(StoreError::Invalid(format!(
                "at most {USE_ONCE_MAX_BATCH} single-use values per call"
            )));
        }
        dispatch!(self.use_once_many(scope, items, now))
    }

    /// Deletes single-use records that expired at or before `now`; returns how many.
    /// Deletes in chunks of a few hundred, each its own transaction, so concurrent
    /// writers are not held up by a large sweep.
    pub async fn sweep_expired(&self, now: i64) -> Result<u64, StoreError> {
        dispatch!(self.sweep_expired(now))
    }
    // ----- OAuth clients -----

    /// Stores a new OAuth client and returns it as stored (revision 1, both times `now`).
    ///
    /// `client_id` is 1 to 255 printable ASCII characters (RFC 6749 `VSCHAR`) and
    /// `document` a JSON object, kept exactly as written ([`StoreError::Invalid`]
    /// otherwise); [`StoreError::Conflict`] if the id is taken.
    pub async fn create_client(
        &self,
        client_id: &str,
        document: &str,
        now: i64,
    ) -> Result<OAuthClientRecord, StoreError> {
        let r = dispatch!(self.create_client(client_id, document, now));
        self.clients.invalidate(client_id);
        r
    }

    /// One client ([`StoreError::NotFound`] if none).
    pub async fn get_client(&self, client_id: &str) -> Result<OAuthClientRecord, StoreError> {
        dispatch!(self.get_client(client_id))
    }

    /// [`Store::get_client`], answered from memory when this store (or a clone) read the
    /// client less than `max_age` ago. A write through this store or its clones is seen
    /// at once; a write by another process or node sharing the database within
    /// `max_age`. Unknown clients are not cached (a new client is found at once).
    pub async fn get_client_cached(
        &self,
        client_id: &str,
        max_age: Duration,
    ) -> Result<OAuthClientRecord, StoreError> {
        let generation = {
            let c = self.clients.lock();
            if let Some((at, record)) = c.entries.get(client_id)
                && at.elapsed() < max_age
            {
                return Ok(record.clone());
            }
            c.generation
        };
        let record = dispatch!(self.get_client(client_id))?;
        let mut c = self.clients.lock();
        if c.generation == generation {
            if c.entries.len() >= CLIENT_CACHE_ENTRIES {
                c.entries.clear();
            }
            c.entries
                .insert(client_id.to_owned(), (Instant::now(), record.clone()));
        }
        Ok(record)
    }

    /// Every client, by client id (bytewise order on both databases).
    pub async fn list_clients(&self) -> Result<Vec<OAuthClientRecord>, StoreError> {
        dispatch!(self.list_clients())
    }

    /// Replaces a client's document and returns the client as stored: revision + 1,
    /// `updated_at = now`.
    ///
    /// With `Some(revision)` the write happens only if the stored revision is that one, in
    /// the same statement (optimistic concurrency: of concurrent updates from one
    /// revision, one wins); `None` writes unconditionally. [`StoreError::NotFound`] if
    /// there is no such client, [`StoreError::Conflict`] if the revision moved on,
    /// [`StoreError::Invalid`] if `document` is not a JSON object.
    pub async fn update_client(
        &self,
        client_id: &str,
        document: &str,
        expected_revision: Option<i64>,
        now: i64,
    ) -> Result<OAuthClientRecord, StoreError> {
        let r = dispatch!(self.update_client(client_id, document, expected_revision, now));
        self.clients.invalidate(client_id);
        r
    }

    /// Deletes a client and, in the same transaction, revokes every grant issued to it;
    /// returns how many grants were revoked. All or nothing: [`StoreError::NotFound`] (no
    /// such client) revokes nothing.
    ///
    /// Grants are not tied to stored clients: one stored for this client id by a
    /// concurrent [`Store::put_grant`] that commits after the deletion stays active, so the
    /// caller checks the client when a grant is used.
    pub async fn delete_client(&self, client_id: &str) -> Result<u64, StoreError> {
        let r = dispatch!(self.delete_client(client_id));
        self.clients.invalidate(client_id);
        r
    }

    // ----- OAuth grants -----

    /// Stores a new grant, [`GrantState::Active`](crate::GrantState::Active).
    ///
    /// The handle is what the caller looks the grant up by (a hash of the secret; the store
    /// never sees secrets). [`StoreError::Conflict`] if the handle exists;
    /// [`StoreError::Invalid`] if a field breaks its rule (see [`NewGrant`]).
    pub async fn put_grant(&self, grant: &NewGrant) -> Result<(), StoreError> {
        self.put_grants(std::slice::from_ref(grant)).await
    }

    /// Stores new grants in one transaction: all of them or none. Errors as
    /// [`Store::put_grant`].
    pub async fn put_grants(&self, grants: &[NewGrant]) -> Result<(), StoreError> {
        dispatch!(self.put_grants(grants))
    }

    /// One grant, in its stored state ([`StoreError::NotFound`] if none). An `Active`
    /// grant may have expired: compare [`GrantRecord::expires_at`] with the clock.
    pub async fn get_grant(&self, handle: &str) -> Result<GrantRecord, StoreError> {
        dispatch!(self.get_grant(handle))
    }

    /// Uses a grant once: an active, unexpired (`expires_at > now`) grant of `kind`
    /// becomes consumed and comes back as [`ConsumeOutcome::Consumed`].
    ///
    /// Atomic across tasks, processes and nodes: the check and the state change are one
    /// `UPDATE`, so of many concurrent calls for one handle exactly one gets `Consumed`
    /// (correct at PostgreSQL's default READ COMMITTED). Otherwise a read tells why:
    /// [`ConsumeOutcome::Reused`] (already consumed: a replay, the caller revokes the
    /// family), [`ConsumeOutcome::Revoked`], [`ConsumeOutcome::Expired`], or
    /// [`ConsumeOutcome::NotFound`] (no such handle, or a grant of another kind).
    pub async fn consume_grant(
        &self,
        handle: &str,
        kind: GrantKind,
        now: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        dispatch!(self.consume_grant(handle, kind, now, &[]))
    }

    /// [`Store::consume_grant`], storing `successors` (what the use issues: the next
    /// refresh token, the access token's record) in the same transaction: when the grant
    /// comes back `Consumed` they are stored, otherwise nothing is. So a failure cannot
    /// leave a refresh token used up with no successor, and whoever later finds the grant
    /// consumed (a replay, which revokes the family) also finds its successors.
    pub async fn consume_grant_and_put(
        &self,
        handle: &str,
        kind: GrantKind,
        now: i64,
        successors: &[NewGrant],
    ) -> Result<ConsumeOutcome, StoreError> {
        dispatch!(self.consume_grant(handle, kind, now, successors))
    }

    /// Revokes one grant (active or consumed); `false` if there is none or it was already
    /// revoked.
    pub async fn revoke_grant(&self, handle: &str) -> Result<bool, StoreError> {
        dispatch!(self.revoke_grant(handle))
    }

    /// Revokes every grant of a family; returns how many were not revoked before. A
    /// [`Store::consume_grant_and_put`] of the family still in flight is waited for, so
    /// its successors are revoked too.
    pub async fn revoke_family(&self, family: &str) -> Result<u64, StoreError> {
        dispatch!(self.revoke_family(family))
    }

    /// Revokes every grant issued to a client in one statement; returns how many were not
    /// revoked before.
    pub async fn revoke_client_grants(&self, client_id: &str) -> Result<u64, StoreError> {
        dispatch!(self.revoke_client_grants(client_id))
    }

    /// Deletes the grants that expired at or before `now` (whatever their state); returns
    /// how many. A consumed grant is kept until it expires, so its replay is reported as
    /// [`ConsumeOutcome::Reused`] until then. Deletes in chunks, as
    /// [`Store::sweep_expired`] does.
    pub async fn sweep_grants(&self, now: i64) -> Result<u64, StoreError> {
        dispatch!(self.sweep_grants(now))
    }

    // ----- browser state -----

    /// Stores a browser-state record under `handle` (a hash of the cookie or request id
    /// the caller hands out; never the id itself), optionally bound to another record's
    /// handle, until `expires_at`.
    ///
    /// Handles and bindings are 16 to 128 printable ASCII characters, `data` a JSON
    /// object, and `expires_at` after `now` ([`StoreError::Invalid`] otherwise).
    /// [`StoreError::Conflict`] if a live record of `kind` has the handle; an expired one
    /// is replaced.
    pub async fn put_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
        binding: Option<&str>,
        data: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.put_browser_state(kind, handle, binding, data, expires_at, now))
    }

    /// The live (`expires_at > now`) record of `kind` under `handle`, if any.
    pub async fn get_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
        now: i64,
    ) -> Result<Option<BrowserState>, StoreError> {
        dispatch!(self.get_browser_state(kind, handle, now))
    }

    /// Moves a live record bound to `from` to `to`, replacing its data, in one statement:
    /// `false` if there is no such live record (or it is bound to another handle). Of
    /// concurrent calls with the same `from`, on any node, at most one succeeds.
    pub async fn rebind_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
        from: &str,
        to: &str,
        data: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.rebind_browser_state(kind, handle, from, to, data, now))
    }

    /// Replaces the data and expiry of a live record whose data is exactly `expected`, in
    /// one statement (compare and swap): `false` if it is gone, expired or changed since
    /// it was read. `data` is a JSON object and `expires_at` after `now`
    /// ([`StoreError::Invalid`] otherwise).
    pub async fn replace_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
        expected: &str,
        data: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.replace_browser_state(kind, handle, expected, data, expires_at, now))
    }

    /// Deletes and returns the data of a live record bound to `binding`, in one
    /// statement: of concurrent calls, on any node, exactly one gets it.
    pub async fn take_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
        binding: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self.take_browser_state(kind, handle, binding, now))
    }

    /// Deletes a record (live or not); `false` if there was none.
    pub async fn delete_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self.delete_browser_state(kind, handle))
    }

    /// Deletes the browser-state records that expired at or before `now`; returns how
    /// many. Deletes in chunks, as [`Store::sweep_expired`] does.
    pub async fn sweep_browser_state(&self, now: i64) -> Result<u64, StoreError> {
        dispatch!(self.sweep_browser_state(now))
    }

    // ----- users -----

    /// Stores a new user, enabled, and returns it as stored (both times `now`).
    ///
    /// `username` is 1 to 128 bytes without control characters, `password_hash` the hash
    /// the caller made (a PHC string, 1 to 1024 printable ASCII characters; the store never
    /// sees passwords), `attributes` a JSON object ([`StoreError::Invalid`] otherwise).
    /// [`StoreError::Conflict`] if the name is taken.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        attributes: &str,
        now: i64,
    ) -> Result<UserRecord, StoreError> {
        dispatch!(self.create_user(username, password_hash, attributes, now))
    }

    /// One user ([`StoreError::NotFound`] if none). Names compare bytewise.
    pub async fn get_user(&self, username: &str) -> Result<UserRecord, StoreError> {
        dispatch!(self.get_user(username))
    }

    /// Every user, by name (bytewise order on both databases).
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        dispatch!(self.list_users())
    }

    /// Replaces a user's password hash ([`StoreError::NotFound`] if none).
    pub async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.set_user_password(username, password_hash, now))
    }

    /// Replaces a user's attributes, a JSON object ([`StoreError::NotFound`] if none).
    pub async fn set_user_attributes(
        &self,
        username: &str,
        attributes: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.set_user_attributes(username, attributes, now))
    }

    /// Disables or enables a user ([`StoreError::NotFound`] if none).
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.set_user_disabled(username, disabled, now))
    }

    /// Deletes a user ([`StoreError::NotFound`] if none) and, in the same transaction,
    /// revokes every grant whose subject is the user; returns how many it revoked.
    pub async fn delete_user(&self, username: &str) -> Result<u64, StoreError> {
        dispatch!(self.delete_user(username))
    }
}

/// The database part and the query of a `sqlite:` URL, split the way sqlx splits them.
fn sqlite_url_parts(url: &str) -> (&str, &str) {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    rest.split_once('?').unwrap_or((rest, ""))
}

async fn connect_sqlite(url: &str) -> Result<Store, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("SQLite URL: {e}")))?
        .foreign_keys(true);
    let (database, query) = sqlite_url_parts(url);
    let param = |p: &str| query.split('&').any(|kv| kv == p);
    let in_memory = database == ":memory:" || param("mode=memory");

    let pool = if in_memory {
        // A shared-cache in-memory database lives as long as one connection is open:
        // keep exactly one, forever.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?
    } else {
        prepare_sqlite_file(options.get_filename(), param("mode=rwc"))?;
        // Durability: WAL with synchronous=FULL fsyncs the WAL at every commit, so a
        // committed transaction survives a process kill *and* a power loss. NORMAL would
        // survive `kill -9` too (the WAL is in the OS cache) but may lose the last commits
        // on power loss, and a signing key or an entry that was acknowledged and then lost
        // is worse than one fsync per write. Writes here are rare (admin changes, key
        // rotation, single-use records), so the cost is small.
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            // Freed pages (deleted keys) are overwritten with zeros.
            .pragma("secure_delete", "ON");
        SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?
    };
    migrator(SQLITE_MIGRATIONS).run(&pool).await?;
    Ok(Store {
        backend: Backend::Sqlite(Repo::new(pool)),
        clients: Arc::default(),
    })
}

/// Creates the database file owner-only before SQLite opens it (SQLite would create it with
/// the umask's mode, typically 0644), or tightens an existing file to 0600. SQLite gives
/// its `-wal` and `-shm` files the main file's mode.
fn prepare_sqlite_file(path: &Path, create: bool) -> Result<(), StoreError> {
    let io = |what: &str, e: std::io::Error| {
        StoreError::Backend(format!("{what} {}: {e}", path.display()))
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err(StoreError::Invalid(format!(
                    "{} is not a regular file",
                    path.display()
                )));
            }
            restrict_mode(path, &meta).map_err(|e| io("cannot restrict the mode of", e))?;
            for suffix in ["-wal", "-shm"] {
                let mut side = path.as_os_str().to_owned();
                side.push(suffix);
                let side = Path::new(&side);
                if let Ok(meta) = std::fs::symlink_metadata(side)
                    && meta.is_file()
                {
                    restrict_mode(side, &meta).map_err(|e| io("cannot restrict the mode of", e))?;
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
            match open.open(path) {
                Ok(_) => Ok(()),
                // Another process created it in between: tighten that one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    prepare_sqlite_file(path, false)
                }
                Err(e) => Err(io("cannot create", e)),
            }
        }
        // Missing without mode=rwc: let SQLite report it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot inspect", e)),
    }
}

#[cfg(unix)]
fn restrict_mode(path: &Path, meta: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_mode(_path: &Path, _meta: &std::fs::Metadata) -> std::io::Result<()> {
    Ok(())
}

async fn connect_postgres(url: &str) -> Result<Store, StoreError> {
    use sqlx::Connection as _;
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("PostgreSQL URL: {e}")))?;
    // Migrations first, on a connection of their own without the lock bounds below: sqlx
    // takes a PostgreSQL advisory lock while migrating, so nodes starting together wait
    // for one another (as long as a migration takes) instead of racing.
    let mut conn = sqlx::PgConnection::connect_with(&options).await?;
    migrator(POSTGRES_MIGRATIONS).run(&mut conn).await?;
    conn.close().await?;
    // A node that stops answering in the middle of a transaction (frozen, cut off) must
    // not hold its row locks until TCP gives up: its session ends after a minute idle in
    // the transaction, and a statement waits at most as long for a lock as SQLite waits
    // for its write lock, then fails (and its request with it) instead of queueing every
    // request of every node behind it. Set per session with `SET` rather than as startup
    // options, which connection poolers such as PgBouncer refuse.
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::raw_sql(POSTGRES_SESSION_BOUNDS).execute(conn).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    Ok(Store {
        backend: Backend::Postgres(Repo::new(pool)),
        clients: Arc::default(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every `<VERSION>_<DESCRIPTION>.sql` file in a migration folder is embedded, in
    /// order, with the content on disk (so adding a file without listing it fails here).
    #[test]
    fn embedded_migrations_match_the_folders() {
        for (dir, embedded) in [
            ("sqlite", SQLITE_MIGRATIONS),
            ("postgres", POSTGRES_MIGRATIONS),
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<(i64, String, String)> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .map(|p| {
                    let stem = p.file_stem().unwrap().to_str().unwrap().to_owned();
                    let (v, d) = stem.split_once('_').unwrap();
                    (
                        v.parse().unwrap(),
                        d.replace('_', " "),
                        std::fs::read_to_string(&p).unwrap(),
                    )
                })
                .collect();
            files.sort();
            let embedded: Vec<(i64, String, String)> = embedded
                .iter()
                .map(|&(v, d, sql)| (v, d.to_owned(), sql.to_owned()))
                .collect();
            assert_eq!(files, embedded, "migrations/{dir}");
        }
    }

    #[test]
    fn sqlite_urls_split_like_sqlx() {
        assert_eq!(sqlite_url_parts("sqlite::memory:"), (":memory:", ""));
        assert_eq!(sqlite_url_parts("sqlite://:memory:"), (":memory:", ""));
        assert_eq!(
            sqlite_url_parts("sqlite:///var/lib/aims.db?mode=rwc"),
            ("/var/lib/aims.db", "mode=rwc")
        );
        assert_eq!(sqlite_url_parts("sqlite://rel.db"), ("rel.db", ""));
    }
}
