//! Tests of the store itself, on both engines: SQLite always, PostgreSQL when
//! `CARDCASH_TEST_PG_URL` is set (`eval "$(scripts/pg-test-cluster.sh start)"`), otherwise the
//! PostgreSQL variants print `SKIPPING PostgreSQL: …` and pass.
//!
//! A fake service schema ([`SCHEMA`]) stands in for a service's tables. A test that applies to
//! both engines is written once with [`engine_test!`], which makes `name::sqlite` and
//! `name::postgres`; engine-specific tests say so in their name.
//!
//! - `engines`: the SQLite writer thread (group commit, savepoints, closing) and the typed
//!   PostgreSQL pool.
//! - `open`: migrations (once, checksummed, serialised between instances opening one database
//!   at the same time), one schema per service on PostgreSQL, refused configurations, the
//!   SQLite file's settings.
//! - `errors`: constraint violations named alike on both engines, lost races classified
//!   (SQLite busy, PostgreSQL serialization failure) and retried, no lost updates.
//! - `notify`: notifications only after commit, never for rolled-back work, across instances,
//!   across a killed PostgreSQL listener connection, promptly.

mod engines;
mod errors;
mod notify;
mod open;

use std::time::Duration;

use cardcash_store::rusqlite::{self, OptionalExtension as _};
use cardcash_store::{Database, DbConfig, Engine, Migration, PgDb, Schema, SqliteDb, StoreError};
use cardcash_store::{sqlx, testing};

/// The fake service. `counter` has an unnamed CHECK; `token` a UNIQUE column and a named CHECK
/// (the same name on both engines); `token_use` a foreign key.
const SQLITE_INIT: &str = "
CREATE TABLE counter (name TEXT PRIMARY KEY, value BIGINT NOT NULL CHECK (value >= 0));
CREATE TABLE token (
    token_id INTEGER PRIMARY KEY AUTOINCREMENT,
    nonce BLOB NOT NULL UNIQUE,
    amount_val BIGINT NOT NULL,
    amount_frac INTEGER NOT NULL,
    CONSTRAINT token_amount_frac_check CHECK (amount_frac >= 0 AND amount_frac < 100000000)
);
CREATE TABLE token_use (nonce BLOB NOT NULL REFERENCES token (nonce));
";
const POSTGRES_INIT: &str = "
CREATE TABLE counter (name TEXT PRIMARY KEY, value BIGINT NOT NULL CHECK (value >= 0));
CREATE TABLE token (
    token_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    nonce BYTEA NOT NULL UNIQUE,
    amount_val BIGINT NOT NULL,
    amount_frac INTEGER NOT NULL,
    CONSTRAINT token_amount_frac_check CHECK (amount_frac >= 0 AND amount_frac < 100000000)
);
CREATE TABLE token_use (nonce BYTEA NOT NULL REFERENCES token (nonce));
";
static SQLITE: &[Migration] = &[Migration::new(1, "init", SQLITE_INIT)];
static POSTGRES: &[Migration] = &[Migration::new(1, "init", POSTGRES_INIT)];
static SCHEMA: Schema = Schema {
    sqlite: SQLITE,
    postgres: POSTGRES,
};

const SERVICE: &str = "storetest";

/// How long a test waits for something that must happen (generous: the machine may be
/// loaded). Nothing waits this long when the store works.
const WAIT: Duration = Duration::from_secs(30);

/// One test per engine from one async body: `engine_test!(async fn name(engine: Engine) {…})`
/// gives `name::sqlite` and `name::postgres` (the latter skipped visibly without PostgreSQL).
macro_rules! engine_test {
    ($(#[$attr:meta])* async fn $name:ident ($engine:ident : Engine) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($engine: Engine) $body

            $(#[$attr])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body(Engine::Sqlite).await;
            }

            $(#[$attr])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if crate::pg_available() {
                    body(Engine::Postgres).await;
                }
            }
        }
    };
}
use engine_test;

