//! The card processor on PostgreSQL: every operation is ONE statement (autocommitted), the hot
//! writes being calls of the stored functions of `migrations/postgres/0001_init.sql`, which
//! decide under the row lock and notify with `pg_notify` themselves. Rows are decoded by column
//! name.

use cardcash_store::columns::{amount_to_columns, pg_amount};
use cardcash_store::{PgDb, StoreError};
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::row::{
    currency_from_sql, id_from_sql, meta_from_sql, meta_to_sql, parse_stored, secret_from_sql,
};
use super::{
    ApiUserRow, NewRefund, NewTransaction, RefundOutcome, RefundRow, StateChange, Sweep,
    TOPIC_FINALITY_SCHEDULED, TransactionRow,
};
use crate::config::Role;
use crate::processing::Transition;
use cardcash_api::cardproc::{DecimalAmount, IsoTime, TransactionState};
use cardcash_util::Currency;

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
