//! The route table, in the order of docs.taler.net core/api-merchant.

use axum::Router;
use axum::routing::get;

use super::{
    AppState, config, instances, inventory, orders, payments, settlement, status, webhooks,
};

/// The routes every instance has, relative to the instance's base URL.
fn instance_routes() -> Router<AppState> {
    Router::new()
        .merge(instances::routes())
        .merge(inventory::routes())
        .merge(orders::routes())
        .merge(payments::routes())
        .merge(settlement::routes())
        .merge(status::routes())
        .merge(webhooks::routes())
}

/// The merchant's router, without the shared layers (`cardcash_http::ServiceRouter` adds them).
pub fn router(state: AppState) -> Router {
    let instance = instance_routes();
    Router::new()
        // https://docs.taler.net/core/merchant/get-config.html
        .route("/config", get(config::get_config))
        .merge(instances::management_routes())
        .merge(instance.clone())
        .nest("/instances/{instance}", instance)
        .with_state(state)
}
