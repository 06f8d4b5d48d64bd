//! C2EC's side of the Wire Gateway API (docs.taler.net core/api-bank-wire), served by the
//! shared router `cardcash_http::wire_gateway` under `/taler-wire-gateway/`: confirmed
//! withdrawals are the incoming history; the exchange's transfers (closed reserves) become card
//! refunds, and the outgoing history lists those the card processor carried out.
//!
//! A transfer is refused up front when the card cannot take it (409): its credit account is not
//! the card transaction of a confirmed withdrawal (`BANK_UNKNOWN_CREDITOR`), or together with
//! what is already promised back to that transaction it exceeds what the withdrawal credited
//! (`BANK_UNALLOWED_DEBIT`, as a bank answers a debit beyond the balance). What is accepted is
//! refunded by the refund worker; `GET /transfers` and `GET /transfers/$ROW_ID` show how that
//! went (`pending`, `transient_failure`, `success`, `permanent_failure`).

use std::time::Duration;

use axum::http::request::Parts;
use cardcash_api::wire_gateway::{
    AddIncomingRequest, AddIncomingResponse, HistoryParams, IncomingBankTransaction,
    IncomingHistory, OutgoingBankTransaction, OutgoingHistory, TransferList, TransferListStatus,
    TransferRequest, TransferResponse, TransferState, TransferStatus,
};
use cardcash_http::longpoll::WaitFuture;
use cardcash_http::wire_gateway::{Access, History, WireGatewayBackend, stored_row_id};
use cardcash_store::Subscription;
use cardcash_util::{Currency, ErrorCode, PaytoUri};

use super::AppState;
use super::auth::{check_admin, check_wire_auth};
use crate::api::IMPLEMENTATION;
use crate::db::transfer::{AcceptOutcome, NewTransfer, TransferRow};
use crate::db::withdrawal::AddIncomingOutcome;
use crate::db::{TOPIC_INCOMING, TOPIC_OUTGOING};
use crate::error::C2ecError;
use crate::metrics::C2ecMetrics;

/// C2EC as a Wire Gateway backend: one exchange account, the configured one.
#[derive(Clone)]
pub struct C2ecWireGateway {
    state: AppState,
}

impl C2ecWireGateway {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    fn exchange_account(&self) -> PaytoUri {
        self.state.c2ec.exchange_account.clone()
    }
}

fn row_id(id: i64) -> Result<u64, C2ecError> {
    stored_row_id(id).map_err(|e| C2ecError::Internal(e.to_string()))
}

/// The human note of a transfer's state.
fn status_msg(t: &TransferRow) -> Option<String> {
    match t.state() {
        TransferState::Success => t
            .refund_id
            .as_ref()
            .map(|id| format!("refunded to the card (refund {id})")),
        TransferState::Pending => None,
        TransferState::TransientFailure | TransferState::PermanentFailure => t.failure.clone(),
    }
}

/// Counts a waiting long poll in the metrics while it waits.
struct Waiting(C2ecMetrics);

impl Waiting {
    fn start(metrics: &C2ecMetrics) -> Self {
        metrics.long_poll_waiters.inc();
        Self(metrics.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.long_poll_waiters.dec();
    }
}

impl WireGatewayBackend for C2ecWireGateway {
    type Account = ();
    type Error = C2ecError;
    type Subscription = Subscription;

    fn currency(&self) -> Currency {
        *self.state.c2ec.store.currency()
    }

    fn implementation(&self) -> &str {
        IMPLEMENTATION
    }

    /// The exchange's Basic or Bearer credentials; `admin/add-incoming` takes the admin token.
    async fn authenticate(&self, parts: &mut Parts, access: Access) -> Result<(), C2ecError> {
        match access {
            Access::Admin => check_admin(self.state.admin_token.as_deref(), &parts.headers),
            Access::Read | Access::Write => check_wire_auth(&self.state.wire_auth, &parts.headers),
        }
    }

    async fn transfer(&self, _: &(), req: TransferRequest) -> Result<TransferResponse, C2ecError> {
        let c2ec = &self.state.c2ec;
        let target_tx_id = c2ec.provider.parse_payto(&req.credit_account);
        // The request's identity for replays: everything but request_uid.
        let canonical = format!(
            "{}|{}|{}|{}",
            req.amount, req.exchange_base_url, req.wtid, req.credit_account
        );
        let hash = cardcash_crypto::sha512(canonical.as_bytes());
        let outcome = c2ec
            .store
            .accept_transfer(NewTransfer {
                request_uid: req.request_uid,
                request_hash: hash.as_bytes().to_vec(),
                amount: req.amount,
                wtid: req.wtid,
                exchange_base_url: req.exchange_base_url,
                credit_account: req.credit_account,
                target_tx_id,
                now: crate::db::now(),
            })
            .await?;
        match outcome {
            AcceptOutcome::Accepted {
                row_id: id,
                created_at,
                ..
            } => Ok(TransferResponse {
                timestamp: created_at,
                row_id: row_id(id)?,
            }),
            AcceptOutcome::RequestUidReuse => Err(C2ecError::conflict(
                ErrorCode::BankTransferRequestUidReused,
                "request_uid used already with different data",
            )),
            AcceptOutcome::WtidReuse => Err(C2ecError::conflict(
                ErrorCode::BankTransferWtidReused,
                "wtid used already by another transfer",
            )),
            AcceptOutcome::UnknownCardTransaction => Err(C2ecError::conflict(
                ErrorCode::BankUnknownCreditor,
                "the credit account is not the card transaction of a confirmed withdrawal",
            )),
            AcceptOutcome::ExceedsPayment { left } => Err(C2ecError::conflict(
                ErrorCode::BankUnallowedDebit,
                format!(
                    "the transfer exceeds what the card paid in: at most {left} can still go back"
                ),
            )),
        }
    }

