//! Routes in the order of docs/CARDPROC-API.md.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use super::handlers;
use crate::service::Cardproc;

/// The service's routes (without the shared layers, which `App` adds).
pub fn routes(state: Arc<Cardproc>) -> Router {
    Router::new()
        // docs/CARDPROC-API.md "Transactions"
        .route(
            "/api/transaction/create",
            post(handlers::post_transaction_create),
        )
        .route(
            "/api/transaction/process-card",
            post(handlers::post_transaction_process_card),
        )
        .route(
            "/api/transaction-void/voidOnline",
            post(handlers::post_transaction_void_online),
        )
        .route("/api/transaction/read", get(handlers::get_transaction_read))
        // "Refunds"
        .route("/api/refund/refund", post(handlers::post_refund_refund))
        .route("/api/refund/read", get(handlers::get_refund_read))
        // "Payouts"
        .route("/api/payout/list", get(handlers::get_payout_list))
        // "Operations"
        .route("/config", get(handlers::get_config))
        .route("/admin/outage", post(handlers::post_admin_outage))
        .with_state(state)
}
