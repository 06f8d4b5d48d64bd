//! `GET /private/transfers`: the wire transfers the exchanges made to the instance, with what
//! they paid per order. Thin: extract → authorize → [`crate::settlement::transfers`].

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use cardcash_api::merchant::settlement::TransferList;

use super::AppState;
use crate::auth::{InstanceId, Permission};
use crate::error::MerchantError;

/// The routes of this module, relative to an instance's base URL.
pub fn routes() -> Router<AppState> {
    // https://docs.taler.net/core/merchant/get-private-transfers.html
    Router::new().route("/private/transfers", get(get_private_transfers))
}

pub async fn get_private_transfers(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
) -> Result<Json<TransferList>, MerchantError> {
    let instance = state
        .merchant
        .authorize(&id, &headers, Permission::TransfersRead)
        .await?;
    Ok(Json(
        crate::settlement::transfers(&state.merchant, &instance).await?,
    ))
}
