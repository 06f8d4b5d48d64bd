//! Wire-gateway transfers from the exchange, executed as card refunds; their outcomes; the
//! outgoing history; and the refund worker's bookkeeping (transfers, aborted operations' own
//! card transactions, further card transactions).
//!
//! A transfer is accepted only if the card can take it: its credit account must name the card
//! transaction of a confirmed withdrawal, and everything promised back to that transaction
//! (pending and refunded transfers) may never exceed what the withdrawal credited. The check
//! and the insert are one write transaction; on PostgreSQL the withdrawal row is locked first
//! (`FOR UPDATE`), on SQLite the writer runs alone, so two racing transfers cannot both pass.
//! Statuses map to the Wire Gateway's transfer states: `pending` (without a failure note:
//! `pending`; with one, after a transient error: `transient_failure`), `refunded`
//! (`success`), `failed` (`permanent_failure`). A transfer enters the outgoing history (table
//! `outgoing`, numbered in order of success) when its refund succeeds.

use std::sync::Arc;

use cardcash_api::wire_gateway::TransferState;
use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{Amount, BaseUrl, HashCode, PaytoUri, ShortHashCode, Timestamp};

use super::withdrawal::{ExtraPaymentRow, RefundState, WithdrawalRow};
use super::{C2ecStore, postgres, sqlite};

/// The stored status of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferStatus {
    Pending,
    Refunded,
    Failed,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Refunded => "refunded",
            Self::Failed => "failed",
        }
    }

    pub(super) fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "pending" => Self::Pending,
            "refunded" => Self::Refunded,
            "failed" => Self::Failed,
            other => return Err(super::corrupt(format!("transfer status {other:?}"))),
        })
    }
}

/// The stored condition of the transfers in `state`: `(status, whether a failure note is set)`
/// (`None`: either).
pub(super) fn state_filter(state: Option<TransferState>) -> (Option<&'static str>, Option<bool>) {
    match state {
        None => (None, None),
        Some(TransferState::Pending) => (Some("pending"), Some(false)),
        Some(TransferState::TransientFailure) => (Some("pending"), Some(true)),
        Some(TransferState::PermanentFailure) => (Some("failed"), None),
        Some(TransferState::Success) => (Some("refunded"), None),
    }
}

/// A stored transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRow {
    pub row_id: i64,
    pub request_uid: HashCode,
    pub amount: Amount,
    pub wtid: ShortHashCode,
    pub exchange_base_url: BaseUrl,
    pub credit_account: PaytoUri,
    pub target_tx_id: Option<String>,
    pub created_at: Timestamp,
    pub status: TransferStatus,
    pub refund_id: Option<String>,
    pub failure: Option<String>,
    pub attempts: u32,
}

impl TransferRow {
    /// The Wire Gateway state of the stored status (see the module docs).
    pub fn state(&self) -> TransferState {
        match (self.status, &self.failure) {
            (TransferStatus::Refunded, _) => TransferState::Success,
            (TransferStatus::Failed, _) => TransferState::PermanentFailure,
            (TransferStatus::Pending, Some(_)) => TransferState::TransientFailure,
            (TransferStatus::Pending, None) => TransferState::Pending,
        }
    }
}

/// A row of the outgoing history: a transfer the card processor carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRow {
    /// The history's row id (not the transfer's).
    pub row_id: i64,
    /// When the refund succeeded.
    pub date: Timestamp,
    pub transfer: TransferRow,
}

/// Outcome of [`C2ecStore::accept_transfer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Recorded now (`new`), or the identical request earlier (idempotent replay).
    Accepted {
        row_id: i64,
        created_at: Timestamp,
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
pub struct NewTransfer {
    pub request_uid: HashCode,
    /// What makes two transfers with the same `request_uid` "the same request".
    pub request_hash: Vec<u8>,
    pub amount: Amount,
    pub wtid: ShortHashCode,
    pub exchange_base_url: BaseUrl,
    pub credit_account: PaytoUri,
    /// The card transaction the credit account names, when it is one of this provider's.
    pub target_tx_id: Option<String>,
    pub now: Timestamp,
}

/// Everything the refund worker has due at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundWork {
    pub transfers: Vec<TransferRow>,
    /// Aborted operations whose own card transaction is due for refund.
    pub refunds: Vec<WithdrawalRow>,
    pub extras: Vec<ExtraPaymentRow>,
}

/// What became of one attempt to send money back, to be written to its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundSettlement {
    /// `Due` (retry at `next`), `Done` or `NotNeeded`.
    pub state: RefundState,
    pub refund_id: Option<String>,
    pub next: Option<Timestamp>,
    /// For the audit trail.
    pub note: String,
}

/// What became of one attempt to carry out a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSettlement {
    /// `Pending` (retry at `next`, with `failure` as a transient failure note), `Refunded` or
    /// `Failed`.
    pub status: TransferStatus,
    pub refund_id: Option<String>,
    pub failure: Option<String>,
    pub next: Option<Timestamp>,
}

