//! The card processor on SQLite: each write is one closure on the store's writer thread
//! (`SqliteTx`), so a unit of work reads, decides (with `crate::processing`'s pure rules) and
//! writes without any other writer in between; reads run inline on a read-only connection.
//! Every statement is a cached prepared statement.

use cardcash_store::SqliteTx;
use cardcash_store::StoreError;
use cardcash_store::columns::{amount_to_columns, conversion_failure, sqlite_amount};
use cardcash_store::rusqlite::{self, Connection, OptionalExtension as _, Row, params};

use super::payout::{Covered, amount_from_sums, initial_state, settle_covered};
use super::row::{
    currency_from_sql, id_from_sql, meta_from_sql, meta_to_sql, parse_stored, secret_from_sql,
};
use super::{
    ApiUserRow, NewPayout, NewRefund, NewTransaction, PayoutRow, RefundOutcome, RefundRow,
    StateChange, Sweep, TOPIC_FINALITY_SCHEDULED, TOPIC_PAYOUT, TransactionRow,
};
use crate::config::Role;
use crate::processing::{RefundRefusal, Transition, book_refund};
use cardcash_api::cardproc::{IsoTime, PayoutState, TransactionState};
use cardcash_util::{Amount, Currency, ShortHashCode};

/// The columns [`transaction_row`] decodes, in its order.
macro_rules! tx_columns {
    () => {
        "id, space_id, state, currency, amount_val, amount_frac, completed_val, completed_frac, \
         refunded_val, refunded_frac, merchant_reference, terminal_id, meta_data, card_masked, \
         failure_reason, created_at, authorized_at, completed_at, failed_at, fulfill_at"
    };
}

/// The columns [`refund_row`] decodes, in its order (refund `r` joined with its transaction `t`).
macro_rules! refund_columns {
    () => {
        "r.id, r.space_id, r.external_id, r.transaction_id, r.amount_val, r.amount_frac, \
         r.refund_type, r.merchant_reference, r.created_at, t.currency \
         FROM refund r JOIN card_transaction t ON t.id = r.transaction_id"
    };
}

const PENDING: &str = TransactionState::Pending.as_str();
const AUTHORIZED: &str = TransactionState::Authorized.as_str();
const FULFILL: &str = TransactionState::Fulfill.as_str();
const VOIDED: &str = TransactionState::Voided.as_str();

/// A decoding failure inside a rusqlite row mapper.
fn corrupt(idx: usize, error: StoreError) -> rusqlite::Error {
    conversion_failure(idx, error)
}

fn id_at(row: &Row<'_>, idx: usize, what: &str) -> rusqlite::Result<u64> {
    id_from_sql(what, row.get(idx)?).map_err(|e| corrupt(idx, e))
}

fn parsed_at<T: std::str::FromStr>(row: &Row<'_>, idx: usize, what: &str) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse_stored(what, &text).map_err(|e| corrupt(idx, e))
}

fn opt_parsed_at<T: std::str::FromStr>(
    row: &Row<'_>,
    idx: usize,
    what: &str,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|t| parse_stored(what, &t).map_err(|e| corrupt(idx, e)))
        .transpose()
}

fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<IsoTime> {
    Ok(IsoTime::from_sql(row.get(idx)?))
}

fn opt_time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<IsoTime>> {
    Ok(row.get::<_, Option<i64>>(idx)?.map(IsoTime::from_sql))
}

fn opt_time(t: Option<IsoTime>) -> Option<i64> {
    t.map(|t| t.to_sql())
}

fn transaction_row(row: &Row<'_>) -> rusqlite::Result<TransactionRow> {
    let currency = currency_from_sql(&row.get::<_, String>(3)?).map_err(|e| corrupt(3, e))?;
    let meta_data = meta_from_sql(&row.get::<_, String>(12)?).map_err(|e| corrupt(12, e))?;
    Ok(TransactionRow {
        id: id_at(row, 0, "transaction id")?,
        space_id: id_at(row, 1, "space id")?,
        state: parsed_at(row, 2, "state")?,
        amount: sqlite_amount(row, 4, currency)?,
        completed: sqlite_amount(row, 6, currency)?,
        refunded: sqlite_amount(row, 8, currency)?,
        merchant_reference: row.get(10)?,
        terminal_id: row.get(11)?,
        meta_data,
        card_masked: row.get(13)?,
        failure_reason: opt_parsed_at(row, 14, "failure reason")?,
        created_at: time_at(row, 15)?,
        authorized_at: opt_time_at(row, 16)?,
        completed_at: opt_time_at(row, 17)?,
        failed_at: opt_time_at(row, 18)?,
        fulfill_at: opt_time_at(row, 19)?,
    })
}

