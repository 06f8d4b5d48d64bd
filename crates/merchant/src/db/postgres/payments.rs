//! Payments, aborts and refunds on PostgreSQL. A write that decides on the order locks its row
//! first (`SELECT … FOR UPDATE`), so a payment and a refund grant of one order, or two grants,
//! are serialised.

use cardcash_store::columns::pg_amount;
use cardcash_store::{PgDb, StoreError};
use cardcash_util::{
    Amount, Currency, EddsaPublicKey, EddsaSignature, HashCode, ShortHashCode, Timestamp, WireSalt,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::super::payments::{
    DepositRow, GrantRefund, NewDeposit, PaidMark, PayOrder, RecordPayment, RefundOutcome,
    RefundRow, allocate,
};
use super::super::{TOPIC_ORDER, cols, corrupt, json, micros, order_key, time, time_opt};
use super::{bytes, bytes_opt, eddsa, flag, hash, sig};

fn order_row(row: &PgRow, currency: Currency) -> Result<PayOrder, StoreError> {
    Ok(PayOrder {
        serial: row.try_get("order_serial")?,
        instance_serial: row.try_get("instance_serial")?,
        order_id: row.try_get("order_id")?,
        contract_terms: json(row.try_get("contract_terms")?)?,
        h_contract_terms: bytes_opt(row, "h_contract_terms", HashCode::from_slice)?,
        paid: flag(row, "paid")?,
        session_id: row.try_get("session_id")?,
        pay_deadline: time(row.try_get("pay_deadline")?)?,
        refund_deadline: time(row.try_get("refund_deadline")?)?,
        wire_transfer_deadline: time(row.try_get("wire_transfer_deadline")?)?,
        amount: pg_amount(row, "amount", currency)?,
        refund_total: pg_amount(row, "refund", currency)?,
        wired: flag(row, "wired")?,
        h_wire: hash(row, "h_wire")?,
        salt: bytes(row, "salt", WireSalt::from_slice)?,
        payto_uri: row.try_get("payto_uri")?,
    })
}

pub(crate) async fn pay_order(
    db: &PgDb,
    currency: Currency,
    instance_serial: i64,
    order_id: &str,
) -> Result<Option<PayOrder>, StoreError> {
    sqlx::query(
        "SELECT o.order_serial, o.instance_serial, o.order_id, o.contract_terms, \
         o.h_contract_terms, o.paid, o.session_id, o.pay_deadline, o.refund_deadline, \
         o.wire_transfer_deadline, o.amount_val, o.amount_frac, o.refund_val, o.refund_frac, \
         o.wired, a.h_wire, a.salt, a.payto_uri FROM orders o JOIN instance_accounts a \
         ON a.account_serial = o.account_serial \
         WHERE o.instance_serial = $1 AND o.order_id = $2",
    )
    .bind(instance_serial)
    .bind(order_id)
    .fetch_optional(db.pool())
    .await?
    .map(|row| order_row(&row, currency))
    .transpose()
}

/// The columns of a deposit row (a macro: sqlx takes only literal SQL).
macro_rules! deposit_columns {
    () => {
        "deposit_serial, coin_pub, coin_sig, exchange_url, h_denom, \
         amount_with_fee_val, amount_with_fee_frac, deposit_fee_val, deposit_fee_frac, \
         refund_fee_val, refund_fee_frac, exchange_pub, exchange_sig, exchange_timestamp, wtid, \
         execution_time"
    };
}

pub(crate) fn deposit_row(row: &PgRow, currency: Currency) -> Result<DepositRow, StoreError> {
    Ok(DepositRow {
        serial: row.try_get("deposit_serial")?,
        deposit: NewDeposit {
            coin_pub: eddsa(row, "coin_pub")?,
            coin_sig: sig(row, "coin_sig")?,
            exchange_url: row.try_get("exchange_url")?,
            h_denom: hash(row, "h_denom")?,
            amount_with_fee: pg_amount(row, "amount_with_fee", currency)?,
            deposit_fee: pg_amount(row, "deposit_fee", currency)?,
            refund_fee: pg_amount(row, "refund_fee", currency)?,
            exchange_pub: eddsa(row, "exchange_pub")?,
            exchange_sig: sig(row, "exchange_sig")?,
            exchange_timestamp: time(row.try_get("exchange_timestamp")?)?,
        },
        wtid: bytes_opt(row, "wtid", ShortHashCode::from_slice)?,
        execution_time: time_opt(row.try_get("execution_time")?)?,
    })
}

pub(crate) async fn deposits(
    db: &PgDb,
    currency: Currency,
    order_serial: i64,
) -> Result<Vec<DepositRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        deposit_columns!(),
        " FROM deposits WHERE order_serial = $1 ORDER BY deposit_serial"
    ))
    .bind(order_serial)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| deposit_row(row, currency))
    .collect()
}

