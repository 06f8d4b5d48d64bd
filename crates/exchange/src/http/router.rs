//! The route table, in the order of docs.taler.net core/api-exchange.

use axum::Router;
use axum::routing::{get, post};

use super::{
    AppState, coins, deposits, keys, legacy, legal, management, recoup, refreshes, reserves,
};

/// The exchange's router, without the shared layers (`cardcash_http::ServiceRouter` adds them).
pub fn router(state: AppState) -> Router {
    Router::new()
        // https://docs.taler.net/core/api-exchange.html#get--config
        .route("/config", get(keys::get_config))
        // https://docs.taler.net/core/api-exchange.html#get--keys
        .route("/keys", get(keys::get_keys))
        // https://docs.taler.net/core/api-exchange.html#get--terms
        .route("/terms", get(legal::get_terms))
        .route("/privacy", get(legal::get_privacy))
        // https://docs.taler.net/core/api-exchange.html#reserve-status
        .route("/reserves/{reserve_pub}", get(reserves::get_reserve))
        .route(
            "/reserves/{reserve_pub}/history",
            get(reserves::get_history),
        )
        // https://docs.taler.net/core/api-exchange.html#withdrawal
        .route("/csr-withdraw", post(reserves::post_csr_withdraw))
        .route(
            "/reserves/{reserve_pub}/batch-withdraw",
            post(reserves::post_batch_withdraw),
        )
        // https://docs.taler.net/core/api-exchange.html#deposit
        .route("/batch-deposit", post(deposits::post_batch_deposit))
        // https://docs.taler.net/core/api-exchange.html#refreshing-coins
        .route("/csr-melt", post(refreshes::post_csr_melt))
        .route("/coins/{coin_pub}/melt", post(refreshes::post_melt))
        .route("/refreshes/{rc}/reveal", post(refreshes::post_reveal))
        .route("/coins/{coin_pub}/link", get(refreshes::get_link))
        // https://docs.taler.net/core/api-exchange.html#refunds
        .route("/coins/{coin_pub}/refund", post(deposits::post_refund))
        // https://docs.taler.net/core/api-exchange.html#recoup
        .route("/coins/{coin_pub}/recoup", post(recoup::post_recoup))
        .route(
            "/coins/{coin_pub}/recoup-refresh",
            post(recoup::post_recoup_refresh),
        )
        // https://docs.taler.net/core/api-exchange.html#get--coins-$COIN_PUB-history
        .route("/coins/{coin_pub}/history", get(coins::get_history))
        // https://docs.taler.net/core/api-exchange.html#tracking-wire-transfers
        .route(
            "/deposits/{h_wire}/{merchant_pub}/{h_contract_terms}/{coin_pub}",
            get(deposits::get_deposit),
        )
        .route("/transfers/{wtid}", get(deposits::get_transfer))
        // https://docs.taler.net/core/api-exchange.html#management-operations
        .route(
            "/management/keys",
            get(management::get_keys).post(management::post_keys),
        )
        .route(
            "/management/denominations/{h_denom_pub}/revoke",
            post(management::post_revoke_denomination),
        )
        .route(
            "/management/signkeys/{exchange_pub}/revoke",
            post(management::post_revoke_signkey),
        )
        .route("/management/wire", post(management::post_wire))
        .route(
            "/management/wire/disable",
            post(management::post_wire_disable),
        )
        .route("/management/wire-fee", post(management::post_wire_fee))
        // docs.taler.net says global-fees; the C exchange (server and client) uses global-fee
        .route("/management/global-fee", post(management::post_global_fees))
        .route(
            "/management/global-fees",
            post(management::post_global_fees),
        )
        // The face for wallets of late 2022 (protocol 12–14): docs/API-CONFORMANCE.md
        .nest("/legacy", legacy::router())
        .with_state(state)
}
