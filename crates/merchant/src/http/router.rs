//! The route table, in the order of docs.taler.net core/api-merchant.

use axum::Router;
use axum::routing::get;

use super::{
    AppState, config, instances, inventory, openapi, orders, payments, sessions, settlement,
    status, webhooks,
};

/// The routes every instance has, relative to the instance's base URL.
fn instance_routes() -> Router<AppState> {
    Router::new()
        .merge(instances::routes())
        .merge(inventory::routes())
        .merge(orders::routes())
        .merge(payments::routes())
        .merge(settlement::routes())
        .merge(sessions::routes())
        .merge(status::routes())
        .merge(webhooks::routes())
}

/// The merchant's router, without the shared layers (`cardcash_http::ServiceRouter` adds them).
pub fn router(state: AppState) -> Router {
    let instance = instance_routes();
    Router::new()
        // https://docs.taler.net/core/merchant/get-config.html
        .route("/config", get(config::get_config))
        // Ours: this route table as an OpenAPI 3.1 document (`crate::openapi`).
        .route("/openapi.json", get(openapi::get_openapi))
        .merge(instances::management_routes())
        .merge(instance.clone())
        .nest("/instances/{instance}", instance)
        .with_state(state)
}
