//! Bank-integration API (docs.taler.net core/api-bank-integration), under
//! `/taler-integration/`. Unauthenticated: the WOPID is the capability.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use cardcash_http::TalerJson;

use super::{AppState, parse_wopid, status_params};
use crate::api::{
    BankWithdrawalOperationPostRequest, BankWithdrawalOperationPostResponse,
    BankWithdrawalOperationStatus, CurrencySpecification, IntegrationConfig,
};
use crate::db::withdrawal::WithdrawalRow;
use crate::error::C2ecError;
use crate::service::Actor;
use crate::state::Status;

/// Bank-integration protocol version: current 4, age 4, so wallets that only know v0 (they
/// check `current - age <= 0`) accept it as well as v4 ones.
pub const INTEGRATION_VERSION: &str = "4:0:4";

/// The status body shared by wallet and terminal views.
pub fn status_body(s: &AppState, row: &WithdrawalRow) -> BankWithdrawalOperationStatus {
    let fixed = row.status != Status::Pending;
    BankWithdrawalOperationStatus {
        status: row.status.as_str().to_owned(),
        currency: s.c2ec.store.currency().to_string(),
        amount: row.amount,
        suggested_amount: if fixed { None } else { row.suggested_amount },
        card_fees: (!row.card_fees.is_zero()).then_some(row.card_fees),
        sender_wire: row
            .provider_tx_id
            .as_deref()
            .map(|id| s.c2ec.provider.format_payto(id)),
        suggested_exchange: s.exchange_base_url.as_ref().map(|u| u.as_str().to_owned()),
        required_exchange: None,
        wire_types: s.wire_types.clone(),
        selected_reserve_pub: row.reserve_pub,
        selected_exchange_account: row.exchange_account.clone(),
        aborted: row.status == Status::Aborted,
        selection_done: matches!(row.status, Status::Selected | Status::Confirmed),
        transfer_done: row.status == Status::Confirmed,
    }
}

/// `GET /taler-integration/config`.
pub async fn get_config(State(s): State<AppState>) -> Json<IntegrationConfig> {
    let currency = s.c2ec.store.currency().to_string();
    Json(IntegrationConfig {
        name: "taler-bank-integration".into(),
        version: INTEGRATION_VERSION.into(),
        currency: currency.clone(),
        currency_specification: CurrencySpecification {
            name: currency.clone(),
            currency: currency.clone(),
            num_fractional_input_digits: 2,
            num_fractional_normal_digits: 2,
            num_fractional_trailing_zero_digits: 2,
            alt_unit_names: BTreeMap::from([("0".to_owned(), currency)]),
        },
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
    Ok(Json(status_body(&s, &row)))
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
        status: status.as_str().to_owned(),
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
