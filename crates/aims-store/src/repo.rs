//! The store's logic, written once over any sqlx database that implements [`Dialect`].
//!
//! SQLite and PostgreSQL share every statement here: both accept `$N` placeholders,
//! `INSERT … ON CONFLICT … DO UPDATE … WHERE`, `UPDATE … RETURNING` and partial unique
//! indexes. What differs (how a write transaction begins, how many rows a statement
//! touched) sits in the [`Dialect`] trait; the schemas differ only in column types and live
//! in `migrations/sqlite` and `migrations/postgres`.
//!
//! # Transactions
//!
//! Every multi-statement write runs in one transaction opened with
//! [`Dialect::BEGIN_WRITE`]. Returning early with `?` drops the transaction, which rolls it
//! back, so a failure half-way leaves nothing behind.
//!
//! # The entry change sequence
//!
//! Every entry write increments the `entries` counter row first, in its own transaction,
//! and stamps the entry (or its tombstone) with the new value. On PostgreSQL the counter's
//! row lock is held until commit, and SQLite has a single writer, so counter order is
//! commit order: once a reader sees counter value `n`, every change numbered `≤ n` is
//! committed. [`Repo::entry_changes_since`] reads the counter first and then only changes
//! numbered `≤ n`, so it never returns a position that skips a change still in flight.

use std::borrow::Cow;

use aims_core::{RegistrationEntry, Selector, SpiffeId, TrustDomain};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use zeroize::Zeroizing;

use crate::StoreError;
use crate::model::{
    BrowserState, BrowserStateKind, BundleRecord, ConsumeOutcome, EntryChange, EntryChanges,
    GrantKind, GrantRecord, GrantState, KeyKind, KeyRecord, KeyState, NewGrant, OAuthClientRecord,
    UserRecord, check_kid,
};

/// Rows one sweep statement deletes at most.
const SWEEP_CHUNK: i64 = 500;

/// What differs between the two databases once the schema is in place.
pub(crate) trait Dialect: Database {
    /// The statement that opens a write transaction.
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock up front, so a transaction that reads
    /// and then writes waits for the lock (busy timeout) instead of failing with
    /// `SQLITE_BUSY` when it tries to upgrade. PostgreSQL: plain `BEGIN` (READ COMMITTED);
    /// the statements below are written to be correct at that level.
    const BEGIN_WRITE: &'static str;

    /// Whether a revocation first locks the rows it will revoke (in its own statement,
    /// inside its transaction).
    ///
    /// PostgreSQL: at READ COMMITTED an `UPDATE` sees only rows committed before it
    /// started. A refresh (or code) exchange consumes its grant and inserts the new grants
    /// of the family in one transaction; a revocation that started meanwhile would wait
    /// for the consumed row, revoke it, and miss the new ones. Locking first makes it wait
    /// before it takes its snapshot, so the `UPDATE` that follows sees them. SQLite has a
    /// single writer: every write transaction already sees every earlier commit.
    const LOCK_BEFORE_REVOKE: bool;

    /// Run after a signing key is deleted or its bytes replaced (sealed), so the old bytes
    /// leave the disk now. SQLite (`secure_delete` zeroes freed space): a checkpoint that
    /// writes the zeroed pages into the database file and empties the WAL, whose older
    /// frames still hold the key. PostgreSQL: none (old row versions go at VACUUM, which
    /// does not zero them, and archived WAL keeps them: rotate keys after sealing).
    const SCRUB_FREED_KEY_BYTES: Option<&'static str>;

    /// How many rows a statement inserted, updated or deleted.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

impl Dialect for sqlx::Sqlite {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const LOCK_BEFORE_REVOKE: bool = false;
    const SCRUB_FREED_KEY_BYTES: Option<&'static str> = Some("PRAGMA wal_checkpoint(TRUNCATE)");
    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for sqlx::Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
    const LOCK_BEFORE_REVOKE: bool = true;
    const SCRUB_FREED_KEY_BYTES: Option<&'static str> = None;
    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

/// One backend: a connection pool and the statements, generic over the database.
#[derive(Debug)]
pub(crate) struct Repo<DB: Database> {
    pool: Pool<DB>,
}

impl<DB: Database> Clone for Repo<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Database> Repo<DB> {
    pub(crate) fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// The column list of `entries`, in the order [`Repo::entry_from_row`] reads by name.
macro_rules! entry_columns {
    () => {
        "id, spiffe_id, selectors, x509_ttl, jwt_ttl, wit_ttl, dns_names, hint, federates_with, \
         parent_id, admin, revision, created_at, updated_at, change_seq"
    };
}

/// The column list of `signing_keys`.
macro_rules! key_columns {
    () => {
        "kind, kid, alg, pkcs8, cert_chain, state, not_before, not_after, created_at"
    };
}

/// The column list of `bundles`.
macro_rules! bundle_columns {
    () => {
        "trust_domain, bundle, sequence_number, refresh_hint, endpoint_url, updated_at"
    };
}

/// The column list of `oauth_clients`.
macro_rules! client_columns {
    () => {
        "client_id, document, revision, created_at, updated_at"
    };
}

/// The column list of `oauth_grants`.
macro_rules! grant_columns {
    () => {
        "handle, kind, client_id, subject, family, expires_at, created_at, state, data"
    };
}

/// The column list of `users`.
macro_rules! user_columns {
    () => {
        "username, password_hash, attributes, disabled, created_at, updated_at"
    };
}

/// An entry turned into column values.
struct EntryColumns {
    selectors: Vec<String>,
    identity_key: String,
    dns_names: Vec<String>,
    federates_with: Vec<String>,
    parent_id: Option<String>,
}

impl EntryColumns {
    fn of(e: &RegistrationEntry) -> Self {
        let selectors: Vec<String> = e.selectors.iter().map(|s| s.as_str().to_owned()).collect();
        Self {
            identity_key: identity_key(&e.spiffe_id, &selectors),
            selectors,
            dns_names: e.dns_names.clone(),
            federates_with: e
                .federates_with
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            parent_id: e.parent_id.as_ref().map(|p| p.as_str().to_owned()),
        }
    }
}

/// SHA-256 (hex) over the SPIFFE ID and the sorted selectors, each followed by a newline.
/// Neither can contain a newline, so the encoding is unambiguous.
fn identity_key(spiffe_id: &SpiffeId, sorted_selectors: &[String]) -> String {
    let mut buf = String::with_capacity(spiffe_id.as_str().len() + 1 + sorted_selectors.len() * 16);
    buf.push_str(spiffe_id.as_str());
    buf.push('\n');
    for s in sorted_selectors {
        buf.push_str(s);
        buf.push('\n');
    }
    hex(&aims_crypto::sha256(buf.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A fresh entry id: 128 random bits as 32 lowercase hex characters.
fn new_entry_id() -> Result<String, StoreError> {
    let bytes = aims_crypto::random_bytes::<16>()
        .map_err(|e| StoreError::Backend(format!("random entry id: {e}")))?;
    Ok(hex(&bytes))
}

fn is_entry_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn to_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} {v} is too large")))
}

fn stored_u64(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::corrupt(format!("{what} {v} is negative")))
}

fn stored_u32(what: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::corrupt(format!("{what} {v} is out of range")))
}

/// Turns a unique violation into a `Conflict` with a message about the domain, keeping
/// every other error as it is.
fn conflict_as(message: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(message()),
        other => other,
    }
}

fn check_use_once_input(
    scope: &str,
    item: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    if scope.is_empty() || scope.len() > 64 || !scope.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::Invalid(
            "a single-use scope must be 1 to 64 printable ASCII characters".to_owned(),
        ));
    }
    if item.is_empty() || item.len() > 1024 || item.contains('\0') {
        return Err(StoreError::Invalid(
            "a single-use value must be 1 to 1024 bytes without NUL".to_owned(),
        ));
    }
    if expires_at <= now {
        return Err(StoreError::Invalid(
            "a single-use value must expire after now".to_owned(),
        ));
    }
    Ok(())
}

