//! SQL for `card_transaction`: create, read, lock, apply a decision, finalise delayed
//! approvals, and book refunded amounts.

use std::collections::BTreeMap;

use cardcash_store::{Db, Tx};
use cardcash_util::{Amount, Currency};
use sqlx::any::AnyRow;

use super::{
    amount_sql, corrupt, get_amount, get_id, get_opt_string, get_opt_time, get_string, get_time,
    id_sql,
};
use crate::error::CardprocError;
use crate::processing::{Transition, effective};
use cardcash_api::cardproc::IsoTime;
use cardcash_api::cardproc::{DecimalAmount, FailureReason, Transaction, TransactionState};

/// The decoded columns, as a macro so every statement stays a literal (sqlx refuses dynamic SQL).
macro_rules! columns {
    () => {
        "id, space_id, state, currency, amount_val, amount_frac, completed_val, completed_frac, \
         refunded_val, refunded_frac, merchant_reference, terminal_id, meta_data, card_masked, failure_reason, \
         created_at, authorized_at, completed_at, failed_at, fulfill_at"
    };
}

/// A stored transaction, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    /// Id.
    pub id: u64,
    /// Space.
    pub space_id: u64,
    /// Stored state (see [`TransactionRow::view`] for what readers see).
    pub state: TransactionState,
    /// Requested amount (with the currency).
    pub amount: Amount,
    /// Captured amount.
    pub completed: Amount,
    /// Refunded amount.
    pub refunded: Amount,
    /// Merchant reference.
    pub merchant_reference: String,
    /// Terminal id.
    pub terminal_id: Option<String>,
    /// Free-form metadata.
    pub meta_data: BTreeMap<String, String>,
    /// Masked PAN.
    pub card_masked: Option<String>,
    /// Failure reason.
    pub failure_reason: Option<FailureReason>,
    /// Created.
    pub created_at: IsoTime,
    /// Authorized.
    pub authorized_at: Option<IsoTime>,
    /// Captured.
    pub completed_at: Option<IsoTime>,
    /// Failed.
    pub failed_at: Option<IsoTime>,
    /// Delayed finality due time.
    pub fulfill_at: Option<IsoTime>,
}

impl TransactionRow {
    fn decode(row: &AnyRow) -> Result<Self, CardprocError> {
        let currency =
            Currency::new(&get_string(row, "currency")?).map_err(|_| corrupt("currency"))?;
        let meta_data = serde_json::from_str(&get_string(row, "meta_data")?)
            .map_err(|_| corrupt("meta_data"))?;
        let failure_reason = get_opt_string(row, "failure_reason")?
            .map(|r| {
                r.parse::<FailureReason>()
                    .map_err(|_| corrupt("failure_reason"))
            })
            .transpose()?;
        Ok(Self {
            id: get_id(row, "id")?,
            space_id: get_id(row, "space_id")?,
            state: get_string(row, "state")?
                .parse()
                .map_err(|_| corrupt("state"))?,
            amount: get_amount(row, currency, "amount")?,
            completed: get_amount(row, currency, "completed")?,
            refunded: get_amount(row, currency, "refunded")?,
            merchant_reference: get_string(row, "merchant_reference")?,
            terminal_id: get_opt_string(row, "terminal_id")?,
            meta_data,
            card_masked: get_opt_string(row, "card_masked")?,
            failure_reason,
            created_at: get_time(row, "created_at")?,
            authorized_at: get_opt_time(row, "authorized_at")?,
            completed_at: get_opt_time(row, "completed_at")?,
            failed_at: get_opt_time(row, "failed_at")?,
            fulfill_at: get_opt_time(row, "fulfill_at")?,
        })
    }

    /// The state a reader sees at `now` (delayed finality applied even if the background task
    /// has not yet persisted it).
    pub fn effective_state(&self, now: IsoTime) -> TransactionState {
        effective(self.state, self.fulfill_at, now).0
    }

