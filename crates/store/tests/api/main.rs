//! Storage tests of the store itself, run against every available engine (SQLite always,
//! PostgreSQL when `CARDCASH_TEST_PG_URL` is set; see `scripts/pg-test-cluster.sh`).
//!
//! The fake service schema lives in `tests/migrations/{sqlite,postgres}`.

mod engines;

use std::sync::Arc;

use sqlx::ConnectOptions;
use std::time::{Duration, Instant};

use cardcash_store::{Db, DbConfig, Engine, Migrations, ResultExt, StoreError, Tx, testing};

static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("tests/migrations/sqlite"),
    postgres: sqlx::migrate!("tests/migrations/postgres"),
};

const SERVICE: &str = "storetest";

async fn engines() -> Vec<Db> {
    testing::engines(SERVICE, &MIGRATIONS).await
}

async fn counter(db: &Db, name: &str) -> Option<i64> {
    sqlx::query_as::<_, (i64,)>("SELECT value FROM counter WHERE name = $1")
        .bind(name)
        .fetch_optional(db.pool())
        .await
        .unwrap_or_else(|e| panic!("{}: read counter: {e}", db.engine()))
        .map(|(v,)| v)
}

async fn insert_counter(db: &Db, name: &str, value: i64) -> Result<(), StoreError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("INSERT INTO counter (name, value) VALUES ($1, $2)")
        .bind(name)
        .bind(value)
        .execute(tx.conn())
        .await?;
    tx.commit().await
}

