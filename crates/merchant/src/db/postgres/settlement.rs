//! Settlement on PostgreSQL.

use cardcash_store::columns::{pg_amount, pg_amount_opt};
use cardcash_store::{PgDb, StoreError};
use cardcash_util::{Currency, ShortHashCode, Timestamp};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::super::settlement::{
    BankReport, DeleteTransfer, DepositToTrack, ExchangeView, ReportOutcome, SettledDeposit,
    TransferFilter, TransferRow, VERIFIED_SQL, Wired, attach_orders,
};
use super::super::{TOPIC_ORDER, cols, corrupt, micros, order_key, time_opt};
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
         ON CONFLICT (instance_serial, exchange_url, wtid) DO UPDATE SET \
         payto_uri = excluded.payto_uri, execution_time = excluded.execution_time, \
         total_val = excluded.total_val, total_frac = excluded.total_frac, \
         wire_fee_val = excluded.wire_fee_val, wire_fee_frac = excluded.wire_fee_frac \
         WHERE transfers.execution_time IS NULL",
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

/// The columns [`transfer_row`] reads, over `transfers t`.
const TRANSFER_COLUMNS: &str = "t.transfer_serial, t.exchange_url, t.wtid, t.payto_uri, \
     t.execution_time, t.total_val, t.total_frac, t.wire_fee_val, t.wire_fee_frac, \
     t.credit_payto_uri, t.credit_val, t.credit_frac";

fn transfer_row(row: &PgRow, currency: Currency) -> Result<TransferRow, StoreError> {
    let payto_uri: Option<String> = row.try_get("payto_uri")?;
    let execution_time: Option<i64> = row.try_get("execution_time")?;
    let total = pg_amount_opt(row, "total", currency)?;
    let wire_fee = pg_amount_opt(row, "wire_fee", currency)?;
    let exchange = match (payto_uri, time_opt(execution_time)?, total, wire_fee) {
        (Some(payto_uri), Some(execution_time), Some(total), Some(wire_fee)) => {
            Some(ExchangeView {
                payto_uri,
                execution_time,
                total,
                wire_fee,
            })
        }
        (None, None, None, None) => None,
        _ => return Err(corrupt("a transfer's exchange statement is partly NULL")),
    };
    let credit_payto: Option<String> = row.try_get("credit_payto_uri")?;
    let report = match (credit_payto, pg_amount_opt(row, "credit", currency)?) {
        (Some(payto_uri), Some(credit)) => Some(BankReport { payto_uri, credit }),
        (None, None) => None,
        _ => return Err(corrupt("a transfer's bank report is partly NULL")),
    };
    Ok(TransferRow {
        serial: row.try_get("transfer_serial")?,
        exchange_url: row.try_get("exchange_url")?,
        wtid: bytes(row, "wtid", ShortHashCode::from_slice)?,
        exchange,
        report,
        orders: Vec::new(),
    })
}

pub(crate) async fn transfers(
    db: &PgDb,
    currency: Currency,
    instance_serial: i64,
    f: &TransferFilter,
) -> Result<Vec<TransferRow>, StoreError> {
    let (cmp, dir, offset) = if f.limit < 0 {
        ("<", "DESC", f.offset.unwrap_or(i64::MAX))
    } else {
        (">", "ASC", f.offset.unwrap_or(0))
    };
    let sql = format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers t \
         WHERE t.instance_serial = $1 AND t.transfer_serial {cmp} $2 \
         AND ($3::TEXT IS NULL OR COALESCE(t.credit_payto_uri, t.payto_uri) = $3) \
         AND ($4::BIGINT IS NULL OR t.execution_time < $4) \
         AND ($5::BIGINT IS NULL OR t.execution_time > $5) \
         AND ($6::INTEGER IS NULL OR (CASE WHEN t.credit_val IS NULL THEN 0 ELSE 1 END) = $6) \
         AND ($7::INTEGER IS NULL \
              OR (CASE WHEN t.execution_time IS NULL THEN 0 ELSE 1 END) = $7) \
         AND ($8::INTEGER IS NULL OR ({VERIFIED_SQL}) = $8) \
         ORDER BY t.transfer_serial {dir} LIMIT $9"
    );
    // Assembled only from constants (the page direction, the shared column list).
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(instance_serial)
        .bind(offset)
        .bind(&f.payto_uri)
        .bind(f.before.map(micros))
        .bind(f.after.map(micros))
        .bind(f.confirmed.as_flag())
        .bind(f.expected.as_flag())
        .bind(f.verified.as_flag())
        .bind(f.limit.saturating_abs())
        .fetch_all(db.pool())
        .await?;
    let mut transfers = rows
        .iter()
        .map(|row| transfer_row(row, currency))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let (Some(low), Some(high)) = (
        transfers.iter().map(|t| t.serial).min(),
        transfers.iter().map(|t| t.serial).max(),
    ) else {
        return Ok(transfers);
    };
    let rows = sqlx::query(
        "SELECT t.transfer_serial, o.order_id, d.amount_with_fee_val, d.amount_with_fee_frac, \
         d.deposit_fee_val, d.deposit_fee_frac, d.wired_val, d.wired_frac \
         FROM transfers t JOIN orders o ON o.instance_serial = t.instance_serial \
         JOIN deposits d ON d.order_serial = o.order_serial AND d.wtid = t.wtid \
         AND d.exchange_url = t.exchange_url \
         WHERE t.instance_serial = $1 AND t.transfer_serial BETWEEN $2 AND $3 \
         ORDER BY o.order_serial, d.deposit_serial",
    )
    .bind(instance_serial)
    .bind(low)
    .bind(high)
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

