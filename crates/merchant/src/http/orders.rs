//! `POST /private/orders`, `GET /private/orders`, `DELETE /private/orders/$ID`,
//! `PATCH /private/orders/$ID/forget`. Thin handlers: extract → authorize → one call of
//! `crate::orders` → response.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch};
use cardcash_api::merchant::orders::{ForgetRequest, OrderHistory, PostOrderResponse};
use cardcash_http::{TalerJson, TalerPath, TalerQuery};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use crate::auth::{InstanceId, Permission};
use crate::error::MerchantError;
use crate::orders::{self, Forgot, ListQuery};

type Result<T> = std::result::Result<T, MerchantError>;

/// The order routes of every instance.
pub fn routes() -> Router<AppState> {
    Router::new()
        // https://docs.taler.net/core/merchant/post-private-orders.html
        // https://git.taler.net/taler/taler-docs/file/core/merchant/get-private-orders.rst.html
        .route(
            "/private/orders",
            get(get_private_orders).post(post_private_orders),
        )
        // https://git.gnunet.org/taler/taler-docs/file/core/merchant/delete-private-orders-ORDER_ID.rst.html
        .route("/private/orders/{order_id}", delete(delete_private_order))
        // https://docs.taler.net/core/merchant/patch-private-orders-ORDER_ID-forget.html
        .route(
            "/private/orders/{order_id}/forget",
            patch(patch_private_order_forget),
        )
}

#[derive(Debug, Deserialize)]
pub struct OrderPath {
    pub order_id: String,
}

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    pub force: Option<String>,
}

/// Our extra: `Idempotency-Key` makes an order without `order_id` idempotent.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub async fn post_private_orders(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerJson(body): TalerJson<Value>,
) -> Result<TalerJson<PostOrderResponse>> {
    let m = &state.merchant;
    let instance = m.authorize(&id, &headers, Permission::OrdersWrite).await?;
    let key = match headers.get(IDEMPOTENCY_KEY) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| MerchantError::malformed("Idempotency-Key"))?
                .to_owned(),
        ),
        None => None,
    };
    Ok(TalerJson(
        orders::create_order(m, &instance, body, key).await?,
    ))
}

pub async fn get_private_orders(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerQuery(query): TalerQuery<ListQuery>,
) -> Result<TalerJson<OrderHistory>> {
    let m = &state.merchant;
    let instance = m.authorize(&id, &headers, Permission::OrdersRead).await?;
    Ok(TalerJson(orders::list_orders(m, &instance, &query).await?))
}

pub async fn delete_private_order(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<OrderPath>,
    TalerQuery(query): TalerQuery<DeleteQuery>,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m.authorize(&id, &headers, Permission::OrdersWrite).await?;
    let force = query.force.as_deref() == Some("YES");
    orders::delete_order(m, &instance, &path.order_id, force).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn patch_private_order_forget(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<OrderPath>,
    TalerJson(request): TalerJson<ForgetRequest>,
) -> Result<Response> {
    let m = &state.merchant;
    let instance = m.authorize(&id, &headers, Permission::OrdersWrite).await?;
    Ok(
        match orders::forget_fields(m, &instance, &path.order_id, &request).await? {
            Forgot::Changed => StatusCode::OK.into_response(),
            Forgot::Unchanged => StatusCode::NO_CONTENT.into_response(),
        },
    )
}
