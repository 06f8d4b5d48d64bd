//! C2EC's storage on SQLite (rusqlite): reads run inline on a read-only connection; each write
//! is ONE closure on the store's writer thread (`&mut SqliteTx`), which runs alone, so it reads
//! the row, lets the rules of [`crate::state`] decide and applies the decision without locks.
//! The steps are those of the PostgreSQL functions in `migrations/postgres/0001_init.sql`;
//! keep them in step.

use cardcash_api::wire_gateway::TransferState;
use cardcash_store::rusqlite::{Connection, Params, Row, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{Amount, Currency, EddsaPublicKey, HashCode, ShortHashCode, Timestamp, Wopid};

use super::terminal::TerminalRow;
use super::transfer::{
    AcceptOutcome, NewTransfer, OutgoingRow, RefundSettlement, RefundWork, TransferRow,
    TransferSettlement, TransferStatus, state_filter,
};
use super::withdrawal::{
    ABORTED_MESSAGE, AbortOutcome, AbortRequest, CONFIRMED_MESSAGE, CheckOutcome, Claimed,
    EventRow, ExtraPaymentRow, IncomingRow, NewWithdrawal, RefundState, RegisterOutcome,
    SetupOutcome, WithdrawalRow, abort_applies, registration_view, selected_message,
};
use super::{
    TOPIC_ATTEST, TOPIC_INCOMING, TOPIC_OUTGOING, TOPIC_REFUND, TOPIC_TERMINAL, TOPIC_WITHDRAWAL,
    amount, amount_opt, base_url, cols, cols_opt, corrupt, count, fixed, payto, status, time,
    time_opt, units, withdrawal_key, wopid,
};
use crate::state::{self, CheckDecision, CheckView, Registration, RegistrationDecision, Status};

fn execute(conn: &Connection, sql: &str, params: impl Params) -> Result<usize, StoreError> {
    Ok(conn.prepare_cached(sql)?.execute(params)?)
}

pub(super) fn ping(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("SELECT 1", [], |_| Ok(()))?;
    Ok(())
}

// ----- withdrawals -----

macro_rules! withdrawal_columns {
    () => {
        "withdrawal_id, wopid, terminal_id, amount_val, amount_frac, suggested_val, \
         suggested_frac, card_fees_val, card_fees_frac, status, reserve_pub, exchange_account, \
         provider_tx_id, created_at, selected_at, checked_at, finished_at, attempts, \
         next_attempt_at, abort_reason, refund_state, refund_id, refund_attempts"
    };
}

fn withdrawal_row(row: &Row<'_>, currency: Currency) -> Result<WithdrawalRow, StoreError> {
    let wopid_bytes: Vec<u8> = row.get(1)?;
    let status_text: String = row.get(9)?;
    let reserve_pub: Option<Vec<u8>> = row.get(10)?;
    let exchange_account: Option<String> = row.get(11)?;
    let refund_state: String = row.get(20)?;
    Ok(WithdrawalRow {
        withdrawal_id: row.get(0)?,
        wopid: wopid(&wopid_bytes)?,
        terminal_id: row.get(2)?,
        amount: amount_opt(currency, row.get(3)?, row.get(4)?)?,
        suggested_amount: amount_opt(currency, row.get(5)?, row.get(6)?)?,
        card_fees: amount(currency, row.get(7)?, row.get(8)?)?,
        status: status(&status_text)?,
        reserve_pub: reserve_pub
            .map(|b| fixed("reserve_pub", &b, EddsaPublicKey::from_slice))
            .transpose()?,
        exchange_account: exchange_account.as_deref().map(payto).transpose()?,
        provider_tx_id: row.get(12)?,
        created_at: time(row.get(13)?)?,
        selected_at: time_opt(row.get(14)?)?,
        checked_at: time_opt(row.get(15)?)?,
        finished_at: time_opt(row.get(16)?)?,
        attempts: count(row.get(17)?)?,
        next_attempt_at: time_opt(row.get(18)?)?,
        abort_reason: row.get(19)?,
        refund_state: RefundState::parse(&refund_state)?,
        refund_id: row.get(21)?,
        refund_attempts: count(row.get(22)?)?,
    })
}

pub(super) fn withdrawal_by_wopid(
    conn: &Connection,
    currency: Currency,
    w: &Wopid,
) -> Result<Option<WithdrawalRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        withdrawal_columns!(),
        " FROM withdrawals WHERE wopid = ?1"
    );
    query_opt(conn, SQL, [w.as_bytes().as_slice()], |row| {
        withdrawal_row(row, currency)
    })
}

/// Appends an audit event.
fn insert_event(
    conn: &Connection,
    withdrawal_id: i64,
    old: Option<Status>,
    new: Status,
    actor: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    execute(
        conn,
        "INSERT INTO withdrawal_events (withdrawal_id, old_status, new_status, actor, reason, \
         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            withdrawal_id,
            old.map(Status::as_str),
            new.as_str(),
            actor,
            reason,
            now.to_sql_micros()
        ],
    )?;
    Ok(())
}

