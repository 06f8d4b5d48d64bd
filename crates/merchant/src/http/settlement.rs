//! Settlement: `GET /private/transfers` (the wire transfers of the instance, what the bank
//! confirmed and whether it agrees with the exchange, with what they paid per order),
//! `POST /private/transfers` (the bank's report of a transfer that arrived) and
//! `DELETE /private/transfers/$TID`. Thin: extract → authorize → [`crate::settlement`].

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use cardcash_api::merchant::settlement::{TransferInformation, TransferList};
use cardcash_http::{TalerJson, TalerPath, TalerQuery};
use serde::Deserialize;

use super::AppState;
use crate::auth::{InstanceId, Permission};
use crate::error::MerchantError;
use crate::settlement::ListQuery;

/// The routes of this module, relative to an instance's base URL.
pub fn routes() -> Router<AppState> {
    Router::new()
        // https://docs.taler.net/core/merchant/get-private-transfers.html
        // https://docs.taler.net/core/merchant/post-private-transfers.html
        .route(
            "/private/transfers",
            get(get_private_transfers).post(post_private_transfers),
        )
        // https://git.gnunet.org/taler/taler-docs/file/core/merchant/delete-private-transfers-TID.rst.html
        .route("/private/transfers/{tid}", delete(delete_private_transfer))
}

pub async fn get_private_transfers(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerQuery(query): TalerQuery<ListQuery>,
) -> Result<TalerJson<TransferList>, MerchantError> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::TransfersRead)
        .await?;
    Ok(TalerJson(
        crate::settlement::transfers(m, &instance, &query).await?,
    ))
}

pub async fn post_private_transfers(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerJson(info): TalerJson<TransferInformation>,
) -> Result<StatusCode, MerchantError> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::TransfersWrite)
        .await?;
    crate::settlement::report_transfer(m, &instance, info).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct TransferPath {
    pub tid: String,
}

pub async fn delete_private_transfer(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<TransferPath>,
) -> Result<StatusCode, MerchantError> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::TransfersWrite)
        .await?;
    let tid = path
        .tid
        .parse::<i64>()
        .ok()
        .filter(|t| *t >= 0)
        .ok_or_else(|| MerchantError::malformed("tid"))?;
    crate::settlement::delete_transfer(m, &instance, tid).await?;
    Ok(StatusCode::NO_CONTENT)
}
