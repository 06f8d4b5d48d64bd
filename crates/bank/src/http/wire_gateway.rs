//! The bank's side of the Taler Wire Gateway API, one gateway per exchange account under
//! `/accounts/{name}/taler-wire-gateway/`, served by the shared router
//! `cardcash_http::wire_gateway` (docs.taler.net api-bank-wire; libeufin `WireGatewayApi.kt`).
//! The account must be an exchange account; only its owner (or the admin) may use it.
//!
//! A transfer is booked in the request that makes it, so `GET /transfers` lists every transfer
//! as `success` (and nothing under any other status), and `GET /transfers/$ROW_ID` answers for
//! the transaction ids `POST /transfer` returned.

use std::time::Duration;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use cardcash_api::wire_gateway::{
    AddIncomingRequest, AddIncomingResponse, HistoryParams, IncomingBankTransaction,
    IncomingHistory, OutgoingBankTransaction, OutgoingHistory, TransferList, TransferListStatus,
    TransferRequest, TransferResponse, TransferState, TransferStatus,
};
use cardcash_http::longpoll::WaitFuture;
use cardcash_http::wire_gateway::{Access, History, WireGatewayBackend, stored_row_id};
use cardcash_store::Subscription;
use cardcash_util::Currency;

use super::AppState;
use super::auth::{Known, principal, uses_basic};
use crate::account::AccountName;
use crate::auth::Scope;
use crate::db::OutgoingRow;
use crate::error::{BankError, Result};
use crate::ledger::{AddIncoming, Exchange, TOPIC_INCOMING, TOPIC_OUTGOING, WireTransfer};

/// Implementation URN announced in `config`.
pub const IMPLEMENTATION: &str = "urn:net:taler:specs:bank:cardcash";

/// Parses the `{name}` path segment; a name that cannot exist is an unknown account.
pub(super) fn account_name(raw: &str) -> Result<AccountName> {
    raw.parse()
        .map_err(|_| BankError::UnknownAccount(raw.to_owned()))
}

fn row_id(id: i64) -> Result<u64> {
    stored_row_id(id).map_err(|e| BankError::Invariant(e.to_string()))
}

/// The bank as a Wire Gateway backend.
#[derive(Debug, Clone)]
pub struct BankWireGateway {
    state: AppState,
}

impl BankWireGateway {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A refusal of the bank's Wire Gateway: a bank error, or the authentication extractor's own
/// response.
#[derive(Debug)]
pub enum WireGatewayError {
    Bank(BankError),
    Rejected(Response),
}

impl From<BankError> for WireGatewayError {
    fn from(e: BankError) -> Self {
        Self::Bank(e)
    }
}

impl IntoResponse for WireGatewayError {
    fn into_response(self) -> Response {
        match self {
            Self::Bank(e) => e.into_response(),
            Self::Rejected(r) => r,
        }
    }
}

type WireResult<T> = std::result::Result<T, WireGatewayError>;

fn outgoing_status(row: &OutgoingRow) -> Result<TransferListStatus> {
    Ok(TransferListStatus {
        row_id: row_id(row.row_id)?,
        status: TransferState::Success,
        amount: row.amount,
        credit_account: row.credit_account.clone(),
        timestamp: row.date,
    })
}

impl WireGatewayBackend for BankWireGateway {
    type Account = Exchange;
    type Error = WireGatewayError;
    type Subscription = Subscription;

    fn currency(&self) -> Currency {
        *self.state.ledger.currency()
    }

    fn implementation(&self) -> &str {
        IMPLEMENTATION
    }

    /// Credentials (401), then the right to use the account (403: its owner or the admin;
    /// transfers and `admin/add-incoming` need a read-write credential), then the account
    /// itself (404 unknown, 409 not an exchange).
    ///
    /// The account's row is read once: with Basic credentials first, as it also holds the
    /// password hash they are checked against.
    async fn authenticate(&self, parts: &mut Parts, access: Access) -> WireResult<Exchange> {
        let params = RawPathParams::from_request_parts(parts, &self.state)
            .await
            .map_err(|e| WireGatewayError::Rejected(e.into_response()))?;
        let raw = params
            .iter()
            .find(|(k, _)| *k == "name")
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default();
        let ledger = &self.state.ledger;
        // Basic credentials are checked against the account's row, so read it first (once);
        // other requests are authenticated (or refused) before any read of the account.
        let basic = uses_basic(parts);
        let early_row = match raw.parse::<AccountName>() {
            Ok(name) if basic => ledger.account_row(&name).await?,
            _ => None,
        };
        let known = early_row.as_ref().map(|row| Known {
            name: row.name.as_str(),
            password_hash: row.password_hash.as_deref(),
        });
        let who = principal(parts, &self.state, known).await?;
        let scope = match access {
            Access::Read => Scope::ReadOnly,
            Access::Write | Access::Admin => Scope::ReadWrite,
        };
        let name = account_name(&raw)?;
        who.check(&name, scope)?;
        let row = if basic {
            early_row
        } else {
            ledger.account_row(&name).await?
        };
        Ok(ledger.exchange(name, row)?)
    }

