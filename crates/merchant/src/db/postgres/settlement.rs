//! Settlement on PostgreSQL.

use cardcash_store::columns::pg_amount;
use cardcash_store::{PgDb, StoreError};
use cardcash_util::{Currency, ShortHashCode, Timestamp};
use sqlx::Row;

use super::super::settlement::{DepositToTrack, SettledDeposit, TransferRow, Wired, attach_orders};
use super::super::{TOPIC_ORDER, cols, micros, order_key, time, time_opt};
use super::{bytes, eddsa, hash};

pub(crate) async fn deposits_to_track(
    db: &PgDb,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<DepositToTrack>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.deposit_serial, d.order_serial, o.instance_serial, o.order_id, \
         i.merchant_priv, i.merchant_pub, o.h_contract_terms, a.h_wire, d.coin_pub, \
         d.exchange_url, a.payto_uri \
         FROM deposits d JOIN orders o ON o.order_serial = d.order_serial \
         JOIN instances i ON i.instance_serial = o.instance_serial \
         JOIN instance_accounts a ON a.account_serial = o.account_serial \
         WHERE d.wtid IS NULL AND d.next_check <= $1 AND o.paid = 1 \
         ORDER BY d.next_check, d.deposit_serial LIMIT $2",
    )
    .bind(micros(now))
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DepositToTrack {
                deposit_serial: row.try_get("deposit_serial")?,
                order_serial: row.try_get("order_serial")?,
                instance_serial: row.try_get("instance_serial")?,
                order_id: row.try_get("order_id")?,
                merchant_priv: bytes(row, "merchant_priv", |b| b.try_into().ok())?,
                merchant_pub: eddsa(row, "merchant_pub")?,
                h_contract_terms: hash(row, "h_contract_terms")?,
                h_wire: hash(row, "h_wire")?,
                coin_pub: eddsa(row, "coin_pub")?,
                exchange_url: row.try_get("exchange_url")?,
                payto_uri: row.try_get("payto_uri")?,
            })
        })
        .collect()
}

pub(crate) async fn next_check(db: &PgDb) -> Result<Option<Timestamp>, StoreError> {
    // In next_check order along the `deposits_unsettled` index, stopping at the first deposit
    // of a paid order (deposits of an unpaid order wait for nothing).
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT d.next_check FROM deposits d JOIN orders o ON o.order_serial = d.order_serial \
         WHERE d.wtid IS NULL AND o.paid = 1 ORDER BY d.next_check LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    time_opt(next)
}

pub(crate) async fn postpone(
    db: &PgDb,
    deposit_serial: i64,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE deposits SET next_check = $2 WHERE deposit_serial = $1")
        .bind(deposit_serial)
        .bind(micros(at))
        .execute(db.pool())
        .await?;
    Ok(())
}

pub(crate) async fn settle(db: &PgDb, d: &DepositToTrack, w: &Wired) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    // The order first: two deposits of one order settled at once see each other's wtid.
    sqlx::query("SELECT wired FROM orders WHERE order_serial = $1 FOR UPDATE")
        .bind(d.order_serial)
        .fetch_optional(tx.conn())
        .await?;
    let (wired_val, wired_frac) = cols(&w.coin_contribution);
    sqlx::query(
        "UPDATE deposits SET wtid = $2, execution_time = $3, wired_val = $4, wired_frac = $5 \
         WHERE deposit_serial = $1 AND wtid IS NULL",
    )
    .bind(d.deposit_serial)
    .bind(w.wtid.as_bytes().as_slice())
    .bind(micros(w.execution_time))
    .bind(wired_val)
    .bind(wired_frac)
    .execute(tx.conn())
    .await?;
    let (total_val, total_frac) = cols(&w.total);
    let (fee_val, fee_frac) = cols(&w.wire_fee);
    sqlx::query(
        "INSERT INTO transfers (instance_serial, exchange_url, wtid, payto_uri, execution_time, \
         total_val, total_frac, wire_fee_val, wire_fee_frac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (instance_serial, exchange_url, wtid) DO NOTHING",
    )
    .bind(d.instance_serial)
    .bind(&d.exchange_url)
    .bind(w.wtid.as_bytes().as_slice())
    .bind(&d.payto_uri)
    .bind(micros(w.execution_time))
    .bind(total_val)
    .bind(total_frac)
    .bind(fee_val)
    .bind(fee_frac)
    .execute(tx.conn())
    .await?;
    let wired = sqlx::query(
        "UPDATE orders SET wired = 1 WHERE order_serial = $1 AND wired = 0 AND NOT EXISTS \
         (SELECT 1 FROM deposits WHERE order_serial = $1 AND wtid IS NULL)",
    )
    .bind(d.order_serial)
    .execute(tx.conn())
    .await?
    .rows_affected()
        > 0;
    if wired {
        tx.notify(TOPIC_ORDER, &order_key(d.instance_serial, &d.order_id));
    }
    tx.commit().await?;
    Ok(wired)
}

pub(crate) async fn transfers(
    db: &PgDb,
    currency: Currency,
    instance_serial: i64,
) -> Result<Vec<TransferRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT transfer_serial, exchange_url, wtid, payto_uri, execution_time, total_val, \
         total_frac, wire_fee_val, wire_fee_frac FROM transfers WHERE instance_serial = $1 \
         ORDER BY execution_time DESC, transfer_serial DESC LIMIT 1000",
    )
    .bind(instance_serial)
    .fetch_all(db.pool())
    .await?;
    let mut transfers = rows
        .iter()
        .map(|row| {
            Ok(TransferRow {
                serial: row.try_get("transfer_serial")?,
                exchange_url: row.try_get("exchange_url")?,
                wtid: bytes(row, "wtid", ShortHashCode::from_slice)?,
                payto_uri: row.try_get("payto_uri")?,
                execution_time: time(row.try_get("execution_time")?)?,
                total: pg_amount(row, "total", currency)?,
                wire_fee: pg_amount(row, "wire_fee", currency)?,
                orders: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let rows = sqlx::query(
        "SELECT t.transfer_serial, o.order_id, d.amount_with_fee_val, d.amount_with_fee_frac, \
         d.deposit_fee_val, d.deposit_fee_frac, d.wired_val, d.wired_frac \
         FROM transfers t JOIN orders o ON o.instance_serial = t.instance_serial \
         JOIN deposits d ON d.order_serial = o.order_serial AND d.wtid = t.wtid \
         AND d.exchange_url = t.exchange_url \
         WHERE t.instance_serial = $1 ORDER BY o.order_serial, d.deposit_serial",
    )
    .bind(instance_serial)
    .fetch_all(db.pool())
    .await?;
    let deposits = rows
        .iter()
        .map(|row| {
            Ok(SettledDeposit {
                transfer_serial: row.try_get("transfer_serial")?,
                order_id: row.try_get("order_id")?,
                amount_with_fee: pg_amount(row, "amount_with_fee", currency)?,
                deposit_fee: pg_amount(row, "deposit_fee", currency)?,
                wired: pg_amount(row, "wired", currency)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    attach_orders(&mut transfers, deposits)?;
    Ok(transfers)
}
