//! Wire-gateway transfers from the exchange, executed as card refunds; their outcomes; the
//! outgoing history.
//!
//! A transfer is accepted only if the card can take it: its credit account must name the card
//! transaction of a confirmed withdrawal, and everything promised back to that transaction
//! (pending and refunded transfers) may never exceed what the withdrawal credited. The check
//! and the insert are one write transaction; on PostgreSQL the withdrawal row is locked first
//! (`FOR UPDATE`), on SQLite the write transaction is exclusive, so two racing transfers cannot
//! both pass. Status strings map to the Wire Gateway's transfer states: `pending` (without a
//! failure note: `pending`; with one, after a transient error: `transient_failure`),
//! `refunded` (`success`), `failed` (`permanent_failure`). A transfer enters the outgoing
//! history (table `outgoing`, numbered in order of success) when its refund succeeds.

use cardcash_api::wire_gateway::TransferState;
use cardcash_store::{Engine, StoreError, Tx};
use cardcash_util::{Amount, HashCode, ShortHashCode};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{C2ecStore, TOPIC_OUTGOING, TOPIC_REFUND, amount_cols, corrupt, now_micros};

const COLUMNS: &str = "row_id, request_uid, request_hash, amount_val, amount_frac, wtid, \
    exchange_base_url, credit_account, target_tx_id, created_at, status, refund_id, failure, attempts";

/// [`COLUMNS`] of the transfer joined as `t`.
const T_COLUMNS: &str = "t.row_id, t.request_uid, t.request_hash, t.amount_val, t.amount_frac, \
    t.wtid, t.exchange_base_url, t.credit_account, t.target_tx_id, t.created_at, t.status, \
    t.refund_id, t.failure, t.attempts";

/// The SQL condition selecting transfers in `state` (see the module docs).
fn state_condition(state: TransferState) -> &'static str {
    match state {
        TransferState::Pending => "status = 'pending' AND failure IS NULL",
        TransferState::TransientFailure => "status = 'pending' AND failure IS NOT NULL",
        TransferState::PermanentFailure => "status = 'failed'",
        TransferState::Success => "status = 'refunded'",
    }
}

/// A stored transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRow {
    pub row_id: i64,
    pub request_uid: HashCode,
    pub amount: Amount,
    pub wtid: ShortHashCode,
    pub exchange_base_url: String,
    pub credit_account: String,
    pub target_tx_id: Option<String>,
    pub created_at: i64,
    /// `pending`, `refunded` or `failed`.
    pub status: String,
    pub refund_id: Option<String>,
    pub failure: Option<String>,
    pub attempts: i64,
}

impl TransferRow {
    /// The Wire Gateway state of the stored status (see the module docs).
    pub fn state(&self) -> TransferState {
        match (self.status.as_str(), &self.failure) {
            ("refunded", _) => TransferState::Success,
            ("failed", _) => TransferState::PermanentFailure,
            (_, Some(_)) => TransferState::TransientFailure,
            (_, None) => TransferState::Pending,
        }
    }
}

/// A row of the outgoing history: a transfer the card processor carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRow {
    /// The history's row id (not the transfer's).
    pub row_id: i64,
    /// When the refund succeeded, in microseconds.
    pub date: i64,
    pub transfer: TransferRow,
}

/// Outcome of [`C2ecStore::accept_transfer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Recorded now (`new`), or the identical request earlier (idempotent replay).
    Accepted {
        row_id: i64,
        created_at: i64,
        new: bool,
    },
    /// Same `request_uid`, different request.
    RequestUidReuse,
    /// Another transfer already used this `wtid`.
    WtidReuse,
    /// The credit account names no card transaction of a confirmed withdrawal.
    UnknownCardTransaction,
    /// More than what the card paid in and is not yet promised back; `left` could still go.
    ExceedsPayment { left: Amount },
}

/// A new transfer from `POST /transfer`.
#[derive(Debug, Clone)]
pub struct NewTransfer<'a> {
    pub request_uid: &'a HashCode,
    pub request_hash: &'a [u8],
    pub amount: &'a Amount,
    pub wtid: &'a ShortHashCode,
    pub exchange_base_url: &'a str,
    pub credit_account: &'a str,
    pub target_tx_id: Option<&'a str>,
    pub now: i64,
}

/// Outcome of recording a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// Recorded now, or the identical request earlier (idempotent replay).
    Accepted { row_id: i64, created_at: i64 },
    /// Same `request_uid`, different request.
    RequestUidReuse,
}