/// The entry's own rules, plus what both databases can store the same way.
fn check_entry(e: &RegistrationEntry) -> Result<(), StoreError> {
    e.validate()
        .map_err(|err| StoreError::Invalid(format!("entry: {err}")))?;
    if let Some(hint) = &e.hint
        && (hint.len() > 1024 || hint.contains('\0'))
    {
        return Err(StoreError::Invalid(
            "entry: the hint must be at most 1024 bytes without NUL".to_owned(),
        ));
    }
    Ok(())
}

fn check_bundle(b: &BundleRecord) -> Result<(), StoreError> {
    let td = b.trust_domain.as_str();
    match serde_json::from_str::<serde_json::Value>(&b.bundle_json) {
        Ok(v) if v.is_object() => {}
        _ => {
            return Err(StoreError::Invalid(format!(
                "bundle for {td}: not a JSON object"
            )));
        }
    }
    if let Some(url) = &b.endpoint_url
        && (url.is_empty() || url.len() > 2048 || url.contains('\0'))
    {
        return Err(StoreError::Invalid(format!(
            "bundle for {td}: endpoint URL must be 1 to 2048 bytes"
        )));
    }
    Ok(())
}

/// What a revocation selects grants by. Consumed grants are revoked too, so a replay
/// of one is then [`ConsumeOutcome::Revoked`].
#[derive(Debug, Clone, Copy)]
enum RevokeBy {
    /// One grant.
    Handle,
    /// A grant family (a code and what it issued, a refresh-token chain).
    Family,
    /// Every grant of a client.
    Client,
    /// Every grant of a user.
    Subject,
}

impl RevokeBy {
    /// Revokes the matching grants that are not revoked yet.
    fn revoke_sql(self) -> &'static str {
        match self {
            Self::Handle => {
                "UPDATE oauth_grants SET state = 'revoked' WHERE handle = $1 AND state <> 'revoked'"
            }
            Self::Family => {
                "UPDATE oauth_grants SET state = 'revoked' WHERE family = $1 AND state <> 'revoked'"
            }
            Self::Client => {
                "UPDATE oauth_grants SET state = 'revoked' \
                 WHERE client_id = $1 AND state <> 'revoked'"
            }
            Self::Subject => {
                "UPDATE oauth_grants SET state = 'revoked' \
                 WHERE subject = $1 AND state <> 'revoked'"
            }
        }
    }

    /// Locks the same rows, in one order (see [`Dialect::LOCK_BEFORE_REVOKE`]).
    fn lock_sql(self) -> &'static str {
        match self {
            Self::Handle => {
                "SELECT handle FROM oauth_grants WHERE handle = $1 AND state <> 'revoked' \
                 FOR UPDATE"
            }
            Self::Family => {
                "SELECT handle FROM oauth_grants WHERE family = $1 AND state <> 'revoked' \
                 ORDER BY handle FOR UPDATE"
            }
            Self::Client => {
                "SELECT handle FROM oauth_grants WHERE client_id = $1 AND state <> 'revoked' \
                 ORDER BY handle FOR UPDATE"
            }
            Self::Subject => {
                "SELECT handle FROM oauth_grants WHERE subject = $1 AND state <> 'revoked' \
                 ORDER BY handle FOR UPDATE"
            }
        }
    }
}

/// `what` must be a JSON object (the documents of clients, grants and users).
fn check_json_object(what: &dyn std::fmt::Display, json: &str) -> Result<(), StoreError> {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(v) if v.is_object() => Ok(()),
        _ => Err(StoreError::Invalid(format!("{what}: not a JSON object"))),
    }
}

/// RFC 6749 `client_id`: 1 to 255 `VSCHAR` (printable ASCII, space included).
fn check_client_id(client_id: &str) -> Result<(), StoreError> {
    if client_id.is_empty()
        || client_id.len() > 255
        || !client_id.bytes().all(|b| (0x20..=0x7e).contains(&b))
    {
        return Err(StoreError::Invalid(
            "a client id must be 1 to 255 printable ASCII characters".to_owned(),
        ));
    }
    Ok(())
}

fn check_grant(g: &NewGrant) -> Result<(), StoreError> {
    check_handle(&g.handle)?;
    check_client_id(&g.client_id)?;
    if let Some(subject) = &g.subject
        && (subject.is_empty() || subject.len() > 2048 || subject.chars().any(char::is_control))
    {
        return Err(StoreError::Invalid(
            "a grant subject must be 1 to 2048 bytes without control characters".to_owned(),
        ));
    }
    if g.family.is_empty()
        || g.family.len() > 255
        || !g.family.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(StoreError::Invalid(
            "a grant family must be 1 to 255 printable ASCII characters".to_owned(),
        ));
    }
    if g.expires_at <= g.created_at {
        return Err(StoreError::Invalid(
            "a grant must expire after it is created".to_owned(),
        ));
    }
    check_json_object(&format_args!("{} data", g.kind), &g.data)
}

fn check_handle(handle: &str) -> Result<(), StoreError> {
    if !(16..=128).contains(&handle.len()) || !handle.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::Invalid(
            "a grant handle must be 16 to 128 printable ASCII characters".to_owned(),
        ));
    }
    Ok(())
}

