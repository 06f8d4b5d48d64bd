//! The merchant's storage on SQLite (rusqlite): reads run inline on a read-only connection;
//! each write is ONE closure on the store's writer thread, which runs alone, so it can read,
//! decide and apply without locks. One file per feature, in step with `../postgres/`.

pub(crate) mod instances;
pub(crate) mod inventory;
pub(crate) mod orders;
pub(crate) mod payments;
pub(crate) mod sessions;
pub(crate) mod settlement;
pub(crate) mod status;
pub(crate) mod webhooks;

use cardcash_store::StoreError;
use cardcash_store::rusqlite::{Connection, Params, Row};
use cardcash_util::{Amount, Currency, EddsaPublicKey, EddsaSignature, HashCode, Timestamp};

use super::{amount, fixed, time};

pub(crate) fn execute(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<usize, StoreError> {
    Ok(conn.prepare_cached(sql)?.execute(params)?)
}

pub(crate) fn am(row: &Row<'_>, currency: Currency, idx: usize) -> Result<Amount, StoreError> {
    amount(currency, row.get(idx)?, row.get(idx + 1)?)
}

pub(crate) fn ts(row: &Row<'_>, idx: usize) -> Result<Timestamp, StoreError> {
    time(row.get(idx)?)
}

pub(crate) fn eddsa(row: &Row<'_>, idx: usize) -> Result<EddsaPublicKey, StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    fixed("public key", &b, EddsaPublicKey::from_slice)
}

pub(crate) fn sig(row: &Row<'_>, idx: usize) -> Result<EddsaSignature, StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    fixed("signature", &b, EddsaSignature::from_slice)
}

pub(crate) fn hash(row: &Row<'_>, idx: usize) -> Result<HashCode, StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    fixed("hash", &b, HashCode::from_slice)
}

pub(crate) fn flag(row: &Row<'_>, idx: usize) -> Result<bool, StoreError> {
    let v: i64 = row.get(idx)?;
    Ok(v != 0)
}
