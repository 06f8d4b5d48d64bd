//! The legacy face's reserves: `GET /reserves/$RESERVE_PUB` (the 2022 wallet's long poll),
//! `POST /reserves/$RESERVE_PUB/withdraw` (one coin, wallet-core 0.9's default) and
//! `…/batch-withdraw`, all on the v23 domain functions.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use cardcash_api::exchange::v12::{
    BatchWithdrawRequest, BatchWithdrawResponse, ReserveStatusResponse, WithdrawRequest,
    WithdrawResponse,
};
use cardcash_api::exchange::{self as v23, WithdrawPlanchet};
use cardcash_http::{LongPoll, TalerJson};
use cardcash_util::ErrorCode;

use crate::error::ExchangeError;
use crate::http::AppState;
use crate::http::path::ReservePub;
use crate::{reserve, withdraw};

/// `GET /legacy/reserves/$RESERVE_PUB[?timeout_ms=N]`: `{balance}`; an unknown reserve is 404
/// `EXCHANGE_RESERVES_STATUS_UNKNOWN` (1250), which the 2022 wallet takes for "not yet".
pub async fn get_reserve(
    State(state): State<AppState>,
    ReservePub(reserve_pub): ReservePub,
    RawQuery(query): RawQuery,
) -> Result<Response, ExchangeError> {
    let poll = LongPoll::from_query(query.as_deref().unwrap_or(""))
        .map_err(|e| ExchangeError::malformed(&format!("long-poll parameters ({})", e.hint)))?;
    let summary = reserve::summary(&state.exchange, reserve_pub, poll.timeout)
        .await
        .map_err(|e| {
            super::recode(
                e,
                ErrorCode::ExchangeGenericReserveUnknown,
                ErrorCode::ExchangeReservesStatusUnknown,
            )
        })?;
    Ok(TalerJson(ReserveStatusResponse {
        balance: summary.balance,
    })
    .into_response())
}

fn planchet(p: WithdrawRequest) -> WithdrawPlanchet {
    WithdrawPlanchet {
        denom_pub_hash: p.denom_pub_hash,
        reserve_sig: p.reserve_sig,
        coin_ev: p.coin_ev,
    }
}

/// `POST /legacy/reserves/$RESERVE_PUB/withdraw`: a batch of one.
pub async fn post_withdraw(
    State(state): State<AppState>,
    ReservePub(reserve_pub): ReservePub,
    TalerJson(request): TalerJson<WithdrawRequest>,
) -> Result<Response, ExchangeError> {
    let batch = v23::BatchWithdrawRequest {
        planchets: vec![planchet(request)],
    };
    let mut answer = withdraw::batch_withdraw(&state.exchange, reserve_pub, batch).await?;
    let ev_sig = answer
        .ev_sigs
        .pop()
        .ok_or_else(|| ExchangeError::Internal("a batch of one without its signature".into()))?
        .ev_sig;
    Ok(TalerJson(WithdrawResponse { ev_sig }).into_response())
}

/// `POST /legacy/reserves/$RESERVE_PUB/batch-withdraw`.
pub async fn post_batch_withdraw(
    State(state): State<AppState>,
    ReservePub(reserve_pub): ReservePub,
    TalerJson(request): TalerJson<BatchWithdrawRequest>,
) -> Result<Response, ExchangeError> {
    let batch = v23::BatchWithdrawRequest {
        planchets: request.planchets.into_iter().map(planchet).collect(),
    };
    let answer = withdraw::batch_withdraw(&state.exchange, reserve_pub, batch).await?;
    Ok(TalerJson(BatchWithdrawResponse {
        ev_sigs: answer
            .ev_sigs
            .into_iter()
            .map(|s| WithdrawResponse { ev_sig: s.ev_sig })
            .collect(),
    })
    .into_response())
}