pub(crate) async fn record_payment(
    db: &PgDb,
    order_serial: i64,
    deposits: &[NewDeposit],
    paid: Option<&PaidMark>,
) -> Result<RecordPayment, StoreError> {
    let mut tx = db.begin().await?;
    // Lock the order first: a payment and a refund grant of it are serialised.
    let state: Option<(i32, i64)> =
        sqlx::query_as("SELECT paid, pay_deadline FROM orders WHERE order_serial = $1 FOR UPDATE")
            .bind(order_serial)
            .fetch_optional(tx.conn())
            .await?;
    // Whether every coin was stored for the order before, with the same signature: the same
    // payment again (two identical requests that raced past the paid check).
    let mut replay = true;
    for d in deposits {
        let same: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM deposits WHERE order_serial = $1 AND coin_pub = $2 AND coin_sig = $3",
        )
        .bind(order_serial)
        .bind(d.coin_pub.as_bytes().as_slice())
        .bind(d.coin_sig.as_bytes().as_slice())
        .fetch_optional(tx.conn())
        .await?;
        replay &= same.is_some();
    }
    for d in deposits {
        let (awf_val, awf_frac) = cols(&d.amount_with_fee);
        let (fee_val, fee_frac) = cols(&d.deposit_fee);
        let (rf_val, rf_frac) = cols(&d.refund_fee);
        sqlx::query(
            "INSERT INTO deposits (order_serial, coin_pub, coin_sig, exchange_url, h_denom, \
             amount_with_fee_val, amount_with_fee_frac, deposit_fee_val, deposit_fee_frac, \
             refund_fee_val, refund_fee_frac, exchange_pub, exchange_sig, exchange_timestamp, \
             next_check) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             (SELECT wire_transfer_deadline FROM orders WHERE order_serial = $1)) \
             ON CONFLICT (order_serial, coin_pub) DO NOTHING",
        )
        .bind(order_serial)
        .bind(d.coin_pub.as_bytes().as_slice())
        .bind(d.coin_sig.as_bytes().as_slice())
        .bind(&d.exchange_url)
        .bind(d.h_denom.as_bytes().as_slice())
        .bind(awf_val)
        .bind(awf_frac)
        .bind(fee_val)
        .bind(fee_frac)
        .bind(rf_val)
        .bind(rf_frac)
        .bind(d.exchange_pub.as_bytes().as_slice())
        .bind(d.exchange_sig.as_bytes().as_slice())
        .bind(micros(d.exchange_timestamp))
        .execute(tx.conn())
        .await?;
    }
    let Some(mark) = paid else {
        tx.commit().await?;
        return Ok(RecordPayment::AlreadyPaid);
    };
    match state {
        Some((0, deadline)) if deadline >= micros(mark.paid_at) => {}
        Some((0, _)) => {
            tx.commit().await?;
            return Ok(RecordPayment::Expired);
        }
        _ => {
            tx.commit().await?;
            return Ok(if replay {
                RecordPayment::Replayed
            } else {
                RecordPayment::AlreadyPaid
            });
        }
    }
    sqlx::query(
        "UPDATE orders SET paid = 1, paid_at = $2, session_id = $3 WHERE order_serial = $1",
    )
    .bind(order_serial)
    .bind(micros(mark.paid_at))
    .bind(&mark.session_id)
    .execute(tx.conn())
    .await?;
    // The stock the order held is sold now (exactly once: the locks go with it).
    super::inventory::sell_order_locks(tx.conn(), order_serial).await?;
    tx.notify(
        TOPIC_ORDER,
        &order_key(mark.instance_serial, &mark.order_id),
    );
    if !mark.session_id.is_empty() {
        tx.notify(
            super::super::status::TOPIC_SESSION,
            &super::super::status::session_key(mark.instance_serial, &mark.session_id),
        );
    }
    tx.commit().await?;
    Ok(RecordPayment::Paid)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one grant's inputs, passed through"
)]
pub(crate) async fn grant_refund(
    db: &PgDb,
    currency: Currency,
    order_serial: i64,
    instance_serial: i64,
    order_id: &str,
    price: Amount,
    target: Amount,
    reason: &str,
    now: Timestamp,
) -> Result<GrantRefund, StoreError> {
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "SELECT paid, refund_val, refund_frac FROM orders WHERE order_serial = $1 FOR UPDATE",
    )
    .bind(order_serial)
    .fetch_one(tx.conn())
    .await?;
    if !flag(&row, "paid")? {
        tx.rollback().await?;
        return Ok(GrantRefund::Unpaid);
    }
    let current = pg_amount(&row, "refund", currency)?;
    if target.to_units() <= current.to_units() {
        tx.rollback().await?;
        return Ok(GrantRefund::Unchanged { total: current });
    }
    if target.to_units() > price.to_units() {
        tx.rollback().await?;
        return Ok(GrantRefund::ExceedsPayment { paid: price });
    }
    let rows = sqlx::query(
        "SELECT d.coin_pub, d.amount_with_fee_val, d.amount_with_fee_frac, \
         COALESCE((SELECT SUM(r.amount_val) FROM refunds r WHERE r.order_serial = d.order_serial \
         AND r.coin_pub = d.coin_pub), 0)::BIGINT AS refunded_val, \
         COALESCE((SELECT SUM(r.amount_frac) FROM refunds r WHERE r.order_serial = d.order_serial \
         AND r.coin_pub = d.coin_pub), 0)::BIGINT AS refunded_frac \
         FROM deposits d WHERE d.order_serial = $1 ORDER BY d.deposit_serial",
    )
    .bind(order_serial)
    .fetch_all(tx.conn())
    .await?;
    let mut coins: Vec<(Vec<u8>, u128)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let deposited = pg_amount(row, "amount_with_fee", currency)?.to_units();
        let val: i64 = row.try_get("refunded_val")?;
        let frac: i64 = row.try_get("refunded_frac")?;
        let refunded = u128::try_from(val).map_err(|_| corrupt("refund sum"))?
            * u128::from(cardcash_util::amount::FRAC_BASE)
            + u128::try_from(frac).map_err(|_| corrupt("refund sum"))?;
        coins.push((
            row.try_get::<Vec<u8>, _>("coin_pub")?,
            deposited.saturating_sub(refunded),
        ));
    }
    let increase = target.to_units() - current.to_units();
    let remaining: Vec<u128> = coins.iter().map(|c| c.1).collect();
    let Some(parts) = allocate(increase, &remaining) else {
        tx.rollback().await?;
        return Ok(GrantRefund::ExceedsPayment { paid: price });
    };
    let rtid: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(rtransaction_id), 0) + 1 FROM refunds WHERE order_serial = $1",
    )
    .bind(order_serial)
    .fetch_one(tx.conn())
    .await?;
    for ((coin, _), units) in coins.iter().zip(parts) {
        if units == 0 {
            continue;
        }
        let a = Amount::from_units(&currency, units).map_err(|e| corrupt(e.to_string()))?;
        let (val, frac) = cols(&a);
        sqlx::query(
            "INSERT INTO refunds (order_serial, rtransaction_id, coin_pub, amount_val, \
             amount_frac, reason, granted_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(order_serial)
        .bind(rtid)
        .bind(coin.as_slice())
        .bind(val)
        .bind(frac)
        .bind(reason)
        .bind(micros(now))
        .execute(tx.conn())
        .await?;
    }
    let (val, frac) = cols(&target);
    sqlx::query("UPDATE orders SET refund_val = $2, refund_frac = $3 WHERE order_serial = $1")
        .bind(order_serial)
        .bind(val)
        .bind(frac)
        .execute(tx.conn())
        .await?;
    tx.notify(TOPIC_ORDER, &order_key(instance_serial, order_id));
    tx.commit().await?;
    Ok(GrantRefund::Granted { total: target })
}