fn refund_row(row: &Row<'_>) -> rusqlite::Result<RefundRow> {
    let currency = currency_from_sql(&row.get::<_, String>(9)?).map_err(|e| corrupt(9, e))?;
    Ok(RefundRow {
        id: id_at(row, 0, "refund id")?,
        space_id: id_at(row, 1, "space id")?,
        external_id: row.get(2)?,
        transaction_id: id_at(row, 3, "transaction id")?,
        amount: sqlite_amount(row, 4, currency)?,
        refund_type: parsed_at(row, 6, "refund type")?,
        merchant_reference: row.get(7)?,
        created_at: time_at(row, 8)?,
    })
}

fn user_row(row: &Row<'_>) -> rusqlite::Result<ApiUserRow> {
    Ok(ApiUserRow {
        id: id_at(row, 0, "user id")?,
        secret: secret_from_sql(&row.get::<_, String>(1)?).map_err(|e| corrupt(1, e))?,
        role: parsed_at::<Role>(row, 2, "role")?,
        space_id: id_at(row, 3, "space id")?,
    })
}

// ---- API users ----

pub(super) fn upsert_user(
    tx: &SqliteTx<'_>,
    id: i64,
    secret: &str,
    role: Role,
    space: i64,
    now: IsoTime,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO api_user (user_id, secret, role, space_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, role = excluded.role, \
         space_id = excluded.space_id",
    )?
    .execute(params![id, secret, role.as_str(), space, now.to_sql()])?;
    Ok(())
}

pub(super) fn create_user(
    tx: &SqliteTx<'_>,
    secret: &str,
    role: Role,
    space: i64,
    now: IsoTime,
) -> Result<u64, StoreError> {
    // The writer thread is the only writer: the next id cannot be taken meanwhile.
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO api_user (user_id, secret, role, space_id, created_at) \
             SELECT COALESCE(MAX(user_id), 0) + 1, ?1, ?2, ?3, ?4 FROM api_user RETURNING user_id",
        )?
        .query_row(params![secret, role.as_str(), space, now.to_sql()], |r| {
            r.get(0)
        })?;
    id_from_sql("user id", id)
}

pub(super) fn user(conn: &Connection, id: i64) -> Result<Option<ApiUserRow>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT user_id, secret, role, space_id FROM api_user WHERE user_id = ?1")?
        .query_row([id], user_row)
        .optional()?)
}

pub(super) fn users(conn: &Connection) -> Result<Vec<ApiUserRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT user_id, secret, role, space_id FROM api_user ORDER BY user_id")?;
    let rows = stmt.query_map([], user_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn delete_user(tx: &SqliteTx<'_>, id: i64) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached("DELETE FROM api_user WHERE user_id = ?1")?
        .execute([id])?;
    Ok(n > 0)
}

// ---- transactions ----

pub(super) fn create_transaction(
    tx: &SqliteTx<'_>,
    new: &NewTransaction,
) -> Result<TransactionRow, StoreError> {
    let (val, frac) = amount_to_columns(&new.amount);
    let meta = meta_to_sql(&new.meta_data)?;
    let space = super::sql_id(new.space_id, "space id")?;
    let creator = super::sql_id(new.created_by, "user id")?;
    let sql = concat!(
        "INSERT INTO card_transaction (space_id, state, currency, amount_val, amount_frac, \
         merchant_reference, terminal_id, meta_data, created_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING ",
        tx_columns!()
    );
    let row = tx.prepare_cached(sql)?.query_row(
        params![
            space,
            PENDING,
            new.amount.currency().as_str(),
            val,
            frac,
            new.merchant_reference,
            new.terminal_id,
            meta,
            creator,
            new.created_at.to_sql(),
        ],
        transaction_row,
    )?;
    Ok(row)
}

pub(super) fn transaction(
    conn: &Connection,
    space: i64,
    id: i64,
) -> Result<Option<TransactionRow>, StoreError> {
    let sql = concat!(
        "SELECT ",
        tx_columns!(),
        " FROM card_transaction WHERE id = ?1 AND space_id = ?2"
    );
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id, space], transaction_row)
        .optional()?)
}

