//! SQL of an account's own transaction history (Core Bank API).

use cardcash_util::{Amount, Currency, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{Any, Executor};

use super::{amount_col, col, time_col};
use crate::error::Result;
use cardcash_api::wire_gateway::HistoryParams;

/// A transaction seen from one account, with both parties' names for their payto URIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTransactionRow {
    pub row_id: i64,
    pub date: Timestamp,
    pub amount: Amount,
    pub subject: String,
    pub debtor_name: String,
    pub debtor_legal_name: String,
    pub creditor_name: String,
    pub creditor_legal_name: String,
    /// Whether the account was the debtor (money went out).
    pub is_debit: bool,
}

macro_rules! select {
    () => {
        "SELECT t.tx_id, t.created_at, t.amount_val, t.amount_frac, t.subject, \
         d.name AS debtor_name, d.legal_name AS debtor_legal_name, \
         c.name AS creditor_name, c.legal_name AS creditor_legal_name, \
         t.debit_account_id \
         FROM transactions t \
         JOIN accounts d ON d.account_id = t.debit_account_id \
         JOIN accounts c ON c.account_id = t.credit_account_id "
    };
}

fn from_row(row: &AnyRow, account_id: i64, currency: &Currency) -> Result<AccountTransactionRow> {
    let debit_account_id: i64 = col(row, "debit_account_id")?;
    Ok(AccountTransactionRow {
        row_id: col(row, "tx_id")?,
        date: time_col(row, "created_at")?,
        amount: amount_col(row, "amount", currency)?,
        subject: col(row, "subject")?,
        debtor_name: col(row, "debtor_name")?,
        debtor_legal_name: col(row, "debtor_legal_name")?,
        creditor_name: col(row, "creditor_name")?,
        creditor_legal_name: col(row, "creditor_legal_name")?,
        is_debit: debit_account_id == account_id,
    })
}

/// One page of the transactions the account took part in.
pub async fn page<'c, E>(
    exec: E,
    account_id: i64,
    page: &HistoryParams,
    currency: &Currency,
) -> Result<Vec<AccountTransactionRow>>
where
    E: Executor<'c, Database = Any>,
{
    const ASC: &str = concat!(
        select!(),
        "WHERE (t.debit_account_id = $1 OR t.credit_account_id = $1) AND t.tx_id > $2 \
         ORDER BY t.tx_id ASC LIMIT $3"
    );
    const DESC: &str = concat!(
        select!(),
        "WHERE (t.debit_account_id = $1 OR t.credit_account_id = $1) AND t.tx_id < $2 \
         ORDER BY t.tx_id DESC LIMIT $3"
    );
    let sql = if page.ascending() { ASC } else { DESC };
    let rows = sqlx::query(sql)
        .bind(account_id)
        .bind(page.start())
        .bind(page.count())
        .fetch_all(exec)
        .await?;
    rows.iter()
        .map(|r| from_row(r, account_id, currency))
        .collect()
}

/// One transaction, if the account took part in it.
pub async fn get<'c, E>(
    exec: E,
    account_id: i64,
    row_id: i64,
    currency: &Currency,
) -> Result<Option<AccountTransactionRow>>
where
    E: Executor<'c, Database = Any>,
{
    const SQL: &str = concat!(
        select!(),
        "WHERE (t.debit_account_id = $1 OR t.credit_account_id = $1) AND t.tx_id = $2"
    );
    let row = sqlx::query(SQL)
        .bind(account_id)
        .bind(row_id)
        .fetch_optional(exec)
        .await?;
    row.map(|r| from_row(&r, account_id, currency)).transpose()
}
