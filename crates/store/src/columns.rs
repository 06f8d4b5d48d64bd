//! The column codecs every service shares: money as `({prefix}_val BIGINT, {prefix}_frac
//! INTEGER)` (the split of Taler's own `taler_amount`) and times as `BIGINT` microseconds (with
//! "never" as `i64::MAX`). A value that does not decode is [`StoreError::Corrupt`]: the schema is
//! ours, so that is a broken invariant, never a client error.

use cardcash_util::{Amount, Currency, Timestamp};
use sqlx::Row as _;

use crate::error::StoreError;

/// The `(value, fraction)` columns of an amount; both fit by `Amount`'s invariants
/// (value ≤ 2^52, fraction < 10^8).
pub fn amount_to_columns(amount: &Amount) -> (i64, i32) {
    (
        i64::try_from(amount.value()).unwrap_or(i64::MAX),
        i32::try_from(amount.fraction()).unwrap_or(i32::MAX),
    )
}

/// An amount of `currency` from its `(value, fraction)` columns.
pub fn amount_from_columns(
    currency: Currency,
    value: i64,
    fraction: i64,
) -> Result<Amount, StoreError> {
    let value = u64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("negative amount value {value}")))?;
    let fraction = u32::try_from(fraction)
        .map_err(|_| StoreError::Corrupt(format!("amount fraction {fraction} out of range")))?;
    Amount::new(currency, value, fraction).map_err(|e| StoreError::Corrupt(format!("amount: {e}")))
}

/// Reads the amount in columns `idx` (value) and `idx + 1` (fraction) of a SQLite row.
pub fn sqlite_amount(
    row: &rusqlite::Row<'_>,
    idx: usize,
    currency: Currency,
) -> rusqlite::Result<Amount> {
    sqlite_amount_opt(row, idx, currency)?.ok_or_else(|| {
        conversion_failure(
            idx,
            StoreError::Corrupt("amount columns are NULL".to_owned()),
        )
    })
}

/// Reads an optional amount in columns `idx` and `idx + 1` of a SQLite row (both NULL: `None`).
pub fn sqlite_amount_opt(
    row: &rusqlite::Row<'_>,
    idx: usize,
    currency: Currency,
) -> rusqlite::Result<Option<Amount>> {
    let value: Option<i64> = row.get(idx)?;
    let fraction: Option<i64> = row.get(idx + 1)?;
    match (value, fraction) {
        (Some(v), Some(f)) => amount_from_columns(currency, v, f)
            .map(Some)
            .map_err(|e| conversion_failure(idx, e)),
        (None, None) => Ok(None),
        _ => Err(conversion_failure(
            idx,
            StoreError::Corrupt("one of the amount columns is NULL".to_owned()),
        )),
    }
}

/// Reads the timestamp (microseconds) in column `idx` of a SQLite row.
pub fn sqlite_timestamp(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    let micros: i64 = row.get(idx)?;
    Timestamp::from_sql_micros(micros)
        .map_err(|e| conversion_failure(idx, StoreError::Corrupt(format!("timestamp: {e}"))))
}

/// A value that does not decode into its protocol type, as rusqlite reports it.
pub fn conversion_failure(idx: usize, error: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, Box::new(error))
}

/// Reads the amount in `{prefix}_val`/`{prefix}_frac` of a PostgreSQL row.
pub fn pg_amount(
    row: &sqlx::postgres::PgRow,
    prefix: &str,
    currency: Currency,
) -> Result<Amount, StoreError> {
    pg_amount_opt(row, prefix, currency)?
        .ok_or_else(|| StoreError::Corrupt(format!("{prefix}_val is NULL")))
}

/// Reads an optional amount of a PostgreSQL row (both columns NULL: `None`).
pub fn pg_amount_opt(
    row: &sqlx::postgres::PgRow,
    prefix: &str,
    currency: Currency,
) -> Result<Option<Amount>, StoreError> {
    let value: Option<i64> = row.try_get(format!("{prefix}_val").as_str())?;
    let fraction: Option<i32> = row.try_get(format!("{prefix}_frac").as_str())?;
    match (value, fraction) {
        (Some(v), Some(f)) => amount_from_columns(currency, v, i64::from(f)).map(Some),
        (None, None) => Ok(None),
        _ => Err(StoreError::Corrupt(format!(
            "{prefix}: one of _val/_frac is NULL"
        ))),
    }
}

/// Reads a timestamp column (microseconds) of a PostgreSQL row.
pub fn pg_timestamp(row: &sqlx::postgres::PgRow, column: &str) -> Result<Timestamp, StoreError> {
    let micros: i64 = row.try_get(column)?;
    Timestamp::from_sql_micros(micros).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_through_their_columns() {
        let chf = Currency::new("CHF").unwrap();
        for text in [
            "CHF:0",
            "CHF:20",
            "CHF:0.00000001",
            "CHF:4503599627370496.99999999",
        ] {
            let a: Amount = text.parse().unwrap();
            let (v, f) = amount_to_columns(&a);
            assert_eq!(amount_from_columns(chf, v, i64::from(f)).unwrap(), a);
        }
    }

    #[test]
    fn impossible_columns_are_corrupt_not_panics() {
        let chf = Currency::new("CHF").unwrap();
        for (v, f) in [(-1, 0), (0, -1), (0, 100_000_000), (i64::MAX, 0)] {
            let e = amount_from_columns(chf, v, f).unwrap_err();
            assert!(matches!(e, StoreError::Corrupt(_)), "{v}/{f}: {e}");
            assert_eq!(
                e.code(),
                cardcash_util::ErrorCode::GenericDbInvariantFailure
            );
        }
    }
}
