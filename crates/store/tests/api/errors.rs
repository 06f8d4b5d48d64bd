//! Errors classified alike on both engines (constraint names, lost races), retries of lost
//! races, and no lost updates under concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cardcash_store::rusqlite::{self, Connection};
use cardcash_store::{Database, Engine, PgTx, ResultExt, SqliteDb, StoreError, retry, sqlx};

use crate::{counter, engine_test, fresh, fresh_postgres, insert_counter, sqlite_counter};

#[derive(Debug, PartialEq)]
enum ServiceError {
    DuplicateNonce,
    Store(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(e.to_string())
    }
}

impl cardcash_store::Retryable for ServiceError {
    fn is_retryable(&self) -> bool {
        false
    }
}

async fn insert_token(db: &Database, nonce: &'static [u8], frac: i32) -> Result<(), StoreError> {
    match db {
        Database::Sqlite(db) => {
            db.write(move |tx| {
                tx.execute(
                    "INSERT INTO token (nonce, amount_val, amount_frac) VALUES (?1, 5, ?2)",
                    rusqlite::params![nonce, frac],
                )?;
                Ok(())
            })
            .await
        }
        Database::Postgres(db) => {
            sqlx::query("INSERT INTO token (nonce, amount_val, amount_frac) VALUES ($1, 5, $2)")
                .bind(nonce)
                .bind(frac)
                .execute(db.pool())
                .await?;
            Ok(())
        }
    }
}

async fn use_token(db: &Database, nonce: &'static [u8]) -> Result<(), StoreError> {
    match db {
        Database::Sqlite(db) => {
            db.write(move |tx| {
                tx.execute("INSERT INTO token_use (nonce) VALUES (?1)", [nonce])?;
                Ok(())
            })
            .await
        }
        Database::Postgres(db) => {
            sqlx::query("INSERT INTO token_use (nonce) VALUES ($1)")
                .bind(nonce)
                .execute(db.pool())
                .await?;
            Ok(())
        }
    }
}

engine_test!(
    /// A service matches constraint violations by PostgreSQL's names on both engines; what it
    /// does not map is a broken invariant (500, `GENERIC_DB_INVARIANT_FAILURE`).
    async fn constraint_violations_are_classified_with_postgres_names(engine: Engine) {
        let db = fresh(engine).await;
        insert_token(&db, b"nonce-1", 0).await.unwrap();

        let dup = insert_token(&db, b"nonce-1", 0).await.unwrap_err();
        assert!(dup.is_unique_violation(), "{dup}");
        assert!(!dup.is_foreign_key_violation(), "{dup}");
        assert!(!dup.is_busy_or_serialization(), "{dup}");
        assert_eq!(dup.code().code(), 56, "GENERIC_DB_INVARIANT_FAILURE");
        assert_eq!(dup.status(), 500);
        assert_eq!(dup.constraint().as_deref(), Some("token_nonce_key"));
        assert!(dup.is_constraint("token_nonce_key"));
        let mapped: Result<(), ServiceError> =
            Err(dup).on_constraint("token_nonce_key", |_| ServiceError::DuplicateNonce);
        assert_eq!(mapped, Err(ServiceError::DuplicateNonce));

        let check = insert_token(&db, b"nonce-2", 100_000_000)
            .await
            .unwrap_err();
        assert!(!check.is_unique_violation(), "{check}");
        assert_eq!(
            check.constraint().as_deref(),
            Some("token_amount_frac_check")
        );
        assert_eq!(check.code().code(), 56, "GENERIC_DB_INVARIANT_FAILURE");
        // Another constraint passes through as a store error.
        let passed: Result<(), ServiceError> =
            Err(check).on_constraint("token_nonce_key", |_| ServiceError::DuplicateNonce);
        assert!(matches!(passed, Err(ServiceError::Store(_))), "{passed:?}");

        insert_counter(&db, "pk", 1).await.unwrap();
        let pk = insert_counter(&db, "pk", 2).await.unwrap_err();
        assert!(pk.is_unique_violation(), "{pk}");
        assert_eq!(pk.constraint().as_deref(), Some("counter_pkey"));
        let mapped: Result<(), ServiceError> =
            Err(pk).on_unique_violation(|_| ServiceError::DuplicateNonce);
        assert_eq!(mapped, Err(ServiceError::DuplicateNonce));
        assert_eq!(counter(&db, "pk").await, Some(1));

        // Foreign keys are enforced (SQLite only with foreign_keys=ON on the writer).
        let fk = use_token(&db, b"unknown").await.unwrap_err();
        assert!(fk.is_foreign_key_violation(), "{fk}");
        assert!(!fk.is_unique_violation(), "{fk}");
        assert_eq!(fk.code().code(), 56, "GENERIC_DB_INVARIANT_FAILURE");
        use_token(&db, b"nonce-1").await.unwrap();
    }
);