pub(super) fn setup(
    tx: &mut SqliteTx<'_>,
    new: &NewWithdrawal,
) -> Result<SetupOutcome, StoreError> {
    let (amount_val, amount_frac) = cols_opt(new.amount.as_ref());
    let (suggested_val, suggested_frac) = cols_opt(new.suggested_amount.as_ref());
    let (fees_val, fees_frac) = cols(&new.card_fees);
    let inserted: Option<i64> = query_opt(
        tx,
        "INSERT INTO withdrawals (wopid, terminal_id, request_uid, request_hash, amount_val, \
         amount_frac, suggested_val, suggested_frac, card_fees_val, card_fees_frac, status, \
         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11) \
         ON CONFLICT (terminal_id, request_uid) DO NOTHING RETURNING withdrawal_id",
        params![
            new.wopid.as_bytes().as_slice(),
            new.terminal_id,
            new.request_uid,
            new.request_hash,
            amount_val,
            amount_frac,
            suggested_val,
            suggested_frac,
            fees_val,
            fees_frac,
            new.now.to_sql_micros()
        ],
        |row| Ok(row.get(0)?),
    )?;
    if let Some(id) = inserted {
        insert_event(tx, id, None, Status::Pending, "terminal", "setup", new.now)?;
        return Ok(SetupOutcome::Created(new.wopid));
    }
    let (first, hash): (Vec<u8>, Vec<u8>) = query_opt(
        tx,
        "SELECT wopid, request_hash FROM withdrawals WHERE terminal_id = ?1 AND request_uid = ?2",
        params![new.terminal_id, new.request_uid],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?
    .ok_or_else(|| corrupt("setup conflict without a row"))?;
    Ok(if hash == new.request_hash {
        SetupOutcome::Replay(wopid(&first)?)
    } else {
        SetupOutcome::Conflict
    })
}

fn reserve_taken(conn: &Connection, reserve_pub: &EddsaPublicKey) -> Result<bool, StoreError> {
    Ok(query_opt(
        conn,
        "SELECT EXISTS (SELECT 1 FROM withdrawals WHERE reserve_pub = ?1) \
             OR EXISTS (SELECT 1 FROM incoming WHERE reserve_pub = ?1)",
        [reserve_pub.as_bytes().as_slice()],
        |row| Ok(row.get::<_, bool>(0)?),
    )?
    .unwrap_or(false))
}

pub(super) fn register(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    w: &Wopid,
    registration: &Registration,
    now: Timestamp,
) -> Result<RegisterOutcome, StoreError> {
    let Some(row) = withdrawal_by_wopid(tx, currency, w)? else {
        return Ok(RegisterOutcome::NotFound);
    };
    let decision = state::decide_registration(&registration_view(&row), registration);
    if let RegistrationDecision::Select { amount } = &decision {
        if reserve_taken(tx, &registration.reserve_pub)? {
            return Ok(RegisterOutcome::ReservePubTaken);
        }
        let (val, frac) = cols(amount);
        let updated = execute(
            tx,
            "UPDATE withdrawals SET status = 'selected', reserve_pub = ?1, exchange_account = ?2, \
             amount_val = ?3, amount_frac = ?4, selected_at = ?5, \
             next_attempt_at = CASE WHEN provider_tx_id IS NULL THEN NULL ELSE ?5 END \
             WHERE withdrawal_id = ?6 AND status = 'pending'",
            params![
                registration.reserve_pub.as_bytes().as_slice(),
                registration.exchange_account,
                val,
                frac,
                now.to_sql_micros(),
                row.withdrawal_id
            ],
        )?;
        if updated != 1 {
            return Err(corrupt("pending operation vanished inside its transaction"));
        }
        insert_event(
            tx,
            row.withdrawal_id,
            Some(Status::Pending),
            Status::Selected,
            "wallet",
            "reserve registered",
            now,
        )?;
        tx.notify_with(
            TOPIC_WITHDRAWAL,
            &withdrawal_key(w),
            &selected_message(
                &registration.reserve_pub,
                amount,
                &registration.exchange_account,
            ),
        );
        if row.provider_tx_id.is_some() {
            // A card transaction reported while pending is attested from now on.
            tx.notify(TOPIC_ATTEST, "");
        }
    }
    Ok(RegisterOutcome::Decided(decision))
}

/// The audit note of a recorded card transaction.
fn check_note(status: Status, tx_id: &str) -> String {
    match status {
        Status::Aborted => format!("card transaction {tx_id} reported after abort; refund due"),
        Status::Pending => format!("card transaction {tx_id} reported before registration"),
        _ => format!("card transaction {tx_id} reported"),
    }
}

pub(super) fn check(
    tx: &mut SqliteTx<'_>,
    w: &Wopid,
    terminal_id: i64,
    tx_id: &str,
    now: Timestamp,
) -> Result<CheckOutcome, StoreError> {
    let found = query_opt(
        tx,
        "SELECT withdrawal_id, terminal_id, status, provider_tx_id FROM withdrawals \
         WHERE wopid = ?1",
        [w.as_bytes().as_slice()],
        |row| {
            let s: String = row.get(2)?;
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                status(&s)?,
                row.get::<_, Option<String>>(3)?,
            ))
        },
    )?;
    let Some((id, terminal, current, bound)) = found else {
        return Ok(CheckOutcome::NotFound);
    };
    if terminal != terminal_id {
        return Ok(CheckOutcome::NotFound);
    }
    let decision = state::decide_check(
        &CheckView {
            status: current,
            provider_transaction_id: bound,
        },
        tx_id,
    );
    let now_us = now.to_sql_micros();
    match &decision {
        CheckDecision::Record { .. } => {
            execute(
                tx,
                "UPDATE withdrawals SET provider_tx_id = ?1, checked_at = ?2, \
                 next_attempt_at = CASE WHEN status = 'selected' THEN ?2 ELSE NULL END, \
                 refund_state = CASE WHEN status = 'aborted' THEN 'due' ELSE refund_state END, \
                 refund_next_at = CASE WHEN status = 'aborted' THEN ?2 ELSE refund_next_at END \
                 WHERE withdrawal_id = ?3",
                params![tx_id, now_us, id],
            )?;
            insert_event(
                tx,
                id,
                Some(current),
                current,
                "terminal",
                &check_note(current, tx_id),
                now,
            )?;
            match current {
                Status::Selected => tx.notify(TOPIC_ATTEST, ""),
                Status::Aborted => tx.notify(TOPIC_REFUND, ""),
                _ => {}
            }
        }
        CheckDecision::RefundExtra { .. } => {
            let inserted = execute(
                tx,
                "INSERT INTO extra_payments (withdrawal_id, provider_tx_id, created_at, \
                 refund_next_at) VALUES (?1, ?2, ?3, ?3) ON CONFLICT (provider_tx_id) DO NOTHING",
                params![id, tx_id, now_us],
            )?;
            if inserted == 1 {
                insert_event(
                    tx,
                    id,
                    Some(current),
                    current,
                    "terminal",
                    &format!("further card transaction {tx_id} reported; refund due"),
                    now,
                )?;
                tx.notify(TOPIC_REFUND, "");
            }
        }
        CheckDecision::Replay { .. } => {}
    }
    Ok(CheckOutcome::Decided(decision))
}

