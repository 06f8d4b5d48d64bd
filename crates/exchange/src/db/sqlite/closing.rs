//! Reserve closing on SQLite (see `db::closing`): the same steps as the PostgreSQL procedure
//! `exchange_close_reserve` of `migrations/postgres/0004_closing.sql`, in one writer closure
//! (which runs alone, so it can read, decide and write without locks); keep them in step.

use cardcash_store::rusqlite::{Connection, Row, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{Amount, Currency, EddsaPublicKey, Timestamp};

use super::super::closing::{
    CloseOutcome, CloseWaitRow, CloseWake, ClosingRow, ClosingSums, ExpiredReserveRow, NewClosing,
    ReserveOrigin, TOPIC_CLOSING, closing_date, closing_request_uid, closing_wtid,
};
use super::{am, eddsa, execute, hash, micros, short, sum, ts};
use crate::db::{
    ReserveHistoryEntry, TOPIC_RESERVE, cols, count, gateway_row, reserve_key, time, units,
};

pub(in crate::db) fn expired_reserves(
    conn: &Connection,
    currency: Currency,
    now: Timestamp,
    include_waiting: bool,
    limit: u32,
) -> Result<Vec<ExpiredReserveRow>, StoreError> {
    query_all(
        conn,
        "SELECT r.reserve_pub, r.balance_val, r.balance_frac, r.expiration_date, \
         (SELECT count(*) FROM reserves_close c WHERE c.reserve_pub = r.reserve_pub), \
         i.reserve_in_serial, i.debit_payto, i.account_section, coalesce(w.failures, 0) \
         FROM reserves r \
         LEFT JOIN reserves_close_wait w ON w.reserve_pub = r.reserve_pub \
         LEFT JOIN reserves_in i ON i.reserve_in_serial = \
           (SELECT max(x.reserve_in_serial) FROM reserves_in x WHERE x.reserve_pub = r.reserve_pub) \
         WHERE (r.balance_val > 0 OR r.balance_frac > 0) AND r.expiration_date <= ?1 \
           AND (?2 OR w.next_attempt IS NULL OR w.next_attempt <= ?1) \
         ORDER BY r.expiration_date LIMIT ?3",
        params![micros(now), include_waiting, limit],
        |r| expired_row(r, currency),
    )
}

fn expired_row(r: &Row<'_>, currency: Currency) -> Result<ExpiredReserveRow, StoreError> {
    let serial: Option<i64> = r.get(5)?;
    let origin = match serial {
        Some(credit_serial) => Some(ReserveOrigin {
            credit_serial,
            debit_payto: r.get(6)?,
            account_section: r.get(7)?,
        }),
        None => None,
    };
    Ok(ExpiredReserveRow {
        reserve_pub: eddsa(r, 0)?,
        balance: am(r, currency, 1)?,
        expiration: ts(r, 3)?,
        close_number: count(r.get(4)?),
        origin,
        failures: count(r.get(8)?),
    })
}

pub(in crate::db) fn next_close_wake(
    conn: &Connection,
    _currency: Currency,
) -> Result<CloseWake, StoreError> {
    let snapshot = super::snapshot(conn)?;
    let conn: &Connection = &snapshot;
    let expiring: Option<i64> = conn
        .prepare_cached(
            "SELECT min(r.expiration_date) FROM reserves r \
             WHERE (r.balance_val > 0 OR r.balance_frac > 0) AND NOT EXISTS \
               (SELECT 1 FROM reserves_close_wait w WHERE w.reserve_pub = r.reserve_pub)",
        )?
        .query_row([], |r| r.get(0))?;
    // A waiting reserve credited since has a later expiration: it is due at the later of both.
    let (retry, waiting): (Option<i64>, i64) = conn
        .prepare_cached(
            "SELECT min(max(w.next_attempt, r.expiration_date)), count(*) \
             FROM reserves_close_wait w JOIN reserves r ON r.reserve_pub = w.reserve_pub \
             WHERE r.balance_val > 0 OR r.balance_frac > 0",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let next = match (expiring, retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(CloseWake {
        next: next.map(time).transpose()?,
        waiting: u64::try_from(waiting).unwrap_or(0),
    })
}

pub(in crate::db) fn close_reserve(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    c: NewClosing,
) -> Result<CloseOutcome, StoreError> {
    let key = c.reserve_pub.to_vec();
    let current = query_opt(
        tx,
        "SELECT balance_val, balance_frac, expiration_date, \
         (SELECT count(*) FROM reserves_close WHERE reserve_pub = ?1), \
         (SELECT max(reserve_in_serial) FROM reserves_in WHERE reserve_pub = ?1) \
         FROM reserves WHERE reserve_pub = ?1",
        [&key],
        |r| {
            Ok((
                am(r, currency, 0)?,
                ts(r, 2)?,
                count(r.get(3)?),
                r.get::<_, Option<i64>>(4)?,
            ))
        },
    )?;
    let Some((balance, expiration, closings, latest)) = current else {
        return Ok(CloseOutcome::NotDue);
    };
    if balance.is_zero()
        || expiration > c.now
        || closings != c.close_number
        || latest != Some(c.origin_serial)
    {
        return Ok(CloseOutcome::NotDue);
    }
    let kept = balance.to_units().min(c.closing_fee.to_units());
    let closing_fee = units(currency, kept)?;
    let transferred = units(currency, balance.to_units() - kept)?;
    let request_uid = closing_request_uid(&c.reserve_pub, c.close_number);
    let wtid = closing_wtid(&c.reserve_pub, c.close_number, &request_uid);
    let (a, f, t) = (cols(&balance), cols(&closing_fee), cols(&transferred));
    let done = transferred.is_zero();
    execute(
        tx,
        "INSERT INTO reserves_close (reserve_pub, close_number, execution_date, receiver_payto, \
         account_section, wtid, request_uid, amount_val, amount_frac, closing_fee_val, \
         closing_fee_frac, transferred_val, transferred_frac, exchange_base_url, done, \
         next_attempt) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            key,
            c.close_number,
            micros(closing_date(c.now)),
            c.receiver_payto,
            c.account_section,
            wtid.to_vec(),
            request_uid.to_vec(),
            a.0,
            a.1,
            f.0,
            f.1,
            t.0,
            t.1,
            c.exchange_base_url,
            done,
            micros(c.now)
        ],
    )?;
    let serial = tx.last_insert_rowid();
    execute(
        tx,
        "UPDATE reserves SET balance_val = 0, balance_frac = 0 WHERE reserve_pub = ?1",
        [&key],
    )?;
    execute(
        tx,
        "DELETE FROM reserves_close_wait WHERE reserve_pub = ?1",
        [&key],
    )?;
    tx.notify(TOPIC_RESERVE, &reserve_key(&c.reserve_pub));
    if !done {
        tx.notify(TOPIC_CLOSING, "");
    }
    Ok(CloseOutcome::Closed(Box::new(ClosingRow {
        serial,
        reserve_pub: c.reserve_pub,
        close_number: c.close_number,
        execution_date: closing_date(c.now),
        receiver_payto: c.receiver_payto,
        account_section: c.account_section,
        wtid,
        request_uid,
        amount: balance,
        closing_fee,
        transferred,
        exchange_base_url: c.exchange_base_url,
        gateway_row_id: None,
        done,
        failures: 0,
    })))
}

pub(in crate::db) fn close_wait(
    tx: &mut SqliteTx<'_>,
    _currency: Currency,
    reserve_pub: EddsaPublicKey,
    reason: String,
    now: Timestamp,
    next_attempt: Timestamp,
) -> Result<(), StoreError> {
    execute(
        tx,
        "INSERT INTO reserves_close_wait (reserve_pub, reason, since, next_attempt, failures) \
         VALUES (?1, ?2, ?3, ?4, 1) \
         ON CONFLICT (reserve_pub) DO UPDATE SET reason = excluded.reason, \
         next_attempt = excluded.next_attempt, failures = failures + 1",
        params![
            reserve_pub.to_vec(),
            reason,
            micros(now),
            micros(next_attempt)
        ],
    )?;
    Ok(())
}

pub(in crate::db) fn close_waits(
    conn: &Connection,
    _currency: Currency,
) -> Result<Vec<CloseWaitRow>, StoreError> {
    query_all(
        conn,
        "SELECT w.reserve_pub, w.reason, w.since, w.next_attempt, w.failures \
         FROM reserves_close_wait w JOIN reserves r ON r.reserve_pub = w.reserve_pub \
         WHERE r.balance_val > 0 OR r.balance_frac > 0 ORDER BY w.since, w.reserve_pub",
        [],
        |r| {
            Ok(CloseWaitRow {
                reserve_pub: eddsa(r, 0)?,
                reason: r.get(1)?,
                since: ts(r, 2)?,
                next_attempt: ts(r, 3)?,
                failures: count(r.get(4)?),
            })
        },
    )
}

pub(in crate::db) fn closing_fee(
    conn: &Connection,
    currency: Currency,
    method: String,
    at: Timestamp,
) -> Result<Option<Amount>, StoreError> {
    query_opt(
        conn,
        "SELECT closing_fee_val, closing_fee_frac FROM wire_fees \
         WHERE wire_method = ?1 AND start_date <= ?2 AND ?2 < end_date",
        params![method, micros(at)],
        |r| am(r, currency, 0),
    )
}

const CLOSING_COLUMNS: &str = "close_serial, reserve_pub, close_number, execution_date, \
     receiver_payto, account_section, wtid, request_uid, amount_val, amount_frac, \
     closing_fee_val, closing_fee_frac, transferred_val, transferred_frac, exchange_base_url, \
     gateway_row_id, done, failures";

fn closing_row(r: &Row<'_>, currency: Currency) -> Result<ClosingRow, StoreError> {
    let gateway: Option<i64> = r.get(15)?;
    Ok(ClosingRow {
        serial: r.get(0)?,
        reserve_pub: eddsa(r, 1)?,
        close_number: count(r.get(2)?),
        execution_date: ts(r, 3)?,
        receiver_payto: r.get(4)?,
        account_section: r.get(5)?,
        wtid: short(r, 6)?,
        request_uid: hash(r, 7)?,
        amount: am(r, currency, 8)?,
        closing_fee: am(r, currency, 10)?,
        transferred: am(r, currency, 12)?,
        exchange_base_url: r.get(14)?,
        gateway_row_id: gateway_row(gateway)?,
        done: r.get(16)?,
        failures: count(r.get(17)?),
    })
}

pub(in crate::db) fn pending_closings(
    conn: &Connection,
    currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<ClosingRow>, StoreError> {
    query_all(
        conn,
        &format!(
            "SELECT {CLOSING_COLUMNS} FROM reserves_close WHERE done = 0 AND next_attempt <= ?1 \
             ORDER BY close_serial LIMIT ?2"
        ),
        params![micros(now), limit],
        |r| closing_row(r, currency),
    )
}

/// The queue of closed reserves sent back (see [`Outgoing`](crate::db::Outgoing)).
pub(in crate::db) const OUTGOING: super::OutgoingSql = super::OutgoingSql {
    next_attempt: "SELECT min(next_attempt) FROM reserves_close WHERE done = 0",
    done: "UPDATE reserves_close SET gateway_row_id = ?2, done = 1 \
           WHERE close_serial = ?1 AND done = 0",
    failed: "UPDATE reserves_close SET failures = failures + 1, next_attempt = ?2 \
             WHERE close_serial = ?1 AND done = 0",
};

pub(in crate::db) fn closings(
    conn: &Connection,
    currency: Currency,
    reserve_pub: EddsaPublicKey,
) -> Result<Vec<ClosingRow>, StoreError> {
    query_all(
        conn,
        &format!(
            "SELECT {CLOSING_COLUMNS} FROM reserves_close WHERE reserve_pub = ?1 \
             ORDER BY close_serial"
        ),
        [reserve_pub.to_vec()],
        |r| closing_row(r, currency),
    )
}

/// The CLOSING entries of a reserve's history (inside the history's read snapshot).
pub(in crate::db) fn history(
    conn: &Connection,
    currency: Currency,
    reserve_pub: &[u8],
) -> Result<Vec<ReserveHistoryEntry>, StoreError> {
    query_all(
        conn,
        "SELECT amount_val, amount_frac, closing_fee_val, closing_fee_frac, execution_date, \
         receiver_payto, wtid FROM reserves_close WHERE reserve_pub = ?1 ORDER BY close_serial",
        [reserve_pub],
        |r| {
            Ok(ReserveHistoryEntry::Closing {
                amount: am(r, currency, 0)?,
                closing_fee: am(r, currency, 2)?,
                execution_date: ts(r, 4)?,
                receiver_payto: r.get(5)?,
                wtid: short(r, 6)?,
            })
        },
    )
}

/// The closing sums of the audit (inside the audit's read snapshot).
pub(in crate::db) fn audit(
    conn: &Connection,
    currency: Currency,
) -> Result<ClosingSums, StoreError> {
    let s = |sql: &str| sum(conn, currency, sql);
    let off_balance = query_all(
        conn,
        "SELECT close_serial FROM reserves_close WHERE \
         (closing_fee_val + transferred_val) * 100000000 + closing_fee_frac + transferred_frac \
         != amount_val * 100000000 + amount_frac ORDER BY close_serial",
        [],
        |r| Ok(r.get::<_, i64>(0)?),
    )?;
    Ok(ClosingSums {
        closed: s("SELECT sum(amount_val), sum(amount_frac) FROM reserves_close")?,
        fees: s("SELECT sum(closing_fee_val), sum(closing_fee_frac) FROM reserves_close")?,
        transferred: s(
            "SELECT sum(transferred_val), sum(transferred_frac) FROM reserves_close \
             WHERE gateway_row_id IS NOT NULL",
        )?,
        pending: s(
            "SELECT sum(transferred_val), sum(transferred_frac) FROM reserves_close \
             WHERE done = 0",
        )?,
        off_balance,
    })
}
