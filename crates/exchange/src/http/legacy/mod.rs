//! The legacy face: the exchange as wallets of late 2022 (wallet-core 0.9, exchange protocol
//! 12) and the C clients of that time see it, under `<base URL>legacy/`. The same exchange
//! serves it — the same key snapshot, key store, database and domain functions — so a coin
//! withdrawn here can be deposited on the v23 face and the other way round; only the shapes
//! differ (docs/API-CONFORMANCE.md "The legacy face"):
//! - `/keys` with the flat `denoms` and `/wire` with the v12 account signatures, built with
//!   each key snapshot ([`crate::keys::legacy`]);
//! - single-coin `POST /reserves/$RESERVE_PUB/withdraw` beside batch-withdraw;
//! - `POST /coins/$COIN_PUB/deposit` (one coin, the v12 deposit and confirmation layouts);
//! - `GET /reserves/$RESERVE_PUB` answers an unknown reserve 404 `EXCHANGE_RESERVES_STATUS_UNKNOWN`
//!   (1250), the code the 2022 wallet waits on;
//! - melt, reveal and link on the v23 refresh domain (the 2022 shapes are v23's but for the
//!   melt body's `coin_pub` and the link's v12 denomination keys; for RSA coins without a
//!   refresh master secret the commitment and derivations are the same);
//! - refunds, tracking, `/terms` and `/privacy` as on the v23 face (the same shapes in 2022);
//! - `GET /seed` (32 random bytes), which the 2022 C clients' test harness polls.
//!
//! Handlers stay thin: extract, convert the v12 body into the domain's request, one domain
//! call, convert the answer (and, where 2022 used another code, the refusal).

mod coins;
mod keys;
mod reserves;

use axum::Router;
use axum::routing::{get, post};

use super::{AppState, deposits, legal, refreshes};

/// The legacy face's routes (nested under `/legacy` by [`super::router::router`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/keys", get(keys::get_keys))
        .route("/wire", get(keys::get_wire))
        .route("/terms", get(legal::get_terms))
        .route("/privacy", get(legal::get_privacy))
        .route("/reserves/{reserve_pub}", get(reserves::get_reserve))
        .route(
            "/reserves/{reserve_pub}/withdraw",
            post(reserves::post_withdraw),
        )
        .route(
            "/reserves/{reserve_pub}/batch-withdraw",
            post(reserves::post_batch_withdraw),
        )
        .route("/coins/{coin_pub}/deposit", post(coins::post_deposit))
        .route("/coins/{coin_pub}/refund", post(deposits::post_refund))
        .route("/coins/{coin_pub}/melt", post(coins::post_melt))
        .route("/refreshes/{rc}/reveal", post(refreshes::post_reveal))
        .route("/coins/{coin_pub}/link", get(coins::get_link))
        .route(
            "/deposits/{h_wire}/{merchant_pub}/{h_contract_terms}/{coin_pub}",
            get(deposits::get_deposit),
        )
        .route("/transfers/{wtid}", get(deposits::get_transfer))
        .route("/seed", get(seed))
}

/// `GET /seed`: 32 random bytes, as the 2022 C exchange serves them (its C clients' test
/// harness, `taler-exchange-benchmark` among them, waits for this route to answer before it
/// starts).
async fn seed() -> Result<impl axum::response::IntoResponse, crate::error::ExchangeError> {
    let bytes: [u8; 32] = cardcash_crypto::random_bytes()
        .map_err(|e| crate::error::ExchangeError::Internal(format!("random bytes: {e}")))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes.to_vec(),
    ))
}

/// `e` with code `to` instead of `from` (and `to`'s registered status): where the 2022 C
/// exchange answered the same refusal with another code.
fn recode(
    e: crate::error::ExchangeError,
    from: cardcash_util::ErrorCode,
    to: cardcash_util::ErrorCode,
) -> crate::error::ExchangeError {
    match e {
        crate::error::ExchangeError::Refused(mut r) if r.code == from => {
            r.code = to;
            crate::error::ExchangeError::Refused(r)
        }
        other => other,
    }
}
