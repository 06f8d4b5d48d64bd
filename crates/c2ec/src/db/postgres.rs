//! C2EC's storage on PostgreSQL (typed sqlx): every operation is ONE statement on the pool (its
//! own implicit transaction); each state change is one call (`SELECT … FROM f(…)`) of a
//! PL/pgSQL function of `migrations/postgres/0001_init.sql`, or one CTE, which locks, decides
//! and writes the audit event. The hot ones (registration, check, abort, confirmation) return
//! their notifications, sent once they have committed ([`PgDb::send_notifications`]; the
//! migration explains why); the others notify inside. They answer with the row as it was
//! before; the rules of [`crate::state`] decide the answer from it and must agree with what the
//! database did.

use cardcash_api::wire_gateway::TransferState;
use cardcash_store::columns::{pg_amount, pg_amount_opt};
use cardcash_store::{PgDb, StoreError};
use cardcash_util::amount::MAX_VALUE;
use cardcash_util::{Amount, Currency, EddsaPublicKey, HashCode, ShortHashCode, Timestamp, Wopid};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::terminal::TerminalRow;
use super::transfer::{
    AcceptOutcome, NewTransfer, OutgoingRow, RefundSettlement, RefundWork, TransferRow,
    TransferSettlement, TransferStatus, state_filter,
};
use super::withdrawal::{
    AbortOutcome, AbortRequest, CheckOutcome, Claimed, EventRow, ExtraPaymentRow, IncomingRow,
    NewWithdrawal, RefundState, RegisterOutcome, SetupOutcome, WithdrawalRow, abort_applies,
};
use super::{
    base_url, cols, cols_opt, corrupt, count, disagreement, fixed, payto, status, time, time_opt,
    units, wopid,
};
use crate::state::{
    self, CheckDecision, CheckView, Registration, RegistrationDecision, RegistrationView, Status,
};

pub(super) async fn ping(db: &PgDb) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(db.pool()).await?;
    Ok(())
}

fn int(row: &PgRow, column: &str) -> Result<u32, StoreError> {
    count(i64::from(row.try_get::<i32, _>(column)?))
}

fn bytes_opt<T>(
    row: &PgRow,
    column: &str,
    from: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    let b: Option<&[u8]> = row.try_get(column)?;
    b.map(|b| fixed(column, b, from)).transpose()
}

fn outcome(row: &PgRow) -> Result<&str, StoreError> {
    Ok(row.try_get("out_outcome")?)
}

/// Sends the notifications a state change returned (`out_notify`) now that it has committed:
/// the function did not notify itself (the migration explains why).
fn send_notifications(db: &PgDb, row: &PgRow) -> Result<(), StoreError> {
    let payloads: Option<Vec<String>> = row.try_get("out_notify")?;
    db.send_notifications(payloads.into_iter().flatten());
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

fn withdrawal_row(row: &PgRow, currency: Currency) -> Result<WithdrawalRow, StoreError> {
    let exchange_account: Option<&str> = row.try_get("exchange_account")?;
    Ok(WithdrawalRow {
        withdrawal_id: row.try_get("withdrawal_id")?,
        wopid: wopid(row.try_get("wopid")?)?,
        terminal_id: row.try_get("terminal_id")?,
        amount: pg_amount_opt(row, "amount", currency)?,
        suggested_amount: pg_amount_opt(row, "suggested", currency)?,
        card_fees: pg_amount(row, "card_fees", currency)?,
        status: status(row.try_get("status")?)?,
        reserve_pub: bytes_opt(row, "reserve_pub", EddsaPublicKey::from_slice)?,
        exchange_account: exchange_account.map(payto).transpose()?,
        provider_tx_id: row.try_get("provider_tx_id")?,
        created_at: time(row.try_get("created_at")?)?,
        selected_at: time_opt(row.try_get("selected_at")?)?,
        checked_at: time_opt(row.try_get("checked_at")?)?,
        finished_at: time_opt(row.try_get("finished_at")?)?,
        attempts: int(row, "attempts")?,
        next_attempt_at: time_opt(row.try_get("next_attempt_at")?)?,
        abort_reason: row.try_get("abort_reason")?,
        refund_state: RefundState::parse(row.try_get("refund_state")?)?,
        refund_id: row.try_get("refund_id")?,
        refund_attempts: int(row, "refund_attempts")?,
    })
}

pub(super) async fn withdrawal(
    db: &PgDb,
    currency: Currency,
    w: &Wopid,
) -> Result<Option<WithdrawalRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        withdrawal_columns!(),
        " FROM withdrawals WHERE wopid = $1"
    );
    sqlx::query(SQL)
        .bind(w.as_bytes().as_slice())
        .fetch_optional(db.pool())
        .await?
        .map(|row| withdrawal_row(&row, currency))
        .transpose()
}

