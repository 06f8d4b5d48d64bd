//! Terminal API v0 (docs.taler.net core/api-terminal), under `/terminal/`. Every route needs
//! the terminal's Basic credentials; a terminal only sees its own withdrawals.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use cardcash_http::TalerJson;

use super::{AppState, parse_wopid, status_params};
use crate::api::{
    TerminalConfig, TerminalWithdrawalConfirmationRequest, TerminalWithdrawalSetup,
    TerminalWithdrawalSetupResponse,
};
use crate::error::C2ecError;
use crate::http::integration::{Reader, status_body};
use crate::service::Actor;

/// `GET /terminal/config`.
pub async fn get_config(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<TerminalConfig>, C2ecError> {
    s.terminal_auth.authenticate(&headers).await?;
    Ok(Json(TerminalConfig {
        name: cardcash_api::terminal::API_NAME.into(),
        version: crate::api::TERMINAL_VERSION,
        provider_name: s.c2ec.provider.name().to_owned(),
        currency: *s.c2ec.store.currency(),
        withdrawal_fees: s.withdrawal_fees,
        wire_type: s.c2ec.provider.payto_target_type().to_owned(),
    }))
}

/// `POST /terminal/withdrawals`.
pub async fn post_withdrawals(
    State(s): State<AppState>,
    headers: HeaderMap,
    TalerJson(req): TalerJson<TerminalWithdrawalSetup>,
) -> Result<Json<TerminalWithdrawalSetupResponse>, C2ecError> {
    let terminal = s.terminal_auth.authenticate(&headers).await?;
    let wopid = s.c2ec.setup(terminal, &req).await?;
    Ok(Json(TerminalWithdrawalSetupResponse {
        withdrawal_id: wopid.to_string(),
        taler_withdraw_uri: Some(s.withdraw_uri(&wopid)?),
    }))
}

/// `GET /terminal/withdrawals/{wopid}` with `old_state` and `timeout_ms`/`long_poll_ms`.
pub async fn get_withdrawal(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<crate::api::BankWithdrawalOperationStatus>, C2ecError> {
    let terminal = s.terminal_auth.authenticate(&headers).await?;
    let wopid = parse_wopid(&raw)?;
    let (old, poll) = status_params(query.as_deref())?;
    let row = s
        .c2ec
        .poll(&wopid, Some(terminal), old, poll.timeout)
        .await?;
    Ok(Json(status_body(&s, &row, Reader::Terminal)))
}

/// `POST /terminal/withdrawals/{wopid}/check`: the terminal reports the card transaction.
pub async fn post_check(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    TalerJson(req): TalerJson<TerminalWithdrawalConfirmationRequest>,
) -> Result<StatusCode, C2ecError> {
    let terminal = s.terminal_auth.authenticate(&headers).await?;
    let wopid = parse_wopid(&raw)?;
    s.c2ec
        .check(terminal, &wopid, &req.provider_transaction_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /terminal/withdrawals/{wopid}/abort` and `DELETE /terminal/withdrawals/{wopid}`.
pub async fn post_abort(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<StatusCode, C2ecError> {
    let terminal = s.terminal_auth.authenticate(&headers).await?;
    let wopid = parse_wopid(&raw)?;
    s.c2ec.abort(&wopid, Actor::Terminal(terminal)).await?;
    Ok(StatusCode::NO_CONTENT)
}
