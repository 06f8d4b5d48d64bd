//! The embedded engine: SQLite through rusqlite, with one writer thread and inline readers.
//!
//! Why this shape (and not a connection pool):
//! - SQLite has one writer at a time anyway. A single writer thread owns the only read-write
//!   connection and runs whole transaction closures sent to it; while it works, new closures
//!   queue up and the next round runs them all in ONE transaction (group commit), each inside
//!   its own savepoint so that a failing closure rolls back alone. So a request costs one
//!   thread hop per transaction, not one per statement, and a busy service commits many
//!   requests at the price of one.
//! - Results (and notifications) are delivered only after the commit: no caller ever sees, or
//!   answers a client with, a write that could still be rolled back.
//! - Reads run on the caller's thread on a small pool of read-only connections: a WAL reader
//!   never waits for the writer, and an indexed lookup costs microseconds, far less than a
//!   hop to another thread. Keep reads short (bounded `LIMIT`s).
//! - `synchronous = NORMAL` in WAL mode: the database stays consistent on power loss, at the
//!   price of possibly losing the last commits.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::migrate::{self, Migration};
use crate::notifier::{Note, Notifier};

/// Most closures committed together in one transaction.
const MAX_BATCH: usize = 128;
/// Idle read-only connections kept for reuse (more are opened under load and then closed).
const MAX_IDLE_READERS: usize = 8;
/// How long a statement waits for another process's write lock (CLI admin commands).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 128;

/// The SQLite database of one service; cheap to clone.
#[derive(Clone)]
pub struct SqliteDb {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    jobs: Mutex<Option<Sender<Box<dyn Job>>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    notifier: Notifier,
    stats: Arc<WriterStats>,
    /// Whatever must live as long as the database (a test's temporary directory).
    _keep_alive: Option<Box<dyn Send + Sync>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer thread once the queued work is committed.
        lock(&self.jobs).take();
        if let Some(handle) = lock(&self.writer).take() {
            let _finished = handle.join();
        }
    }
}

/// Counters of the writer thread (group commit in numbers).
#[derive(Debug, Default)]
pub struct WriterStats {
    transactions: AtomicU64,
    closures: AtomicU64,
    queued: AtomicU64,
}

impl WriterStats {
    /// `(transactions committed or rolled back, closures run)`; their ratio is the average
    /// group size.
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.transactions.load(Ordering::Relaxed),
            self.closures.load(Ordering::Relaxed),
        )
    }

    /// Closures waiting for the writer right now (queue depth).
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// The transaction a write closure runs in (inside its own savepoint). Derefs to the
/// connection, so `tx.execute(…)`, `tx.prepare_cached(…)` and `tx.query_row(…)` work.
pub struct SqliteTx<'c> {
    conn: &'c Connection,
    notes: &'c mut Vec<Note>,
}

impl SqliteTx<'_> {
    /// Queue a notification of `(topic, key)`, delivered only if this closure's work commits.
    pub fn notify(&mut self, topic: &'static str, key: &str) {
        Note::push(self.notes, topic, key, None);
    }

    /// [`SqliteTx::notify`] with a message for subscribers that take messages
    /// ([`crate::Notifier::subscribe_messages`]); the same `(topic, key)` notified again in
    /// this closure keeps only the later message.
    pub fn notify_with(&mut self, topic: &'static str, key: &str, data: &str) {
        Note::push(self.notes, topic, key, Some(data));
    }
}

impl std::ops::Deref for SqliteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl SqliteDb {
    /// Opens (creating if missing, with mode 0600) the database file at `path`, applies the
    /// pending migrations and starts the writer thread.
    pub fn open(path: &Path, migrations: &[Migration]) -> Result<Self, StoreError> {
        Self::open_keeping(path, migrations, None)
    }

    /// [`SqliteDb::open`], keeping `keep_alive` until the last clone is dropped (the test
    /// harness keeps its temporary directory so).
    pub(crate) fn open_keeping(
        path: &Path,
        migrations: &[Migration],
        keep_alive: Option<Box<dyn Send + Sync>>,
    ) -> Result<Self, StoreError> {
        migrate::check_order(migrations)?;
        create_private_file(path)?;
        let mut writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&writer)?;
        // journal_mode=WAL is persistent in the file; the readers rely on it.
        writer.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        migrate_sqlite(&mut writer, migrations)?;

