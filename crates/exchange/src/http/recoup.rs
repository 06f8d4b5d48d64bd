//! Recoup: `POST /coins/$COIN_PUB/recoup` and `POST /coins/$COIN_PUB/recoup-refresh` (the
//! domain is [`crate::recoup`]). The path is parsed first (400 1004), then the body.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cardcash_api::exchange::RecoupRequest;
use cardcash_http::TalerJson;

use super::AppState;
use super::path::CoinPub;
use crate::error::ExchangeError;
use crate::recoup;

/// `POST /coins/$COIN_PUB/recoup` → `{reserve_pub}`.
pub async fn post_recoup(
    State(state): State<AppState>,
    CoinPub(coin_pub): CoinPub,
    TalerJson(request): TalerJson<RecoupRequest>,
) -> Result<Response, ExchangeError> {
    Ok(TalerJson(recoup::recoup(&state.exchange, coin_pub, request).await?).into_response())
}

/// `POST /coins/$COIN_PUB/recoup-refresh` → `{old_coin_pub}`.
pub async fn post_recoup_refresh(
    State(state): State<AppState>,
    CoinPub(coin_pub): CoinPub,
    TalerJson(request): TalerJson<RecoupRequest>,
) -> Result<Response, ExchangeError> {
    Ok(
        TalerJson(recoup::recoup_refresh(&state.exchange, coin_pub, request).await?)
            .into_response(),
    )
}
