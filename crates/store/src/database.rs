//! [`Database`]: the engine chosen by the URL. A service's storage struct holds one and keeps a
//! typed implementation of each of its operations per engine (`db/sqlite.rs`,
//! `db/postgres.rs`); handlers and domain code never see which engine runs.

use std::path::PathBuf;

use crate::db::{DbConfig, Engine};
use crate::error::StoreError;
use crate::migrate::Schema;
use crate::notifier::Notifier;
use crate::postgres::PgDb;
use crate::sqlite::SqliteDb;

/// A service's database on either engine; cheap to clone.
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(SqliteDb),
    Postgres(PgDb),
}

impl Database {
    /// Opens the database named by `config.url` (`sqlite:PATH` or `postgres://…`) and applies
    /// the service's migrations for that engine.
    pub async fn connect(config: &DbConfig, schema: &Schema) -> Result<Self, StoreError> {
        crate::db::check_service_name(config.service)?;
        match crate::db::engine_of(&config.url)? {
            Engine::Sqlite => {
                let path = sqlite_path(&config.url)?;
                // Opening runs migrations (blocking file IO): off the executor.
                let migrations = schema.sqlite;
                let db = tokio::task::spawn_blocking(move || SqliteDb::open(&path, migrations))
                    .await
                    .map_err(|e| StoreError::Internal(format!("SQLite open task failed: {e}")))??;
                Ok(Database::Sqlite(db))
            }
            Engine::Postgres => Ok(Database::Postgres(
                PgDb::connect(&config.url, config.service, schema.postgres).await?,
            )),
        }
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        match self {
            Database::Sqlite(_) => Engine::Sqlite,
            Database::Postgres(_) => Engine::Postgres,
        }
    }

    /// The notifier to subscribe to (subscribe BEFORE reading the state you wait on).
    pub fn notifier(&self) -> &Notifier {
        match self {
            Database::Sqlite(db) => db.notifier(),
            Database::Postgres(db) => db.notifier(),
        }
    }

    /// Notify `(topic, key)` outside any transaction.
    pub async fn notify_now(&self, topic: &str, key: &str) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(db) => {
                db.notify_now(topic, key);
                Ok(())
            }
            Database::Postgres(db) => db.notify_now(topic, key).await,
        }
    }

    /// Graceful shutdown: no more writes (SQLite: queued ones still commit), pool closed.
    pub async fn close(&self) {
        match self {
            Database::Sqlite(db) => db.close(),
            Database::Postgres(db) => db.close().await,
        }
    }
}

/// The file of a `sqlite:` URL: `sqlite:/abs/path.db`, `sqlite://rel.db`, `sqlite:///abs.db`,
/// with an optional `?query` (ignored). In-memory databases are refused: readers and the writer
/// would each see their own empty database.
pub fn sqlite_path(url: &str) -> Result<PathBuf, StoreError> {
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| StoreError::Config(format!("not a sqlite: URL: {url:?}")))?;
    let rest = rest.split('?').next().unwrap_or_default();
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.is_empty() || path.contains(":memory:") {
        return Err(StoreError::Config(
            "in-memory SQLite is not supported; use a file, e.g. in a temporary directory"
                .to_owned(),
        ));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        assert_eq!(
            sqlite_path("sqlite:/tmp/x.db").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(sqlite_path("sqlite://x.db").unwrap(), PathBuf::from("x.db"));
        assert!(sqlite_path("sqlite::memory:").is_err());
        assert!(sqlite_path("sqlite:").is_err());
    }
}