        let (sender, receiver) = std::sync::mpsc::channel::<Box<dyn Job>>();
        let notifier = Notifier::new();
        let stats = Arc::new(WriterStats::default());
        let handle = {
            let notifier = notifier.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("sqlite-writer".to_owned())
                .spawn(move || writer_loop(writer, receiver, notifier, stats))
                .map_err(|e| StoreError::Config(format!("cannot start the SQLite writer: {e}")))?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                jobs: Mutex::new(Some(sender)),
                writer: Mutex::new(Some(handle)),
                readers: Mutex::new(Vec::new()),
                notifier,
                stats,
                _keep_alive: keep_alive,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The in-process notifier (subscribe BEFORE reading the state you wait on).
    pub fn notifier(&self) -> &Notifier {
        &self.inner.notifier
    }

    /// Group-commit counters.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Runs `f` in a write transaction on the writer thread and returns its result once the
    /// transaction has committed. An `Err` from `f` (or a panic in it) rolls back `f`'s own
    /// writes only. `f` runs exactly once; if the caller stops waiting, the work still commits.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteTx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(WriteJob {
            f: Some(f),
            outcome: None,
            notes: Vec::new(),
            reply: Some(reply),
        });
        {
            let jobs = lock(&self.inner.jobs);
            let sender = jobs.as_ref().ok_or(StoreError::Closed)?;
            self.inner.stats.queued.fetch_add(1, Ordering::Relaxed);
            if sender.send(job).is_err() {
                self.inner.stats.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(StoreError::Closed);
            }
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read-only connection, on the calling thread. Keep it short.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = match lock(&self.inner.readers).pop() {
            Some(conn) => conn,
            None => open_reader(&self.inner.path)?,
        };
        let result = f(&conn);
        let mut idle = lock(&self.inner.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Wake the subscribers of `(topic, key)` (outside any transaction).
    pub fn notify_now(&self, topic: &str, key: &str) {
        self.inner.notifier.fan_out(topic, key);
    }

    /// Stops accepting writes; queued ones still commit. Reads keep working.
    pub fn close(&self) {
        lock(&self.inner.jobs).take();
    }
}

/// The first row of a cached statement, decoded; `None` when there is none.
pub fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl FnOnce(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    match rows.next()? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// Every row of a cached statement, decoded (bound the statement with a `LIMIT`).
pub fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut decode: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a push/pop/take: the data stays consistent after a panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Creates the database file readable by its owner only (the WAL and shared-memory files
/// SQLite creates next to it take the same permissions), and its directory if missing.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Config(format!("cannot create directory {}: {e}", parent.display()))
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", path.display())))
}

fn migrate_sqlite(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _cardcash_migrations (
           version INTEGER PRIMARY KEY,
           name TEXT NOT NULL,
           checksum INTEGER NOT NULL,
           applied_at INTEGER NOT NULL
         )",
    )?;
    // IMMEDIATE: two processes opening the same file apply the migrations one after the other.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for migration in migrations {
        let recorded: Option<i64> = tx
            .query_row(
                "SELECT checksum FROM _cardcash_migrations WHERE version = ?1",
                [migration.version],
                |row| row.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })?;
        if migrate::decide(migration, recorded)? {
            tx.execute_batch(migration.sql).map_err(|e| {
                StoreError::Config(format!(
                    "migration {} ({}) failed: {e}",
                    migration.version, migration.name
                ))
            })?;
            tx.execute(
                "INSERT INTO _cardcash_migrations (version, name, checksum, applied_at)
                 VALUES (?1, ?2, ?3, CAST(strftime('%s','now') AS INTEGER))",
                rusqlite::params![migration.version, migration.name, migration.checksum()],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A closure queued for the writer thread, with its reply channel.
trait Job: Send {
    /// Runs the closure; `true` if its work should be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// The notifications of a kept closure.
    fn take_notes(&mut self) -> Vec<Note>;
    /// Sends the answer: the closure's own error if it failed, else the outcome of the commit.
    fn finish(&mut self, commit: Result<(), &StoreError>);
}

struct WriteJob<T, F> {
    f: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    notes: Vec<Note>,
    reply: Option<oneshot::Sender<Result<T, StoreError>>>,
}

impl<T, F> Job for WriteJob<T, F>
where
    T: Send,
    F: FnOnce(&mut SqliteTx<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let mut tx = SqliteTx {
            conn,
            notes: &mut self.notes,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| f(&mut tx)))
            .unwrap_or_else(|panic| Err(StoreError::Internal(panic_message(&*panic))));
        let keep = outcome.is_ok();
        self.outcome = Some(outcome);
        keep
    }

    fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    fn finish(&mut self, commit: Result<(), &StoreError>) {
        let answer = match (self.outcome.take(), commit) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(commit_error)) => Err(commit_error.duplicate()),
            (None, Ok(())) => Err(StoreError::Internal("write closure never ran".to_owned())),
        };
        if let Some(reply) = self.reply.take() {
            // The caller may have stopped waiting; the work is committed regardless.
            let _ignored = reply.send(answer);
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".to_owned());
    format!("write transaction panicked: {text}")
}

fn writer_loop(
    conn: Connection,
    jobs: Receiver<Box<dyn Job>>,
    notifier: Notifier,
    stats: Arc<WriterStats>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        stats
            .queued
            .fetch_sub(batch.len() as u64, Ordering::Relaxed);
        stats.transactions.fetch_add(1, Ordering::Relaxed);
        stats
            .closures
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        run_batch(&conn, &mut batch, &notifier);
        batch.clear();
    }
    // Dropping the connection checkpoints the WAL when it is the last one.
}

/// One group transaction: every closure in its own savepoint, one commit for all.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>], notifier: &Notifier) {
    if let Err(error) = exec(conn, "BEGIN IMMEDIATE") {
        for job in batch.iter_mut() {
            job.finish(Err(&error));
        }
        return;
    }
    let mut notes = Vec::new();
    let mut broken = None;
    for job in batch.iter_mut() {
        if let Err(error) = exec(conn, "SAVEPOINT job") {
            broken = Some(error);
            break;
        }
        let keep = job.run(conn);
        let end = if keep {
            notes.extend(job.take_notes());
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        if let Err(error) = end {
            broken = Some(error);
            break;
        }
    }
    let committed = match broken {
        Some(error) => Err(error),
        None => exec(conn, "COMMIT"),
    };
    match &committed {
        Ok(()) => {
            for note in &notes {
                notifier.deliver(&note.topic, &note.key, note.data.as_deref());
            }
        }
        Err(error) => {
            tracing::error!(%error, "SQLite group transaction failed; rolling back");
            if !conn.is_autocommit()
                && let Err(rollback_error) = exec(conn, "ROLLBACK")
            {
                tracing::error!(%rollback_error, "SQLite rollback failed");
            }
        }
    }
    for job in batch.iter_mut() {
        job.finish(committed.as_ref().map(|_| ()));
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}