/// Moves an operation in `from` to aborted with its audit event; a bound card transaction
/// becomes due for refund.
#[expect(
    clippy::too_many_arguments,
    reason = "one state change with its audit data"
)]
fn mark_aborted(
    tx: &mut SqliteTx<'_>,
    id: i64,
    w: &Wopid,
    from: Status,
    has_tx: bool,
    actor: &str,
    reason: &str,
    evidence: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    execute(
        tx,
        "UPDATE withdrawals SET status = 'aborted', abort_reason = ?1, finished_at = ?2, \
         evidence = COALESCE(?3, evidence), next_attempt_at = NULL, \
         refund_state = CASE WHEN provider_tx_id IS NULL THEN refund_state ELSE 'due' END, \
         refund_next_at = CASE WHEN provider_tx_id IS NULL THEN refund_next_at ELSE ?2 END \
         WHERE withdrawal_id = ?4",
        params![reason, now.to_sql_micros(), evidence, id],
    )?;
    insert_event(tx, id, Some(from), Status::Aborted, actor, reason, now)?;
    tx.notify_with(TOPIC_WITHDRAWAL, &withdrawal_key(w), ABORTED_MESSAGE);
    if has_tx {
        tx.notify(TOPIC_REFUND, "");
    }
    Ok(())
}

pub(super) fn abort(
    tx: &mut SqliteTx<'_>,
    w: &Wopid,
    request: &AbortRequest,
    now: Timestamp,
) -> Result<AbortOutcome, StoreError> {
    let found = query_opt(
        tx,
        "SELECT withdrawal_id, terminal_id, status, provider_tx_id IS NOT NULL FROM withdrawals \
         WHERE wopid = ?1",
        [w.as_bytes().as_slice()],
        |row| {
            let s: String = row.get(2)?;
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                status(&s)?,
                row.get::<_, bool>(3)?,
            ))
        },
    )?;
    let Some((id, terminal, from, has_tx)) = found else {
        return Ok(AbortOutcome::NotFound);
    };
    if request.terminal.is_some_and(|t| t != terminal) {
        return Ok(AbortOutcome::NotFound);
    }
    let aborted = abort_applies(from, request.only_selected);
    if aborted {
        mark_aborted(
            tx,
            id,
            w,
            from,
            has_tx,
            request.actor,
            &request.reason,
            request.evidence.as_deref(),
            now,
        )?;
    }
    Ok(AbortOutcome::Decided { from, aborted })
}