pub(super) async fn setup(db: &PgDb, new: &NewWithdrawal) -> Result<SetupOutcome, StoreError> {
    let (amount_val, amount_frac) = cols_opt(new.amount.as_ref());
    let (suggested_val, suggested_frac) = cols_opt(new.suggested_amount.as_ref());
    let (fees_val, fees_frac) = cols(&new.card_fees);
    let row = sqlx::query(
        "SELECT out_outcome, out_wopid \
         FROM c2ec_setup($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(new.wopid.as_bytes().as_slice())
    .bind(new.terminal_id)
    .bind(&new.request_uid)
    .bind(&new.request_hash)
    .bind(amount_val)
    .bind(amount_frac)
    .bind(suggested_val)
    .bind(suggested_frac)
    .bind(fees_val)
    .bind(fees_frac)
    .bind(new.now.to_sql_micros())
    .fetch_one(db.pool())
    .await?;
    match outcome(&row)? {
        "created" => Ok(SetupOutcome::Created(new.wopid)),
        "replay" => Ok(SetupOutcome::Replay(wopid(row.try_get("out_wopid")?)?)),
        "conflict" => Ok(SetupOutcome::Conflict),
        other => Err(corrupt(format!("setup outcome {other:?}"))),
    }
}

pub(super) async fn register(
    db: &PgDb,
    currency: Currency,
    w: &Wopid,
    registration: &Registration,
    now: Timestamp,
) -> Result<RegisterOutcome, StoreError> {
    let (amount_val, amount_frac) = cols_opt(registration.amount.as_ref());
    let row = sqlx::query("SELECT * FROM c2ec_register($1, $2, $3, $4, $5, $6, $7)")
        .bind(w.as_bytes().as_slice())
        .bind(registration.reserve_pub.as_bytes().as_slice())
        .bind(&registration.exchange_account)
        .bind(amount_val)
        .bind(amount_frac)
        .bind(i64::try_from(MAX_VALUE).unwrap_or(i64::MAX))
        .bind(now.to_sql_micros())
        .fetch_one(db.pool())
        .await?;
    send_notifications(db, &row)?;
    let done = outcome(&row)?;
    if done == "not_found" {
        return Ok(RegisterOutcome::NotFound);
    }
    let exchange_account: Option<&str> = row.try_get("out_exchange_account")?;
    let before = RegistrationView {
        status: status(row.try_get("out_status")?)?,
        reserve_pub: bytes_opt(&row, "out_reserve_pub", EddsaPublicKey::from_slice)?,
        exchange_account: exchange_account
            .map(payto)
            .transpose()?
            .map(|p| p.to_string()),
        amount: pg_amount_opt(&row, "out_amount", currency)?,
        suggested_amount: pg_amount_opt(&row, "out_suggested", currency)?,
        card_fees: pg_amount(&row, "out_card_fees", currency)?,
    };
    let decision = state::decide_registration(&before, registration);
    match (done, &decision) {
        ("selected", RegistrationDecision::Select { .. })
        | ("unchanged", RegistrationDecision::Replay { .. } | RegistrationDecision::Conflict(_)) => {
            Ok(RegisterOutcome::Decided(decision))
        }
        ("reserve_taken", RegistrationDecision::Select { .. }) => {
            Ok(RegisterOutcome::ReservePubTaken)
        }
        (other, _) => Err(disagreement("registration", other, &decision)),
    }
}

pub(super) async fn check(
    db: &PgDb,
    w: &Wopid,
    terminal_id: i64,
    tx_id: &str,
    now: Timestamp,
) -> Result<CheckOutcome, StoreError> {
    let row = sqlx::query("SELECT * FROM c2ec_check($1, $2, $3, $4)")
        .bind(w.as_bytes().as_slice())
        .bind(terminal_id)
        .bind(tx_id)
        .bind(now.to_sql_micros())
        .fetch_one(db.pool())
        .await?;
    send_notifications(db, &row)?;
    let done = outcome(&row)?;
    if done == "not_found" {
        return Ok(CheckOutcome::NotFound);
    }
    let before = CheckView {
        status: status(row.try_get("out_status")?)?,
        provider_transaction_id: row.try_get("out_provider_tx_id")?,
    };
    let decision = state::decide_check(&before, tx_id);
    match (done, &decision) {
        ("recorded", CheckDecision::Record { .. })
        | ("unchanged", CheckDecision::Replay { .. })
        | ("extra", CheckDecision::RefundExtra { .. }) => Ok(CheckOutcome::Decided(decision)),
        (other, _) => Err(disagreement("check", other, &decision)),
    }
}

pub(super) async fn abort(
    db: &PgDb,
    w: &Wopid,
    request: &AbortRequest,
    now: Timestamp,
) -> Result<AbortOutcome, StoreError> {
    let row = sqlx::query("SELECT * FROM c2ec_abort($1, $2, $3, $4, $5, $6, $7)")
        .bind(w.as_bytes().as_slice())
        .bind(request.terminal)
        .bind(request.only_selected)
        .bind(request.actor)
        .bind(&request.reason)
        .bind(request.evidence.as_deref())
        .bind(now.to_sql_micros())
        .fetch_one(db.pool())
        .await?;
    send_notifications(db, &row)?;
    let done = outcome(&row)?;
    if done == "not_found" {
        return Ok(AbortOutcome::NotFound);
    }
    let from = status(row.try_get("out_status")?)?;
    let expected = abort_applies(from, request.only_selected);
    match (done, expected) {
        ("aborted", true) => Ok(AbortOutcome::Decided {
            from,
            aborted: true,
        }),
        ("unchanged", false) => Ok(AbortOutcome::Decided {
            from,
            aborted: false,
        }),
        (other, _) => Err(disagreement("abort", other, state::decide_abort(from))),
    }
}

pub(super) async fn expire(
    db: &PgDb,
    pending_before: Timestamp,
    selected_before: Timestamp,
    limit: u32,
    now: Timestamp,
) -> Result<Vec<(Wopid, Status)>, StoreError> {
    sqlx::query("SELECT out_wopid, out_status FROM c2ec_expire($1, $2, $3, $4, $5)")
        .bind(pending_before.to_sql_micros())
        .bind(selected_before.to_sql_micros())
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .bind(now.to_sql_micros())
        .bind(db.channel())
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| {
            Ok((
                wopid(row.try_get("out_wopid")?)?,
                status(row.try_get("out_status")?)?,
            ))
        })
        .collect()
}

