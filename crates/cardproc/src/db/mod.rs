//! All SQL of the card processor, for SQLite and PostgreSQL alike (`$n` placeholders, portable
//! types; the two migration sets differ only in how ids are generated).
//!
//! Tables: `api_user` (MAC users), `card_transaction`, `refund`. Money is `(…_val, …_frac)`,
//! times are microseconds. Writes take a `&mut Tx` from the caller, who owns the transaction
//! boundary; reads take the `Db` and use its pool.

pub mod refund;
pub mod transaction;
pub mod user;

use cardcash_store::Migrations;
use cardcash_util::{Amount, Currency};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::CardprocError;
use cardcash_api::cardproc::IsoTime;

/// The service name: PostgreSQL schema `cardproc`, notification channel `cardcash_cardproc`.
pub const SERVICE: &str = "cardproc";

/// The card processor's migrations for both engines.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("migrations/sqlite"),
    postgres: sqlx::migrate!("migrations/postgres"),
};

/// A stored value that does not decode: the database holds something we never write.
fn corrupt(what: &str) -> CardprocError {
    CardprocError::Internal(format!("stored {what} does not decode"))
}

fn get_i64(row: &AnyRow, col: &str) -> Result<i64, CardprocError> {
    row.try_get::<i64, _>(col)
        .map_err(|e| CardprocError::Store(e.into()))
}

fn get_opt_i64(row: &AnyRow, col: &str) -> Result<Option<i64>, CardprocError> {
    row.try_get::<Option<i64>, _>(col)
        .map_err(|e| CardprocError::Store(e.into()))
}

fn get_string(row: &AnyRow, col: &str) -> Result<String, CardprocError> {
    row.try_get::<String, _>(col)
        .map_err(|e| CardprocError::Store(e.into()))
}

fn get_opt_string(row: &AnyRow, col: &str) -> Result<Option<String>, CardprocError> {
    row.try_get::<Option<String>, _>(col)
        .map_err(|e| CardprocError::Store(e.into()))
}

fn get_id(row: &AnyRow, col: &str) -> Result<u64, CardprocError> {
    u64::try_from(get_i64(row, col)?).map_err(|_| corrupt(col))
}

fn get_time(row: &AnyRow, col: &str) -> Result<IsoTime, CardprocError> {
    Ok(IsoTime::from_sql(get_i64(row, col)?))
}

fn get_opt_time(row: &AnyRow, col: &str) -> Result<Option<IsoTime>, CardprocError> {
    Ok(get_opt_i64(row, col)?.map(IsoTime::from_sql))
}

fn get_amount(row: &AnyRow, currency: Currency, prefix: &str) -> Result<Amount, CardprocError> {
    cardcash_store::columns::get_amount(row, prefix, currency).map_err(|_| corrupt(prefix))
}

/// `(value, fraction)` as SQL integers.
fn amount_sql(a: &Amount) -> (i64, i32) {
    cardcash_store::columns::amount_to_columns(a)
}

/// An id from the API as a SQL `BIGINT`; ids beyond `i64::MAX` cannot exist.
fn id_sql(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}