engine_test!(
    /// Read, then write what was read plus one, from many tasks at once: the pattern that
    /// loses updates without serialisation. SQLite runs every closure on the one writer (a
    /// group's closures see each other's writes); PostgreSQL needs the row lock.
    async fn concurrent_read_modify_write_loses_no_update(engine: Engine) {
        const TASKS: usize = 8;
        const INCREMENTS: usize = 50;
        let db = fresh(engine).await;
        insert_counter(&db, "c", 0).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..INCREMENTS {
                    match &db {
                        Database::Sqlite(db) => sqlite_increment(db, "c").await.unwrap(),
                        Database::Postgres(db) => db
                            .retry_write(|tx| {
                                Box::pin(async move {
                                    let v: i64 = sqlx::query_scalar(
                                        "SELECT value FROM counter WHERE name = 'c' FOR UPDATE",
                                    )
                                    .fetch_one(tx.conn())
                                    .await?;
                                    tokio::task::yield_now().await;
                                    set_counter(tx, "c", v + 1).await
                                })
                            })
                            .await
                            .unwrap(),
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(counter(&db, "c").await, Some((TASKS * INCREMENTS) as i64));
    }
);

/// Reads counter `name` and writes it back plus one, in one write closure.
async fn sqlite_increment(db: &SqliteDb, name: &'static str) -> Result<(), StoreError> {
    db.write(move |tx| {
        let v: i64 = tx.query_row("SELECT value FROM counter WHERE name = ?1", [name], |r| {
            r.get(0)
        })?;
        tx.execute(
            "UPDATE counter SET value = ?1 WHERE name = ?2",
            rusqlite::params![v + 1, name],
        )?;
        Ok(())
    })
    .await
}

/// A `db/` helper as services write them: it takes the plain transaction.
async fn set_counter(tx: &mut PgTx, name: &str, value: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE counter SET value = $1 WHERE name = $2")
        .bind(value)
        .bind(name)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Two instances on one SQLite file (two processes in production) each have their own writer
/// thread: SQLite's write lock serialises them. A writer that does not wait for the lock gets
/// BUSY, which is a lost race that [`retry`] runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_instances_on_one_file_serialise_and_busy_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let first = SqliteDb::open(&path, crate::SQLITE).unwrap();
    let second = SqliteDb::open(&path, crate::SQLITE).unwrap();
    crate::sqlite_insert(&first, "two", 0).await.unwrap();

    // The second instance holds the write lock inside a closure until released.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (running, holds) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let second = second.clone();
        tokio::spawn(async move {
            second
                .write(move |_tx| {
                    let _ = running.send(());
                    held.recv().ok();
                    Ok(())
                })
                .await
        })
    };
    holds.await.unwrap();

    let impatient = Connection::open(&path).unwrap();
    impatient.busy_timeout(Duration::ZERO).unwrap();
    let impatient = &impatient;
    let mut holder = Some((release, holder));
    let attempts = AtomicUsize::new(0);
    let attempts = &attempts;
    retry(|| {
        let holder = holder.take();
        async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            if let Err(busy) = impatient.execute_batch("BEGIN IMMEDIATE") {
                let busy = StoreError::from(busy);
                assert!(busy.is_busy_or_serialization(), "{busy}");
                assert!(!busy.is_unique_violation(), "{busy}");
                assert_eq!(busy.code().code(), 55, "GENERIC_DB_SOFT_FAILURE");
                // The holder finishes before the next attempt: that one must succeed.
                if let Some((release, holder)) = holder {
                    release.send(()).unwrap();
                    holder.await.unwrap().unwrap();
                }
                return Err(busy);
            }
            impatient.execute(
                "UPDATE counter SET value = value + 1 WHERE name = 'two'",
                [],
            )?;
            impatient.execute_batch("COMMIT")?;
            Ok::<_, StoreError>(())
        }
    })
    .await
    .unwrap();
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "busy once, then retried"
    );
    assert_eq!(sqlite_counter(&first, "two"), Some(1));

    // Read-modify-write from both instances at once loses nothing.
    let mut tasks = Vec::new();
    for db in [first.clone(), second.clone(), first.clone(), second.clone()] {
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                sqlite_increment(&db, "two").await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(sqlite_counter(&first, "two"), Some(101));
    assert_eq!(sqlite_counter(&second, "two"), Some(101));
}