pub(super) fn expire(
    tx: &mut SqliteTx<'_>,
    pending_before: Timestamp,
    selected_before: Timestamp,
    limit: u32,
    now: Timestamp,
) -> Result<Vec<(Wopid, Status)>, StoreError> {
    let due = query_all(
        tx,
        "SELECT withdrawal_id, wopid, status, provider_tx_id IS NOT NULL FROM withdrawals \
         WHERE (status = 'pending' AND created_at <= ?1) \
            OR (status = 'selected' AND provider_tx_id IS NULL AND selected_at <= ?2) \
         ORDER BY withdrawal_id LIMIT ?3",
        params![
            pending_before.to_sql_micros(),
            selected_before.to_sql_micros(),
            limit
        ],
        |row| {
            let w: Vec<u8> = row.get(1)?;
            let s: String = row.get(2)?;
            Ok((
                row.get::<_, i64>(0)?,
                wopid(&w)?,
                status(&s)?,
                row.get::<_, bool>(3)?,
            ))
        },
    )?;
    let mut expired = Vec::with_capacity(due.len());
    for (id, w, from, has_tx) in due {
        let reason = format!("expired while {from}");
        mark_aborted(tx, id, &w, from, has_tx, "expiry", &reason, None, now)?;
        expired.push((w, from));
    }
    Ok(expired)
}

pub(super) fn oldest_open(
    conn: &Connection,
) -> Result<(Option<Timestamp>, Option<Timestamp>), StoreError> {
    let (p, s) = query_opt(
        conn,
        "SELECT (SELECT MIN(created_at) FROM withdrawals WHERE status = 'pending'), \
                (SELECT MIN(selected_at) FROM withdrawals \
                  WHERE status = 'selected' AND provider_tx_id IS NULL)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?
    .unwrap_or((None, None));
    Ok((time_opt(p)?, time_opt(s)?))
}

pub(super) fn claim_attestations(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    now: Timestamp,
    limit: u32,
    lease_until: Timestamp,
) -> Result<Claimed, StoreError> {
    // The first `limit + 1` scheduled operations in order: the due ones among the first
    // `limit` are claimed, the first one left tells when the next attempt falls due.
    let scheduled = query_all(
        tx,
        "SELECT withdrawal_id, next_attempt_at FROM withdrawals \
         WHERE status = 'selected' AND provider_tx_id IS NOT NULL AND next_attempt_at IS NOT NULL \
         ORDER BY next_attempt_at LIMIT ?1",
        [i64::from(limit) + 1],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
    )?;
    let mut claim = Vec::new();
    let mut next_due = None;
    for (id, at) in scheduled {
        if claim.len() < limit as usize && at <= now.to_sql_micros() {
            claim.push(id);
        } else {
            next_due = Some(time(at)?);
            break;
        }
    }
    const CLAIM: &str = concat!(
        "UPDATE withdrawals SET next_attempt_at = ?1 WHERE withdrawal_id = ?2 RETURNING ",
        withdrawal_columns!()
    );
    let mut rows = Vec::with_capacity(claim.len());
    for id in claim {
        if let Some(row) = query_opt(tx, CLAIM, params![lease_until.to_sql_micros(), id], |row| {
            withdrawal_row(row, currency)
        })? {
            rows.push(row);
        }
    }
    Ok(Claimed { rows, next_due })
}

pub(super) fn confirm(
    tx: &mut SqliteTx<'_>,
    withdrawal_id: i64,
    debit_account: &str,
    evidence: &str,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let now_us = now.to_sql_micros();
    let updated = query_opt(
        tx,
        "UPDATE withdrawals SET status = 'confirmed', finished_at = ?1, evidence = ?2, \
         next_attempt_at = NULL WHERE withdrawal_id = ?3 AND status = 'selected' \
         RETURNING wopid, reserve_pub, amount_val, amount_frac",
        params![now_us, evidence, withdrawal_id],
        |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        },
    )?;
    let Some((w, reserve_pub, val, frac)) = updated else {
        return Ok(None);
    };
    let row_id: i64 = query_opt(
        tx,
        "INSERT INTO incoming (withdrawal_id, reserve_pub, amount_val, amount_frac, \
         debit_account, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING row_id",
        params![withdrawal_id, reserve_pub, val, frac, debit_account, now_us],
        |row| Ok(row.get(0)?),
    )?
    .ok_or_else(|| corrupt("incoming insert returned nothing"))?;
    insert_event(
        tx,
        withdrawal_id,
        Some(Status::Selected),
        Status::Confirmed,
        "attestation",
        "card payment attested",
        now,
    )?;
    tx.notify_with(
        TOPIC_WITHDRAWAL,
        &withdrawal_key(&wopid(&w)?),
        CONFIRMED_MESSAGE,
    );
    tx.notify(TOPIC_INCOMING, "");
    Ok(Some(row_id))
}

