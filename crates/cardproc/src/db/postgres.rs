//! The card processor on PostgreSQL: every request is ONE statement (autocommitted), the hot
//! writes being calls of the stored functions of `migrations/postgres/0001_init.sql`, which
//! decide under the row lock and notify with `pg_notify` themselves. The payout worker's
//! making-up of a payout is one transaction of several statements under an advisory lock
//! (`db/payout.rs`): it is not a request, and it shares its rules with SQLite that way. Rows are decoded by column
//! name.

use cardcash_store::columns::{amount_to_columns, pg_amount};
use cardcash_store::{PgDb, StoreError};
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::payout::{Covered, amount_from_sums, initial_state, settle_covered};
use super::row::{
    currency_from_sql, id_from_sql, meta_from_sql, meta_to_sql, parse_stored, secret_from_sql,
};
use super::{
    ApiUserRow, NewPayout, NewRefund, NewTransaction, PayoutRow, RefundOutcome, RefundRow,
    StateChange, Sweep, TOPIC_FINALITY_SCHEDULED, TOPIC_PAYOUT, TransactionRow,
};
use crate::config::Role;
use crate::processing::Transition;
use cardcash_api::cardproc::{DecimalAmount, IsoTime, PayoutState, TransactionState};
use cardcash_util::{Amount, Currency, ShortHashCode};

/// How often a new user id is tried when another process took the same one.
const MAX_USER_ID_ATTEMPTS: u32 = 10;

/// One statement, run again when it lost a race (serialization failure, deadlock); the failed
/// statement committed nothing, so running it again is safe.
async fn retrying<T, F, Fut>(mut statement: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    cardcash_store::retry(|| {
        let attempt = statement();
        async move { attempt.await.map_err(StoreError::from) }
    })
    .await
}

fn opt_time(t: Option<IsoTime>) -> Option<i64> {
    t.map(|t| t.to_sql())
}

fn time(row: &PgRow, column: &str) -> Result<IsoTime, StoreError> {
    Ok(IsoTime::from_sql(row.try_get(column)?))
}

fn opt_time_col(row: &PgRow, column: &str) -> Result<Option<IsoTime>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .map(IsoTime::from_sql))
}

fn id(row: &PgRow, column: &str) -> Result<u64, StoreError> {
    id_from_sql(column, row.try_get(column)?)
}

fn transaction_row(row: &PgRow) -> Result<TransactionRow, StoreError> {
    let currency = currency_from_sql(row.try_get("currency")?)?;
    Ok(TransactionRow {
        id: id(row, "id")?,
        space_id: id(row, "space_id")?,
        state: parse_stored("state", row.try_get("state")?)?,
        amount: pg_amount(row, "amount", currency)?,
        completed: pg_amount(row, "completed", currency)?,
        refunded: pg_amount(row, "refunded", currency)?,
        merchant_reference: row.try_get("merchant_reference")?,
        terminal_id: row.try_get("terminal_id")?,
        meta_data: meta_from_sql(row.try_get("meta_data")?)?,
        card_masked: row.try_get("card_masked")?,
        failure_reason: row
            .try_get::<Option<&str>, _>("failure_reason")?
            .map(|r| parse_stored("failure reason", r))
            .transpose()?,
        created_at: time(row, "created_at")?,
        authorized_at: opt_time_col(row, "authorized_at")?,
        completed_at: opt_time_col(row, "completed_at")?,
        failed_at: opt_time_col(row, "failed_at")?,
        fulfill_at: opt_time_col(row, "fulfill_at")?,
    })
}

/// A refund row; its currency (the transaction's) in `currency_column`.
fn refund_row(row: &PgRow, currency_column: &str) -> Result<RefundRow, StoreError> {
    let currency = currency_from_sql(row.try_get(currency_column)?)?;
    Ok(RefundRow {
        id: id(row, "id")?,
        space_id: id(row, "space_id")?,
        external_id: row.try_get("external_id")?,
        transaction_id: id(row, "transaction_id")?,
        amount: pg_amount(row, "amount", currency)?,
        refund_type: parse_stored("refund type", row.try_get("refund_type")?)?,
        merchant_reference: row.try_get("merchant_reference")?,
        created_at: time(row, "created_at")?,
    })
}