pub(super) async fn oldest_open(
    db: &PgDb,
) -> Result<(Option<Timestamp>, Option<Timestamp>), StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT MIN(created_at) FROM withdrawals WHERE status = 'pending') AS p, \
                (SELECT MIN(selected_at) FROM withdrawals \
                  WHERE status = 'selected' AND provider_tx_id IS NULL) AS s",
    )
    .fetch_one(db.pool())
    .await?;
    Ok((time_opt(row.try_get("p")?)?, time_opt(row.try_get("s")?)?))
}

pub(super) async fn claim_attestations(
    db: &PgDb,
    currency: Currency,
    now: Timestamp,
    limit: u32,
    lease_until: Timestamp,
) -> Result<Claimed, StoreError> {
    // One statement: lock the due rows no other worker holds, push them past the lease, and
    // tell when the first operation left over falls due. Always returns at least one row (the
    // next due time); claimed operations fill the other columns.
    const SQL: &str = "WITH due AS ( \
           SELECT withdrawal_id FROM withdrawals \
            WHERE status = 'selected' AND provider_tx_id IS NOT NULL AND next_attempt_at <= $1 \
            ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED), \
         claimed AS ( \
           UPDATE withdrawals w SET next_attempt_at = $3 FROM due \
            WHERE w.withdrawal_id = due.withdrawal_id RETURNING w.*), \
         nd AS ( \
           SELECT MIN(next_attempt_at) AS next_due FROM withdrawals \
            WHERE status = 'selected' AND provider_tx_id IS NOT NULL \
              AND withdrawal_id NOT IN (SELECT withdrawal_id FROM due)) \
         SELECT nd.next_due, claimed.* FROM nd LEFT JOIN claimed ON TRUE";
    let found = sqlx::query(SQL)
        .bind(now.to_sql_micros())
        .bind(i64::from(limit))
        .bind(lease_until.to_sql_micros())
        .fetch_all(db.pool())
        .await?;
    let mut next_due = None;
    let mut rows = Vec::with_capacity(found.len());
    for row in &found {
        next_due = time_opt(row.try_get("next_due")?)?;
        if row.try_get::<Option<i64>, _>("withdrawal_id")?.is_some() {
            rows.push(withdrawal_row(row, currency)?);
        }
    }
    Ok(Claimed { rows, next_due })
}

