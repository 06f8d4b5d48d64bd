//! Opening a service's database: migrations, instances opening one database at once, one
//! schema per service on PostgreSQL, refused configurations, the SQLite file's settings.

use cardcash_store::{Database, DbConfig, Engine, Migration, PgDb, Schema, SqliteDb, StoreError};
use cardcash_store::{sqlx, testing};

use crate::{
    Place, SCHEMA, SERVICE, SQLITE, applied_migrations, counter, engine_test, insert_counter,
    sqlite_counter,
};

engine_test!(
    /// Reopening applies nothing twice and keeps the data; an applied migration whose text
    /// changed is refused; a new migration is applied on top.
    async fn migrations_apply_once_refuse_edits_and_extend(engine: Engine) {
        let place = Place::new(engine).await;
        let first = place.connect().await.unwrap();
        insert_counter(&first, "kept", 7).await.unwrap();
        // A second instance while the first is still open (another process in production).
        let again = place.connect().await.unwrap();
        assert_eq!(counter(&again, "kept").await, Some(7));
        assert_eq!(applied_migrations(&again).await, 1);

        const EDITED: &[Migration] =
            &[Migration::new(1, "init", "CREATE TABLE other (x INTEGER);")];
        let edited = Database::connect(
            &place.config(),
            &Schema {
                sqlite: EDITED,
                postgres: EDITED,
            },
        )
        .await;
        match edited {
            Err(e @ StoreError::Config(_)) => {
                assert!(
                    e.to_string().contains("changed after it was applied"),
                    "{e}"
                );
                assert_eq!(e.code().code(), 50, "GENERIC_DB_SETUP_FAILED");
            }
            other => panic!("an edited migration was accepted: {other:?}"),
        }

        static MORE: Schema = Schema {
            sqlite: &[
                crate::SQLITE[0],
                Migration::new(2, "note", "ALTER TABLE counter ADD COLUMN note TEXT;"),
            ],
            postgres: &[
                crate::POSTGRES[0],
                Migration::new(2, "note", "ALTER TABLE counter ADD COLUMN note TEXT;"),
            ],
        };
        let extended = Database::connect(&place.config(), &MORE).await.unwrap();
        assert_eq!(applied_migrations(&extended).await, 2);
        let note: Option<String> = match &extended {
            Database::Sqlite(db) => db
                .read(|c| {
                    Ok(
                        c.query_row("SELECT note FROM counter WHERE name = 'kept'", [], |r| {
                            r.get(0)
                        })?,
                    )
                })
                .unwrap(),
            Database::Postgres(db) => {
                sqlx::query_scalar("SELECT note FROM counter WHERE name = 'kept'")
                    .fetch_one(db.pool())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(note, None);
    }
);

engine_test!(
    /// Instances of one service starting together on a new database (as several processes
    /// do in production: each instance has its own connections, so the serialisation is the
    /// database's, `BEGIN IMMEDIATE` on SQLite and an advisory lock on PostgreSQL, the same as
    /// between processes) all succeed, and the migrations are applied exactly once.
    async fn instances_opening_one_new_database_at_once_all_succeed(engine: Engine) {
        let place = std::sync::Arc::new(Place::new(engine).await);
        let connects: Vec<_> = (0..4)
            .map(|_| {
                let place = place.clone();
                tokio::spawn(async move { place.connect().await })
            })
            .collect();
        let mut dbs = Vec::new();
        for connect in connects {
            dbs.push(
                connect
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("connect: {e}")),
            );
        }
        for db in &dbs {
            assert_eq!(applied_migrations(db).await, 1);
        }
        // Every instance writes to the same tables.
        for (i, db) in dbs.iter().enumerate() {
            insert_counter(db, &format!("i{i}"), 1).await.unwrap();
        }
        assert_eq!(counter(&dbs[0], "i3").await, Some(1));
    }
);

#[tokio::test]
async fn postgres_services_share_a_database_in_separate_schemas() {
    let Some(admin) = testing::pg_url() else {
        eprintln!("{}", testing::SKIP_MESSAGE);
        return;
    };
    let url = testing::create_pg_database(&admin).await;
    let a = PgDb::connect(&url, "svc_a", SCHEMA.postgres).await.unwrap();
    let b = PgDb::connect(&url, "svc_b", SCHEMA.postgres).await.unwrap();
    let (a, b) = (Database::Postgres(a), Database::Postgres(b));
    insert_counter(&a, "x", 1).await.unwrap();
    // Same table, same key: no conflict, because each service has its own schema.
    insert_counter(&b, "x", 2).await.unwrap();
    assert_eq!(counter(&a, "x").await, Some(1));
    assert_eq!(counter(&b, "x").await, Some(2));
    let Database::Postgres(b) = b else {
        unreachable!()
    };
    let schema: String = sqlx::query_scalar("SELECT current_schema()::TEXT")
        .fetch_one(b.pool())
        .await
        .unwrap();
    assert_eq!(schema, "svc_b");
    assert_eq!(b.channel(), "cardcash_svc_b");
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let config = |url: &str, service: &'static str| DbConfig {
        url: url.to_owned(),
        service,
    };
    let dir = tempfile::tempdir().unwrap();
    let file = format!("sqlite:{}", dir.path().join("x.db").display());
    for (what, config) in [
        ("in-memory SQLite", config("sqlite::memory:", SERVICE)),
        (
            "in-memory SQLite, URL form",
            config("sqlite://:memory:", SERVICE),
        ),
        ("SQLite without a path", config("sqlite:", SERVICE)),
        ("unknown scheme", config("mysql://localhost/x", SERVICE)),
        ("no scheme", config("/var/lib/x.db", SERVICE)),
        ("upper-case service", config(&file, "Bad")),
        (
            "service with a quote",
            config(&file, "a\"; DROP SCHEMA public; --"),
        ),
        ("empty service", config(&file, "")),
    ] {
        match Database::connect(&config, &SCHEMA).await {
            Err(e @ StoreError::Config(_)) => {
                assert_eq!(e.code().code(), 50, "{what}: GENERIC_DB_SETUP_FAILED");
                assert_eq!(e.status(), 500, "{what}");
            }
            other => panic!("{what} was accepted: {other:?}"),
        }
    }
    // Nothing was created for the refused service names.
    assert!(!dir.path().join("x.db").exists());
    // PostgreSQL refuses a bad service name before it connects (the name is spliced into SQL).
    let refused = PgDb::connect("postgres://nobody@127.0.0.1:1/x", "a\"b", SCHEMA.postgres).await;
    assert!(matches!(refused, Err(StoreError::Config(_))), "{refused:?}");
    // Migrations out of order are a programming error, refused before anything is opened.
    static UNORDERED: &[Migration] = &[SQLITE[0], SQLITE[0]];
    let unordered = SqliteDb::open(&dir.path().join("y.db"), UNORDERED);
    assert!(
        matches!(unordered, Err(StoreError::Config(_))),
        "{unordered:?}"
    );
}

#[tokio::test]
async fn sqlite_file_is_created_with_wal_and_normal_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/svc.db");
    let db = Database::connect(
        &DbConfig {
            url: format!("sqlite:{}", path.display()),
            service: SERVICE,
        },
        &SCHEMA,
    )
    .await
    .unwrap();
    assert!(path.exists());
    let Database::Sqlite(db) = db else {
        unreachable!("a sqlite: URL opens SQLite")
    };
    assert_eq!(db.path(), path);
    let mode: String = db
        .read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let (sync, foreign_keys): (i64, i64) = db
        .write(|tx| {
            let sync = tx.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
            let fk = tx.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
            Ok((sync, fk))
        })
        .await
        .unwrap();
    assert_eq!(sync, 1, "synchronous = NORMAL on the writer");
    assert_eq!(foreign_keys, 1, "foreign keys enforced on the writer");
    crate::sqlite_insert(&db, "a", 1).await.unwrap();
    assert_eq!(sqlite_counter(&db, "a"), Some(1));
}
