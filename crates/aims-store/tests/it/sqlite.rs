//! SQLite-only properties: file mode, journal settings, persistence, crash safety.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};

use aims_store::{KeyKind, KeyState, Store, StoreError};
use sqlx::{Connection as _, SqliteConnection};

use crate::fixtures::sqlite_url;
use crate::suite::{entry, key};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn database_file_is_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let store = Store::connect(&sqlite_url(&path)).await.unwrap();
    store
        .create_entry(entry("agent/a", &["unix:uid:1"]), 1)
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    let wal = dir.path().join("new.db-wal");
    assert!(wal.exists(), "WAL journal in use");
    assert_eq!(mode(&wal), 0o600);
    store.close().await;

    // An existing file that is too open is tightened.
    let loose = dir.path().join("loose.db");
    std::fs::write(&loose, b"").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::connect(&sqlite_url(&loose)).await.unwrap();
    assert_eq!(mode(&loose), 0o600);
    store.close().await;
}

#[tokio::test]
async fn journal_is_wal_and_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aims.db");
    let url = sqlite_url(&path);
    let store = Store::connect(&url).await.unwrap();
    let e = store
        .create_entry(entry("agent/a", &["unix:uid:1"]), 1)
        .await
        .unwrap();
    store
        .put_key(&key(KeyKind::X509Ca, "ca", KeyState::Current))
        .await
        .unwrap();
    store.close().await;

    let mut raw = SqliteConnection::connect(&url).await.unwrap();
    let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    raw.close().await.unwrap();

    // Reopening runs the migrations again (a no-op) and finds everything.
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.get_entry(&e.id).await.unwrap(), e);
    assert_eq!(
        &store.get_key(KeyKind::X509Ca, "ca").await.unwrap().pkcs8[..],
        b"pkcs8-secret-of-ca"
    );
    store.close().await;
}

/// `secure_delete`: once a deleted key's transaction is checkpointed into the database
/// file, its bytes are gone from the file.
#[tokio::test]
async fn deleted_key_bytes_leave_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aims.db");
    let store = Store::connect(&sqlite_url(&path)).await.unwrap();
    let mut k = key(KeyKind::X509Ca, "gone", KeyState::Current);
    let secret = b"UNIQUE-PRIVATE-KEY-MATERIAL-0123456789".to_vec();
    k.pkcs8 = zeroize::Zeroizing::new(secret.clone());
    store.put_key(&k).await.unwrap();
    store
        .put_key(&key(KeyKind::X509Ca, "kept", KeyState::Next))
        .await
        .unwrap();
    store.close().await;
    let contains = |bytes: &[u8]| bytes.windows(secret.len()).any(|w| w == secret.as_slice());
    assert!(
        contains(&std::fs::read(&path).unwrap()),
        "the key was written to the file"
    );

    let store = Store::connect(&sqlite_url(&path)).await.unwrap();
    store.delete_key(KeyKind::X509Ca, "gone").await.unwrap();
    // Gone from the disk at once, not only at the next checkpoint or close.
    assert!(!contains(&std::fs::read(&path).unwrap()));
    let wal = dir.path().join("aims.db-wal");
    assert!(!wal.exists() || !contains(&std::fs::read(&wal).unwrap()));
    store.close().await;
    assert!(!contains(&std::fs::read(&path).unwrap()));
    assert!(!wal.exists() || !contains(&std::fs::read(&wal).unwrap()));
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in ["mysql://u@h/db", "", "file:/tmp/x.db"] {
        assert!(
            matches!(Store::connect(url).await, Err(StoreError::Invalid(_))),
            "{url}"
        );
    }
    assert!(matches!(
        Store::connect("sqlite://x?mode=bogus").await,
        Err(StoreError::Invalid(_))
    ));
    // Without mode=rwc a missing file is not created.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let r = Store::connect(&format!("sqlite://{}", missing.display())).await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    assert!(!missing.exists());
    // A directory is not a database file.
    let r = Store::connect(&sqlite_url(dir.path())).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
}

