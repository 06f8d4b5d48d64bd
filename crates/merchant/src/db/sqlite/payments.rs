//! Payments, aborts and refunds on SQLite.

use cardcash_store::rusqlite::{Connection, Row, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{Amount, Currency, ShortHashCode, Timestamp, WireSalt};

use super::super::payments::{
    DepositRow, GrantRefund, NewDeposit, PaidMark, PayOrder, RecordPayment, RefundOutcome,
    RefundRow, allocate,
};
use super::super::{TOPIC_ORDER, cols, corrupt, fixed, json, micros, order_key, time_opt};
use super::{am, eddsa, execute, flag, hash, sig, ts};

const ORDER_COLUMNS: &str = "o.order_serial, o.instance_serial, o.order_id, o.contract_terms, \
     o.h_contract_terms, o.paid, o.session_id, o.pay_deadline, o.refund_deadline, \
     o.wire_transfer_deadline, o.amount_val, o.amount_frac, o.refund_val, o.refund_frac, \
     o.wired, a.h_wire, a.salt, a.payto_uri";

fn order_row(row: &Row<'_>, currency: Currency) -> Result<PayOrder, StoreError> {
    let h: Option<Vec<u8>> = row.get(4)?;
    let salt: Vec<u8> = row.get(16)?;
    Ok(PayOrder {
        serial: row.get(0)?,
        instance_serial: row.get(1)?,
        order_id: row.get(2)?,
        contract_terms: json(&row.get::<_, String>(3)?)?,
        h_contract_terms: h
            .map(|b| fixed("h_contract_terms", &b, cardcash_util::HashCode::from_slice))
            .transpose()?,
        paid: flag(row, 5)?,
        session_id: row.get(6)?,
        pay_deadline: ts(row, 7)?,
        refund_deadline: ts(row, 8)?,
        wire_transfer_deadline: ts(row, 9)?,
        amount: am(row, currency, 10)?,
        refund_total: am(row, currency, 12)?,
        wired: flag(row, 14)?,
        h_wire: hash(row, 15)?,
        salt: fixed("wire salt", &salt, WireSalt::from_slice)?,
        payto_uri: row.get(17)?,
    })
}

pub(crate) fn pay_order(
    conn: &Connection,
    currency: Currency,
    instance_serial: i64,
    order_id: &str,
) -> Result<Option<PayOrder>, StoreError> {
    query_opt(
        conn,
        &format!(
            "SELECT {ORDER_COLUMNS} FROM orders o JOIN instance_accounts a \
             ON a.account_serial = o.account_serial \
             WHERE o.instance_serial = ?1 AND o.order_id = ?2"
        ),
        params![instance_serial, order_id],
        |row| order_row(row, currency),
    )
}

const DEPOSIT_COLUMNS: &str = "deposit_serial, coin_pub, coin_sig, exchange_url, h_denom, \
     amount_with_fee_val, amount_with_fee_frac, deposit_fee_val, deposit_fee_frac, \
     refund_fee_val, refund_fee_frac, exchange_pub, exchange_sig, exchange_timestamp, wtid, \
     execution_time";

pub(crate) fn deposit_row(row: &Row<'_>, currency: Currency) -> Result<DepositRow, StoreError> {
    let wtid: Option<Vec<u8>> = row.get(14)?;
    Ok(DepositRow {
        serial: row.get(0)?,
        deposit: NewDeposit {
            coin_pub: eddsa(row, 1)?,
            coin_sig: sig(row, 2)?,
            exchange_url: row.get(3)?,
            h_denom: hash(row, 4)?,
            amount_with_fee: am(row, currency, 5)?,
            deposit_fee: am(row, currency, 7)?,
            refund_fee: am(row, currency, 9)?,
            exchange_pub: eddsa(row, 11)?,
            exchange_sig: sig(row, 12)?,
            exchange_timestamp: ts(row, 13)?,
        },
        wtid: wtid
            .map(|b| fixed("wtid", &b, ShortHashCode::from_slice))
            .transpose()?,
        execution_time: time_opt(row.get(15)?)?,
    })
}

pub(crate) fn deposits(
    conn: &Connection,
    currency: Currency,
    order_serial: i64,
) -> Result<Vec<DepositRow>, StoreError> {
    query_all(
        conn,
        &format!(
            "SELECT {DEPOSIT_COLUMNS} FROM deposits WHERE order_serial = ?1 ORDER BY deposit_serial"
        ),
        params![order_serial],
        |row| deposit_row(row, currency),
    )
}

pub(crate) fn record_payment(
    tx: &mut SqliteTx<'_>,
    order_serial: i64,
    deposits: &[NewDeposit],
    paid: Option<&PaidMark>,
) -> Result<RecordPayment, StoreError> {
    // Whether every coin was stored for the order before, with the same signature: the same
    // payment again (two identical requests that raced past the paid check).
    let mut replay = true;
    for d in deposits {
        let same: Option<i64> = query_opt(
            tx,
            "SELECT 1 FROM deposits WHERE order_serial = ?1 AND coin_pub = ?2 AND coin_sig = ?3",
            params![
                order_serial,
                d.coin_pub.as_bytes().as_slice(),
                d.coin_sig.as_bytes().as_slice()
            ],
            |r| Ok(r.get(0)?),
        )?;
        replay &= same.is_some();
    }
    for d in deposits {
        let (awf_val, awf_frac) = cols(&d.amount_with_fee);
        let (fee_val, fee_frac) = cols(&d.deposit_fee);
        let (rf_val, rf_frac) = cols(&d.refund_fee);
        execute(
            tx,
            "INSERT INTO deposits (order_serial, coin_pub, coin_sig, exchange_url, h_denom, \
             amount_with_fee_val, amount_with_fee_frac, deposit_fee_val, deposit_fee_frac, \
             refund_fee_val, refund_fee_frac, exchange_pub, exchange_sig, exchange_timestamp, \
             next_check) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
             (SELECT wire_transfer_deadline FROM orders WHERE order_serial = ?1)) \
             ON CONFLICT (order_serial, coin_pub) DO NOTHING",
            params![
                order_serial,
                d.coin_pub.as_bytes().as_slice(),
                d.coin_sig.as_bytes().as_slice(),
                d.exchange_url,
                d.h_denom.as_bytes().as_slice(),
                awf_val,
                awf_frac,
                fee_val,
                fee_frac,
                rf_val,
                rf_frac,
                d.exchange_pub.as_bytes().as_slice(),
                d.exchange_sig.as_bytes().as_slice(),
                micros(d.exchange_timestamp),
            ],
        )?;
    }
    let Some(mark) = paid else {
        return Ok(RecordPayment::AlreadyPaid);
    };
    let state: Option<(i64, i64)> = query_opt(
        tx,
        "SELECT paid, pay_deadline FROM orders WHERE order_serial = ?1",
        params![order_serial],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    match state {
        Some((0, deadline)) if deadline >= micros(mark.paid_at) => {}
        Some((0, _)) => return Ok(RecordPayment::Expired),
        _ if replay => return Ok(RecordPayment::Replayed),
        _ => return Ok(RecordPayment::AlreadyPaid),
    }
    execute(
        tx,
        "UPDATE orders SET paid = 1, paid_at = ?2, session_id = ?3 WHERE order_serial = ?1",
        params![order_serial, micros(mark.paid_at), mark.session_id],
    )?;
    // The stock the order held is sold now (exactly once: the locks go with it).
    super::inventory::sell_order_locks(tx, order_serial)?;
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
    Ok(RecordPayment::Paid)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one grant's inputs, passed through"
)]
pub(crate) fn grant_refund(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    order_serial: i64,
    instance_serial: i64,
    order_id: &str,
    price: Amount,
    target: Amount,
    reason: &str,
    now: Timestamp,
) -> Result<GrantRefund, StoreError> {
    let (paid, current) = tx
        .prepare_cached("SELECT paid, refund_val, refund_frac FROM orders WHERE order_serial = ?1")?
        .query_row(params![order_serial], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (r.get::<_, i64>(1)?, r.get::<_, i64>(2)?),
            ))
        })?;
    if paid == 0 {
        return Ok(GrantRefund::Unpaid);
    }
    let current = super::super::amount(currency, current.0, current.1)?;
    if target.to_units() <= current.to_units() {
        return Ok(GrantRefund::Unchanged { total: current });
    }
    if target.to_units() > price.to_units() {
        return Ok(GrantRefund::ExceedsPayment { paid: price });
    }
    // What each coin can still give back: its deposit minus what was refunded of it.
    let coins: Vec<(Vec<u8>, u128)> = query_all(
        tx,
        "SELECT d.coin_pub, d.amount_with_fee_val, d.amount_with_fee_frac, \
         COALESCE((SELECT SUM(r.amount_val) FROM refunds r WHERE r.order_serial = d.order_serial \
         AND r.coin_pub = d.coin_pub), 0), \
         COALESCE((SELECT SUM(r.amount_frac) FROM refunds r WHERE r.order_serial = d.order_serial \
         AND r.coin_pub = d.coin_pub), 0) \
         FROM deposits d WHERE d.order_serial = ?1 ORDER BY d.deposit_serial",
        params![order_serial],
        |row| {
            let deposited = am(row, currency, 1)?.to_units();
            let val: i64 = row.get(3)?;
            let frac: i64 = row.get(4)?;
            let refunded = u128::try_from(val).map_err(|_| corrupt("refund sum"))?
                * u128::from(cardcash_util::amount::FRAC_BASE)
                + u128::try_from(frac).map_err(|_| corrupt("refund sum"))?;
            Ok((row.get(0)?, deposited.saturating_sub(refunded)))
        },
    )?;
    let increase = target.to_units() - current.to_units();
    let remaining: Vec<u128> = coins.iter().map(|c| c.1).collect();
    let Some(parts) = allocate(increase, &remaining) else {
        return Ok(GrantRefund::ExceedsPayment { paid: price });
    };
    let rtid: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(MAX(rtransaction_id), 0) + 1 FROM refunds WHERE order_serial = ?1",
        )?
        .query_row(params![order_serial], |r| r.get(0))?;
    for ((coin, _), units) in coins.iter().zip(parts) {
        if units == 0 {
            continue;
        }
        let a = Amount::from_units(&currency, units).map_err(|e| corrupt(e.to_string()))?;
        let (val, frac) = cols(&a);
        execute(
            tx,
            "INSERT INTO refunds (order_serial, rtransaction_id, coin_pub, amount_val, \
             amount_frac, reason, granted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![order_serial, rtid, coin, val, frac, reason, micros(now)],
        )?;
    }
    let (val, frac) = cols(&target);
    execute(
        tx,
        "UPDATE orders SET refund_val = ?2, refund_frac = ?3 WHERE order_serial = ?1",
        params![order_serial, val, frac],
    )?;
    tx.notify(TOPIC_ORDER, &order_key(instance_serial, order_id));
    Ok(GrantRefund::Granted { total: target })
}

