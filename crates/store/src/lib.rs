//! Storage for every cardcash service: [`Database`] over SQLite (embedded default) and
//! PostgreSQL (production), each engine with its own typed driver, the store's own migrations
//! ([`Schema`], [`Migration`]), a [`Notifier`] for long polling, mapping of constraint
//! violations to domain errors ([`ResultExt`]), retries of lost races ([`retry`]), and, behind
//! the `testing` feature, the dual-engine test harness (`testing`).
//!
//! This crate never knows a service's tables.
//!
//! # The engines
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
//! # Rules for service SQL
//! - Each engine has its own SQL, in the service's `db/sqlite.rs` and `db/postgres.rs`, and its
//!   own migrations ([`Schema`]: `include_str!` of `migrations/{sqlite,postgres}/NNNN_*.sql`).
//!   Applied migrations are checksummed: edit one and the service refuses to start; add a new
//!   version instead. Several instances may start at once: SQLite serialises them with
//!   `BEGIN IMMEDIATE`, PostgreSQL with an advisory lock.
//! - Column types: money is `(…_val BIGINT, …_frac INTEGER)` ([`columns`]), times `BIGINT`
//!   microseconds, keys `BLOB`/`BYTEA`, booleans `BOOLEAN` (a real type on PostgreSQL, 0/1 on
//!   SQLite). A stored value that does not decode is [`StoreError::Corrupt`].
//! - PostgreSQL runs at READ COMMITTED: make writes correct with `SELECT … FOR UPDATE`,
//!   `INSERT … ON CONFLICT`, or conditional `UPDATE … WHERE state = $n … RETURNING`. Name
//!   PostgreSQL constraints by the defaults (`<table>_<col>_key`, `<table>_pkey`); on SQLite
//!   [`StoreError::constraint`] maps its messages to those names, so a service matches on one
//!   name for both engines ([`ResultExt::on_constraint`]).
//! - Subscribe BEFORE reading the state you are about to wait on, then `wait`.
//!
//! # Notifications
//! [`SqliteTx::notify`] and [`PgTx::notify`] queue `(topic, key)`; it is delivered only after
//! a successful commit (a stored function calls `pg_notify(channel, '<topic> <key>')` itself,
//! on the channel [`PgDb::channel`]). On SQLite the fan-out is in-process: that is the embedded
//! setup, one process per database. On PostgreSQL one listener per [`PgDb`] feeds the
//! in-process fan-out, so service instances in other processes are woken too; after a lost
//! listener connection everybody is woken (they re-read their state).
//! [`Notifier::subscribe_topic`] waits for any key of a topic. The listener task runs on the
//! tokio runtime that called [`Database::connect`].
//!
//! # Retries
//! [`retry`] / [`retry_if`] rerun a unit of work that lost a race (SQLite busy, PostgreSQL
//! `40001`/`40P01`, or what the caller's predicate accepts), bounded, with a short growing
//! pause. [`PgDb::retry_write`] does the same for a whole PostgreSQL transaction; its closure
//! gets a [`PgRetryTx`] (derefs to [`PgTx`]) and may borrow from the caller. A service error
//! enum implements [`Retryable`] by delegating to its wrapped [`StoreError`]. A SQLite write
//! closure runs exactly once: it never loses a race inside the writer thread.
//!
//! # Usage
//! ```no_run
//! use std::time::Duration;
//! use cardcash_store::{Database, DbConfig, Migration, Schema, StoreError};
//!
//! // A service keeps its migrations in files: include_str!("../migrations/sqlite/0001_init.sql").
//! const INIT: &str = "CREATE TABLE counter (name TEXT PRIMARY KEY, value BIGINT NOT NULL);";
//! static SCHEMA: Schema = Schema {
//!     sqlite: &[Migration::new(1, "init", INIT)],
//!     postgres: &[Migration::new(1, "init", INIT)],
//! };
//!
//! # async fn example() -> Result<(), StoreError> {
//! let config = DbConfig { url: "sqlite:/var/lib/cardcash/c2ec.db".into(), service: "c2ec" };
//! let db = Database::connect(&config, &SCHEMA).await?;
//!
//! // A waiter (e.g. a long-polling request) subscribes first, then reads, then waits.
//! let mut sub = db.notifier().subscribe("counter", "a");
//!
//! // One write with a notification delivered at commit.
//! let value: i64 = match &db {
//!     Database::Sqlite(db) => {
//!         db.write(|tx| {
//!             let v = tx.query_row(
//!                 "INSERT INTO counter (name, value) VALUES ('a', 1)
//!                  ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
//!                 [],
//!                 |row| row.get(0),
//!             )?;
//!             tx.notify("counter", "a");
//!             Ok(v)
//!         })
//!         .await?
//!     }
//!     Database::Postgres(db) => {
//!         let mut tx = db.begin().await?;
//!         let v = sqlx::query_scalar(
//!             "INSERT INTO counter (name, value) VALUES ('a', 1)
//!              ON CONFLICT (name) DO UPDATE SET value = counter.value + 1 RETURNING value",
//!         )
//!         .fetch_one(tx.conn())
//!         .await?;
//!         tx.notify("counter", "a");
//!         tx.commit().await?;
//!         v
//!     }
//! };
//! assert!(sub.wait(Duration::from_secs(1)).await);
//! # let _ = value;
//! # Ok(())
//! # }
//! ```
//!
//! # Tests
//! With the `testing` feature (dev-dependencies only, so production builds carry none of it),
//! `testing::sqlite_database` and `testing::postgres_database` open a fresh, migrated
//! database; the latter needs `CARDCASH_TEST_PG_URL` and otherwise prints
//! `SKIPPING PostgreSQL: CARDCASH_TEST_PG_URL not set`. Locally:
//! ```text
//! eval "$(scripts/pg-test-cluster.sh start)"   # throwaway cluster on 127.0.0.1:54329
//! cargo test -p cardcash-<crate>
//! scripts/pg-test-cluster.sh stop
//! ```

pub mod columns;
mod database;
mod error;
mod migrate;
mod notifier;
mod postgres;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use database::{Database, DbConfig, Engine, sqlite_path};
pub use error::{ResultExt, Retryable, StoreError, retry, retry_if};
pub use migrate::{Migration, Schema};
pub use notifier::{Notifier, Subscription};
pub use postgres::{PgDb, PgRetryTx, PgTx, create_fresh_pg_database, drop_pg_database};
pub use sqlite::{SqliteDb, SqliteTx, WriterStats, query_all, query_opt};
/// The engines' drivers, for the `db/` modules of services (nobody else uses them).
pub use {rusqlite, sqlx};
