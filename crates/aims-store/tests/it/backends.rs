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
    grant_client_deletion_revokes,
    grant_validation,
    user_crud,
    user_validation,
);