#[tokio::test]
async fn migrations_apply_and_are_idempotent_on_reconnect() {
    for db in engines().await {
        let engine = db.engine();
        insert_counter(&db, "kept", 7).await.unwrap();
        let config = DbConfig {
            url: db.url().to_owned(),
            service: SERVICE,
        };
        let again = Db::connect(&config, &MIGRATIONS)
            .await
            .unwrap_or_else(|e| panic!("{engine}: reconnect: {e}"));
        assert_eq!(counter(&again, "kept").await, Some(7), "{engine}");
        let (applied,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(again.pool())
            .await
            .unwrap();
        assert_eq!(applied, 1, "{engine}: migration applied exactly once");
    }
}

#[tokio::test]
async fn postgres_services_share_a_database_in_separate_schemas() {
    let Some(admin) = testing::pg_url() else {
        eprintln!("{}", testing::SKIP_MESSAGE);
        return;
    };
    let url = testing::create_pg_database(&admin).await;
    let a = Db::connect(
        &DbConfig {
            url: url.clone(),
            service: "svc_a",
        },
        &MIGRATIONS,
    )
    .await
    .unwrap();
    let b = Db::connect(
        &DbConfig {
            url,
            service: "svc_b",
        },
        &MIGRATIONS,
    )
    .await
    .unwrap();
    insert_counter(&a, "x", 1).await.unwrap();
    // Same table name, same row key: no conflict because each service has its own schema.
    insert_counter(&b, "x", 2).await.unwrap();
    assert_eq!(counter(&a, "x").await, Some(1));
    assert_eq!(counter(&b, "x").await, Some(2));
    let (schema,): (String,) = sqlx::query_as("SELECT current_schema()::TEXT")
        .fetch_one(b.pool())
        .await
        .unwrap();
    assert_eq!(schema, "svc_b");
}

#[tokio::test]
async fn concurrent_read_modify_write_loses_no_update() {
    const TASKS: usize = 8;
    const INCREMENTS: usize = 50;
    for db in engines().await {
        let engine = db.engine();
        insert_counter(&db, "c", 0).await.unwrap();
        // Read, then write what was read plus one: the pattern that loses updates without
        // proper locking. SQLite serialises writers; PostgreSQL needs the row lock.
        let select = match engine {
            Engine::Sqlite => "SELECT value FROM counter WHERE name = $1",
            Engine::Postgres => "SELECT value FROM counter WHERE name = $1 FOR UPDATE",
        };
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..INCREMENTS {
                    db.retry_write(|tx| {
                        Box::pin(async move {
                            let (v,): (i64,) = sqlx::query_as(select)
                                .bind("c")
                                .fetch_one(tx.conn())
                                .await?;
                            sqlx::query("UPDATE counter SET value = $1 WHERE name = $2")
                                .bind(v + 1)
                                .bind("c")
                                .execute(tx.conn())
                                .await?;
                            Ok::<_, StoreError>(())
                        })
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{engine}: increment: {e}"));
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let total = TASKS * INCREMENTS;
        let elapsed = started.elapsed();
        eprintln!(
            "{engine}: {total} serialised write transactions in {} ms ({:.2} ms each)",
            elapsed.as_millis(),
            elapsed.as_secs_f64() * 1000.0 / total as f64
        );
        assert_eq!(
            counter(&db, "c").await,
            Some(i64::try_from(total).unwrap()),
            "{engine}"
        );
    }
}

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

#[tokio::test]
async fn constraint_violations_are_classified_with_postgres_names() {
    for db in engines().await {
        let engine = db.engine();
        let insert_token = |nonce: &'static [u8], frac: i64| {
            let db = db.clone();
            async move {
                let mut tx = db.begin_write().await?;
                sqlx::query(
                    "INSERT INTO token (nonce, amount_val, amount_frac) VALUES ($1, $2, $3)",
                )
                .bind(nonce)
                .bind(5_i64)
                .bind(frac)
                .execute(tx.conn())
                .await?;
                tx.commit().await
            }
        };
        insert_token(b"nonce-1", 0).await.unwrap();

        let dup = insert_token(b"nonce-1", 0).await.unwrap_err();
        assert!(dup.is_unique_violation(), "{engine}: {dup}");
        assert!(!dup.is_busy_or_serialization(), "{engine}");
        assert_eq!(
            dup.code().code(),
            56,
            "{engine}: GENERIC_DB_INVARIANT_FAILURE"
        );
        assert_eq!(dup.status(), 500, "{engine}");
        assert_eq!(
            dup.constraint().as_deref(),
            Some("token_nonce_key"),
            "{engine}"
        );
        let mapped: Result<(), ServiceError> =
            Err(dup).on_constraint("token_nonce_key", |_| ServiceError::DuplicateNonce);
        assert_eq!(mapped, Err(ServiceError::DuplicateNonce), "{engine}");

        let check = insert_token(b"nonce-2", 100_000_000).await.unwrap_err();
        assert!(!check.is_unique_violation(), "{engine}");
        assert_eq!(
            check.constraint().as_deref(),
            Some("token_amount_frac_check"),
            "{engine}"
        );
        // A different constraint is passed through as a store error.
        let passed: Result<(), ServiceError> =
            Err(check).on_constraint("token_nonce_key", |_| ServiceError::DuplicateNonce);
        assert!(matches!(passed, Err(ServiceError::Store(_))), "{engine}");

        insert_counter(&db, "pk", 1).await.unwrap();
        let pk = insert_counter(&db, "pk", 2).await.unwrap_err();
        assert!(pk.is_unique_violation(), "{engine}");
        assert_eq!(pk.constraint().as_deref(), Some("counter_pkey"), "{engine}");
        assert_eq!(counter(&db, "pk").await, Some(1), "{engine}");
    }
}

#[tokio::test]
async fn notification_is_delivered_only_after_commit() {
    for db in engines().await {
        let engine = db.engine();
        let mut sub = db.notifier().subscribe("counter", "n");
        let mut other_key = db.notifier().subscribe("counter", "other");
        let mut whole_topic = db.notifier().subscribe_topic("counter");

        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("INSERT INTO counter (name, value) VALUES ($1, 1)")
            .bind("n")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.notify("counter", "n");
        assert!(
            !sub.wait(Duration::from_millis(150)).await,
            "{engine}: woken before commit"
        );
        tx.commit().await.unwrap();
        assert!(
            sub.wait(Duration::from_secs(2)).await,
            "{engine}: not woken"
        );
        assert!(whole_topic.wait(Duration::from_secs(2)).await, "{engine}");
        assert!(
            !other_key.wait(Duration::from_millis(150)).await,
            "{engine}: another key was woken"
        );
    }
}

#[tokio::test]
async fn rolled_back_or_dropped_transaction_notifies_nobody() {
    for db in engines().await {
        let engine = db.engine();
        let mut sub = db.notifier().subscribe("counter", "r");

        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("INSERT INTO counter (name, value) VALUES ($1, 1)")
            .bind("r")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.notify("counter", "r");
        tx.rollback().await.unwrap();

        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("INSERT INTO counter (name, value) VALUES ($1, 2)")
            .bind("r")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.notify("counter", "r");
        drop(tx);

        assert!(
            !sub.wait(Duration::from_millis(300)).await,
            "{engine}: woken by a rolled-back transaction"
        );
        assert_eq!(counter(&db, "r").await, None, "{engine}");
        // The writer slot is free again after a dropped transaction.
        let started = Instant::now();
        insert_counter(&db, "r", 3).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2), "{engine}");
        assert_eq!(counter(&db, "r").await, Some(3), "{engine}");
    }
}

#[tokio::test]
async fn waiter_times_out() {
    for db in engines().await {
        let engine = db.engine();
        let mut sub = db.notifier().subscribe("counter", "never");
        let started = Instant::now();
        assert!(!sub.wait(Duration::from_millis(200)).await, "{engine}");
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(1),
            "{engine}: timed out after {elapsed:?}"
        );
        drop(sub);
        assert_eq!(db.notifier().subscriber_count(), 0, "{engine}");
    }
}

