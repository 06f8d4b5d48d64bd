//! Withdrawal operations, their audit trail and the incoming history they produce.

use cardcash_store::{StoreError, Tx};
use cardcash_util::{Amount, EddsaPublicKey};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    C2ecStore, TOPIC_ATTEST, TOPIC_INCOMING, TOPIC_REFUND, TOPIC_WITHDRAWAL, amount_cols,
    amount_cols_opt, corrupt,
};
use crate::state::Status;
use cardcash_util::Wopid;

const COLUMNS: &str = "withdrawal_id, wopid, terminal_id, request_uid, request_hash, \
    amount_val, amount_frac, suggested_val, suggested_frac, card_fees_val, card_fees_frac, \
    status, reserve_pub, exchange_account, provider_tx_id, created_at, selected_at, checked_at, \
    finished_at, attempts, next_attempt_at, abort_reason, refund_state, refund_id, refund_attempts";

/// A stored withdrawal operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalRow {
    pub withdrawal_id: i64,
    pub wopid: Wopid,
    pub terminal_id: i64,
    pub request_uid: String,
    pub request_hash: Vec<u8>,
    /// Fixed by the terminal at setup, or at registration (wallet's choice or the suggestion).
    pub amount: Option<Amount>,
    pub suggested_amount: Option<Amount>,
    /// Card (terminal) fees charged on top of the amount.
    pub card_fees: Amount,
    pub status: Status,
    pub reserve_pub: Option<EddsaPublicKey>,
    pub exchange_account: Option<String>,
    pub provider_tx_id: Option<String>,
    pub created_at: i64,
    pub selected_at: Option<i64>,
    pub checked_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub abort_reason: Option<String>,
    pub refund_state: String,
    pub refund_id: Option<String>,
    pub refund_attempts: i64,
}

impl WithdrawalRow {
    /// What the card must be charged: amount plus card fees (`None` while the amount is open,
    /// or for a row whose sum is no amount, which only data written before setup and
    /// registration checked the sums can hold).
    pub fn charge(&self) -> Option<Amount> {
        self.amount
            .as_ref()
            .and_then(|a| crate::state::charge(a, &self.card_fees))
    }
}

/// A further card transaction reported for an operation (table `extra_payments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraPaymentRow {
    pub extra_id: i64,
    pub provider_tx_id: String,
    pub refund_attempts: i64,
    pub withdrawal_id: i64,
    pub wopid: Wopid,
    /// The status of the operation it was reported for.
    pub status: Status,
}

/// A new operation from `POST /withdrawals`.
#[derive(Debug, Clone)]
pub struct NewWithdrawal<'a> {
    pub wopid: Wopid,
    pub terminal_id: i64,
    pub request_uid: &'a str,
    pub request_hash: &'a [u8],
    pub amount: Option<&'a Amount>,
    pub suggested_amount: Option<&'a Amount>,
    pub card_fees: &'a Amount,
    pub now: i64,
}

/// Outcome of inserting a new operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    Created(Wopid),
    /// Same `request_uid` and the same request: the original operation.
    Replay(Wopid),
    /// Same `request_uid`, different request.
    Conflict,
}

/// An audit event to append.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub old: Option<Status>,
    pub new: Status,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub old_status: Option<String>,
    pub new_status: String,
    pub actor: String,
    pub reason: Option<String>,
    pub created_at: i64,
}

/// A confirmed withdrawal as the exchange sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRow {
    pub row_id: i64,
    pub reserve_pub: EddsaPublicKey,
    pub amount: Amount,
    pub debit_account: String,
    pub created_at: i64,
}

/// Outcome of adding an incoming row directly (admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddIncomingOutcome {
    Added { row_id: i64, created_at: i64 },
    ReservePubReuse,
}

