//! Wire-gateway transfers from the exchange, executed as card refunds; outgoing history.

use cardcash_store::{StoreError, Tx};
use cardcash_util::{Amount, HashCode, ShortHashCode};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{C2ecStore, TOPIC_OUTGOING, TOPIC_REFUND, amount_cols, corrupt};

const COLUMNS: &str = "row_id, request_uid, request_hash, amount_val, amount_frac, wtid, \
    exchange_base_url, credit_account, target_tx_id, created_at, status, refund_id, failure, attempts";

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

    /// Settles a transfer (`refunded` or `failed`) or reschedules it (`pending` with `next_at`).
    pub async fn set_transfer_state(
        &self,
        tx: &mut Tx,
        row_id: i64,
        status: &str,
        refund_id: Option<&str>,
        failure: Option<&str>,
        next_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
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