pub(super) fn reschedule(
    tx: &mut SqliteTx<'_>,
    withdrawal_id: i64,
    attempts: u32,
    next_at: Timestamp,
    note: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let updated = execute(
        tx,
        "UPDATE withdrawals SET attempts = ?1, next_attempt_at = ?2 \
         WHERE withdrawal_id = ?3 AND status = 'selected'",
        params![attempts, next_at.to_sql_micros(), withdrawal_id],
    )?;
    if updated == 1 {
        insert_event(
            tx,
            withdrawal_id,
            Some(Status::Selected),
            Status::Selected,
            "attestation",
            note,
            now,
        )?;
    }
    Ok(())
}

pub(super) fn events(conn: &Connection, withdrawal_id: i64) -> Result<Vec<EventRow>, StoreError> {
    query_all(
        conn,
        "SELECT old_status, new_status, actor, reason, created_at FROM withdrawal_events \
         WHERE withdrawal_id = ?1 ORDER BY event_id",
        [withdrawal_id],
        |row| {
            let old: Option<String> = row.get(0)?;
            let new: String = row.get(1)?;
            Ok(EventRow {
                old_status: old.as_deref().map(status).transpose()?,
                new_status: status(&new)?,
                actor: row.get(2)?,
                reason: row.get(3)?,
                created_at: time(row.get(4)?)?,
            })
        },
    )
}

// ----- incoming history -----

fn incoming_row(row: &Row<'_>, currency: Currency) -> Result<IncomingRow, StoreError> {
    let key: Vec<u8> = row.get(1)?;
    let debit: String = row.get(4)?;
    Ok(IncomingRow {
        row_id: row.get(0)?,
        reserve_pub: fixed("reserve_pub", &key, EddsaPublicKey::from_slice)?,
        amount: amount(currency, row.get(2)?, row.get(3)?)?,
        debit_account: payto(&debit)?,
        created_at: time(row.get(5)?)?,
    })
}

pub(super) fn incoming_history(
    conn: &Connection,
    currency: Currency,
    limit: i64,
    offset: Option<i64>,
) -> Result<Vec<IncomingRow>, StoreError> {
    if limit >= 0 {
        query_all(
            conn,
            "SELECT row_id, reserve_pub, amount_val, amount_frac, debit_account, created_at \
             FROM incoming WHERE row_id > ?1 ORDER BY row_id ASC LIMIT ?2",
            params![offset.unwrap_or(0), limit],
            |row| incoming_row(row, currency),
        )
    } else {
        query_all(
            conn,
            "SELECT row_id, reserve_pub, amount_val, amount_frac, debit_account, created_at \
             FROM incoming WHERE row_id < ?1 ORDER BY row_id DESC LIMIT ?2",
            params![offset.unwrap_or(i64::MAX), limit.saturating_neg()],
            |row| incoming_row(row, currency),
        )
    }
}

pub(super) fn add_incoming(
    tx: &mut SqliteTx<'_>,
    reserve_pub: &EddsaPublicKey,
    amount: &Amount,
    debit_account: &str,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    if reserve_taken(tx, reserve_pub)? {
        return Ok(None);
    }
    let (val, frac) = cols(amount);
    let row_id = query_opt(
        tx,
        "INSERT INTO incoming (withdrawal_id, reserve_pub, amount_val, amount_frac, \
         debit_account, created_at) VALUES (NULL, ?1, ?2, ?3, ?4, ?5) RETURNING row_id",
        params![
            reserve_pub.as_bytes().as_slice(),
            val,
            frac,
            debit_account,
            now.to_sql_micros()
        ],
        |row| Ok(row.get::<_, i64>(0)?),
    )?;
    if row_id.is_some() {
        tx.notify(TOPIC_INCOMING, "");
    }
    Ok(row_id)
}

// ----- transfers and refunds -----

macro_rules! transfer_columns {
    () => {
        "row_id, request_uid, amount_val, amount_frac, wtid, exchange_base_url, credit_account, \
         target_tx_id, created_at, status, refund_id, failure, attempts"
    };
}

/// A transfer from the columns of `transfer_columns!` starting at `at`.
fn transfer_row(row: &Row<'_>, at: usize, currency: Currency) -> Result<TransferRow, StoreError> {
    let uid: Vec<u8> = row.get(at + 1)?;
    let wtid: Vec<u8> = row.get(at + 4)?;
    let base: String = row.get(at + 5)?;
    let credit: String = row.get(at + 6)?;
    let status_text: String = row.get(at + 9)?;
    Ok(TransferRow {
        row_id: row.get(at)?,
        request_uid: fixed("request_uid", &uid, HashCode::from_slice)?,
        amount: amount(currency, row.get(at + 2)?, row.get(at + 3)?)?,
        wtid: fixed("wtid", &wtid, ShortHashCode::from_slice)?,
        exchange_base_url: base_url(&base)?,
        credit_account: payto(&credit)?,
        target_tx_id: row.get(at + 7)?,
        created_at: time(row.get(at + 8)?)?,
        status: TransferStatus::parse(&status_text)?,
        refund_id: row.get(at + 10)?,
        failure: row.get(at + 11)?,
        attempts: count(row.get(at + 12)?)?,
    })
}