pub(crate) async fn report(
    db: &PgDb,
    currency: Currency,
    instance_serial: i64,
    exchange_url: &str,
    wtid: &ShortHashCode,
    report: &BankReport,
) -> Result<ReportOutcome, StoreError> {
    let (credit_val, credit_frac) = cols(&report.credit);
    let mut tx = db.begin().await?;
    // A new transfer is inserted with the report; a known one is locked, then decided on.
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO transfers (instance_serial, exchange_url, wtid, credit_payto_uri, \
         credit_val, credit_frac) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (instance_serial, exchange_url, wtid) DO NOTHING RETURNING transfer_serial",
    )
    .bind(instance_serial)
    .bind(exchange_url)
    .bind(wtid.as_bytes().as_slice())
    .bind(&report.payto_uri)
    .bind(credit_val)
    .bind(credit_frac)
    .fetch_optional(tx.conn())
    .await?;
    if let Some(serial) = inserted {
        tx.commit().await?;
        return Ok(ReportOutcome::Recorded {
            serial,
            exchange: None,
        });
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.instance_serial = $1 \
         AND t.exchange_url = $2 AND t.wtid = $3 FOR UPDATE"
    )))
    .bind(instance_serial)
    .bind(exchange_url)
    .bind(wtid.as_bytes().as_slice())
    .fetch_one(tx.conn())
    .await?;
    let row = transfer_row(&row, currency)?;
    if let Some(previous) = row.report {
        if previous != *report {
            return Ok(ReportOutcome::Conflicting { previous });
        }
    } else {
        sqlx::query(
            "UPDATE transfers SET credit_payto_uri = $2, credit_val = $3, credit_frac = $4 \
             WHERE transfer_serial = $1",
        )
        .bind(row.serial)
        .bind(&report.payto_uri)
        .bind(credit_val)
        .bind(credit_frac)
        .execute(tx.conn())
        .await?;
    }
    tx.commit().await?;
    Ok(ReportOutcome::Recorded {
        serial: row.serial,
        exchange: row.exchange,
    })
}

pub(crate) async fn record_view(
    db: &PgDb,
    transfer_serial: i64,
    v: &ExchangeView,
) -> Result<(), StoreError> {
    let (total_val, total_frac) = cols(&v.total);
    let (fee_val, fee_frac) = cols(&v.wire_fee);
    sqlx::query(
        "UPDATE transfers SET payto_uri = $2, execution_time = $3, total_val = $4, \
         total_frac = $5, wire_fee_val = $6, wire_fee_frac = $7 \
         WHERE transfer_serial = $1 AND execution_time IS NULL",
    )
    .bind(transfer_serial)
    .bind(&v.payto_uri)
    .bind(micros(v.execution_time))
    .bind(total_val)
    .bind(total_frac)
    .bind(fee_val)
    .bind(fee_frac)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub(crate) async fn delete(
    db: &PgDb,
    instance_serial: i64,
    transfer_serial: i64,
) -> Result<DeleteTransfer, StoreError> {
    // One statement: deletes the transfer only when no deposit of the instance's orders names
    // it; the second part tells an unknown transfer from a reconciled one.
    let row = sqlx::query(
        "WITH t AS (SELECT transfer_serial, instance_serial, exchange_url, wtid FROM transfers \
         WHERE transfer_serial = $1 AND instance_serial = $2), \
         reconciled AS (SELECT EXISTS (SELECT 1 FROM t JOIN orders o \
         ON o.instance_serial = t.instance_serial JOIN deposits d \
         ON d.order_serial = o.order_serial AND d.wtid = t.wtid \
         AND d.exchange_url = t.exchange_url) AS r), \
         gone AS (DELETE FROM transfers WHERE transfer_serial IN (SELECT transfer_serial FROM t) \
         AND NOT (SELECT r FROM reconciled) RETURNING 1) \
         SELECT (SELECT count(*) FROM t) AS known, (SELECT r FROM reconciled) AS reconciled",
    )
    .bind(transfer_serial)
    .bind(instance_serial)
    .fetch_one(db.pool())
    .await?;
    let known: i64 = row.try_get("known")?;
    let reconciled: bool = row.try_get("reconciled")?;
    Ok(match (known, reconciled) {
        (0, _) => DeleteTransfer::Unknown,
        (_, true) => DeleteTransfer::Reconciled,
        _ => DeleteTransfer::Deleted,
    })
}