/// Whether PostgreSQL tests can run; prints the skip message when not.
fn pg_available() -> bool {
    let available = testing::pg_url().is_some();
    if !available {
        eprintln!("{}", testing::SKIP_MESSAGE);
    }
    available
}

/// Where a fresh database of `engine` lives: a SQLite file in a temporary directory, or a new
/// PostgreSQL database. Several instances may open it ([`Place::connect`]).
struct Place {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Place {
    async fn new(engine: Engine) -> Place {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite:{}", dir.path().join("store.db").display());
                Place {
                    url,
                    _dir: Some(dir),
                }
            }
            Engine::Postgres => {
                let admin = testing::pg_url().expect("PostgreSQL tests run only with its URL");
                Place {
                    url: testing::create_pg_database(&admin).await,
                    _dir: None,
                }
            }
        }
    }

    fn config(&self) -> DbConfig {
        DbConfig {
            url: self.url.clone(),
            service: SERVICE,
        }
    }

    /// Opens one more instance of the service's database here.
    async fn connect(&self) -> Result<Database, StoreError> {
        Database::connect(&self.config(), &SCHEMA).await
    }
}

/// A fresh database of `engine`.
async fn fresh(engine: Engine) -> Database {
    match engine {
        Engine::Sqlite => testing::sqlite_database(&SCHEMA).await,
        Engine::Postgres => testing::postgres_database(SERVICE, &SCHEMA)
            .await
            .expect("PostgreSQL tests run only with its URL"),
    }
}

async fn fresh_sqlite() -> SqliteDb {
    match fresh(Engine::Sqlite).await {
        Database::Sqlite(db) => db,
        Database::Postgres(_) => unreachable!("a SQLite database was asked for"),
    }
}

/// A fresh PostgreSQL database, or `None` (skip message printed) without one.
async fn fresh_postgres() -> Option<PgDb> {
    match testing::postgres_database(SERVICE, &SCHEMA).await? {
        Database::Postgres(db) => Some(db),
        Database::Sqlite(_) => unreachable!("a PostgreSQL database was asked for"),
    }
}

/// The value of counter `name`, if it exists.
async fn counter(db: &Database, name: &str) -> Option<i64> {
    match db {
        Database::Sqlite(db) => sqlite_counter(db, name),
        Database::Postgres(db) => pg_counter(db, name).await,
    }
}

fn sqlite_counter(db: &SqliteDb, name: &str) -> Option<i64> {
    db.read(|conn| {
        Ok(conn
            .query_row("SELECT value FROM counter WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    })
    .unwrap()
}

async fn pg_counter(db: &PgDb, name: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT value FROM counter WHERE name = $1")
        .bind(name)
        .fetch_optional(db.pool())
        .await
        .unwrap()
}

/// Inserts counter `name` (one transaction).
async fn insert_counter(db: &Database, name: &str, value: i64) -> Result<(), StoreError> {
    match db {
        Database::Sqlite(db) => sqlite_insert(db, name, value).await,
        Database::Postgres(db) => {
            sqlx::query("INSERT INTO counter (name, value) VALUES ($1, $2)")
                .bind(name)
                .bind(value)
                .execute(db.pool())
                .await?;
            Ok(())
        }
    }
}

async fn sqlite_insert(db: &SqliteDb, name: &str, value: i64) -> Result<(), StoreError> {
    let name = name.to_owned();
    db.write(move |tx| {
        tx.execute(
            "INSERT INTO counter (name, value) VALUES (?1, ?2)",
            rusqlite::params![name, value],
        )?;
        Ok(())
    })
    .await
}

/// How many migrations the database records as applied.
async fn applied_migrations(db: &Database) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM _cardcash_migrations";
    match db {
        Database::Sqlite(db) => db
            .read(|conn| Ok(conn.query_row(SQL, [], |r| r.get(0))?))
            .unwrap(),
        Database::Postgres(db) => sqlx::query_scalar(SQL).fetch_one(db.pool()).await.unwrap(),
    }
}