pub(super) async fn confirm(
    db: &PgDb,
    withdrawal_id: i64,
    debit_account: &str,
    evidence: &str,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT * FROM c2ec_confirm($1, $2, $3, $4)")
        .bind(withdrawal_id)
        .bind(debit_account)
        .bind(evidence)
        .bind(now.to_sql_micros())
        .fetch_one(db.pool())
        .await?;
    send_notifications(db, &row)?;
    Ok(row.try_get("out_row_id")?)
}

pub(super) async fn reschedule(
    db: &PgDb,
    withdrawal_id: i64,
    attempts: u32,
    next_at: Timestamp,
    note: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "WITH u AS ( \
           UPDATE withdrawals SET attempts = $1, next_attempt_at = $2 \
            WHERE withdrawal_id = $3 AND status = 'selected' RETURNING withdrawal_id) \
         INSERT INTO withdrawal_events (withdrawal_id, old_status, new_status, actor, reason, \
                                        created_at) \
         SELECT withdrawal_id, 'selected', 'selected', 'attestation', $4, $5 FROM u",
    )
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .bind(next_at.to_sql_micros())
    .bind(withdrawal_id)
    .bind(note)
    .bind(now.to_sql_micros())
    .execute(db.pool())
    .await?;
    Ok(())
}

pub(super) async fn events(db: &PgDb, withdrawal_id: i64) -> Result<Vec<EventRow>, StoreError> {
    sqlx::query(
        "SELECT old_status, new_status, actor, reason, created_at FROM withdrawal_events \
         WHERE withdrawal_id = $1 ORDER BY event_id",
    )
    .bind(withdrawal_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        let old: Option<&str> = row.try_get("old_status")?;
        Ok(EventRow {
            old_status: old.map(status).transpose()?,
            new_status: status(row.try_get("new_status")?)?,
            actor: row.try_get("actor")?,
            reason: row.try_get("reason")?,
            created_at: time(row.try_get("created_at")?)?,
        })
    })
    .collect()
}

// ----- incoming history -----

fn incoming_row(row: &PgRow, currency: Currency) -> Result<IncomingRow, StoreError> {
    Ok(IncomingRow {
        row_id: row.try_get("row_id")?,
        reserve_pub: fixed(
            "reserve_pub",
            row.try_get("reserve_pub")?,
            EddsaPublicKey::from_slice,
        )?,
        amount: pg_amount(row, "amount", currency)?,
        debit_account: payto(row.try_get("debit_account")?)?,
        created_at: time(row.try_get("created_at")?)?,
    })
}

