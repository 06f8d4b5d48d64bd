//! Settlement on SQLite.

use cardcash_store::rusqlite::{Connection, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{Currency, ShortHashCode, Timestamp};

use super::super::settlement::{DepositToTrack, SettledDeposit, TransferRow, Wired, attach_orders};
use super::super::{TOPIC_ORDER, cols, corrupt, fixed, micros, order_key, time_opt};
use super::{am, eddsa, execute, hash, ts};

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
         ON CONFLICT (instance_serial, exchange_url, wtid) DO NOTHING",
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

pub(crate) fn transfers(
    conn: &Connection,
    currency: Currency,
    instance_serial: i64,
) -> Result<Vec<TransferRow>, StoreError> {
    let mut transfers = query_all(
        conn,
        "SELECT transfer_serial, exchange_url, wtid, payto_uri, execution_time, total_val, \
         total_frac, wire_fee_val, wire_fee_frac FROM transfers WHERE instance_serial = ?1 \
         ORDER BY execution_time DESC, transfer_serial DESC LIMIT 1000",
        params![instance_serial],
        |row| {
            let wtid: Vec<u8> = row.get(2)?;
            Ok(TransferRow {
                serial: row.get(0)?,
                exchange_url: row.get(1)?,
                wtid: fixed("wtid", &wtid, ShortHashCode::from_slice)?,
                payto_uri: row.get(3)?,
                execution_time: ts(row, 4)?,
                total: am(row, currency, 5)?,
                wire_fee: am(row, currency, 7)?,
                orders: Vec::new(),
            })
        },
    )?;
    let deposits = query_all(
        conn,
        "SELECT t.transfer_serial, o.order_id, d.amount_with_fee_val, d.amount_with_fee_frac, \
         d.deposit_fee_val, d.deposit_fee_frac, d.wired_val, d.wired_frac \
         FROM transfers t JOIN orders o ON o.instance_serial = t.instance_serial \
         JOIN deposits d ON d.order_serial = o.order_serial AND d.wtid = t.wtid \
         AND d.exchange_url = t.exchange_url \
         WHERE t.instance_serial = ?1 ORDER BY o.order_serial, d.deposit_serial",
        params![instance_serial],
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
