//! Refresh: `POST /coins/$COIN_PUB/melt`, `POST /refreshes/$RC/reveal`,
//! `GET /coins/$COIN_PUB/link`, `POST /csr-melt` (the domain is [`crate::refresh`]).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use cardcash_api::exchange::{CsrMeltRequest, MeltRequest, RevealRequest};
use cardcash_http::TalerJson;
use cardcash_util::{ErrorCode, HashCode};

use super::AppState;
use super::path::CoinPub;
use crate::error::ExchangeError;
use crate::refresh;

/// `$RC` of `/refreshes/$RC/reveal` (code 1362 `EXCHANGE_REFRESHES_REVEAL_INVALID_RCH`), parsed
/// before the body.
#[derive(Debug, Clone, Copy)]
pub struct RefreshCommitment(pub HashCode);

impl<S: Send + Sync> FromRequestParts<S> for RefreshCommitment {
    type Rejection = ExchangeError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| v)
            .unwrap_or_default();
        raw.parse().map(Self).map_err(|_| {
            ExchangeError::refused(
                ErrorCode::ExchangeRefreshesRevealInvalidRch,
                "malformed refresh commitment in the path",
            )
        })
    }
}

/// `POST /coins/$COIN_PUB/melt`.
pub async fn post_melt(
    State(state): State<AppState>,
    CoinPub(coin_pub): CoinPub,
    TalerJson(request): TalerJson<MeltRequest>,
) -> Result<Response, ExchangeError> {
    Ok(TalerJson(refresh::melt(&state.exchange, coin_pub, request).await?).into_response())
}

/// `POST /refreshes/$RC/reveal`.
pub async fn post_reveal(
    State(state): State<AppState>,
    RefreshCommitment(rc): RefreshCommitment,
    TalerJson(request): TalerJson<RevealRequest>,
) -> Result<Response, ExchangeError> {
    Ok(TalerJson(refresh::reveal(&state.exchange, rc, request).await?).into_response())
}

/// `GET /coins/$COIN_PUB/link`.
pub async fn get_link(
    State(state): State<AppState>,
    CoinPub(coin_pub): CoinPub,
) -> Result<Response, ExchangeError> {
    Ok(TalerJson(refresh::link(&state.exchange, coin_pub).await?).into_response())
}

/// `POST /csr-melt`.
pub async fn post_csr_melt(
    State(state): State<AppState>,
    TalerJson(request): TalerJson<CsrMeltRequest>,
) -> Result<Response, ExchangeError> {
    Ok(TalerJson(refresh::csr_melt(&state.exchange, &request)?).into_response())
}
