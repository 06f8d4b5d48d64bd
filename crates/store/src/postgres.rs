//! The production engine: PostgreSQL through sqlx's typed PostgreSQL driver (no `Any`: real
//! booleans, `BYTEA`, arrays, and the statements a service needs to make each hot request one
//! round trip — conditional `UPDATE … RETURNING`, CTEs, stored functions).
//!
//! Each service lives in its own schema (`search_path` is set on every connection), so several
//! services can share one database. Write transactions run at READ COMMITTED; services make them
//! correct with row locks, `ON CONFLICT` and conditional updates. Notifications are `pg_notify`
//! on the channel `cardcash_<service>` inside the transaction (delivered at commit to every
//! process), fed back into the in-process [`Notifier`] by one listener task per database.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Postgres, Transaction};
use tokio_util::sync::CancellationToken;

use crate::error::{Retryable, StoreError};
use crate::migrate::{self, Migration};
use crate::notifier::{self, Note, Notifier};

/// PostgreSQL connections per service instance.
const MAX_CONNECTIONS: u32 = 16;
/// Attempts of [`PgDb::retry_write`] (the first included).
const MAX_WRITE_ATTEMPTS: u32 = 10;

/// The PostgreSQL database of one service; cheap to clone.
#[derive(Clone)]
pub struct PgDb {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    channel: String,
    notifier: Notifier,
    listener_cancel: CancellationToken,
    /// Payloads of committed work for [`run_outbox`] to send.
    outbox: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener_cancel.cancel();
    }
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb")
            .field("channel", &self.inner.channel)
            .finish_non_exhaustive()
    }
}

impl PgDb {
    /// Connects, creates the service's schema if missing, applies pending migrations and
    /// starts listening for notifications (before returning, so none can be missed).
    pub async fn connect(
        url: &str,
        service: &'static str,
        migrations: &[Migration],
    ) -> Result<Self, StoreError> {
        // The service names a schema and a channel in SQL text: a plain identifier only.
        crate::database::check_service_name(service)?;
        migrate::check_order(migrations)?;
        let options = PgConnectOptions::from_str(url)?;
        create_schema(&options, service).await?;
        let set_path = Arc::new(format!(r#"SET search_path TO "{service}""#));
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // No ping before each use: it would double the round trips of every one-statement
            // request. A connection that died (server restart) fails its statement once and is
            // dropped; the request is idempotent, so the client's retry runs on a fresh one.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    sqlx::raw_sql(AssertSqlSafe(set_path.as_str().to_owned()))
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        migrate_postgres(&pool, service, migrations).await?;
        let channel = format!("cardcash_{service}");
        let notifier = Notifier::new();
        let listener_cancel = CancellationToken::new();
        let listener = notifier::pg_listener(url, &channel).await?;
        let outbox_pid = Arc::new(AtomicU32::new(0));
        tokio::spawn(notifier::run_pg_listener(
            listener,
            url.to_owned(),
            channel.clone(),
            notifier.clone(),
            outbox_pid.clone(),
            listener_cancel.clone(),
        ));
        let (outbox, queued) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(run_outbox(
            queued,
            options,
            channel.clone(),
            outbox_pid,
            listener_cancel.clone(),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                channel,
                notifier,
                listener_cancel,
                outbox,
            }),
        })
    }

    /// The pool, for reads (`fetch_*(db.pool())`). Writes go through [`PgDb::begin`] or
    /// [`PgDb::retry_write`] so that their notifications are sent, or are one statement that
    /// calls `pg_notify` itself.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The notification channel (`cardcash_<service>`), for stored functions that notify.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// The in-process notifier (subscribe BEFORE reading the state you wait on).
    pub fn notifier(&self) -> &Notifier {
        &self.inner.notifier
    }

    /// Starts a write transaction (READ COMMITTED).
    pub async fn begin(&self) -> Result<PgTx, StoreError> {
        Ok(PgTx {
            tx: self.inner.pool.begin().await?,
            pending: Vec::new(),
            channel: self.inner.channel.clone(),
            pool: self.inner.pool.clone(),
            notifier: self.inner.notifier.clone(),
        })
    }

