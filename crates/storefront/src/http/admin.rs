//! `/admin`: recent orders and refunds (HTTP Basic, user `admin`, the configured password; the
//! refund form carries an anti-CSRF token, since a browser would send the Basic credentials
//! with a form posted from another site).

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use cardcash_http::{BasicAuth, basic_auth_matches, constant_time_eq};
use cardcash_util::Amount;
use serde::Deserialize;

use super::shop::NoticeQuery;
use super::{AppState, html, redirect};
use crate::config::ADMIN_USER;
use crate::error::StorefrontError;
use crate::page::{self, Notice};

/// How many orders the page lists.
const RECENT: u32 = 50;

fn authorize(state: &AppState, auth: Option<&BasicAuth>) -> Result<(), StorefrontError> {
    match auth {
        Some(a) if basic_auth_matches(a, ADMIN_USER, &state.shop.config().admin_password) => Ok(()),
        _ => Err(StorefrontError::AdminUnauthorized),
    }
}

/// `GET /admin`.
pub async fn get_admin(
    State(state): State<AppState>,
    auth: Option<BasicAuth>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, StorefrontError> {
    authorize(&state, auth.as_ref())?;
    let history = state.shop.merchant().recent_orders(RECENT).await?;
    Ok(html(
        page::admin(&history.orders, query.notice(), state.shop.csrf_token()),
        &[],
    ))
}

#[derive(Debug, Deserialize)]
pub struct RefundForm {
    pub csrf: String,
    pub order_id: String,
    pub amount: String,
    #[serde(default)]
    pub reason: String,
}

/// `POST /admin/refund`: a full or partial refund.
pub async fn post_admin_refund(
    State(state): State<AppState>,
    auth: Option<BasicAuth>,
    Form(form): Form<RefundForm>,
) -> Result<Response, StorefrontError> {
    authorize(&state, auth.as_ref())?;
    if !constant_time_eq(form.csrf.as_bytes(), state.shop.csrf_token().as_bytes()) {
        return Err(StorefrontError::Malformed(
            "the form is not this shop's (anti-CSRF token)".into(),
        ));
    }
    let amount: Amount = form
        .amount
        .trim()
        .parse()
        .map_err(|e| StorefrontError::Malformed(format!("refund amount: {e}")))?;
    if amount.currency() != &state.shop.config().currency {
        return Err(StorefrontError::Malformed(format!(
            "refund amount: not in {}",
            state.shop.config().currency
        )));
    }
    let reason = if form.reason.trim().is_empty() {
        "refund"
    } else {
        form.reason.trim()
    };
    let granted = state.shop.refund(&form.order_id, amount, reason).await?;
    let notice = if granted {
        Notice::Refunded
    } else {
        Notice::RefundRefused
    };
    Ok(redirect(
        &format!("/admin?notice={}", notice.as_query()),
        &[],
    ))
}