/// The row as it is now, for a conditional change that did not apply.
fn unchanged(conn: &Connection, space: i64, id: i64) -> Result<StateChange, StoreError> {
    Ok(match transaction(conn, space, id)? {
        Some(row) => StateChange::Unchanged(row),
        None => StateChange::NotFound,
    })
}

pub(super) fn apply_decision(
    tx: &mut SqliteTx<'_>,
    space: i64,
    id: i64,
    change: &Transition,
    card_masked: &str,
) -> Result<StateChange, StoreError> {
    let sql = concat!(
        "UPDATE card_transaction SET state = ?3, failure_reason = ?4, card_masked = ?5, \
         authorized_at = ?6, completed_at = ?7, failed_at = ?8, fulfill_at = ?9, \
         completed_val = CASE WHEN ?10 THEN amount_val ELSE completed_val END, \
         completed_frac = CASE WHEN ?10 THEN amount_frac ELSE completed_frac END \
         WHERE id = ?1 AND space_id = ?2 AND state = ?11 RETURNING ",
        tx_columns!()
    );
    let applied = tx
        .prepare_cached(sql)?
        .query_row(
            params![
                id,
                space,
                change.state.as_str(),
                change.failure_reason.map(|r| r.as_str()),
                card_masked,
                opt_time(change.authorized_at),
                opt_time(change.completed_at),
                opt_time(change.failed_at),
                opt_time(change.fulfill_at),
                change.captured,
                PENDING,
            ],
            transaction_row,
        )
        .optional()?;
    match applied {
        Some(row) => {
            if row.fulfill_at.is_some() {
                tx.notify(TOPIC_FINALITY_SCHEDULED, &row.id.to_string());
            }
            Ok(StateChange::Applied(row))
        }
        None => unchanged(tx, space, id),
    }
}

pub(super) fn void(
    tx: &SqliteTx<'_>,
    space: i64,
    id: i64,
    now: IsoTime,
) -> Result<StateChange, StoreError> {
    let sql = concat!(
        "UPDATE card_transaction SET state = ?3, fulfill_at = NULL \
         WHERE id = ?1 AND space_id = ?2 AND state = ?4 AND (fulfill_at IS NULL OR fulfill_at > ?5) \
         RETURNING ",
        tx_columns!()
    );
    let voided = tx
        .prepare_cached(sql)?
        .query_row(
            params![id, space, VOIDED, AUTHORIZED, now.to_sql()],
            transaction_row,
        )
        .optional()?;
    match voided {
        Some(row) => Ok(StateChange::Applied(row)),
        None => unchanged(tx, space, id),
    }
}

