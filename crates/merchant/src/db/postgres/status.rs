//! Order status, claim and `/paid` on PostgreSQL.

use cardcash_store::columns::{pg_amount, pg_timestamp};
use cardcash_store::{PgDb, StoreError};
use cardcash_util::{Currency, EddsaPublicKey, HashCode};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::super::status::{
    ClaimOutcome, DepositSummary, OrderStatusRow, PaidInSession, PaymentDetails, RebindOutcome,
    RefundSummary, decide_claim, order_notifications,
};
use super::super::{corrupt, micros, time_opt};
use super::{bytes_opt, flag, orders};
use crate::claim::{ClaimDecision, ClaimRequestView};

/// The columns of an order's status (a macro: sqlx takes only literal SQL): the listing's,
/// then those only the status reads.
macro_rules! order_columns {
    () => {
        concat!(orders::order_columns!(), ", nonce, paid_at")
    };
}

/// An order read with [`order_columns!`]: the listing's columns, decoded by
/// [`orders::order_row`], then those only the status reads.
fn order_row(row: &PgRow, currency: Currency) -> Result<OrderStatusRow, StoreError> {
    OrderStatusRow::new(
        orders::order_row(row, currency)?,
        bytes_opt(row, "nonce", EddsaPublicKey::from_slice)?,
        time_opt(row.try_get("paid_at")?)?,
    )
}

pub(crate) async fn order_status(
    db: &PgDb,
    currency: Currency,
    instance_serial: i64,
    order_id: &str,
) -> Result<Option<OrderStatusRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE instance_serial = $1 AND order_id = $2"
    ))
    .bind(instance_serial)
    .bind(order_id)
    .fetch_optional(db.pool())
    .await?
    .map(|row| order_row(&row, currency))
    .transpose()
}

