//! `Db`: one connection pool over SQLite or PostgreSQL (sqlx `Any`), migrations, write
//! transactions with notifications, and bounded retries of lost races.
//!
//! Why the engines are handled this way:
//! - SQLite allows one writer at a time. A transaction that starts as a reader and later writes
//!   can fail with `SQLITE_BUSY` immediately (lock upgrade deadlock, which `busy_timeout` cannot
//!   resolve), so every write transaction starts with `BEGIN IMMEDIATE`, and writers of this
//!   process queue on a tokio mutex first instead of spinning in SQLite's busy handler. Readers
//!   run concurrently thanks to WAL. `synchronous=NORMAL` in WAL mode keeps the database
//!   consistent on power loss at the price of possibly losing the last commits.
//! - PostgreSQL runs write transactions at READ COMMITTED; services make them correct with row
//!   locks, `ON CONFLICT` and conditional `UPDATE … WHERE`. Each service gets its own schema
//!   (`search_path` set on every connection), so several services can share one database, each
//!   with its own `_sqlx_migrations` table.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, ConnectOptions, Connection, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;

use crate::error::{Retryable, StoreError};
use crate::notifier::{self, Notifier};

/// Where a service's database lives.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite:/path/to/file.db` (created if missing, parent directories too) or
    /// `postgres://user@host:port/database`. In-memory SQLite is rejected: every pooled
    /// connection would get its own empty database.
    pub url: String,
    /// The service name: the PostgreSQL schema and notification channel are derived from it.
    /// Lower-case ASCII letters, digits and `_`, starting with a letter.
    pub service: &'static str,
}

/// The database engine behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL (production).
    Postgres,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        })
    }
}

/// A service's migrations for both engines, typically a `static`:
/// `Migrations { sqlite: sqlx::migrate!("migrations/sqlite"), postgres: sqlx::migrate!("migrations/postgres") }`.
#[derive(Debug)]
pub struct Migrations {
    /// Applied when the URL is `sqlite:`.
    pub sqlite: Migrator,
    /// Applied (inside the service's schema) when the URL is `postgres://`.
    pub postgres: Migrator,
}

/// How many SQLite connections (readers run in parallel in WAL mode; writers queue).
const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// How many PostgreSQL connections per service instance.
const PG_MAX_CONNECTIONS: u32 = 10;
/// Attempts of [`Db::retry_write`] (the first included).
const MAX_WRITE_ATTEMPTS: u32 = 10;