fn user_row(row: &PgRow) -> Result<ApiUserRow, StoreError> {
    Ok(ApiUserRow {
        id: id(row, "user_id")?,
        secret: secret_from_sql(row.try_get("secret")?)?,
        role: parse_stored::<Role>("role", row.try_get("role")?)?,
        space_id: id(row, "space_id")?,
    })
}

/// `(value, fraction)` columns of a currency-less amount. The currency only borrows
/// `Amount`'s codec: the stored function takes the transaction's own currency.
fn decimal_columns(amount: DecimalAmount) -> Result<(i64, i32), StoreError> {
    let placeholder =
        Currency::new("XXX").map_err(|e| StoreError::Internal(format!("currency XXX: {e}")))?;
    Ok(amount_to_columns(&amount.to_amount(placeholder)))
}

// ---- API users ----

pub(super) async fn upsert_user(
    db: &PgDb,
    id: i64,
    secret: &str,
    role: Role,
    space: i64,
    now: IsoTime,
) -> Result<(), StoreError> {
    retrying(|| {
        sqlx::query(
            "INSERT INTO api_user (user_id, secret, role, space_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, role = excluded.role, \
             space_id = excluded.space_id",
        )
        .bind(id)
        .bind(secret)
        .bind(role.as_str())
        .bind(space)
        .bind(now.to_sql())
        .execute(db.pool())
    })
    .await?;
    Ok(())
}

pub(super) async fn create_user(
    db: &PgDb,
    secret: &str,
    role: Role,
    space: i64,
    now: IsoTime,
) -> Result<u64, StoreError> {
    let mut attempt = 1;
    loop {
        // Two processes creating users at once may pick the same next id: the loser's insert
        // fails on the primary key and picks the id after the winner's.
        let created: Result<i64, StoreError> = sqlx::query_scalar(
            "INSERT INTO api_user (user_id, secret, role, space_id, created_at) \
             SELECT COALESCE(MAX(user_id), 0) + 1, $1, $2, $3, $4 FROM api_user \
             RETURNING user_id",
        )
        .bind(secret)
        .bind(role.as_str())
        .bind(space)
        .bind(now.to_sql())
        .fetch_one(db.pool())
        .await
        .map_err(StoreError::from);
        match created {
            Err(e) if e.is_unique_violation() && attempt < MAX_USER_ID_ATTEMPTS => attempt += 1,
            other => return id_from_sql("user id", other?),
        }
    }
}