#[tokio::test]
async fn corrupt_rows_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("aims.db"));
    let store = Store::connect(&url).await.unwrap();
    let e = store
        .create_entry(entry("agent/a", &["unix:uid:1"]), 1)
        .await
        .unwrap();
    store
        .put_key(&key(KeyKind::JwtSvid, "k", KeyState::Current))
        .await
        .unwrap();

    let mut raw = SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE entries SET selectors = '[\"not a selector\"]'")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE signing_keys SET cert_chain = '[\"***\"]'")
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();

    assert!(matches!(
        store.get_entry(&e.id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.list_entries().await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.entry_changes_since(0).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.list_keys(KeyKind::JwtSvid).await,
        Err(StoreError::Corrupt(_))
    ));
    store.close().await;
}

/// Set by [`kill_9_loses_no_committed_write`] for the child process it starts.
const CRASH_CHILD_VAR: &str = "AIMS_STORE_CRASH_CHILD_URL";

/// Entries the parent waits for before it kills the writer.
const COMMITS_BEFORE_KILL: usize = 60;

fn crash_entry(i: usize) -> aims_core::RegistrationEntry {
    let uid = format!("unix:uid:{i}");
    let sha = format!("unix:sha256:{i:064x}");
    entry(
        &format!("crash/e{i}"),
        &[uid.as_str(), sha.as_str(), "unix:gid:7"],
    )
}

/// The writer half of the crash test: does nothing unless started by the parent. It
/// writes entries (and rotates keys) in a loop and reports each commit on stdout.
#[test]
fn crash_child_writer() {
    let Ok(url) = std::env::var(CRASH_CHILD_VAR) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Store::connect(&url).await.unwrap();
        let mut out = std::io::stdout();
        let (mut current, mut next): (Option<String>, Option<String>) = (None, None);
        // Bounded so an orphaned child ends by itself.
        for i in 0..100_000 {
            let e = store.create_entry(crash_entry(i), 1).await.unwrap();
            if writeln!(out, "entry {i} {}", e.id)
                .and_then(|()| out.flush())
                .is_err()
            {
                return;
            }
            if i % 3 == 0 {
                // Rotate: next -> current, current -> previous, a fresh key -> next.
                let kid = format!("k{i}");
                let mut states = Vec::new();
                if let Some(n) = &next {
                    states.push((n.as_str(), KeyState::Current));
                }
                if let Some(c) = &current {
                    states.push((c.as_str(), KeyState::Previous));
                }
                store
                    .rotate_keys(
                        KeyKind::JwtSvid,
                        Some(&key(KeyKind::JwtSvid, &kid, KeyState::Next)),
                        &states,
                    )
                    .await
                    .unwrap();
                current = next.take();
                next = Some(kid.clone());
                if writeln!(out, "key {kid}")
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    });
}

/// `kill -9` of a process in the middle of its writes: every write it reported as
/// committed is there, whole, and nothing half-written is.
#[tokio::test]
async fn kill_9_loses_no_committed_write() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("crash.db"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child_writer", "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_VAR, &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut committed_entries = Vec::new();
    let mut committed_keys = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["entry", i, id] => {
                committed_entries.push((i.parse::<usize>().unwrap(), (*id).to_owned()))
            }
            ["key", kid] => committed_keys.push((*kid).to_owned()),
            _ => continue, // the test harness's own lines
        }
        if committed_entries.len() == COMMITS_BEFORE_KILL {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the writer was killed, not finished: {status:?}"
    );
    assert_eq!(
        committed_entries.len(),
        COMMITS_BEFORE_KILL,
        "the writer stopped early"
    );

    let mut raw = SqliteConnection::connect(&url).await.unwrap();
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    raw.close().await.unwrap();

    let store = Store::connect(&url).await.unwrap();
    for (i, id) in &committed_entries {
        let got = store.get_entry(id).await.unwrap();
        let want = crash_entry(*i);
        assert_eq!(
            (got.spiffe_id, got.selectors),
            (want.spiffe_id, want.selectors)
        );
    }
    // The writer may have committed a few more before the signal landed (the pipe runs
    // ahead of the reader): those are whole too, and the stored entries are exactly the
    // first n the writer made, with no hole and nothing half written.
    let all = store.list_entries().await.unwrap();
    assert!(all.len() >= committed_entries.len());
    let mut seen = std::collections::BTreeSet::new();
    for e in &all {
        e.validate().unwrap();
        let i: usize = e
            .spiffe_id
            .path()
            .trim_start_matches("/crash/e")
            .parse()
            .unwrap();
        let want = crash_entry(i);
        assert_eq!(
            (&e.spiffe_id, &e.selectors),
            (&want.spiffe_id, &want.selectors)
        );
        seen.insert(i);
    }
    assert_eq!(seen, (0..all.len()).collect());
    let feed = store.entry_changes_since(0).await.unwrap();
    assert_eq!(feed.changes.len(), all.len());
    assert_eq!(feed.seq, u64::try_from(all.len()).unwrap());

    // Every reported key is there; every stored key has its own private key; the rotation
    // left exactly one next key and at most one current key.
    let keys = store.list_keys(KeyKind::JwtSvid).await.unwrap();
    for kid in &committed_keys {
        assert!(keys.iter().any(|k| &k.kid == kid), "{kid} lost");
    }
    for k in &keys {
        assert_eq!(
            &k.pkcs8[..],
            format!("pkcs8-secret-of-{}", k.kid).as_bytes()
        );
    }
    assert!(keys.iter().filter(|k| k.state == KeyState::Current).count() <= 1);
    assert_eq!(keys.iter().filter(|k| k.state == KeyState::Next).count(), 1);
    store.close().await;
}