    /// Runs `f` in a write transaction and commits; on a serialization failure or deadlock
    /// rolls back and runs it again (bounded, with a short growing pause). `f` may run several
    /// times: it must have no effects outside the transaction.
    pub async fn retry_write<'a, T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        F: for<'t> FnMut(&'t mut PgRetryTx<'a>) -> BoxFuture<'t, Result<T, E>>,
        E: Retryable,
    {
        let mut attempt = 1;
        loop {
            let outcome: Result<T, E> = async {
                let mut tx = PgRetryTx {
                    tx: self.begin().await?,
                    _scope: PhantomData,
                };
                match f(&mut tx).await {
                    Ok(value) => {
                        tx.tx.commit().await?;
                        Ok(value)
                    }
                    Err(error) => {
                        if let Err(rollback_error) = tx.tx.tx.rollback().await {
                            tracing::debug!(%rollback_error, "rollback after error failed");
                        }
                        Err(error)
                    }
                }
            }
            .await;
            match outcome {
                Err(error) if error.is_retryable() && attempt < MAX_WRITE_ATTEMPTS => {
                    tokio::time::sleep(retry_pause(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Notify `(topic, key)` outside any transaction (every process listening is woken).
    pub async fn notify_now(&self, topic: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(self.inner.channel.as_str())
            .bind(notifier::pg_payload(topic, key))
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    /// Delivers the notifications of work that has committed (payloads
    /// `"<topic> <key>[ <message>]"`, as stored functions return them): at once to this
    /// process's subscribers, and without waiting to every other process listening — a
    /// background task sends whatever is queued with one statement on a connection of its own,
    /// in a transaction of its own (why not inside the work's transaction: see
    /// [`PgTx::commit`]), so notifications queued together share one round trip and wake each
    /// listening process once; this process's listener skips them. If sending fails, other
    /// processes' long polls answer at their timeout and their workers on their timers.
    pub fn send_notifications(&self, payloads: impl IntoIterator<Item = String>) {
        for payload in payloads {
            if !self.inner.notifier.deliver_payload(&payload) {
                tracing::warn!(payload, "malformed notification not sent");
                continue;
            }
            // Fails only when the task has ended (shutting down).
            let _ = self.inner.outbox.send(payload);
        }
    }

    /// Stops the listener and closes the pool (graceful shutdown).
    pub async fn close(&self) {
        self.inner.listener_cancel.cancel();
        self.inner.pool.close().await;
    }
}

/// A PostgreSQL write transaction; dropping it without [`PgTx::commit`] rolls back and
/// discards queued notifications.
pub struct PgTx {
    tx: Transaction<'static, Postgres>,
    pending: Vec<Note>,
    channel: String,
    pool: PgPool,
    notifier: Notifier,
}

impl std::fmt::Debug for PgTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTx")
            .field("pending_notifications", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl PgTx {
    /// The connection to run statements on: `.execute(tx.conn())`.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Queue a notification of `(topic, key)`, delivered at commit.
    pub fn notify(&mut self, topic: &'static str, key: &str) {
        Note::push(&mut self.pending, topic, key, None);
    }

    /// [`PgTx::notify`] with a message for subscribers that take messages
    /// ([`crate::Notifier::subscribe_messages`]).
    pub fn notify_with(&mut self, topic: &'static str, key: &str, data: &str) {
        Note::push(&mut self.pending, topic, key, Some(data));
    }

    /// Commits, then sends the queued notifications (one statement, in a transaction of its
    /// own). Notifying inside the data transaction would serialise it behind PostgreSQL's
    /// database-wide notification lock, held across the commit's WAL flush, so that no two
    /// notifying commits could share a flush; after the commit the notification transaction
    /// writes no data and holds that lock for microseconds. A crash between the two loses only
    /// the wake-up: long polls answer at their timeout, workers find due rows on their timer.
    pub async fn commit(self) -> Result<(), StoreError> {
        let PgTx {
            tx,
            pending,
            channel,
            pool,
            notifier,
        } = self;
        tx.commit().await?;
        if !pending.is_empty() {
            let payloads: Vec<String> = pending.iter().map(notifier::note_payload).collect();
            let sent = sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::TEXT[]) AS p")
                .bind(channel.as_str())
                .bind(&payloads)
                .execute(&pool)
                .await;
            if let Err(error) = sent {
                // The work is committed; only the wake-up failed. Wake this process's waiters
                // directly; other processes' long polls answer at their timeout.
                tracing::warn!(%error, "notification after commit failed; waking local waiters");
                for note in &pending {
                    notifier.deliver(&note.topic, &note.key, note.data.as_deref());
                }
            }
        }
        Ok(())
    }

    /// Rolls back explicitly.
    pub async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.tx.rollback().await?)
    }
}

/// The transaction handed to a [`PgDb::retry_write`] closure; derefs to [`PgTx`]. Its lifetime
/// lets the closure's future borrow from the caller.
pub struct PgRetryTx<'a> {
    tx: PgTx,
    _scope: PhantomData<&'a ()>,
}

impl Deref for PgRetryTx<'_> {
    type Target = PgTx;
    fn deref(&self) -> &PgTx {
        &self.tx
    }
}

impl DerefMut for PgRetryTx<'_> {
    fn deref_mut(&mut self) -> &mut PgTx {
        &mut self.tx
    }
}

/// Most notifications sent by one statement.
const OUTBOX_BATCH: usize = 1024;

/// Sends the queued notifications of [`PgDb::send_notifications`] to the other processes:
/// waits for one, takes whatever else is queued and sends them all with one statement on its
/// own connection (so it never waits for the pool), whose backend's process id it publishes in
/// `own_pid` for this process's listener to skip. A failed connection is opened again for the
/// next batch. Ends (closing its connection) at [`PgDb::close`] or when the database is
/// dropped.
async fn run_outbox(
    mut queued: tokio::sync::mpsc::UnboundedReceiver<String>,
    options: PgConnectOptions,
    channel: String,
    own_pid: Arc<AtomicU32>,
    stop: CancellationToken,
) {
    let mut batch = Vec::new();
    let mut conn: Option<PgConnection> = None;
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => 0,
            n = queued.recv_many(&mut batch, OUTBOX_BATCH) => n,
        };
        if received == 0 {
            break;
        }
        let sent = async {
            if conn.is_none() {
                let mut fresh = PgConnection::connect_with(&options).await?;
                let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut fresh)
                    .await?;
                own_pid.store(u32::try_from(pid).unwrap_or(0), Ordering::Relaxed);
                conn = Some(fresh);
            }
            let Some(c) = conn.as_mut() else {
                unreachable!("connected above")
            };
            sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::TEXT[]) AS p")
                .bind(channel.as_str())
                .bind(&batch)
                .execute(c)
                .await
        }
        .await;
        if let Err(error) = sent {
            // The work is committed and this process was woken; only other processes miss
            // the wake-up.
            tracing::warn!(%error, "sending notifications to other processes failed");
            conn = None;
            own_pid.store(0, Ordering::Relaxed);
        }
        batch.clear();
    }
    if let Some(conn) = conn {
        let _ = conn.close().await;
    }
}