#[tokio::test]
async fn wake_up_is_prompt() {
    for db in engines().await {
        let engine = db.engine();
        let mut latencies = Vec::new();
        for round in 0..5 {
            let key = format!("fast-{round}");
            let mut sub = db.notifier().subscribe("counter", &key);
            let waiter = tokio::spawn(async move {
                let woken = sub.wait(Duration::from_secs(5)).await;
                (woken, Instant::now())
            });
            let mut tx = db.begin_write().await.unwrap();
            sqlx::query("INSERT INTO counter (name, value) VALUES ($1, 0)")
                .bind(key.as_str())
                .execute(tx.conn())
                .await
                .unwrap();
            let key_for_notify = key.clone();
            tx.notify("counter", &key_for_notify);
            tx.commit().await.unwrap();
            let committed = Instant::now();
            let (woken, at) = waiter.await.unwrap();
            assert!(woken, "{engine}: not woken");
            latencies.push(at.saturating_duration_since(committed));
        }
        let worst = latencies.iter().max().copied().unwrap_or_default();
        eprintln!("{engine}: wake-up latency after commit: {latencies:?} (worst {worst:?})");
        assert!(worst < Duration::from_secs(1), "{engine}: {worst:?}");
    }
}

#[tokio::test]
async fn notify_now_reaches_other_instances_on_postgres() {
    for db in engines().await {
        let engine = db.engine();
        let mut local = db.notifier().subscribe_topic("history");
        db.notify_now("history", "acct").await.unwrap();
        assert!(local.wait(Duration::from_secs(2)).await, "{engine}");
        if engine == Engine::Postgres {
            // A second instance of the same service (another process in production).
            let other = Db::connect(
                &DbConfig {
                    url: db.url().to_owned(),
                    service: SERVICE,
                },
                &MIGRATIONS,
            )
            .await
            .unwrap();
            let mut remote = other.notifier().subscribe("history", "acct");
            let mut tx = db.begin_write().await.unwrap();
            tx.notify("history", "acct");
            tx.commit().await.unwrap();
            assert!(remote.wait(Duration::from_secs(2)).await, "cross-instance");
        }
    }
}

#[tokio::test]
async fn retry_write_rolls_back_on_error_and_returns_it() {
    for db in engines().await {
        let engine = db.engine();
        let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let result: Result<(), ServiceError> = db
            .retry_write(|tx| {
                let attempts = attempts.clone();
                Box::pin(async move {
                    attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    sqlx::query("INSERT INTO counter (name, value) VALUES ($1, 1)")
                        .bind("gone")
                        .execute(tx.conn())
                        .await
                        .map_err(StoreError::from)?;
                    tx.notify("counter", "gone");
                    Err(ServiceError::DuplicateNonce)
                })
            })
            .await;
        assert_eq!(result, Err(ServiceError::DuplicateNonce), "{engine}");
        assert_eq!(
            attempts.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{engine}: not retried"
        );
        assert_eq!(counter(&db, "gone").await, None, "{engine}: rolled back");
    }
}