pub(crate) fn refunds(
    conn: &Connection,
    currency: Currency,
    order_serial: i64,
) -> Result<Vec<RefundRow>, StoreError> {
    query_all(
        conn,
        "SELECT r.refund_serial, r.rtransaction_id, r.coin_pub, d.exchange_url, r.amount_val, \
         r.amount_frac, r.reason, r.granted_at, r.exchange_pub, r.exchange_sig, \
         r.exchange_status, r.exchange_reply, r.obtained \
         FROM refunds r JOIN deposits d ON d.order_serial = r.order_serial AND d.coin_pub = r.coin_pub \
         WHERE r.order_serial = ?1 ORDER BY r.rtransaction_id, r.refund_serial",
        params![order_serial],
        |row| {
            let exchange_pub: Option<Vec<u8>> = row.get(8)?;
            let exchange_sig: Option<Vec<u8>> = row.get(9)?;
            let status: Option<i64> = row.get(10)?;
            let reply: Option<String> = row.get(11)?;
            let outcome = match (exchange_pub, exchange_sig, status) {
                (Some(p), Some(s), _) => RefundOutcome::Confirmed {
                    exchange_pub: fixed(
                        "exchange_pub",
                        &p,
                        cardcash_util::EddsaPublicKey::from_slice,
                    )?,
                    exchange_sig: fixed(
                        "exchange_sig",
                        &s,
                        cardcash_util::EddsaSignature::from_slice,
                    )?,
                },
                (_, _, Some(status)) => RefundOutcome::Failed {
                    status: u16::try_from(status).map_err(|_| corrupt("exchange status"))?,
                    reply: reply.as_deref().map(json).transpose()?,
                },
                _ => RefundOutcome::Pending,
            };
            let rtid: i64 = row.get(1)?;
            Ok(RefundRow {
                serial: row.get(0)?,
                rtransaction_id: u64::try_from(rtid).map_err(|_| corrupt("rtransaction_id"))?,
                coin_pub: eddsa(row, 2)?,
                exchange_url: row.get(3)?,
                amount: am(row, currency, 4)?,
                reason: row.get(6)?,
                granted_at: ts(row, 7)?,
                outcome,
                obtained: flag(row, 12)?,
            })
        },
    )
}