pub(super) async fn incoming_history(
    db: &PgDb,
    currency: Currency,
    limit: i64,
    offset: Option<i64>,
) -> Result<Vec<IncomingRow>, StoreError> {
    let rows = if limit >= 0 {
        sqlx::query(
            "SELECT row_id, reserve_pub, amount_val, amount_frac, debit_account, created_at \
             FROM incoming WHERE row_id > $1 ORDER BY row_id ASC LIMIT $2",
        )
        .bind(offset.unwrap_or(0))
        .bind(limit)
        .fetch_all(db.pool())
        .await?
    } else {
        sqlx::query(
            "SELECT row_id, reserve_pub, amount_val, amount_frac, debit_account, created_at \
             FROM incoming WHERE row_id < $1 ORDER BY row_id DESC LIMIT $2",
        )
        .bind(offset.unwrap_or(i64::MAX))
        .bind(limit.saturating_neg())
        .fetch_all(db.pool())
        .await?
    };
    rows.iter().map(|row| incoming_row(row, currency)).collect()
}

pub(super) async fn add_incoming(
    db: &PgDb,
    reserve_pub: &EddsaPublicKey,
    amount: &Amount,
    debit_account: &str,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let (val, frac) = cols(amount);
    let row = sqlx::query("SELECT out_row_id FROM c2ec_add_incoming($1, $2, $3, $4, $5, $6)")
        .bind(reserve_pub.as_bytes().as_slice())
        .bind(val)
        .bind(frac)
        .bind(debit_account)
        .bind(now.to_sql_micros())
        .bind(db.channel())
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("out_row_id")?)
}

// ----- transfers and refunds -----

macro_rules! transfer_columns {
    () => {
        "row_id, request_uid, amount_val, amount_frac, wtid, exchange_base_url, credit_account, \
         target_tx_id, created_at, status, refund_id, failure, attempts"
    };
}

fn transfer_row(row: &PgRow, currency: Currency) -> Result<TransferRow, StoreError> {
    Ok(TransferRow {
        row_id: row.try_get("row_id")?,
        request_uid: fixed(
            "request_uid",
            row.try_get("request_uid")?,
            HashCode::from_slice,
        )?,
        amount: pg_amount(row, "amount", currency)?,
        wtid: fixed("wtid", row.try_get("wtid")?, ShortHashCode::from_slice)?,
        exchange_base_url: base_url(row.try_get("exchange_base_url")?)?,
        credit_account: payto(row.try_get("credit_account")?)?,
        target_tx_id: row.try_get("target_tx_id")?,
        created_at: time(row.try_get("created_at")?)?,
        status: TransferStatus::parse(row.try_get("status")?)?,
        refund_id: row.try_get("refund_id")?,
        failure: row.try_get("failure")?,
        attempts: int(row, "attempts")?,
    })
}