/// 2 ms, 4 ms, … capped at 100 ms, plus up to 50 % jitter so retrying writers spread out.
pub(crate) fn retry_pause(attempt: u32) -> Duration {
    let base_ms = (2u64 << attempt.min(6)).min(100);
    let jitter_ms = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base_ms / 512;
    Duration::from_millis(base_ms + jitter_ms)
}

async fn create_schema(options: &PgConnectOptions, service: &str) -> Result<(), StoreError> {
    let mut conn = PgConnection::connect_with(options).await?;
    // `service` is a validated plain identifier, so quoting it is enough.
    let create = format!(r#"CREATE SCHEMA IF NOT EXISTS "{service}""#);
    if let Err(error) = sqlx::raw_sql(AssertSqlSafe(create))
        .execute(&mut conn)
        .await
    {
        // Two instances creating the schema at once: one loses with a unique violation on
        // pg_namespace even with IF NOT EXISTS; the schema exists then.
        let error = StoreError::from(error);
        if !error.is_unique_violation() {
            return Err(error);
        }
    }
    let _closed = conn.close().await;
    Ok(())
}

async fn migrate_postgres(
    pool: &PgPool,
    service: &str,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    // One migrating instance per service at a time; the lock ends with the transaction.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("cardcash-migrate-{service}"))
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS _cardcash_migrations (
           version BIGINT PRIMARY KEY,
           name TEXT NOT NULL,
           checksum BIGINT NOT NULL,
           applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .execute(&mut *tx)
    .await?;
    for migration in migrations {
        let recorded: Option<i64> =
            sqlx::query_scalar("SELECT checksum FROM _cardcash_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_optional(&mut *tx)
                .await?;
        if migrate::decide(migration, recorded)? {
            sqlx::raw_sql(AssertSqlSafe(migration.sql))
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    StoreError::Config(format!(
                        "migration {} ({}) failed: {e}",
                        migration.version, migration.name
                    ))
                })?;
            sqlx::query(
                "INSERT INTO _cardcash_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(migration.checksum())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Creates a new, empty PostgreSQL database `<prefix>_<uuid>` through `admin_url` (a role
/// allowed to `CREATE DATABASE`) and returns its URL. Tests and benchmarks use it so every run
/// starts from nothing.
pub async fn create_fresh_pg_database(admin_url: &str, prefix: &str) -> Result<String, StoreError> {
    if !prefix.chars().all(|c| c.is_ascii_lowercase() || c == '_') || prefix.is_empty() {
        return Err(StoreError::Config(format!(
            "database name prefix {prefix:?} must be lower-case letters"
        )));
    }
    let mut url = url::Url::parse(admin_url)
        .map_err(|e| StoreError::Config(format!("not a URL ({admin_url}): {e}")))?;
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
        .execute(&mut admin)
        .await?;
    // Best effort: the connection is only closed politely.
    let _closed = admin.close().await;
    url.set_path(&name);
    Ok(url.to_string())
}

/// Drops the database `database_url` names (one [`create_fresh_pg_database`] made), through
/// the server of `admin_url`, closing the connections still open to it (PostgreSQL 13+).
pub async fn drop_pg_database(admin_url: &str, database_url: &str) -> Result<(), StoreError> {
    let url = url::Url::parse(database_url)
        .map_err(|e| StoreError::Config(format!("not a URL ({database_url}): {e}")))?;
    let name = url.path().trim_start_matches('/');
    // The name is spliced into SQL: only what create_fresh_pg_database makes.
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Config(format!(
            "refusing to drop database {name:?}: not a plain name"
        )));
    }
    let mut admin = PgConnection::connect(admin_url).await?;
    let dropped = sqlx::raw_sql(AssertSqlSafe(format!(
        r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
    )))
    .execute(&mut admin)
    .await;
    let _closed = admin.close().await;
    dropped?;
    Ok(())
}