/// The database handle of one service; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    engine: Engine,
    service: &'static str,
    url: String,
    /// PostgreSQL notification channel of the service.
    channel: String,
    notifier: Notifier,
    /// Serialises this process's SQLite writers (unused on PostgreSQL).
    write_lock: Arc<Mutex<()>>,
    /// Stops the PostgreSQL listener task when the last `Db` clone goes away.
    listener_cancel: CancellationToken,
    /// Keeps a test database's directory alive as long as the `Db` (see `testing`).
    _temp_dir: Option<tempfile::TempDir>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener_cancel.cancel();
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("engine", &self.inner.engine)
            .field("service", &self.inner.service)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Open the service's database, create it (SQLite) or its schema (PostgreSQL) if missing,
    /// apply pending migrations and, on PostgreSQL, start listening for notifications.
    pub async fn connect(config: &DbConfig, migrations: &Migrations) -> Result<Db, StoreError> {
        Self::connect_keeping(config, migrations, None).await
    }

    pub(crate) async fn connect_keeping(
        config: &DbConfig,
        migrations: &Migrations,
        temp_dir: Option<tempfile::TempDir>,
    ) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        check_service_name(config.service)?;
        let engine = engine_of(&config.url)?;
        let notifier = Notifier::new();
        let listener_cancel = CancellationToken::new();
        let channel = format!("cardcash_{}", config.service);
        let pool = match engine {
            Engine::Sqlite => {
                let pool = open_sqlite(&config.url).await?;
                migrate_sqlite(&migrations.sqlite, &pool).await?;
                pool
            }
            Engine::Postgres => {
                let pool = open_postgres(&config.url, config.service).await?;
                migrations.postgres.run(&pool).await?;
                // LISTEN before returning, so no notification after `connect` can be missed.
                let mut listener = PgListener::connect(&config.url).await?;
                listener.listen(&channel).await?;
                tokio::spawn(notifier::run_pg_listener(
                    listener,
                    channel.clone(),
                    notifier.clone(),
                    listener_cancel.clone(),
                ));
                pool
            }
        };
        tracing::debug!(service = config.service, %engine, "database ready");
        Ok(Db {
            inner: Arc::new(Inner {
                pool,
                engine,
                service: config.service,
                url: config.url.clone(),
                channel,
                notifier,
                write_lock: Arc::new(Mutex::new(())),
                listener_cancel,
                _temp_dir: temp_dir,
            }),
        })
    }

    /// Which engine this is (for the few statements that differ).
    pub fn engine(&self) -> Engine {
        self.inner.engine
    }

    /// The service this database belongs to.
    pub fn service(&self) -> &'static str {
        self.inner.service
    }

    /// The URL this database was opened with (may contain a password: do not log it).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The pool, for reads (`fetch_*` with `db.pool()` as executor). Never write through it:
    /// writes go through [`Db::begin_write`] so that SQLite writers are serialised.
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// The notifier to subscribe to (subscribe BEFORE reading the state you wait on).
    pub fn notifier(&self) -> &Notifier {
        &self.inner.notifier
    }

    /// Start a write transaction. SQLite: waits for this process's other writers, then
    /// `BEGIN IMMEDIATE`. PostgreSQL: `BEGIN` (READ COMMITTED).
    pub async fn begin_write(&self) -> Result<Tx, StoreError> {
        let (tx, write_guard) = match self.inner.engine {
            Engine::Sqlite => {
                let guard = self.inner.write_lock.clone().lock_owned().await;
                let tx = self.inner.pool.begin_with("BEGIN IMMEDIATE").await?;
                (tx, Some(guard))
            }
            Engine::Postgres => (self.inner.pool.begin().await?, None),
        };
        Ok(Tx {
            tx,
            write_guard,
            pending: Vec::new(),
            db: self.clone(),
        })
    }

    /// Run `f` in a write transaction and commit; on a busy database or serialization failure
    /// (see [`Retryable`]) roll back and run it again, a bounded number of times with a short
    /// growing pause. Any other error rolls back and is returned.
    ///
    /// `f` may run several times, so it must not have effects outside the transaction. It
    /// returns a boxed future borrowing the transaction:
    /// `db.retry_write(|tx| Box::pin(async move { … tx.conn() … Ok(x) })).await`.
    /// `tx` is a [`RetryTx`], which derefs to [`Tx`] (pass it on as `&mut Tx`). The future may
    /// use references from outside the closure (`let name = req.name.as_str();` before the
    /// call, then `.bind(name)` inside); owned values must be cloned per attempt.
    pub async fn retry_write<'a, T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        F: for<'t> FnMut(&'t mut RetryTx<'a>) -> BoxFuture<'t, Result<T, E>>,
        E: Retryable,
    {
        let mut attempt = 1;
        loop {
            let outcome: Result<T, E> = async {
                let mut tx = RetryTx {
                    tx: self.begin_write().await?,
                    _scope: PhantomData,
                };
                match f(&mut tx).await {
                    Ok(value) => {
                        tx.tx.commit().await?;
                        Ok(value)
                    }
                    Err(error) => {
                        // The error is what matters; a failing rollback only means the
                        // connection is gone, and sqlx discards it.
                        if let Err(rollback_error) = tx.tx.rollback().await {
                            tracing::debug!(%rollback_error, "rollback after error failed");
                        }
                        Err(error)
                    }
                }
            }
            .await;
            match outcome {
                Err(error) if error.is_retryable() && attempt < MAX_WRITE_ATTEMPTS => {
                    tracing::debug!(
                        attempt,
                        service = self.inner.service,
                        "write transaction lost a race; retrying"
                    );
                    tokio::time::sleep(retry_pause(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Notify `(topic, key)` outside any transaction (e.g. after an external event).
    pub async fn notify_now(&self, topic: &str, key: &str) -> Result<(), StoreError> {
        match self.inner.engine {
            Engine::Sqlite => self.inner.notifier.fan_out(topic, key),
            Engine::Postgres => {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(self.inner.channel.as_str())
                    .bind(notifier::pg_payload(topic, key))
                    .execute(&self.inner.pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// Stop the listener and close the pool's connections (graceful shutdown).
    pub async fn close(&self) {
        self.inner.listener_cancel.cancel();
        self.inner.pool.close().await;
    }
}

/// A write transaction (see [`Db::begin_write`]). Dropping it without [`Tx::commit`] rolls back
/// and discards queued notifications.
pub struct Tx {
    // Field order matters: the transaction is dropped (rollback queued) before the SQLite
    // writer lock is released.
    tx: Transaction<'static, Any>,
    write_guard: Option<OwnedMutexGuard<()>>,
    pending: Vec<(String, String)>,
    db: Db,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("engine", &self.db.inner.engine)
            .field("pending_notifications", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Tx {
    /// The connection to run statements on: `.execute(tx.conn())`.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The engine of this transaction's database.
    pub fn engine(&self) -> Engine {
        self.db.inner.engine
    }

    /// Queue a notification of `(topic, key)`, delivered only if and when the transaction
    /// commits. `topic` must not contain a space (it is a code constant such as `"withdrawal"`).
    pub fn notify(&mut self, topic: &'static str, key: &str) {
        debug_assert!(!topic.contains(' '), "notification topics contain no space");
        let entry = (topic.to_owned(), key.to_owned());
        if !self.pending.contains(&entry) {
            self.pending.push(entry);
        }
    }

    /// Commit, then (SQLite) wake the subscribers of the queued notifications. On PostgreSQL
    /// the notifications are sent inside the transaction with `pg_notify`, which delivers them
    /// at commit to every listening process.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        if self.db.inner.engine == Engine::Postgres {
            for (topic, key) in &self.pending {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(self.db.inner.channel.as_str())
                    .bind(notifier::pg_payload(topic, key))
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        let Tx {
            tx,
            write_guard,
            pending,
            db,
        } = self;
        tx.commit().await?;
        drop(write_guard);
        if db.inner.engine == Engine::Sqlite {
            for (topic, key) in &pending {
                db.inner.notifier.fan_out(topic, key);
            }
        }
        Ok(())
    }

    /// Roll back explicitly (preferred over dropping: the writer lock is released only after
    /// the rollback has really happened).
    pub async fn rollback(self) -> Result<(), StoreError> {
        let Tx {
            tx, write_guard, ..
        } = self;
        let result = tx.rollback().await;
        drop(write_guard);
        Ok(result?)
    }
}

/// The transaction handed to a [`Db::retry_write`] closure; derefs to [`Tx`].
///
/// It exists for its lifetime: `&'t mut RetryTx<'a>` tells the compiler that the closure's
/// future (living `'t`) never outlives data borrowed for `'a`, so that future may capture
/// references from the caller.
pub struct RetryTx<'a> {
    tx: Tx,
    _scope: PhantomData<&'a ()>,
}

impl std::fmt::Debug for RetryTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.tx.fmt(f)
    }
}

impl Deref for RetryTx<'_> {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl DerefMut for RetryTx<'_> {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}

/// 2 ms, 4 ms, … capped at 100 ms, plus up to 50 % jitter so retrying writers spread out.
fn retry_pause(attempt: u32) -> Duration {
    let base_ms = (2u64 << attempt.min(6)).min(100);
    let jitter_ms = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base_ms / 512;
    Duration::from_millis(base_ms + jitter_ms)
}

pub(crate) fn check_service_name(service: &str) -> Result<(), StoreError> {
    let mut chars = service.chars();
    let valid = service.len() <= 40
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "invalid service name {service:?}: use lower-case letters, digits and '_'"
        )))
    }
}

pub(crate) fn engine_of(url: &str) -> Result<Engine, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Engine::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Engine::Postgres)
    } else {
        Err(StoreError::Config(format!(
            "database URL must start with sqlite: or postgres:// (got {:?})",
            url.split(':').next().unwrap_or_default()
        )))
    }
}

async fn open_sqlite(url: &str) -> Result<AnyPool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?;
    let path = options.get_filename().to_owned();
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if in_memory || path.as_os_str().is_empty() {
        return Err(StoreError::Config(
            "in-memory SQLite is not supported (each pooled connection would see its own \
             database); use a file, e.g. in a temporary directory"
                .to_owned(),
        ));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent)?;
    }
    // Create the file and switch it to WAL once; journal_mode=WAL is persistent in the file.
    let first = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await?;
    first.close().await?;
    let pool = AnyPoolOptions::new()
        .max_connections(SQLITE_MAX_CONNECTIONS)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // foreign_keys=ON and busy_timeout=5 s are sqlx's defaults for every connection.
                sqlx::raw_sql("PRAGMA synchronous = NORMAL")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

