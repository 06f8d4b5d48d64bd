//! Order status, claim and `/paid`: thin handlers over [`crate::status`].

use axum::Router;
use axum::extract::State;
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cardcash_api::merchant::status::StatusGotoResponse;
use cardcash_api::merchant::{ClaimRequest, OrderStatusUnpaid, PaidRequest};
use cardcash_http::{LongPoll, TalerJson, TalerPath, TalerQuery};
use cardcash_util::{Amount, HashCode};
use serde::Deserialize;

use super::AppState;
use crate::auth::{InstanceId, Permission};
use crate::error::MerchantError;
use crate::page::{PayPage, paid_page, pay_page};
use crate::status::{PrivateStatusQuery, PublicStatus, PublicStatusQuery, goto_fulfillment};

/// The routes of this module (relative to an instance's base URL).
pub fn routes() -> Router<AppState> {
    Router::new()
        // https://docs.taler.net/core/merchant/get-private-orders-ORDER_ID.html
        .route("/private/orders/{order_id}", get(get_private_order))
        // https://docs.taler.net/core/merchant/post-orders-ORDER_ID-claim.html
        .route("/orders/{order_id}/claim", post(post_order_claim))
        // https://docs.taler.net/core/merchant/post-orders-ORDER_ID-paid.html
        .route("/orders/{order_id}/paid", post(post_order_paid))
        // https://docs.taler.net/core/merchant/get-orders-ORDER_ID.html
        .route("/orders/{order_id}", get(get_order))
}

#[derive(Debug, Deserialize)]
pub struct OrderPath {
    pub order_id: String,
}

/// `yes` (any case) or `true` is yes.
fn yes(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("true"))
}

#[derive(Debug, Deserialize)]
pub struct PrivateStatusParams {
    session_id: Option<String>,
    allow_refunded_for_repurchase: Option<String>,
}

pub async fn get_private_order(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<OrderPath>,
    TalerQuery(params): TalerQuery<PrivateStatusParams>,
    poll: LongPoll,
) -> Result<Response, MerchantError> {
    let merchant = &state.merchant;
    let instance = merchant
        .authorize(&id, &headers, Permission::OrdersRead)
        .await?;
    let query = PrivateStatusQuery {
        session_id: params.session_id,
        timeout: poll.timeout,
        allow_refunded_for_repurchase: yes(params.allow_refunded_for_repurchase.as_deref()),
    };
    let status = merchant
        .private_order_status(&instance, &path.order_id, &query)
        .await?;
    Ok(TalerJson(status).into_response())
}

pub async fn post_order_claim(
    State(state): State<AppState>,
    id: InstanceId,
    TalerPath(path): TalerPath<OrderPath>,
    TalerJson(request): TalerJson<ClaimRequest>,
) -> Result<Response, MerchantError> {
    let merchant = &state.merchant;
    let instance = merchant.live_instance(&id.0).await?;
    let response = merchant
        .claim_order(&instance, &path.order_id, request)
        .await?;
    Ok(TalerJson(response).into_response())
}

