//! `GET /sessions/$SESSION_ID?fulfillment_url=…&timeout_ms=…`: public; 200 with the order paid
//! in the session, 202 with the one created for it but unpaid, 404 without one. Thin: extract →
//! [`crate::sessions::session_status`].

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cardcash_api::merchant::settlement::GetSessionStatusResponse;
use cardcash_http::{LongPoll, TalerJson, TalerPath, TalerQuery};
use cardcash_util::ErrorCode;
use serde::Deserialize;

use super::AppState;
use crate::auth::InstanceId;
use crate::error::MerchantError;

/// The routes of this module, relative to an instance's base URL.
pub fn routes() -> Router<AppState> {
    // https://docs.taler.net/core/merchant/get-sessions-SESSION_ID.html
    Router::new().route("/sessions/{session_id}", get(get_session))
}

#[derive(Debug, Deserialize)]
pub struct SessionPath {
    pub session_id: String,
}

#[derive(Debug, Deserialize)]
pub struct SessionParams {
    pub fulfillment_url: Option<String>,
}

pub async fn get_session(
    State(state): State<AppState>,
    id: InstanceId,
    TalerPath(path): TalerPath<SessionPath>,
    TalerQuery(params): TalerQuery<SessionParams>,
    poll: LongPoll,
) -> Result<Response, MerchantError> {
    let m = &state.merchant;
    let instance = m.live_instance(&id.0).await?;
    let fulfillment_url = params.fulfillment_url.ok_or_else(|| {
        MerchantError::refused(
            ErrorCode::GenericParameterMissing,
            "fulfillment_url is required",
        )
    })?;
    let order = crate::sessions::session_status(
        m,
        &instance,
        &path.session_id,
        &fulfillment_url,
        poll.timeout,
    )
    .await?;
    let status = if order.paid {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let body = GetSessionStatusResponse {
        order_id: order.order_id,
    };
    Ok((status, TalerJson(body)).into_response())
}
