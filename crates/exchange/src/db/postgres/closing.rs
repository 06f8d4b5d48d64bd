//! Reserve closing on PostgreSQL (see `db::closing`): a closing is ONE `CALL
//! exchange_close_reserve` (`migrations/postgres/0004_closing.sql`), which locks the reserve
//! row, re-checks, writes, commits and notifies; the rest are single statements. The outcomes
//! are those of `sqlite/closing.rs`, step for step.

use cardcash_store::{PgDb, StoreError};
use cardcash_util::{Amount, Currency, EddsaPublicKey, Timestamp};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::super::closing::{
    CloseOutcome, CloseWaitRow, CloseWake, ClosingRow, ClosingSums, ExpiredReserveRow, NewClosing,
    ReserveOrigin, TOPIC_CLOSING, closing_date, closing_request_uid, closing_wtid,
};
use super::{
    am, eddsa, hash, micros, outcome, payload, read_all, read_opt, short, sum_amount, ts, write,
    write_row,
};
use crate::db::{TOPIC_RESERVE, cols, corrupt, count, gateway_row, reserve_key, time};

pub(in crate::db) async fn expired_reserves(
    db: &PgDb,
    currency: Currency,
    now: Timestamp,
    include_waiting: bool,
    limit: u32,
) -> Result<Vec<ExpiredReserveRow>, StoreError> {
    read_all(
        db,
        sqlx::query(
            "SELECT r.reserve_pub, r.balance_val, r.balance_frac, r.expiration_date, \
             (SELECT count(*) FROM reserves_close c WHERE c.reserve_pub = r.reserve_pub) \
               AS close_number, \
             i.reserve_in_serial, i.debit_payto, i.account_section, \
             coalesce(w.failures, 0) AS failures \
             FROM reserves r \
             LEFT JOIN reserves_close_wait w ON w.reserve_pub = r.reserve_pub \
             LEFT JOIN LATERAL (SELECT x.reserve_in_serial, x.debit_payto, x.account_section \
                                  FROM reserves_in x WHERE x.reserve_pub = r.reserve_pub \
                                 ORDER BY x.reserve_in_serial DESC LIMIT 1) i ON TRUE \
             WHERE (r.balance_val > 0 OR r.balance_frac > 0) AND r.expiration_date <= $1 \
               AND ($2 OR w.next_attempt IS NULL OR w.next_attempt <= $1) \
             ORDER BY r.expiration_date LIMIT $3",
        )
        .bind(micros(now))
        .bind(include_waiting)
        .bind(i64::from(limit)),
        |r| {
            let serial: Option<i64> = r.try_get("reserve_in_serial")?;
            let origin = match serial {
                Some(credit_serial) => Some(ReserveOrigin {
                    credit_serial,
                    debit_payto: r.try_get("debit_payto")?,
                    account_section: r.try_get("account_section")?,
                }),
                None => None,
            };
            let failures: i32 = r.try_get("failures")?;
            Ok(ExpiredReserveRow {
                reserve_pub: eddsa(r, "reserve_pub")?,
                balance: am(r, currency, "balance")?,
                expiration: ts(r, "expiration_date")?,
                close_number: count(r.try_get("close_number")?),
                origin,
                failures: u32::try_from(failures).unwrap_or(0),
            })
        },
    )
    .await
}

