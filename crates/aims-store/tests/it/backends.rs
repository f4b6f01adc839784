//! Runs every behaviour of `suite.rs` on every backend: one test per (backend, behaviour),
//! so a failure names both.

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::fixtures::sqlite_file().await;
                    crate::suite::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::fixtures::sqlite_memory().await;
                    crate::suite::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = crate::fixtures::postgres().await else { return };
                    crate::suite::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

conformance!(
    ping_and_name,
    entry_crud,
    entry_validation,
    entry_uniqueness,
    entry_revision_conflict,
    entry_writes_are_all_or_nothing,
    entry_change_sequence,
    entry_change_feed_under_concurrency,
    key_round_trip,
    key_rotation_is_atomic,
    key_material_is_sealed_in_place_once,
    key_concurrent_promotions,
    bundle_sequence,
    use_once_and_sweep,
    use_once_many_batches,
    use_once_concurrent,
    sweeps_run_in_chunks,
    futures_are_send,
    key_oauth_token_kind,
    client_crud,
    client_validation,
    grant_put_get_consume,
    grant_expiry_and_sweep,
    grant_reuse_revokes_family,
    grant_consume_concurrent,
    grant_consume_stores_successors_atomically,
    user_deletion_revokes_their_grants,
    grant_client_deletion_revokes,
    grant_validation,
    user_crud,
    user_validation,
    browser_state_round_trip,
    browser_state_take_concurrent,
    browser_state_replace_compare_and_swap,
    browser_state_validation,
);

/// Another connection (another node) that gave the single-use record `jti`/`item` the
/// expiry `expires_at` in a transaction it has not committed: it holds the row's lock.
async fn hold_used_once_row(
    db: &crate::fixtures::Db,
    item: &str,
    expires_at: i64,
) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    let mut other = sqlx::PgConnection::connect(db.url().unwrap())
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("UPDATE used_once SET expires_at = $1 WHERE scope = 'jti' AND item = $2")
        .bind(expires_at)
        .bind(item)
        .execute(&mut other)
        .await
        .unwrap();
    other
}

/// PostgreSQL: a sweep that meets a single-use record taken over meanwhile (a concurrent
/// `use_once` gave the expired row a new expiry and has not committed yet) waits for
/// it and then keeps the row: deleting it by key would forget a live value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_sweep_keeps_a_record_taken_over_meanwhile() {
    use sqlx::Connection as _;
    const T0: i64 = 1_700_000_000;
    let Some(db) = crate::fixtures::postgres().await else {
        return;
    };
    let store = db.store.clone();
    assert!(store.use_once("jti", "x", T0 + 10, T0).await.unwrap());

    let mut other = hold_used_once_row(&db, "x", T0 + 100).await;
    let sweep = tokio::spawn({
        let store = store.clone();
        async move { store.sweep_expired(T0 + 20).await }
    });
    // The sweep is now blocked on the row lock.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!sweep.is_finished(), "the sweep waits for the row");
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    assert_eq!(sweep.await.unwrap().unwrap(), 0);
    assert!(!store.use_once("jti", "x", T0 + 100, T0 + 20).await.unwrap());
    other.close().await.unwrap();
    db.finish().await;
}

/// PostgreSQL: a family revocation that starts while an exchange of the family is in
/// flight (its grant consumed and its successor inserted, not committed yet) waits for it
/// and revokes the successor too. Without the lock taken first, the revocation's snapshot
/// predates the successor, which would stay active.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_family_revocation_reaches_an_exchange_in_flight() {
    use aims_store::{GrantKind, GrantState, NewGrant};
    use sqlx::{Connection as _, PgConnection};
    const T0: i64 = 1_700_000_000;
    let Some(db) = crate::fixtures::postgres().await else {
        return;
    };
    let store = db.store.clone();
    let rt = |handle: &str| NewGrant {
        handle: handle.to_owned(),
        kind: GrantKind::RefreshToken,
        client_id: "app".to_owned(),
        subject: Some("alice".to_owned()),
        family: "fam".to_owned(),
        expires_at: T0 + 600,
        created_at: T0,
        data: "{}".to_owned(),
    };
    store.put_grant(&rt("refresh-token-one")).await.unwrap();

    // Another node's exchange, held open between its statements.
    let mut other = PgConnection::connect(db.url().unwrap()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("UPDATE oauth_grants SET state = 'consumed' WHERE handle = 'refresh-token-one'")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO oauth_grants (handle, kind, client_id, subject, family, expires_at, \
         created_at, state, data) VALUES ('refresh-token-two', 'refresh_token', 'app', 'alice', 'fam', $1, \
         $2, 'active', '{}')",
    )
    .bind(T0 + 600)
    .bind(T0)
    .execute(&mut other)
    .await
    .unwrap();
    let revoke = tokio::spawn({
        let store = store.clone();
        async move { store.revoke_family("fam").await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !revoke.is_finished(),
        "the revocation waits for the exchange"
    );
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    assert_eq!(revoke.await.unwrap().unwrap(), 2);
    for h in ["refresh-token-one", "refresh-token-two"] {
        assert_eq!(
            store.get_grant(h).await.unwrap().state,
            GrantState::Revoked,
            "{h}"
        );
    }
    other.close().await.unwrap();
    db.finish().await;
}

/// PostgreSQL: a statement of the store that waits for a lock held by a node that stopped
/// answering (here: a transaction left open) gives up after `lock_timeout` (10 s) with an
/// error, instead of waiting, with every request behind it, until TCP gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_lock_waits_are_bounded() {
    use sqlx::Connection as _;
    const T0: i64 = 1_700_000_000;
    let Some(db) = crate::fixtures::postgres().await else {
        return;
    };
    let store = db.store.clone();
    assert!(store.use_once("jti", "held", T0 + 10, T0).await.unwrap());
    let mut other = hold_used_once_row(&db, "held", T0 + 100).await;
    let started = std::time::Instant::now();
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        store.use_once("jti", "held", T0 + 100, T0 + 20),
    )
    .await
    .expect("the store gives up on the lock by itself");
    assert!(waited.is_err(), "{waited:?}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(9));
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    db.finish().await;
}