impl C2ecStore {
    fn transfer_from(&self, row: &AnyRow) -> Result<TransferRow, StoreError> {
        let uid: Vec<u8> = row.try_get("request_uid")?;
        let wtid: Vec<u8> = row.try_get("wtid")?;
        Ok(TransferRow {
            row_id: row.try_get("row_id")?,
            request_uid: HashCode::from_slice(&uid).ok_or_else(|| corrupt("request_uid"))?,
            amount: self.amount(row, "amount")?,
            wtid: ShortHashCode::from_slice(&wtid).ok_or_else(|| corrupt("wtid"))?,
            exchange_base_url: row.try_get("exchange_base_url")?,
            credit_account: row.try_get("credit_account")?,
            target_tx_id: row.try_get("target_tx_id")?,
            created_at: row.try_get("created_at")?,
            status: row.try_get("status")?,
            refund_id: row.try_get("refund_id")?,
            failure: row.try_get("failure")?,
            attempts: row.try_get("attempts")?,
        })
    }

    /// Records a transfer, idempotently on `request_uid`. A transfer whose credit account is
    /// none of our card transactions is recorded as `failed` right away (it stays in the
    /// outgoing history: the exchange made it, and an operator must settle it).
    pub async fn insert_transfer(
        &self,
        new: &NewTransfer<'_>,
    ) -> Result<TransferOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let (av, af) = amount_cols(new.amount);
        let (status, failure) = match new.target_tx_id {
            Some(_) => ("pending", None),
            None => (
                "failed",
                Some("credit account is not a card transaction of this provider"),
            ),
        };
        let inserted = sqlx::query(
            "INSERT INTO transfers (request_uid, request_hash, amount_val, amount_frac, wtid, \
               exchange_base_url, credit_account, target_tx_id, created_at, status, failure, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $9) \
             ON CONFLICT (request_uid) DO NOTHING RETURNING row_id",
        )
        .bind(new.request_uid.as_bytes().to_vec())
        .bind(new.request_hash.to_vec())
        .bind(av)
        .bind(af)
        .bind(new.wtid.as_bytes().to_vec())
        .bind(new.exchange_base_url)
        .bind(new.credit_account)
        .bind(new.target_tx_id)
        .bind(new.now)
        .bind(status)
        .bind(failure)
        .fetch_optional(tx.conn())
        .await?;
        let outcome = match inserted {
            Some(row) => {
                tx.notify(TOPIC_OUTGOING, "");
                if status == "pending" {
                    tx.notify(TOPIC_REFUND, "");
                }
                TransferOutcome::Accepted {
                    row_id: row.try_get("row_id")?,
                    created_at: new.now,
                }
            }
            None => {
                let row = sqlx::query(
                    "SELECT row_id, request_hash, created_at FROM transfers WHERE request_uid = $1",
                )
                .bind(new.request_uid.as_bytes().to_vec())
                .fetch_one(tx.conn())
                .await?;
                let hash: Vec<u8> = row.try_get("request_hash")?;
                if hash == new.request_hash {
                    TransferOutcome::Accepted {
                        row_id: row.try_get("row_id")?,
                        created_at: row.try_get("created_at")?,
                    }
                } else {
                    TransferOutcome::RequestUidReuse
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records a transfer if the card can take it (see the module docs), idempotently on
    /// `request_uid`: the identical request again is the stored transfer, a different one with
    /// the same `request_uid` is [`AcceptOutcome::RequestUidReuse`]. Refused transfers leave no
    /// trace, so a replay of a refused request is decided again.
    pub async fn accept_transfer(
        &self,
        new: &NewTransfer<'_>,
    ) -> Result<AcceptOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let outcome = self.accept_transfer_in(&mut tx, new).await?;
        match outcome {
            AcceptOutcome::Accepted { new: true, .. } => tx.commit().await?,
            _ => tx.rollback().await?,
        }
        Ok(outcome)
    }

    async fn accept_transfer_in(
        &self,
        tx: &mut Tx,
        new: &NewTransfer<'_>,
    ) -> Result<AcceptOutcome, StoreError> {
        if let Some(earlier) = self.replay(tx, new).await? {
            return Ok(earlier);
        }
        let wtid_used = sqlx::query("SELECT row_id FROM transfers WHERE wtid = $1")
            .bind(new.wtid.as_bytes().to_vec())
            .fetch_optional(tx.conn())
            .await?;
        if wtid_used.is_some() {
            return Ok(AcceptOutcome::WtidReuse);
        }
        let Some(tx_id) = new.target_tx_id else {
            return Ok(AcceptOutcome::UnknownCardTransaction);
        };
        // What the withdrawal credited; on PostgreSQL the withdrawal row stays locked until
        // commit, so a racing transfer to the same card waits here and then sees ours.
        let lock = match tx.engine() {
            Engine::Postgres => " FOR UPDATE OF w",
            Engine::Sqlite => "",
        };
        let sql = format!(
            "SELECT i.amount_val, i.amount_frac FROM incoming i \
             JOIN withdrawals w ON w.withdrawal_id = i.withdrawal_id \
             WHERE w.provider_tx_id = $1{lock}"
        );
        let credited = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tx_id)
            .fetch_optional(tx.conn())
            .await?;
        let Some(credited) = credited else {
            return Ok(AcceptOutcome::UnknownCardTransaction);
        };
        let credited = self.amount(&credited, "amount")?;
        // A new statement: on PostgreSQL (READ COMMITTED) it sees transfers committed while we
        // waited for the lock.
        let promised = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount_val), 0) AS BIGINT) AS v, \
                    CAST(COALESCE(SUM(amount_frac), 0) AS BIGINT) AS f \
             FROM transfers WHERE target_tx_id = $1 AND status <> 'failed'",
        )
        .bind(tx_id)
        .fetch_one(tx.conn())
        .await?;
        let promised = self.sum(&promised)?;
        let left = credited
            .checked_sub(&promised)
            .unwrap_or_else(|_| Amount::zero(self.currency()));
        if *new.amount > left {
            return Ok(AcceptOutcome::ExceedsPayment { left });
        }
        let (av, af) = amount_cols(new.amount);
        let inserted = sqlx::query(
            "INSERT INTO transfers (request_uid, request_hash, amount_val, amount_frac, wtid, \
               exchange_base_url, credit_account, target_tx_id, created_at, status, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $9) \
             ON CONFLICT (request_uid) DO NOTHING RETURNING row_id",
        )
        .bind(new.request_uid.as_bytes().to_vec())
        .bind(new.request_hash.to_vec())
        .bind(av)
        .bind(af)
        .bind(new.wtid.as_bytes().to_vec())
        .bind(new.exchange_base_url)
        .bind(new.credit_account)
        .bind(tx_id)
        .bind(new.now)
        .fetch_optional(tx.conn())
        .await?;
        match inserted {
            Some(row) => {
                tx.notify(TOPIC_REFUND, "");
                Ok(AcceptOutcome::Accepted {
                    row_id: row.try_get("row_id")?,
                    created_at: new.now,
                    new: true,
                })
            }
            // A concurrent request with the same request_uid committed first (PostgreSQL):
            // answer as its replay.
            None => self
                .replay(tx, new)
                .await?
                .ok_or_else(|| corrupt("transfer vanished after a request_uid conflict")),
        }
    }

    /// The answer to a replayed `request_uid`, if it was used before.
    async fn replay(
        &self,
        tx: &mut Tx,
        new: &NewTransfer<'_>,
    ) -> Result<Option<AcceptOutcome>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT row_id, request_hash, created_at FROM transfers WHERE request_uid = $1",
        )
        .bind(new.request_uid.as_bytes().to_vec())
        .fetch_optional(tx.conn())
        .await?
        else {
            return Ok(None);
        };
        let hash: Vec<u8> = row.try_get("request_hash")?;
        Ok(Some(if hash == new.request_hash {
            AcceptOutcome::Accepted {
                row_id: row.try_get("row_id")?,
                created_at: row.try_get("created_at")?,
                new: false,
            }
        } else {
            AcceptOutcome::RequestUidReuse
        }))
    }

    /// An amount from the separately summed columns `v` and `f` (fractions may carry).
    fn sum(&self, row: &AnyRow) -> Result<Amount, StoreError> {
        let v: i64 = row.try_get("v")?;
        let f: i64 = row.try_get("f")?;
        let units = u128::try_from(v)
            .ok()
            .zip(u128::try_from(f).ok())
            .map(|(v, f)| v * 100_000_000 + f)
            .ok_or_else(|| corrupt("negative transfer sum"))?;
        Amount::from_units(self.currency(), units)
            .map_err(|e| corrupt(format!("transfer sum: {e}")))
    }

    /// A page of transfers by transfer row id (`GET /transfers`), optionally in one state.
    pub async fn transfer_page(
        &self,
        ascending: bool,
        start: i64,
        count: i64,
        state: Option<TransferState>,
    ) -> Result<Vec<TransferRow>, StoreError> {
        let (cmp, order) = if ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        let filter = state
            .map(|s| format!(" AND {}", state_condition(s)))
            .unwrap_or_default();
        let sql = format!(
            "SELECT {COLUMNS} FROM transfers WHERE row_id {cmp} $1{filter} \
             ORDER BY row_id {order} LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(start)
            .bind(count)
            .fetch_all(self.db().pool())
            .await?;
        rows.iter().map(|r| self.transfer_from(r)).collect()
    }

    /// A page of the outgoing history (transfers that reached the card), by history row id.
    pub async fn outgoing_page(
        &self,
        ascending: bool,
        start: i64,
        count: i64,
    ) -> Result<Vec<OutgoingRow>, StoreError> {
        let (cmp, order) = if ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        let sql = format!(
            "SELECT o.row_id AS out_id, o.created_at AS out_at, {T_COLUMNS} \
             FROM outgoing o JOIN transfers t ON t.row_id = o.transfer_id \
             WHERE o.row_id {cmp} $1 ORDER BY o.row_id {order} LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(start)
            .bind(count)
            .fetch_all(self.db().pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OutgoingRow {
                    row_id: r.try_get("out_id")?,
                    date: r.try_get("out_at")?,
                    transfer: self.transfer_from(r)?,
                })
            })
            .collect()
    }

    pub async fn get_transfer(&self, row_id: i64) -> Result<Option<TransferRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM transfers WHERE row_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(row_id)
            .fetch_optional(self.db().pool())
            .await?;
        row.as_ref().map(|r| self.transfer_from(r)).transpose()
    }

    /// Pending transfers due at `now`.
    pub async fn due_transfers(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<TransferRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM transfers WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(self.db().pool())
            .await?;
        rows.iter().map(|r| self.transfer_from(r)).collect()
    }

    /// When the next refund work (transfer or own refund) falls due.
    pub async fn next_refund_at(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT MIN(next_attempt_at) FROM transfers WHERE status = 'pending') AS t, \
                    (SELECT MIN(refund_next_at) FROM withdrawals WHERE refund_state = 'due') AS w",
        )
        .fetch_one(self.db().pool())
        .await?;
        let t: Option<i64> = row.try_get("t")?;
        let w: Option<i64> = row.try_get("w")?;
        Ok(match (t, w) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// What was already sent back to a card transaction by transfers (not counting `row_id`).
    pub async fn refunded_by_transfers(
        &self,
        tx_id: &str,
        except_row: i64,
    ) -> Result<Amount, StoreError> {
        let rows = sqlx::query(
            "SELECT amount_val, amount_frac FROM transfers \
             WHERE target_tx_id = $1 AND status = 'refunded' AND row_id <> $2",
        )
        .bind(tx_id)
        .bind(except_row)
        .fetch_all(self.db().pool())
        .await?;
        let mut sum = Amount::zero(self.currency());
        for r in &rows {
            let a = self.amount(r, "amount")?;
            sum = sum
                .checked_add(&a)
                .map_err(|e| corrupt(format!("refund sum: {e}")))?;
        }
        Ok(sum)
    }

    /// Settles a transfer (`refunded` or `failed`) or reschedules it (`pending` with `next_at`;
    /// a `failure` note makes it a transient failure). A refunded transfer enters the outgoing
    /// history in the same transaction.
    pub async fn set_transfer_state(
        &self,
        tx: &mut Tx,
        row_id: i64,
        status: &str,
        refund_id: Option<&str>,
        failure: Option<&str>,
        next_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE transfers SET status = $1, refund_id = COALESCE($2, refund_id), failure = $3, \
               next_attempt_at = $4, attempts = attempts + 1 \
             WHERE row_id = $5 AND status = 'pending'",
        )
        .bind(status)
        .bind(refund_id)
        .bind(failure)
        .bind(next_at)
        .bind(row_id)
        .execute(tx.conn())
        .await?;
        if status == "refunded" && updated.rows_affected() == 1 {
            sqlx::query("INSERT INTO outgoing (transfer_id, created_at) VALUES ($1, $2)")
                .bind(row_id)
                .bind(now_micros())
                .execute(tx.conn())
                .await?;
            tx.notify(TOPIC_OUTGOING, "");
        }
        Ok(())
    }

    /// Outgoing history page (every accepted transfer), paginated like the incoming one.
    pub async fn outgoing_history(
        &self,
        limit: i64,
        offset: Option<i64>,
    ) -> Result<Vec<TransferRow>, StoreError> {
        let (sql, start) = if limit >= 0 {
            (
                format!(
                    "SELECT {COLUMNS} FROM transfers WHERE row_id > $1 ORDER BY row_id ASC LIMIT $2"
                ),
                offset.unwrap_or(0),
            )
        } else {
            (
                format!(
                    "SELECT {COLUMNS} FROM transfers WHERE row_id < $1 ORDER BY row_id DESC LIMIT $2"
                ),
                offset.unwrap_or(i64::MAX),
            )
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(start)
            .bind(limit.saturating_abs())
            .fetch_all(self.db().pool())
            .await?;
        rows.iter().map(|r| self.transfer_from(r)).collect()
    }
}
