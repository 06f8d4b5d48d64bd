//! Notifications: delivered only after commit and only for kept work, to every instance on
//! PostgreSQL (also across a killed listener connection), and promptly.
//!
//! "Not delivered" is checked without waiting out a window: a later notification (a marker) is
//! delivered first, and notifications arrive in commit order (SQLite wakes subscribers on the
//! writer thread before it answers; PostgreSQL delivers in commit order over the one listener
//! connection), so a permit that was ever going to arrive before it is there by then. A
//! zero-timeout `wait` then tells whether a subscription was woken.

use std::time::{Duration, Instant};

use cardcash_store::sqlx::{Connection as _, PgConnection};
use cardcash_store::{Database, Engine, PgDb, sqlx, testing};

use crate::{Place, WAIT, counter, engine_test, fresh, fresh_postgres, insert_counter};

/// Commits a notification of its own and waits until it arrives: everything committed before
/// has been delivered by then.
pub(crate) async fn deliver_marker(db: &Database) {
    let key = uuid_like();
    let mut marker = db.notifier().subscribe("marker", &key);
    match db {
        Database::Sqlite(db) => {
            let key = key.clone();
            db.write(move |tx| {
                tx.notify("marker", &key);
                Ok(())
            })
            .await
            .unwrap();
        }
        Database::Postgres(db) => {
            let mut tx = db.begin().await.unwrap();
            tx.notify("marker", &key);
            tx.commit().await.unwrap();
        }
    }
    assert!(
        marker.wait(WAIT).await,
        "the marker notification never arrived"
    );
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("m{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

engine_test!(
    /// A subscriber is woken by a commit, never by the transaction before it commits; the
    /// topic's wildcard subscribers too, the topic's other keys not.
    async fn notifications_arrive_only_after_commit(engine: Engine) {
        let db = fresh(engine).await;
        let mut sub = db.notifier().subscribe("counter", "n");
        let mut other_key = db.notifier().subscribe("counter", "other");
        let mut whole_topic = db.notifier().subscribe_topic("counter");
        match &db {
            Database::Sqlite(sqlite) => {
                // A write closure that has notified and then holds its transaction open.
                let (release, held) = std::sync::mpsc::channel::<()>();
                let (running, notified) = tokio::sync::oneshot::channel::<()>();
                let writer = {
                    let sqlite = sqlite.clone();
                    tokio::spawn(async move {
                        sqlite
                            .write(move |tx| {
                                tx.execute(
                                    "INSERT INTO counter (name, value) VALUES ('n', 1)",
                                    [],
                                )?;
                                tx.notify("counter", "n");
                                let _ = running.send(());
                                held.recv().ok();
                                Ok(())
                            })
                            .await
                    })
                };
                notified.await.unwrap();
                assert!(!sub.wait(Duration::ZERO).await, "woken before commit");
                assert!(
                    !whole_topic.wait(Duration::ZERO).await,
                    "woken before commit"
                );
                release.send(()).unwrap();
                writer.await.unwrap().unwrap();
                // Woken before the writer answered.
                assert!(sub.wait(Duration::ZERO).await, "not woken by the commit");
                assert!(whole_topic.wait(Duration::ZERO).await, "topic not woken");
            }
            Database::Postgres(pg) => {
                let mut tx = pg.begin().await.unwrap();
                sqlx::query("INSERT INTO counter (name, value) VALUES ('n', 1)")
                    .execute(tx.conn())
                    .await
                    .unwrap();
                tx.notify("counter", "n");
                // Committed by another connection while this transaction is open.
                deliver_marker(&db).await;
                assert!(!sub.wait(Duration::ZERO).await, "woken before commit");
                assert!(
                    !whole_topic.wait(Duration::ZERO).await,
                    "woken before commit"
                );
                tx.commit().await.unwrap();
                assert!(sub.wait(WAIT).await, "not woken by the commit");
                assert!(whole_topic.wait(WAIT).await, "topic not woken");
            }
        }
        // The same fan-out woke the exact and the wildcard subscribers: another key would have
        // been woken by now.
        assert!(
            !other_key.wait(Duration::ZERO).await,
            "another key was woken"
        );
        assert_eq!(counter(&db, "n").await, Some(1));
    }
);

/// SQLite's side is `engines::sqlite_notifies_only_kept_work`.
#[tokio::test]
async fn postgres_rolled_back_or_dropped_transaction_notifies_nobody() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let mut sub = pg.notifier().subscribe("counter", "r");
    let mut tx = pg.begin().await.unwrap();
    sqlx::query("INSERT INTO counter (name, value) VALUES ('r', 1)")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.notify("counter", "r");
    tx.rollback().await.unwrap();

    let mut tx = pg.begin().await.unwrap();
    sqlx::query("INSERT INTO counter (name, value) VALUES ('r', 2)")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.notify("counter", "r");
    drop(tx);

    let db = Database::Postgres(pg);
    deliver_marker(&db).await;
    assert!(!sub.wait(Duration::ZERO).await, "woken by rolled-back work");
    assert_eq!(counter(&db, "r").await, None);
    insert_counter(&db, "r", 3).await.unwrap();
    assert_eq!(counter(&db, "r").await, Some(3));
}

engine_test!(
    /// `notify_now` wakes this instance's subscribers; on PostgreSQL every notification, from
    /// `notify_now`, a transaction or a stored function's own `pg_notify`, also reaches the
    /// other instances of the service (other processes in production).
    async fn notifications_reach_every_instance(engine: Engine) {
        let place = Place::new(engine).await;
        let db = place.connect().await.unwrap();
        let mut local = db.notifier().subscribe_topic("history");
        db.notify_now("history", "acct").await.unwrap();
        assert!(
            local.wait(WAIT).await,
            "notify_now did not wake this instance"
        );
        let Database::Postgres(pg) = &db else {
            // SQLite is the one-process setup: its fan-out is in-process only.
            return;
        };
        let other = place.connect().await.unwrap();
        let mut remote = other.notifier().subscribe("history", "acct");

        db.notify_now("history", "acct").await.unwrap();
        assert!(
            remote.wait(WAIT).await,
            "notify_now did not reach the other instance"
        );

        let mut tx = pg.begin().await.unwrap();
        tx.notify("history", "acct");
        tx.commit().await.unwrap();
        assert!(
            remote.wait(WAIT).await,
            "a commit did not reach the other instance"
        );

        // What a stored function does: `pg_notify` on the service's channel.
        sqlx::query("SELECT pg_notify($1, 'history acct')")
            .bind(pg.channel())
            .execute(pg.pool())
            .await
            .unwrap();
        assert!(
            remote.wait(WAIT).await,
            "pg_notify did not reach the other instance"
        );
    }
);

engine_test!(
    /// A waiter is woken by the commit itself, not by its own timeout: on SQLite before the
    /// writer answers, on PostgreSQL as soon as the listener hears the commit.
    async fn wake_up_is_prompt(engine: Engine) {
        let db = fresh(engine).await;
        let mut latencies = Vec::new();
        for round in 0..5 {
            let key = format!("fast-{round}");
            let mut sub = db.notifier().subscribe("counter", &key);
            let waiter = tokio::spawn(async move {
                // Far longer than any wake-up: a wake-up by timeout fails the test.
                let woken = sub.wait(2 * WAIT).await;
                (woken, Instant::now(), sub)
            });
            let committed = match &db {
                Database::Sqlite(sqlite) => {
                    let key = key.clone();
                    sqlite
                        .write(move |tx| {
                            tx.execute("INSERT INTO counter (name, value) VALUES (?1, 0)", [&key])?;
                            tx.notify("counter", &key);
                            Ok(())
                        })
                        .await
                        .unwrap();
                    Instant::now()
                }
                Database::Postgres(pg) => {
                    let mut tx = pg.begin().await.unwrap();
                    sqlx::query("INSERT INTO counter (name, value) VALUES ($1, 0)")
                        .bind(key.as_str())
                        .execute(tx.conn())
                        .await
                        .unwrap();
                    tx.notify("counter", &key);
                    tx.commit().await.unwrap();
                    Instant::now()
                }
            };
            let (woken, at, _sub) = waiter.await.unwrap();
            assert!(woken, "round {round}: the waiter timed out");
            latencies.push(at.saturating_duration_since(committed));
        }
        let worst = latencies.iter().max().copied().unwrap_or_default();
        eprintln!("{engine}: wake-up after commit: {latencies:?} (worst {worst:?})");
        // Generous for a loaded machine; a wake-up by a timer or a polling loop is not prompt.
        assert!(worst < WAIT / 6, "{engine}: {worst:?}");
    }
);

/// Kills the listener's connection: whoever waited is woken (notifications may have been
/// missed while it was down), and notifications are delivered again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_listener_survives_a_killed_connection() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    for round in 0..2 {
        let mut before = pg.notifier().subscribe("history", "k");
        assert!(
            kill_listener(&pg).await >= 1,
            "round {round}: no listener connection"
        );
        assert!(
            before.wait(WAIT).await,
            "round {round}: not woken on reconnect"
        );
        // Subscribed after the wake-up: the listener is LISTENing again by then.
        let mut after = pg.notifier().subscribe("history", "k2");
        let mut tx = pg.begin().await.unwrap();
        tx.notify("history", "k2");
        tx.commit().await.unwrap();
        assert!(
            after.wait(WAIT).await,
            "round {round}: not delivered after reconnect"
        );
    }
}