    async fn transfers(
        &self,
        _: &(),
        page: &HistoryParams,
        status: Option<TransferState>,
    ) -> Result<TransferList, C2ecError> {
        let rows = self
            .state
            .c2ec
            .store
            .transfer_page(page.ascending(), page.start(), page.count(), status)
            .await?;
        let transfers = rows
            .iter()
            .map(|t| {
                Ok(TransferListStatus {
                    row_id: row_id(t.row_id)?,
                    status: t.state(),
                    amount: t.amount,
                    credit_account: t.credit_account.clone(),
                    timestamp: t.created_at,
                })
            })
            .collect::<Result<_, C2ecError>>()?;
        Ok(TransferList {
            transfers,
            debit_account: self.exchange_account(),
        })
    }

    async fn transfer_status(&self, _: &(), id: u64) -> Result<Option<TransferStatus>, C2ecError> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let Some(t) = self.state.c2ec.store.transfer(id).await? else {
            return Ok(None);
        };
        Ok(Some(TransferStatus {
            status: t.state(),
            status_msg: status_msg(&t),
            amount: t.amount,
            exchange_base_url: t.exchange_base_url,
            wtid: t.wtid,
            credit_account: t.credit_account,
            timestamp: t.created_at,
        }))
    }

    fn subscribe(&self, _: &(), history: History) -> Subscription {
        let topic = match history {
            History::Incoming => TOPIC_INCOMING,
            History::Outgoing => TOPIC_OUTGOING,
        };
        self.state.c2ec.store.notifier().subscribe_topic(topic)
    }

    fn wait<'a>(&'a self, subscription: &'a mut Subscription, timeout: Duration) -> WaitFuture<'a> {
        Box::pin(async move {
            let _waiting = Waiting::start(&self.state.c2ec.metrics);
            subscription.wait(timeout).await
        })
    }

    async fn incoming(&self, _: &(), page: &HistoryParams) -> Result<IncomingHistory, C2ecError> {
        let rows = self
            .state
            .c2ec
            .store
            .incoming_history(page.limit, page.offset)
            .await?;
        let incoming_transactions = rows
            .into_iter()
            .map(|r| {
                Ok(IncomingBankTransaction::Reserve {
                    row_id: row_id(r.row_id)?,
                    date: r.created_at,
                    amount: r.amount,
                    credit_fee: None,
                    debit_account: r.debit_account,
                    credit_account: None,
                    reserve_pub: r.reserve_pub,
                })
            })
            .collect::<Result<_, C2ecError>>()?;
        Ok(IncomingHistory {
            incoming_transactions,
            credit_account: self.exchange_account(),
        })
    }

    async fn outgoing(&self, _: &(), page: &HistoryParams) -> Result<OutgoingHistory, C2ecError> {
        let rows = self
            .state
            .c2ec
            .store
            .outgoing_page(page.ascending(), page.start(), page.count())
            .await?;
        let outgoing_transactions = rows
            .into_iter()
            .map(|r| {
                Ok(OutgoingBankTransaction {
                    row_id: row_id(r.row_id)?,
                    date: r.date,
                    amount: r.transfer.amount,
                    debit_account: None,
                    credit_account: r.transfer.credit_account,
                    wtid: r.transfer.wtid,
                    exchange_base_url: r.transfer.exchange_base_url,
                })
            })
            .collect::<Result<_, C2ecError>>()?;
        Ok(OutgoingHistory {
            outgoing_transactions,
            debit_account: self.exchange_account(),
        })
    }

    async fn add_incoming(
        &self,
        _: &(),
        req: AddIncomingRequest,
    ) -> Result<AddIncomingResponse, C2ecError> {
        let outcome = self
            .state
            .c2ec
            .store
            .add_incoming(
                &req.reserve_pub,
                &req.amount,
                &req.debit_account,
                crate::db::now(),
            )
            .await?;
        match outcome {
            AddIncomingOutcome::Added {
                row_id: id,
                created_at,
            } => Ok(AddIncomingResponse {
                timestamp: created_at,
                row_id: row_id(id)?,
            }),
            AddIncomingOutcome::ReservePubReuse => Err(C2ecError::conflict(
                ErrorCode::BankDuplicateReservePubSubject,
                "reserve public key already used",
            )),
        }
    }
}
