//! The legacy face's `POST /coins/$COIN_PUB/deposit`: one coin, signed in the v12 layout
//! (purpose 1201, 392 bytes: no `wallet_data_hash`), answered with the v12 single-coin
//! confirmation (purpose 1033, 312 bytes: the coin and its contribution without the fee), on
//! the v23 deposit domain (a batch of one).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cardcash_api::exchange::v12::{DepositRequest, DepositResponse};
use cardcash_api::exchange::{BatchDepositCoin, BatchDepositRequest};
use cardcash_http::TalerJson;

use crate::deposit::{self, DepositLayout};
use crate::error::ExchangeError;
use crate::http::AppState;
use crate::http::path::CoinPub;

/// `POST /legacy/coins/$COIN_PUB/deposit`.
pub async fn post_deposit(
    State(state): State<AppState>,
    CoinPub(coin_pub): CoinPub,
    TalerJson(r): TalerJson<DepositRequest>,
) -> Result<Response, ExchangeError> {
    let batch = BatchDepositRequest {
        merchant_payto_uri: r.merchant_payto_uri,
        wire_salt: r.wire_salt,
        merchant_pub: r.merchant_pub,
        merchant_sig: None,
        h_contract_terms: r.h_contract_terms,
        wallet_data_hash: None,
        coins: vec![BatchDepositCoin {
            contribution: r.contribution,
            denom_pub_hash: r.denom_pub_hash,
            ub_sig: r.ub_sig,
            coin_pub,
            h_age_commitment: r.h_age_commitment,
            coin_sig: r.coin_sig,
        }],
        policy: None,
        timestamp: r.timestamp,
        refund_deadline: r.refund_deadline,
        wire_transfer_deadline: r.wire_transfer_deadline,
    };
    let answer = deposit::deposit_with_layout(&state.exchange, batch, DepositLayout::V12).await?;
    Ok(TalerJson(DepositResponse {
        exchange_timestamp: answer.exchange_timestamp,
        exchange_sig: answer.exchange_sig,
        exchange_pub: answer.exchange_pub,
        transaction_base_url: None,
    })
    .into_response())
}