/// An amount from separately summed value and fraction columns (fractions may carry).
fn summed(currency: Currency, val: i64, frac: i64) -> Result<Amount, StoreError> {
    let (Ok(val), Ok(frac)) = (u128::try_from(val), u128::try_from(frac)) else {
        return Err(corrupt("negative sum of amounts"));
    };
    units(currency, val * 100_000_000 + frac)
}

fn replay(conn: &Connection, new: &NewTransfer) -> Result<Option<AcceptOutcome>, StoreError> {
    let found = query_opt(
        conn,
        "SELECT row_id, request_hash, created_at FROM transfers WHERE request_uid = ?1",
        [new.request_uid.as_bytes().as_slice()],
        |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, i64>(2)?,
            ))
        },
    )?;
    found
        .map(|(row_id, hash, created_at)| {
            Ok(if hash == new.request_hash {
                AcceptOutcome::Accepted {
                    row_id,
                    created_at: time(created_at)?,
                    new: false,
                }
            } else {
                AcceptOutcome::RequestUidReuse
            })
        })
        .transpose()
}

pub(super) fn accept_transfer(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    new: &NewTransfer,
) -> Result<AcceptOutcome, StoreError> {
    if let Some(earlier) = replay(tx, new)? {
        return Ok(earlier);
    }
    let wtid_used = query_opt(
        tx,
        "SELECT 1 FROM transfers WHERE wtid = ?1",
        [new.wtid.as_bytes().as_slice()],
        |_| Ok(()),
    )?;
    if wtid_used.is_some() {
        return Ok(AcceptOutcome::WtidReuse);
    }
    let Some(tx_id) = new.target_tx_id.as_deref() else {
        return Ok(AcceptOutcome::UnknownCardTransaction);
    };
    let credited = query_opt(
        tx,
        "SELECT i.amount_val, i.amount_frac FROM incoming i \
         JOIN withdrawals w ON w.withdrawal_id = i.withdrawal_id WHERE w.provider_tx_id = ?1",
        [tx_id],
        |row| amount(currency, row.get(0)?, row.get(1)?),
    )?;
    let Some(credited) = credited else {
        return Ok(AcceptOutcome::UnknownCardTransaction);
    };
    let promised = query_opt(
        tx,
        "SELECT COALESCE(SUM(amount_val), 0), COALESCE(SUM(amount_frac), 0) FROM transfers \
         WHERE target_tx_id = ?1 AND status <> 'failed'",
        [tx_id],
        |row| summed(currency, row.get(0)?, row.get(1)?),
    )?
    .unwrap_or_else(|| Amount::zero(&currency));
    let left = credited
        .checked_sub(&promised)
        .unwrap_or_else(|_| Amount::zero(&currency));
    if new.amount > left {
        return Ok(AcceptOutcome::ExceedsPayment { left });
    }
    let (val, frac) = cols(&new.amount);
    let now = new.now.to_sql_micros();
    let row_id: i64 = query_opt(
        tx,
        "INSERT INTO transfers (request_uid, request_hash, amount_val, amount_frac, wtid, \
         exchange_base_url, credit_account, target_tx_id, created_at, status, next_attempt_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?9) RETURNING row_id",
        params![
            new.request_uid.as_bytes().as_slice(),
            new.request_hash,
            val,
            frac,
            new.wtid.as_bytes().as_slice(),
            new.exchange_base_url.as_str(),
            new.credit_account.to_string(),
            tx_id,
            now
        ],
        |row| Ok(row.get(0)?),
    )?
    .ok_or_else(|| corrupt("transfer insert returned nothing"))?;
    tx.notify(TOPIC_REFUND, "");
    Ok(AcceptOutcome::Accepted {
        row_id,
        created_at: new.now,
        new: true,
    })
}

pub(super) fn transfer_page(
    conn: &Connection,
    currency: Currency,
    ascending: bool,
    start: i64,
    count: i64,
    state: Option<TransferState>,
) -> Result<Vec<TransferRow>, StoreError> {
    const ASC: &str = concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM transfers WHERE row_id > ?1 AND (?3 IS NULL OR status = ?3) \
         AND (?4 IS NULL OR (failure IS NOT NULL) = ?4) ORDER BY row_id ASC LIMIT ?2"
    );
    const DESC: &str = concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM transfers WHERE row_id < ?1 AND (?3 IS NULL OR status = ?3) \
         AND (?4 IS NULL OR (failure IS NOT NULL) = ?4) ORDER BY row_id DESC LIMIT ?2"
    );
    let (status_is, failed) = state_filter(state);
    query_all(
        conn,
        if ascending { ASC } else { DESC },
        params![start, count, status_is, failed],
        |row| transfer_row(row, 0, currency),
    )
}

