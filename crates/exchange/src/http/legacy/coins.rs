//! The legacy face's coins: `POST /coins/$COIN_PUB/deposit` (one coin, signed in the v12 layout,
//! purpose 1201, 392 bytes: no `wallet_data_hash`; answered with the v12 single-coin
//! confirmation, purpose 1033, 312 bytes: the coin and its contribution without the fee; the
//! v23 deposit domain with a batch of one), `POST /coins/$COIN_PUB/melt` and
//! `GET /coins/$COIN_PUB/link` (the v23 refresh domain; the reveal is the v23 route).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cardcash_api::exchange::v12::{
    DenominationPublicKey, DepositRequest, DepositResponse, LinkCoin, LinkResponse, LinkSession,
    MeltRequest,
};
use cardcash_api::exchange::{self as v23, BatchDepositCoin, BatchDepositRequest};
use cardcash_http::TalerJson;
use cardcash_util::Base32Bytes;

use crate::deposit::{self, DepositLayout};
use crate::error::ExchangeError;
use crate::http::AppState;
use crate::http::path::CoinPub;
use crate::refresh;

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

/// `POST /legacy/coins/$COIN_PUB/melt`: the v23 melt (the 2022 body differs only by the
/// coin's key, which the path gives). For RSA fresh coins without a refresh master secret — all
/// a 2022 wallet makes — the v23 commitment is wallet-core 0.9's `rc` and the fresh coins derive
/// from the transfer secrets as in v12, so the same domain checks both.
pub async fn post_melt(
    State(state): State<AppState>,
    CoinPub(coin_pub): CoinPub,
    TalerJson(r): TalerJson<MeltRequest>,
) -> Result<Response, ExchangeError> {
    let melt = cardcash_api::exchange::MeltRequest {
        denom_pub_hash: r.denom_pub_hash,
        denom_sig: r.denom_sig,
        confirm_sig: r.confirm_sig,
        value_with_fee: r.value_with_fee,
        rc: r.rc,
        age_commitment_hash: r.age_commitment_hash,
        rms: None,
    };
    Ok(TalerJson(refresh::melt(&state.exchange, coin_pub, melt).await?).into_response())
}

/// `GET /legacy/coins/$COIN_PUB/link`: the v23 link with the fresh coins' denomination keys in
/// the v12 form (`rsa_public_key`/`cs_public_key`).
pub async fn get_link(
    State(state): State<AppState>,
    CoinPub(coin_pub): CoinPub,
) -> Result<Response, ExchangeError> {
    let sessions = refresh::link(&state.exchange, coin_pub).await?;
    let v12: LinkResponse = sessions
        .into_iter()
        .map(|s| LinkSession {
            transfer_pub: s.transfer_pub,
            new_coins: s
                .new_coins
                .into_iter()
                .map(|c| LinkCoin {
                    denom_pub: match c.denom_pub {
                        v23::DenominationPublicKey::Rsa { age_mask, rsa_pub } => {
                            DenominationPublicKey::Rsa {
                                rsa_public_key: rsa_pub,
                                age_mask,
                            }
                        }
                        v23::DenominationPublicKey::Cs { age_mask, cs_pub } => {
                            DenominationPublicKey::Cs {
                                cs_public_key: Base32Bytes::from_bytes(cs_pub.as_bytes().to_vec()),
                                age_mask,
                            }
                        }
                    },
                    ev_sig: c.ev_sig,
                    coin_idx: c.coin_idx,
                    ewv: c.ewv,
                    link_sig: c.link_sig,
                    cs_nonce: c.cs_nonce,
                })
                .collect(),
        })
        .collect();
    Ok(TalerJson(v12).into_response())
}
