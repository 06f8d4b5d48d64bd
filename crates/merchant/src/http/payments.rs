//! Paying, aborting and refunds: `POST /orders/$ID/pay`, `/abort`, `/refund` (the wallet's) and
//! `POST /private/orders/$ID/refund` (the merchant's). Thin: extract → one domain call
//! ([`crate::pay`], [`crate::refund`]) → response.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cardcash_api::merchant::PayRequest;
use cardcash_api::merchant::payments::{AbortRequest, RefundRequest, WalletRefundRequest};
use cardcash_http::{TalerJson, TalerPath};
use serde::Deserialize;

use super::AppState;
use crate::auth::{InstanceId, Permission};
use crate::error::MerchantError;

/// The order of a request path.
#[derive(Debug, Deserialize)]
pub struct OrderPath {
    pub order_id: String,
}

/// The routes of this module, relative to an instance's base URL.
pub fn routes() -> Router<AppState> {
    Router::new()
        // https://docs.taler.net/core/merchant/post-private-orders-ORDER_ID-refund.html
        .route(
            "/private/orders/{order_id}/refund",
            post(post_private_orders_refund),
        )
        // https://docs.taler.net/core/merchant/post-orders-ORDER_ID-pay.html
        .route("/orders/{order_id}/pay", post(post_orders_pay))
        // https://docs.taler.net/core/merchant/post-orders-ORDER_ID-abort.html
        .route("/orders/{order_id}/abort", post(post_orders_abort))
        // https://docs.taler.net/core/merchant/post-orders-ORDER_ID-refund.html
        .route("/orders/{order_id}/refund", post(post_orders_refund))
}

pub async fn post_orders_pay(
    State(state): State<AppState>,
    id: InstanceId,
    TalerPath(path): TalerPath<OrderPath>,
    TalerJson(request): TalerJson<PayRequest>,
) -> Result<Response, MerchantError> {
    let instance = state.merchant.live_instance(&id.0).await?;
    let answer = crate::pay::pay(&state.merchant, &instance, &path.order_id, request).await?;
    Ok(Json(answer).into_response())
}

pub async fn post_orders_abort(
    State(state): State<AppState>,
    id: InstanceId,
    TalerPath(path): TalerPath<OrderPath>,
    TalerJson(request): TalerJson<AbortRequest>,
) -> Result<Response, MerchantError> {
    let instance = state.merchant.live_instance(&id.0).await?;
    let answer = crate::pay::abort(&state.merchant, &instance, &path.order_id, request).await?;
    Ok(Json(answer).into_response())
}

pub async fn post_orders_refund(
    State(state): State<AppState>,
    id: InstanceId,
    TalerPath(path): TalerPath<OrderPath>,
    TalerJson(request): TalerJson<WalletRefundRequest>,
) -> Result<Response, MerchantError> {
    let instance = state.merchant.live_instance(&id.0).await?;
    match crate::refund::pickup(&state.merchant, &instance, &path.order_id, request).await? {
        Some(answer) => Ok(Json(answer).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

pub async fn post_private_orders_refund(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<OrderPath>,
    TalerJson(request): TalerJson<RefundRequest>,
) -> Result<Response, MerchantError> {
    let instance = state
        .merchant
        .authorize(&id, &headers, Permission::OrdersRefund)
        .await?;
    let answer = crate::refund::grant(&state.merchant, &instance, &path.order_id, request).await?;
    Ok(Json(answer).into_response())
}
