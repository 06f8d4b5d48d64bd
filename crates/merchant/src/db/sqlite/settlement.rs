//! Settlement on SQLite.

use cardcash_store::columns::sqlite_amount_opt;
use cardcash_store::rusqlite::{Connection, Row, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{Currency, ShortHashCode, Timestamp};

use super::super::settlement::{
    BankReport, DeleteTransfer, DepositToTrack, ExchangeView, ReportOutcome, SettledDeposit,
    TransferFilter, TransferRow, VERIFIED_SQL, Wired, attach_orders,
};
use super::super::{TOPIC_ORDER, cols, corrupt, fixed, micros, order_key, time_opt};
use super::{am, eddsa, execute, hash};

pub(crate) fn deposits_to_track(
    conn: &Connection,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<DepositToTrack>, StoreError> {
    query_all(
        conn,
        "SELECT d.deposit_serial, d.order_serial, o.instance_serial, o.order_id, \
         i.merchant_priv, i.merchant_pub, o.h_contract_terms, a.h_wire, d.coin_pub, \
         d.exchange_url, a.payto_uri \
         FROM deposits d JOIN orders o ON o.order_serial = d.order_serial \
         JOIN instances i ON i.instance_serial = o.instance_serial \
         JOIN instance_accounts a ON a.account_serial = o.account_serial \
         WHERE d.wtid IS NULL AND d.next_check <= ?1 AND o.paid = 1 \
         ORDER BY d.next_check, d.deposit_serial LIMIT ?2",
        params![micros(now), i64::from(limit)],
        |row| {
            let priv_bytes: Vec<u8> = row.get(4)?;
            Ok(DepositToTrack {
                deposit_serial: row.get(0)?,
                order_serial: row.get(1)?,
                instance_serial: row.get(2)?,
                order_id: row.get(3)?,
                merchant_priv: priv_bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("merchant private key length"))?,
                merchant_pub: eddsa(row, 5)?,
                h_contract_terms: hash(row, 6)?,
                h_wire: hash(row, 7)?,
                coin_pub: eddsa(row, 8)?,
                exchange_url: row.get(9)?,
                payto_uri: row.get(10)?,
            })
        },
    )
}

pub(crate) fn next_check(conn: &Connection) -> Result<Option<Timestamp>, StoreError> {
    // In next_check order along the `deposits_unsettled` index, stopping at the first deposit
    // of a paid order (deposits of an unpaid order wait for nothing).
    let next: Option<i64> = query_opt(
        conn,
        "SELECT d.next_check FROM deposits d JOIN orders o ON o.order_serial = d.order_serial \
         WHERE d.wtid IS NULL AND o.paid = 1 ORDER BY d.next_check LIMIT 1",
        [],
        |row| Ok(row.get(0)?),
    )?;
    time_opt(next)
}

pub(crate) fn postpone(
    tx: &mut SqliteTx<'_>,
    deposit_serial: i64,
    at: Timestamp,
) -> Result<(), StoreError> {
    execute(
        tx,
        "UPDATE deposits SET next_check = ?2 WHERE deposit_serial = ?1",
        params![deposit_serial, micros(at)],
    )?;
    Ok(())
}

pub(crate) fn settle(
    tx: &mut SqliteTx<'_>,
    d: &DepositToTrack,
    w: &Wired,
) -> Result<bool, StoreError> {
    let (wired_val, wired_frac) = cols(&w.coin_contribution);
    execute(
        tx,
        "UPDATE deposits SET wtid = ?2, execution_time = ?3, wired_val = ?4, wired_frac = ?5 \
         WHERE deposit_serial = ?1 AND wtid IS NULL",
        params![
            d.deposit_serial,
            w.wtid.as_bytes().as_slice(),
            micros(w.execution_time),
            wired_val,
            wired_frac
        ],
    )?;
    let (total_val, total_frac) = cols(&w.total);
    let (fee_val, fee_frac) = cols(&w.wire_fee);
    execute(
        tx,
        "INSERT INTO transfers (instance_serial, exchange_url, wtid, payto_uri, execution_time, \
         total_val, total_frac, wire_fee_val, wire_fee_frac) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (instance_serial, exchange_url, wtid) DO UPDATE SET \
         payto_uri = excluded.payto_uri, execution_time = excluded.execution_time, \
         total_val = excluded.total_val, total_frac = excluded.total_frac, \
         wire_fee_val = excluded.wire_fee_val, wire_fee_frac = excluded.wire_fee_frac \
         WHERE transfers.execution_time IS NULL",
        params![
            d.instance_serial,
            d.exchange_url,
            w.wtid.as_bytes().as_slice(),
            d.payto_uri,
            micros(w.execution_time),
            total_val,
            total_frac,
            fee_val,
            fee_frac
        ],
    )?;
    let wired = execute(
        tx,
        "UPDATE orders SET wired = 1 WHERE order_serial = ?1 AND wired = 0 AND NOT EXISTS \
         (SELECT 1 FROM deposits WHERE order_serial = ?1 AND wtid IS NULL)",
        params![d.order_serial],
    )? > 0;
    if wired {
        tx.notify(TOPIC_ORDER, &order_key(d.instance_serial, &d.order_id));
    }
    Ok(wired)
}

/// The columns [`transfer_row`] reads, over `transfers t`.
const TRANSFER_COLUMNS: &str = "t.transfer_serial, t.exchange_url, t.wtid, t.payto_uri, \
     t.execution_time, t.total_val, t.total_frac, t.wire_fee_val, t.wire_fee_frac, \
     t.credit_payto_uri, t.credit_val, t.credit_frac";

fn transfer_row(row: &Row<'_>, currency: Currency) -> Result<TransferRow, StoreError> {
    let wtid: Vec<u8> = row.get(2)?;
    let payto_uri: Option<String> = row.get(3)?;
    let execution_time: Option<i64> = row.get(4)?;
    let total = sqlite_amount_opt(row, 5, currency)?;
    let wire_fee = sqlite_amount_opt(row, 7, currency)?;
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
    let credit_payto: Option<String> = row.get(9)?;
    let report = match (credit_payto, sqlite_amount_opt(row, 10, currency)?) {
        (Some(payto_uri), Some(credit)) => Some(BankReport { payto_uri, credit }),
        (None, None) => None,
        _ => return Err(corrupt("a transfer's bank report is partly NULL")),
    };
    Ok(TransferRow {
        serial: row.get(0)?,
        exchange_url: row.get(1)?,
        wtid: fixed("wtid", &wtid, ShortHashCode::from_slice)?,
        exchange,
        report,
        orders: Vec::new(),
    })
}

pub(crate) fn transfers(
    conn: &Connection,
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
         WHERE t.instance_serial = ?1 AND t.transfer_serial {cmp} ?2 \
         AND (?3 IS NULL OR COALESCE(t.credit_payto_uri, t.payto_uri) = ?3) \
         AND (?4 IS NULL OR t.execution_time < ?4) \
         AND (?5 IS NULL OR t.execution_time > ?5) \
         AND (?6 IS NULL OR (t.credit_val IS NOT NULL) = ?6) \
         AND (?7 IS NULL OR (t.execution_time IS NOT NULL) = ?7) \
         AND (?8 IS NULL OR ({VERIFIED_SQL}) = ?8) \
         ORDER BY t.transfer_serial {dir} LIMIT ?9"
    );
    let mut transfers = query_all(
        conn,
        &sql,
        params![
            instance_serial,
            offset,
            f.payto_uri,
            f.before.map(micros),
            f.after.map(micros),
            f.confirmed.as_flag(),
            f.expected.as_flag(),
            f.verified.as_flag(),
            f.limit.saturating_abs(),
        ],
        |row| transfer_row(row, currency),
    )?;
    let (Some(low), Some(high)) = (
        transfers.iter().map(|t| t.serial).min(),
        transfers.iter().map(|t| t.serial).max(),
    ) else {
        return Ok(transfers);
    };
    let deposits = query_all(
        conn,
        "SELECT t.transfer_serial, o.order_id, d.amount_with_fee_val, d.amount_with_fee_frac, \
         d.deposit_fee_val, d.deposit_fee_frac, d.wired_val, d.wired_frac \
         FROM transfers t JOIN orders o ON o.instance_serial = t.instance_serial \
         JOIN deposits d ON d.order_serial = o.order_serial AND d.wtid = t.wtid \
         AND d.exchange_url = t.exchange_url \
         WHERE t.instance_serial = ?1 AND t.transfer_serial BETWEEN ?2 AND ?3 \
         ORDER BY o.order_serial, d.deposit_serial",
        params![instance_serial, low, high],
        |row| {
            Ok(SettledDeposit {
                transfer_serial: row.get(0)?,
                order_id: row.get(1)?,
                amount_with_fee: am(row, currency, 2)?,
                deposit_fee: am(row, currency, 4)?,
                wired: am(row, currency, 6)?,
            })
        },
    )?;
    attach_orders(&mut transfers, deposits)?;
    Ok(transfers)
}

