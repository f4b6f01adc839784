//! Databases for the suite: a SQLite file in a temporary directory, a SQLite in-memory
//! database, and a fresh PostgreSQL database per test (when `AIMS_TEST_PG_URL` is set).

use std::io::Write as _;
use std::sync::Once;

use aims_store::Store;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

/// The variable naming the PostgreSQL server for the tests (`scripts/pg-start` prints it).
pub const PG_URL_VAR: &str = "AIMS_TEST_PG_URL";

/// One test's database.
pub struct Db {
    pub store: Store,
    /// The URL to open the same database again (`None` for an in-memory database).
    url: Option<String>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgScratch>,
}

struct PgScratch {
    admin_url: String,
    name: String,
}

impl Db {
    /// The URL of this database (`None` for an in-memory one).
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// A second, independent store on the same database: another node.
    pub async fn another(&self) -> Option<Store> {
        match &self.url {
            Some(url) => Some(Store::connect(url).await.unwrap()),
            None => None,
        }
    }

    /// Closes the store and drops a PostgreSQL scratch database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some(pg) = self.pg {
            let mut admin = PgConnection::connect(&pg.admin_url).await.unwrap();
            let forced = sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                pg.name
            )))
            .execute(&mut admin)
            .await;
            if forced.is_err() {
                // FORCE may not terminate an autovacuum worker busy in the database
                // (that needs pg_signal_backend); a plain DROP stops it and waits.
                sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {}",
                    pg.name
                )))
                .execute(&mut admin)
                .await
                .unwrap();
            }
        }
    }
}

pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

pub async fn sqlite_file() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("aims.db"));
    let store = Store::connect(&url).await.unwrap();
    Db {
        store,
        url: Some(url),
        _dir: Some(dir),
        pg: None,
    }
}

pub async fn sqlite_memory() -> Db {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    Db {
        store,
        url: None,
        _dir: None,
        pg: None,
    }
}

/// A fresh database on the PostgreSQL server named by `AIMS_TEST_PG_URL`, or `None` when
/// the variable is unset outside CI. Under `CI=true` an unset variable fails the test, so
/// CI cannot skip PostgreSQL silently.
pub async fn postgres() -> Option<Db> {
    let Some(admin_url) = std::env::var(PG_URL_VAR).ok().filter(|u| !u.is_empty()) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "CI=true but {PG_URL_VAR} is not set: the PostgreSQL half of the aims-store \
                 conformance suite cannot run. Start a server with \
                 `eval \"$(bash scripts/pg-start)\"` before `cargo test`."
            );
        }
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            // Straight to stderr: the test harness captures `eprintln!`, not this.
            let _ = writeln!(
                std::io::stderr(),
                "\nNOTICE: {PG_URL_VAR} is not set, so the PostgreSQL conformance tests pass \
                 without running. Run `eval \"$(bash scripts/pg-start)\"` to include them \
                 (CI=true makes them fail instead).\n"
            );
        });
        return None;
    };
    let name = format!(
        "aims_test_{}",
        hex(&aims_crypto::random_bytes::<8>().unwrap())
    );
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {PG_URL_VAR}: {e}"));
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let url = with_database(&admin_url, &name);
    let store = Store::connect(&url).await.unwrap();
    Some(Db {
        store,
        url: Some(url),
        _dir: None,
        pg: Some(PgScratch { admin_url, name }),
    })
}

/// `postgres://user:pw@host:port/db?params` with `db` replaced.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        with_database("postgres://u:p@h:1/a", "b"),
        "postgres://u:p@h:1/b"
    );
    assert_eq!(
        with_database("postgres://u:p@h:1", "b"),
        "postgres://u:p@h:1/b"
    );
    assert_eq!(
        with_database("postgresql://u@h/a?sslmode=disable", "b"),
        "postgresql://u@h/b?sslmode=disable"
    );
}