    async fn transfer(
        &self,
        account: &Exchange,
        req: TransferRequest,
    ) -> WireResult<TransferResponse> {
        let transfer = WireTransfer {
            request_uid: req.request_uid,
            amount: req.amount,
            exchange_base_url: req.exchange_base_url,
            wtid: req.wtid,
            credit_account: req.credit_account,
        };
        let booked = self.state.ledger.wire_transfer(account, &transfer).await?;
        Ok(TransferResponse {
            timestamp: booked.timestamp,
            row_id: row_id(booked.row_id)?,
        })
    }

    async fn transfers(
        &self,
        account: &Exchange,
        page: &HistoryParams,
        status: Option<TransferState>,
    ) -> WireResult<TransferList> {
        let transfers = match status {
            None | Some(TransferState::Success) => self
                .state
                .ledger
                .outgoing_page(account, page)
                .await?
                .iter()
                .map(outgoing_status)
                .collect::<Result<_>>()?,
            // Transfers are booked at once: none is ever pending or failed.
            Some(_) => Vec::new(),
        };
        Ok(TransferList {
            transfers,
            debit_account: account.payto.clone(),
        })
    }

    async fn transfer_status(
        &self,
        account: &Exchange,
        id: u64,
    ) -> WireResult<Option<TransferStatus>> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let Some(row) = self.state.ledger.outgoing_transfer(account, id).await? else {
            return Ok(None);
        };
        Ok(Some(TransferStatus {
            status: TransferState::Success,
            status_msg: None,
            amount: row.amount,
            exchange_base_url: row.exchange_base_url,
            wtid: row.wtid,
            credit_account: row.credit_account,
            timestamp: row.date,
        }))
    }

    fn subscribe(&self, account: &Exchange, history: History) -> Subscription {
        let topic = match history {
            History::Incoming => TOPIC_INCOMING,
            History::Outgoing => TOPIC_OUTGOING,
        };
        self.state.ledger.subscribe(topic, account.id)
    }

    fn wait<'a>(&'a self, subscription: &'a mut Subscription, timeout: Duration) -> WaitFuture<'a> {
        Box::pin(subscription.wait(timeout))
    }

    async fn incoming(
        &self,
        account: &Exchange,
        page: &HistoryParams,
    ) -> WireResult<IncomingHistory> {
        let rows = self.state.ledger.incoming_page(account, page).await?;
        let incoming_transactions = rows
            .into_iter()
            .map(|r| {
                Ok(IncomingBankTransaction::Reserve {
                    row_id: row_id(r.row_id)?,
                    date: r.date,
                    amount: r.amount,
                    credit_fee: None,
                    debit_account: r.debit_account,
                    credit_account: None,
                    reserve_pub: r.reserve_pub,
                })
            })
            .collect::<Result<_>>()?;
        Ok(IncomingHistory {
            incoming_transactions,
            credit_account: account.payto.clone(),
        })
    }

    async fn outgoing(
        &self,
        account: &Exchange,
        page: &HistoryParams,
    ) -> WireResult<OutgoingHistory> {
        let rows = self.state.ledger.outgoing_page(account, page).await?;
        let outgoing_transactions = rows
            .into_iter()
            .map(|r| {
                Ok(OutgoingBankTransaction {
                    row_id: row_id(r.row_id)?,
                    date: r.date,
                    amount: r.amount,
                    debit_account: None,
                    credit_account: r.credit_account,
                    wtid: r.wtid,
                    exchange_base_url: r.exchange_base_url,
                })
            })
            .collect::<Result<_>>()?;
        Ok(OutgoingHistory {
            outgoing_transactions,
            debit_account: account.payto.clone(),
        })
    }

    async fn add_incoming(
        &self,
        account: &Exchange,
        req: AddIncomingRequest,
    ) -> WireResult<AddIncomingResponse> {
        let add = AddIncoming {
            amount: req.amount,
            reserve_pub: req.reserve_pub,
            debit_account: req.debit_account,
        };
        let booked = self.state.ledger.add_incoming(account, &add).await?;
        Ok(AddIncomingResponse {
            timestamp: booked.timestamp,
            row_id: row_id(booked.row_id)?,
        })
    }
}