/// Under SERIALIZABLE, PostgreSQL refuses the second of two conflicting transactions with
/// `40001`: classified as a lost race (`GENERIC_DB_SOFT_FAILURE`), and `retry_write` runs the
/// transaction again until it wins, so optimistic read-modify-write loses no update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_serialization_failures_are_classified_and_retried() {
    let Some(db) = fresh_postgres().await else {
        return;
    };
    const SERIALIZABLE: &str = "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE";
    const READ: &str = "SELECT value FROM counter WHERE name = 's'";
    insert_counter(&Database::Postgres(db.clone()), "s", 0)
        .await
        .unwrap();

    // A deterministic conflict: both read, one writes and commits, the other's write fails.
    let mut t1 = db.begin().await.unwrap();
    let mut t2 = db.begin().await.unwrap();
    for t in [&mut t1, &mut t2] {
        sqlx::query(SERIALIZABLE).execute(t.conn()).await.unwrap();
        sqlx::query(READ).fetch_one(t.conn()).await.unwrap();
    }
    set_counter(&mut t1, "s", 1).await.unwrap();
    t1.commit().await.unwrap();
    let lost = set_counter(&mut t2, "s", 1).await.unwrap_err();
    assert!(lost.is_busy_or_serialization(), "{lost}");
    assert!(!lost.is_unique_violation(), "{lost}");
    assert_eq!(lost.code().code(), 55, "GENERIC_DB_SOFT_FAILURE");
    t2.rollback().await.unwrap();

    // retry_write reruns a transaction that lost: its first attempt is made to conflict with
    // a write committed by another connection between its read and its write.
    let attempts = AtomicUsize::new(0);
    let attempts = &attempts;
    let pool = db.pool();
    let seen: i64 = db
        .retry_write(|tx| {
            Box::pin(async move {
                let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                sqlx::query(SERIALIZABLE).execute(tx.conn()).await?;
                let v: i64 = sqlx::query_scalar(READ).fetch_one(tx.conn()).await?;
                if attempt == 1 {
                    sqlx::query("UPDATE counter SET value = value + 10 WHERE name = 's'")
                        .execute(pool)
                        .await?;
                }
                set_counter(tx, "s", v + 1).await?;
                Ok::<_, StoreError>(v)
            })
        })
        .await
        .unwrap();
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "lost once, then retried"
    );
    assert_eq!(seen, 11, "the retry read the other connection's write");

    // Optimistic read-modify-write from several tasks: conflicts are retried, none is lost.
    const TASKS: usize = 4;
    const INCREMENTS: usize = 25;
    let retried = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let db = db.clone();
        let retried = retried.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                let retried = &retried;
                db.retry_write(|tx| {
                    Box::pin(async move {
                        retried.fetch_add(1, Ordering::Relaxed);
                        sqlx::query(SERIALIZABLE).execute(tx.conn()).await?;
                        let v: i64 = sqlx::query_scalar(READ).fetch_one(tx.conn()).await?;
                        // Let the other tasks read the same value.
                        tokio::task::yield_now().await;
                        set_counter(tx, "s", v + 1).await
                    })
                })
                .await
                .unwrap_or_else(|e: StoreError| panic!("increment: {e}"));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = TASKS * INCREMENTS;
    eprintln!(
        "postgres: {total} serializable increments took {} attempts",
        retried.load(Ordering::Relaxed)
    );
    assert_eq!(
        counter(&Database::Postgres(db), "s").await,
        Some(12 + total as i64)
    );
}

/// `retry_write` gives up at once on an error that is not a lost race, rolls back, and
/// returns the error; its closure may borrow from the caller.
#[tokio::test]
async fn postgres_retry_write_rolls_back_on_error_and_returns_it() {
    let Some(db) = fresh_postgres().await else {
        return;
    };
    let owned = String::from("gone");
    let name = owned.as_str();
    let attempts = AtomicUsize::new(0);
    let attempts = &attempts;
    let mut sub = db.notifier().subscribe("counter", name);
    let result: Result<(), ServiceError> = db
        .retry_write(|tx| {
            Box::pin(async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                sqlx::query("INSERT INTO counter (name, value) VALUES ($1, 1)")
                    .bind(name)
                    .execute(tx.conn())
                    .await
                    .map_err(StoreError::from)?;
                tx.notify("counter", name);
                Err(ServiceError::DuplicateNonce)
            })
        })
        .await;
    assert_eq!(result, Err(ServiceError::DuplicateNonce));
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "not retried");
    let db = Database::Postgres(db);
    assert_eq!(counter(&db, name).await, None, "rolled back");
    // A later notification arrives; the rolled-back one never did.
    crate::notify::deliver_marker(&db).await;
    assert!(!sub.wait(Duration::ZERO).await, "woken by rolled-back work");
}
