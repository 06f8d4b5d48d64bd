//! The paywalled Sonatas (design document 007): the page and the PDF both run the paywall; only
//! step 9's answer differs.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::{AppState, cookies, html, redirect};
use crate::error::StorefrontError;
use crate::page;
use crate::paywall::Decision;
use crate::pdf;
use crate::service::PaywallOutcome;

/// Steps 7, 8 and 10 (the same for the page and the file).
fn answer(
    outcome: PaywallOutcome,
    title: &str,
    cart: u64,
    serve: impl FnOnce() -> Response,
) -> Result<Response, StorefrontError> {
    let cookies = &outcome.set_cookies;
    Ok(match outcome.decision {
        Decision::Refunded { amount } => html(page::refunded(title, &amount, cart), cookies),
        Decision::CollectRefund { amount, url } => {
            html(page::collect_refund(title, &amount, &url, cart), cookies)
        }
        Decision::Redirect { url } => redirect(&url, cookies),
        Decision::Serve => {
            let mut response = serve();
            super::append_cookies(&mut response, cookies);
            response
        }
        // The paywall acts on these itself; never serve on them.
        Decision::NewOrder | Decision::AdoptPaidOrder { .. } => {
            return Err(StorefrontError::Internal(
                "the paywall returned an intermediate step".into(),
            ));
        }
    })
}

/// `GET /sonatas`: the resource URL (and fulfillment URL of its orders).
pub async fn get_sonatas(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, StorefrontError> {
    let shop = &state.shop;
    let jar = cookies(&headers);
    let cart = shop.cart(&jar).map_or(0, |c| c.quantity);
    let resource = shop.sonatas();
    let outcome = shop.paywall(&resource, &jar).await?;
    answer(outcome, resource.title, cart, || {
        html(page::sonatas_served(cart), &[])
    })
}

/// `GET /sonatas/sonatas.pdf`: the file itself, behind the same paywall.
pub async fn get_sonatas_pdf(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, StorefrontError> {
    let shop = &state.shop;
    let jar = cookies(&headers);
    let cart = shop.cart(&jar).map_or(0, |c| c.quantity);
    let resource = shop.sonatas();
    let outcome = shop.paywall(&resource, &jar).await?;
    answer(outcome, resource.title, cart, || {
        (
            [
                (CONTENT_TYPE, "application/pdf"),
                (
                    CONTENT_DISPOSITION,
                    "attachment; filename=\"beethoven-sonatas.pdf\"",
                ),
            ],
            pdf::sonatas_pdf(),
        )
            .into_response()
    })
}