/// Persists due delayed finality of every transaction (`only = None`) or of one.
fn finalize_due(conn: &Connection, now: IsoTime, only: Option<i64>) -> Result<u64, StoreError> {
    // `?4` = -1 means "every transaction" (ids are positive).
    let n = conn
        .prepare_cached(
            "UPDATE card_transaction SET state = ?1, completed_val = amount_val, \
             completed_frac = amount_frac, completed_at = fulfill_at \
             WHERE state = ?2 AND fulfill_at IS NOT NULL AND fulfill_at <= ?3 \
             AND (?4 = -1 OR id = ?4)",
        )?
        .execute(params![
            FULFILL,
            AUTHORIZED,
            now.to_sql(),
            only.unwrap_or(-1)
        ])?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

pub(super) fn refund(
    tx: &SqliteTx<'_>,
    new: &NewRefund,
) -> Result<(RefundOutcome, u64), StoreError> {
    let space = super::sql_id(new.space_id, "space id")?;
    let tx_id = super::sql_id(new.transaction_id, "transaction id")?;
    // Persist due finality first so the checks below see what readers see.
    let finalized = finalize_due(tx, new.created_at, Some(tx_id))?;
    Ok((book(tx, new, space, tx_id)?, finalized))
}

/// The refund's decision and writes, after due finality was persisted.
fn book(
    tx: &SqliteTx<'_>,
    new: &NewRefund,
    space: i64,
    tx_id: i64,
) -> Result<RefundOutcome, StoreError> {
    if let Some(existing) = refund_by_key(tx, space, &new.external_id)? {
        return Ok(RefundOutcome::Existing(existing));
    }
    let Some(row) = transaction(tx, space, tx_id)? else {
        return Ok(RefundOutcome::TransactionNotFound);
    };
    let amount = new.amount.to_amount(*row.amount.currency());
    let total = match book_refund(row.state, &row.completed, &row.refunded, &amount) {
        Ok(total) => total,
        Err(RefundRefusal::NotRefundable(state)) => {
            return Ok(RefundOutcome::NotRefundable(state));
        }
        Err(RefundRefusal::ExceedsCompleted) => return Ok(RefundOutcome::ExceedsCompleted),
    };
    let (val, frac) = amount_to_columns(&amount);
    let refund_id: i64 = tx
        .prepare_cached(
            "INSERT INTO refund (space_id, external_id, transaction_id, amount_val, amount_frac, \
                 refund_type, merchant_reference, created_by, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        )?
        .query_row(
            params![
                space,
                new.external_id,
                tx_id,
                val,
                frac,
                new.refund_type.as_str(),
                new.merchant_reference,
                super::sql_id(new.created_by, "user id")?,
                new.created_at.to_sql(),
            ],
            |r| r.get(0),
        )?;
    let (total_val, total_frac) = amount_to_columns(&total);
    tx.prepare_cached(
        "UPDATE card_transaction SET refunded_val = ?1, refunded_frac = ?2 WHERE id = ?3",
    )?
    .execute(params![total_val, total_frac, tx_id])?;
    Ok(RefundOutcome::Created(RefundRow {
        id: id_from_sql("refund id", refund_id)?,
        space_id: new.space_id,
        external_id: new.external_id.clone(),
        transaction_id: new.transaction_id,
        amount,
        refund_type: new.refund_type,
        merchant_reference: new.merchant_reference.clone(),
        created_at: new.created_at,
    }))
}

fn refund_by_key(
    conn: &Connection,
    space: i64,
    external_id: &str,
) -> Result<Option<RefundRow>, StoreError> {
    let sql = concat!(
        "SELECT ",
        refund_columns!(),
        " WHERE r.space_id = ?1 AND r.external_id = ?2"
    );
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![space, external_id], refund_row)
        .optional()?)
}

pub(super) fn refund_by_id(
    conn: &Connection,
    space: i64,
    id: i64,
) -> Result<Option<RefundRow>, StoreError> {
    let sql = concat!(
        "SELECT ",
        refund_columns!(),
        " WHERE r.id = ?1 AND r.space_id = ?2"
    );
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id, space], refund_row)
        .optional()?)
}

pub(super) fn sweep_finality(tx: &SqliteTx<'_>, now: IsoTime) -> Result<Sweep, StoreError> {
    let finalized = finalize_due(tx, now, None)?;
    let next: Option<i64> = tx
        .prepare_cached(
            "SELECT MIN(fulfill_at) FROM card_transaction \
             WHERE state = ?1 AND fulfill_at IS NOT NULL",
        )?
        .query_row([AUTHORIZED], |r| r.get(0))?;
    Ok(Sweep {
        finalized,
        next_due: next.map(IsoTime::from_sql),
    })
}

// ---- payouts (db/payout.rs describes the unit of work) ----

/// The columns [`payout_row`] decodes, in its order.
macro_rules! payout_columns {
    () => {
        "id, space_id, currency, captured_val, captured_frac, refunded_val, refunded_frac, \
         fees_val, fees_frac, carried_val, carried_frac, amount_val, amount_frac, debt_val, \
         debt_frac, transactions, refunds, request_uid, state, created_at, paid_at, bank_row_id, \
         attempts, last_error"
    };
}

