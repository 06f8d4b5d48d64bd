//! The piano cart: view, add, remove, checkout, and the delivery page (the piano orders'
//! fulfillment URL). Every form answers with a redirect (post/redirect/get), carrying a notice.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::shop::NoticeQuery;
use super::{AppState, cookies, html, redirect};
use crate::error::StorefrontError;
use crate::page::{self, CartView, Notice};
use crate::service::{CartChange, Checkout};

fn to_cart(notice: Notice, set_cookies: &[String]) -> Response {
    redirect(&format!("/cart?notice={}", notice.as_query()), set_cookies)
}

/// `GET /cart`.
pub async fn get_cart(
    State(state): State<AppState>,
    Query(query): Query<NoticeQuery>,
    headers: HeaderMap,
) -> Result<Response, StorefrontError> {
    let shop = &state.shop;
    let quantity = shop.cart(&cookies(&headers)).map_or(0, |c| c.quantity);
    let price = shop.config().piano_price;
    let total = price
        .checked_mul(quantity)
        .map_err(|e| StorefrontError::Internal(format!("cart total: {e}")))?;
    let view = CartView {
        quantity,
        price,
        total,
        lock_minutes: shop.config().lock_duration.as_secs().div_ceil(60),
        piano_available: shop.piano_available().await,
        notice: query.notice(),
    };
    Ok(html(page::cart(&view), &[]))
}

fn answer_change(change: CartChange, done: Notice) -> Response {
    match change {
        CartChange::Changed { set_cookie, .. } => to_cart(done, &[set_cookie]),
        CartChange::Full => to_cart(Notice::CartFull, &[]),
        CartChange::SoldOut => to_cart(Notice::SoldOut, &[]),
    }
}

/// `POST /cart/add`: one more piano, locked at the backend.
pub async fn post_cart_add(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, StorefrontError> {
    let change = state.shop.add_piano(&cookies(&headers)).await?;
    Ok(answer_change(change, Notice::Added))
}

/// `POST /cart/remove`: one piano fewer (the lock shrinks; at 0 it is released).
pub async fn post_cart_remove(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, StorefrontError> {
    let change = state.shop.remove_piano(&cookies(&headers)).await?;
    Ok(answer_change(change, Notice::Removed))
}

/// `POST /cart/checkout`: the order, then its status page at the backend (the QR code).
pub async fn post_cart_checkout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, StorefrontError> {
    Ok(match state.shop.checkout(&cookies(&headers)).await? {
        Checkout::Created {
            status_url,
            clear_cookie,
            ..
        } => redirect(&status_url, &[clear_cookie]),
        Checkout::Empty => to_cart(Notice::CartEmpty, &[]),
        Checkout::SoldOut { clear_cookie } => to_cart(Notice::SoldOut, &[clear_cookie]),
    })
}

#[derive(Debug, Deserialize)]
pub struct DeliveryPath {
    pub order_id: String,
}

/// `GET /delivery/{order_id}`.
pub async fn get_delivery(
    State(state): State<AppState>,
    Path(path): Path<DeliveryPath>,
) -> Result<Response, StorefrontError> {
    Ok(match state.shop.delivery(&path.order_id).await? {
        Some((paid, status_url)) => html(
            page::delivery(&path.order_id, paid, (!paid).then_some(status_url.as_str())),
            &[],
        ),
        None => redirect("/", &[]),
    })
}