pub(super) async fn accept_transfer(
    db: &PgDb,
    currency: Currency,
    new: &NewTransfer,
) -> Result<AcceptOutcome, StoreError> {
    let (val, frac) = cols(&new.amount);
    let row = sqlx::query(
        "SELECT out_outcome, out_row_id, out_created_at, out_left_val, out_left_frac \
         FROM c2ec_accept_transfer($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new.request_uid.as_bytes().as_slice())
    .bind(&new.request_hash)
    .bind(val)
    .bind(frac)
    .bind(new.wtid.as_bytes().as_slice())
    .bind(new.exchange_base_url.as_str())
    .bind(new.credit_account.to_string())
    .bind(new.target_tx_id.as_deref())
    .bind(new.now.to_sql_micros())
    .bind(db.channel())
    .fetch_one(db.pool())
    .await?;
    let stored = |row: &PgRow, new: bool| -> Result<AcceptOutcome, StoreError> {
        let (Some(row_id), Some(created_at)) = (
            row.try_get::<Option<i64>, _>("out_row_id")?,
            row.try_get::<Option<i64>, _>("out_created_at")?,
        ) else {
            return Err(corrupt("accepted transfer without its row"));
        };
        Ok(AcceptOutcome::Accepted {
            row_id,
            created_at: time(created_at)?,
            new,
        })
    };
    match outcome(&row)? {
        "accepted" => stored(&row, true),
        "replay" => stored(&row, false),
        "request_uid_reused" => Ok(AcceptOutcome::RequestUidReuse),
        "wtid_reused" => Ok(AcceptOutcome::WtidReuse),
        "unknown_card_transaction" => Ok(AcceptOutcome::UnknownCardTransaction),
        "exceeds_payment" => Ok(AcceptOutcome::ExceedsPayment {
            left: pg_amount(&row, "out_left", currency)?,
        }),
        other => Err(corrupt(format!("transfer outcome {other:?}"))),
    }
}

pub(super) async fn transfer_page(
    db: &PgDb,
    currency: Currency,
    ascending: bool,
    start: i64,
    count: i64,
    state: Option<TransferState>,
) -> Result<Vec<TransferRow>, StoreError> {
    const ASC: &str = concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM transfers WHERE row_id > $1 AND ($3::TEXT IS NULL OR status = $3) \
         AND ($4::BOOLEAN IS NULL OR (failure IS NOT NULL) = $4) ORDER BY row_id ASC LIMIT $2"
    );
    const DESC: &str = concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM transfers WHERE row_id < $1 AND ($3::TEXT IS NULL OR status = $3) \
         AND ($4::BOOLEAN IS NULL OR (failure IS NOT NULL) = $4) ORDER BY row_id DESC LIMIT $2"
    );
    let (status_is, failed) = state_filter(state);
    sqlx::query(if ascending { ASC } else { DESC })
        .bind(start)
        .bind(count)
        .bind(status_is)
        .bind(failed)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| transfer_row(row, currency))
        .collect()
}

pub(super) async fn outgoing_page(
    db: &PgDb,
    currency: Currency,
    ascending: bool,
    start: i64,
    count: i64,
) -> Result<Vec<OutgoingRow>, StoreError> {
    const ASC: &str = "SELECT o.row_id AS out_id, o.created_at AS out_at, t.* \
         FROM outgoing o JOIN transfers t ON t.row_id = o.transfer_id \
         WHERE o.row_id > $1 ORDER BY o.row_id ASC LIMIT $2";
    const DESC: &str = "SELECT o.row_id AS out_id, o.created_at AS out_at, t.* \
         FROM outgoing o JOIN transfers t ON t.row_id = o.transfer_id \
         WHERE o.row_id < $1 ORDER BY o.row_id DESC LIMIT $2";
    sqlx::query(if ascending { ASC } else { DESC })
        .bind(start)
        .bind(count)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(OutgoingRow {
                row_id: row.try_get("out_id")?,
                date: time(row.try_get("out_at")?)?,
                transfer: transfer_row(row, currency)?,
            })
        })
        .collect()
}

pub(super) async fn transfer(
    db: &PgDb,
    currency: Currency,
    row_id: i64,
) -> Result<Option<TransferRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM transfers WHERE row_id = $1"
    );
    sqlx::query(SQL)
        .bind(row_id)
        .fetch_optional(db.pool())
        .await?
        .map(|row| transfer_row(&row, currency))
        .transpose()
}

