//! Order status, claim and `/paid` on SQLite.

use cardcash_store::rusqlite::{Connection, Row, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{Currency, EddsaPublicKey, HashCode};

use super::super::status::{
    ClaimOutcome, DepositSummary, OrderStatusRow, PaidInSession, PaymentDetails, RebindOutcome,
    RefundSummary, decide_claim, order_notifications,
};
use super::super::{corrupt, fixed, micros, time_opt};
use super::orders::{self, ORDER_COLUMNS};
use super::{am, execute, flag, ts};
use crate::claim::{ClaimDecision, ClaimRequestView};

/// An order read with `SELECT {ORDER_COLUMNS}, nonce, paid_at`: the listing's columns, decoded
/// by [`orders::order_row`], then those only the status reads.
fn order_row(row: &Row<'_>, currency: Currency) -> Result<OrderStatusRow, StoreError> {
    let nonce: Option<Vec<u8>> = row.get(17)?;
    OrderStatusRow::new(
        orders::order_row(row, currency)?,
        nonce
            .map(|b| fixed("nonce", &b, EddsaPublicKey::from_slice))
            .transpose()?,
        time_opt(row.get(18)?)?,
    )
}

pub(crate) fn order_status(
    conn: &Connection,
    currency: Currency,
    instance_serial: i64,
    order_id: &str,
) -> Result<Option<OrderStatusRow>, StoreError> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS}, nonce, paid_at FROM orders WHERE instance_serial = ?1 AND order_id = ?2"
    );
    query_opt(conn, &sql, params![instance_serial, order_id], |row| {
        order_row(row, currency)
    })
}

pub(crate) fn payment_details(
    conn: &Connection,
    currency: Currency,
    order_serial: i64,
) -> Result<PaymentDetails, StoreError> {
    let deposits = query_all(
        conn,
        "SELECT exchange_url, amount_with_fee_val, amount_with_fee_frac, deposit_fee_val, \
         deposit_fee_frac, exchange_timestamp, wtid, execution_time FROM deposits \
         WHERE order_serial = ?1 ORDER BY deposit_serial",
        params![order_serial],
        |row| {
            let wtid: Option<Vec<u8>> = row.get(6)?;
            Ok(DepositSummary {
                exchange_url: row.get(0)?,
                amount_with_fee: am(row, currency, 1)?,
                deposit_fee: am(row, currency, 3)?,
                exchange_timestamp: ts(row, 5)?,
                wtid: wtid
                    .map(|b| fixed("wtid", &b, |b| b.try_into().ok()))
                    .transpose()?,
                execution_time: time_opt(row.get(7)?)?,
            })
        },
    )?;
    let refunds = query_all(
        conn,
        "SELECT rtransaction_id, amount_val, amount_frac, reason, granted_at, obtained \
         FROM refunds WHERE order_serial = ?1 ORDER BY rtransaction_id, refund_serial",
        params![order_serial],
        |row| {
            Ok(RefundSummary {
                rtransaction_id: row.get(0)?,
                amount: am(row, currency, 1)?,
                reason: row.get(3)?,
                granted_at: ts(row, 4)?,
                obtained: flag(row, 5)?,
            })
        },
    )?;
    Ok(PaymentDetails { deposits, refunds })
}

pub(crate) fn paid_in_session(
    conn: &Connection,
    instance_serial: i64,
    session_id: &str,
    fulfillment_url: &str,
    allow_refunded: bool,
) -> Result<Option<PaidInSession>, StoreError> {
    query_opt(
        conn,
        "SELECT order_id, fulfillment_url FROM orders WHERE instance_serial = ?1 \
         AND session_id = ?2 AND fulfillment_url = ?3 AND paid = 1 \
         AND (?4 OR (refund_val = 0 AND refund_frac = 0)) \
         ORDER BY paid_at DESC, order_serial DESC LIMIT 1",
        params![instance_serial, session_id, fulfillment_url, allow_refunded],
        |row| {
            Ok(PaidInSession {
                order_id: row.get(0)?,
                fulfillment_url: row.get(1)?,
            })
        },
    )
}

pub(crate) fn claim_order(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    instance_serial: i64,
    order_id: &str,
    request: &ClaimRequestView,
) -> Result<ClaimOutcome, StoreError> {
    let row = order_status(tx, currency, instance_serial, order_id)?;
    let decision = match decide_claim(row.as_ref(), request)? {
        Ok(decision) => decision,
        Err(refusal) => return Ok(ClaimOutcome::Refused(refusal)),
    };
    match decision {
        ClaimDecision::Replay {
            contract_terms,
            h_contract_terms,
        } => Ok(ClaimOutcome::Claimed {
            contract_terms,
            h_contract_terms,
        }),
        ClaimDecision::Claim {
            contract_terms,
            h_contract_terms,
        } => {
            let serial = row
                .map(|r| r.serial)
                .ok_or_else(|| corrupt("claimed no row"))?;
            let changed = execute(
                tx,
                "UPDATE orders SET nonce = ?1, h_contract_terms = ?2, contract_terms = ?3, \
                 claimed_at = ?4 WHERE order_serial = ?5 AND nonce IS NULL",
                params![
                    request.nonce.as_bytes().as_slice(),
                    h_contract_terms.as_bytes().as_slice(),
                    contract_terms.to_string(),
                    micros(request.now),
                    serial,
                ],
            )?;
            if changed != 1 {
                return Err(corrupt("order claimed twice in one write"));
            }
            for (topic, key) in order_notifications(instance_serial, order_id, "") {
                tx.notify(topic, &key);
            }
            Ok(ClaimOutcome::Claimed {
                contract_terms,
                h_contract_terms,
            })
        }
    }
}

pub(crate) fn rebind_session(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    order_id: &str,
    h_contract_terms: &HashCode,
    session_id: &str,
) -> Result<RebindOutcome, StoreError> {
    let found: Option<(i64, Option<Vec<u8>>, bool, bool)> = query_opt(
        tx,
        "SELECT order_serial, h_contract_terms, paid, (refund_val > 0 OR refund_frac > 0) \
         FROM orders WHERE instance_serial = ?1 AND order_id = ?2",
        params![instance_serial, order_id],
        |row| Ok((row.get(0)?, row.get(1)?, flag(row, 2)?, flag(row, 3)?)),
    )?;
    let Some((serial, h, paid, refunded)) = found else {
        return Ok(RebindOutcome::NotFound);
    };
    if h.as_deref() != Some(h_contract_terms.as_bytes().as_slice()) {
        return Ok(RebindOutcome::HashMismatch);
    }
    if !paid {
        return Ok(RebindOutcome::Unpaid);
    }
    execute(
        tx,
        "UPDATE orders SET session_id = ?1 WHERE order_serial = ?2",
        params![session_id, serial],
    )?;
    for (topic, key) in order_notifications(instance_serial, order_id, session_id) {
        tx.notify(topic, &key);
    }
    Ok(RebindOutcome::Rebound { refunded })
}