pub(crate) async fn refunds(
    db: &PgDb,
    currency: Currency,
    order_serial: i64,
) -> Result<Vec<RefundRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT r.refund_serial, r.rtransaction_id, r.coin_pub, d.exchange_url, r.amount_val, \
         r.amount_frac, r.reason, r.granted_at, r.exchange_pub, r.exchange_sig, \
         r.exchange_status, r.exchange_reply, r.obtained \
         FROM refunds r JOIN deposits d ON d.order_serial = r.order_serial AND d.coin_pub = r.coin_pub \
         WHERE r.order_serial = $1 ORDER BY r.rtransaction_id, r.refund_serial",
    )
    .bind(order_serial)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let exchange_pub = bytes_opt(row, "exchange_pub", EddsaPublicKey::from_slice)?;
            let exchange_sig = bytes_opt(row, "exchange_sig", EddsaSignature::from_slice)?;
            let status: Option<i32> = row.try_get("exchange_status")?;
            let reply: Option<String> = row.try_get("exchange_reply")?;
            let outcome = match (exchange_pub, exchange_sig, status) {
                (Some(exchange_pub), Some(exchange_sig), _) => RefundOutcome::Confirmed {
                    exchange_pub,
                    exchange_sig,
                },
                (_, _, Some(status)) => RefundOutcome::Failed {
                    status: u16::try_from(status).map_err(|_| corrupt("exchange status"))?,
                    reply: reply.as_deref().map(json).transpose()?,
                },
                _ => RefundOutcome::Pending,
            };
            let rtid: i64 = row.try_get("rtransaction_id")?;
            Ok(RefundRow {
                serial: row.try_get("refund_serial")?,
                rtransaction_id: u64::try_from(rtid).map_err(|_| corrupt("rtransaction_id"))?,
                coin_pub: eddsa(row, "coin_pub")?,
                exchange_url: row.try_get("exchange_url")?,
                amount: pg_amount(row, "amount", currency)?,
                reason: row.try_get("reason")?,
                granted_at: time(row.try_get("granted_at")?)?,
                outcome,
                obtained: flag(row, "obtained")?,
            })
        })
        .collect()
}