impl C2ecStore {
    /// Records a transfer if the card can take it (see the module docs), idempotently on
    /// `request_uid`: the identical request again is the stored transfer, a different one with
    /// the same `request_uid` is [`AcceptOutcome::RequestUidReuse`]. Refused transfers leave no
    /// trace, so a replay of a refused request is decided again.
    pub async fn accept_transfer(&self, new: NewTransfer) -> Result<AcceptOutcome, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let (currency, new) = (self.currency, Arc::new(new));
                retry(|| {
                    let new = new.clone();
                    db.write(move |tx| sqlite::accept_transfer(tx, currency, &new))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::accept_transfer(db, self.currency, &new)).await
            }
        }
    }

    /// A page of transfers by transfer row id (`GET /transfers`), optionally in one state.
    pub async fn transfer_page(
        &self,
        ascending: bool,
        start: i64,
        count: i64,
        state: Option<TransferState>,
    ) -> Result<Vec<TransferRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| {
                sqlite::transfer_page(conn, self.currency, ascending, start, count, state)
            }),
            Database::Postgres(db) => {
                postgres::transfer_page(db, self.currency, ascending, start, count, state).await
            }
        }
    }

    /// A page of the outgoing history (transfers that reached the card), by history row id.
    pub async fn outgoing_page(
        &self,
        ascending: bool,
        start: i64,
        count: i64,
    ) -> Result<Vec<OutgoingRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::outgoing_page(conn, self.currency, ascending, start, count))
            }
            Database::Postgres(db) => {
                postgres::outgoing_page(db, self.currency, ascending, start, count).await
            }
        }
    }

    /// Transfer `row_id`, if any.
    pub async fn transfer(&self, row_id: i64) -> Result<Option<TransferRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::transfer(conn, self.currency, row_id)),
            Database::Postgres(db) => postgres::transfer(db, self.currency, row_id).await,
        }
    }

    /// Everything due for the refund worker at `now` (at most `limit` of each kind).
    pub async fn refund_work(&self, now: Timestamp, limit: u32) -> Result<RefundWork, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::refund_work(conn, self.currency, now, limit))
            }
            Database::Postgres(db) => postgres::refund_work(db, self.currency, now, limit).await,
        }
    }

    /// When the next refund work of any kind falls due, if any is scheduled.
    pub async fn next_refund_at(&self) -> Result<Option<Timestamp>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(sqlite::next_refund_at),
            Database::Postgres(db) => postgres::next_refund_at(db).await,
        }
    }

    /// What the confirmed withdrawal of card transaction `tx_id` credited (what the exchange
    /// may send back to it), if there is one.
    pub async fn incoming_for_tx(&self, tx_id: &str) -> Result<Option<Amount>, StoreError> {
        Ok(self.refund_room(tx_id, -1).await?.0)
    }

    /// What the confirmed withdrawal of card transaction `tx_id` credited (`None`: no such
    /// withdrawal), and what transfers other than `except_row` already returned to it.
    pub async fn refund_room(
        &self,
        tx_id: &str,
        except_row: i64,
    ) -> Result<(Option<Amount>, Amount), StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::refund_room(conn, self.currency, tx_id, except_row))
            }
            Database::Postgres(db) => {
                postgres::refund_room(db, self.currency, tx_id, except_row).await
            }
        }
    }

    /// Settles or reschedules the refund of an aborted operation's own card transaction, with
    /// its audit event (only while it is due).
    pub async fn settle_refund(
        &self,
        withdrawal_id: i64,
        settlement: RefundSettlement,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let settlement = Arc::new(settlement);
                retry(|| {
                    let settlement = settlement.clone();
                    db.write(move |tx| sqlite::settle_refund(tx, withdrawal_id, &settlement, now))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::settle_refund(db, withdrawal_id, &settlement, now)).await
            }
        }
    }

    /// Settles or reschedules the refund of a further card transaction, like
    /// [`Self::settle_refund`].
    pub async fn settle_extra_refund(
        &self,
        extra: &ExtraPaymentRow,
        settlement: RefundSettlement,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (extra_id, note) = (
            extra.extra_id,
            format!(
                "card transaction {}: {}",
                extra.provider_tx_id, settlement.note
            ),
        );
        let settlement = RefundSettlement { note, ..settlement };
        match &self.db {
            Database::Sqlite(db) => {
                let settlement = Arc::new(settlement);
                retry(|| {
                    let settlement = settlement.clone();
                    db.write(move |tx| sqlite::settle_extra_refund(tx, extra_id, &settlement, now))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::settle_extra_refund(db, extra_id, &settlement, now)).await
            }
        }
    }

    /// Settles a transfer or reschedules it (only while pending). A refunded transfer enters
    /// the outgoing history in the same transaction.
    pub async fn settle_transfer(
        &self,
        row_id: i64,
        settlement: TransferSettlement,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let settlement = Arc::new(settlement);
                retry(|| {
                    let settlement = settlement.clone();
                    db.write(move |tx| sqlite::settle_transfer(tx, row_id, &settlement, now))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::settle_transfer(db, row_id, &settlement, now)).await
            }
        }
    }
}