pub(crate) fn store_refund_outcomes(
    tx: &mut SqliteTx<'_>,
    order_serial: i64,
    key: &str,
    outcomes: &[(i64, RefundOutcome)],
    obtained: bool,
) -> Result<(), StoreError> {
    for (serial, outcome) in outcomes {
        match outcome {
            RefundOutcome::Pending => {}
            RefundOutcome::Confirmed {
                exchange_pub,
                exchange_sig,
            } => {
                execute(
                    tx,
                    "UPDATE refunds SET exchange_pub = ?2, exchange_sig = ?3, exchange_status = 200 \
                     WHERE refund_serial = ?1 AND exchange_sig IS NULL",
                    params![
                        serial,
                        exchange_pub.as_bytes().as_slice(),
                        exchange_sig.as_bytes().as_slice()
                    ],
                )?;
            }
            RefundOutcome::Failed { status, reply } => {
                execute(
                    tx,
                    "UPDATE refunds SET exchange_status = ?2, exchange_reply = ?3 \
                     WHERE refund_serial = ?1 AND exchange_sig IS NULL AND exchange_status IS NULL",
                    params![
                        serial,
                        i64::from(*status),
                        reply.as_ref().map(|r| r.to_string())
                    ],
                )?;
            }
        }
    }
    if obtained {
        execute(
            tx,
            "UPDATE refunds SET obtained = 1 WHERE order_serial = ?1 AND obtained = 0 \
             AND exchange_status IS NOT NULL",
            params![order_serial],
        )?;
    }
    tx.notify(TOPIC_ORDER, key);
    Ok(())
}
