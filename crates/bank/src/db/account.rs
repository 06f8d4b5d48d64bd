//! SQL of the `accounts` table.

use cardcash_store::Engine;
use cardcash_util::{Amount, Currency, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor};

use super::{amount_col, col, flag_col, frac, val};
use crate::balance::Balance;
use crate::error::{BankError, Result};

/// A row of `accounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub legal_name: String,
    pub password_hash: Option<String>,
    pub is_exchange: bool,
    pub balance: Balance,
    pub debit_limit: Amount,
}

/// What [`insert`] stores.
#[derive(Debug, Clone)]
pub struct InsertAccount<'a> {
    pub name: &'a str,
    pub legal_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_exchange: bool,
    pub debit_limit: &'a Amount,
    pub created_at: Timestamp,
}

/// The columns [`from_row`] reads, as a literal for `concat!`.
macro_rules! columns {
    () => {
        "account_id, name, legal_name, password_hash, is_exchange, balance_val, balance_frac, \
         has_debt, debit_limit_val, debit_limit_frac"
    };
}

fn from_row(row: &AnyRow, currency: &Currency) -> Result<AccountRow> {
    Ok(AccountRow {
        id: col(row, "account_id")?,
        name: col(row, "name")?,
        legal_name: col(row, "legal_name")?,
        password_hash: col(row, "password_hash")?,
        is_exchange: flag_col(row, "is_exchange")?,
        balance: Balance::new(
            amount_col(row, "balance", currency)?,
            flag_col(row, "has_debt")?,
        ),
        debit_limit: amount_col(row, "debit_limit", currency)?,
    })
}

/// Creates an account with a zero balance; a taken name is [`BankError::NameTaken`].
pub async fn insert(conn: &mut AnyConnection, new: &InsertAccount<'_>) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO accounts (name, legal_name, password_hash, is_exchange, \
         debit_limit_val, debit_limit_frac, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING account_id",
    )
    .bind(new.name)
    .bind(new.legal_name)
    .bind(new.password_hash)
    .bind(i32::from(new.is_exchange))
    .bind(val(new.debit_limit))
    .bind(frac(new.debit_limit))
    .bind(new.created_at.to_sql_micros())
    .fetch_one(conn)
    .await
    .map_err(|e| match BankError::race_on_unique(e) {
        BankError::Race => BankError::NameTaken(new.name.to_owned()),
        other => other,
    })?;
    col(&row, "account_id")
}

/// The account called `name`, if any.
pub async fn by_name<'c, E>(exec: E, name: &str, currency: &Currency) -> Result<Option<AccountRow>>
where
    E: Executor<'c, Database = Any>,
{
    const SQL: &str = concat!("SELECT ", columns!(), " FROM accounts WHERE name = $1");
    let row = sqlx::query(SQL).bind(name).fetch_optional(exec).await?;
    row.map(|r| from_row(&r, currency)).transpose()
}

/// The account `id`, locked against concurrent balance changes until the transaction ends
/// (`FOR UPDATE` on PostgreSQL; SQLite write transactions are exclusive anyway).
pub async fn lock(
    conn: &mut AnyConnection,
    engine: Engine,
    id: i64,
    currency: &Currency,
) -> Result<AccountRow> {
    const SQLITE: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM accounts WHERE account_id = $1"
    );
    const PG: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM accounts WHERE account_id = $1 FOR UPDATE"
    );
    let sql = match engine {
        Engine::Sqlite => SQLITE,
        Engine::Postgres => PG,
    };
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| BankError::Invariant(format!("account {id} vanished")))?;
    from_row(&row, currency)
}

/// Stores a new balance.
pub async fn set_balance(conn: &mut AnyConnection, id: i64, balance: &Balance) -> Result<()> {
    sqlx::query(
        "UPDATE accounts SET balance_val = $1, balance_frac = $2, has_debt = $3 \
         WHERE account_id = $4",
    )
    .bind(val(&balance.amount))
    .bind(frac(&balance.amount))
    .bind(i32::from(balance.is_debit()))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the password hash of `name`; false if there is no such account.
pub async fn set_password(conn: &mut AnyConnection, name: &str, hash: &str) -> Result<bool> {
    let done = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE name = $2")
        .bind(hash)
        .bind(name)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Every account, by name.
pub async fn list<'c, E>(exec: E, currency: &Currency) -> Result<Vec<AccountRow>>
where
    E: Executor<'c, Database = Any>,
{
    const SQL: &str = concat!("SELECT ", columns!(), " FROM accounts ORDER BY name");
    let rows = sqlx::query(SQL).fetch_all(exec).await?;
    rows.iter().map(|r| from_row(r, currency)).collect()
}