fn check_browser_handle(handle: &str) -> Result<(), StoreError> {
    if !(16..=128).contains(&handle.len()) || !handle.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::Invalid(
            "a browser-state handle must be 16 to 128 printable ASCII characters".to_owned(),
        ));
    }
    Ok(())
}

fn check_username(username: &str) -> Result<(), StoreError> {
    if username.is_empty() || username.len() > 128 || username.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a user name must be 1 to 128 bytes without control characters".to_owned(),
        ));
    }
    Ok(())
}

fn check_password_hash(hash: &str) -> Result<(), StoreError> {
    if hash.is_empty() || hash.len() > 1024 || !hash.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::Invalid(
            "a password hash must be 1 to 1024 printable ASCII characters".to_owned(),
        ));
    }
    Ok(())
}

impl<DB> Repo<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    i64: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB>,
    bool: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB>,
    String: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB>,
    Option<String>: for<'q> Encode<'q, DB>,
    Option<i64>: for<'q> Encode<'q, DB>,
    Vec<u8>: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB>,
    Json<Vec<String>>: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB>,
{
    // ----- health -----

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ----- registration entries -----

    /// Increments the entry change counter inside `conn`'s transaction.
    async fn bump_entry_seq(conn: &mut DB::Connection) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "UPDATE counters SET value = value + 1 WHERE name = 'entries' RETURNING value",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get::<i64, _>("value")?)
    }

    fn entry_from_row(row: &DB::Row) -> Result<(RegistrationEntry, u64), StoreError> {
        let id: String = row.try_get("id")?;
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::corrupt(format!("entry {id}: {what}: {e}"))
        };
        let spiffe_id: String = row.try_get("spiffe_id")?;
        let spiffe_id = SpiffeId::parse(&spiffe_id).map_err(|e| bad("spiffe_id", &e))?;
        let Json(selectors): Json<Vec<String>> = row.try_get("selectors")?;
        let selectors = selectors
            .iter()
            .map(|s| Selector::parse(s))
            .collect::<Result<_, _>>()
            .map_err(|e| bad("selector", &e))?;
        let Json(dns_names): Json<Vec<String>> = row.try_get("dns_names")?;
        let Json(federates_with): Json<Vec<String>> = row.try_get("federates_with")?;
        let federates_with = federates_with
            .iter()
            .map(|t| TrustDomain::new(t))
            .collect::<Result<_, _>>()
            .map_err(|e| bad("federates_with", &e))?;
        let parent_id = row
            .try_get::<Option<String>, _>("parent_id")?
            .map(|p| SpiffeId::parse(&p))
            .transpose()
            .map_err(|e| bad("parent_id", &e))?;
        let entry = RegistrationEntry {
            spiffe_id,
            selectors,
            x509_ttl: stored_u32("x509_ttl", row.try_get("x509_ttl")?)?,
            jwt_ttl: stored_u32("jwt_ttl", row.try_get("jwt_ttl")?)?,
            wit_ttl: stored_u32("wit_ttl", row.try_get("wit_ttl")?)?,
            dns_names,
            hint: row.try_get("hint")?,
            federates_with,
            parent_id,
            admin: row.try_get("admin")?,
            revision: stored_u64("revision", row.try_get("revision")?)?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            id,
        };
        let seq = stored_u64("change_seq", row.try_get("change_seq")?)?;
        Ok((entry, seq))
    }

    pub(crate) async fn create_entry(
        &self,
        mut entry: RegistrationEntry,
        now: i64,
    ) -> Result<RegistrationEntry, StoreError> {
        if entry.id.is_empty() {
            entry.id = new_entry_id()?;
        } else if !is_entry_id(&entry.id) {
            return Err(StoreError::Invalid(
                "an entry id is 32 lowercase hex characters".to_owned(),
            ));
        }
        check_entry(&entry)?;
        entry.revision = 1;
        entry.created_at = now;
        entry.updated_at = now;
        let cols = EntryColumns::of(&entry);

        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let seq = Self::bump_entry_seq(&mut tx).await?;
        sqlx::query(concat!(
            "INSERT INTO entries (",
            entry_columns!(),
            ", identity_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13, $14)"
        ))
        .bind(entry.id.as_str())
        .bind(entry.spiffe_id.as_str())
        .bind(Json(cols.selectors))
        .bind(i64::from(entry.x509_ttl))
        .bind(i64::from(entry.jwt_ttl))
        .bind(i64::from(entry.wit_ttl))
        .bind(Json(cols.dns_names))
        .bind(entry.hint.clone())
        .bind(Json(cols.federates_with))
        .bind(cols.parent_id)
        .bind(entry.admin)
        .bind(now)
        .bind(seq)
        .bind(cols.identity_key)
        .execute(&mut *tx)
        .await
        .map_err(conflict_as(|| {
            format!(
                "an entry with id {} or with SPIFFE ID {} and the same selectors exists",
                entry.id, entry.spiffe_id
            )
        }))?;
        // An id can come back after a deletion; it is no longer deleted.
        sqlx::query("DELETE FROM entry_tombstones WHERE id = $1")
            .bind(entry.id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(entry)
    }

    pub(crate) async fn get_entry(&self, id: &str) -> Result<RegistrationEntry, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            entry_columns!(),
            " FROM entries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("entry {id}")))?;
        Ok(Self::entry_from_row(&row)?.0)
    }

    pub(crate) async fn list_entries(&self) -> Result<Vec<RegistrationEntry>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            entry_columns!(),
            " FROM entries ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Self::entry_from_row(r).map(|(e, _)| e))
        .collect()
    }

    pub(crate) async fn update_entry(
        &self,
        mut entry: RegistrationEntry,
        expected_revision: u64,
        now: i64,
    ) -> Result<RegistrationEntry, StoreError> {
        check_entry(&entry)?;
        let expected = to_i64("revision", expected_revision)?;
        let cols = EntryColumns::of(&entry);

        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let seq = Self::bump_entry_seq(&mut tx).await?;
        let updated = sqlx::query(
            "UPDATE entries SET spiffe_id = $3, selectors = $4, identity_key = $5, x509_ttl = $6, \
             jwt_ttl = $7, wit_ttl = $8, dns_names = $9, hint = $10, federates_with = $11, \
             parent_id = $12, admin = $13, revision = revision + 1, updated_at = $14, \
             change_seq = $15 \
             WHERE id = $1 AND revision = $2 RETURNING revision, created_at",
        )
        .bind(entry.id.as_str())
        .bind(expected)
        .bind(entry.spiffe_id.as_str())
        .bind(Json(cols.selectors))
        .bind(cols.identity_key)
        .bind(i64::from(entry.x509_ttl))
        .bind(i64::from(entry.jwt_ttl))
        .bind(i64::from(entry.wit_ttl))
        .bind(Json(cols.dns_names))
        .bind(entry.hint.clone())
        .bind(Json(cols.federates_with))
        .bind(cols.parent_id)
        .bind(entry.admin)
        .bind(now)
        .bind(seq)
        .fetch_optional(&mut *tx)
        .await
        .map_err(conflict_as(|| {
            format!(
                "another entry has SPIFFE ID {} and the same selectors",
                entry.spiffe_id
            )
        }))?;
        let Some(row) = updated else {
            let current = sqlx::query("SELECT revision FROM entries WHERE id = $1")
                .bind(entry.id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match current {
                None => StoreError::not_found(format!("entry {}", entry.id)),
                Some(r) => StoreError::Conflict(format!(
                    "entry {} is at revision {}, not {expected_revision}",
                    entry.id,
                    r.try_get::<i64, _>("revision")?
                )),
            });
        };
        entry.revision = stored_u64("revision", row.try_get("revision")?)?;
        entry.created_at = row.try_get("created_at")?;
        entry.updated_at = now;
        tx.commit().await?;
        Ok(entry)
    }

    pub(crate) async fn delete_entry(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let seq = Self::bump_entry_seq(&mut tx).await?;
        let done = sqlx::query("DELETE FROM entries WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::not_found(format!("entry {id}")));
        }
        sqlx::query(
            "INSERT INTO entry_tombstones (id, change_seq) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET change_seq = excluded.change_seq",
        )
        .bind(id)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn entry_changes_since(&self, since: u64) -> Result<EntryChanges, StoreError> {
        let since_i = to_i64("change sequence", since)?;
        let row = sqlx::query("SELECT value FROM counters WHERE name = 'entries'")
            .fetch_one(&self.pool)
            .await?;
        let upto: i64 = row.try_get("value")?;
        let seq = stored_u64("change sequence", upto)?;
        if since_i >= upto {
            return Ok(EntryChanges {
                changes: Vec::new(),
                seq,
            });
        }
        let mut changes = Vec::new();
        let rows = sqlx::query(concat!(
            "SELECT ",
            entry_columns!(),
            " FROM entries WHERE change_seq > $1 AND change_seq <= $2"
        ))
        .bind(since_i)
        .bind(upto)
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let (entry, seq) = Self::entry_from_row(row)?;
            changes.push(EntryChange::Put { seq, entry });
        }
        let rows = sqlx::query("SELECT id, change_seq FROM entry_tombstones WHERE change_seq > $1 AND change_seq <= $2")
            .bind(since_i)
            .bind(upto)
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            changes.push(EntryChange::Delete {
                seq: stored_u64("change_seq", row.try_get("change_seq")?)?,
                id: row.try_get("id")?,
            });
        }
        changes.sort_by_key(EntryChange::seq);
        Ok(EntryChanges { changes, seq })
    }

    // ----- signing keys -----

    fn key_from_row(row: &DB::Row) -> Result<KeyRecord, StoreError> {
        let kid: String = row.try_get("kid")?;
        let pkcs8 = Zeroizing::new(row.try_get::<Vec<u8>, _>("pkcs8")?);
        let Json(chain): Json<Vec<String>> = row.try_get("cert_chain")?;
        let cert_chain_der = chain
            .iter()
            .map(|c| B64.decode(c))
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::corrupt(format!("key {kid}: certificate: {e}")))?;
        Ok(KeyRecord {
            kind: KeyKind::parse(&row.try_get::<String, _>("kind")?)?,
            alg: row.try_get("alg")?,
            pkcs8,
            cert_chain_der,
            state: KeyState::parse(&row.try_get::<String, _>("state")?)?,
            not_before: row.try_get("not_before")?,
            not_after: row.try_get("not_after")?,
            created_at: row.try_get("created_at")?,
            kid,
        })
    }

    async fn insert_key(conn: &mut DB::Connection, key: &KeyRecord) -> Result<(), StoreError> {
        key.validate()?;
        let chain: Vec<String> = key.cert_chain_der.iter().map(|c| B64.encode(c)).collect();
        sqlx::query(concat!(
            "INSERT INTO signing_keys (",
            key_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(key.kind.as_str())
        .bind(key.kid.as_str())
        .bind(key.alg.as_str())
        // The driver needs an owned buffer; it is dropped (not wiped) after the statement.
        .bind(key.pkcs8.to_vec())
        .bind(Json(chain))
        .bind(key.state.as_str())
        .bind(key.not_before)
        .bind(key.not_after)
        .bind(key.created_at)
        .execute(&mut *conn)
        .await
        .map_err(conflict_as(|| {
            format!(
                "{} key `{}` exists, or a {} key of this kind exists",
                key.kind, key.kid, key.state
            )
        }))?;
        Ok(())
    }

    pub(crate) async fn put_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::insert_key(&mut conn, key).await
    }

    pub(crate) async fn seal_key_material(
        &self,
        kind: KeyKind,
        kid: &str,
        sealed_prefix: &[u8],
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let prefix_len = i64::try_from(sealed_prefix.len())
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| StoreError::Invalid("a seal prefix is 1 to 1024 bytes".into()))?;
        if !sealed.starts_with(sealed_prefix) {
            return Err(StoreError::Invalid(
                "sealed key material must start with its prefix".into(),
            ));
        }
        // The condition is on the prefix, so the plain key is not sent again (where
        // statement parameters might be logged).
        let done = sqlx::query(
            "UPDATE signing_keys SET pkcs8 = $3 \
             WHERE kind = $1 AND kid = $2 AND substr(pkcs8, 1, CAST($4 AS INTEGER)) <> $5",
        )
        .bind(kind.as_str())
        .bind(kid)
        .bind(sealed.to_vec())
        .bind(prefix_len)
        .bind(sealed_prefix.to_vec())
        .execute(&self.pool)
        .await?;
        let sealed_now = DB::rows_affected(&done) > 0;
        if sealed_now {
            self.scrub_freed_key_bytes().await;
        }
        Ok(sealed_now)
    }

    pub(crate) async fn get_key(&self, kind: KeyKind, kid: &str) -> Result<KeyRecord, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM signing_keys WHERE kind = $1 AND kid = $2"
        ))
        .bind(kind.as_str())
        .bind(kid)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("{kind} key `{kid}`")))?;
        Self::key_from_row(&row)
    }

    pub(crate) async fn list_keys(&self, kind: KeyKind) -> Result<Vec<KeyRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM signing_keys WHERE kind = $1 ORDER BY created_at, kid"
        ))
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::key_from_row)
        .collect()
    }

    pub(crate) async fn rotate_keys(
        &self,
        kind: KeyKind,
        new_key: Option<&KeyRecord>,
        states: &[(&str, KeyState)],
    ) -> Result<(), StoreError> {
        for (i, (kid, _)) in states.iter().enumerate() {
            check_kid(kid)?;
            if states.iter().skip(i + 1).any(|(other, _)| other == kid) {
                return Err(StoreError::Invalid(format!("key `{kid}` is listed twice")));
            }
        }
        if let Some(k) = new_key {
            if k.kind != kind {
                return Err(StoreError::Invalid(format!(
                    "new key `{}` is a {} key, not {kind}",
                    k.kid, k.kind
                )));
            }
            k.validate()?;
        }

        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        // Phase 1: park every listed key in `retired`, which no unique index covers, so
        // the final states below can be assigned in any order (a swap of `current` and
        // `next` included) without tripping the one-current / one-next indexes.
        for (kid, _) in states {
            let done = sqlx::query(
                "UPDATE signing_keys SET state = 'retired' WHERE kind = $1 AND kid = $2",
            )
            .bind(kind.as_str())
            .bind(*kid)
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&done) == 0 {
                return Err(StoreError::not_found(format!("{kind} key `{kid}`")));
            }
        }
        if let Some(k) = new_key {
            Self::insert_key(&mut tx, k).await?;
        }
        // Phase 2: final states. A second `current` or `next` (with a key not listed) is a
        // unique violation, and the whole rotation rolls back.
        for (kid, state) in states {
            sqlx::query("UPDATE signing_keys SET state = $3 WHERE kind = $1 AND kid = $2")
                .bind(kind.as_str())
                .bind(*kid)
                .bind(state.as_str())
                .execute(&mut *tx)
                .await
                .map_err(conflict_as(|| {
                    format!("another {kind} key is already {state}; list it in the same rotation")
                }))?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn delete_key(&self, kind: KeyKind, kid: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE kind = $1 AND kid = $2")
            .bind(kind.as_str())
            .bind(kid)
            .execute(&self.pool)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::not_found(format!("{kind} key `{kid}`")));
        }
        self.scrub_freed_key_bytes().await;
        Ok(())
    }

    /// After key bytes were deleted or overwritten: [`Dialect::SCRUB_FREED_KEY_BYTES`].
    /// The write is done either way; a scrub that fails (or is kept from finishing by a
    /// reader) leaves it to the next checkpoint.
    async fn scrub_freed_key_bytes(&self) {
        if let Some(sql) = DB::SCRUB_FREED_KEY_BYTES
            && let Err(e) = sqlx::query(sql).execute(&self.pool).await
        {
            tracing::warn!(error = %e, "checkpoint after a key write failed");
        }
    }

    // ----- federated bundles -----

    fn bundle_from_row(row: &DB::Row) -> Result<BundleRecord, StoreError> {
        let td: String = row.try_get("trust_domain")?;
        let trust_domain = TrustDomain::new(&td)
            .map_err(|e| StoreError::corrupt(format!("bundle trust domain `{td}`: {e}")))?;
        Ok(BundleRecord {
            trust_domain,
            bundle_json: row.try_get("bundle")?,
            sequence: stored_u64("bundle sequence", row.try_get("sequence_number")?)?,
            refresh_hint: row
                .try_get::<Option<i64>, _>("refresh_hint")?
                .map(|h| stored_u64("refresh hint", h))
                .transpose()?,
            endpoint_url: row.try_get("endpoint_url")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub(crate) async fn put_bundle(&self, bundle: &BundleRecord) -> Result<(), StoreError> {
        check_bundle(bundle)?;
        let refresh_hint = bundle
            .refresh_hint
            .map(|h| to_i64("refresh hint", h))
            .transpose()?;
        let done = sqlx::query(concat!(
            "INSERT INTO bundles (",
            bundle_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (trust_domain) DO UPDATE SET bundle = excluded.bundle, \
             sequence_number = excluded.sequence_number, refresh_hint = excluded.refresh_hint, \
             endpoint_url = excluded.endpoint_url, updated_at = excluded.updated_at \
             WHERE bundles.sequence_number <= excluded.sequence_number"
        ))
        .bind(bundle.trust_domain.as_str())
        .bind(bundle.bundle_json.as_str())
        .bind(to_i64("bundle sequence", bundle.sequence)?)
        .bind(refresh_hint)
        .bind(bundle.endpoint_url.clone())
        .bind(bundle.updated_at)
        .execute(&self.pool)
        .await?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::Conflict(format!(
                "bundle for {}: sequence {} is lower than the stored one",
                bundle.trust_domain, bundle.sequence
            )));
        }
        Ok(())
    }

    pub(crate) async fn get_bundle(&self, td: &TrustDomain) -> Result<BundleRecord, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            bundle_columns!(),
            " FROM bundles WHERE trust_domain = $1"
        ))
        .bind(td.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("bundle for {td}")))?;
        Self::bundle_from_row(&row)
    }

    pub(crate) async fn list_bundles(&self) -> Result<Vec<BundleRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            bundle_columns!(),
            " FROM bundles ORDER BY trust_domain"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::bundle_from_row)
        .collect()
    }

    pub(crate) async fn delete_bundle(&self, td: &TrustDomain) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM bundles WHERE trust_domain = $1")
            .bind(td.as_str())
            .execute(&self.pool)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::not_found(format!("bundle for {td}")));
        }
        Ok(())
    }

    // ----- single use -----

    pub(crate) async fn is_used(
        &self,
        scope: &str,
        item: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS live FROM used_once WHERE scope = $1 AND item = $2 AND expires_at > $3",
        )
        .bind(scope)
        .bind(item)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    pub(crate) async fn use_once(
        &self,
        scope: &str,
        item: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        check_use_once_input(scope, item, expires_at, now)?;
        // One statement, atomic on both databases: the insert wins, or the conflicting row
        // is taken over only if it has expired. Concurrent callers (other tasks or other
        // nodes) serialise on the primary key; exactly one sees a row affected.
        let done = sqlx::query(
            "INSERT INTO used_once (scope, item, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, item) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE used_once.expires_at <= $4",
        )
        .bind(scope)
        .bind(item)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub(crate) async fn use_once_many(
        &self,
        scope: &str,
        items: &[(&str, i64)],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        // Distinct items, in order of first appearance: a later duplicate is a replay of
        // the first (and one statement must not touch a row twice).
        let mut first: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::with_capacity(items.len());
        let mut distinct: Vec<(&str, i64)> = Vec::with_capacity(items.len());
        for (i, &(item, expires_at)) in items.iter().enumerate() {
            check_use_once_input(scope, item, expires_at, now)?;
            if let std::collections::hash_map::Entry::Vacant(v) = first.entry(item) {
                v.insert(i);
                distinct.push((item, expires_at));
            }
        }
        let mut won = vec![false; items.len()];
        if distinct.is_empty() {
            return Ok(won);
        }
        // Rows in one order whatever the batch: two nodes upserting overlapping batches
        // then lock the shared rows in the same order and cannot deadlock (PostgreSQL).
        distinct.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // One statement (one commit, one fsync) for the whole batch, with the semantics of
        // `use_once` per row: a row comes back from RETURNING only if it was inserted or
        // took over an expired record.
        let mut sql = String::from("INSERT INTO used_once (scope, item, expires_at) VALUES ");
        for i in 0..distinct.len() {
            let p = 3 + 2 * i;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("($1, ${p}, ${})", p + 1));
        }
        sql.push_str(
            " ON CONFLICT (scope, item) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE used_once.expires_at <= $2 RETURNING item",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(scope).bind(now);
        for &(item, expires_at) in &distinct {
            q = q.bind(item).bind(expires_at);
        }
        for row in q.fetch_all(&self.pool).await? {
            let item: String = row.try_get("item")?;
            if let Some(&i) = first.get(item.as_str())
                && let Some(w) = won.get_mut(i)
            {
                *w = true;
            }
        }
        Ok(won)
    }

    pub(crate) async fn sweep_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.sweep_in_chunks(
            "DELETE FROM used_once WHERE expires_at <= $1 AND (scope, item) IN \
             (SELECT scope, item FROM used_once WHERE expires_at <= $1 LIMIT $2)",
            now,
        )
        .await
    }

    /// Runs a `DELETE … LIMIT $2` statement until it deletes less than a chunk: each
    /// chunk is its own short transaction, so writers waiting for the lock (the token
    /// endpoint's single-use records) get a turn in between.
    ///
    /// The statements repeat `expires_at <= $1` outside the sub-select: on PostgreSQL a
    /// row that a concurrent [`Repo::use_once`] took over (new expiry) after the
    /// sub-select read it is re-checked against that condition and kept, instead of
    /// being deleted by key, which would forget a live single-use value.
    async fn sweep_in_chunks(&self, sql: &'static str, now: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let done = sqlx::query(sql)
                .bind(now)
                .bind(SWEEP_CHUNK)
                .execute(&self.pool)
                .await?;
            let n = DB::rows_affected(&done);
            total += n;
            if n < SWEEP_CHUNK.unsigned_abs() {
                return Ok(total);
            }
        }
    }

    // ----- OAuth clients -----

    fn client_from_row(row: &DB::Row) -> Result<OAuthClientRecord, StoreError> {
        Ok(OAuthClientRecord {
            client_id: row.try_get("client_id")?,
            document: row.try_get("document")?,
            revision: row.try_get("revision")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub(crate) async fn create_client(
        &self,
        client_id: &str,
        document: &str,
        now: i64,
    ) -> Result<OAuthClientRecord, StoreError> {
        check_client_id(client_id)?;
        check_json_object(&format_args!("client `{client_id}`"), document)?;
        sqlx::query(concat!(
            "INSERT INTO oauth_clients (",
            client_columns!(),
            ") VALUES ($1, $2, 1, $3, $3)"
        ))
        .bind(client_id)
        .bind(document)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(conflict_as(|| format!("client `{client_id}` exists")))?;
        Ok(OAuthClientRecord {
            client_id: client_id.to_owned(),
            document: document.to_owned(),
            revision: 1,
            created_at: now,
            updated_at: now,
        })
    }

    pub(crate) async fn get_client(
        &self,
        client_id: &str,
    ) -> Result<OAuthClientRecord, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM oauth_clients WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("client `{client_id}`")))?;
        Self::client_from_row(&row)
    }

    pub(crate) async fn list_clients(&self) -> Result<Vec<OAuthClientRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM oauth_clients ORDER BY client_id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::client_from_row)
        .collect()
    }

    pub(crate) async fn update_client(
        &self,
        client_id: &str,
        document: &str,
        expected_revision: Option<i64>,
        now: i64,
    ) -> Result<OAuthClientRecord, StoreError> {
        check_json_object(&format_args!("client `{client_id}`"), document)?;
        // One statement: the revision check and the write cannot be separated by another
        // writer (PostgreSQL re-checks the WHERE clause on the latest row version).
        let updated = sqlx::query(concat!(
            "UPDATE oauth_clients SET document = $2, revision = revision + 1, updated_at = $3 \
             WHERE client_id = $1 AND revision = COALESCE($4, revision) RETURNING ",
            client_columns!()
        ))
        .bind(client_id)
        .bind(document)
        .bind(now)
        .bind(expected_revision)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = updated {
            return Self::client_from_row(&row);
        }
        let current = sqlx::query("SELECT revision FROM oauth_clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Err(match current {
            None => StoreError::not_found(format!("client `{client_id}`")),
            Some(r) => StoreError::Conflict(format!(
                "client `{client_id}` is at revision {}, not {}",
                r.try_get::<i64, _>("revision")?,
                expected_revision.unwrap_or_default()
            )),
        })
    }

    pub(crate) async fn delete_client(&self, client_id: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let done = sqlx::query("DELETE FROM oauth_clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::not_found(format!("client `{client_id}`")));
        }
        let revoked = Self::revoke_grants(&mut tx, RevokeBy::Client, client_id).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    // ----- OAuth grants -----

    fn grant_from_row(row: &DB::Row) -> Result<GrantRecord, StoreError> {
        Ok(GrantRecord {
            handle: row.try_get("handle")?,
            kind: GrantKind::parse(&row.try_get::<String, _>("kind")?)?,
            client_id: row.try_get("client_id")?,
            subject: row.try_get("subject")?,
            family: row.try_get("family")?,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
            state: GrantState::parse(&row.try_get::<String, _>("state")?)?,
            data: row.try_get("data")?,
        })
    }

    /// Inserts one new grant, `active`, on `conn`.
    async fn insert_grant(conn: &mut DB::Connection, grant: &NewGrant) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO oauth_grants (",
            grant_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8)"
        ))
        .bind(grant.handle.as_str())
        .bind(grant.kind.as_str())
        .bind(grant.client_id.as_str())
        .bind(grant.subject.clone())
        .bind(grant.family.as_str())
        .bind(grant.expires_at)
        .bind(grant.created_at)
        .bind(grant.data.as_str())
        .execute(&mut *conn)
        .await
        .map_err(conflict_as(|| "a grant with this handle exists".to_owned()))?;
        Ok(())
    }

    pub(crate) async fn put_grants(&self, grants: &[NewGrant]) -> Result<(), StoreError> {
        for g in grants {
            check_grant(g)?;
        }
        if let [one] = grants {
            // One statement is atomic by itself: no transaction round trips (an opaque
            // client_credentials token on the token endpoint's hot path).
            let mut conn = self.pool.acquire().await?;
            return Self::insert_grant(&mut conn, one).await;
        }
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        for g in grants {
            Self::insert_grant(&mut tx, g).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn find_grant(&self, handle: &str) -> Result<Option<GrantRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            grant_columns!(),
            " FROM oauth_grants WHERE handle = $1"
        ))
        .bind(handle)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(Self::grant_from_row)
        .transpose()
    }

    pub(crate) async fn get_grant(&self, handle: &str) -> Result<GrantRecord, StoreError> {
        // The handle is a hash of a secret: not repeated in the message.
        self.find_grant(handle)
            .await?
            .ok_or_else(|| StoreError::not_found("grant"))
    }

    pub(crate) async fn consume_grant(
        &self,
        handle: &str,
        kind: GrantKind,
        now: i64,
        successors: &[NewGrant],
    ) -> Result<ConsumeOutcome, StoreError> {
        for g in successors {
            check_grant(g)?;
        }
        // The single use is this one statement. On PostgreSQL at READ COMMITTED, a second
        // concurrent UPDATE of the row waits for the first transaction to commit and then
        // re-evaluates its WHERE clause on the new row version (`consumed`), so it matches
        // nothing; on SQLite writers are serialised. Either way exactly one caller gets the
        // row back, and the successors are committed with the use or not at all: a caller
        // that sees `consumed` also sees them (so its revocation of the family reaches them).
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let consumed = sqlx::query(concat!(
            "UPDATE oauth_grants SET state = 'consumed' \
             WHERE handle = $1 AND kind = $2 AND state = 'active' AND expires_at > $3 \
             RETURNING ",
            grant_columns!()
        ))
        .bind(handle)
        .bind(kind.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = consumed {
            let record = Self::grant_from_row(&row)?;
            for g in successors {
                Self::insert_grant(&mut tx, g).await?;
            }
            tx.commit().await?;
            return Ok(ConsumeOutcome::Consumed(record));
        }
        drop(tx);
        // Why not: a plain read. States only move away from `active`, so what it sees
        // explains the failed update (an `active` row can only be one stored after it).
        Ok(match self.find_grant(handle).await? {
            Some(g) if g.kind == kind => match g.state {
                GrantState::Consumed => ConsumeOutcome::Reused(g),
                GrantState::Revoked => ConsumeOutcome::Revoked,
                GrantState::Active if g.expires_at <= now => ConsumeOutcome::Expired,
                GrantState::Active => ConsumeOutcome::NotFound,
            },
            _ => ConsumeOutcome::NotFound,
        })
    }

    /// Revokes every grant that matches `value` and is not revoked yet, and returns how
    /// many. `conn` must be inside a write transaction (the lock lasts until its end).
    async fn revoke_grants(
        conn: &mut DB::Connection,
        by: RevokeBy,
        value: &str,
    ) -> Result<u64, StoreError> {
        if DB::LOCK_BEFORE_REVOKE {
            sqlx::query(by.lock_sql())
                .bind(value)
                .execute(&mut *conn)
                .await?;
        }
        let done = sqlx::query(by.revoke_sql())
            .bind(value)
            .execute(&mut *conn)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    /// [`Self::revoke_grants`] in a transaction of its own.
    async fn revoke(&self, by: RevokeBy, value: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let revoked = Self::revoke_grants(&mut tx, by, value).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    pub(crate) async fn revoke_grant(&self, handle: &str) -> Result<bool, StoreError> {
        Ok(self.revoke(RevokeBy::Handle, handle).await? > 0)
    }

    pub(crate) async fn revoke_family(&self, family: &str) -> Result<u64, StoreError> {
        self.revoke(RevokeBy::Family, family).await
    }

    pub(crate) async fn revoke_client_grants(&self, client_id: &str) -> Result<u64, StoreError> {
        self.revoke(RevokeBy::Client, client_id).await
    }

    pub(crate) async fn sweep_grants(&self, now: i64) -> Result<u64, StoreError> {
        self.sweep_in_chunks(
            "DELETE FROM oauth_grants WHERE expires_at <= $1 AND handle IN \
             (SELECT handle FROM oauth_grants WHERE expires_at <= $1 LIMIT $2)",
            now,
        )
        .await
    }

    // ----- browser state -----

    pub(crate) async fn put_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
        binding: Option<&str>,
        data: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        check_browser_handle(handle)?;
        if let Some(b) = binding {
            check_browser_handle(b)?;
        }
        check_json_object(&format_args!("data of a {kind}"), data)?;
        if expires_at <= now {
            return Err(StoreError::Invalid(format!(
                "a {kind} must expire after it is stored"
            )));
        }
        // An expired record under the same handle is replaced: it no longer exists for
        // any reader.
        let done = sqlx::query(
            "INSERT INTO oauth_browser_state (kind, handle, binding, expires_at, data) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, handle) DO UPDATE SET binding = excluded.binding, \
             expires_at = excluded.expires_at, data = excluded.data \
             WHERE oauth_browser_state.expires_at <= $6",
        )
        .bind(kind.as_str())
        .bind(handle)
        .bind(binding.map(str::to_owned))
        .bind(expires_at)
        .bind(data)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if DB::rows_affected(&done) == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "a {kind} with this handle exists"
            )))
        }
    }

    pub(crate) async fn get_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
        now: i64,
    ) -> Result<Option<BrowserState>, StoreError> {
        sqlx::query(
            "SELECT binding, expires_at, data FROM oauth_browser_state \
             WHERE kind = $1 AND handle = $2 AND expires_at > $3",
        )
        .bind(kind.as_str())
        .bind(handle)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| {
            Ok(BrowserState {
                binding: row.try_get("binding")?,
                expires_at: row.try_get("expires_at")?,
                data: row.try_get("data")?,
            })
        })
        .transpose()
    }

    pub(crate) async fn rebind_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
        from: &str,
        to: &str,
        data: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        check_browser_handle(to)?;
        check_json_object(&format_args!("data of a {kind}"), data)?;
        // One statement: of concurrent callers with the same `from`, the first moves the
        // record and the others no longer match it.
        let done = sqlx::query(
            "UPDATE oauth_browser_state SET binding = $4, data = $5 \
             WHERE kind = $1 AND handle = $2 AND binding = $3 AND expires_at > $6",
        )
        .bind(kind.as_str())
        .bind(handle)
        .bind(from)
        .bind(to)
        .bind(data)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub(crate) async fn replace_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
        expected: &str,
        data: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        check_json_object(&format_args!("data of a {kind}"), data)?;
        if expires_at <= now {
            return Err(StoreError::Invalid(format!(
                "a {kind} must expire after it is stored"
            )));
        }
        // Compare and swap in one statement: of concurrent callers that read the same
        // data, one replaces it and the others no longer match.
        let done = sqlx::query(
            "UPDATE oauth_browser_state SET data = $4, expires_at = $5 \
             WHERE kind = $1 AND handle = $2 AND data = $3 AND expires_at > $6",
        )
        .bind(kind.as_str())
        .bind(handle)
        .bind(expected)
        .bind(data)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub(crate) async fn take_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
        binding: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        // One statement: exactly one of concurrent callers gets the row.
        let row = sqlx::query(
            "DELETE FROM oauth_browser_state \
             WHERE kind = $1 AND handle = $2 AND binding = $3 AND expires_at > $4 \
             RETURNING data",
        )
        .bind(kind.as_str())
        .bind(handle)
        .bind(binding)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("data").map_err(StoreError::from))
            .transpose()
    }

    pub(crate) async fn delete_browser_state(
        &self,
        kind: BrowserStateKind,
        handle: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM oauth_browser_state WHERE kind = $1 AND handle = $2")
            .bind(kind.as_str())
            .bind(handle)
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub(crate) async fn sweep_browser_state(&self, now: i64) -> Result<u64, StoreError> {
        self.sweep_in_chunks(
            "DELETE FROM oauth_browser_state WHERE expires_at <= $1 AND (kind, handle) IN \
             (SELECT kind, handle FROM oauth_browser_state WHERE expires_at <= $1 LIMIT $2)",
            now,
        )
        .await
    }

    // ----- users -----

    fn user_from_row(row: &DB::Row) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            username: row.try_get("username")?,
            password_hash: row.try_get("password_hash")?,
            attributes: row.try_get("attributes")?,
            disabled: row.try_get("disabled")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub(crate) async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        attributes: &str,
        now: i64,
    ) -> Result<UserRecord, StoreError> {
        check_username(username)?;
        check_password_hash(password_hash)?;
        check_json_object(&format_args!("attributes of user `{username}`"), attributes)?;
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $5)"
        ))
        .bind(username)
        .bind(password_hash)
        .bind(attributes)
        .bind(false)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(conflict_as(|| format!("user `{username}` exists")))?;
        Ok(UserRecord {
            username: username.to_owned(),
            password_hash: password_hash.to_owned(),
            attributes: attributes.to_owned(),
            disabled: false,
            created_at: now,
            updated_at: now,
        })
    }

    pub(crate) async fn get_user(&self, username: &str) -> Result<UserRecord, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("user `{username}`")))?;
        Self::user_from_row(&row)
    }

    pub(crate) async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY username"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::user_from_row)
        .collect()
    }

    /// Runs a one-row `UPDATE users … WHERE username = $1` binding `value` as `$2` and
    /// `now` as `$3`; NotFound if no row.
    async fn update_user<V>(
        &self,
        sql: &'static str,
        username: &str,
        value: V,
        now: i64,
    ) -> Result<(), StoreError>
    where
        V: for<'q> Encode<'q, DB> + Type<DB> + Send + 'static,
    {
        let done = sqlx::query(sql)
            .bind(username)
            .bind(value)
            .bind(now)
            .execute(&self.pool)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::not_found(format!("user `{username}`")));
        }
        Ok(())
    }

    pub(crate) async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        check_password_hash(password_hash)?;
        self.update_user(
            "UPDATE users SET password_hash = $2, updated_at = $3 WHERE username = $1",
            username,
            password_hash.to_owned(),
            now,
        )
        .await
    }

    pub(crate) async fn set_user_attributes(
        &self,
        username: &str,
        attributes: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        check_json_object(&format_args!("attributes of user `{username}`"), attributes)?;
        self.update_user(
            "UPDATE users SET attributes = $2, updated_at = $3 WHERE username = $1",
            username,
            attributes.to_owned(),
            now,
        )
        .await
    }

    pub(crate) async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.update_user(
            "UPDATE users SET disabled = $2, updated_at = $3 WHERE username = $1",
            username,
            disabled,
            now,
        )
        .await
    }

    pub(crate) async fn delete_user(&self, username: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let done = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::not_found(format!("user `{username}`")));
        }
        // The user's grants go with the name: a user created later under the same name
        // must not inherit them.
        let revoked = Self::revoke_grants(&mut tx, RevokeBy::Subject, username).await?;
        tx.commit().await?;
        Ok(revoked)
    }
}