pub(crate) async fn store_refund_outcomes(
    db: &PgDb,
    order_serial: i64,
    key: &str,
    outcomes: &[(i64, RefundOutcome)],
    obtained: bool,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    for (serial, outcome) in outcomes {
        match outcome {
            RefundOutcome::Pending => {}
            RefundOutcome::Confirmed {
                exchange_pub,
                exchange_sig,
            } => {
                sqlx::query(
                    "UPDATE refunds SET exchange_pub = $2, exchange_sig = $3, exchange_status = 200 \
                     WHERE refund_serial = $1 AND exchange_sig IS NULL",
                )
                .bind(serial)
                .bind(exchange_pub.as_bytes().as_slice())
                .bind(exchange_sig.as_bytes().as_slice())
                .execute(tx.conn())
                .await?;
            }
            RefundOutcome::Failed { status, reply } => {
                sqlx::query(
                    "UPDATE refunds SET exchange_status = $2, exchange_reply = $3 \
                     WHERE refund_serial = $1 AND exchange_sig IS NULL AND exchange_status IS NULL",
                )
                .bind(serial)
                .bind(i32::from(*status))
                .bind(reply.as_ref().map(|r| r.to_string()))
                .execute(tx.conn())
                .await?;
            }
        }
    }
    if obtained {
        sqlx::query(
            "UPDATE refunds SET obtained = 1 WHERE order_serial = $1 AND obtained = 0 \
             AND exchange_status IS NOT NULL",
        )
        .bind(order_serial)
        .execute(tx.conn())
        .await?;
    }
    tx.notify(TOPIC_ORDER, key);
    tx.commit().await?;
    Ok(())
}
