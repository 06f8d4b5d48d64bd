//! SQL of the `transactions` table: one row per money movement.

use cardcash_util::{Amount, Currency, Timestamp};
use sqlx::{Any, AnyConnection, Executor};

use super::{amount_col, col, frac, time_col, val};
use crate::error::{BankError, Result};

/// What [`insert`] stores.
#[derive(Debug, Clone)]
pub struct InsertTransaction<'a> {
    pub debit_account_id: i64,
    pub credit_account_id: i64,
    pub subject: &'a str,
    pub amount: &'a Amount,
    pub created_at: Timestamp,
    /// Core API idempotency key of the debtor.
    pub request_uid: Option<&'a [u8]>,
    /// The transaction this one sends back (bounces).
    pub bounce_of: Option<i64>,
}

/// A stored transaction, as a replayed request needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    pub id: i64,
    pub debit_account_id: i64,
    pub credit_account_id: i64,
    pub subject: String,
    pub amount: Amount,
    pub created_at: Timestamp,
}

/// Inserts a transaction and returns its row id. A unique violation (the debtor's request_uid
/// inserted concurrently) is [`BankError::Race`], so the write is retried and seen as a replay.
pub async fn insert(conn: &mut AnyConnection, t: &InsertTransaction<'_>) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO transactions (debit_account_id, credit_account_id, subject, amount_val, \
         amount_frac, created_at, request_uid, bounce_of) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING tx_id",
    )
    .bind(t.debit_account_id)
    .bind(t.credit_account_id)
    .bind(t.subject)
    .bind(val(t.amount))
    .bind(frac(t.amount))
    .bind(t.created_at.to_sql_micros())
    .bind(t.request_uid)
    .bind(t.bounce_of)
    .fetch_one(conn)
    .await
    .map_err(BankError::race_on_unique)?;
    col(&row, "tx_id")
}

/// The debtor's earlier transaction with this request_uid, if any.
pub async fn by_request_uid<'c, E>(
    exec: E,
    debit_account_id: i64,
    request_uid: &[u8],
    currency: &Currency,
) -> Result<Option<TransactionRow>>
where
    E: Executor<'c, Database = Any>,
{
    let row = sqlx::query(
        "SELECT tx_id, debit_account_id, credit_account_id, subject, amount_val, amount_frac, \
         created_at FROM transactions WHERE debit_account_id = $1 AND request_uid = $2",
    )
    .bind(debit_account_id)
    .bind(request_uid)
    .fetch_optional(exec)
    .await?;
    row.map(|row| {
        Ok(TransactionRow {
            id: col(&row, "tx_id")?,
            debit_account_id: col(&row, "debit_account_id")?,
            credit_account_id: col(&row, "credit_account_id")?,
            subject: col(&row, "subject")?,
            amount: amount_col(&row, "amount", currency)?,
            created_at: time_col(&row, "created_at")?,
        })
    })
    .transpose()
}
