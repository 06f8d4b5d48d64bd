//! All of the bank's SQL, for SQLite and PostgreSQL alike (sqlx `Any`, `$n` placeholders).
//!
//! Tables (see `migrations/`): `accounts` (balance as magnitude + `has_debt`), `transactions`
//! (one row per money movement, both sides), `taler_incoming` / `taler_outgoing` (the Wire
//! Gateway view of some transactions), `tokens`. Functions here do single statements and turn
//! rows into typed values; what a money movement means (checks, balances, notifications) lives
//! in `ledger`. Reads take any executor (the pool or a transaction's connection); writes take a
//! write transaction's connection.

pub mod account;
pub mod history;
pub mod taler;
pub mod token;
pub mod transaction;

use cardcash_store::Migrations;
use cardcash_util::{Amount, Currency, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{BankError, Result};

/// The bank's migrations for both engines.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("migrations/sqlite"),
    postgres: sqlx::migrate!("migrations/postgres"),
};

/// The service name: PostgreSQL schema and notification channel.
pub const SERVICE: &str = "bank";

/// Reads a column, mapping a decode failure to an invariant error (the schema is ours).
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name)
        .map_err(|e| BankError::Invariant(format!("column {name}: {e}")))
}

/// Reads an amount stored as `{prefix}_val BIGINT, {prefix}_frac INTEGER`.
pub(crate) fn amount_col(row: &AnyRow, prefix: &str, currency: &Currency) -> Result<Amount> {
    cardcash_store::columns::get_amount(row, prefix, *currency)
        .map_err(|e| BankError::Invariant(e.to_string()))
}

/// Reads a timestamp stored as BIGINT microseconds.
pub(crate) fn time_col(row: &AnyRow, name: &str) -> Result<Timestamp> {
    cardcash_store::columns::get_timestamp(row, name)
        .map_err(|e| BankError::Invariant(e.to_string()))
}

/// Reads an INTEGER 0/1 flag.
pub(crate) fn flag_col(row: &AnyRow, name: &str) -> Result<bool> {
    let v: i64 = col(row, name)?;
    Ok(v != 0)
}

/// Reads a fixed-size BLOB/BYTEA.
pub(crate) fn bytes_col<const N: usize>(row: &AnyRow, name: &str) -> Result<[u8; N]> {
    let v: Vec<u8> = col(row, name)?;
    v.try_into()
        .map_err(|_| BankError::Invariant(format!("{name} is not {N} bytes")))
}

/// The value part of an amount as stored (`Amount` guarantees ≤ 2^52, so it fits).
pub(crate) fn val(amount: &Amount) -> i64 {
    i64::try_from(amount.value()).unwrap_or(i64::MAX)
}

/// The fraction part of an amount as stored (< 10^8, fits).
pub(crate) fn frac(amount: &Amount) -> i32 {
    i32::try_from(amount.fraction()).unwrap_or(i32::MAX)
}
