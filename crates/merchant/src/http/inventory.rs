//! `/private/products…`: products and locks. Thin handlers: extract → authorize → one call of
//! `crate::inventory` → response.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use cardcash_api::merchant::inventory::{
    InventorySummaryResponse, LockRequest, ProductAddDetail, ProductDetail, ProductPatchDetail,
};
use cardcash_http::{TalerJson, TalerPath, TalerQuery};
use serde::Deserialize;

use super::AppState;
use crate::auth::{InstanceId, Permission};
use crate::error::MerchantError;
use crate::inventory;

type Result<T> = std::result::Result<T, MerchantError>;

/// The inventory routes of every instance.
pub fn routes() -> Router<AppState> {
    Router::new()
        // https://docs.taler.net/core/merchant/post-private-products.html
        .route(
            "/private/products",
            get(get_private_products).post(post_private_products),
        )
        .route(
            "/private/products/{product_id}",
            get(get_private_product)
                .patch(patch_private_product)
                .delete(delete_private_product),
        )
        // https://docs.taler.net/core/merchant/post-private-products-PRODUCT_ID-lock.html
        .route(
            "/private/products/{product_id}/lock",
            post(post_private_product_lock),
        )
}

#[derive(Debug, Deserialize)]
pub struct ProductPath {
    pub product_id: String,
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub async fn post_private_products(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerJson(body): TalerJson<ProductAddDetail>,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::ProductsWrite)
        .await?;
    inventory::add_product(m, &instance, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_private_products(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerQuery(q): TalerQuery<PageQuery>,
) -> Result<TalerJson<InventorySummaryResponse>> {
    let m = &state.merchant;
    let instance = m.authorize(&id, &headers, Permission::ProductsRead).await?;
    Ok(TalerJson(
        inventory::list_products(m, &instance, q.limit, q.offset).await?,
    ))
}

pub async fn get_private_product(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<ProductPath>,
) -> Result<TalerJson<ProductDetail>> {
    let m = &state.merchant;
    let instance = m.authorize(&id, &headers, Permission::ProductsRead).await?;
    Ok(TalerJson(
        inventory::product_detail(m, &instance, &path.product_id).await?,
    ))
}

pub async fn patch_private_product(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<ProductPath>,
    TalerJson(body): TalerJson<ProductPatchDetail>,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::ProductsWrite)
        .await?;
    inventory::update_product(m, &instance, &path.product_id, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_private_product(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<ProductPath>,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::ProductsWrite)
        .await?;
    inventory::delete_product(m, &instance, &path.product_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn post_private_product_lock(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<ProductPath>,
    TalerJson(body): TalerJson<LockRequest>,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m.authorize(&id, &headers, Permission::ProductsLock).await?;
    inventory::lock_product(m, &instance, &path.product_id, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}