pub(super) fn outgoing_page(
    conn: &Connection,
    currency: Currency,
    ascending: bool,
    start: i64,
    count: i64,
) -> Result<Vec<OutgoingRow>, StoreError> {
    const ASC: &str = concat!(
        "SELECT o.row_id, o.created_at, t.* FROM outgoing o JOIN (SELECT ",
        transfer_columns!(),
        " FROM transfers) t ON t.row_id = o.transfer_id \
         WHERE o.row_id > ?1 ORDER BY o.row_id ASC LIMIT ?2"
    );
    const DESC: &str = concat!(
        "SELECT o.row_id, o.created_at, t.* FROM outgoing o JOIN (SELECT ",
        transfer_columns!(),
        " FROM transfers) t ON t.row_id = o.transfer_id \
         WHERE o.row_id < ?1 ORDER BY o.row_id DESC LIMIT ?2"
    );
    query_all(
        conn,
        if ascending { ASC } else { DESC },
        params![start, count],
        |row| {
            Ok(OutgoingRow {
                row_id: row.get(0)?,
                date: time(row.get(1)?)?,
                transfer: transfer_row(row, 2, currency)?,
            })
        },
    )
}

pub(super) fn transfer(
    conn: &Connection,
    currency: Currency,
    row_id: i64,
) -> Result<Option<TransferRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM transfers WHERE row_id = ?1"
    );
    query_opt(conn, SQL, [row_id], |row| transfer_row(row, 0, currency))
}

pub(super) fn refund_work(
    conn: &Connection,
    currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<RefundWork, StoreError> {
    const TRANSFERS: &str = concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM transfers WHERE status = 'pending' AND next_attempt_at <= ?1 \
         ORDER BY next_attempt_at LIMIT ?2"
    );
    const REFUNDS: &str = concat!(
        "SELECT ",
        withdrawal_columns!(),
        " FROM withdrawals WHERE refund_state = 'due' AND refund_next_at <= ?1 \
         ORDER BY refund_next_at LIMIT ?2"
    );
    let now = now.to_sql_micros();
    Ok(RefundWork {
        transfers: query_all(conn, TRANSFERS, params![now, limit], |row| {
            transfer_row(row, 0, currency)
        })?,
        refunds: query_all(conn, REFUNDS, params![now, limit], |row| {
            withdrawal_row(row, currency)
        })?,
        extras: query_all(
            conn,
            "SELECT e.extra_id, e.provider_tx_id, e.refund_attempts, w.withdrawal_id, w.wopid, \
             w.status FROM extra_payments e JOIN withdrawals w ON w.withdrawal_id = e.withdrawal_id \
             WHERE e.refund_state = 'due' AND e.refund_next_at <= ?1 \
             ORDER BY e.refund_next_at LIMIT ?2",
            params![now, limit],
            |row| {
                let w: Vec<u8> = row.get(4)?;
                let s: String = row.get(5)?;
                Ok(ExtraPaymentRow {
                    extra_id: row.get(0)?,
                    provider_tx_id: row.get(1)?,
                    refund_attempts: count(row.get(2)?)?,
                    withdrawal_id: row.get(3)?,
                    wopid: wopid(&w)?,
                    status: status(&s)?,
                })
            },
        )?,
    })
}

pub(super) fn next_refund_at(conn: &Connection) -> Result<Option<Timestamp>, StoreError> {
    let t: Option<i64> = query_opt(
        conn,
        "SELECT MIN(t) FROM ( \
           SELECT MIN(next_attempt_at) AS t FROM transfers WHERE status = 'pending' \
           UNION ALL SELECT MIN(refund_next_at) FROM withdrawals WHERE refund_state = 'due' \
           UNION ALL SELECT MIN(refund_next_at) FROM extra_payments WHERE refund_state = 'due')",
        [],
        |row| Ok(row.get(0)?),
    )?
    .flatten();
    time_opt(t)
}

pub(super) fn refund_room(
    conn: &Connection,
    currency: Currency,
    tx_id: &str,
    except_row: i64,
) -> Result<(Option<Amount>, Amount), StoreError> {
    query_opt(
        conn,
        "SELECT c.amount_val, c.amount_frac, s.v, s.f FROM \
           (SELECT COALESCE(SUM(amount_val), 0) AS v, COALESCE(SUM(amount_frac), 0) AS f \
              FROM transfers WHERE target_tx_id = ?1 AND status = 'refunded' AND row_id <> ?2) s \
         LEFT JOIN (SELECT i.amount_val, i.amount_frac FROM incoming i \
                      JOIN withdrawals w ON w.withdrawal_id = i.withdrawal_id \
                     WHERE w.provider_tx_id = ?1) c ON 1 = 1",
        params![tx_id, except_row],
        |row| {
            Ok((
                amount_opt(currency, row.get(0)?, row.get(1)?)?,
                summed(currency, row.get(2)?, row.get(3)?)?,
            ))
        },
    )?
    .ok_or_else(|| corrupt("refund room query returned nothing"))
}

