//! The dual-engine test harness used by every service's storage tests: the same test body runs
//! against a fresh SQLite database and, when a PostgreSQL test cluster is configured, a fresh
//! PostgreSQL database.
//!
//! PostgreSQL is configured by the environment variable [`PG_URL_VAR`], an admin URL such as
//! `postgres://postgres@127.0.0.1:54329/postgres` (`scripts/pg-test-cluster.sh start` prints
//! it). Without it PostgreSQL is skipped *visibly*: [`SKIP_MESSAGE`] goes to stderr on every
//! call (shown with `--nocapture` and for failing tests) and is counted ([`pg_skips`]). CI sets
//! the variable, so both engines run there.
//!
//! Test support code: setup failures panic with a message, they are not recoverable.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable holding the PostgreSQL admin URL for tests.
pub const PG_URL_VAR: &str = "CARDCASH_TEST_PG_URL";

/// Printed to stderr whenever a PostgreSQL run is skipped.
pub const SKIP_MESSAGE: &str = "SKIPPING PostgreSQL: CARDCASH_TEST_PG_URL not set";

static PG_SKIPS: AtomicUsize = AtomicUsize::new(0);

/// The PostgreSQL admin URL for tests, if configured (empty counts as unset).
pub fn pg_url() -> Option<String> {
    std::env::var(PG_URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// How many times this process skipped PostgreSQL (for a summary line).
pub fn pg_skips() -> usize {
    PG_SKIPS.load(Ordering::Relaxed)
}

/// Create an empty database `test_<uuid>` and return its URL.
pub async fn create_pg_database(admin_url: &str) -> String {
    create_fresh_pg_database(admin_url, "test")
        .await
        .unwrap_or_else(|e| {
            panic!("cannot create a test database through {PG_URL_VAR}={admin_url}: {e}")
        })
}

pub use crate::postgres::create_fresh_pg_database;

/// A fresh, migrated SQLite [`Database`](crate::Database) in its own temporary directory
/// (removed when the last clone is dropped).
pub async fn sqlite_database(schema: &crate::Schema) -> crate::Database {
    let dir = tempfile::Builder::new()
        .prefix("cardcash-test-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let path = dir.path().join("test.db");
    let migrations = schema.sqlite;
    let db = tokio::task::spawn_blocking(move || {
        crate::SqliteDb::open_keeping(&path, migrations, Some(Box::new(dir)))
    })
    .await
    .unwrap_or_else(|e| panic!("SQLite open task failed: {e}"))
    .unwrap_or_else(|e| panic!("cannot open test SQLite database: {e}"));
    crate::Database::Sqlite(db)
}

/// A fresh, migrated PostgreSQL [`Database`](crate::Database) for `service`, or `None` (after
/// printing [`SKIP_MESSAGE`]) when [`PG_URL_VAR`] is unset.
pub async fn postgres_database(
    service: &'static str,
    schema: &crate::Schema,
) -> Option<crate::Database> {
    let Some(admin_url) = pg_url() else {
        PG_SKIPS.fetch_add(1, Ordering::Relaxed);
        eprintln!("{SKIP_MESSAGE}");
        return None;
    };
    let url = create_pg_database(&admin_url).await;
    let db = crate::PgDb::connect(&url, service, schema.postgres)
        .await
        .unwrap_or_else(|e| panic!("cannot open test PostgreSQL database: {e}"));
    Some(crate::Database::Postgres(db))
}