    /// The API view at `now`.
    pub fn view(&self, now: IsoTime) -> Transaction {
        let (state, became_final_at) = effective(self.state, self.fulfill_at, now);
        let (completed, completed_at) = match became_final_at {
            Some(at) => (self.amount, Some(at)),
            None => (self.completed, self.completed_at),
        };
        Transaction {
            id: self.id,
            linked_space_id: self.space_id,
            state,
            currency: *self.amount.currency(),
            authorization_amount: DecimalAmount::from(self.amount),
            completed_amount: DecimalAmount::from(completed),
            refunded_amount: DecimalAmount::from(self.refunded),
            merchant_reference: self.merchant_reference.clone(),
            terminal_id: self.terminal_id.clone(),
            card_masked: self.card_masked.clone(),
            failure_reason: self.failure_reason,
            created_on: self.created_at,
            authorized_on: self.authorized_at,
            completed_on: completed_at,
            failed_on: self.failed_at,
            meta_data: self.meta_data.clone(),
        }
    }
}

/// What `insert` stores.
#[derive(Debug, Clone)]
pub struct NewTransaction<'a> {
    /// Space.
    pub space_id: u64,
    /// Requested amount.
    pub amount: Amount,
    /// Merchant reference.
    pub merchant_reference: &'a str,
    /// Terminal id.
    pub terminal_id: Option<&'a str>,
    /// Metadata.
    pub meta_data: &'a BTreeMap<String, String>,
    /// The API user creating it.
    pub created_by: u64,
    /// Now.
    pub created_at: IsoTime,
}

/// Inserts a `PENDING` transaction.
pub async fn insert(
    tx: &mut Tx,
    new: &NewTransaction<'_>,
) -> Result<TransactionRow, CardprocError> {
    let (val, frac) = amount_sql(&new.amount);
    let meta =
        serde_json::to_string(new.meta_data).map_err(|e| CardprocError::Internal(e.to_string()))?;
    let sql = concat!(
        "INSERT INTO card_transaction (space_id, state, currency, amount_val, amount_frac, merchant_reference, \
         terminal_id, meta_data, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         RETURNING ",
        columns!()
    );
    let row = sqlx::query(sql)
        .bind(id_sql(new.space_id).ok_or_else(|| corrupt("space_id"))?)
        .bind(TransactionState::Pending.as_str())
        .bind(new.amount.currency().as_str().to_owned())
        .bind(val)
        .bind(frac)
        .bind(new.merchant_reference.to_owned())
        .bind(new.terminal_id.map(str::to_owned))
        .bind(meta)
        .bind(id_sql(new.created_by).ok_or_else(|| corrupt("created_by"))?)
        .bind(new.created_at.to_sql())
        .fetch_one(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    TransactionRow::decode(&row)
}

/// Reads a transaction of `space_id` (without locking).
pub async fn get(db: &Db, space_id: u64, id: u64) -> Result<Option<TransactionRow>, CardprocError> {
    let (Some(space), Some(id)) = (id_sql(space_id), id_sql(id)) else {
        return Ok(None);
    };
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM card_transaction WHERE id = $1 AND space_id = $2"
    );
    let row = sqlx::query(sql)
        .bind(id)
        .bind(space)
        .fetch_optional(db.pool())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    row.as_ref().map(TransactionRow::decode).transpose()
}

