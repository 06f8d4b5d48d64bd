//! The bank's routes, in the order of the specifications: Core Bank API
//! (docs.taler.net api-corebank), then the Taler Wire Gateway API per account
//! (docs.taler.net api-bank-wire).

use axum::Router;
use axum::routing::{get, post};

use super::{AppState, core, wire_gateway};

/// The bank's router, without the shared layers (`cardcash_http::ServiceRouter` adds them).
pub fn router(state: AppState) -> Router {
    Router::new()
        // https://docs.taler.net/core/api-corebank.html#get--config
        .route("/config", get(core::get_config))
        // https://docs.taler.net/core/api-corebank.html#post--accounts
        .route(
            "/accounts",
            post(core::post_accounts).get(core::get_accounts),
        )
        // https://docs.taler.net/core/api-corebank.html#get--accounts-$USERNAME
        .route("/accounts/{name}", get(core::get_account))
        // https://docs.taler.net/core/api-corebank.html#post--accounts-$USERNAME-token
        .route("/accounts/{name}/token", post(core::post_token))
        // https://docs.taler.net/core/api-corebank.html#get--accounts-$USERNAME-transactions
        .route(
            "/accounts/{name}/transactions",
            get(core::get_transactions).post(core::post_transactions),
        )
        // https://docs.taler.net/core/api-corebank.html#get--accounts-$USERNAME-transactions-$TRANSACTION_ID
        .route(
            "/accounts/{name}/transactions/{row_id}",
            get(core::get_transaction),
        )
        // https://docs.taler.net/core/api-bank-wire.html (the shared router: config, transfer,
        // transfers, histories, admin/add-incoming), one gateway per exchange account
        .nest(
            "/accounts/{name}/taler-wire-gateway",
            cardcash_http::wire_gateway::router(wire_gateway::BankWireGateway::new(state.clone())),
        )
        .with_state(state)
}