pub(crate) fn report(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    instance_serial: i64,
    exchange_url: &str,
    wtid: &ShortHashCode,
    report: &BankReport,
) -> Result<ReportOutcome, StoreError> {
    // The writer runs alone: read, decide, apply.
    let existing = query_opt(
        tx,
        &format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.instance_serial = ?1 \
             AND t.exchange_url = ?2 AND t.wtid = ?3"
        ),
        params![instance_serial, exchange_url, wtid.as_bytes().as_slice()],
        |row| transfer_row(row, currency),
    )?;
    let (credit_val, credit_frac) = cols(&report.credit);
    match existing {
        Some(row) => {
            if let Some(previous) = row.report {
                if previous != *report {
                    return Ok(ReportOutcome::Conflicting { previous });
                }
            } else {
                execute(
                    tx,
                    "UPDATE transfers SET credit_payto_uri = ?2, credit_val = ?3, \
                     credit_frac = ?4 WHERE transfer_serial = ?1",
                    params![row.serial, report.payto_uri, credit_val, credit_frac],
                )?;
            }
            Ok(ReportOutcome::Recorded {
                serial: row.serial,
                exchange: row.exchange,
            })
        }
        None => {
            let serial: i64 = query_opt(
                tx,
                "INSERT INTO transfers (instance_serial, exchange_url, wtid, credit_payto_uri, \
                 credit_val, credit_frac) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 RETURNING transfer_serial",
                params![
                    instance_serial,
                    exchange_url,
                    wtid.as_bytes().as_slice(),
                    report.payto_uri,
                    credit_val,
                    credit_frac
                ],
                |row| Ok(row.get(0)?),
            )?
            .ok_or_else(|| corrupt("INSERT … RETURNING returned no row"))?;
            Ok(ReportOutcome::Recorded {
                serial,
                exchange: None,
            })
        }
    }
}