fn payout_row(row: &Row<'_>) -> rusqlite::Result<PayoutRow> {
    let currency = currency_from_sql(&row.get::<_, String>(2)?).map_err(|e| corrupt(2, e))?;
    let count = |idx: usize| -> rusqlite::Result<u64> {
        u64::try_from(row.get::<_, i64>(idx)?)
            .map_err(|_| corrupt(idx, StoreError::Corrupt("negative count".into())))
    };
    let uid: Vec<u8> = row.get(17)?;
    let uid: [u8; 32] = uid.try_into().map_err(|_| {
        corrupt(
            17,
            StoreError::Corrupt("request_uid is not 32 bytes".into()),
        )
    })?;
    Ok(PayoutRow {
        id: id_at(row, 0, "payout id")?,
        space_id: id_at(row, 1, "space id")?,
        captured: sqlite_amount(row, 3, currency)?,
        refunded: sqlite_amount(row, 5, currency)?,
        fees: sqlite_amount(row, 7, currency)?,
        carried: sqlite_amount(row, 9, currency)?,
        amount: sqlite_amount(row, 11, currency)?,
        debt: sqlite_amount(row, 13, currency)?,
        transactions: count(15)?,
        refunds: count(16)?,
        request_uid: ShortHashCode::from_bytes(uid),
        state: parsed_at::<PayoutState>(row, 18, "payout state")?,
        created_at: time_at(row, 19)?,
        paid_at: opt_time_at(row, 20)?,
        bank_row_id: row
            .get::<_, Option<i64>>(21)?
            .map(|r| id_from_sql("bank row id", r).map_err(|e| corrupt(21, e)))
            .transpose()?,
        attempts: u32::try_from(row.get::<_, i64>(22)?).unwrap_or(u32::MAX),
        last_error: row.get(23)?,
    })
}

pub(super) fn create_payout(
    tx: &mut SqliteTx<'_>,
    new: &NewPayout,
) -> Result<(Option<PayoutRow>, u64), StoreError> {
    let space = super::sql_id(new.space_id, "space id")?;
    let currency = new.currency.as_str();
    let due = new.due_before.to_sql();
    let finalized = finalize_due(tx, new.now, None)?;
    let any_due: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM card_transaction WHERE payout_id IS NULL \
             AND state = ?1 AND space_id = ?2 AND currency = ?3 AND completed_at <= ?4)",
        )?
        .query_row(params![FULFILL, space, currency, due], |r| r.get(0))?;
    if !any_due {
        return Ok((None, finalized));
    }
    let carried = tx
        .prepare_cached(
            "SELECT debt_val, debt_frac FROM payout WHERE space_id = ?1 AND currency = ?2 \
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![space, currency], |r| {
            sqlite_amount(r, 0, new.currency)
        })
        .optional()?
        .unwrap_or_else(|| Amount::zero(&new.currency));
    // Placeholder sums (all zero, one transaction) until the rows are assigned below.
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO payout (space_id, currency, captured_val, captured_frac, refunded_val, \
             refunded_frac, fees_val, fees_frac, carried_val, carried_frac, amount_val, \
             amount_frac, debt_val, debt_frac, transactions, refunds, request_uid, state, \
             created_at) VALUES (?1, ?2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, ?3, ?4, ?5) \
             RETURNING id",
        )?
        .query_row(
            params![
                space,
                currency,
                new.request_uid.as_bytes().as_slice(),
                PayoutState::Netted.as_str(),
                new.now.to_sql()
            ],
            |r| r.get(0),
        )?;
    tx.prepare_cached(
        "UPDATE card_transaction SET payout_id = ?1 WHERE payout_id IS NULL AND state = ?2 \
         AND space_id = ?3 AND currency = ?4 AND completed_at <= ?5",
    )?
    .execute(params![id, FULFILL, space, currency, due])?;
    tx.prepare_cached(
        "UPDATE refund SET payout_id = ?1 WHERE payout_id IS NULL AND space_id = ?2 \
         AND EXISTS (SELECT 1 FROM card_transaction AS t WHERE t.id = refund.transaction_id \
         AND t.payout_id IS NOT NULL AND t.currency = ?3)",
    )?
    .execute(params![id, space, currency])?;
    let (transactions, captured) = tx
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(completed_val), 0), COALESCE(SUM(completed_frac), 0) \
             FROM card_transaction WHERE payout_id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(StoreError::from)
        .and_then(|(n, v, f)| Ok((n, amount_from_sums(new.currency, v, f)?)))?;
    let (refunds, refunded) = tx
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(amount_val), 0), COALESCE(SUM(amount_frac), 0) \
             FROM refund WHERE payout_id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(StoreError::from)
        .and_then(|(n, v, f)| Ok((n, amount_from_sums(new.currency, v, f)?)))?;
    let covered = Covered {
        transactions,
        captured,
        refunded,
    };
    let settled = settle_covered(new, &covered, &carried)?;
    let s = &settled.settlement;
    let cols = |a: &Amount| amount_to_columns(a);
    let ((cv, cf), (rv, rf), (fv, ff)) = (cols(&captured), cols(&refunded), cols(&settled.fees));
    let ((kv, kf), (av, af), (dv, df)) = (cols(&carried), cols(&s.amount), cols(&s.debt));
    let sql = concat!(
        "UPDATE payout SET captured_val = ?2, captured_frac = ?3, refunded_val = ?4, \
         refunded_frac = ?5, fees_val = ?6, fees_frac = ?7, carried_val = ?8, carried_frac = ?9, \
         amount_val = ?10, amount_frac = ?11, debt_val = ?12, debt_frac = ?13, \
         transactions = ?14, refunds = ?15, state = ?16 WHERE id = ?1 RETURNING ",
        payout_columns!()
    );
    let row = tx.prepare_cached(sql)?.query_row(
        params![
            id,
            cv,
            cf,
            rv,
            rf,
            fv,
            ff,
            kv,
            kf,
            av,
            af,
            dv,
            df,
            transactions,
            refunds,
            initial_state(s).as_str()
        ],
        payout_row,
    )?;
    tx.notify(TOPIC_PAYOUT, &row.id.to_string());
    Ok((Some(row), finalized))
}