/// Locks a transaction row for the rest of `tx` and reads it. The no-op version bump takes the
/// row lock on PostgreSQL (READ COMMITTED would otherwise let two refunds read the same
/// `refunded` total); on SQLite `BEGIN IMMEDIATE` already serialises writers.
pub async fn lock(
    tx: &mut Tx,
    space_id: u64,
    id: u64,
) -> Result<Option<TransactionRow>, CardprocError> {
    let (Some(space), Some(id)) = (id_sql(space_id), id_sql(id)) else {
        return Ok(None);
    };
    let sql = concat!(
        "UPDATE card_transaction SET version = version + 1 WHERE id = $1 AND space_id = $2 RETURNING ",
        columns!()
    );
    let row = sqlx::query(sql)
        .bind(id)
        .bind(space)
        .fetch_optional(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    row.as_ref().map(TransactionRow::decode).transpose()
}

/// Applies an authorizer's decision if the transaction is still `PENDING`. Returns the new row,
/// or `None` when another request processed it first (the caller then returns that result).
pub async fn apply_transition(
    tx: &mut Tx,
    id: u64,
    transition: &Transition,
    card_masked: &str,
) -> Result<Option<TransactionRow>, CardprocError> {
    let Some(id) = id_sql(id) else {
        return Ok(None);
    };
    let opt = |t: Option<IsoTime>| t.map(|t| t.to_sql());
    // Captured = the authorization amount, copied in SQL ($10 = 1) so no amount crosses twice.
    let sql = concat!(
        "UPDATE card_transaction SET state = $1, failure_reason = $2, card_masked = $3, authorized_at = $4, \
         completed_at = $5, failed_at = $6, fulfill_at = $7, \
         completed_val = CASE WHEN $10 = 1 THEN amount_val ELSE completed_val END, \
         completed_frac = CASE WHEN $10 = 1 THEN amount_frac ELSE completed_frac END, version = version + 1 \
         WHERE id = $8 AND state = $9 RETURNING ",
        columns!()
    );
    let row = sqlx::query(sql)
        .bind(transition.state.as_str())
        .bind(transition.failure_reason.map(|r| r.as_str().to_owned()))
        .bind(card_masked.to_owned())
        .bind(opt(transition.authorized_at))
        .bind(opt(transition.completed_at))
        .bind(opt(transition.failed_at))
        .bind(opt(transition.fulfill_at))
        .bind(id)
        .bind(TransactionState::Pending.as_str())
        .bind(i32::from(transition.captured))
        .fetch_optional(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    row.as_ref().map(TransactionRow::decode).transpose()
}

/// Voids a transaction that is `AUTHORIZED` and not yet due for finality at `now`; `None` if it
/// is in any other state (or unknown).
pub async fn void(
    tx: &mut Tx,
    space_id: u64,
    id: u64,
    now: IsoTime,
) -> Result<Option<TransactionRow>, CardprocError> {
    let (Some(space), Some(id)) = (id_sql(space_id), id_sql(id)) else {
        return Ok(None);
    };
    let sql = concat!(
        "UPDATE card_transaction SET state = $1, fulfill_at = NULL, version = version + 1 \
         WHERE id = $2 AND space_id = $3 AND state = $4 AND (fulfill_at IS NULL OR fulfill_at > $5) RETURNING ",
        columns!()
    );
    let row = sqlx::query(sql)
        .bind(TransactionState::Voided.as_str())
        .bind(id)
        .bind(space)
        .bind(TransactionState::Authorized.as_str())
        .bind(now.to_sql())
        .fetch_optional(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    row.as_ref().map(TransactionRow::decode).transpose()
}

/// Persists delayed finality: every `AUTHORIZED` row whose `fulfill_at` is not after `now`
/// becomes `FULFILL`, captured at `fulfill_at` (the same values [`TransactionRow::view`] shows).
/// `only` limits it to one transaction. Returns how many rows changed.
pub async fn finalize_due(
    tx: &mut Tx,
    now: IsoTime,
    only: Option<u64>,
) -> Result<u64, CardprocError> {
    // `$4` = -1 means "every transaction" (ids are positive).
    let only = match only.map(id_sql) {
        Some(Some(id)) => id,
        Some(None) => return Ok(0),
        None => -1,
    };
    let done = sqlx::query(
        "UPDATE card_transaction SET state = $1, completed_val = amount_val, completed_frac = amount_frac, \
         completed_at = fulfill_at, version = version + 1 \
         WHERE state = $2 AND fulfill_at IS NOT NULL AND fulfill_at <= $3 AND ($4 = -1 OR id = $4)",
    )
    .bind(TransactionState::Fulfill.as_str())
    .bind(TransactionState::Authorized.as_str())
    .bind(now.to_sql())
    .bind(only)
    .execute(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    Ok(done.rows_affected())
}

/// The earliest pending delayed-finality time, if any.
pub async fn next_due(db: &Db) -> Result<Option<IsoTime>, CardprocError> {
    let row: Option<(Option<i64>,)> = sqlx::query_as(
        "SELECT MIN(fulfill_at) FROM card_transaction WHERE state = $1 AND fulfill_at IS NOT NULL",
    )
    .bind(TransactionState::Authorized.as_str())
    .fetch_optional(db.pool())
    .await
    .map_err(|e| CardprocError::Store(e.into()))?;
    Ok(row.and_then(|(t,)| t).map(IsoTime::from_sql))
}

/// Sets the refunded total of a transaction.
pub async fn set_refunded(tx: &mut Tx, id: u64, refunded: &Amount) -> Result<(), CardprocError> {
    let (val, frac) = amount_sql(refunded);
    sqlx::query("UPDATE card_transaction SET refunded_val = $1, refunded_frac = $2, version = version + 1 WHERE id = $3")
        .bind(val)
        .bind(frac)
        .bind(id_sql(id).ok_or_else(|| corrupt("id"))?)
        .execute(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    Ok(())
}
