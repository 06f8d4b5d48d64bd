//! Terminals: registered by the operator, authenticated by an argon2id hash of their secret.
//! A deactivation notifies the `terminal` topic (key: the id), so that every C2EC process
//! drops its cached copy of the row at once (see `http::auth`).

use std::sync::Arc;
use std::time::Duration;

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::Timestamp;

use super::{C2ecStore, TOPIC_TERMINAL, postgres, sqlite};

/// How long [`C2ecStore::deactivate_terminal`] waits for its notification on PostgreSQL.
pub const NOTIFICATION_WAIT: Duration = Duration::from_secs(5);

/// A stored terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalRow {
    pub terminal_id: i64,
    pub name: String,
    /// argon2id PHC string.
    pub secret_hash: String,
    pub active: bool,
    pub created_at: Timestamp,
}

impl C2ecStore {
    /// Registers a terminal; returns its id.
    pub async fn insert_terminal(
        &self,
        name: &str,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let texts: Arc<(String, String)> =
                    Arc::new((name.to_owned(), secret_hash.to_owned()));
                retry(|| {
                    let texts = texts.clone();
                    db.write(move |tx| sqlite::insert_terminal(tx, &texts.0, &texts.1, now))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::insert_terminal(db, name, secret_hash, now)).await
            }
        }
    }

    /// Terminal `id`, if registered.
    pub async fn terminal(&self, id: i64) -> Result<Option<TerminalRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::terminal(conn, id)),
            Database::Postgres(db) => postgres::terminal(db, id).await,
        }
    }

    /// All terminals, oldest first.
    pub async fn terminals(&self) -> Result<Vec<TerminalRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(sqlite::terminals),
            Database::Postgres(db) => postgres::terminals(db).await,
        }
    }

    /// Deactivates a terminal and notifies every process; `false` if it does not exist.
    ///
    /// Returns once this process has seen the notification: on SQLite it is delivered before
    /// the write returns; on PostgreSQL it comes back through the listener (every other
    /// process listening on the database gets it at the same time), which this waits for, up
    /// to [`NOTIFICATION_WAIT`]. So whoever deactivates through a handle shared with a running
    /// C2EC (tests, an embedded setup) finds the terminal refused right after.
    pub async fn deactivate_terminal(&self, id: i64) -> Result<bool, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| db.write(move |tx| sqlite::deactivate_terminal(tx, id))).await
            }
            Database::Postgres(db) => {
                let mut seen = db.notifier().subscribe(TOPIC_TERMINAL, &id.to_string());
                let found = retry(|| postgres::deactivate_terminal(db, id)).await?;
                if found && !seen.wait(NOTIFICATION_WAIT).await {
                    tracing::warn!(terminal = id, "deactivation notification not seen yet");
                }
                Ok(found)
            }
        }
    }
}
