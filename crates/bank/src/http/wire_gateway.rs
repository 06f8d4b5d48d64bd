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
use cardcash_util::{BaseUrl, Currency, PaytoUri};

use super::AppState;
use super::auth::Auth;
use crate::account::AccountName;
use crate::auth::Scope;
use crate::db;
use crate::db::taler::OutgoingRow;
use crate::error::{BankError, Result};
use crate::ledger::{AddIncoming, TOPIC_INCOMING, TOPIC_OUTGOING, WireTransfer};

/// Implementation URN announced in `config`.
pub const IMPLEMENTATION: &str = "urn:net:taler:specs:bank:cardcash";

/// Parses the `{name}` path segment; a name that cannot exist is an unknown account.
pub(super) fn account_name(raw: &str) -> Result<AccountName> {
    raw.parse()
        .map_err(|_| BankError::UnknownAccount(raw.to_owned()))
}

/// Parses a payto URI this bank stored itself.
fn stored_payto(text: &str) -> Result<PaytoUri> {
    text.parse()
        .map_err(|e| BankError::Invariant(format!("stored payto {text:?}: {e}")))
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

    /// The exchange account `name` (404 if unknown, 409 if not an exchange).
    async fn exchange(&self, name: AccountName) -> Result<ExchangeAccount> {
        let ledger = &self.state.ledger;
        let row = db::account::by_name(ledger.db().pool(), name.as_str(), ledger.currency())
            .await?
            .ok_or_else(|| BankError::UnknownAccount(name.to_string()))?;
        if !row.is_exchange {
            return Err(BankError::NotAnExchange(name.to_string()));
        }
        let payto = ledger
            .payto()
            .account_uri(&row.name, &row.legal_name)
            .map_err(|e| BankError::Invariant(format!("payto of {:?}: {e}", row.name)))?;
        Ok(ExchangeAccount {
            id: row.id,
            name,
            payto,
        })
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

/// The exchange account a request is about, after authentication.
#[derive(Debug, Clone)]
pub struct ExchangeAccount {
    id: i64,
    name: AccountName,
    payto: PaytoUri,
}

fn outgoing_status(row: &OutgoingRow) -> Result<TransferListStatus> {
    Ok(TransferListStatus {
        row_id: row_id(row.row_id)?,
        status: TransferState::Success,
        amount: row.amount,
        credit_account: stored_payto(&row.credit_payto)?,
        timestamp: row.date,
    })
}

fn stored_base_url(text: &str) -> Result<BaseUrl> {
    BaseUrl::parse(text).map_err(|e| BankError::Invariant(format!("stored exchange_base_url: {e}")))
}

impl WireGatewayBackend for BankWireGateway {
    type Account = ExchangeAccount;
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
    async fn authenticate(&self, parts: &mut Parts, access: Access) -> WireResult<ExchangeAccount> {
        let Auth(who) = Auth::from_request_parts(parts, &self.state)
            .await
            .map_err(WireGatewayError::Rejected)?;
        let params = RawPathParams::from_request_parts(parts, &self.state)
            .await
            .map_err(|e| WireGatewayError::Rejected(e.into_response()))?;
        let raw = params
            .iter()
            .find(|(k, _)| *k == "name")
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default();
        let scope = match access {
            Access::Read => Scope::ReadOnly,
            Access::Write | Access::Admin => Scope::ReadWrite,
        };
        let name = account_name(&raw)?;
        who.check(&name, scope)?;
        Ok(self.exchange(name).await?)
    }

    async fn transfer(
        &self,
        account: &ExchangeAccount,
        req: TransferRequest,
    ) -> WireResult<TransferResponse> {
        let transfer = WireTransfer {
            request_uid: req.request_uid,
            amount: req.amount,
            exchange_base_url: req.exchange_base_url,
            wtid: req.wtid,
            credit_account: req.credit_account,
        };
        let booked = self
            .state
            .ledger
            .wire_transfer(&account.name, &transfer)
            .await?;
        Ok(TransferResponse {
            timestamp: booked.timestamp,
            row_id: row_id(booked.row_id)?,
        })
    }

    async fn transfers(
        &self,
        account: &ExchangeAccount,
        page: &HistoryParams,
        status: Option<TransferState>,
    ) -> WireResult<TransferList> {
        let transfers = match status {
            None | Some(TransferState::Success) => {
                let ledger = &self.state.ledger;
                db::taler::outgoing_history(ledger.db().pool(), account.id, page, ledger.currency())
                    .await?
                    .iter()
                    .map(outgoing_status)
                    .collect::<Result<_>>()?
            }
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
        account: &ExchangeAccount,
        id: u64,
    ) -> WireResult<Option<TransferStatus>> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let ledger = &self.state.ledger;
        let Some(row) =
            db::taler::outgoing_by_id(ledger.db().pool(), account.id, id, ledger.currency())
                .await?
        else {
            return Ok(None);
        };
        Ok(Some(TransferStatus {
            status: TransferState::Success,
            status_msg: None,
            amount: row.amount,
            exchange_base_url: stored_base_url(&row.exchange_base_url)?,
            wtid: row.wtid,
            credit_account: stored_payto(&row.credit_payto)?,
            timestamp: row.date,
        }))
    }

    fn subscribe(&self, account: &ExchangeAccount, history: History) -> Subscription {
        let topic = match history {
            History::Incoming => TOPIC_INCOMING,
            History::Outgoing => TOPIC_OUTGOING,
        };
        self.state
            .ledger
            .db()
            .notifier()
            .subscribe(topic, &account.id.to_string())
    }

    fn wait<'a>(&'a self, subscription: &'a mut Subscription, timeout: Duration) -> WaitFuture<'a> {
        Box::pin(subscription.wait(timeout))
    }

    async fn incoming(
        &self,
        account: &ExchangeAccount,
        page: &HistoryParams,
    ) -> WireResult<IncomingHistory> {
        let ledger = &self.state.ledger;
        let rows =
            db::taler::incoming_history(ledger.db().pool(), account.id, page, ledger.currency())
                .await?;
        let incoming_transactions = rows
            .into_iter()
            .map(|r| {
                Ok(IncomingBankTransaction::Reserve {
                    row_id: row_id(r.row_id)?,
                    date: r.date,
                    amount: r.amount,
                    credit_fee: None,
                    debit_account: stored_payto(&r.debit_payto)?,
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
        account: &ExchangeAccount,
        page: &HistoryParams,
    ) -> WireResult<OutgoingHistory> {
        let ledger = &self.state.ledger;
        let rows =
            db::taler::outgoing_history(ledger.db().pool(), account.id, page, ledger.currency())
                .await?;
        let outgoing_transactions = rows
            .into_iter()
            .map(|r| {
                Ok(OutgoingBankTransaction {
                    row_id: row_id(r.row_id)?,
                    date: r.date,
                    amount: r.amount,
                    debit_account: None,
                    credit_account: stored_payto(&r.credit_payto)?,
                    wtid: r.wtid,
                    exchange_base_url: stored_base_url(&r.exchange_base_url)?,
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
        account: &ExchangeAccount,
        req: AddIncomingRequest,
    ) -> WireResult<AddIncomingResponse> {
        let add = AddIncoming {
            amount: req.amount,
            reserve_pub: req.reserve_pub,
            debit_account: req.debit_account,
        };
        let booked = self.state.ledger.add_incoming(&account.name, &add).await?;
        Ok(AddIncomingResponse {
            timestamp: booked.timestamp,
            row_id: row_id(booked.row_id)?,
        })
    }
}
