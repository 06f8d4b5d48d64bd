//! The merchant's storage on PostgreSQL (typed sqlx). Reads are single statements; a write that
//! decides on what it reads runs in one transaction ([`cardcash_store::PgDb::begin`]) that
//! locks the rows it decides on first (`SELECT … FOR UPDATE`), so two requests racing for the
//! same order or the last piece of stock are serialised. One file per feature, in step with
//! `../sqlite/`.

pub(crate) mod instances;
pub(crate) mod inventory;
pub(crate) mod orders;
pub(crate) mod payments;
pub(crate) mod sessions;
pub(crate) mod settlement;
pub(crate) mod status;
pub(crate) mod webhooks;

use cardcash_store::StoreError;
use cardcash_util::{EddsaPublicKey, EddsaSignature, HashCode};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::fixed;

pub(crate) fn bytes<T>(
    row: &PgRow,
    column: &str,
    from: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, StoreError> {
    let b: &[u8] = row.try_get(column)?;
    fixed(column, b, from)
}

pub(crate) fn bytes_opt<T>(
    row: &PgRow,
    column: &str,
    from: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    let b: Option<&[u8]> = row.try_get(column)?;
    b.map(|b| fixed(column, b, from)).transpose()
}

pub(crate) fn eddsa(row: &PgRow, column: &str) -> Result<EddsaPublicKey, StoreError> {
    bytes(row, column, EddsaPublicKey::from_slice)
}

pub(crate) fn sig(row: &PgRow, column: &str) -> Result<EddsaSignature, StoreError> {
    bytes(row, column, EddsaSignature::from_slice)
}

pub(crate) fn hash(row: &PgRow, column: &str) -> Result<HashCode, StoreError> {
    bytes(row, column, HashCode::from_slice)
}

pub(crate) fn flag(row: &PgRow, column: &str) -> Result<bool, StoreError> {
    let v: i32 = row.try_get(column)?;
    Ok(v != 0)
}