impl C2ecStore {
    fn withdrawal_from(&self, row: &AnyRow) -> Result<WithdrawalRow, StoreError> {
        let wopid: Vec<u8> = row.try_get("wopid")?;
        let status: String = row.try_get("status")?;
        let reserve_pub: Option<Vec<u8>> = row.try_get("reserve_pub")?;
        Ok(WithdrawalRow {
            withdrawal_id: row.try_get("withdrawal_id")?,
            wopid: Wopid::from_slice(&wopid).ok_or_else(|| corrupt("wopid length"))?,
            terminal_id: row.try_get("terminal_id")?,
            request_uid: row.try_get("request_uid")?,
            request_hash: row.try_get("request_hash")?,
            amount: self.amount_opt(row, "amount")?,
            suggested_amount: self.amount_opt(row, "suggested")?,
            card_fees: self.amount(row, "card_fees")?,
            status: status.parse().map_err(|e| corrupt(format!("{e}")))?,
            reserve_pub: reserve_pub
                .map(|b| EddsaPublicKey::from_slice(&b).ok_or_else(|| corrupt("reserve_pub")))
                .transpose()?,
            exchange_account: row.try_get("exchange_account")?,
            provider_tx_id: row.try_get("provider_tx_id")?,
            created_at: row.try_get("created_at")?,
            selected_at: row.try_get("selected_at")?,
            checked_at: row.try_get("checked_at")?,
            finished_at: row.try_get("finished_at")?,
            attempts: row.try_get("attempts")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            abort_reason: row.try_get("abort_reason")?,
            refund_state: row.try_get("refund_state")?,
            refund_id: row.try_get("refund_id")?,
            refund_attempts: row.try_get("refund_attempts")?,
        })
    }