/// Terminates the connections of this database that last ran `LISTEN`; how many.
async fn kill_listener(pg: &PgDb) -> usize {
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(pg.pool())
    .await
    .unwrap();
    killed.into_iter().filter(|k| *k).count()
}

/// The listener's connection is killed while the database refuses new connections, so it
/// cannot reconnect at once. A notification committed meanwhile is lost on the wire; the
/// subscriber that waits for it is woken once the listener is LISTENing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_listener_wakes_everybody_once_it_listens_again() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let database: String = sqlx::query_scalar("SELECT current_database()::TEXT")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    // Only another database may refuse this one's connections.
    let admin = testing::pg_url().expect("PostgreSQL tests run only with its URL");
    let allow = |yes: bool| {
        let sql = format!(r#"ALTER DATABASE "{database}" ALLOW_CONNECTIONS {yes}"#);
        let admin = admin.clone();
        async move {
            let mut conn = PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
    };
    // While connections are refused the pool cannot open new ones either: the transaction
    // that notifies holds its connection from before, and the listener is killed from the
    // administrator's connection.
    let mut tx = pg.begin().await.unwrap();
    allow(false).await;
    let mut before = pg.notifier().subscribe("history", "k");
    let mut admin_conn = PgConnection::connect(&admin).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&database)
    .fetch_all(&mut admin_conn)
    .await
    .unwrap();
    admin_conn.close().await.unwrap();
    assert!(killed.contains(&true), "no listener connection");
    assert!(
        before.wait(WAIT).await,
        "not woken when the connection was lost"
    );
    // The listener is down now; this notification reaches nobody.
    let mut after = pg.notifier().subscribe("history", "k2");
    tx.notify("history", "k2");
    tx.commit().await.unwrap();
    allow(true).await;
    assert!(
        after.wait(WAIT).await,
        "not woken once the listener listens again"
    );
    // And delivery resumes.
    let mut later = pg.notifier().subscribe("history", "k3");
    let mut tx = pg.begin().await.unwrap();
    tx.notify("history", "k3");
    tx.commit().await.unwrap();
    assert!(later.wait(WAIT).await, "not delivered after the reconnect");
}
