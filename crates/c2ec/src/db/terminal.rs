//! Terminals: registered by the operator, authenticated by an argon2id hash of their secret.

use cardcash_store::StoreError;
use sqlx::Row;

use super::{C2ecStore, now_micros};

/// A stored terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalRow {
    pub terminal_id: i64,
    pub name: String,
    /// argon2id PHC string.
    pub secret_hash: String,
    pub active: bool,
    pub created_at: i64,
}

fn terminal_from(row: &sqlx::any::AnyRow) -> Result<TerminalRow, StoreError> {
    Ok(TerminalRow {
        terminal_id: row.try_get("terminal_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

impl C2ecStore {
    /// Registers a terminal; returns its id.
    pub async fn insert_terminal(&self, name: &str, secret_hash: &str) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "INSERT INTO terminals (name, secret_hash, active, created_at) \
             VALUES ($1, $2, 1, $3) RETURNING terminal_id",
        )
        .bind(name)
        .bind(secret_hash)
        .bind(now_micros())
        .fetch_one(tx.conn())
        .await?;
        let id: i64 = row.try_get("terminal_id")?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn get_terminal(&self, terminal_id: i64) -> Result<Option<TerminalRow>, StoreError> {
        let row = sqlx::query(
            "SELECT terminal_id, name, secret_hash, active, created_at \
             FROM terminals WHERE terminal_id = $1",
        )
        .bind(terminal_id)
        .fetch_optional(self.db().pool())
        .await?;
        row.as_ref().map(terminal_from).transpose()
    }

    pub async fn list_terminals(&self) -> Result<Vec<TerminalRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT terminal_id, name, secret_hash, active, created_at \
             FROM terminals ORDER BY terminal_id",
        )
        .fetch_all(self.db().pool())
        .await?;
        rows.iter().map(terminal_from).collect()
    }

    /// Deactivates a terminal; `false` if it does not exist.
    pub async fn deactivate_terminal(&self, terminal_id: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE terminals SET active = 0 WHERE terminal_id = $1")
            .bind(terminal_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(done == 1)
    }
}