pub(super) fn pending_payouts(conn: &Connection, space: i64) -> Result<Vec<PayoutRow>, StoreError> {
    let sql = concat!(
        "SELECT ",
        payout_columns!(),
        " FROM payout WHERE state = ?1 AND space_id = ?2 ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![PayoutState::Pending.as_str(), space], payout_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn payouts(
    conn: &Connection,
    space: i64,
    limit: u32,
) -> Result<Vec<PayoutRow>, StoreError> {
    let sql = concat!(
        "SELECT ",
        payout_columns!(),
        " FROM payout WHERE space_id = ?1 ORDER BY id DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![space, limit], payout_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn mark_payout_paid(
    tx: &mut SqliteTx<'_>,
    id: i64,
    bank_row: i64,
    now: IsoTime,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE payout SET state = ?2, bank_row_id = ?3, paid_at = ?4 \
             WHERE id = ?1 AND state = ?5",
        )?
        .execute(params![
            id,
            PayoutState::Paid.as_str(),
            bank_row,
            now.to_sql(),
            PayoutState::Pending.as_str()
        ])?;
    if n > 0 {
        tx.notify(TOPIC_PAYOUT, &id.to_string());
    }
    Ok(n > 0)
}

pub(super) fn record_payout_failure(
    tx: &SqliteTx<'_>,
    id: i64,
    error: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE payout SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1")?
        .execute(params![id, error])?;
    Ok(())
}

pub(super) fn next_unpaid_capture(
    conn: &Connection,
    space: i64,
    currency: &Currency,
) -> Result<Option<IsoTime>, StoreError> {
    let next: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(CASE WHEN state = ?1 THEN completed_at ELSE fulfill_at END) \
             FROM card_transaction WHERE payout_id IS NULL AND space_id = ?3 AND currency = ?4 \
             AND (state = ?1 OR (state = ?2 AND fulfill_at IS NOT NULL))",
        )?
        .query_row(
            params![FULFILL, AUTHORIZED, space, currency.as_str()],
            |r| r.get(0),
        )?;
    Ok(next.map(IsoTime::from_sql))
}

pub(super) fn payout_items(conn: &Connection, id: i64) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
    let ids = |sql: &str| -> Result<Vec<u64>, StoreError> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([id], |r| id_at(r, 0, "id"))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    Ok((
        ids("SELECT id FROM card_transaction WHERE payout_id = ?1 ORDER BY id")?,
        ids("SELECT id FROM refund WHERE payout_id = ?1 ORDER BY id")?,
    ))
}
