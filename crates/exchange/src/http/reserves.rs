//! Reserves and withdrawal: `GET /reserves/$RESERVE_PUB`, `GET /reserves/$RESERVE_PUB/history`,
//! `POST /csr-withdraw`, `POST /reserves/$RESERVE_PUB/batch-withdraw`.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cardcash_api::exchange::{
    BatchWithdrawRequest, CsrWithdrawRequest, RESERVE_HISTORY_SIGNATURE_HEADER,
};
use cardcash_http::{LongPoll, TalerJson};

use super::AppState;
use super::path::ReservePub;
use crate::error::ExchangeError;
use crate::{reserve, withdraw};

/// `GET /reserves/$RESERVE_PUB[?timeout_ms=N]`.
pub async fn get_reserve(
    State(state): State<AppState>,
    ReservePub(reserve_pub): ReservePub,
    RawQuery(query): RawQuery,
) -> Result<Response, ExchangeError> {
    let poll = LongPoll::from_query(query.as_deref().unwrap_or(""))
        .map_err(|e| ExchangeError::malformed(&format!("long-poll parameters ({})", e.hint)))?;
    let summary = reserve::summary(&state.exchange, reserve_pub, poll.timeout).await?;
    Ok(TalerJson(summary).into_response())
}

/// `GET /reserves/$RESERVE_PUB/history[?start=N]` with the signature header.
pub async fn get_history(
    State(state): State<AppState>,
    ReservePub(reserve_pub): ReservePub,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ExchangeError> {
    let mut start = 0u64;
    for (k, v) in url_pairs(query.as_deref().unwrap_or("")) {
        if k == "start" {
            start = v.parse().map_err(|_| ExchangeError::malformed("start"))?;
        }
    }
    let signature = headers
        .get(RESERVE_HISTORY_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ExchangeError::refused(
                cardcash_util::ErrorCode::GenericParameterMissing,
                format!("the {RESERVE_HISTORY_SIGNATURE_HEADER} header is missing"),
            )
        })?
        .parse()
        .map_err(|_| ExchangeError::malformed(RESERVE_HISTORY_SIGNATURE_HEADER))?;
    let (history, offset) =
        reserve::history(&state.exchange, reserve_pub, start, signature).await?;
    let etag = HeaderValue::from_str(&format!("\"{offset}\"")).ok();
    let mut response = if history.history.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else if headers
        .get(header::IF_NONE_MATCH)
        .zip(etag.as_ref())
        .is_some_and(|(a, b)| a == b)
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        TalerJson(history).into_response()
    };
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `POST /csr-withdraw`.
pub async fn post_csr_withdraw(
    State(state): State<AppState>,
    TalerJson(request): TalerJson<CsrWithdrawRequest>,
) -> Result<Response, ExchangeError> {
    Ok(TalerJson(withdraw::csr_withdraw(&state.exchange, &request)?).into_response())
}

/// `POST /reserves/$RESERVE_PUB/batch-withdraw`.
pub async fn post_batch_withdraw(
    State(state): State<AppState>,
    ReservePub(reserve_pub): ReservePub,
    TalerJson(request): TalerJson<BatchWithdrawRequest>,
) -> Result<Response, ExchangeError> {
    let response = withdraw::batch_withdraw(&state.exchange, reserve_pub, request).await?;
    Ok(TalerJson(response).into_response())
}

/// `key=value` pairs of a query string (values are plain numbers here; no decoding needed).
fn url_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}
