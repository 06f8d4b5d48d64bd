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
        // https://docs.taler.net/core/api-bank-wire.html#get--config
        .route(
            "/accounts/{name}/taler-wire-gateway/config",
            get(wire_gateway::get_config),
        )
        // https://docs.taler.net/core/api-bank-wire.html#post--transfer
        .route(
            "/accounts/{name}/taler-wire-gateway/transfer",
            post(wire_gateway::post_transfer),
        )
        // https://docs.taler.net/core/api-bank-wire.html#get--history-incoming
        .route(
            "/accounts/{name}/taler-wire-gateway/history/incoming",
            get(wire_gateway::get_history_incoming),
        )
        // https://docs.taler.net/core/api-bank-wire.html#get--history-outgoing
        .route(
            "/accounts/{name}/taler-wire-gateway/history/outgoing",
            get(wire_gateway::get_history_outgoing),
        )
        // https://docs.taler.net/core/api-bank-wire.html#post--admin-add-incoming
        .route(
            "/accounts/{name}/taler-wire-gateway/admin/add-incoming",
            post(wire_gateway::post_admin_add_incoming),
        )
        .with_state(state)
}
