//! The route table: the catalogue, the paywalled Sonatas (design document 007), the piano cart
//! and its delivery page, the admin page.

use axum::Router;
use axum::routing::{get, post};

use super::{AppState, admin, cart, shop, sonatas};

/// The storefront's router, without the shared layers (`cardcash_http::ServiceRouter` adds
/// them: tracing, metrics at `/metrics`, limits).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(shop::get_catalogue))
        .route("/style.css", get(shop::get_style))
        .route("/sonatas", get(sonatas::get_sonatas))
        .route("/sonatas/sonatas.pdf", get(sonatas::get_sonatas_pdf))
        .route("/cart", get(cart::get_cart))
        .route("/cart/add", post(cart::post_cart_add))
        .route("/cart/remove", post(cart::post_cart_remove))
        .route("/cart/checkout", post(cart::post_cart_checkout))
        .route("/delivery/{order_id}", get(cart::get_delivery))
        .route("/admin", get(admin::get_admin))
        .route("/admin/refund", post(admin::post_admin_refund))
        .with_state(state)
}