pub(super) fn settle_refund(
    tx: &mut SqliteTx<'_>,
    withdrawal_id: i64,
    s: &RefundSettlement,
    now: Timestamp,
) -> Result<(), StoreError> {
    let current = query_opt(
        tx,
        "UPDATE withdrawals SET refund_state = ?1, refund_id = COALESCE(?2, refund_id), \
         refund_next_at = ?3, refund_attempts = refund_attempts + 1 \
         WHERE withdrawal_id = ?4 AND refund_state = 'due' RETURNING status",
        params![
            s.state.as_str(),
            s.refund_id,
            s.next.map(|t| t.to_sql_micros()),
            withdrawal_id
        ],
        |row| status(&row.get::<_, String>(0)?),
    )?;
    if let Some(current) = current {
        insert_event(
            tx,
            withdrawal_id,
            Some(current),
            current,
            "refund",
            &s.note,
            now,
        )?;
    }
    Ok(())
}

pub(super) fn settle_extra_refund(
    tx: &mut SqliteTx<'_>,
    extra_id: i64,
    s: &RefundSettlement,
    now: Timestamp,
) -> Result<(), StoreError> {
    let withdrawal_id: Option<i64> = query_opt(
        tx,
        "UPDATE extra_payments SET refund_state = ?1, refund_id = COALESCE(?2, refund_id), \
         refund_next_at = ?3, refund_attempts = refund_attempts + 1 \
         WHERE extra_id = ?4 AND refund_state = 'due' RETURNING withdrawal_id",
        params![
            s.state.as_str(),
            s.refund_id,
            s.next.map(|t| t.to_sql_micros()),
            extra_id
        ],
        |row| Ok(row.get(0)?),
    )?;
    let Some(withdrawal_id) = withdrawal_id else {
        return Ok(());
    };
    let current = query_opt(
        tx,
        "SELECT status FROM withdrawals WHERE withdrawal_id = ?1",
        [withdrawal_id],
        |row| status(&row.get::<_, String>(0)?),
    )?
    .ok_or_else(|| corrupt("extra payment of a missing operation"))?;
    insert_event(
        tx,
        withdrawal_id,
        Some(current),
        current,
        "refund",
        &s.note,
        now,
    )
}

pub(super) fn settle_transfer(
    tx: &mut SqliteTx<'_>,
    row_id: i64,
    s: &TransferSettlement,
    now: Timestamp,
) -> Result<(), StoreError> {
    let updated = execute(
        tx,
        "UPDATE transfers SET status = ?1, refund_id = COALESCE(?2, refund_id), failure = ?3, \
         next_attempt_at = ?4, attempts = attempts + 1 WHERE row_id = ?5 AND status = 'pending'",
        params![
            s.status.as_str(),
            s.refund_id,
            s.failure,
            s.next.map(|t| t.to_sql_micros()),
            row_id
        ],
    )?;
    if updated == 1 && s.status == TransferStatus::Refunded {
        execute(
            tx,
            "INSERT INTO outgoing (transfer_id, created_at) VALUES (?1, ?2)",
            params![row_id, now.to_sql_micros()],
        )?;
        tx.notify(TOPIC_OUTGOING, "");
    }
    Ok(())
}

// ----- terminals -----

fn terminal_row(row: &Row<'_>) -> Result<TerminalRow, StoreError> {
    Ok(TerminalRow {
        terminal_id: row.get(0)?,
        name: row.get(1)?,
        secret_hash: row.get(2)?,
        active: row.get(3)?,
        created_at: time(row.get(4)?)?,
    })
}

pub(super) fn insert_terminal(
    tx: &mut SqliteTx<'_>,
    name: &str,
    secret_hash: &str,
    now: Timestamp,
) -> Result<i64, StoreError> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO terminals (name, secret_hash, active, created_at) \
             VALUES (?1, ?2, 1, ?3) RETURNING terminal_id",
        )?
        .query_row(params![name, secret_hash, now.to_sql_micros()], |row| {
            row.get(0)
        })?)
}

pub(super) fn terminal(conn: &Connection, id: i64) -> Result<Option<TerminalRow>, StoreError> {
    query_opt(
        conn,
        "SELECT terminal_id, name, secret_hash, active, created_at FROM terminals \
         WHERE terminal_id = ?1",
        [id],
        terminal_row,
    )
}

pub(super) fn terminals(conn: &Connection) -> Result<Vec<TerminalRow>, StoreError> {
    query_all(
        conn,
        "SELECT terminal_id, name, secret_hash, active, created_at FROM terminals \
         ORDER BY terminal_id",
        [],
        terminal_row,
    )
}

pub(super) fn deactivate_terminal(tx: &mut SqliteTx<'_>, id: i64) -> Result<bool, StoreError> {
    let found = tx
        .prepare_cached("UPDATE terminals SET active = 0 WHERE terminal_id = ?1")?
        .execute([id])?
        == 1;
    if found {
        tx.notify(TOPIC_TERMINAL, &id.to_string());
    }
    Ok(found)
}