impl cardcash_store::Retryable for ServiceError {
    fn is_retryable(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn bad_configuration_is_rejected() {
    let memory = Db::connect(
        &DbConfig {
            url: "sqlite::memory:".into(),
            service: SERVICE,
        },
        &MIGRATIONS,
    )
    .await;
    assert!(matches!(&memory, Err(StoreError::Config(_))));
    assert_eq!(
        memory.map(|_| ()).unwrap_err().code().code(),
        50,
        "GENERIC_DB_SETUP_FAILED"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad_name = Db::connect(
        &DbConfig {
            url: format!("sqlite:{}", dir.path().join("x.db").display()),
            service: "Bad-Name",
        },
        &MIGRATIONS,
    )
    .await;
    assert!(matches!(bad_name, Err(StoreError::Config(_))));
    let scheme = Db::connect(
        &DbConfig {
            url: "mysql://localhost/x".into(),
            service: SERVICE,
        },
        &MIGRATIONS,
    )
    .await;
    assert!(matches!(scheme, Err(StoreError::Config(_))));
}

#[tokio::test]
async fn sqlite_file_is_created_with_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/svc.db");
    let db = Db::connect(
        &DbConfig {
            url: format!("sqlite:{}", path.display()),
            service: SERVICE,
        },
        &MIGRATIONS,
    )
    .await
    .unwrap();
    assert!(path.exists());
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(sync, 1, "synchronous=NORMAL");
}

/// A `db/` helper as services write them: takes the plain transaction.
async fn add_to_counter(tx: &mut Tx, name: &str, delta: i64) -> Result<i64, StoreError> {
    let (v,): (i64,) =
        sqlx::query_as("UPDATE counter SET value = value + $1 WHERE name = $2 RETURNING value")
            .bind(delta)
            .bind(name)
            .fetch_one(tx.conn())
            .await?;
    Ok(v)
}

#[tokio::test]
async fn retry_write_closures_borrow_from_the_caller_and_use_helpers() {
    for db in engines().await {
        let engine = db.engine();
        let owned = String::from("borrowed");
        let name = owned.as_str();
        insert_counter(&db, name, 40).await.unwrap();
        let mut sub = db.notifier().subscribe("counter", name);
        let v: i64 = db
            .retry_write(|tx| {
                Box::pin(async move {
                    let v = add_to_counter(tx, name, 2).await?;
                    tx.notify("counter", name);
                    Ok::<_, StoreError>(v)
                })
            })
            .await
            .unwrap();
        assert_eq!(v, 42, "{engine}");
        assert_eq!(counter(&db, name).await, Some(42), "{engine}");
        assert!(sub.wait(Duration::from_secs(2)).await, "{engine}");
    }
}

#[tokio::test]
async fn postgres_listener_survives_a_killed_connection() {
    let Some(db) = testing::postgres(SERVICE, &MIGRATIONS).await else {
        return;
    };
    let mut before = db.notifier().subscribe("history", "k");
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(killed, vec![(true,)], "exactly the one listener connection");
    // Whoever waited while delivery was interrupted is woken to re-read its state.
    assert!(
        before.wait(Duration::from_secs(5)).await,
        "woken on reconnect"
    );
    // Notifications after the reconnect are delivered again (or, if sent while still
    // reconnecting, replaced by the wake-up of everybody).
    let mut after = db.notifier().subscribe("history", "k2");
    let mut tx = db.begin_write().await.unwrap();
    tx.notify("history", "k2");
    tx.commit().await.unwrap();
    assert!(
        after.wait(Duration::from_secs(5)).await,
        "delivered after reconnect"
    );
}

#[tokio::test]
async fn postgres_serialization_failures_are_classified_and_retried() {
    let Some(db) = testing::postgres(SERVICE, &MIGRATIONS).await else {
        return;
    };
    insert_counter(&db, "s", 0).await.unwrap();
    const SERIALIZABLE: &str = "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE";
    const READ: &str = "SELECT value FROM counter WHERE name = 's'";
    const WRITE: &str = "UPDATE counter SET value = $1 WHERE name = 's'";

    // Deterministic conflict: both read, one writes and commits, the other's write fails.
    let mut t1 = db.begin_write().await.unwrap();
    let mut t2 = db.begin_write().await.unwrap();
    for t in [&mut t1, &mut t2] {
        sqlx::query(SERIALIZABLE).execute(t.conn()).await.unwrap();
        sqlx::query(READ).fetch_one(t.conn()).await.unwrap();
    }
    sqlx::query(WRITE)
        .bind(1_i64)
        .execute(t1.conn())
        .await
        .unwrap();
    t1.commit().await.unwrap();
    let lost = sqlx::query(WRITE).bind(1_i64).execute(t2.conn()).await;
    let error = StoreError::from(lost.unwrap_err());
    assert!(error.is_busy_or_serialization(), "{error}");
    assert!(!error.is_unique_violation());
    assert_eq!(error.code().code(), 55, "GENERIC_DB_SOFT_FAILURE");
    t2.rollback().await.unwrap();

    // Optimistic read-modify-write under SERIALIZABLE: conflicts are retried, none is lost.
    const TASKS: usize = 4;
    const INCREMENTS: usize = 25;
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let db = db.clone();
        let attempts = attempts.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                let attempts = &attempts;
                db.retry_write(|tx| {
                    Box::pin(async move {
                        attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        sqlx::query(SERIALIZABLE).execute(tx.conn()).await?;
                        let (v,): (i64,) = sqlx::query_as(READ).fetch_one(tx.conn()).await?;
                        // Give the other tasks a chance to read the same value.
                        tokio::task::yield_now().await;
                        sqlx::query(WRITE).bind(v + 1).execute(tx.conn()).await?;
                        Ok::<_, StoreError>(())
                    })
                })
                .await
                .unwrap_or_else(|e| panic!("increment: {e}"));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = TASKS * INCREMENTS;
    let attempts = attempts.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("postgres: {total} serializable increments took {attempts} attempts");
    assert_eq!(
        counter(&db, "s").await,
        Some(1 + i64::try_from(total).unwrap())
    );
}

#[tokio::test]
async fn sqlite_writers_in_two_instances_share_the_file_safely() {
    let first = testing::sqlite(SERVICE, &MIGRATIONS).await;
    // A second instance on the same file: its own writer lock, like another process.
    let second = Db::connect(
        &DbConfig {
            url: first.url().to_owned(),
            service: SERVICE,
        },
        &MIGRATIONS,
    )
    .await
    .unwrap();
    insert_counter(&first, "two", 0).await.unwrap();

    // While one instance holds the write lock, a writer that does not wait gets SQLITE_BUSY,
    // classified as retryable.
    let holder = second.begin_write().await.unwrap();
    let path = first.url().trim_start_matches("sqlite:").to_owned();
    let mut impatient = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let busy = sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut impatient)
        .await
        .unwrap_err();
    let busy = StoreError::from(busy);
    assert!(busy.is_busy_or_serialization(), "{busy}");
    holder.rollback().await.unwrap();

    // Read-modify-write from both instances: BEGIN IMMEDIATE + busy_timeout serialise them.
    let mut tasks = Vec::new();
    for db in [first.clone(), second.clone(), first.clone(), second.clone()] {
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                db.retry_write(|tx| {
                    Box::pin(async move {
                        let (v,): (i64,) =
                            sqlx::query_as("SELECT value FROM counter WHERE name = 'two'")
                                .fetch_one(tx.conn())
                                .await?;
                        tokio::task::yield_now().await;
                        sqlx::query("UPDATE counter SET value = $1 WHERE name = 'two'")
                            .bind(v + 1)
                            .execute(tx.conn())
                            .await?;
                        Ok::<_, StoreError>(())
                    })
                })
                .await
                .unwrap_or_else(|e| panic!("increment: {e}"));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(counter(&first, "two").await, Some(100));
}

#[tokio::test]
async fn concurrent_first_connects_of_one_service_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite:{}", dir.path().join("race.db").display())];
    match testing::pg_url() {
        Some(admin) => urls.push(testing::create_pg_database(&admin).await),
        None => eprintln!("{}", testing::SKIP_MESSAGE),
    }
    for url in urls {
        let connects = (0..4).map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                Db::connect(
                    &DbConfig {
                        url,
                        service: SERVICE,
                    },
                    &MIGRATIONS,
                )
                .await
            })
        });
        let mut dbs = Vec::new();
        for connect in connects.collect::<Vec<_>>() {
            dbs.push(
                connect
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("connect: {e}")),
            );
        }
        let (applied,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(dbs[0].pool())
            .await
            .unwrap();
        assert_eq!(applied, 1, "{}", dbs[0].engine());
    }
}
