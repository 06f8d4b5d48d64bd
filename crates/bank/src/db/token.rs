//! SQL of the `tokens` table (bearer tokens; only their SHA-512 is stored).

use cardcash_util::Timestamp;
use sqlx::{Any, AnyConnection, Executor};

use super::{col, time_col};
use crate::error::Result;

/// A stored token with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub account_id: i64,
    pub account_name: String,
    pub scope: String,
    pub expires_at: Timestamp,
}

/// Stores a new token.
pub async fn insert(
    conn: &mut AnyConnection,
    token_hash: &[u8],
    account_id: i64,
    scope: &str,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tokens (token_hash, account_id, scope, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(account_id)
    .bind(scope)
    .bind(created_at.to_sql_micros())
    .bind(expires_at.to_sql_micros())
    .execute(conn)
    .await?;
    Ok(())
}

/// The token with this hash, if any (expired ones included: the caller decides).
pub async fn find<'c, E>(exec: E, token_hash: &[u8]) -> Result<Option<TokenRow>>
where
    E: Executor<'c, Database = Any>,
{
    let row = sqlx::query(
        "SELECT t.account_id, a.name, t.scope, t.expires_at FROM tokens t \
         JOIN accounts a ON a.account_id = t.account_id WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(exec)
    .await?;
    row.map(|row| {
        Ok(TokenRow {
            account_id: col(&row, "account_id")?,
            account_name: col(&row, "name")?,
            scope: col(&row, "scope")?,
            expires_at: time_col(&row, "expires_at")?,
        })
    })
    .transpose()
}
