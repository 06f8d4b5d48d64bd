//! Deposits, refunds and tracking: `POST /batch-deposit`, `POST /coins/$COIN_PUB/refund`,
//! `GET /deposits/$H_WIRE/$MERCHANT_PUB/$H_CONTRACT_TERMS/$COIN_PUB`, `GET /transfers/$WTID`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cardcash_api::exchange::{BatchDepositRequest, RefundRequest};
use cardcash_http::{LongPoll, TalerJson};
use cardcash_util::{ErrorCode, ShortHashCode};

use super::path::{CoinPub, DepositPath};
use super::{AppState, parse_segment};
use crate::db::TOPIC_WIRE_OUT;
use crate::deposit::{self, Tracking};
use crate::error::ExchangeError;

/// `POST /batch-deposit`.
pub async fn post_batch_deposit(
    State(state): State<AppState>,
    TalerJson(request): TalerJson<BatchDepositRequest>,
) -> Result<Response, ExchangeError> {
    Ok(TalerJson(deposit::batch_deposit(&state.exchange, request).await?).into_response())
}

/// `POST /coins/$COIN_PUB/refund`.
pub async fn post_refund(
    State(state): State<AppState>,
    CoinPub(coin_pub): CoinPub,
    TalerJson(request): TalerJson<RefundRequest>,
) -> Result<Response, ExchangeError> {
    Ok(TalerJson(deposit::refund(&state.exchange, coin_pub, request).await?).into_response())
}

/// `GET /deposits/$H_WIRE/$MERCHANT_PUB/$H_CONTRACT_TERMS/$COIN_PUB?merchant_sig=…[&timeout_ms=…]`.
/// With `timeout_ms` the answer waits (on deposit and settlement notifications) until the
/// deposit is wired or the time is up.
pub async fn get_deposit(
    State(state): State<AppState>,
    DepositPath {
        h_wire,
        merchant_pub,
        h_contract_terms,
        coin_pub,
    }: DepositPath,
    RawQuery(query): RawQuery,
) -> Result<Response, ExchangeError> {
    let query = query.unwrap_or_default();
    let merchant_sig = query
        .split('&')
        .find_map(|p| p.strip_prefix("merchant_sig="))
        .ok_or_else(|| {
            ExchangeError::refused(
                ErrorCode::GenericParameterMissing,
                "merchant_sig is missing",
            )
        })
        .and_then(|s| parse_segment(s, "merchant_sig"))?;
    let filtered: Vec<&str> = query
        .split('&')
        .filter(|p| p.starts_with("timeout_ms=") || p.starts_with("long_poll_ms="))
        .collect();
    let poll = LongPoll::from_query(&filtered.join("&"))
        .map_err(|e| ExchangeError::malformed(&format!("long-poll parameters ({})", e.hint)))?;
    let exchange = &state.exchange;
    let mut subscription = exchange.store().notifier().subscribe_topic(TOPIC_WIRE_OUT);
    let deadline = tokio::time::Instant::now() + poll.timeout;
    let outcome = loop {
        let outcome = deposit::track_deposit(
            exchange,
            h_wire,
            merchant_pub,
            h_contract_terms,
            coin_pub,
            merchant_sig,
        )
        .await;
        let now = tokio::time::Instant::now();
        if !matches!(outcome, Ok(Tracking::Pending(_))) || now >= deadline {
            break outcome;
        }
        subscription.wait(deadline - now).await;
    };
    Ok(match outcome? {
        Tracking::Wired(body) => TalerJson(body).into_response(),
        Tracking::Pending(body) => (StatusCode::ACCEPTED, TalerJson(body)).into_response(),
    })
}

/// `GET /transfers/$WTID`.
pub async fn get_transfer(
    State(state): State<AppState>,
    Path(wtid): Path<String>,
) -> Result<Response, ExchangeError> {
    let wtid: ShortHashCode = wtid.parse().map_err(|_| {
        ExchangeError::refused(
            ErrorCode::ExchangeTransfersGetWtidMalformed,
            "malformed wire transfer identifier",
        )
    })?;
    Ok(TalerJson(deposit::track_transfer(&state.exchange, wtid).await?).into_response())
}
