//! Storage for every cardcash service: [`Database`] over SQLite (embedded default) and
//! PostgreSQL (production), each engine with its own typed driver, the store's own migrations
//! ([`Schema`], [`Migration`]), a [`Notifier`] for long polling, mapping of constraint
//! violations to domain errors ([`ResultExt`]), and the dual-engine test harness ([`testing`]).
//!
//! This crate never knows a service's tables.
//!
//! # The typed engines (new code uses these)
//! - [`SqliteDb`] (rusqlite): one writer thread runs whole transaction closures and commits
//!   what is queued together (group commit, a savepoint per closure); reads run inline on a
//!   small pool of read-only connections. No thread hop per statement.
//! - [`PgDb`] (sqlx, typed `Postgres` driver): real `BOOLEAN`/`BYTEA`/arrays; a hot request is
//!   one statement or one stored function (the C exchange's `exchange_do_*` model); `pg_notify`
//!   inside the transaction, one listener per database feeds the in-process notifier so
//!   several service processes on one database wake each other.
//!
//! A service's storage struct holds a [`Database`] and implements each operation once per
//! engine, in `db/sqlite.rs` and `db/postgres.rs`, returning domain types (`Amount`,
//! `Timestamp`, state enums, key types). Handlers and domain code never see which engine runs:
//! ```ignore
//! pub async fn confirm(&self, wopid: &Wopid) -> Result<Confirmed, StoreError> {
//!     match &self.db {
//!         Database::Sqlite(db) => { let w = *wopid; db.write(move |tx| sqlite::confirm(tx, &w)).await }
//!         Database::Postgres(db) => postgres::confirm(db, wopid).await,
//!     }
//! }
//! ```
//! In rusqlite use `?N` placeholders: a `$N` there is a *named* parameter numbered by first
//! appearance, so `SELECT $2, $1` would bind in the wrong order.
//!
//! Decide, then write: a SQLite closure's `Err` rolls back only that closure's writes, so
//! domain outcomes ("already registered", "conflict") are values of `T`, computed from what the
//! closure read inside the same transaction.
//!
//! The older [`Db`] (sqlx `Any`) remains until every service has moved to [`Database`].
//!
//! # Rules for service SQL
//! - One SQL text with `$1, $2, …` placeholders serves both engines (SQLite binds `$N` by
//!   number). What differs (DDL, `FOR UPDATE SKIP LOCKED`, …) branches on [`Db::engine`].
//! - Portable column types: `BIGINT`, `INTEGER`, `TEXT`, and `BLOB` (SQLite) / `BYTEA`
//!   (PostgreSQL), the only difference being in the migrations. Money is
//!   `(…_val BIGINT, …_frac INTEGER)`, times `BIGINT` microseconds. Booleans are `INTEGER` 0/1:
//!   `Any` decodes `bool` only from a real PostgreSQL `BOOLEAN`. Integers decode into any of
//!   `i16/i32/i64` (range-checked), so read counters as `i64`.
//! - Reads use [`Db::pool`]; writes use [`Db::begin_write`] or [`Db::retry_write`], never the
//!   pool (SQLite writers must be serialised through `BEGIN IMMEDIATE`).
//! - PostgreSQL runs at READ COMMITTED: make writes correct with `SELECT … FOR UPDATE`,
//!   `INSERT … ON CONFLICT`, or conditional `UPDATE … WHERE state = $n` and `rows_affected()`.
//!   Name PostgreSQL constraints by the defaults (`<table>_<col>_key`, `<table>_pkey`); on
//!   SQLite [`StoreError::constraint`] maps its messages to those names.
//! - Subscribe BEFORE reading the state you are about to wait on, then `wait`.
//! - `Any` only knows `bool`, `i16/i32/i64`, `f32/f64`, `String`, `Vec<u8>` and `Option` of
//!   them. PostgreSQL-only types must be cast in SQL, e.g. `current_schema()::TEXT` (type
//!   `name` is rejected by `Any`), `COUNT(*)` is `BIGINT` on both engines.
//!
//! # Notifications
//! [`Tx::notify`] queues `(topic, key)`; it is delivered only after a successful commit. On
//! SQLite the fan-out is in-process. On PostgreSQL it is `pg_notify` on the channel
//! `cardcash_<service>` with payload `"<topic> <key>"`, sent inside the transaction; a
//! background `PgListener` per `Db` feeds the in-process fan-out, so service instances in other
//! processes are woken too. [`Notifier::subscribe_topic`] waits for any key of a topic.
//! On SQLite notifications stay inside one `Db` (one process): that is the embedded setup.
//! The listener task runs on the tokio runtime that called [`Db::connect`].
//!
//! # Retries
//! [`Db::retry_write`] runs a closure in a write transaction and repeats it on SQLite
//! BUSY/LOCKED and PostgreSQL `40001`/`40P01`. The closure gets a [`RetryTx`] (derefs to
//! [`Tx`], so `db/` helpers take `&mut Tx`) and may borrow from the caller. A service error
//! enum implements [`Retryable`] by delegating to its wrapped [`StoreError`].
//!
//! # Usage
//! ```no_run
//! use std::time::Duration;
//! use cardcash_store::{Db, DbConfig, Migrations, StoreError};
//!
//! static MIGRATIONS: Migrations = Migrations {
//!     sqlite: sqlx::migrate!("tests/migrations/sqlite"),
//!     postgres: sqlx::migrate!("tests/migrations/postgres"),
//! };
//!
//! # async fn example() -> Result<(), StoreError> {
//! let config = DbConfig { url: "sqlite:/var/lib/cardcash/c2ec.db".into(), service: "c2ec" };
//! let db = Db::connect(&config, &MIGRATIONS).await?;
//!
//! // A waiter (e.g. a long-polling request) subscribes first, then reads, then waits.
//! let mut sub = db.notifier().subscribe("counter", "a");
//!
//! // One write transaction with a notification delivered at commit.
//! let mut tx = db.begin_write().await?;
//! sqlx::query("INSERT INTO counter (name, value) VALUES ($1, 0)")
//!     .bind("a")
//!     .execute(tx.conn())
//!     .await?;
//! tx.notify("counter", "a");
//! tx.commit().await?;
//! assert!(sub.wait(Duration::from_secs(1)).await);
//!
//! // The same with automatic retry of busy/serialization failures.
//! let name = "a";
//! let value: i64 = db
//!     .retry_write(|tx| {
//!         Box::pin(async move {
//!             let (v,): (i64,) = sqlx::query_as(
//!                 "UPDATE counter SET value = value + 1 WHERE name = $1 RETURNING value",
//!             )
//!             .bind(name)
//!             .fetch_one(tx.conn())
//!             .await?;
//!             tx.notify("counter", name);
//!             Ok::<_, StoreError>(v)
//!         })
//!     })
//!     .await?;
//! assert_eq!(value, 1);
//!
//! // Reads go through the pool.
//! let (v,): (i64,) = sqlx::query_as("SELECT value FROM counter WHERE name = $1")
//!     .bind("a")
//!     .fetch_one(db.pool())
//!     .await?;
//! # let _ = v;
//! # Ok(())
//! # }
//! ```
//!
//! # Tests
//! `for db in cardcash_store::testing::engines("c2ec", &MIGRATIONS).await { … }` runs a test
//! body on a fresh SQLite database and, with `CARDCASH_TEST_PG_URL` set, a fresh PostgreSQL
//! database (otherwise it prints `SKIPPING PostgreSQL: CARDCASH_TEST_PG_URL not set`). Locally:
//! ```text
//! eval "$(scripts/pg-test-cluster.sh start)"   # throwaway cluster on 127.0.0.1:54329
//! cargo test -p cardcash-<crate>
//! scripts/pg-test-cluster.sh stop
//! ```

pub mod columns;
mod database;
mod db;
mod error;
mod migrate;
mod notifier;
mod postgres;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use database::{Database, sqlite_path};
pub use db::{Db, DbConfig, Engine, Migrations, RetryTx, Tx};
pub use error::{ResultExt, Retryable, StoreError, retry, retry_if};
pub use migrate::{Migration, Schema};
pub use notifier::{Notifier, Subscription};
pub use postgres::{PgDb, PgRetryTx, PgTx, create_fresh_pg_database};
pub use sqlite::{SqliteDb, SqliteTx, WriterStats, query_all, query_opt};
/// The engines' drivers, for the `db/` modules of services (nobody else uses them).
pub use {rusqlite, sqlx};
