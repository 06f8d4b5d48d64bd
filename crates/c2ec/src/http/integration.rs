//! Bank-integration API (docs.taler.net core/api-bank-integration), under
//! `/taler-integration/`. Unauthenticated: the WOPID is the capability.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use cardcash_http::TalerJson;

use super::{AppState, parse_wopid, status_params};
use crate::api::{
    BankIntegrationConfig, BankWithdrawalOperationPostRequest, BankWithdrawalOperationPostResponse,
    BankWithdrawalOperationStatus, CurrencySpecification, INTEGRATION_VERSION, WithdrawalStatus,
};
use crate::db::withdrawal::WithdrawalRow;
use crate::error::C2ecError;
use crate::service::Actor;
use crate::state::Status;

/// Who reads a status: wallets (bank-integration API, every protocol generation) or the
/// operation's terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Wallet,
    Terminal,
}

/// The status body shared by wallet and terminal views. Wallets always get an `amount`
/// (`state::amount_for_wallets` says why); the terminal sees only an amount that is fixed.
pub fn status_body(
    s: &AppState,
    row: &WithdrawalRow,
    reader: Reader,
) -> BankWithdrawalOperationStatus {
    let fixed = row.status != Status::Pending;
    let amount = match reader {
        Reader::Wallet => {
            crate::state::amount_for_wallets(row.amount.as_ref(), row.suggested_amount.as_ref())
        }
        Reader::Terminal => row.amount,
    };
    BankWithdrawalOperationStatus {
        status: wire_status(row.status),
        currency: Some(*s.c2ec.store.currency()),
        amount,
        suggested_amount: if fixed { None } else { row.suggested_amount },
        min_amount: None,
        max_amount: None,
        card_fees: (!row.card_fees.is_zero()).then_some(row.card_fees),
        sender_wire: row
            .provider_tx_id
            .as_deref()
            .and_then(|id| s.c2ec.provider.format_payto(id).parse().ok()),
        suggested_exchange: s.exchange_base_url.as_ref().map(|u| u.as_str().to_owned()),
        required_exchange: None,
        confirm_transfer_url: None,
        wire_types: s.wire_types.clone(),
        selected_reserve_pub: row.reserve_pub,
        selected_exchange_account: row.exchange_account.clone(),
        no_amount_to_wallet: None,
        aborted: row.status == Status::Aborted,
        selection_done: matches!(row.status, Status::Selected | Status::Confirmed),
        transfer_done: row.status == Status::Confirmed,
    }
}

/// The wire form of a status.
pub fn wire_status(status: Status) -> WithdrawalStatus {
    match status {
        Status::Pending => WithdrawalStatus::Pending,
        Status::Selected => WithdrawalStatus::Selected,
        Status::Confirmed => WithdrawalStatus::Confirmed,
        Status::Aborted => WithdrawalStatus::Aborted,
    }
}

/// `GET /taler-integration/config`.
pub async fn get_config(State(s): State<AppState>) -> Json<BankIntegrationConfig> {
    let currency = *s.c2ec.store.currency();
    Json(BankIntegrationConfig {
        name: cardcash_api::bank_integration::API_NAME.into(),
        version: INTEGRATION_VERSION,
        implementation: Some(crate::api::IMPLEMENTATION.into()),
        currency,
        currency_specification: CurrencySpecification::two_decimals(&currency, currency.as_str()),
    })
}

/// `GET /taler-integration/withdrawal-operation/{wopid}`.
pub async fn get_withdrawal_operation(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<BankWithdrawalOperationStatus>, C2ecError> {
    let wopid = parse_wopid(&raw)?;
    let (old, poll) = status_params(query.as_deref())?;
    let row = s.c2ec.poll(&wopid, None, old, poll.timeout).await?;
    Ok(Json(status_body(&s, &row, Reader::Wallet)))
}

/// `POST /taler-integration/withdrawal-operation/{wopid}`: reserve registration.
pub async fn post_withdrawal_operation(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    TalerJson(req): TalerJson<BankWithdrawalOperationPostRequest>,
) -> Result<Json<BankWithdrawalOperationPostResponse>, C2ecError> {
    let wopid = parse_wopid(&raw)?;
    let status = s
        .c2ec
        .register(&wopid, &req.reserve_pub, &req.selected_exchange, req.amount)
        .await?;
    Ok(Json(BankWithdrawalOperationPostResponse {
        status: wire_status(status),
        confirm_transfer_url: None,
        transfer_done: status == Status::Confirmed,
    }))
}

/// `POST /taler-integration/withdrawal-operation/{wopid}/abort`.
pub async fn post_withdrawal_operation_abort(
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, C2ecError> {
    let wopid = parse_wopid(&raw)?;
    s.c2ec.abort(&wopid, Actor::Wallet).await?;
    Ok(StatusCode::NO_CONTENT)
}