/// Builds the embedded migrator from `(version, description, sql)` triples.
///
/// The SQL is compiled in with `include_str!`; checksums are computed the way
/// `sqlx::migrate!` computes them, so databases migrated by either agree.
pub(crate) fn migrator(
    migrations: &[(i64, &'static str, &'static str)],
) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr as _;
    sqlx::migrate::Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                sqlx::migrate::Migration::new(
                    version,
                    Cow::Borrowed(description),
                    sqlx::migrate::MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn identity_key_separates_id_and_selectors() {
        let a = SpiffeId::parse("spiffe://example.org/a").unwrap();
        let ab = SpiffeId::parse("spiffe://example.org/ab").unwrap();
        let k = |id: &SpiffeId, sel: &[&str]| {
            identity_key(id, &sel.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(k(&a, &["unix:uid:1"]).len(), 64);
        assert_eq!(k(&a, &["unix:uid:1"]), k(&a, &["unix:uid:1"]));
        assert_ne!(k(&a, &["unix:uid:1"]), k(&ab, &["unix:uid:1"]));
        assert_ne!(k(&a, &["unix:uid:1", "unix:uid:2"]), k(&a, &["unix:uid:1"]));
        assert_ne!(k(&a, &["unix:uid:12"]), k(&a, &["unix:uid:1", "2"]));
    }

    #[test]
    fn entry_ids() {
        let id = new_entry_id().unwrap();
        assert!(is_entry_id(&id));
        assert_ne!(id, new_entry_id().unwrap());
        assert!(!is_entry_id("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_entry_id("0123456789abcdef"));
        assert!(!is_entry_id("g123456789abcdef0123456789abcdef"));
    }
}
