//! [`Database`]: the engine chosen by the URL. A service's storage struct holds one and keeps a
//! typed implementation of each of its operations per engine (`db/sqlite.rs`,
//! `db/postgres.rs`); handlers and domain code never see which engine runs.

use std::path::PathBuf;

use crate::error::StoreError;
use crate::migrate::Schema;
use crate::notifier::Notifier;
use crate::postgres::PgDb;
use crate::sqlite::SqliteDb;

/// Where a service's database lives.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite:/path/to/file.db` (created if missing, parent directories too) or
    /// `postgres://user@host:port/database`. In-memory SQLite is refused: the writer thread
    /// and the readers would each see their own empty database.
    pub url: String,
    /// The service name: the PostgreSQL schema and notification channel are derived from it.
    /// Lower-case ASCII letters, digits and `_`, starting with a letter.
    pub service: &'static str,
}

/// The database engine behind a [`Database`].
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
        check_service_name(config.service)?;
        match engine_of(&config.url)? {
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

fn engine_of(url: &str) -> Result<Engine, StoreError> {
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