    /// Inserts a new operation, idempotently on `(terminal, request_uid)`.
    pub async fn insert_withdrawal(
        &self,
        new: &NewWithdrawal<'_>,
    ) -> Result<InsertOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let (av, af) = amount_cols_opt(new.amount);
        let (sv, sf) = amount_cols_opt(new.suggested_amount);
        let (fv, ff) = amount_cols(new.card_fees);
        let inserted = sqlx::query(
            "INSERT INTO withdrawals (wopid, terminal_id, request_uid, request_hash, \
               amount_val, amount_frac, suggested_val, suggested_frac, card_fees_val, card_fees_frac, \
               status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11) \
             ON CONFLICT (terminal_id, request_uid) DO NOTHING \
             RETURNING withdrawal_id",
        )
        .bind(new.wopid.as_bytes().to_vec())
        .bind(new.terminal_id)
        .bind(new.request_uid)
        .bind(new.request_hash.to_vec())
        .bind(av)
        .bind(af)
        .bind(sv)
        .bind(sf)
        .bind(fv)
        .bind(ff)
        .bind(new.now)
        .fetch_optional(tx.conn())
        .await?;
        let outcome = match inserted {
            Some(row) => {
                let id: i64 = row.try_get("withdrawal_id")?;
                insert_event(
                    &mut tx,
                    id,
                    &Event {
                        old: None,
                        new: Status::Pending,
                        actor: "terminal",
                        reason: Some("setup"),
                    },
                    new.now,
                )
                .await?;
                InsertOutcome::Created(new.wopid)
            }
            None => {
                let row = sqlx::query(
                    "SELECT wopid, request_hash FROM withdrawals \
                     WHERE terminal_id = $1 AND request_uid = $2",
                )
                .bind(new.terminal_id)
                .bind(new.request_uid)
                .fetch_one(tx.conn())
                .await?;
                let wopid: Vec<u8> = row.try_get("wopid")?;
                let hash: Vec<u8> = row.try_get("request_hash")?;
                let wopid = Wopid::from_slice(&wopid).ok_or_else(|| corrupt("wopid length"))?;
                if hash == new.request_hash {
                    InsertOutcome::Replay(wopid)
                } else {
                    InsertOutcome::Conflict
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Loads an operation by WOPID (read-only, outside any transaction).
    pub async fn get_withdrawal(&self, wopid: &Wopid) -> Result<Option<WithdrawalRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM withdrawals WHERE wopid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(wopid.as_bytes().to_vec())
            .fetch_optional(self.db().pool())
            .await?;
        row.as_ref().map(|r| self.withdrawal_from(r)).transpose()
    }

    /// Loads an operation by WOPID inside a write transaction.
    pub async fn get_withdrawal_tx(
        &self,
        tx: &mut Tx,
        wopid: &Wopid,
    ) -> Result<Option<WithdrawalRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM withdrawals WHERE wopid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(wopid.as_bytes().to_vec())
            .fetch_optional(tx.conn())
            .await?;
        row.as_ref().map(|r| self.withdrawal_from(r)).transpose()
    }

    /// Loads an operation by its row id.
    pub async fn get_withdrawal_by_id(&self, id: i64) -> Result<Option<WithdrawalRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM withdrawals WHERE withdrawal_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db().pool())
            .await?;
        row.as_ref().map(|r| self.withdrawal_from(r)).transpose()
    }

    /// Whether a reserve public key is already used by another operation or incoming row.
    pub async fn reserve_pub_taken(
        &self,
        tx: &mut Tx,
        reserve_pub: &EddsaPublicKey,
        except_id: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM withdrawals WHERE reserve_pub = $1 AND withdrawal_id <> $2) \
                  + (SELECT COUNT(*) FROM incoming WHERE reserve_pub = $1) AS n",
        )
        .bind(reserve_pub.as_bytes().to_vec())
        .bind(except_id)
        .fetch_one(tx.conn())
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// `pending → selected`: binds reserve, exchange account and final amount. `false` if the
    /// operation was no longer pending. A card transaction reported while the operation was
    /// still pending is attested from now on.
    pub async fn select(
        &self,
        tx: &mut Tx,
        row: &WithdrawalRow,
        reserve_pub: &EddsaPublicKey,
        exchange_account: &str,
        amount: &Amount,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (av, af) = amount_cols(amount);
        let updated = sqlx::query(
            "UPDATE withdrawals SET status = 'selected', reserve_pub = $1, exchange_account = $2, \
               amount_val = $3, amount_frac = $4, selected_at = $5, \
               next_attempt_at = CASE WHEN provider_tx_id IS NULL THEN NULL ELSE $5 END \
             WHERE withdrawal_id = $6 AND status = 'pending' \
             RETURNING provider_tx_id",
        )
        .bind(reserve_pub.as_bytes().to_vec())
        .bind(exchange_account)
        .bind(av)
        .bind(af)
        .bind(now)
        .bind(row.withdrawal_id)
        .fetch_optional(tx.conn())
        .await?;
        let Some(updated) = updated else {
            return Ok(false);
        };
        self.changed(
            tx,
            row,
            Event {
                old: Some(Status::Pending),
                new: Status::Selected,
                actor: "wallet",
                reason: Some("reserve registered"),
            },
            now,
        )
        .await?;
        if updated
            .try_get::<Option<String>, _>("provider_tx_id")?
            .is_some()
        {
            tx.notify(TOPIC_ATTEST, "");
        }
        Ok(true)
    }

    /// Binds the card transaction the terminal reported to the operation, whatever its status
    /// (see `state::decide_check`): a selected operation is due for attestation at once, a
    /// pending one once a wallet registers, and on an aborted one the payment is due for refund.
    /// `false` if the operation changed status or got a transaction in the meantime.
    pub async fn record_check(
        &self,
        tx: &mut Tx,
        row: &WithdrawalRow,
        tx_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE withdrawals SET provider_tx_id = $1, checked_at = $2, \
               next_attempt_at = CASE WHEN status = 'selected' THEN $2 ELSE NULL END, \
               refund_state = CASE WHEN status = 'aborted' THEN 'due' ELSE refund_state END, \
               refund_next_at = CASE WHEN status = 'aborted' THEN $2 ELSE refund_next_at END \
             WHERE withdrawal_id = $3 AND status = $4 AND provider_tx_id IS NULL \
               AND status <> 'confirmed'",
        )
        .bind(tx_id)
        .bind(now)
        .bind(row.withdrawal_id)
        .bind(row.status.as_str())
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n == 1 {
            let reason = match row.status {
                Status::Aborted => {
                    format!("card transaction {tx_id} reported after abort; refund due")
                }
                Status::Pending => format!("card transaction {tx_id} reported before registration"),
                _ => format!("card transaction {tx_id} reported"),
            };
            insert_event(
                tx,
                row.withdrawal_id,
                &Event {
                    old: Some(row.status),
                    new: row.status,
                    actor: "terminal",
                    reason: Some(&reason),
                },
                now,
            )
            .await?;
            tx.notify(TOPIC_WITHDRAWAL, &row.wopid.to_string());
            match row.status {
                Status::Selected => tx.notify(TOPIC_ATTEST, ""),
                Status::Aborted => tx.notify(TOPIC_REFUND, ""),
                _ => {}
            }
        }
        Ok(n == 1)
    }

    /// Records a further card transaction for an operation that already has one bound: it can
    /// never fund the operation, so it is due for refund (the refund worker returns it only if
    /// it was captured for this operation). Idempotent per transaction id.
    pub async fn record_extra_payment(
        &self,
        tx: &mut Tx,
        row: &WithdrawalRow,
        tx_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO extra_payments (withdrawal_id, provider_tx_id, created_at, refund_next_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (provider_tx_id) DO NOTHING",
        )
        .bind(row.withdrawal_id)
        .bind(tx_id)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if inserted == 1 {
            insert_event(
                tx,
                row.withdrawal_id,
                &Event {
                    old: Some(row.status),
                    new: row.status,
                    actor: "terminal",
                    reason: Some(&format!(
                        "further card transaction {tx_id} reported; refund due"
                    )),
                },
                now,
            )
            .await?;
            tx.notify(TOPIC_REFUND, "");
        }
        Ok(())
    }

    /// `pending|selected → aborted`. Whenever a card transaction is bound to the operation at
    /// the moment of the update (decided by the database, not by the caller's possibly stale
    /// read), its refund becomes due: the refund worker returns the payment if it was captured
    /// for this operation. `unchecked_only` (expiry) leaves a selected operation alone once its
    /// terminal reported a transaction: the attestation decides those. `false` if the
    /// operation had left `from` in the meantime (or was checked, with `unchecked_only`).
    #[expect(
        clippy::too_many_arguments,
        reason = "one conditional update with its audit data"
    )]
    pub async fn abort(
        &self,
        tx: &mut Tx,
        row: &WithdrawalRow,
        from: Status,
        actor: &str,
        reason: &str,
        evidence: Option<&str>,
        unchecked_only: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE withdrawals SET status = 'aborted', abort_reason = $1, finished_at = $2, \
               evidence = COALESCE($3, evidence), next_attempt_at = NULL, \
               refund_state = CASE WHEN provider_tx_id IS NULL THEN refund_state ELSE 'due' END, \
               refund_next_at = CASE WHEN provider_tx_id IS NULL THEN refund_next_at ELSE $2 END \
             WHERE withdrawal_id = $4 AND status = $5 \
               AND NOT ($6 = 1 AND status = 'selected' AND provider_tx_id IS NOT NULL) \
             RETURNING refund_state",
        )
        .bind(reason)
        .bind(now)
        .bind(evidence)
        .bind(row.withdrawal_id)
        .bind(from.as_str())
        .bind(i64::from(unchecked_only))
        .fetch_optional(tx.conn())
        .await?;
        let Some(updated) = updated else {
            return Ok(false);
        };
        self.changed(
            tx,
            row,
            Event {
                old: Some(from),
                new: Status::Aborted,
                actor,
                reason: Some(reason),
            },
            now,
        )
        .await?;
        if updated.try_get::<String, _>("refund_state")? == "due" {
            tx.notify(TOPIC_REFUND, "");
        }
        Ok(true)
    }

    /// `selected → confirmed` and the incoming-history row, in the caller's transaction (so the
    /// reserve is credited exactly once, together with the confirmation). `None` if the
    /// operation was no longer selected.
    pub async fn confirm(
        &self,
        tx: &mut Tx,
        row: &WithdrawalRow,
        debit_account: &str,
        evidence: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (Some(reserve_pub), Some(amount)) = (&row.reserve_pub, &row.amount) else {
            return Err(corrupt("selected operation without reserve or amount"));
        };
        let n = sqlx::query(
            "UPDATE withdrawals SET status = 'confirmed', finished_at = $1, evidence = $2, \
               next_attempt_at = NULL \
             WHERE withdrawal_id = $3 AND status = 'selected'",
        )
        .bind(now)
        .bind(evidence)
        .bind(row.withdrawal_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(None);
        }
        let (av, af) = amount_cols(amount);
        let inserted = sqlx::query(
            "INSERT INTO incoming (withdrawal_id, reserve_pub, amount_val, amount_frac, debit_account, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING row_id",
        )
        .bind(row.withdrawal_id)
        .bind(reserve_pub.as_bytes().to_vec())
        .bind(av)
        .bind(af)
        .bind(debit_account)
        .bind(now)
        .fetch_one(tx.conn())
        .await?;
        let row_id: i64 = inserted.try_get("row_id")?;
        self.changed(
            tx,
            row,
            Event {
                old: Some(Status::Selected),
                new: Status::Confirmed,
                actor: "attestation",
                reason: Some("card payment attested"),
            },
            now,
        )
        .await?;
        tx.notify(TOPIC_INCOMING, "");
        Ok(Some(row_id))
    }

    /// Reschedules an attestation (provider unreachable or transaction not final yet).
    pub async fn reschedule_attestation(
        &self,
        tx: &mut Tx,
        row: &WithdrawalRow,
        attempts: i64,
        next_at: i64,
        note: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE withdrawals SET attempts = $1, next_attempt_at = $2 \
             WHERE withdrawal_id = $3 AND status = 'selected'",
        )
        .bind(attempts)
        .bind(next_at)
        .bind(row.withdrawal_id)
        .execute(tx.conn())
        .await?;
        insert_event(
            tx,
            row.withdrawal_id,
            &Event {
                old: Some(Status::Selected),
                new: Status::Selected,
                actor: "attestation",
                reason: Some(note),
            },
            now,
        )
        .await?;
        Ok(())
    }

    /// Operations whose attestation is due at `now`, oldest first.
    pub async fn due_attestations(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<WithdrawalRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM withdrawals \
             WHERE status = 'selected' AND provider_tx_id IS NOT NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(self.db().pool())
            .await?;
        rows.iter().map(|r| self.withdrawal_from(r)).collect()
    }

    /// When the next attestation falls due, if any is scheduled.
    pub async fn next_attestation_at(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS t FROM withdrawals \
             WHERE status = 'selected' AND provider_tx_id IS NOT NULL",
        )
        .fetch_one(self.db().pool())
        .await?;
        Ok(row.try_get("t")?)
    }

    /// Pending operations created before `pending_before` and selected-but-unchecked ones
    /// selected before `selected_before`: candidates for expiry.
    pub async fn expired(
        &self,
        pending_before: i64,
        selected_before: i64,
        limit: i64,
    ) -> Result<Vec<WithdrawalRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM withdrawals \
             WHERE (status = 'pending' AND created_at <= $1) \
                OR (status = 'selected' AND provider_tx_id IS NULL AND selected_at <= $2) \
             ORDER BY withdrawal_id LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(pending_before)
            .bind(selected_before)
            .bind(limit)
            .fetch_all(self.db().pool())
            .await?;
        rows.iter().map(|r| self.withdrawal_from(r)).collect()
    }

    /// When the next pending/selected operation could expire (the earliest creation or
    /// selection time among them).
    pub async fn oldest_open(&self) -> Result<(Option<i64>, Option<i64>), StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT MIN(created_at) FROM withdrawals WHERE status = 'pending') AS p, \
                    (SELECT MIN(selected_at) FROM withdrawals WHERE status = 'selected' AND provider_tx_id IS NULL) AS s",
        )
        .fetch_one(self.db().pool())
        .await?;
        Ok((row.try_get("p")?, row.try_get("s")?))
    }

    /// Aborted operations whose captured money is due to go back to the card.
    pub async fn due_refunds(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<WithdrawalRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM withdrawals WHERE refund_state = 'due' AND refund_next_at <= $1 \
             ORDER BY refund_next_at LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(self.db().pool())
            .await?;
        rows.iter().map(|r| self.withdrawal_from(r)).collect()
    }

    /// Settles or reschedules an operation's own refund. `state` is `done`, `not_needed` or
    /// `due` (with `next_at`).
    #[expect(
        clippy::too_many_arguments,
        reason = "one conditional update with its audit data"
    )]
    pub async fn set_refund_state(
        &self,
        tx: &mut Tx,
        row: &WithdrawalRow,
        state: &str,
        refund_id: Option<&str>,
        next_at: Option<i64>,
        note: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE withdrawals SET refund_state = $1, refund_id = COALESCE($2, refund_id), \
               refund_next_at = $3, refund_attempts = refund_attempts + 1 \
             WHERE withdrawal_id = $4 AND refund_state = 'due'",
        )
        .bind(state)
        .bind(refund_id)
        .bind(next_at)
        .bind(row.withdrawal_id)
        .execute(tx.conn())
        .await?;
        insert_event(
            tx,
            row.withdrawal_id,
            &Event {
                old: Some(row.status),
                new: row.status,
                actor: "refund",
                reason: Some(note),
            },
            now,
        )
        .await?;
        tx.notify(TOPIC_WITHDRAWAL, &row.wopid.to_string());
        Ok(())
    }

    /// Further card transactions of operations whose refund is due at `now`.
    pub async fn due_extra_refunds(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<ExtraPaymentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.extra_id, e.provider_tx_id, e.refund_attempts, w.withdrawal_id, w.wopid, w.status \
             FROM extra_payments e JOIN withdrawals w ON w.withdrawal_id = e.withdrawal_id \
             WHERE e.refund_state = 'due' AND e.refund_next_at <= $1 \
             ORDER BY e.refund_next_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.db().pool())
        .await?;
        rows.iter()
            .map(|r| {
                let wopid: Vec<u8> = r.try_get("wopid")?;
                let status: String = r.try_get("status")?;
                Ok(ExtraPaymentRow {
                    extra_id: r.try_get("extra_id")?,
                    provider_tx_id: r.try_get("provider_tx_id")?,
                    refund_attempts: r.try_get("refund_attempts")?,
                    withdrawal_id: r.try_get("withdrawal_id")?,
                    wopid: Wopid::from_slice(&wopid).ok_or_else(|| corrupt("wopid length"))?,
                    status: status.parse().map_err(|e| corrupt(format!("{e}")))?,
                })
            })
            .collect()
    }

    /// When the next refund of a further card transaction falls due, if any.
    pub async fn next_extra_refund_at(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(refund_next_at) AS t FROM extra_payments WHERE refund_state = 'due'",
        )
        .fetch_one(self.db().pool())
        .await?;
        Ok(row.try_get("t")?)
    }

    /// Settles or reschedules the refund of a further card transaction, like
    /// [`Self::set_refund_state`].
    #[expect(
        clippy::too_many_arguments,
        reason = "one conditional update with its audit data"
    )]
    pub async fn set_extra_refund_state(
        &self,
        tx: &mut Tx,
        e: &ExtraPaymentRow,
        state: &str,
        refund_id: Option<&str>,
        next_at: Option<i64>,
        note: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE extra_payments SET refund_state = $1, refund_id = COALESCE($2, refund_id), \
               refund_next_at = $3, refund_attempts = refund_attempts + 1 \
             WHERE extra_id = $4 AND refund_state = 'due'",
        )
        .bind(state)
        .bind(refund_id)
        .bind(next_at)
        .bind(e.extra_id)
        .execute(tx.conn())
        .await?;
        insert_event(
            tx,
            e.withdrawal_id,
            &Event {
                old: Some(e.status),
                new: e.status,
                actor: "refund",
                reason: Some(&format!("card transaction {}: {note}", e.provider_tx_id)),
            },
            now,
        )
        .await?;
        tx.notify(TOPIC_WITHDRAWAL, &e.wopid.to_string());
        Ok(())
    }

    /// The audit trail of one operation, oldest first.
    pub async fn events(&self, withdrawal_id: i64) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT old_status, new_status, actor, reason, created_at FROM withdrawal_events \
             WHERE withdrawal_id = $1 ORDER BY event_id",
        )
        .bind(withdrawal_id)
        .fetch_all(self.db().pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRow {
                    old_status: r.try_get("old_status")?,
                    new_status: r.try_get("new_status")?,
                    actor: r.try_get("actor")?,
                    reason: r.try_get("reason")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Writes the audit event of a status change and notifies the operation's waiters.
    async fn changed(
        &self,
        tx: &mut Tx,
        row: &WithdrawalRow,
        event: Event<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        insert_event(tx, row.withdrawal_id, &event, now).await?;
        tx.notify(TOPIC_WITHDRAWAL, &row.wopid.to_string());
        Ok(())
    }

    /// Incoming history page: `limit > 0` ascending after `offset`, `< 0` descending before it.
    pub async fn incoming_history(
        &self,
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
            .fetch_all(self.db().pool())
            .await?
        } else {
            sqlx::query(
                "SELECT row_id, reserve_pub, amount_val, amount_frac, debit_account, created_at \
                 FROM incoming WHERE row_id < $1 ORDER BY row_id DESC LIMIT $2",
            )
            .bind(offset.unwrap_or(i64::MAX))
            .bind(limit.saturating_neg())
            .fetch_all(self.db().pool())
            .await?
        };
        rows.iter()
            .map(|r| {
                let key: Vec<u8> = r.try_get("reserve_pub")?;
                Ok(IncomingRow {
                    row_id: r.try_get("row_id")?,
                    reserve_pub: EddsaPublicKey::from_slice(&key)
                        .ok_or_else(|| corrupt("reserve_pub"))?,
                    amount: self.amount(r, "amount")?,
                    debit_account: r.try_get("debit_account")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Adds an incoming row without a withdrawal (admin/add-incoming: tests and recovery).
    pub async fn add_incoming(
        &self,
        reserve_pub: &EddsaPublicKey,
        amount: &Amount,
        debit_account: &str,
        now: i64,
    ) -> Result<AddIncomingOutcome, StoreError> {
        let mut tx = self.begin().await?;
        if self.reserve_pub_taken(&mut tx, reserve_pub, -1).await? {
            tx.rollback().await?;
            return Ok(AddIncomingOutcome::ReservePubReuse);
        }
        let (av, af) = amount_cols(amount);
        let row = sqlx::query(
            "INSERT INTO incoming (withdrawal_id, reserve_pub, amount_val, amount_frac, debit_account, created_at) \
             VALUES (NULL, $1, $2, $3, $4, $5) RETURNING row_id",
        )
        .bind(reserve_pub.as_bytes().to_vec())
        .bind(av)
        .bind(af)
        .bind(debit_account)
        .bind(now)
        .fetch_one(tx.conn())
        .await?;
        let row_id: i64 = row.try_get("row_id")?;
        tx.notify(TOPIC_INCOMING, "");
        tx.commit().await?;
        Ok(AddIncomingOutcome::Added {
            row_id,
            created_at: now,
        })
    }

    /// The incoming row of a confirmed card transaction (what the exchange may send back).
    pub async fn incoming_for_tx(&self, tx_id: &str) -> Result<Option<Amount>, StoreError> {
        let row = sqlx::query(
            "SELECT i.amount_val, i.amount_frac FROM incoming i \
             JOIN withdrawals w ON w.withdrawal_id = i.withdrawal_id WHERE w.provider_tx_id = $1",
        )
        .bind(tx_id)
        .fetch_optional(self.db().pool())
        .await?;
        row.as_ref().map(|r| self.amount(r, "amount")).transpose()
    }
}

/// Appends an audit event.
pub(crate) async fn insert_event(
    tx: &mut Tx,
    withdrawal_id: i64,
    e: &Event<'_>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO withdrawal_events (withdrawal_id, old_status, new_status, actor, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(withdrawal_id)
    .bind(e.old.map(Status::as_str))
    .bind(e.new.as_str())
    .bind(e.actor)
    .bind(e.reason)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}