pub(super) async fn user(db: &PgDb, id: i64) -> Result<Option<ApiUserRow>, StoreError> {
    sqlx::query("SELECT user_id, secret, role, space_id FROM api_user WHERE user_id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(user_row)
        .transpose()
}

pub(super) async fn users(db: &PgDb) -> Result<Vec<ApiUserRow>, StoreError> {
    sqlx::query("SELECT user_id, secret, role, space_id FROM api_user ORDER BY user_id")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(user_row)
        .collect()
}

pub(super) async fn delete_user(db: &PgDb, id: i64) -> Result<bool, StoreError> {
    let done = retrying(|| {
        sqlx::query("DELETE FROM api_user WHERE user_id = $1")
            .bind(id)
            .execute(db.pool())
    })
    .await?;
    Ok(done.rows_affected() > 0)
}

// ---- transactions ----

pub(super) async fn create_transaction(
    db: &PgDb,
    new: &NewTransaction,
) -> Result<TransactionRow, StoreError> {
    let (val, frac) = amount_to_columns(&new.amount);
    let meta = meta_to_sql(&new.meta_data)?;
    let space = super::sql_id(new.space_id, "space id")?;
    let creator = super::sql_id(new.created_by, "user id")?;
    let row = retrying(|| {
        sqlx::query(
            "INSERT INTO card_transaction (space_id, state, currency, amount_val, amount_frac, \
             merchant_reference, terminal_id, meta_data, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
        )
        .bind(space)
        .bind(TransactionState::Pending.as_str())
        .bind(new.amount.currency().as_str())
        .bind(val)
        .bind(frac)
        .bind(new.merchant_reference.as_str())
        .bind(new.terminal_id.as_deref())
        .bind(meta.as_str())
        .bind(creator)
        .bind(new.created_at.to_sql())
        .fetch_one(db.pool())
    })
    .await?;
    transaction_row(&row)
}

pub(super) async fn transaction(
    db: &PgDb,
    space: i64,
    id: i64,
) -> Result<Option<TransactionRow>, StoreError> {
    sqlx::query("SELECT * FROM card_transaction WHERE id = $1 AND space_id = $2")
        .bind(id)
        .bind(space)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(transaction_row)
        .transpose()
}

/// Decodes the `(applied, tx.*)` row of `cardproc_apply_decision` / `cardproc_void`.
fn state_change(row: Option<PgRow>) -> Result<StateChange, StoreError> {
    let Some(row) = row else {
        return Ok(StateChange::NotFound);
    };
    let tx = transaction_row(&row)?;
    Ok(if row.try_get::<bool, _>("applied")? {
        StateChange::Applied(tx)
    } else {
        StateChange::Unchanged(tx)
    })
}

pub(super) async fn apply_decision(
    db: &PgDb,
    space: i64,
    id: i64,
    change: &Transition,
    card_masked: &str,
) -> Result<StateChange, StoreError> {
    // The payload the store's listener understands: "<topic> <key>".
    let notify = change
        .fulfill_at
        .map(|_| format!("{TOPIC_FINALITY_SCHEDULED} {id}"));
    let row = retrying(|| {
        sqlx::query(
            "SELECT r.applied, (r.tx).* FROM cardproc_apply_decision(\
             $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) AS r",
        )
        .bind(space)
        .bind(id)
        .bind(change.state.as_str())
        .bind(change.failure_reason.map(|r| r.as_str()))
        .bind(card_masked)
        .bind(opt_time(change.authorized_at))
        .bind(opt_time(change.completed_at))
        .bind(opt_time(change.failed_at))
        .bind(opt_time(change.fulfill_at))
        .bind(change.captured)
        .bind(db.channel())
        .bind(notify.as_deref())
        .fetch_optional(db.pool())
    })
    .await?;
    state_change(row)
}

pub(super) async fn void(
    db: &PgDb,
    space: i64,
    id: i64,
    now: IsoTime,
) -> Result<StateChange, StoreError> {
    let row = retrying(|| {
        sqlx::query("SELECT r.applied, (r.tx).* FROM cardproc_void($1, $2, $3) AS r")
            .bind(space)
            .bind(id)
            .bind(now.to_sql())
            .fetch_optional(db.pool())
    })
    .await?;
    state_change(row)
}

pub(super) async fn refund(db: &PgDb, new: &NewRefund) -> Result<(RefundOutcome, u64), StoreError> {
    let space = super::sql_id(new.space_id, "space id")?;
    let tx_id = super::sql_id(new.transaction_id, "transaction id")?;
    let creator = super::sql_id(new.created_by, "user id")?;
    let (val, frac) = decimal_columns(new.amount)?;
    let row = retrying(|| {
        sqlx::query(
            "SELECT r.outcome, r.finalized, r.tx_state, r.refund_currency, (r.refund_row).* \
             FROM cardproc_refund($1, $2, $3, $4, $5, $6, $7, $8, $9) AS r",
        )
        .bind(space)
        .bind(tx_id)
        .bind(new.external_id.as_str())
        .bind(val)
        .bind(frac)
        .bind(new.refund_type.as_str())
        .bind(new.merchant_reference.as_deref())
        .bind(creator)
        .bind(new.created_at.to_sql())
        .fetch_one(db.pool())
    })
    .await?;
    let finalized = u64::try_from(row.try_get::<i32, _>("finalized")?).unwrap_or(0);
    let outcome = match row.try_get::<&str, _>("outcome")? {
        "created" => RefundOutcome::Created(refund_row(&row, "refund_currency")?),
        "existing" => RefundOutcome::Existing(refund_row(&row, "refund_currency")?),
        "no_transaction" => RefundOutcome::TransactionNotFound,
        "not_refundable" => {
            RefundOutcome::NotRefundable(parse_stored("state", row.try_get("tx_state")?)?)
        }
        "exceeds" => RefundOutcome::ExceedsCompleted,
        other => {
            return Err(StoreError::Corrupt(format!(
                "cardproc_refund answered {other:?}"
            )));
        }
    };
    Ok((outcome, finalized))
}

pub(super) async fn refund_by_id(
    db: &PgDb,
    space: i64,
    id: i64,
) -> Result<Option<RefundRow>, StoreError> {
    sqlx::query(
        "SELECT r.*, t.currency FROM refund r JOIN card_transaction t ON t.id = r.transaction_id \
         WHERE r.id = $1 AND r.space_id = $2",
    )
    .bind(id)
    .bind(space)
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(|row| refund_row(row, "currency"))
    .transpose()
}

pub(super) async fn sweep_finality(db: &PgDb, now: IsoTime) -> Result<Sweep, StoreError> {
    // The outer SELECT reads the snapshot from before the UPDATE: the rows it finalizes had
    // fulfill_at <= now, so `> now` leaves exactly the ones still pending.
    let (finalized, next): (i64, Option<i64>) = retrying(|| {
        sqlx::query_as(
            "WITH done AS ( \
               UPDATE card_transaction SET state = $1, completed_val = amount_val, \
                 completed_frac = amount_frac, completed_at = fulfill_at \
               WHERE state = $2 AND fulfill_at IS NOT NULL AND fulfill_at <= $3 \
               RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM done), \
               (SELECT MIN(fulfill_at) FROM card_transaction \
                WHERE state = $2 AND fulfill_at IS NOT NULL AND fulfill_at > $3)",
        )
        .bind(TransactionState::Fulfill.as_str())
        .bind(TransactionState::Authorized.as_str())
        .bind(now.to_sql())
        .fetch_one(db.pool())
    })
    .await?;
    Ok(Sweep {
        finalized: u64::try_from(finalized).unwrap_or(0),
        next_due: next.map(IsoTime::from_sql),
    })
}

// ---- payouts (db/payout.rs describes the unit of work) ----

/// The key of the transaction-scoped advisory lock that serialises making up payouts across
/// processes ("cardproc" in ASCII).
const PAYOUT_LOCK: i64 = 0x6361_7264_7072_6f63;

/// The columns [`payout_row`] decodes.
macro_rules! payout_columns {
    () => {
        "id, space_id, currency, captured_val, captured_frac, refunded_val, refunded_frac, \
         fees_val, fees_frac, carried_val, carried_frac, amount_val, amount_frac, debt_val, \
         debt_frac, transactions, refunds, request_uid, state, created_at, paid_at, bank_row_id, \
         attempts, last_error"
    };
}

fn payout_row(row: &PgRow) -> Result<PayoutRow, StoreError> {
    let currency = currency_from_sql(row.try_get("currency")?)?;
    let count = |column: &str| -> Result<u64, StoreError> {
        u64::try_from(row.try_get::<i32, _>(column)?)
            .map_err(|_| StoreError::Corrupt(format!("negative {column}")))
    };
    let uid: Vec<u8> = row.try_get("request_uid")?;
    let uid: [u8; 32] = uid
        .try_into()
        .map_err(|_| StoreError::Corrupt("request_uid is not 32 bytes".into()))?;
    Ok(PayoutRow {
        id: id(row, "id")?,
        space_id: id(row, "space_id")?,
        state: parse_stored::<PayoutState>("payout state", row.try_get("state")?)?,
        captured: pg_amount(row, "captured", currency)?,
        refunded: pg_amount(row, "refunded", currency)?,
        fees: pg_amount(row, "fees", currency)?,
        carried: pg_amount(row, "carried", currency)?,
        amount: pg_amount(row, "amount", currency)?,
        debt: pg_amount(row, "debt", currency)?,
        transactions: count("transactions")?,
        refunds: count("refunds")?,
        request_uid: ShortHashCode::from_bytes(uid),
        created_at: time(row, "created_at")?,
        paid_at: opt_time_col(row, "paid_at")?,
        bank_row_id: row
            .try_get::<Option<i64>, _>("bank_row_id")?
            .map(|r| id_from_sql("bank row id", r))
            .transpose()?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(u32::MAX),
        last_error: row.try_get("last_error")?,
    })
}

/// `(count, sum)` of a covered set: `SELECT COUNT(*), SUM(…_val), SUM(…_frac)`.
async fn covered_sum(
    tx: &mut cardcash_store::PgTx,
    sql: &'static str,
    id: i64,
    currency: Currency,
) -> Result<(i64, Amount), StoreError> {
    let (n, v, f): (i64, i64, i64) = sqlx::query_as(sql).bind(id).fetch_one(tx.conn()).await?;
    Ok((n, amount_from_sums(currency, v, f)?))
}

pub(super) async fn create_payout(
    db: &PgDb,
    new: &NewPayout,
) -> Result<(Option<PayoutRow>, u64), StoreError> {
    cardcash_store::retry(|| create_payout_once(db, new)).await
}

async fn create_payout_once(
    db: &PgDb,
    new: &NewPayout,
) -> Result<(Option<PayoutRow>, u64), StoreError> {
    let space = super::sql_id(new.space_id, "space id")?;
    let currency = new.currency.as_str();
    let due = new.due_before.to_sql();
    let fulfill = TransactionState::Fulfill.as_str();
    let mut tx = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PAYOUT_LOCK)
        .execute(tx.conn())
        .await?;
    // Statements below each take a fresh snapshot (READ COMMITTED): they see every payout
    // committed before the lock was granted.
    let finalized = sqlx::query(
        "UPDATE card_transaction SET state = $1, completed_val = amount_val, \
         completed_frac = amount_frac, completed_at = fulfill_at \
         WHERE state = $2 AND fulfill_at IS NOT NULL AND fulfill_at <= $3",
    )
    .bind(fulfill)
    .bind(TransactionState::Authorized.as_str())
    .bind(new.now.to_sql())
    .execute(tx.conn())
    .await?
    .rows_affected();
    let any_due: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM card_transaction WHERE payout_id IS NULL \
         AND state = $1 AND space_id = $2 AND currency = $3 AND completed_at <= $4)",
    )
    .bind(fulfill)
    .bind(space)
    .bind(currency)
    .bind(due)
    .fetch_one(tx.conn())
    .await?;
    if !any_due {
        tx.commit().await?;
        return Ok((None, finalized));
    }
    let carried = sqlx::query(
        "SELECT debt_val, debt_frac FROM payout WHERE space_id = $1 AND currency = $2 \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(space)
    .bind(currency)
    .fetch_optional(tx.conn())
    .await?
    .map(|row| pg_amount(&row, "debt", new.currency))
    .transpose()?
    .unwrap_or_else(|| Amount::zero(&new.currency));
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO payout (space_id, currency, captured_val, captured_frac, refunded_val, \
         refunded_frac, fees_val, fees_frac, carried_val, carried_frac, amount_val, \
         amount_frac, debt_val, debt_frac, transactions, refunds, request_uid, state, \
         created_at) VALUES ($1, $2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, $3, $4, $5) \
         RETURNING id",
    )
    .bind(space)
    .bind(currency)
    .bind(new.request_uid.as_bytes().as_slice())
    .bind(PayoutState::Netted.as_str())
    .bind(new.now.to_sql())
    .fetch_one(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE card_transaction SET payout_id = $1 WHERE payout_id IS NULL AND state = $2 \
         AND space_id = $3 AND currency = $4 AND completed_at <= $5",
    )
    .bind(id)
    .bind(fulfill)
    .bind(space)
    .bind(currency)
    .bind(due)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE refund SET payout_id = $1 WHERE payout_id IS NULL AND space_id = $2 \
         AND EXISTS (SELECT 1 FROM card_transaction AS t WHERE t.id = refund.transaction_id \
         AND t.payout_id IS NOT NULL AND t.currency = $3)",
    )
    .bind(id)
    .bind(space)
    .bind(currency)
    .execute(tx.conn())
    .await?;
    let (transactions, captured) = covered_sum(
        &mut tx,
        "SELECT COUNT(*), COALESCE(SUM(completed_val), 0)::BIGINT, \
         COALESCE(SUM(completed_frac), 0)::BIGINT FROM card_transaction WHERE payout_id = $1",
        id,
        new.currency,
    )
    .await?;
    let (refunds, refunded) = covered_sum(
        &mut tx,
        "SELECT COUNT(*), COALESCE(SUM(amount_val), 0)::BIGINT, \
         COALESCE(SUM(amount_frac), 0)::BIGINT FROM refund WHERE payout_id = $1",
        id,
        new.currency,
    )
    .await?;
    let covered = Covered {
        transactions,
        captured,
        refunded,
    };
    let settled = settle_covered(new, &covered, &carried)?;
    let s = &settled.settlement;
    let count = |n: i64| {
        i32::try_from(n).map_err(|_| StoreError::Internal(format!("payout covers {n} rows")))
    };
    let sql = concat!(
        "UPDATE payout SET captured_val = $2, captured_frac = $3, refunded_val = $4, \
         refunded_frac = $5, fees_val = $6, fees_frac = $7, carried_val = $8, carried_frac = $9, \
         amount_val = $10, amount_frac = $11, debt_val = $12, debt_frac = $13, \
         transactions = $14, refunds = $15, state = $16 WHERE id = $1 RETURNING ",
        payout_columns!()
    );
    let mut query = sqlx::query(sql).bind(id);
    for amount in [
        &captured,
        &refunded,
        &settled.fees,
        &carried,
        &s.amount,
        &s.debt,
    ] {
        let (v, f) = amount_to_columns(amount);
        query = query.bind(v).bind(f);
    }
    let row = query
        .bind(count(transactions)?)
        .bind(count(refunds)?)
        .bind(initial_state(s).as_str())
        .fetch_one(tx.conn())
        .await?;
    let row = payout_row(&row)?;
    tx.notify(TOPIC_PAYOUT, &row.id.to_string());
    tx.commit().await?;
    Ok((Some(row), finalized))
}

