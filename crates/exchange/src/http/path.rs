//! Typed path segments, parsed before the body (as the C exchange parses the path when it
//! dispatches): a malformed key gets the code of its position, whatever the body.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use cardcash_util::{EddsaPublicKey, ErrorCode, HashCode};

use crate::error::ExchangeError;

fn malformed(code: ErrorCode, what: &str) -> ExchangeError {
    ExchangeError::refused(code, format!("malformed {what} in the path"))
}

async fn segments<S: Send + Sync>(parts: &mut Parts, state: &S) -> Vec<String> {
    Path::<Vec<(String, String)>>::from_request_parts(parts, state)
        .await
        .map(|Path(v)| v.into_iter().map(|(_, value)| value).collect())
        .unwrap_or_default()
}

/// `$RESERVE_PUB` (code 27 `GENERIC_RESERVE_PUB_MALFORMED`).
#[derive(Debug, Clone, Copy)]
pub struct ReservePub(pub EddsaPublicKey);

impl<S: Send + Sync> FromRequestParts<S> for ReservePub {
    type Rejection = ExchangeError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = segments(parts, state).await;
        raw.first()
            .and_then(|s| s.parse().ok())
            .map(Self)
            .ok_or_else(|| malformed(ErrorCode::GenericReservePubMalformed, "reserve public key"))
    }
}

/// `$COIN_PUB` (code 1004 `EXCHANGE_GENERIC_COINS_INVALID_COIN_PUB`).
#[derive(Debug, Clone, Copy)]
pub struct CoinPub(pub EddsaPublicKey);

impl<S: Send + Sync> FromRequestParts<S> for CoinPub {
    type Rejection = ExchangeError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = segments(parts, state).await;
        raw.first()
            .and_then(|s| s.parse().ok())
            .map(Self)
            .ok_or_else(|| {
                malformed(
                    ErrorCode::ExchangeGenericCoinsInvalidCoinPub,
                    "coin public key",
                )
            })
    }
}

/// `$H_WIRE/$MERCHANT_PUB/$H_CONTRACT_TERMS/$COIN_PUB` of `GET /deposits/…` (codes 1101–1104).
#[derive(Debug, Clone, Copy)]
pub struct DepositPath {
    pub h_wire: HashCode,
    pub merchant_pub: EddsaPublicKey,
    pub h_contract_terms: HashCode,
    pub coin_pub: EddsaPublicKey,
}

impl<S: Send + Sync> FromRequestParts<S> for DepositPath {
    type Rejection = ExchangeError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = segments(parts, state).await;
        let get = |i: usize| raw.get(i).map(String::as_str).unwrap_or("");
        Ok(Self {
            h_wire: get(0)
                .parse()
                .map_err(|_| malformed(ErrorCode::ExchangeDepositsGetInvalidHWire, "h_wire"))?,
            merchant_pub: get(1).parse().map_err(|_| {
                malformed(
                    ErrorCode::ExchangeDepositsGetInvalidMerchantPub,
                    "merchant public key",
                )
            })?,
            h_contract_terms: get(2).parse().map_err(|_| {
                malformed(
                    ErrorCode::ExchangeDepositsGetInvalidHContractTerms,
                    "contract terms hash",
                )
            })?,
            coin_pub: get(3).parse().map_err(|_| {
                malformed(
                    ErrorCode::ExchangeDepositsGetInvalidCoinPub,
                    "coin public key",
                )
            })?,
        })
    }
}
