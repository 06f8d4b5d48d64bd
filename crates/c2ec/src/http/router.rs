//! The route table, API by API in spec order, plus QR code, health and (via the shared layers)
//! `/metrics`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{AppState, integration, parse_wopid, terminal, wire};
use crate::error::C2ecError;

pub fn routes(state: AppState) -> Router {
    Router::new()
        // Terminal API v0 — https://docs.taler.net/core/api-terminal.html
        .route("/terminal/config", get(terminal::get_config))
        .route("/terminal/withdrawals", post(terminal::post_withdrawals))
        .route(
            "/terminal/withdrawals/{wopid}",
            get(terminal::get_withdrawal).delete(terminal::post_abort),
        )
        .route(
            "/terminal/withdrawals/{wopid}/check",
            post(terminal::post_check),
        )
        .route(
            "/terminal/withdrawals/{wopid}/abort",
            post(terminal::post_abort),
        )
        // Bank Integration API — https://docs.taler.net/core/api-bank-integration.html
        .route("/taler-integration/config", get(integration::get_config))
        .route(
            "/taler-integration/withdrawal-operation/{wopid}",
            get(integration::get_withdrawal_operation).post(integration::post_withdrawal_operation),
        )
        .route(
            "/taler-integration/withdrawal-operation/{wopid}/abort",
            post(integration::post_withdrawal_operation_abort),
        )
        // Wire Gateway API — https://docs.taler.net/core/api-bank-wire.html (the shared
        // router: config, transfer, transfers, histories, admin/add-incoming)
        .nest(
            "/taler-wire-gateway",
            cardcash_http::wire_gateway::router(wire::C2ecWireGateway::new(state.clone())),
        )
        // Operations
        .route("/qr/{file}", get(get_qr))
        .route("/health", get(get_health))
        .with_state(state)
}

/// `GET /qr/{wopid}.svg`: the QR code of the operation's `taler://withdraw` URI.
async fn get_qr(
    State(s): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, C2ecError> {
    let raw = file
        .strip_suffix(".svg")
        .ok_or_else(|| C2ecError::NotFound("only .svg QR codes are served".into()))?;
    let wopid = parse_wopid(raw)?;
    // Only for operations that exist: no QR codes for guessed ids.
    s.c2ec.get(&wopid, None).await?;
    let svg = crate::qr::svg(&s.withdraw_uri(&wopid)?)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// `GET /health`: the database answers.
async fn get_health(State(s): State<AppState>) -> Result<StatusCode, C2ecError> {
    s.c2ec.store.ping().await?;
    Ok(StatusCode::NO_CONTENT)
}