pub async fn post_order_paid(
    State(state): State<AppState>,
    id: InstanceId,
    TalerPath(path): TalerPath<OrderPath>,
    TalerJson(request): TalerJson<PaidRequest>,
) -> Result<Response, MerchantError> {
    let merchant = &state.merchant;
    let instance = merchant.live_instance(&id.0).await?;
    let response = merchant
        .order_paid(&instance, &path.order_id, request)
        .await?;
    // The wallets of 2022 expect 204 (crate::legacy::paid_with_legacy_coins).
    if crate::legacy::paid_with_legacy_coins(merchant, instance.serial, &path.order_id).await? {
        return Ok(axum::http::StatusCode::NO_CONTENT.into_response());
    }
    Ok(TalerJson(response).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PublicStatusParams {
    token: Option<String>,
    h_contract: Option<String>,
    session_id: Option<String>,
    refund: Option<String>,
    await_refund_obtained: Option<String>,
    allow_refunded_for_repurchase: Option<String>,
}

/// Whether the client prefers an HTML page (a browser) to JSON (a wallet).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

fn redirect(location: &str) -> Result<Response, MerchantError> {
    let value = HeaderValue::from_str(location)
        .map_err(|_| MerchantError::Internal("redirect target is not a header value".into()))?;
    Ok((
        StatusCode::FOUND,
        [
            (LOCATION, value),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

fn html(status: StatusCode, page: String) -> Response {
    (
        status,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        page,
    )
        .into_response()
}

pub async fn get_order(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<OrderPath>,
    TalerQuery(params): TalerQuery<PublicStatusParams>,
    poll: LongPoll,
) -> Result<Response, MerchantError> {
    let merchant = &state.merchant;
    let instance = merchant.live_instance(&id.0).await?;
    let html_wanted = wants_html(&headers);
    let h_contract = params
        .h_contract
        .as_deref()
        .map(|h| h.parse::<HashCode>())
        .transpose()
        .map_err(|_| MerchantError::malformed("h_contract"))?;
    let refund = params
        .refund
        .as_deref()
        .map(|a| a.parse::<Amount>())
        .transpose()
        .map_err(|_| MerchantError::malformed("refund"))?;
    let query = PublicStatusQuery {
        token: params.token.filter(|t| !t.is_empty()),
        h_contract,
        session_id: params.session_id,
        // A page is answered at once (it reloads itself).
        timeout: if html_wanted {
            std::time::Duration::ZERO
        } else {
            poll.timeout
        },
        refund,
        await_refund_obtained: yes(params.await_refund_obtained.as_deref()),
        allow_refunded_for_repurchase: yes(params.allow_refunded_for_repurchase.as_deref()),
    };
    let status = merchant
        .public_order_status(&instance, &path.order_id, &query)
        .await?;
    if html_wanted {
        return match status {
            PublicStatus::Unpaid {
                already_paid: Some(paid),
                ..
            } => redirect(&paid.fulfillment_url),
            PublicStatus::Unpaid {
                row, taler_pay_uri, ..
            } => Ok(html(
                StatusCode::PAYMENT_REQUIRED,
                pay_page(&PayPage {
                    merchant_name: &instance.name,
                    summary: &row.summary,
                    amount: &row.amount,
                    taler_pay_uri: &taler_pay_uri,
                }),
            )),
            PublicStatus::Paid { row, .. } => match &row.fulfillment_url {
                Some(url) => redirect(url),
                None => Ok(html(
                    StatusCode::OK,
                    paid_page(
                        &instance.name,
                        &row.summary,
                        row.contract_terms
                            .get("fulfillment_message")
                            .and_then(|m| m.as_str()),
                    ),
                )),
            },
            PublicStatus::Reorder { public_reorder_url } => redirect(&public_reorder_url),
        };
    }
    Ok(match status {
        PublicStatus::Unpaid {
            row,
            taler_pay_uri,
            already_paid,
        } => (
            StatusCode::PAYMENT_REQUIRED,
            TalerJson(OrderStatusUnpaid {
                taler_pay_uri,
                fulfillment_url: row.fulfillment_url.clone(),
                already_paid_order_id: already_paid.as_ref().map(|p| p.order_id.clone()),
                already_paid_fulfillment_url: already_paid.map(|p| p.fulfillment_url),
            }),
        )
            .into_response(),
        PublicStatus::Paid {
            row, goto: true, ..
        } => (StatusCode::ACCEPTED, TalerJson(goto_fulfillment(&row))).into_response(),
        PublicStatus::Paid { status, .. } => TalerJson(status).into_response(),
        PublicStatus::Reorder { public_reorder_url } => (
            StatusCode::ACCEPTED,
            TalerJson(StatusGotoResponse {
                public_reorder_url: Some(public_reorder_url),
                fulfillment_url: None,
            }),
        )
            .into_response(),
    })
}