pub(in crate::db) async fn next_close_wake(
    db: &PgDb,
    _currency: Currency,
) -> Result<CloseWake, StoreError> {
    // A waiting reserve credited since has a later expiration: it is due at the later of both.
    let r = sqlx::query(
        "SELECT \
           (SELECT min(r.expiration_date) FROM reserves r \
             WHERE (r.balance_val > 0 OR r.balance_frac > 0) AND NOT EXISTS \
               (SELECT 1 FROM reserves_close_wait w WHERE w.reserve_pub = r.reserve_pub)) \
             AS expiring, \
           (SELECT min(GREATEST(w.next_attempt, r.expiration_date)) \
              FROM reserves_close_wait w JOIN reserves r ON r.reserve_pub = w.reserve_pub \
             WHERE r.balance_val > 0 OR r.balance_frac > 0) AS retry, \
           (SELECT count(*) \
              FROM reserves_close_wait w JOIN reserves r ON r.reserve_pub = w.reserve_pub \
             WHERE r.balance_val > 0 OR r.balance_frac > 0) AS waiting",
    )
    .fetch_one(db.pool())
    .await?;
    let expiring: Option<i64> = r.try_get("expiring")?;
    let retry: Option<i64> = r.try_get("retry")?;
    let waiting: i64 = r.try_get("waiting")?;
    let next = match (expiring, retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(CloseWake {
        next: next.map(time).transpose()?,
        waiting: u64::try_from(waiting).unwrap_or(0),
    })
}

pub(in crate::db) async fn close_reserve(
    db: &PgDb,
    currency: Currency,
    c: NewClosing,
) -> Result<CloseOutcome, StoreError> {
    let request_uid = closing_request_uid(&c.reserve_pub, c.close_number);
    let wtid = closing_wtid(&c.reserve_pub, c.close_number, &request_uid);
    let fee = cols(&c.closing_fee);
    let close_number = i32::try_from(c.close_number)
        .map_err(|_| StoreError::Internal(format!("closing number {}", c.close_number)))?;
    let reserve_payload = payload(TOPIC_RESERVE, &reserve_key(&c.reserve_pub));
    let closing_payload = payload(TOPIC_CLOSING, "");
    let row = write_row(db, || {
        sqlx::query(
            "CALL exchange_close_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, NULL, NULL, NULL, NULL, NULL, NULL)",
        )
        .bind(c.reserve_pub.as_bytes().as_slice())
        .bind(micros(c.now))
        .bind(close_number)
        .bind(c.origin_serial)
        .bind(&c.receiver_payto)
        .bind(&c.account_section)
        .bind(fee.0)
        .bind(fee.1)
        .bind(&c.exchange_base_url)
        .bind(request_uid.as_bytes().as_slice())
        .bind(wtid.as_bytes().as_slice())
        .bind(&reserve_payload)
        .bind(&closing_payload)
        .bind(db.channel())
    })
    .await?;
    match outcome(&row)? {
        "not_due" => Ok(CloseOutcome::NotDue),
        "closed" => {
            let amount = am(&row, currency, "out_amount")?;
            let closing_fee = am(&row, currency, "out_fee")?;
            let transferred = amount
                .checked_sub(&closing_fee)
                .map_err(|e| corrupt(format!("closing fee above the amount: {e}")))?;
            Ok(CloseOutcome::Closed(Box::new(ClosingRow {
                serial: row.try_get("out_serial")?,
                reserve_pub: c.reserve_pub,
                close_number: c.close_number,
                execution_date: closing_date(c.now),
                receiver_payto: c.receiver_payto,
                account_section: c.account_section,
                wtid,
                request_uid,
                amount,
                closing_fee,
                done: transferred.is_zero(),
                transferred,
                exchange_base_url: c.exchange_base_url,
                gateway_row_id: None,
                failures: 0,
            })))
        }
        other => Err(corrupt(format!("close reserve outcome {other:?}"))),
    }
}

pub(in crate::db) async fn close_wait(
    db: &PgDb,
    _currency: Currency,
    reserve_pub: EddsaPublicKey,
    reason: String,
    now: Timestamp,
    next_attempt: Timestamp,
) -> Result<(), StoreError> {
    write(db, || {
        sqlx::query(
            "INSERT INTO reserves_close_wait (reserve_pub, reason, since, next_attempt, failures) \
             VALUES ($1, $2, $3, $4, 1) \
             ON CONFLICT (reserve_pub) DO UPDATE SET reason = excluded.reason, \
             next_attempt = excluded.next_attempt, \
             failures = reserves_close_wait.failures + 1",
        )
        .bind(reserve_pub.as_bytes().as_slice())
        .bind(&reason)
        .bind(micros(now))
        .bind(micros(next_attempt))
    })
    .await?;
    Ok(())
}

pub(in crate::db) async fn close_waits(
    db: &PgDb,
    _currency: Currency,
) -> Result<Vec<CloseWaitRow>, StoreError> {
    read_all(
        db,
        sqlx::query(
            "SELECT w.reserve_pub, w.reason, w.since, w.next_attempt, w.failures \
             FROM reserves_close_wait w JOIN reserves r ON r.reserve_pub = w.reserve_pub \
             WHERE r.balance_val > 0 OR r.balance_frac > 0 ORDER BY w.since, w.reserve_pub",
        ),
        |r| {
            let failures: i32 = r.try_get("failures")?;
            Ok(CloseWaitRow {
                reserve_pub: eddsa(r, "reserve_pub")?,
                reason: r.try_get("reason")?,
                since: ts(r, "since")?,
                next_attempt: ts(r, "next_attempt")?,
                failures: u32::try_from(failures).unwrap_or(0),
            })
        },
    )
    .await
}

pub(in crate::db) async fn closing_fee(
    db: &PgDb,
    currency: Currency,
    method: String,
    at: Timestamp,
) -> Result<Option<Amount>, StoreError> {
    read_opt(
        db,
        sqlx::query(
            "SELECT closing_fee_val, closing_fee_frac FROM wire_fees \
             WHERE wire_method = $1 AND start_date <= $2 AND $2 < end_date",
        )
        .bind(&method)
        .bind(micros(at)),
        |r| am(r, currency, "closing_fee"),
    )
    .await
}

macro_rules! closing_columns {
    () => {
        "close_serial, reserve_pub, close_number, execution_date, receiver_payto, \
         account_section, wtid, request_uid, amount_val, amount_frac, closing_fee_val, \
         closing_fee_frac, transferred_val, transferred_frac, exchange_base_url, \
         gateway_row_id, done, failures"
    };
}

fn closing_row(r: &PgRow, currency: Currency) -> Result<ClosingRow, StoreError> {
    let gateway: Option<i64> = r.try_get("gateway_row_id")?;
    let close_number: i32 = r.try_get("close_number")?;
    let failures: i32 = r.try_get("failures")?;
    Ok(ClosingRow {
        serial: r.try_get("close_serial")?,
        reserve_pub: eddsa(r, "reserve_pub")?,
        close_number: u32::try_from(close_number)
            .map_err(|_| corrupt(format!("closing number {close_number}")))?,
        execution_date: ts(r, "execution_date")?,
        receiver_payto: r.try_get("receiver_payto")?,
        account_section: r.try_get("account_section")?,
        wtid: short(r, "wtid")?,
        request_uid: hash(r, "request_uid")?,
        amount: am(r, currency, "amount")?,
        closing_fee: am(r, currency, "closing_fee")?,
        transferred: am(r, currency, "transferred")?,
        exchange_base_url: r.try_get("exchange_base_url")?,
        gateway_row_id: gateway_row(gateway)?,
        done: r.try_get("done")?,
        failures: count(failures.into()),
    })
}

pub(in crate::db) async fn pending_closings(
    db: &PgDb,
    currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<ClosingRow>, StoreError> {
    read_all(
        db,
        sqlx::query(concat!(
            "SELECT ",
            closing_columns!(),
            " FROM reserves_close WHERE NOT done AND next_attempt <= $1 \
             ORDER BY close_serial LIMIT $2"
        ))
        .bind(micros(now))
        .bind(i64::from(limit)),
        |r| closing_row(r, currency),
    )
    .await
}

/// The queue of closed reserves sent back (see [`Outgoing`](crate::db::Outgoing)).
pub(in crate::db) const OUTGOING: super::OutgoingSql = super::OutgoingSql {
    next_attempt: "SELECT min(next_attempt) FROM reserves_close WHERE NOT done",
    done: "UPDATE reserves_close SET gateway_row_id = $2, done = TRUE \
           WHERE close_serial = $1 AND NOT done",
    failed: "UPDATE reserves_close SET failures = failures + 1, next_attempt = $2 \
             WHERE close_serial = $1 AND NOT done",
};

pub(in crate::db) async fn closings(
    db: &PgDb,
    currency: Currency,
    reserve_pub: EddsaPublicKey,
) -> Result<Vec<ClosingRow>, StoreError> {
    read_all(
        db,
        sqlx::query(concat!(
            "SELECT ",
            closing_columns!(),
            " FROM reserves_close WHERE reserve_pub = $1 ORDER BY close_serial"
        ))
        .bind(reserve_pub.as_bytes().as_slice()),
        |r| closing_row(r, currency),
    )
    .await
}

/// The closing columns of the audit's one statement (appended to `AUDIT_SQL` of
/// `postgres/mod.rs`; decoded by [`audit`]).
pub(in crate::db) const AUDIT_COLUMNS: &str = "\
  (SELECT coalesce(sum(exchange_units(amount_val, amount_frac)), 0) \
     FROM reserves_close)::TEXT AS closed, \
  (SELECT coalesce(sum(exchange_units(closing_fee_val, closing_fee_frac)), 0) \
     FROM reserves_close)::TEXT AS closing_fees, \
  (SELECT coalesce(sum(exchange_units(transferred_val, transferred_frac)), 0) \
     FROM reserves_close WHERE gateway_row_id IS NOT NULL)::TEXT AS closings_transferred, \
  (SELECT coalesce(sum(exchange_units(transferred_val, transferred_frac)), 0) \
     FROM reserves_close WHERE NOT done)::TEXT AS closings_pending, \
  ARRAY(SELECT close_serial FROM reserves_close \
         WHERE exchange_units(closing_fee_val, closing_fee_frac) \
               + exchange_units(transferred_val, transferred_frac) \
               <> exchange_units(amount_val, amount_frac) \
         ORDER BY close_serial) AS closings_off_balance";

/// The closing sums from the audit's row ([`AUDIT_COLUMNS`]).
pub(in crate::db) fn audit(r: &PgRow, currency: Currency) -> Result<ClosingSums, StoreError> {
    Ok(ClosingSums {
        closed: sum_amount(r, currency, "closed")?,
        fees: sum_amount(r, currency, "closing_fees")?,
        transferred: sum_amount(r, currency, "closings_transferred")?,
        pending: sum_amount(r, currency, "closings_pending")?,
        off_balance: r.try_get("closings_off_balance")?,
    })
}