pub(super) async fn pending_payouts(db: &PgDb, space: i64) -> Result<Vec<PayoutRow>, StoreError> {
    let sql = concat!(
        "SELECT ",
        payout_columns!(),
        " FROM payout WHERE state = $1 AND space_id = $2 ORDER BY id"
    );
    let rows = retrying(|| {
        sqlx::query(sql)
            .bind(PayoutState::Pending.as_str())
            .bind(space)
            .fetch_all(db.pool())
    })
    .await?;
    rows.iter().map(payout_row).collect()
}

pub(super) async fn payouts(
    db: &PgDb,
    space: i64,
    limit: u32,
) -> Result<Vec<PayoutRow>, StoreError> {
    let sql = concat!(
        "SELECT ",
        payout_columns!(),
        " FROM payout WHERE space_id = $1 ORDER BY id DESC LIMIT $2"
    );
    let rows = retrying(|| {
        sqlx::query(sql)
            .bind(space)
            .bind(i64::from(limit))
            .fetch_all(db.pool())
    })
    .await?;
    rows.iter().map(payout_row).collect()
}

pub(super) async fn mark_payout_paid(
    db: &PgDb,
    id: i64,
    bank_row: i64,
    now: IsoTime,
) -> Result<bool, StoreError> {
    let done = retrying(|| {
        sqlx::query(
            "UPDATE payout SET state = $2, bank_row_id = $3, paid_at = $4 \
             WHERE id = $1 AND state = $5",
        )
        .bind(id)
        .bind(PayoutState::Paid.as_str())
        .bind(bank_row)
        .bind(now.to_sql())
        .bind(PayoutState::Pending.as_str())
        .execute(db.pool())
    })
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn record_payout_failure(
    db: &PgDb,
    id: i64,
    error: &str,
) -> Result<(), StoreError> {
    retrying(|| {
        sqlx::query("UPDATE payout SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
            .bind(id)
            .bind(error)
            .execute(db.pool())
    })
    .await?;
    Ok(())
}

pub(super) async fn next_unpaid_capture(
    db: &PgDb,
    space: i64,
    currency: &Currency,
) -> Result<Option<IsoTime>, StoreError> {
    let next: Option<i64> = retrying(|| {
        sqlx::query_scalar(
            "SELECT MIN(CASE WHEN state = $1 THEN completed_at ELSE fulfill_at END) \
             FROM card_transaction WHERE payout_id IS NULL AND space_id = $3 AND currency = $4 \
             AND (state = $1 OR (state = $2 AND fulfill_at IS NOT NULL))",
        )
        .bind(TransactionState::Fulfill.as_str())
        .bind(TransactionState::Authorized.as_str())
        .bind(space)
        .bind(currency.as_str())
        .fetch_one(db.pool())
    })
    .await?;
    Ok(next.map(IsoTime::from_sql))
}

pub(super) async fn payout_items(db: &PgDb, id: i64) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
    let ids = |sql: &'static str| async move {
        let rows: Vec<i64> =
            retrying(|| sqlx::query_scalar(sql).bind(id).fetch_all(db.pool())).await?;
        rows.into_iter()
            .map(|r| id_from_sql("id", r))
            .collect::<Result<Vec<u64>, StoreError>>()
    };
    Ok((
        ids("SELECT id FROM card_transaction WHERE payout_id = $1 ORDER BY id").await?,
        ids("SELECT id FROM refund WHERE payout_id = $1 ORDER BY id").await?,
    ))
}
