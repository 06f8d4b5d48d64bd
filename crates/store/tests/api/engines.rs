//! The typed engines behind [`Database`]: SQLite's writer thread with group commit and
//! PostgreSQL's typed pool, with the store's own migrations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cardcash_store::rusqlite;
use cardcash_store::{SqliteDb, StoreError, sqlx};

use crate::{SQLITE, WAIT, fresh_postgres, fresh_sqlite, sqlite_counter, sqlite_insert};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit_loses_no_update_and_batches_queued_closures() {
    let db = fresh_sqlite().await;
    sqlite_insert(&db, "c", 0).await.unwrap();

    // Hold the writer inside one closure until 50 more are queued: they must then commit
    // together, in one transaction.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (running, holder_runs) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let db = db.clone();
        tokio::spawn(async move {
            db.write(move |_tx| {
                let _ = running.send(());
                held.recv().ok();
                Ok(())
            })
            .await
        })
    };
    holder_runs.await.unwrap();
    let (before, _) = db.writer_stats().snapshot();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.write(|tx| {
                let v: i64 = tx.query_row(
                    "UPDATE counter SET value = value + 1 WHERE name = 'c' RETURNING value",
                    [],
                    |r| r.get(0),
                )?;
                Ok(v)
            })
            .await
        }));
    }
    while db.writer_stats().queued() < 50 {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=50).collect::<Vec<i64>>(),
        "each increment saw its own value"
    );
    assert_eq!(sqlite_counter(&db, "c"), Some(50));
    let (after, _) = db.writer_stats().snapshot();
    // The holder's transaction was already counted; the 50 queued closures took one more.
    assert_eq!(
        after - before,
        1,
        "50 queued closures committed in one transaction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_failing_or_panicking_closure_rolls_back_alone() {
    let db = fresh_sqlite().await;
    let mut tasks = Vec::new();
    for i in 0..40i64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.write(move |tx| {
                tx.execute(
                    "INSERT INTO counter (name, value) VALUES (?1, ?2)",
                    rusqlite::params![format!("n{i}"), i],
                )?;
                match i % 4 {
                    1 => Err(StoreError::Corrupt("refused on purpose".into())),
                    2 => panic!("closure {i} panics on purpose"),
                    // violates the CHECK: the statement fails, the closure returns its error
                    3 => {
                        tx.execute(
                            "UPDATE counter SET value = -1 WHERE name = ?1",
                            [format!("n{i}")],
                        )?;
                        Ok(())
                    }
                    _ => Ok(()),
                }
            })
            .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let result = t.await.unwrap();
        match i % 4 {
            0 => assert!(result.is_ok(), "{i}: {result:?}"),
            1 => assert!(
                matches!(result, Err(StoreError::Corrupt(_))),
                "{i}: {result:?}"
            ),
            2 => assert!(
                matches!(result, Err(StoreError::Internal(_))),
                "{i}: {result:?}"
            ),
            _ => {
                let e = result.unwrap_err();
                assert!(matches!(e, StoreError::Sqlite(_)), "{i}: {e:?}");
                assert!(!e.is_unique_violation(), "{i}: {e:?}");
                assert_eq!(
                    e.code(),
                    cardcash_util::ErrorCode::GenericDbInvariantFailure
                );
            }
        }
    }
    for i in 0..40i64 {
        let expected = (i % 4 == 0).then_some(i);
        assert_eq!(sqlite_counter(&db, &format!("n{i}")), expected, "n{i}");
    }
    // The writer survived the panics.
    sqlite_insert(&db, "after", 1).await.unwrap();
}

#[tokio::test]
async fn sqlite_notifies_only_kept_work() {
    let db = fresh_sqlite().await;
    let mut kept = db.notifier().subscribe("counter", "kept");
    let mut failed = db.notifier().subscribe("counter", "failed");
    let r = db
        .write(|tx| {
            tx.notify("counter", "failed");
            Err::<(), _>(StoreError::Corrupt("no".into()))
        })
        .await;
    assert!(r.is_err());
    db.write(|tx| {
        tx.execute("INSERT INTO counter (name, value) VALUES ('kept', 1)", [])?;
        tx.notify("counter", "kept");
        Ok(())
    })
    .await
    .unwrap();
    // The writer wakes subscribers before it answers, in the order the work ran: had the
    // failed closure notified, that permit would be stored by now.
    assert!(kept.wait(Duration::ZERO).await, "woken before the answer");
    assert!(
        !failed.wait(Duration::ZERO).await,
        "woken by rolled-back work"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("p.db");
    let db = SqliteDb::open(&path, SQLITE).unwrap();
    sqlite_insert(&db, "a", 1).await.unwrap();
    for file in ["p.db", "p.db-wal"] {
        let mode = std::fs::metadata(dir.path().join("sub").join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} is readable by others: {mode:o}");
    }
}

#[tokio::test]
async fn sqlite_closed_database_refuses_writes_but_reads() {
    let db = fresh_sqlite().await;
    sqlite_insert(&db, "a", 1).await.unwrap();
    db.close();
    assert!(matches!(
        sqlite_insert(&db, "b", 1).await,
        Err(StoreError::Closed)
    ));
    assert_eq!(sqlite_counter(&db, "a"), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_typed_pool_retries_and_notifies_at_commit() {
    let Some(db) = fresh_postgres().await else {
        return;
    };
    sqlx::query("INSERT INTO counter (name, value) VALUES ('c', 0)")
        .execute(db.pool())
        .await
        .unwrap();
    let mut sub = db.notifier().subscribe("counter", "c");
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let db = db.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            db.retry_write(|tx| {
                Box::pin(async move {
                    sqlx::query("UPDATE counter SET value = value + 1 WHERE name = 'c'")
                        .execute(tx.conn())
                        .await?;
                    tx.notify("counter", "c");
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .unwrap();
            done.fetch_add(1, Ordering::Relaxed);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let value: i64 = sqlx::query_scalar("SELECT value FROM counter WHERE name = 'c'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(value, 20);
    assert_eq!(done.load(Ordering::Relaxed), 20);
    assert!(sub.wait(WAIT).await, "notified through LISTEN");
    // Booleans and bytes are typed on this engine.
    let (b, bytes): (bool, Vec<u8>) = sqlx::query_as("SELECT true, '\\x0102'::BYTEA")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(b);
    assert_eq!(bytes, vec![1, 2]);
}