/// Apply SQLite migrations without racing other instances opening the same file.
///
/// sqlx's migration lock is a no-op on SQLite, so two instances starting together would both
/// apply migration 1 and one would fail ("table … already exists"). In this process a global
/// mutex serialises them; another process's race is healed by trying again once its
/// migration transaction has committed (a failed migration transaction leaves nothing behind).
async fn migrate_sqlite(migrator: &Migrator, pool: &AnyPool) -> Result<(), StoreError> {
    static SQLITE_MIGRATIONS: Mutex<()> = Mutex::const_new(());
    let _one_at_a_time = SQLITE_MIGRATIONS.lock().await;
    let mut attempt: u64 = 1;
    loop {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < 3 => {
                tracing::debug!(%error, attempt, "SQLite migration failed; retrying once the race is over");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Config(format!("cannot create directory {}: {e}", dir.display())))
}

async fn open_postgres(url: &str, service: &'static str) -> Result<AnyPool, StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    let mut conn = PgConnection::connect_with(&options).await?;
    // `service` is validated to be a plain identifier, so quoting it is enough.
    let create = format!(r#"CREATE SCHEMA IF NOT EXISTS "{service}""#);
    if let Err(error) = sqlx::raw_sql(AssertSqlSafe(create.clone()))
        .execute(&mut conn)
        .await
    {
        // Two instances creating the schema at the same moment: one loses with a unique
        // violation on pg_namespace even with IF NOT EXISTS; the schema exists then.
        let error = StoreError::from(error);
        if !error.is_unique_violation() {
            return Err(error);
        }
    }
    conn.close().await?;
    let set_path = Arc::new(format!(r#"SET search_path TO "{service}""#));
    let pool = AnyPoolOptions::new()
        .max_connections(PG_MAX_CONNECTIONS)
        .after_connect(move |conn, _meta| {
            let set_path = set_path.clone();
            Box::pin(async move {
                sqlx::raw_sql(AssertSqlSafe(set_path.as_str().to_owned()))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        assert!(check_service_name("c2ec").is_ok());
        assert!(check_service_name("bank_2").is_ok());
        assert!(check_service_name("").is_err());
        assert!(check_service_name("C2ec").is_err());
        assert!(check_service_name("2ec").is_err());
        assert!(check_service_name("a\"; DROP").is_err());
    }

    #[test]
    fn engines_by_url() {
        assert_eq!(engine_of("sqlite:/tmp/x.db").ok(), Some(Engine::Sqlite));
        assert_eq!(engine_of("sqlite://x.db").ok(), Some(Engine::Sqlite));
        assert_eq!(engine_of("postgres://u@h/db").ok(), Some(Engine::Postgres));
        assert_eq!(
            engine_of("postgresql://u@h/db").ok(),
            Some(Engine::Postgres)
        );
        assert!(engine_of("mysql://x").is_err());
    }

    #[test]
    fn retry_pause_is_bounded() {
        for attempt in 1..20 {
            assert!(retry_pause(attempt) <= Duration::from_millis(150));
        }
    }
}