pub(crate) fn record_view(
    tx: &mut SqliteTx<'_>,
    transfer_serial: i64,
    v: &ExchangeView,
) -> Result<(), StoreError> {
    let (total_val, total_frac) = cols(&v.total);
    let (fee_val, fee_frac) = cols(&v.wire_fee);
    execute(
        tx,
        "UPDATE transfers SET payto_uri = ?2, execution_time = ?3, total_val = ?4, \
         total_frac = ?5, wire_fee_val = ?6, wire_fee_frac = ?7 \
         WHERE transfer_serial = ?1 AND execution_time IS NULL",
        params![
            transfer_serial,
            v.payto_uri,
            micros(v.execution_time),
            total_val,
            total_frac,
            fee_val,
            fee_frac
        ],
    )?;
    Ok(())
}

pub(crate) fn delete(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    transfer_serial: i64,
) -> Result<DeleteTransfer, StoreError> {
    let reconciled: Option<bool> = query_opt(
        tx,
        "SELECT EXISTS (SELECT 1 FROM orders o JOIN deposits d ON d.order_serial = o.order_serial \
         WHERE o.instance_serial = t.instance_serial AND d.wtid = t.wtid \
         AND d.exchange_url = t.exchange_url) \
         FROM transfers t WHERE t.transfer_serial = ?1 AND t.instance_serial = ?2",
        params![transfer_serial, instance_serial],
        |row| Ok(row.get(0)?),
    )?;
    Ok(match reconciled {
        None => DeleteTransfer::Unknown,
        Some(true) => DeleteTransfer::Reconciled,
        Some(false) => {
            execute(
                tx,
                "DELETE FROM transfers WHERE transfer_serial = ?1",
                params![transfer_serial],
            )?;
            DeleteTransfer::Deleted
        }
    })
}
