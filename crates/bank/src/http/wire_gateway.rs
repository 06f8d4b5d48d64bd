//! Handlers of the Taler Wire Gateway API, one per account, under
//! `/accounts/{name}/taler-wire-gateway/` (docs.taler.net api-bank-wire; libeufin
//! `WireGatewayApi.kt`). The account must be an exchange account; only its owner (or the
//! admin) may use it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cardcash_http::{TalerJson, TalerPath, TalerQuery};
use cardcash_util::{BaseUrl, LibtoolVersion, PaytoUri};

use super::AppState;
use super::auth::Auth;
use crate::account::AccountName;
use crate::auth::Scope;
use crate::error::{BankError, Result};
use crate::ledger::{AddIncoming, WireTransfer};
use crate::types::{
    AddIncomingRequest, AddIncomingResponse, IncomingBankTransaction, IncomingHistory,
    OutgoingBankTransaction, OutgoingHistory, TransferRequest, TransferResponse, WireConfig,
};
use cardcash_api::wire_gateway::{HistoryParams, HistoryQuery};

/// Wire Gateway protocol version we announce (`current:revision:age`): `2:0:2` — we serve the v2
/// parameter names `limit`/`offset`/`timeout_ms` next to the legacy ones, and age 2 keeps
/// clients that require v0 (libeufin 2024 announced `0:2:0`) compatible. Same as c2ec's.
pub const WIRE_GATEWAY_VERSION: LibtoolVersion = LibtoolVersion::new(2, 0, 2);
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
    u64::try_from(id).map_err(|_| BankError::Invariant(format!("negative row id {id}")))
}

/// `GET config` (no authentication needed).
pub async fn get_config(State(state): State<AppState>) -> TalerJson<WireConfig> {
    TalerJson(WireConfig {
        name: "taler-wire-gateway".to_owned(),
        version: WIRE_GATEWAY_VERSION,
        currency: *state.ledger.currency(),
        implementation: Some(IMPLEMENTATION.to_owned()),
    })
}

/// `POST transfer`.
pub async fn post_transfer(
    State(state): State<AppState>,
    Auth(who): Auth,
    TalerPath(name): TalerPath<String>,
    TalerJson(req): TalerJson<TransferRequest>,
) -> Result<TalerJson<TransferResponse>> {
    let name = account_name(&name)?;
    who.check(&name, Scope::ReadWrite)?;
    let transfer = WireTransfer {
        request_uid: req.request_uid,
        amount: req.amount,
        exchange_base_url: req.exchange_base_url,
        wtid: req.wtid,
        credit_account: req.credit_account,
    };
    let booked = state.ledger.wire_transfer(&name, &transfer).await?;
    Ok(TalerJson(TransferResponse {
        timestamp: booked.timestamp,
        row_id: row_id(booked.row_id)?,
    }))
}

/// `GET history/incoming`: 200 with rows, 204 when the page is empty.
pub async fn get_history_incoming(
    State(state): State<AppState>,
    Auth(who): Auth,
    TalerPath(name): TalerPath<String>,
    TalerQuery(query): TalerQuery<HistoryQuery>,
) -> Result<Response> {
    let name = account_name(&name)?;
    who.check(&name, Scope::ReadOnly)?;
    let params = HistoryParams::parse(&query)?;
    let (credit_account, rows) = state.ledger.incoming_history(&name, &params).await?;
    if rows.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let incoming_transactions = rows
        .into_iter()
        .map(|r| {
            Ok(IncomingBankTransaction::Reserve {
                row_id: row_id(r.row_id)?,
                date: r.date,
                amount: r.amount,
                credit_fee: None,
                debit_account: stored_payto(&r.debit_payto)?,
                reserve_pub: r.reserve_pub,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TalerJson(IncomingHistory {
        incoming_transactions,
        credit_account,
    })
    .into_response())
}

/// `GET history/outgoing`: 200 with rows, 204 when the page is empty.
pub async fn get_history_outgoing(
    State(state): State<AppState>,
    Auth(who): Auth,
    TalerPath(name): TalerPath<String>,
    TalerQuery(query): TalerQuery<HistoryQuery>,
) -> Result<Response> {
    let name = account_name(&name)?;
    who.check(&name, Scope::ReadOnly)?;
    let params = HistoryParams::parse(&query)?;
    let (debit_account, rows) = state.ledger.outgoing_history(&name, &params).await?;
    if rows.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let outgoing_transactions = rows
        .into_iter()
        .map(|r| {
            Ok(OutgoingBankTransaction {
                row_id: row_id(r.row_id)?,
                date: r.date,
                amount: r.amount,
                credit_account: stored_payto(&r.credit_payto)?,
                wtid: r.wtid,
                exchange_base_url: BaseUrl::parse(&r.exchange_base_url)
                    .map_err(|e| BankError::Invariant(format!("stored exchange_base_url: {e}")))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TalerJson(OutgoingHistory {
        outgoing_transactions,
        debit_account,
    })
    .into_response())
}

/// `POST admin/add-incoming` (owner or admin; see the module docs of `ledger`).
pub async fn post_admin_add_incoming(
    State(state): State<AppState>,
    Auth(who): Auth,
    TalerPath(name): TalerPath<String>,
    TalerJson(req): TalerJson<AddIncomingRequest>,
) -> Result<TalerJson<AddIncomingResponse>> {
    let name = account_name(&name)?;
    who.check(&name, Scope::ReadWrite)?;
    let add = AddIncoming {
        amount: req.amount,
        reserve_pub: req.reserve_pub,
        debit_account: req.debit_account,
    };
    let booked = state.ledger.add_incoming(&name, &add).await?;
    Ok(TalerJson(AddIncomingResponse {
        timestamp: booked.timestamp,
        row_id: row_id(booked.row_id)?,
    }))
}