pub(super) async fn refund_work(
    db: &PgDb,
    currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<RefundWork, StoreError> {
    const TRANSFERS: &str = concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM transfers WHERE status = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at LIMIT $2"
    );
    const REFUNDS: &str = concat!(
        "SELECT ",
        withdrawal_columns!(),
        " FROM withdrawals WHERE refund_state = 'due' AND refund_next_at <= $1 \
         ORDER BY refund_next_at LIMIT $2"
    );
    let (now, limit) = (now.to_sql_micros(), i64::from(limit));
    let transfers = sqlx::query(TRANSFERS)
        .bind(now)
        .bind(limit)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| transfer_row(row, currency))
        .collect::<Result<_, _>>()?;
    let refunds = sqlx::query(REFUNDS)
        .bind(now)
        .bind(limit)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| withdrawal_row(row, currency))
        .collect::<Result<_, _>>()?;
    let extras = sqlx::query(
        "SELECT e.extra_id, e.provider_tx_id, e.refund_attempts, w.withdrawal_id, w.wopid, \
         w.status FROM extra_payments e JOIN withdrawals w ON w.withdrawal_id = e.withdrawal_id \
         WHERE e.refund_state = 'due' AND e.refund_next_at <= $1 \
         ORDER BY e.refund_next_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(ExtraPaymentRow {
            extra_id: row.try_get("extra_id")?,
            provider_tx_id: row.try_get("provider_tx_id")?,
            refund_attempts: int(row, "refund_attempts")?,
            withdrawal_id: row.try_get("withdrawal_id")?,
            wopid: wopid(row.try_get("wopid")?)?,
            status: status(row.try_get("status")?)?,
        })
    })
    .collect::<Result<_, StoreError>>()?;
    Ok(RefundWork {
        transfers,
        refunds,
        extras,
    })
}

pub(super) async fn next_refund_at(db: &PgDb) -> Result<Option<Timestamp>, StoreError> {
    let t: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(t) FROM ( \
           SELECT MIN(next_attempt_at) AS t FROM transfers WHERE status = 'pending' \
           UNION ALL SELECT MIN(refund_next_at) FROM withdrawals WHERE refund_state = 'due' \
           UNION ALL SELECT MIN(refund_next_at) FROM extra_payments WHERE refund_state = 'due') m",
    )
    .fetch_one(db.pool())
    .await?;
    time_opt(t)
}

pub(super) async fn refund_room(
    db: &PgDb,
    currency: Currency,
    tx_id: &str,
    except_row: i64,
) -> Result<(Option<Amount>, Amount), StoreError> {
    let row = sqlx::query(
        "SELECT c.amount_val, c.amount_frac, s.v, s.f FROM \
           (SELECT CAST(COALESCE(SUM(amount_val), 0) AS BIGINT) AS v, \
                   CAST(COALESCE(SUM(amount_frac), 0) AS BIGINT) AS f \
              FROM transfers WHERE target_tx_id = $1 AND status = 'refunded' AND row_id <> $2) s \
         LEFT JOIN (SELECT i.amount_val, i.amount_frac FROM incoming i \
                      JOIN withdrawals w ON w.withdrawal_id = i.withdrawal_id \
                     WHERE w.provider_tx_id = $1) c ON TRUE",
    )
    .bind(tx_id)
    .bind(except_row)
    .fetch_one(db.pool())
    .await?;
    let credited = pg_amount_opt(&row, "amount", currency)?;
    let (v, f): (i64, i64) = (row.try_get("v")?, row.try_get("f")?);
    let (Ok(v), Ok(f)) = (u128::try_from(v), u128::try_from(f)) else {
        return Err(corrupt("negative sum of refunds"));
    };
    Ok((credited, units(currency, v * 100_000_000 + f)?))
}

pub(super) async fn settle_refund(
    db: &PgDb,
    withdrawal_id: i64,
    s: &RefundSettlement,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "WITH u AS ( \
           UPDATE withdrawals SET refund_state = $1, refund_id = COALESCE($2, refund_id), \
                  refund_next_at = $3, refund_attempts = refund_attempts + 1 \
            WHERE withdrawal_id = $4 AND refund_state = 'due' RETURNING withdrawal_id, status) \
         INSERT INTO withdrawal_events (withdrawal_id, old_status, new_status, actor, reason, \
                                        created_at) \
         SELECT withdrawal_id, status, status, 'refund', $5, $6 FROM u",
    )
    .bind(s.state.as_str())
    .bind(s.refund_id.as_deref())
    .bind(s.next.map(|t| t.to_sql_micros()))
    .bind(withdrawal_id)
    .bind(&s.note)
    .bind(now.to_sql_micros())
    .execute(db.pool())
    .await?;
    Ok(())
}

