//! SQL for `refund`: find by idempotency key, insert, read.

use cardcash_store::{Db, Tx};
use cardcash_util::{Amount, Currency};
use sqlx::any::AnyRow;

use super::{
    amount_sql, corrupt, get_amount, get_id, get_opt_string, get_string, get_time, id_sql,
};
use crate::error::CardprocError;
use cardcash_api::cardproc::IsoTime;
use cardcash_api::cardproc::{DecimalAmount, Refund, RefundState, RefundType};

/// The decoded columns (a macro so statements stay literals, as sqlx requires).
macro_rules! columns {
    () => {
        "r.id, r.space_id, r.external_id, r.transaction_id, r.amount_val, r.amount_frac, \
         r.refund_type, r.merchant_reference, r.created_at, t.currency \
         FROM refund r JOIN card_transaction t ON t.id = r.transaction_id"
    };
}

/// A stored refund, decoded (refunds succeed synchronously, so there is no state column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRow {
    /// Id.
    pub id: u64,
    /// Space.
    pub space_id: u64,
    /// Idempotency key.
    pub external_id: String,
    /// Refunded transaction.
    pub transaction_id: u64,
    /// Amount (in the transaction's currency).
    pub amount: Amount,
    /// Type.
    pub refund_type: RefundType,
    /// Merchant reference.
    pub merchant_reference: Option<String>,
    /// Created (and succeeded).
    pub created_at: IsoTime,
}

impl RefundRow {
    fn decode(row: &AnyRow) -> Result<Self, CardprocError> {
        let currency =
            Currency::new(&get_string(row, "currency")?).map_err(|_| corrupt("currency"))?;
        Ok(Self {
            id: get_id(row, "id")?,
            space_id: get_id(row, "space_id")?,
            external_id: get_string(row, "external_id")?,
            transaction_id: get_id(row, "transaction_id")?,
            amount: get_amount(row, currency, "amount")?,
            refund_type: get_string(row, "refund_type")?
                .parse()
                .map_err(|_| corrupt("refund_type"))?,
            merchant_reference: get_opt_string(row, "merchant_reference")?,
            created_at: get_time(row, "created_at")?,
        })
    }

    /// The API view.
    pub fn view(&self) -> Refund {
        Refund {
            id: self.id,
            external_id: self.external_id.clone(),
            linked_space_id: self.space_id,
            transaction: self.transaction_id,
            amount: DecimalAmount::from(self.amount),
            currency: *self.amount.currency(),
            state: RefundState::Successful,
            refund_type: self.refund_type,
            merchant_reference: self.merchant_reference.clone(),
            created_on: self.created_at,
            succeeded_on: Some(self.created_at),
        }
    }
}

/// What `insert` stores.
#[derive(Debug, Clone)]
pub struct NewRefund<'a> {
    /// Space.
    pub space_id: u64,
    /// Idempotency key.
    pub external_id: &'a str,
    /// Transaction.
    pub transaction_id: u64,
    /// Amount.
    pub amount: Amount,
    /// Type.
    pub refund_type: RefundType,
    /// Merchant reference.
    pub merchant_reference: Option<&'a str>,
    /// The API user.
    pub created_by: u64,
    /// Now.
    pub created_at: IsoTime,
}

/// The refund stored under `external_id` in `space_id`, if any.
pub async fn find_by_external_id(
    tx: &mut Tx,
    space_id: u64,
    external_id: &str,
) -> Result<Option<RefundRow>, CardprocError> {
    let space = id_sql(space_id).ok_or_else(|| corrupt("space_id"))?;
    let sql = concat!(
        "SELECT ",
        columns!(),
        " WHERE r.space_id = $1 AND r.external_id = $2"
    );
    let row = sqlx::query(sql)
        .bind(space)
        .bind(external_id.to_owned())
        .fetch_optional(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    row.as_ref().map(RefundRow::decode).transpose()
}

/// Inserts a refund and returns its id. A concurrent insert of the same `external_id` fails
/// with a unique violation on `refund_space_id_external_id_key`.
pub async fn insert(tx: &mut Tx, new: &NewRefund<'_>) -> Result<u64, CardprocError> {
    let (val, frac) = amount_sql(&new.amount);
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO refund (space_id, external_id, transaction_id, amount_val, amount_frac, refund_type, \
         merchant_reference, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(id_sql(new.space_id).ok_or_else(|| corrupt("space_id"))?)
    .bind(new.external_id.to_owned())
    .bind(id_sql(new.transaction_id).ok_or_else(|| corrupt("transaction_id"))?)
    .bind(val)
    .bind(frac)
    .bind(new.refund_type.as_str())
    .bind(new.merchant_reference.map(str::to_owned))
    .bind(id_sql(new.created_by).ok_or_else(|| corrupt("created_by"))?)
    .bind(new.created_at.to_sql())
    .fetch_one(tx.conn())
    .await
    .map_err(|e| CardprocError::Store(e.into()))?;
    u64::try_from(id).map_err(|_| corrupt("refund id"))
}

/// Reads a refund of `space_id`.
pub async fn get(db: &Db, space_id: u64, id: u64) -> Result<Option<RefundRow>, CardprocError> {
    let (Some(space), Some(id)) = (id_sql(space_id), id_sql(id)) else {
        return Ok(None);
    };
    let sql = concat!(
        "SELECT ",
        columns!(),
        " WHERE r.id = $1 AND r.space_id = $2"
    );
    let row = sqlx::query(sql)
        .bind(id)
        .bind(space)
        .fetch_optional(db.pool())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    row.as_ref().map(RefundRow::decode).transpose()
}

/// Reads a refund by id inside a write transaction (after inserting it).
pub async fn get_in(tx: &mut Tx, id: u64) -> Result<Option<RefundRow>, CardprocError> {
    let Some(id) = id_sql(id) else {
        return Ok(None);
    };
    let sql = concat!("SELECT ", columns!(), " WHERE r.id = $1");
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    row.as_ref().map(RefundRow::decode).transpose()
}