pub(crate) async fn payment_details(
    db: &PgDb,
    currency: Currency,
    order_serial: i64,
) -> Result<PaymentDetails, StoreError> {
    let deposits = sqlx::query(
        "SELECT exchange_url, amount_with_fee_val, amount_with_fee_frac, deposit_fee_val, \
         deposit_fee_frac, exchange_timestamp, wtid, execution_time FROM deposits \
         WHERE order_serial = $1 ORDER BY deposit_serial",
    )
    .bind(order_serial)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(DepositSummary {
            exchange_url: row.try_get("exchange_url")?,
            amount_with_fee: pg_amount(row, "amount_with_fee", currency)?,
            deposit_fee: pg_amount(row, "deposit_fee", currency)?,
            exchange_timestamp: pg_timestamp(row, "exchange_timestamp")?,
            wtid: bytes_opt(row, "wtid", |b| b.try_into().ok())?,
            execution_time: time_opt(row.try_get("execution_time")?)?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let refunds = sqlx::query(
        "SELECT rtransaction_id, amount_val, amount_frac, reason, granted_at, obtained \
         FROM refunds WHERE order_serial = $1 ORDER BY rtransaction_id, refund_serial",
    )
    .bind(order_serial)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(RefundSummary {
            rtransaction_id: row.try_get("rtransaction_id")?,
            amount: pg_amount(row, "amount", currency)?,
            reason: row.try_get("reason")?,
            granted_at: pg_timestamp(row, "granted_at")?,
            obtained: flag(row, "obtained")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(PaymentDetails { deposits, refunds })
}

pub(crate) async fn paid_in_session(
    db: &PgDb,
    instance_serial: i64,
    session_id: &str,
    fulfillment_url: &str,
    allow_refunded: bool,
) -> Result<Option<PaidInSession>, StoreError> {
    sqlx::query(
        "SELECT order_id, fulfillment_url FROM orders WHERE instance_serial = $1 \
         AND session_id = $2 AND fulfillment_url = $3 AND paid = 1 \
         AND ($4 OR (refund_val = 0 AND refund_frac = 0)) \
         ORDER BY paid_at DESC, order_serial DESC LIMIT 1",
    )
    .bind(instance_serial)
    .bind(session_id)
    .bind(fulfillment_url)
    .bind(allow_refunded)
    .fetch_optional(db.pool())
    .await?
    .map(|row| {
        Ok(PaidInSession {
            order_id: row.try_get("order_id")?,
            fulfillment_url: row.try_get("fulfillment_url")?,
        })
    })
    .transpose()
}

pub(crate) async fn claim_order(
    db: &PgDb,
    currency: Currency,
    instance_serial: i64,
    order_id: &str,
    request: &ClaimRequestView,
) -> Result<ClaimOutcome, StoreError> {
    let mut tx = db.begin().await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE instance_serial = $1 AND order_id = $2 FOR UPDATE"
    ))
    .bind(instance_serial)
    .bind(order_id)
    .fetch_optional(tx.conn())
    .await?
    .map(|row| order_row(&row, currency))
    .transpose()?;
    let decision = match decide_claim(row.as_ref(), request)? {
        Ok(decision) => decision,
        Err(refusal) => {
            tx.rollback().await?;
            return Ok(ClaimOutcome::Refused(refusal));
        }
    };
    match decision {
        ClaimDecision::Replay {
            contract_terms,
            h_contract_terms,
        } => {
            tx.rollback().await?;
            Ok(ClaimOutcome::Claimed {
                contract_terms,
                h_contract_terms,
            })
        }
        ClaimDecision::Claim {
            contract_terms,
            h_contract_terms,
        } => {
            let serial = row
                .map(|r| r.serial)
                .ok_or_else(|| corrupt("claimed no row"))?;
            let changed = sqlx::query(
                "UPDATE orders SET nonce = $1, h_contract_terms = $2, contract_terms = $3, \
                 claimed_at = $4 WHERE order_serial = $5 AND nonce IS NULL",
            )
            .bind(request.nonce.as_bytes().as_slice())
            .bind(h_contract_terms.as_bytes().as_slice())
            .bind(contract_terms.to_string())
            .bind(micros(request.now))
            .bind(serial)
            .execute(tx.conn())
            .await?
            .rows_affected();
            if changed != 1 {
                return Err(corrupt("order claimed twice in one transaction"));
            }
            for (topic, key) in order_notifications(instance_serial, order_id, "") {
                tx.notify(topic, &key);
            }
            tx.commit().await?;
            Ok(ClaimOutcome::Claimed {
                contract_terms,
                h_contract_terms,
            })
        }
    }
}

pub(crate) async fn rebind_session(
    db: &PgDb,
    instance_serial: i64,
    order_id: &str,
    h_contract_terms: &HashCode,
    session_id: &str,
) -> Result<RebindOutcome, StoreError> {
    let mut tx = db.begin().await?;
    let found = sqlx::query(
        "SELECT order_serial, h_contract_terms, paid, \
         (refund_val > 0 OR refund_frac > 0) AS refunded \
         FROM orders WHERE instance_serial = $1 AND order_id = $2 FOR UPDATE",
    )
    .bind(instance_serial)
    .bind(order_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = found else {
        tx.rollback().await?;
        return Ok(RebindOutcome::NotFound);
    };
    let serial: i64 = row.try_get("order_serial")?;
    let h: Option<&[u8]> = row.try_get("h_contract_terms")?;
    let paid = flag(&row, "paid")?;
    let refunded: bool = row.try_get("refunded")?;
    if h != Some(h_contract_terms.as_bytes().as_slice()) {
        tx.rollback().await?;
        return Ok(RebindOutcome::HashMismatch);
    }
    if !paid {
        tx.rollback().await?;
        return Ok(RebindOutcome::Unpaid);
    }
    sqlx::query("UPDATE orders SET session_id = $1 WHERE order_serial = $2")
        .bind(session_id)
        .bind(serial)
        .execute(tx.conn())
        .await?;
    for (topic, key) in order_notifications(instance_serial, order_id, session_id) {
        tx.notify(topic, &key);
    }
    tx.commit().await?;
    Ok(RebindOutcome::Rebound { refunded })
}