pub(super) async fn settle_extra_refund(
    db: &PgDb,
    extra_id: i64,
    s: &RefundSettlement,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "WITH u AS ( \
           UPDATE extra_payments SET refund_state = $1, refund_id = COALESCE($2, refund_id), \
                  refund_next_at = $3, refund_attempts = refund_attempts + 1 \
            WHERE extra_id = $4 AND refund_state = 'due' RETURNING withdrawal_id) \
         INSERT INTO withdrawal_events (withdrawal_id, old_status, new_status, actor, reason, \
                                        created_at) \
         SELECT w.withdrawal_id, w.status, w.status, 'refund', $5, $6 \
           FROM u JOIN withdrawals w ON w.withdrawal_id = u.withdrawal_id",
    )
    .bind(s.state.as_str())
    .bind(s.refund_id.as_deref())
    .bind(s.next.map(|t| t.to_sql_micros()))
    .bind(extra_id)
    .bind(&s.note)
    .bind(now.to_sql_micros())
    .execute(db.pool())
    .await?;
    Ok(())
}

pub(super) async fn settle_transfer(
    db: &PgDb,
    row_id: i64,
    s: &TransferSettlement,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "WITH u AS ( \
           UPDATE transfers SET status = $1, refund_id = COALESCE($2, refund_id), failure = $3, \
                  next_attempt_at = $4, attempts = attempts + 1 \
            WHERE row_id = $5 AND status = 'pending' RETURNING row_id, status), \
         o AS ( \
           INSERT INTO outgoing (transfer_id, created_at) \
           SELECT row_id, $6 FROM u WHERE status = 'refunded' RETURNING row_id) \
         SELECT pg_notify($7, 'outgoing ') FROM o",
    )
    .bind(s.status.as_str())
    .bind(s.refund_id.as_deref())
    .bind(s.failure.as_deref())
    .bind(s.next.map(|t| t.to_sql_micros()))
    .bind(row_id)
    .bind(now.to_sql_micros())
    .bind(db.channel())
    .execute(db.pool())
    .await?;
    Ok(())
}

// ----- terminals -----

fn terminal_row(row: &PgRow) -> Result<TerminalRow, StoreError> {
    Ok(TerminalRow {
        terminal_id: row.try_get("terminal_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        active: row.try_get("active")?,
        created_at: time(row.try_get("created_at")?)?,
    })
}

pub(super) async fn insert_terminal(
    db: &PgDb,
    name: &str,
    secret_hash: &str,
    now: Timestamp,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO terminals (name, secret_hash, active, created_at) \
         VALUES ($1, $2, TRUE, $3) RETURNING terminal_id",
    )
    .bind(name)
    .bind(secret_hash)
    .bind(now.to_sql_micros())
    .fetch_one(db.pool())
    .await?)
}

pub(super) async fn terminal(db: &PgDb, id: i64) -> Result<Option<TerminalRow>, StoreError> {
    sqlx::query(
        "SELECT terminal_id, name, secret_hash, active, created_at FROM terminals \
         WHERE terminal_id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(terminal_row)
    .transpose()
}

pub(super) async fn terminals(db: &PgDb) -> Result<Vec<TerminalRow>, StoreError> {
    sqlx::query(
        "SELECT terminal_id, name, secret_hash, active, created_at FROM terminals \
         ORDER BY terminal_id",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(terminal_row)
    .collect()
}

pub(super) async fn deactivate_terminal(db: &PgDb, id: i64) -> Result<bool, StoreError> {
    let found = sqlx::query(
        "WITH u AS (UPDATE terminals SET active = FALSE WHERE terminal_id = $1 \
                    RETURNING terminal_id) \
         SELECT u.terminal_id, pg_notify($2, 'terminal ' || u.terminal_id) FROM u",
    )
    .bind(id)
    .bind(db.channel())
    .fetch_optional(db.pool())
    .await?;
    Ok(found.is_some())
}