/// A database made by migration 0001 alone, with keys in it, upgrades to 0002: the
/// `signing_keys` rebuild keeps every row and both partial unique indexes, and the new
/// `oauth_token` kind is accepted.
#[tokio::test]
async fn migration_0002_keeps_signing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let only_0001 = dir.path().join("migrations");
    std::fs::create_dir(&only_0001).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/sqlite/0001_init.sql"
        ),
        only_0001.join("0001_init.sql"),
    )
    .unwrap();
    let url = sqlite_url(&dir.path().join("aims.db"));
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(only_0001.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let r = sqlx::query("INSERT INTO signing_keys VALUES ('oauth_token', 'x', 'ES256', x'01', '[]', 'current', 0, 1, 0)")
        .execute(&pool)
        .await;
    assert!(r.is_err(), "0001 refuses the new kind");
    pool.close().await;

    // Keys written through the store before the upgrade (the store's own statements
    // match the 0001 columns).
    let before = [
        key(KeyKind::X509Ca, "ca", KeyState::Current),
        key(KeyKind::JwtSvid, "j1", KeyState::Current),
        key(KeyKind::JwtSvid, "j2", KeyState::Next),
        key(KeyKind::WitSvid, "w1", KeyState::Previous),
    ];
    let mut raw = SqliteConnection::connect(&url).await.unwrap();
    for k in &before {
        let chain: Vec<String> = k
            .cert_chain_der
            .iter()
            .map(|c| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, c))
            .collect();
        sqlx::query("INSERT INTO signing_keys VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(k.kind.as_str())
            .bind(k.kid.as_str())
            .bind(k.alg.as_str())
            .bind(k.pkcs8.to_vec())
            .bind(serde_json::to_string(&chain).unwrap())
            .bind(k.state.as_str())
            .bind(k.not_before)
            .bind(k.not_after)
            .bind(k.created_at)
            .execute(&mut raw)
            .await
            .unwrap();
    }
    raw.close().await.unwrap();

    let store = Store::connect(&url).await.unwrap();
    for k in &before {
        assert_eq!(&store.get_key(k.kind, &k.kid).await.unwrap(), k);
    }
    // The one-current and one-next indexes came back with the table.
    assert!(matches!(
        store
            .put_key(&key(KeyKind::JwtSvid, "j3", KeyState::Current))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .put_key(&key(KeyKind::JwtSvid, "j3", KeyState::Next))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .put_key(&key(KeyKind::OAuthToken, "at", KeyState::Current))
        .await
        .unwrap();
    assert!(matches!(
        store
            .put_key(&key(KeyKind::OAuthToken, "at2", KeyState::Current))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store.close().await;
    // Reopening does not run anything again.
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.list_keys(KeyKind::OAuthToken).await.unwrap().len(), 1);
    store.close().await;
}
